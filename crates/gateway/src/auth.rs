//! Signed requests (Ed25519): the venue stores public keys only, nothing secret.
//!
//! Every authenticated request carries four headers:
//! - `X-TS-Key`: the key id (the key file maps it to an account and a public key);
//! - `X-TS-Timestamp`: the client's clock, unix milliseconds;
//! - `X-TS-Nonce`: 1–64 characters of `[A-Za-z0-9_-]`, never reused with this key within the
//!   receive window;
//! - `X-TS-Signature`: base64url (no padding) of the 64-byte Ed25519 signature of
//!   `"{timestamp}\n{nonce}\n{METHOD}\n{path-and-query}\n{body}"`, the body exactly as sent.
//!
//! A request is accepted when the signature verifies, `|now − timestamp| ≤ recv window` and the
//! nonce was not seen with this key within the window. The nonce is remembered only after the
//! signature verified, so nobody can burn another client's nonces, and only until its timestamp
//! leaves the window (a replay after that is stale anyway): memory is bounded by the request
//! rate times the window, and capped ([`NonceCache`]).
//!
//! The WebSocket private channel signs `"{ts}\n{nonce}\nGET\n/v1/stream\n"` and passes the four
//! values as query parameters ([`KeyRing::verify_stream`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;

/// The authenticated account.
pub type Account = String;

/// Header names.
pub const HEADER_KEY: &str = "x-ts-key";
/// Unix milliseconds.
pub const HEADER_TIMESTAMP: &str = "x-ts-timestamp";
/// 1–64 of `[A-Za-z0-9_-]`.
pub const HEADER_NONCE: &str = "x-ts-nonce";
/// base64url, no padding.
pub const HEADER_SIGNATURE: &str = "x-ts-signature";

/// The default receive window: 30 s either way.
pub const DEFAULT_RECV_WINDOW_MS: i64 = 30_000;

/// Most nonces one instance remembers (about 100 MB at worst); past it requests are refused
/// with 503 until old nonces expire.
pub const DEFAULT_MAX_NONCES: usize = 1_000_000;

/// Why a request is not authenticated. Every variant is a 401 except [`AuthError::Overloaded`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A header is missing or unreadable.
    #[error("{0}")]
    MissingAuth(String),
    /// The key id is not in the key file.
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    /// The signature does not verify (or is not 64 bytes of base64url).
    #[error("{0}")]
    BadSignature(String),
    /// The timestamp is outside the receive window.
    #[error("timestamp {ts} is {off_ms} ms from the server's clock (window {window_ms} ms)")]
    StaleTimestamp {
        /// What the client sent.
        ts: i64,
        /// How far off.
        off_ms: i64,
        /// The window.
        window_ms: i64,
    },
    /// The nonce was used with this key within the window.
    #[error("nonce already used with this key")]
    ReplayedNonce,
    /// The nonce cache is full: the gateway refuses rather than forget nonces early.
    #[error("too many requests in the receive window; retry later")]
    Overloaded,
}

impl AuthError {
    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuth(_) => "missing_auth",
            AuthError::UnknownKey(_) => "unknown_key",
            AuthError::BadSignature(_) => "bad_signature",
            AuthError::StaleTimestamp { .. } => "stale_timestamp",
            AuthError::ReplayedNonce => "replayed_nonce",
            AuthError::Overloaded => "overloaded",
        }
    }
}

/// Why the key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not the expected YAML, or a bad entry.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    key: String,
    account: String,
    #[serde(rename = "public-key")]
    public_key: String,
}

/// Remembers nonces per key until their timestamps leave the window; bounded.
#[derive(Debug)]
pub struct NonceCache {
    seen: HashSet<(String, String)>,
    /// Min-heap of (forget after, key, nonce).
    expiry: BinaryHeap<Reverse<(i64, String, String)>>,
    max: usize,
}

impl NonceCache {
    /// An empty cache holding at most `max` nonces.
    pub fn new(max: usize) -> Self {
        NonceCache {
            seen: HashSet::new(),
            expiry: BinaryHeap::new(),
            max,
        }
    }

