//! The routes and their handlers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tradestream_engine::Symbol;
use tradestream_store::{CandleRow, Interval, OrderStateRow, TopOfBookRow, TradeRow};

use crate::GatewayState;
use crate::auth::{AuthError, HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use crate::idempotency::{Claim, StoredAnswer, fingerprint, now_ms};
use crate::orders::{self, Refusal};

/// Every route the gateway serves itself (method, path in OpenAPI spelling). The OpenAPI
/// document lists exactly these (a unit test checks both ways).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/orders"),
    ("GET", "/v1/orders/{symbol}/{order_id}"),
    ("DELETE", "/v1/orders/{symbol}/{order_id}"),
    ("PATCH", "/v1/orders/{symbol}/{order_id}"),
    ("GET", "/v1/trades/{symbol}"),
    ("GET", "/v1/candles/{symbol}"),
    ("GET", "/v1/book/{symbol}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

/// The OpenAPI 3.1 document.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The gateway's own routes (no extra routes).
pub fn routes(state: Arc<GatewayState>) -> Router {
    Router::new()
        .route("/v1/orders", post(post_order))
        .route(
            "/v1/orders/{symbol}/{order_id}",
            get(get_order).delete(cancel_order).patch(replace_order),
        )
        .route("/v1/trades/{symbol}", get(get_trades))
        .route("/v1/candles/{symbol}", get(get_candles))
        .route("/v1/book/{symbol}", get(get_book))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(no_route)
        .with_state(state)
}

/// An error answer: `{"error":{"code","message"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn unavailable(code: &'static str, message: impl Into<String>, retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    fn body(&self) -> String {
        json!({"error": {"code": self.code, "message": self.message}}).to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = json_response(self.status, self.body());
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Overloaded => Self::unavailable(e.code(), e.to_string(), 1),
            _ => Self::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string()),
        }
    }
}

/// A path the router matched but whose parameters do not decode (bad percent-encoding…).
impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text())
    }
}

/// A query string that does not decode (`limit=abc`…).
impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
    }
}

async fn no_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no route {method} {}", uri.path()),
    )
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, AuthError> {
    headers
        .get(name)
        .ok_or_else(|| AuthError::MissingAuth(format!("header {name} is required")))?
        .to_str()
        .map_err(|_| AuthError::MissingAuth(format!("header {name} is not text")))
}

/// Checks the request's signature; returns the account.
async fn authenticate(
    state: &GatewayState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, ApiError> {
    let result = authenticate_inner(state, method, uri, headers, body).await;
    if let Err(e) = &result {
        metrics::counter!("tradestream_gateway_auth_failures_total", "code" => e.code).increment(1);
    }
    result
}

async fn authenticate_inner(
    state: &GatewayState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, ApiError> {
    let key = header_str(headers, HEADER_KEY)?;
    let ts = header_str(headers, HEADER_TIMESTAMP)?;
    let nonce = header_str(headers, HEADER_NONCE)?;
    let sig = header_str(headers, HEADER_SIGNATURE)?;
    let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let account =
        state
            .keys
            .verify(key, ts, nonce, sig, method.as_str(), target, body, now_ms())?;
    if state.idempotency.is_shared() {
        let ts_ms: i64 = ts.parse().unwrap_or(0);
        let forget = ts_ms.saturating_add(state.keys.recv_window_ms());
        match state.idempotency.shared_nonce(key, nonce, forget).await {
            Ok(true) => {}
            Ok(false) => return Err(AuthError::ReplayedNonce.into()),
            Err(e) => {
                return Err(ApiError::unavailable(
                    "unavailable",
                    format!("cannot check the nonce: {e}"),
                    state.retry_after_secs,
                ));
            }
        }
    }
    Ok(account)
}

/// Reads the body, refusing more than the limit with 413.
async fn read_body(
    state: &GatewayState,
    body: Body,
    headers: &HeaderMap,
) -> Result<Vec<u8>, ApiError> {
    let max = state.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {max} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, max)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| too_large())
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_syntax() || e.is_eof() {
            "invalid_json"
        } else {
            "invalid_request"
        };
        Refusal::BadRequest(what, format!("the body is not a valid request: {e}"))
    })
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::BadRequest(code, message) => ApiError::new(StatusCode::BAD_REQUEST, code, message),
        Refusal::Rejected(reason) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            reason.code(),
            format!("the engine would reject this order: {reason}"),
        ),
    }
}

