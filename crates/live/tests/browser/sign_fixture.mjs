// Prints what the page's signing code (web/sign.js) makes of a fixed key, timestamp and nonce:
// the fixture crates/live/tests/fixtures/sign_fixture.json, verified with ed25519-dalek by the
// Rust test `the_pages_signatures_verify`. Run: node crates/live/tests/browser/sign_fixture.mjs
import { importSecret, message, sign, signedHeaders, streamQuery } from "../../web/sign.js";

// PKCS#8 DER of the Ed25519 key whose 32-byte seed is [7; 32].
const der = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
  ...new Array(32).fill(7),
]);
const secret = Buffer.from(der).toString("base64url");
const key = await importSecret(secret);
const ts = 1764681600000;
const body = '{"order_id":"web-1","symbol":"BTC-USD","side":"buy","order_type":"limit","qty":"1","tif":"gtc","price":"100.00"}';
const headers = await signedHeaders(key, "k-alice", "POST", "/v1/orders", body, ts, "nonce-1");
const query = await streamQuery(key, "k-alice", ts, "nonce-2");
const plain = await sign(key, message(ts, "nonce-3", "GET", "/v1/orders/BTC-USD/web-1", ""));
console.log(JSON.stringify({ secret, ts, body, headers, stream_query: query, get_signature: plain }, null, 2));
