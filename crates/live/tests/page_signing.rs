//! The page's signing code (web/sign.js, WebCrypto Ed25519) against the contract, checked with
//! ed25519-dalek: the committed fixture it produced, and (where node is installed) a fresh run
//! of it, which must give the same bytes (Ed25519 signatures are deterministic).

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signature, SigningKey};
use serde_json::Value;
use tradestream_live::StreamAuth;

fn fixture_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sign_fixture.json")
}

fn check(f: &Value) {
    let der = URL_SAFE_NO_PAD
        .decode(f["secret"].as_str().expect("secret"))
        .expect("base64url");
    let key = SigningKey::from_pkcs8_der(&der).expect("PKCS#8 Ed25519 key");
    assert_eq!(key.to_bytes(), [7; 32]);
    let public = key.verifying_key();
    let ts = f["ts"].as_i64().expect("ts");
    let verify = |message: String, sig: &str| {
        let sig = URL_SAFE_NO_PAD.decode(sig).expect("base64url signature");
        let sig = Signature::from_slice(&sig).expect("64 bytes");
        public
            .verify_strict(message.as_bytes(), &sig)
            .unwrap_or_else(|e| panic!("{message:?}: {e}"));
    };
    let h = &f["headers"];
    assert_eq!(h["X-TS-Key"], "k-alice");
    assert_eq!(h["X-TS-Timestamp"], ts.to_string());
    let body = f["body"].as_str().expect("body");
    verify(
        format!("{ts}\nnonce-1\nPOST\n/v1/orders\n{body}"),
        h["X-TS-Signature"].as_str().expect("signature"),
    );
    verify(
        format!("{ts}\nnonce-3\nGET\n/v1/orders/BTC-USD/web-1\n"),
        f["get_signature"].as_str().expect("signature"),
    );
    // The stream query passes a verifier of the contract (the test-only key ring).
    let ring = common::TestOnlyKeyRing::default().with("k-alice", "alice", &key);
    let query = f["stream_query"].as_str().expect("query");
    assert_eq!(ring.account(query, ts + 1000), Ok(Some("alice".into())));
    assert!(
        ring.account(query, ts + 1000).is_err(),
        "the nonce is spent"
    );
}

#[test]
fn the_pages_signatures_verify() {
    let text = std::fs::read_to_string(fixture_path()).expect("fixture");
    check(&serde_json::from_str(&text).expect("fixture JSON"));
}

#[test]
fn the_page_signs_as_the_fixture_says_today() {
    let Some(node) = tradestream_testkit::service_command("node", "the page's signing code (node)")
    else {
        return;
    };
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/sign_fixture.mjs");
    let out = std::process::Command::new(node)
        .arg(script)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    check(&fresh);
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_path()).expect("fixture"))
            .expect("fixture JSON");
    assert_eq!(
        fresh, committed,
        "web/sign.js changed: regenerate the fixture"
    );
}