/// What a command becomes: the record to produce (key = symbol) and the ids to answer with.
struct Produced {
    order_id: String,
    symbol: String,
    payload: Vec<u8>,
}

/// Runs one command request: body, auth, idempotency, validation, produce, answer.
async fn command(
    state: Arc<GatewayState>,
    request: &'static str,
    req: Request,
    build: impl FnOnce(&GatewayState, &str, &[u8], i64) -> Result<Produced, Refusal>,
) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let answer = async {
        let body = read_body(&state, body, &parts.headers).await?;
        let account =
            authenticate(&state, &parts.method, &parts.uri, &parts.headers, &body).await?;
        let idem_key = match parts.headers.get("idempotency-key") {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .filter(|k| {
                        (1..=64).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
                    })
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "invalid_idempotency_key",
                            "Idempotency-Key must be 1 to 64 visible ASCII characters",
                        )
                    })?
                    .to_owned(),
            ),
        };
        let guard = match idem_key {
            None => None,
            Some(key) => {
                let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
                let fp = fingerprint(&[parts.method.as_str().as_bytes(), target.as_bytes(), &body]);
                match state.idempotency.claim(&account, &key, fp).await {
                    Claim::Owner(g) => Some(g),
                    Claim::Answered(a) => {
                        metrics::counter!("tradestream_gateway_idempotent_replays_total")
                            .increment(1);
                        return Ok(stored_response(&a));
                    }
                    Claim::InFlight => {
                        return Err(ApiError::new(
                            StatusCode::CONFLICT,
                            "idempotency_in_flight",
                            "a request with this Idempotency-Key is still in flight or did not \
                             finish; retry",
                        ));
                    }
                    Claim::Mismatch => {
                        return Err(ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "idempotency_key_reused",
                            "this Idempotency-Key was used for a different request",
                        ));
                    }
                    Claim::Unavailable(why) => {
                        return Err(ApiError::unavailable(
                            "unavailable",
                            why,
                            state.retry_after_secs,
                        ));
                    }
                }
            }
        };
        let outcome = produce_command(&state, &account, &body, build).await;
        let stored = match &outcome {
            Ok(a) => Some(a.clone()),
            // Final refusals are remembered; a 503 is not (the retry runs anew).
            Err(e) if e.status.is_client_error() => Some(StoredAnswer {
                status: e.status.as_u16(),
                body: e.body(),
            }),
            Err(_) => None,
        };
        if let (Some(guard), Some(answer)) = (guard, stored) {
            guard.finish(&answer).await;
        }
        outcome.map(|a| stored_response(&a))
    }
    .await;
    let response = answer.unwrap_or_else(IntoResponse::into_response);
    let status = response.status().as_u16().to_string();
    metrics::counter!("tradestream_gateway_commands_total", "request" => request, "status" => status)
        .increment(1);
    metrics::histogram!("tradestream_gateway_command_seconds", "request" => request)
        .record(started.elapsed().as_secs_f64());
    response
}

async fn produce_command(
    state: &GatewayState,
    account: &str,
    body: &[u8],
    build: impl FnOnce(&GatewayState, &str, &[u8], i64) -> Result<Produced, Refusal>,
) -> Result<StoredAnswer, ApiError> {
    let p = build(state, account, body, now_ms()).map_err(refusal)?;
    let acked = state
        .producer
        .send(&p.symbol, &p.payload)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "order not acknowledged");
            ApiError::unavailable("broker_unavailable", e.to_string(), state.retry_after_secs)
        })?;
    let body = json!({
        "order_id": p.order_id,
        "symbol": p.symbol,
        "topic": state.producer.topic(),
        "partition": acked.partition,
        "offset": acked.offset,
    });
    Ok(StoredAnswer {
        status: StatusCode::ACCEPTED.as_u16(),
        body: body.to_string(),
    })
}

fn stored_response(a: &StoredAnswer) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, a.body.clone())
}

async fn post_order(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    command(state, "new", req, |st, account, body, ts| {
        let b: orders::NewOrderBody = parse_json(body)?;
        let cmd = orders::check_new(&st.instruments, account, &b, ts)?;
        Ok(Produced {
            order_id: b.order_id,
            symbol: b.symbol,
            payload: orders::encode_new(&cmd),
        })
    })
    .await
}

