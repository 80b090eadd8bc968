//! The live page and the `/v1/stream` WebSocket (crate `tradestream-live`) as the gateway serves
//! them: private channels are opened with the same Ed25519 keys as order entry.

use std::sync::Arc;

use tradestream_live::StreamAuth;

use crate::GatewayState;
use crate::auth::Credentials;

/// [`StreamAuth`] by the gateway's key ring: the upgrade's query
/// `key=..&ts=..&nonce=..&sig=..` signs `"{ts}\n{nonce}\nGET\n/v1/stream\n"`. No credentials at
/// all: public channels only. Some but not all four, or a signature that does not verify: the
/// upgrade is refused (401) with the same codes as order entry.
#[derive(Debug)]
pub struct StreamKeys(pub Arc<GatewayState>);

impl StreamAuth for StreamKeys {
    fn account(&self, query: &str, now_ms: i64) -> Result<Option<String>, String> {
        let (mut key, mut ts, mut nonce, mut sig) = (None, None, None, None);
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "key" => &mut key,
                "ts" => &mut ts,
                "nonce" => &mut nonce,
                "sig" => &mut sig,
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        match (key, ts, nonce, sig) {
            (None, None, None, None) => Ok(None),
            (Some(key), Some(ts), Some(nonce), Some(sig)) => {
                let creds = Credentials {
                    key: &key,
                    ts: &ts,
                    nonce: &nonce,
                    sig: &sig,
                };
                self.0
                    .keys
                    .verify_stream(creds, now_ms)
                    .map(Some)
                    .map_err(|e| format!("{}: {e}", e.code()))
            }
            _ => Err("missing_auth: a signed stream needs key, ts, nonce and sig".to_owned()),
        }
    }
}

/// The live routes for `state`, fed by `hub`.
pub fn live_routes(state: &Arc<GatewayState>, hub: Arc<tradestream_live::Hub>) -> axum::Router {
    tradestream_live::router(hub, Arc::new(StreamKeys(Arc::clone(state))))
}
