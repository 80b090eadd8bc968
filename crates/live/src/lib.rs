//! # tradestream-live
//!
//! The venue's live market data for people and programs: the `/v1/stream` WebSocket and the live
//! market page, both served by the gateway (`tradestream run gateway` merges [`router`]).
//!
//! ## Layout
//! - [`Hub`] (`hub.rs`): the latest market state and the clients' subscriptions; bounded queues,
//!   slow consumers dropped (close 1008 "slow consumer").
//! - `reader.rs`: the hub's thread reading `market-data`, `trades`, `candles` and
//!   `notifications` from their end (no consumer group) and decoding them ([`Update`]).
//! - [`book`]: one symbol's L2 ladder rebuilt from `book_delta` and `top_of_book` events.
//! - [`channel`]: channel names and client requests.
//! - `ws.rs`: the WebSocket connection: requests in, queued messages out.
//! - `assets.rs`: the page (`web/`, compiled into the binary) and `GET /v1/instruments`.
//!
//! ## Protocol
//! The client sends `{"op":"subscribe","channels":["book:BTC-USD","trades:BTC-USD",
//! "candles:BTC-USD:1s","notifications"]}` (or `unsubscribe`, or `{"op":"ping"}`); the server
//! answers `{"op":"subscribed","channels":[...]}`, then sends `{"channel":..., "data":...}`
//! messages, and `{"error":{"code","message"}}` for anything it refuses. Updates are coalesced
//! per flush interval (50 ms): `book:` data is the whole top of book and ladder, `trades:` and
//! `notifications` data are arrays (the trades or notifications since the last message, in
//! order), `candles:` data is the latest version of one candle. A `book:` channel gets the
//! current book at once, `trades:` and `candles:` the recent ones. `notifications` is
//! private: it needs a signed upgrade (`?key=&ts=&nonce=&sig=`, see [`StreamAuth`]) and delivers
//! only that account's notifications.

mod assets;
pub mod book;
pub mod channel;
mod hub;
mod reader;
mod ws;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use hub::{ClientHandle, CloseReason, Hub, HubConfig, HubFull, HubStats, HubTopics};
pub use reader::Update;

/// Who a stream connection belongs to, from the upgrade request's query string.
///
/// The gateway's `KeyRing` implements it with the contract's signature scheme: message
/// `"{ts}\n{nonce}\nGET\n/v1/stream\n"`, query `key=..&ts=..&nonce=..&sig=..`.
pub trait StreamAuth: Send + Sync {
    /// `Ok(None)`: no credentials, public channels only; `Ok(Some(account))`: a valid signature;
    /// `Err(message)`: credentials that do not verify, and the upgrade is refused with 401. A
    /// message starting with a contract code and a colon (`"stale_timestamp: ..."`) gives the
    /// error's code.
    fn account(&self, query: &str, now_ms: i64) -> Result<Option<String>, String>;
}

/// Shared by the handlers.
#[derive(Clone)]
struct AppState {
    hub: Arc<Hub>,
    auth: Arc<dyn StreamAuth>,
}

/// `GET /v1/stream` (WebSocket), `GET /v1/instruments`, and the page: `/` and `/assets/*`.
pub fn router(hub: Arc<Hub>, auth: Arc<dyn StreamAuth>) -> Router {
    Router::new()
        .route("/v1/stream", get(ws::upgrade))
        .route("/v1/instruments", get(assets::instruments))
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .with_state(AppState { hub, auth })
}