async fn cancel_order(
    State(state): State<Arc<GatewayState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Path((symbol, order_id)) = path?;
    Ok(
        command(state, "cancel", req, move |st, account, _body, ts| {
            let cmd = orders::check_cancel(&st.instruments, account, &symbol, &order_id, ts)?;
            Ok(Produced {
                order_id,
                symbol,
                payload: orders::encode_cancel(&cmd),
            })
        })
        .await,
    )
}

async fn replace_order(
    State(state): State<Arc<GatewayState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Path((symbol, order_id)) = path?;
    Ok(
        command(state, "replace", req, move |st, account, body, ts| {
            let b: orders::ReplaceBody = parse_json(body)?;
            let cmd = orders::check_replace(&st.instruments, account, &symbol, &order_id, &b, ts)?;
            Ok(Produced {
                order_id,
                symbol,
                payload: orders::encode_replace(&cmd),
            })
        })
        .await,
    )
}

// ---- reads ----

fn known_symbol(state: &GatewayState, symbol: &str) -> Result<(), ApiError> {
    let known = Symbol::new(symbol)
        .ok()
        .is_some_and(|s| state.instruments.get(&s).is_some());
    if known {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_symbol",
            format!("no instrument {symbol:?}"),
        ))
    }
}

fn read_error(e: crate::reads::ReadError) -> ApiError {
    match e {
        crate::reads::ReadError::NoStore => {
            ApiError::new(StatusCode::NOT_IMPLEMENTED, "no_store", e.to_string())
        }
        crate::reads::ReadError::Store(_) => {
            ApiError::unavailable("store_unavailable", e.to_string(), 1)
        }
    }
}

/// The largest `limit` a list read accepts.
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    interval: Option<String>,
}

fn limit(q: &ListQuery) -> Result<usize, ApiError> {
    match q.limit {
        None => Ok(100),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_limit",
            format!("limit must be 1 to {MAX_LIMIT}"),
        )),
    }
}

#[derive(Serialize)]
struct OrderView {
    order_id: String,
    account: String,
    symbol: String,
    side: tradestream_engine::Side,
    status: &'static str,
    price: Option<String>,
    qty: String,
    filled_qty: String,
    avg_price: Option<String>,
    updated_ts: i64,
}

impl From<OrderStateRow> for OrderView {
    fn from(r: OrderStateRow) -> Self {
        OrderView {
            order_id: r.order_id,
            account: r.account,
            symbol: r.symbol,
            side: r.side,
            status: r.status.as_str(),
            price: r.price.map(|p| p.to_string()),
            qty: r.qty.to_string(),
            filled_qty: r.filled_qty.to_string(),
            avg_price: r.avg_price.map(|p| p.to_string()),
            updated_ts: r.updated_ts_ms,
        }
    }
}

#[derive(Serialize)]
struct TradeView {
    symbol: String,
    seq: i64,
    ts: i64,
    price: String,
    qty: String,
    taker_side: tradestream_engine::Side,
}

impl From<TradeRow> for TradeView {
    fn from(r: TradeRow) -> Self {
        TradeView {
            symbol: r.symbol,
            seq: r.seq,
            ts: r.ts_ms,
            price: r.price.to_string(),
            qty: r.qty.to_string(),
            taker_side: r.taker_side,
        }
    }
}

#[derive(Serialize)]
struct CandleView {
    symbol: String,
    interval: &'static str,
    start: i64,
    open: String,
    high: String,
    low: String,
    close: String,
    volume: String,
    vwap: String,
    trade_count: i64,
    closed: bool,
}

impl From<CandleRow> for CandleView {
    fn from(r: CandleRow) -> Self {
        CandleView {
            symbol: r.symbol,
            interval: r.interval.as_str(),
            start: r.bucket_start_ms,
            open: r.open.to_string(),
            high: r.high.to_string(),
            low: r.low.to_string(),
            close: r.close.to_string(),
            volume: r.volume.to_string(),
            vwap: r.vwap.to_string(),
            trade_count: r.trade_count,
            closed: r.closed,
        }
    }
}

#[derive(Serialize)]
struct Level {
    price: String,
    qty: String,
}

#[derive(Serialize)]
struct BookView {
    symbol: String,
    bid: Option<Level>,
    ask: Option<Level>,
    ts: Option<i64>,
}