    /// Records `nonce` for `key` until `forget_after_ms`; false if it is already there.
    fn insert(
        &mut self,
        key: &str,
        nonce: &str,
        forget_after_ms: i64,
        now_ms: i64,
    ) -> Result<bool, AuthError> {
        while let Some(Reverse((at, _, _))) = self.expiry.peek() {
            if *at >= now_ms {
                break;
            }
            if let Some(Reverse((_, k, n))) = self.expiry.pop() {
                self.seen.remove(&(k, n));
            }
        }
        let id = (key.to_owned(), nonce.to_owned());
        if self.seen.contains(&id) {
            return Ok(false);
        }
        if self.seen.len() >= self.max {
            return Err(AuthError::Overloaded);
        }
        self.seen.insert(id);
        self.expiry
            .push(Reverse((forget_after_ms, key.to_owned(), nonce.to_owned())));
        Ok(true)
    }

    /// Nonces held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// The public keys of the key file, and the nonces seen.
#[derive(Debug)]
pub struct KeyRing {
    keys: HashMap<String, (Account, VerifyingKey)>,
    recv_window_ms: i64,
    nonces: Mutex<NonceCache>,
}

/// What a signed request says about itself (the four headers, as text).
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// `X-TS-Key`.
    pub key: &'a str,
    /// `X-TS-Timestamp`.
    pub ts: &'a str,
    /// `X-TS-Nonce`.
    pub nonce: &'a str,
    /// `X-TS-Signature`.
    pub sig: &'a str,
}

impl KeyRing {
    /// A key ring of `(key id, account, public key)`.
    pub fn new(
        keys: impl IntoIterator<Item = (String, Account, VerifyingKey)>,
        recv_window_ms: i64,
    ) -> Self {
        KeyRing {
            keys: keys.into_iter().map(|(k, a, v)| (k, (a, v))).collect(),
            recv_window_ms,
            nonces: Mutex::new(NonceCache::new(DEFAULT_MAX_NONCES)),
        }
    }

