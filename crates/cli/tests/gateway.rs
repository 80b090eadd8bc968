//! The gateway against a real broker (embedded, or Apache Kafka with
//! `TRADESTREAM_TEST_BROKER=kafka`): signed order entry acknowledged by the broker, the abuse
//! cases refused before Kafka, idempotency, reads falling back to the store when the cache
//! fails, and 503 once the broker is gone.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use rdkafka::message::Message as _;
use serde_json::{Value, json};
use tradestream_engine::{Command, Engine, EventKind, RejectReason};
use tradestream_gateway::auth::{encode_public_key, encode_signature, message};
use tradestream_gateway::idempotency::now_ms;
use tradestream_gateway::reads::{CacheFuture, MarketCache};
use tradestream_gateway::{GatewayConfig, GatewayState};
use tradestream_runtime::KafkaConfig;
use tradestream_runtime::partition::PartitionReader;
use tradestream_store::{Batch, Interval, OrderStateRow, OrderStatus, Store as _};

/// A cache that always fails: every read must come from the store.
#[derive(Debug)]
struct FailingCache;

fn down<'a, T>() -> CacheFuture<'a, T> {
    Box::pin(async { Err("cache is down".into()) })
}

impl MarketCache for FailingCache {
    fn top_of_book<'a>(&'a self, _: &'a str) -> CacheFuture<'a, tradestream_store::TopOfBookRow> {
        down()
    }
    fn trades<'a>(
        &'a self,
        _: &'a str,
        _: usize,
    ) -> CacheFuture<'a, Vec<tradestream_store::TradeRow>> {
        down()
    }
    fn candles<'a>(
        &'a self,
        _: &'a str,
        _: Interval,
        _: usize,
    ) -> CacheFuture<'a, Vec<tradestream_store::CandleRow>> {
        down()
    }
    fn order<'a>(&'a self, _: &'a str, _: &'a str) -> CacheFuture<'a, OrderStateRow> {
        down()
    }
    fn ping(&self) -> CacheFuture<'_, ()> {
        Box::pin(async { Ok(Some(())) })
    }
}

/// One client key.
struct Client {
    key_id: &'static str,
    key: SigningKey,
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

/// A signed (or deliberately mis-signed) request.
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    body: &'a str,
    nonce: String,
    ts: i64,
    idem: Option<&'a str>,
}

impl<'a> Req<'a> {
    fn new(method: &'a str, path: &'a str, body: &'a str) -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Req {
            method,
            path,
            body,
            nonce: format!("n-{n}"),
            ts: now_ms(),
            idem: None,
        }
    }
}

struct Gateway {
    addr: SocketAddr,
}

impl Gateway {
    async fn send(&self, who: &Client, r: &Req<'_>, sig_override: Option<String>) -> Answer {
        let sig = sig_override.unwrap_or_else(|| {
            encode_signature(&who.key.sign(&message(
                r.ts,
                &r.nonce,
                r.method,
                r.path,
                r.body.as_bytes(),
            )))
        });
        let mut headers = vec![
            ("X-TS-Key", who.key_id.to_owned()),
            ("X-TS-Timestamp", r.ts.to_string()),
            ("X-TS-Nonce", r.nonce.clone()),
            ("X-TS-Signature", sig),
            ("Content-Type", "application/json".to_owned()),
        ];
        if let Some(k) = r.idem {
            headers.push(("Idempotency-Key", k.to_owned()));
        }
        http(self.addr, r.method, r.path, &headers, r.body).await
    }

    async fn get(&self, path: &str) -> Answer {
        http(self.addr, "GET", path, &[], "").await
    }
}

/// A minimal HTTP/1.1 exchange (`Connection: close`, the answer read to its end).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Answer {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("gateway listens");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("the gateway answers within 30 s")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, payload) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let retry_after = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.trim().to_owned());
    let body = serde_json::from_str(payload).unwrap_or_else(|_| Value::String(payload.to_owned()));
    Answer {
        status,
        retry_after,
        body,
    }
}

