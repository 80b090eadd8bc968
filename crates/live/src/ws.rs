//! One WebSocket connection: the client's requests go to the hub, the client's queue goes out.
//!
//! The connection never holds more than its queue: while the socket is slow the queue fills and
//! the hub drops the client; the connection then sends a close frame (1008 "slow consumer")
//! after whatever frame is in flight, waiting at most [`CLOSE_WAIT`] for the socket to take it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::hub::error_message;
use crate::{AppState, Hub};

/// Largest client message accepted (subscriptions are short).
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;
/// How long a closing connection waits for its close frame to be written.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Error codes of the contract a [`StreamAuth`](crate::StreamAuth) message may start with.
const AUTH_CODES: [&str; 5] = [
    "bad_signature",
    "stale_timestamp",
    "replayed_nonce",
    "unknown_key",
    "missing_auth",
];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `GET /v1/stream`: authenticates (if credentials are given), then upgrades.
pub(crate) async fn upgrade(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let account = match app.auth.account(query.as_deref().unwrap_or(""), now_ms()) {
        Ok(a) => a,
        Err(message) => {
            let code = message
                .split_once(':')
                .map(|(c, _)| c.trim())
                .filter(|c| AUTH_CODES.contains(c))
                .unwrap_or("bad_signature");
            let body = error_message(code, &message);
            return (
                StatusCode::UNAUTHORIZED,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response();
        }
    };
    let hub = app.hub.clone();
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| connection(hub, socket, account))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(CLOSE_WAIT, socket.send(frame)).await;
}

async fn connection(hub: std::sync::Arc<Hub>, mut socket: WebSocket, account: Option<String>) {
    let Ok(client) = hub.connect(account) else {
        close(&mut socket, 1013, "too many clients").await;
        return;
    };
    let id = client.id;
    let mut queue = client.queue;
    let mut closed = client.closed;
    let queued_bytes = client.queued_bytes;
    let reason = loop {
        tokio::select! {
            reason = &mut closed => break reason.ok(),
            msg = queue.recv() => {
                let Some(msg) = msg else { break None };
                queued_bytes.fetch_sub(msg.len(), std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    biased;
                    reason = &mut closed => break reason.ok(),
                    sent = socket.send(Message::Text(msg.as_ref().into())) => {
                        if sent.is_err() { break None }
                    }
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => hub.request(id, text.as_str()),
                Some(Ok(Message::Binary(_))) => hub.request(id, "binary frame"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
            },
        }
    };
    hub.disconnect(id);
    // The queue is dropped first: a slow client's backlog is not kept while closing.
    drop(queue);
    if let Some(reason) = reason {
        let (code, text) = reason.frame();
        close(&mut socket, code, text).await;
    }
}
