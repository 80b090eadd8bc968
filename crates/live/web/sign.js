// Signed requests per the venue's contract, with WebCrypto Ed25519 (browsers; also Node 20+,
// which the fixture test uses). The secret never leaves this page: it comes from the URL fragment.
//
// Message: "{timestamp}\n{nonce}\n{METHOD}\n{path-and-query}\n{body}"; signature base64url, no padding.

const subtle = globalThis.crypto.subtle;

export function b64urlEncode(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64urlDecode(text) {
  const s = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(s + "=".repeat((4 - (s.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// The private key from its base64url PKCS#8 DER (what `tradestream keys new` writes as PEM).
export function importSecret(b64url) {
  return subtle.importKey("pkcs8", b64urlDecode(b64url), { name: "Ed25519" }, false, ["sign"]);
}

// 22 characters of [A-Za-z0-9_-]: 16 random bytes.
export function newNonce() {
  return b64urlEncode(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

export function message(ts, nonce, method, pathAndQuery, body) {
  return `${ts}\n${nonce}\n${method}\n${pathAndQuery}\n${body}`;
}

export async function sign(key, text) {
  const sig = await subtle.sign({ name: "Ed25519" }, key, new TextEncoder().encode(text));
  return b64urlEncode(sig);
}

// Headers of a signed HTTP request.
export async function signedHeaders(key, keyId, method, pathAndQuery, body, ts = Date.now(), nonce = newNonce()) {
  const signature = await sign(key, message(ts, nonce, method, pathAndQuery, body));
  return {
    "X-TS-Key": keyId,
    "X-TS-Timestamp": String(ts),
    "X-TS-Nonce": nonce,
    "X-TS-Signature": signature,
  };
}

// The query string of a signed `/v1/stream` upgrade (the signed path has no query).
export async function streamQuery(key, keyId, ts = Date.now(), nonce = newNonce()) {
  const sig = await sign(key, message(ts, nonce, "GET", "/v1/stream", ""));
  const q = new URLSearchParams({ key: keyId, ts: String(ts), nonce, sig });
  return q.toString();
}