fn code(a: &Answer) -> &str {
    a.body["error"]["code"].as_str().unwrap_or("")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tradestream-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_keys(dir: &Path, clients: &[(&Client, &str)]) -> PathBuf {
    let mut yaml = String::from("keys:\n");
    for (c, account) in clients {
        yaml.push_str(&format!(
            "  - key: {}\n    account: {account}\n    public-key: {}\n",
            c.key_id,
            encode_public_key(&c.key.verifying_key())
        ));
    }
    let path = dir.join("keys.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The records of `orders` as (partition, offset, key, JSON value).
fn orders_records(addr: &str) -> Vec<(i32, i64, String, Value)> {
    let reader = PartitionReader::new(&KafkaConfig::new(addr), Duration::from_secs(10)).unwrap();
    let mut out = Vec::new();
    for p in 0..common::PARTITIONS {
        reader
            .read_to_end("orders", p, 0, |m| {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                let v = serde_json::from_slice(m.payload().unwrap_or_default()).unwrap();
                out.push((p, m.offset(), key, v));
            })
            .unwrap();
    }
    out
}

fn order_row(order_id: &str, account: &str) -> OrderStateRow {
    OrderStateRow {
        order_id: order_id.to_owned(),
        account: account.to_owned(),
        symbol: "BTC-USD".to_owned(),
        side: tradestream_engine::Side::Buy,
        status: OrderStatus::New,
        price: Some("100.50".parse().unwrap()),
        qty: "2".parse().unwrap(),
        filled_qty: "0".parse().unwrap(),
        avg_price: None,
        notional: "0".parse().unwrap(),
        updated_ts_ms: 1,
        source_partition: 0,
        seq: 1,
    }
}

#[test]
fn gateway_order_entry_abuse_reads_and_broker_down() {
    let _serial = common::serial();
    let (broker, addr) = common::broker_with_topics();
    let dir = temp_dir("gateway");
    let alice = Client {
        key_id: "k-alice",
        key: SigningKey::from_bytes(&[1; 32]),
    };
    let bob = Client {
        key_id: "k-bob",
        key: SigningKey::from_bytes(&[2; 32]),
    };
    let mallory = Client {
        key_id: "k-mallory",
        key: SigningKey::from_bytes(&[3; 32]),
    };
    let keys = write_keys(&dir, &[(&alice, "alice"), (&bob, "bob")]);

    // A store holding one order of alice's; the cache in front of it always fails.
    let db = dir.join("store.db");
    let mut store = tradestream_store::sqlite::SqliteStore::open(&db).unwrap();
    store
        .write(&Batch {
            orders: vec![order_row("o-stored", "alice")],
            ..Batch::default()
        })
        .unwrap();
    drop(store);

    let mut cfg = GatewayConfig::new(KafkaConfig::new(addr.clone()), keys);
    cfg.instruments = common::root().join("instruments.yaml");
    cfg.store = Some(format!("sqlite:{}", db.display()).parse().unwrap());
    cfg.cache = Some(Arc::new(FailingCache));
    cfg.produce_timeout = Duration::from_secs(3);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (gw, stop) = start_gateway(&rt, &cfg);

    let order = |id: &str, price: &str| {
        json!({"order_id": id, "symbol": "BTC-USD", "side": "buy", "order_type": "limit",
               "price": price, "qty": "2", "tif": "gtc"})
        .to_string()
    };
    // Every 202, with what the record it names must hold.
    let acks: Vec<(Value, Value)> = rt.block_on(async {
        let mut acks = Vec::new();
        assert_eq!(gw.get("/healthz").await.status, 200);
        let ready = gw.get("/readyz").await;
        assert_eq!(ready.status, 200, "{}", ready.body);

        // Accepted only with the broker's offset.
        let body = order("o-1", "100.50");
        let ok = gw
            .send(&alice, &Req::new("POST", "/v1/orders", &body), None)
            .await;
        assert_eq!(ok.status, 202, "{}", ok.body);
        assert_eq!(ok.body["topic"], "orders");
        assert_eq!(ok.body["order_id"], "o-1");
        let p = ok.body["partition"].as_i64().unwrap() as i32;
        assert_eq!(
            p,
            tradestream_runtime::partitioner::partition_for(b"BTC-USD", common::PARTITIONS)
        );
        acks.push((
            ok.body,
            json!({"type": "new", "order_id": "o-1", "account": "alice", "symbol": "BTC-USD",
                   "side": "buy", "order_type": "limit", "price": "100.50", "qty": "2"}),
        ));

        // Authentication.
        let r = Req::new("POST", "/v1/orders", &body);
        let wrong = encode_signature(&bob.key.sign(b"something else"));
        assert_eq!(
            code(&gw.send(&alice, &r, Some(wrong)).await),
            "bad_signature"
        );
        let r = Req::new("POST", "/v1/orders", &body);
        let a = gw.send(&mallory, &r, None).await;
        assert_eq!((a.status, code(&a)), (401, "unknown_key"));
        let mut r = Req::new("POST", "/v1/orders", &body);
        r.ts -= 60_000;
        assert_eq!(code(&gw.send(&alice, &r, None).await), "stale_timestamp");
        let b2 = order("o-2", "100.50");
        let r = Req::new("POST", "/v1/orders", &b2);
        let ok = gw.send(&alice, &r, None).await;
        assert_eq!(ok.status, 202, "{}", ok.body);
        acks.push((
            ok.body,
            json!({"type": "new", "order_id": "o-2", "account": "alice"}),
        ));
        let a = gw.send(&alice, &r, None).await;
        assert_eq!((a.status, code(&a)), (401, "replayed_nonce"));

        // Idempotency: the same answer again, one record.
        let b3 = order("o-3", "100.50");
        let mut r = Req::new("POST", "/v1/orders", &b3);
        r.idem = Some("idem-1");
        let first = gw.send(&alice, &r, None).await;
        assert_eq!(first.status, 202, "{}", first.body);
        let mut again = Req::new("POST", "/v1/orders", &b3);
        again.idem = Some("idem-1");
        let second = gw.send(&alice, &again, None).await;
        assert_eq!((second.status, &second.body), (202, &first.body));
        acks.push((
            first.body,
            json!({"type": "new", "order_id": "o-3", "account": "alice"}),
        ));
        let mut other = Req::new("POST", "/v1/orders", &body);
        other.idem = Some("idem-1");
        assert_eq!(
            code(&gw.send(&alice, &other, None).await),
            "idempotency_key_reused"
        );

        // Refused before Kafka.
        let big = " ".repeat(20_000);
        let a = gw
            .send(&alice, &Req::new("POST", "/v1/orders", &big), None)
            .await;
        assert_eq!(a.status, 413);
        let a = gw
            .send(
                &alice,
                &Req::new("POST", "/v1/orders", "{\"order_id\":"),
                None,
            )
            .await;
        assert_eq!((a.status, code(&a)), (400, "invalid_json"));
        assert!(
            a.body["error"]["message"].as_str().unwrap().contains("EOF"),
            "{}",
            a.body
        );
        let unknown = order("o-4", "100.50").replace("BTC-USD", "NOPE-USD");
        let a = gw
            .send(&alice, &Req::new("POST", "/v1/orders", &unknown), None)
            .await;
        assert_eq!((a.status, code(&a)), (422, "unknown_symbol"));
        let off_tick = order("o-5", "100.505");
        let a = gw
            .send(&alice, &Req::new("POST", "/v1/orders", &off_tick), None)
            .await;
        assert_eq!((a.status, code(&a)), (422, "price_off_tick"));
        let with_account = json!({"order_id": "o-6", "account": "bob", "symbol": "BTC-USD",
            "side": "buy", "order_type": "market", "qty": "1", "tif": "ioc"})
        .to_string();
        let a = gw
            .send(&alice, &Req::new("POST", "/v1/orders", &with_account), None)
            .await;
        assert_eq!((a.status, code(&a)), (400, "account_not_allowed"));

        // bob cancels alice's order: the command carries bob (the engine refuses not_owner);
        // bob replaces it too.
        let a = gw
            .send(
                &bob,
                &Req::new("DELETE", "/v1/orders/BTC-USD/o-1", ""),
                None,
            )
            .await;
        assert_eq!(a.status, 202, "{}", a.body);
        acks.push((
            a.body,
            json!({"type": "cancel", "order_id": "o-1", "account": "bob"}),
        ));
        let a = gw
            .send(
                &bob,
                &Req::new("PATCH", "/v1/orders/BTC-USD/o-1", r#"{"qty":"1"}"#),
                None,
            )
            .await;
        assert_eq!(a.status, 202, "{}", a.body);
        acks.push((
            a.body,
            json!({"type": "replace", "order_id": "o-1", "account": "bob", "qty": "1"}),
        ));
        let a = gw
            .send(
                &alice,
                &Req::new("PATCH", "/v1/orders/BTC-USD/o-1", r#"{}"#),
                None,
            )
            .await;
        assert_eq!((a.status, code(&a)), (422, "nothing_to_replace"));

        // Reads: the cache fails, the store answers; only the owner sees an order.
        let a = gw
            .send(
                &alice,
                &Req::new("GET", "/v1/orders/BTC-USD/o-stored", ""),
                None,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["status"], "new");
        assert_eq!(a.body["price"], "100.50");
        let a = gw
            .send(
                &bob,
                &Req::new("GET", "/v1/orders/BTC-USD/o-stored", ""),
                None,
            )
            .await;
        assert_eq!((a.status, code(&a)), (404, "order_not_found"));
        assert_eq!(gw.get("/v1/book/BTC-USD").await.status, 200);
        assert_eq!(gw.get("/v1/trades/BTC-USD?limit=5").await.status, 200);
        assert_eq!(gw.get("/v1/candles/BTC-USD?interval=1s").await.status, 200);
        let metrics = gw.get("/metrics").await.body;
        let metrics = metrics.as_str().unwrap();
        assert!(
            metrics.contains("tradestream_gateway_cache_fallbacks_total")
                && metrics.contains("why=\"error\""),
            "{metrics}"
        );
        let doc = gw.get("/openapi.json").await;
        assert_eq!(doc.body["openapi"], "3.1.0");
        acks
    });

    // What reached `orders`: keyed by symbol, in its partition, with the authenticated accounts,
    // and one record for the idempotent pair.
    let records = orders_records(&addr);
    for (answer, want) in &acks {
        assert_acked(&records, answer, want);
    }
    let by_id = |id: &str| -> Vec<&(i32, i64, String, Value)> {
        records.iter().filter(|r| r.3["order_id"] == id).collect()
    };
    assert_eq!(by_id("o-3").len(), 1, "{records:?}");
    assert_eq!(by_id("o-2").len(), 1);
    for id in ["o-4", "o-5", "o-6"] {
        assert!(by_id(id).is_empty(), "{id} must not reach Kafka");
    }
    let o1 = by_id("o-1");
    assert_eq!(o1.len(), 3, "{o1:?}"); // new (alice), cancel (bob), replace (bob)
    let expected_p =
        tradestream_runtime::partitioner::partition_for(b"BTC-USD", common::PARTITIONS);
    for (p, _, key, v) in &o1 {
        assert_eq!((*p, key.as_str()), (expected_p, "BTC-USD"));
        assert!(v["ts"].as_i64().is_some());
    }
    let accounts: Vec<(&str, &str)> = o1
        .iter()
        .map(|r| {
            (
                r.3["type"].as_str().unwrap(),
                r.3["account"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        accounts,
        [("new", "alice"), ("cancel", "bob"), ("replace", "bob")]
    );

    // The engine refuses bob's commands with not_owner.
    let instruments =
        tradestream_config::load_instruments(&common::root().join("instruments.yaml")).unwrap();
    let mut engine: Engine = Engine::new(instruments);
    let mut events = Vec::new();
    let mut in_partition: Vec<_> = records.iter().filter(|r| r.0 == expected_p).collect();
    in_partition.sort_by_key(|r| r.1);
    for r in in_partition {
        let bytes = serde_json::to_vec(&r.3).unwrap();
        let cmd = tradestream_codec::json::decode_command(&bytes, 0);
        assert!(!matches!(cmd, Command::Invalid(_)), "{cmd:?}");
        engine.apply(&cmd, &mut events);
    }
    let not_owner = events
        .iter()
        .filter(|e| {
            matches!(&e.kind, EventKind::Rejected { reason: RejectReason::NotOwner, account, .. }
                if account.as_str() == "bob")
        })
        .count();
    assert_eq!(not_owner, 2, "{events:?}");

    // The broker goes away: no 202, a 503 with Retry-After, and not ready.
    drop(broker);
    rt.block_on(async {
        let body = order("o-down", "100.50");
        let mut r = Req::new("POST", "/v1/orders", &body);
        r.idem = Some("idem-down");
        let a = gw.send(&alice, &r, None).await;
        assert_eq!(
            (a.status, code(&a)),
            (503, "broker_unavailable"),
            "{}",
            a.body
        );
        assert_eq!(a.retry_after.as_deref(), Some("1"));
        // Not remembered: the retry runs again (and fails again while the broker is down).
        let mut retry = Req::new("POST", "/v1/orders", &body);
        retry.idem = Some("idem-down");
        assert_eq!(gw.send(&alice, &retry, None).await.status, 503);
        let ready = gw.get("/readyz").await;
        assert_eq!(ready.status, 503, "{}", ready.body);
    });
    let _ = stop.send(());
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The record a 202 names (`answer`'s topic, partition and offset) is in `records` (the
/// `orders` topic read back): keyed by the answer's symbol, for the answer's order, and holding
/// every field of `want`.
fn assert_acked(records: &[(i32, i64, String, Value)], answer: &Value, want: &Value) {
    assert_eq!(answer["topic"], "orders", "{answer}");
    let (p, offset) = (answer["partition"].as_i64(), answer["offset"].as_i64());
    let record = records
        .iter()
        .find(|r| Some(i64::from(r.0)) == p && Some(r.1) == offset)
        .unwrap_or_else(|| panic!("no record at the 202's partition and offset: {answer}"));
    assert_eq!(
        Some(record.2.as_str()),
        answer["symbol"].as_str(),
        "key of {answer}"
    );
    assert_eq!(
        record.3["order_id"], answer["order_id"],
        "{answer}: {:?}",
        record.3
    );
    for (field, value) in want.as_object().expect("fields") {
        assert_eq!(
            &record.3[field], value,
            "{field} of the record {answer} names: {:?}",
            record.3
        );
    }
}

/// Starts a gateway in `rt` with `cfg`; it stops when the returned sender is dropped.
fn start_gateway(
    rt: &tokio::runtime::Runtime,
    cfg: &GatewayConfig,
) -> (Gateway, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gw = rt.block_on(async {
        let state = Arc::new(GatewayState::from_config(cfg).await.unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(tradestream_gateway::serve_on(
            listener,
            state,
            tradestream_gateway::ExtraRoutes::new(),
            async {
                let _ = stopped.await;
            },
        ));
        Gateway { addr }
    });
    (gw, stop)
}

/// Two instances behind one load balancer share idempotency keys and nonces through Redis.
#[test]
fn two_gateways_share_idempotency_keys_and_nonces_through_redis() {
    let Some(redis_url) = tradestream_testkit::service("REDIS_URL", "gateway Redis test") else {
        return;
    };
    let _serial = common::serial();
    let (_broker, addr) = common::broker_with_topics();
    let dir = temp_dir("gateway-redis");
    let alice = Client {
        key_id: "k-alice",
        key: SigningKey::from_bytes(&[1; 32]),
    };
    let keys = write_keys(&dir, &[(&alice, "alice")]);
    let mut cfg = GatewayConfig::new(KafkaConfig::new(addr.clone()), keys);
    cfg.instruments = common::root().join("instruments.yaml");
    cfg.redis_url = Some(redis_url);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (a, _stop_a) = start_gateway(&rt, &cfg);
    let (b, _stop_b) = start_gateway(&rt, &cfg);
    // Unique per run: Redis outlives the test.
    let run = format!("{}-{}", std::process::id(), now_ms());
    let order_id = format!("o-{run}");
    let idem = format!("idem-{run}");
    let body = json!({"order_id": order_id, "symbol": "ETH-USD", "side": "sell",
        "order_type": "limit", "price": "2000.00", "qty": "1", "tif": "gtc"})
    .to_string();
    let first = rt.block_on(async {
        assert_eq!(a.get("/readyz").await.status, 200);
        let mut r = Req::new("POST", "/v1/orders", &body);
        r.idem = Some(&idem);
        let first = a.send(&alice, &r, None).await;
        assert_eq!(first.status, 202, "{}", first.body);
        // The very same request (same nonce) through the other instance: a replay.
        let replay = b.send(&alice, &r, None).await;
        assert_eq!((replay.status, code(&replay)), (401, "replayed_nonce"));
        // A fresh signature with the same key through the other instance: the first answer.
        let mut again = Req::new("POST", "/v1/orders", &body);
        again.idem = Some(&idem);
        let second = b.send(&alice, &again, None).await;
        assert_eq!((second.status, &second.body), (202, &first.body));
        first.body
    });
    let records = orders_records(&addr);
    let n = records
        .iter()
        .filter(|r| r.3["order_id"] == order_id.as_str())
        .count();
    assert_eq!(n, 1, "one record for one idempotency key");
    assert_acked(
        &records,
        &first,
        &json!({"type": "new", "account": "alice", "symbol": "ETH-USD", "price": "2000.00"}),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