    /// Reads the YAML key file:
    /// `keys: [{key: "k-alice", account: "alice", public-key: "<base64url of 32 bytes>"}]`.
    pub fn load(path: &Path, recv_window_ms: i64) -> Result<Self, KeyFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, recv_window_ms).map_err(|message| KeyFileError::Invalid {
            path: shown,
            message,
        })
    }

    /// Parses a key file's text.
    pub fn parse(yaml: &str, recv_window_ms: i64) -> Result<Self, String> {
        let file: KeyFile = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
        let mut keys = Vec::with_capacity(file.keys.len());
        let mut ids = HashSet::new();
        for entry in file.keys {
            if !ids.insert(entry.key.clone()) {
                return Err(format!("key {:?} appears twice", entry.key));
            }
            if entry.account.is_empty() || tradestream_engine::Account::new(&entry.account).is_err()
            {
                return Err(format!(
                    "key {:?}: account must be 1 to 40 bytes",
                    entry.key
                ));
            }
            let public = decode_public_key(&entry.public_key)
                .map_err(|why| format!("key {:?}: public-key {why}", entry.key))?;
            keys.push((entry.key, entry.account, public));
        }
        Ok(Self::new(keys, recv_window_ms))
    }

    /// The receive window, milliseconds.
    pub fn recv_window_ms(&self) -> i64 {
        self.recv_window_ms
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True without keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies one signed request and records its nonce. `path_and_query` is the request
    /// target as sent (`/v1/orders?x=1`), `body` the body bytes as sent (empty for GET/DELETE).
    #[allow(clippy::too_many_arguments)] // the contract's signature: each part of the message
    pub fn verify(
        &self,
        key: &str,
        ts: &str,
        nonce: &str,
        sig: &str,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now_ms: i64,
    ) -> Result<Account, AuthError> {
        let (account, public) = self
            .keys
            .get(key)
            .ok_or_else(|| AuthError::UnknownKey(key.to_owned()))?;
        let ts_ms: i64 = ts.parse().map_err(|_| {
            AuthError::MissingAuth("X-TS-Timestamp must be unix milliseconds".into())
        })?;
        check_nonce_syntax(nonce)?;
        let signature = decode_signature(sig)?;
        let mut message = Vec::with_capacity(
            ts.len() + nonce.len() + method.len() + path_and_query.len() + 4 + body.len(),
        );
        for part in [
            ts.as_bytes(),
            nonce.as_bytes(),
            method.as_bytes(),
            path_and_query.as_bytes(),
        ] {
            message.extend_from_slice(part);
            message.push(b'\n');
        }
        message.extend_from_slice(body);
        public
            .verify_strict(&message, &signature)
            .map_err(|_| AuthError::BadSignature("the signature does not verify".into()))?;
        let off_ms = now_ms.saturating_sub(ts_ms).saturating_abs();
        if off_ms > self.recv_window_ms {
            return Err(AuthError::StaleTimestamp {
                ts: ts_ms,
                off_ms,
                window_ms: self.recv_window_ms,
            });
        }
        let fresh = self
            .nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                key,
                nonce,
                ts_ms.saturating_add(self.recv_window_ms),
                now_ms,
            )?;
        if !fresh {
            return Err(AuthError::ReplayedNonce);
        }
        Ok(account.clone())
    }

    /// Verifies the WebSocket private channel's query form
    /// (`GET /v1/stream?key=..&ts=..&nonce=..&sig=..`): the signed message is
    /// `"{ts}\n{nonce}\nGET\n/v1/stream\n"` (path without the query, empty body).
    pub fn verify_stream(&self, creds: Credentials<'_>, now_ms: i64) -> Result<Account, AuthError> {
        self.verify(
            creds.key,
            creds.ts,
            creds.nonce,
            creds.sig,
            "GET",
            "/v1/stream",
            b"",
            now_ms,
        )
    }

    /// Nonces remembered (a gauge).
    pub fn nonces_held(&self) -> usize {
        self.nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

fn check_nonce_syntax(nonce: &str) -> Result<(), AuthError> {
    let ok = (1..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AuthError::MissingAuth(
            "X-TS-Nonce must be 1 to 64 characters of [A-Za-z0-9_-]".into(),
        ))
    }
}

fn decode_signature(sig: &str) -> Result<Signature, AuthError> {
    let bytes = URL_SAFE_NO_PAD.decode(sig).map_err(|_| {
        AuthError::BadSignature("X-TS-Signature is not base64url without padding".into())
    })?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| AuthError::BadSignature("X-TS-Signature must be 64 bytes".into()))?;
    Ok(Signature::from_bytes(&bytes))
}

/// A public key as the key file spells it: base64url without padding of the 32 raw bytes.
pub fn decode_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|e| format!("is not base64url without padding: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "must be 32 bytes".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("is not an Ed25519 point: {e}"))
}

/// The key file's spelling of a public key.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// base64url without padding of a signature (what clients send).
pub fn encode_signature(sig: &Signature) -> String {
    URL_SAFE_NO_PAD.encode(sig.to_bytes())
}

/// The message a client signs.
pub fn message(ts: i64, nonce: &str, method: &str, path_and_query: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!("{ts}\n{nonce}\n{method}\n{path_and_query}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

/// A new key pair from the operating system's randomness.
pub fn generate_signing_key() -> Result<ed25519_dalek::SigningKey, getrandom::Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&secret))
}