impl BookView {
    fn of(symbol: &str, r: Option<TopOfBookRow>) -> Self {
        let level = |l: Option<(tradestream_engine::Decimal, tradestream_engine::Decimal)>| {
            l.map(|(p, q)| Level {
                price: p.to_string(),
                qty: q.to_string(),
            })
        };
        match r {
            Some(r) => BookView {
                symbol: r.symbol,
                bid: level(r.bid),
                ask: level(r.ask),
                ts: Some(r.ts_ms),
            },
            None => BookView {
                symbol: symbol.to_owned(),
                bid: None,
                ask: None,
                ts: None,
            },
        }
    }
}

fn ok_json<T: Serialize>(v: &T) -> Response {
    json_response(StatusCode::OK, serde_json::to_string(v).unwrap_or_default())
}

async fn get_order(
    State(state): State<Arc<GatewayState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Path((symbol, order_id)) = path?;
    let (parts, _) = req.into_parts();
    let account = authenticate(&state, &parts.method, &parts.uri, &parts.headers, b"").await?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "order_not_found",
            format!("no order {order_id:?} of yours on {symbol}"),
        )
    };
    let row = state
        .reads
        .order(&symbol, &order_id)
        .await
        .map_err(read_error)?
        // Another account's order is not there for this one.
        .filter(|r| r.account == account)
        .ok_or_else(not_found)?;
    Ok(ok_json(&OrderView::from(row)))
}

async fn get_trades(
    State(state): State<Arc<GatewayState>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (Path(symbol), Query(q)) = (path?, query?);
    known_symbol(&state, &symbol)?;
    let n = limit(&q)?;
    let rows = state.reads.trades(&symbol, n).await.map_err(read_error)?;
    let trades: Vec<TradeView> = rows.into_iter().map(TradeView::from).collect();
    Ok(ok_json(&json!({"symbol": symbol, "trades": trades})))
}

async fn get_candles(
    State(state): State<Arc<GatewayState>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (Path(symbol), Query(q)) = (path?, query?);
    known_symbol(&state, &symbol)?;
    let n = limit(&q)?;
    let interval = match q.interval.as_deref() {
        None => Interval::M1,
        Some(s) => Interval::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_interval",
                "interval must be 1s, 1m or 1h",
            )
        })?,
    };
    let rows = state
        .reads
        .candles(&symbol, interval, n)
        .await
        .map_err(read_error)?;
    let candles: Vec<CandleView> = rows.into_iter().map(CandleView::from).collect();
    Ok(ok_json(
        &json!({"symbol": symbol, "interval": interval.as_str(), "candles": candles}),
    ))
}

async fn get_book(
    State(state): State<Arc<GatewayState>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(symbol) = path?;
    known_symbol(&state, &symbol)?;
    let row = state.reads.top_of_book(&symbol).await.map_err(read_error)?;
    Ok(ok_json(&BookView::of(&symbol, row)))
}

// ---- operations ----

async fn healthz() -> Response {
    ok_json(&json!({"status": "ok"}))
}

/// How long `/readyz` waits for the broker.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

async fn readyz(State(state): State<Arc<GatewayState>>) -> Response {
    let checks = async {
        state
            .producer
            .ready(READY_TIMEOUT)
            .await
            .map_err(|e| format!("broker: {e}"))?;
        state.reads.ready().await?;
        state
            .idempotency
            .ping()
            .await
            .map_err(|e| format!("redis: {e}"))
    };
    match tokio::time::timeout(READY_TIMEOUT * 2, checks).await {
        Ok(Ok(())) => ok_json(&json!({"status": "ready"})),
        Ok(Err(e)) => ApiError::unavailable("not_ready", e, 1).into_response(),
        Err(_) => {
            ApiError::unavailable("not_ready", "readiness checks timed out", 1).into_response()
        }
    }
}

async fn metrics(State(state): State<Arc<GatewayState>>) -> Response {
    metrics::gauge!("tradestream_gateway_nonces_held").set(state.keys.nonces_held() as f64);
    let text = crate::metrics_handle().map_or_else(
        || "# another metrics recorder is installed in this process\n".to_owned(),
        |h| h.render(),
    );
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

async fn openapi() -> Response {
    json_response(StatusCode::OK, OPENAPI.to_owned())
}
