//! Router-level checks that need no broker: the OpenAPI document matches the routes, and
//! requests refused before Kafka.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;
use tradestream_engine::Command;
use tradestream_runtime::KafkaConfig;

use super::*;

const INSTRUMENTS: &str = r#"
instruments:
  - symbol: BTC-USD
    tick-size: "0.01"
    lot-size: "0.0001"
    min-qty: "0.0001"
    max-qty: "1000"
    min-price: "1.00"
    max-price: "1000000.00"
"#;

fn state() -> Arc<GatewayState> {
    // Nothing listens there: these tests never reach the producer.
    let kafka = KafkaConfig::new("127.0.0.1:9");
    Arc::new(GatewayState {
        keys: KeyRing::new([], 30_000),
        instruments: tradestream_config::parse_instruments(INSTRUMENTS, "test").unwrap(),
        producer: OrderProducer::new(&kafka, "orders", Duration::from_millis(500)).unwrap(),
        idempotency: Idempotency::memory(60_000, 100, Duration::from_millis(100)),
        reads: Reads::default(),
        max_body_bytes: 16 * 1024,
        retry_after_secs: 1,
    })
}

fn documented() -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn the_openapi_document_lists_exactly_the_routes() {
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented(), routes);
}

#[tokio::test]
async fn every_route_is_served_and_nothing_else() {
    let app = router(state(), axum::Router::new());
    for (method, path) in ROUTES {
        let uri = path
            .replace("{symbol}", "BTC-USD")
            .replace("{order_id}", "o-1");
        let req = Request::builder()
            .method(*method)
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_ne!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&body).contains("no_route"),
            "{method} {uri} is not routed"
        );
    }
    let req = Request::builder()
        .uri("/v1/nothing")
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let req = Request::builder()
        .method("PUT")
        .uri("/v1/orders")
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn unsigned_commands_are_refused_and_oversized_bodies_first() {
    let app = router(state(), axum::Router::new());
    let req = Request::builder()
        .method("POST")
        .uri("/v1/orders")
        .body(Body::from("{}"))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "missing_auth");
    let req = Request::builder()
        .method("POST")
        .uri("/v1/orders")
        .body(Body::from(vec![b' '; 20_000]))
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

fn new_body(price: &str) -> orders::NewOrderBody {
    serde_json::from_str(&format!(
        r#"{{"order_id":"o-1","symbol":"BTC-USD","side":"buy","order_type":"limit","price":"{price}","qty":"1","tif":"gtc"}}"#
    ))
    .unwrap()
}

#[test]
fn orders_are_checked_with_the_engines_reasons() {
    let st = state();
    let refused =
        |price: &str| match orders::check_new(&st.instruments, "alice", &new_body(price), 1) {
            Err(orders::Refusal::Rejected(r)) => r.code(),
            other => panic!("expected a rejection, got {other:?}"),
        };
    assert_eq!(refused("100.001"), "price_off_tick");
    assert_eq!(refused("0.5"), "price_out_of_band");
    let unknown: orders::NewOrderBody = serde_json::from_str(
        r#"{"order_id":"o-1","symbol":"XYZ","side":"buy","order_type":"market","qty":"1","tif":"ioc"}"#,
    )
    .unwrap();
    assert!(matches!(
        orders::check_new(&st.instruments, "alice", &unknown, 1),
        Err(orders::Refusal::Rejected(
            tradestream_engine::RejectReason::UnknownSymbol
        ))
    ));
    let with_account: orders::NewOrderBody = serde_json::from_str(
        r#"{"order_id":"o-1","account":"mallory","symbol":"BTC-USD","side":"buy","order_type":"market","qty":"1","tif":"ioc"}"#,
    )
    .unwrap();
    assert!(matches!(
        orders::check_new(&st.instruments, "alice", &with_account, 1),
        Err(orders::Refusal::BadRequest("account_not_allowed", _))
    ));
}

#[test]
fn encoded_commands_decode_as_the_matcher_reads_them() {
    let st = state();
    let cmd = orders::check_new(&st.instruments, "alice", &new_body("100.50"), 42).unwrap();
    let bytes = orders::encode_new(&cmd);
    assert_eq!(
        tradestream_codec::json::decode_command(&bytes, 0),
        Command::New(cmd)
    );
    let cancel = orders::check_cancel(&st.instruments, "bob", "BTC-USD", "o-1", 43).unwrap();
    assert_eq!(
        tradestream_codec::json::decode_command(&orders::encode_cancel(&cancel), 0),
        Command::Cancel(cancel)
    );
    let body: orders::ReplaceBody = serde_json::from_str(r#"{"qty":"0.5"}"#).unwrap();
    let replace =
        orders::check_replace(&st.instruments, "alice", "BTC-USD", "o-1", &body, 44).unwrap();
    let decoded = tradestream_codec::json::decode_command(&orders::encode_replace(&replace), 0);
    assert_eq!(decoded, Command::Replace(replace));
}