/// A private key as PKCS#8 v1 PEM (`-----BEGIN PRIVATE KEY-----`), what OpenSSL and WebCrypto
/// (`importKey('pkcs8', …)`) read.
pub fn signing_key_pem(key: &ed25519_dalek::SigningKey) -> Result<String, String> {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let pair = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    pair.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer as _;

    fn ring() -> (KeyRing, ed25519_dalek::SigningKey) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let yaml = format!(
            "keys:\n  - key: k-alice\n    account: alice\n    public-key: {}\n",
            encode_public_key(&sk.verifying_key())
        );
        (KeyRing::parse(&yaml, 30_000).unwrap(), sk)
    }

    fn sign(sk: &ed25519_dalek::SigningKey, ts: i64, nonce: &str, body: &[u8]) -> String {
        encode_signature(&sk.sign(&message(ts, nonce, "POST", "/v1/orders", body)))
    }

    #[test]
    fn verifies_and_refuses_replays_and_stale_requests() {
        let (ring, sk) = ring();
        let now = 1_700_000_000_000;
        let sig = sign(&sk, now, "n1", b"{}");
        let ts = now.to_string();
        let ok = ring.verify("k-alice", &ts, "n1", &sig, "POST", "/v1/orders", b"{}", now);
        assert_eq!(ok, Ok("alice".to_owned()));
        let again = ring.verify(
            "k-alice",
            &ts,
            "n1",
            &sig,
            "POST",
            "/v1/orders",
            b"{}",
            now + 1,
        );
        assert_eq!(again, Err(AuthError::ReplayedNonce));
        let tampered = ring.verify(
            "k-alice",
            &ts,
            "n1",
            &sig,
            "POST",
            "/v1/orders",
            b"{ }",
            now,
        );
        assert_eq!(tampered.unwrap_err().code(), "bad_signature");
        let late = ring.verify(
            "k-alice",
            &ts,
            "n2",
            &sign(&sk, now, "n2", b""),
            "POST",
            "/v1/orders",
            b"",
            now + 30_001,
        );
        assert_eq!(late.unwrap_err().code(), "stale_timestamp");
        let unknown = ring.verify("k-bob", &ts, "n3", &sig, "POST", "/v1/orders", b"{}", now);
        assert_eq!(unknown.unwrap_err().code(), "unknown_key");
        let bad_nonce = ring.verify(
            "k-alice",
            &ts,
            "n 3",
            &sig,
            "POST",
            "/v1/orders",
            b"{}",
            now,
        );
        assert_eq!(bad_nonce.unwrap_err().code(), "missing_auth");
    }

    #[test]
    fn a_bad_signature_does_not_burn_the_nonce() {
        let (ring, sk) = ring();
        let now = 1_700_000_000_000;
        let ts = now.to_string();
        let wrong = sign(&sk, now, "n1", b"other");
        assert!(
            ring.verify(
                "k-alice",
                &ts,
                "n1",
                &wrong,
                "POST",
                "/v1/orders",
                b"{}",
                now
            )
            .is_err()
        );
        let right = sign(&sk, now, "n1", b"{}");
        assert!(
            ring.verify(
                "k-alice",
                &ts,
                "n1",
                &right,
                "POST",
                "/v1/orders",
                b"{}",
                now
            )
            .is_ok()
        );
    }

    #[test]
    fn nonces_are_forgotten_once_stale_and_the_cache_is_bounded() {
        let mut cache = NonceCache::new(2);
        assert_eq!(cache.insert("k", "a", 100, 0), Ok(true));
        assert_eq!(cache.insert("k", "a", 100, 50), Ok(false));
        assert_eq!(cache.insert("k", "b", 100, 50), Ok(true));
        assert_eq!(cache.insert("k", "c", 200, 50), Err(AuthError::Overloaded));
        assert_eq!(cache.insert("k", "c", 200, 101), Ok(true));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn stream_form_signs_the_path_without_query() {
        let (ring, sk) = ring();
        let now = 1_700_000_000_000;
        let sig = encode_signature(&sk.sign(&message(now, "w1", "GET", "/v1/stream", b"")));
        let ts = now.to_string();
        let creds = Credentials {
            key: "k-alice",
            ts: &ts,
            nonce: "w1",
            sig: &sig,
        };
        assert_eq!(ring.verify_stream(creds, now), Ok("alice".to_owned()));
    }

    #[test]
    fn pem_round_trips() {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let sk = generate_signing_key().unwrap();
        let pem = signing_key_pem(&sk).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.to_bytes(), sk.to_bytes());
    }
}
