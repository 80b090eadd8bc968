//! The live page's files (under `crates/live/web/`, compiled into the binary) and
//! `GET /v1/instruments`, which the page's symbol list comes from.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::hub::error_message;

/// (path under `/assets/`, content type, bytes).
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    ),
    (
        "sign.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/sign.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../web/style.css"),
    ),
];

const INDEX: &str = include_str!("../web/index.html");

/// Scripts and styles from this origin only; the stream is this origin's WebSocket.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                   style-src 'self'; script-src 'self'; frame-ancestors 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`.
pub(crate) async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

/// `GET /assets/{path}`.
pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, body)) => page(content_type, body),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            error_message("not_found", "no such asset").to_string(),
        )
            .into_response(),
    }
}

/// `GET /v1/instruments`: the configured instruments, decimals as strings.
pub(crate) async fn instruments(State(app): State<AppState>) -> Json<Value> {
    let list: Vec<Value> = app
        .hub
        .instruments()
        .iter()
        .map(|i| {
            json!({
                "symbol": i.symbol.as_str(),
                "tick_size": i.tick_size.to_string(),
                "lot_size": i.lot_size.to_string(),
                "min_qty": i.qty_decimal(i.min_qty).to_string(),
                "max_qty": i.qty_decimal(i.max_qty).to_string(),
                "min_price": i.price_decimal(i.min_price).to_string(),
                "max_price": i.price_decimal(i.max_price).to_string(),
            })
        })
        .collect();
    Json(json!({ "instruments": list }))
}
