//! What the live stream's tests share: a broker with topics, records written with the codecs,
//! the router on a free port, a WebSocket client, and a test-only Ed25519 key ring.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use futures::{SinkExt, StreamExt};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tradestream_codec::avro::{Framing, Provenance, encode_event};
use tradestream_config::topics::TopicLayout;
use tradestream_engine::{
    Account, Event, EventKind, Instruments, LevelQty, OrderId, Price, Qty, Seq, Side, Symbol,
};
use tradestream_live::{Hub, HubConfig, HubTopics, StreamAuth};
use tradestream_runtime::KafkaConfig;
use tradestream_testkit::{KafkaNode, TestBroker};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The repository's instruments.
pub fn instruments() -> Instruments {
    let root = tradestream_testkit::repo_root();
    tradestream_config::load_instruments(&root.join("instruments.yaml")).expect("instruments")
}

/// The repository's topic layout.
pub fn layout() -> TopicLayout {
    let root = tradestream_testkit::repo_root();
    tradestream_config::topics::load_topics(&root.join("topics.yaml")).expect("topics.yaml")
}

/// A started broker: its Kafka node (none: embedded) and address.
type Running = (Option<KafkaNode>, String);

/// The broker of this test binary, and how many tests hold it.
static BROKER: Mutex<(usize, Option<Running>)> = Mutex::new((0, None));

/// A test's hold on the binary's broker (embedded in this process, or a private Apache Kafka
/// node with `TRADESTREAM_TEST_BROKER=kafka`): tests that overlap share it and keep apart by
/// topic names; the last one to finish stops a Kafka node (a static would never be dropped, and
/// the JVM would outlive the tests).
#[must_use = "the broker stops when the last hold is dropped"]
pub struct BrokerHold;

/// Starts the broker if no running test holds it.
pub fn hold_broker() -> BrokerHold {
    let mut b = BROKER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if b.1.is_none() {
        b.1 = Some(match TestBroker::from_env() {
            TestBroker::Embedded => {
                let addr = tradestream_broker::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
                    .expect("embedded broker");
                (None, addr.to_string())
            }
            TestBroker::Kafka => {
                let node = KafkaNode::start();
                let addr = node.addr().to_owned();
                (Some(node), addr)
            }
        });
    }
    b.0 += 1;
    BrokerHold
}

impl Drop for BrokerHold {
    fn drop(&mut self) {
        let mut b = BROKER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        b.0 -= 1;
        if b.0 == 0 {
            // Kills and removes a Kafka node; the embedded broker lives as long as the process.
            b.1 = None;
        }
    }
}

/// The address of the broker a test holds ([`hold_broker`]).
pub fn broker() -> String {
    let b = BROKER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    b.1.as_ref()
        .map(|(_, addr)| addr.clone())
        .expect("the test holds the broker (common::hold_broker)")
}

/// The four topics the hub reads, named with `suffix`, created on the broker.
pub fn topics(suffix: &str) -> HubTopics {
    let layout = layout();
    let t = HubTopics {
        market_data: format!("market-data{suffix}"),
        trades: format!("trades{suffix}"),
        candles: format!("candles{suffix}"),
        notifications: format!("notifications{suffix}"),
    };
    let specs = [
        ("market-data", &t.market_data),
        ("trades", &t.trades),
        ("candles", &t.candles),
        ("notifications", &t.notifications),
    ]
    .map(|(like, name)| {
        let mut spec = layout.get(like).expect("topic in topics.yaml").clone();
        spec.name = name.clone();
        spec.co_partition = None;
        spec
    });
    tradestream_runtime::topics::apply(&TopicLayout::new(specs.to_vec()), &kafka())
        .expect("topics");
    t
}

pub fn kafka() -> KafkaConfig {
    KafkaConfig::new(broker())
}

/// A started hub on `topics`, waiting (bounded) until it reads every partition.
pub fn hub(topics: HubTopics, tune: impl FnOnce(&mut HubConfig)) -> Arc<Hub> {
    let mut config = HubConfig::new(kafka(), instruments());
    config.topics = topics;
    tune(&mut config);
    let hub = Hub::start(config).expect("hub starts");
    wait_until(
        Duration::from_secs(60),
        "the hub assigns 24 partitions",
        || {
            hub.stats()
                .partitions
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 24
        },
    );
    hub
}

pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Serves `router` on a free loopback port.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

// ---- records ---------------------------------------------------------------------------------

/// Writes `(topic, key, value)` records and waits for their acks.
pub fn produce(records: &[(&str, &str, Vec<u8>)]) {
    let producer: BaseProducer = kafka().producer().create().expect("producer");
    for (topic, key, value) in records {
        let mut record = BaseRecord::to(topic).key(key.as_bytes()).payload(value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("acks");
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One engine event in the matcher's Avro encoding.
pub fn event(symbol: &str, seq: u64, kind: EventKind) -> Vec<u8> {
    let e = Event {
        seq: Seq(seq),
        ts: now_ms(),
        symbol: Symbol::new(symbol).expect("symbol"),
        kind,
    };
    let mut out = Vec::new();
    let p = Provenance {
        source_partition: 0,
        source_offset: seq as i64,
        seq,
    };
    encode_event(&instruments(), &e, p, Framing::SingleObject, &mut out);
    out
}

pub fn trade(symbol: &str, seq: u64, price_ticks: i64, qty_lots: u64) -> Vec<u8> {
    event(
        symbol,
        seq,
        EventKind::Trade {
            price: Price(price_ticks),
            qty: Qty(qty_lots),
            maker_order_id: OrderId::new("m-1").expect("id"),
            maker_account: Account::new("maker").expect("account"),
            maker_leaves: Qty(0),
            taker_order_id: OrderId::new("t-1").expect("id"),
            taker_account: Account::new("taker").expect("account"),
            taker_side: Side::Buy,
            taker_leaves: Qty(0),
        },
    )
}

pub fn delta(symbol: &str, seq: u64, side: Side, price_ticks: i64, qty_lots: u64) -> Vec<u8> {
    event(
        symbol,
        seq,
        EventKind::BookDelta {
            side,
            price: Price(price_ticks),
            qty: Qty(qty_lots),
        },
    )
}

pub fn top(symbol: &str, seq: u64, bid: Option<(i64, u64)>, ask: Option<(i64, u64)>) -> Vec<u8> {
    let level = |(p, q): (i64, u64)| LevelQty {
        price: Price(p),
        qty: Qty(q),
    };
    event(
        symbol,
        seq,
        EventKind::TopOfBook {
            bid: bid.map(level),
            ask: ask.map(level),
        },
    )
}

pub fn candle(symbol: &str, interval: &str, bucket_start_ms: i64, close: &str) -> Vec<u8> {
    let d = |s: &str| s.parse().expect("decimal");
    tradestream_codec::records::encode_candle(
        &tradestream_codec::records::CandleRecord {
            symbol: symbol.into(),
            interval: interval.into(),
            bucket_start_ms,
            open: d(close),
            high: d(close),
            low: d(close),
            close: d(close),
            volume: d("1"),
            turnover: d(close),
            vwap: d(close),
            trade_count: 1,
            closed: false,
            source_partition: 0,
            seq: 1,
        },
        Framing::SingleObject,
    )
    .expect("candle encodes")
}

pub fn notification(account: &str, seq: i64, order_id: &str, text: &str) -> Vec<u8> {
    tradestream_codec::records::encode_notification(
        &tradestream_codec::records::NotificationRecord {
            account: account.into(),
            source_partition: 0,
            seq,
            ts_ms: now_ms(),
            kind: "accepted".into(),
            order_id: order_id.into(),
            symbol: "BTC-USD".into(),
            text: text.into(),
        },
        Framing::SingleObject,
    )
    .expect("notification encodes")
}

// ---- the WebSocket client ------------------------------------------------------------------

pub async fn connect(addr: SocketAddr, query: &str) -> Ws {
    let url = format!("ws://{addr}/v1/stream{query}");
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket upgrade")
        .0
}

pub async fn send(ws: &mut Ws, value: &Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("send");
}

pub async fn subscribe(ws: &mut Ws, channels: &[&str]) {
    send(
        ws,
        &serde_json::json!({"op": "subscribe", "channels": channels}),
    )
    .await;
}

/// The next text message as JSON, or None after `timeout` (or when the connection ends).
pub async fn next_json(ws: &mut Ws, timeout: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match msg.ok()? {
            Message::Text(t) => return serde_json::from_str(t.as_str()).ok(),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// Messages until one matches `pred` (bounded); returns it and every message before it.
pub async fn wait_for(
    ws: &mut Ws,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> (Value, Vec<Value>) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(v) = next_json(ws, left).await else {
            panic!("no message {what} within {timeout:?}; got {seen:#?}");
        };
        if pred(&v) {
            return (v, seen);
        }
        seen.push(v);
    }
}

/// Like [`wait_for`], for a client whose messages may come in any order across channels (each
/// topic partition is read on its own, so a candle may be flushed before the book update written
/// ahead of it): a message already received and kept in `kept` is taken first; messages that do
/// not match are kept for the next wait.
pub async fn wait_for_kept(
    ws: &mut Ws,
    kept: &mut Vec<Value>,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    if let Some(i) = kept.iter().position(&pred) {
        return kept.remove(i);
    }
    let (v, seen) = wait_for(ws, timeout, what, pred).await;
    kept.extend(seen);
    v
}

/// Every message that arrives within `window`.
pub async fn drain(ws: &mut Ws, window: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + window;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_json(ws, left).await {
            Some(v) => seen.push(v),
            None => return seen,
        }
    }
}

pub fn channel_of(v: &Value) -> &str {
    v["channel"].as_str().unwrap_or("")
}

// ---- a test-only key ring ------------------------------------------------------------------

/// A test-only [`StreamAuth`]: real Ed25519 verification of the contract's stream signature
/// (`"{ts}\n{nonce}\nGET\n/v1/stream\n"`), a 30 s window and nonce replay refusal, over keys
/// given in the test. Production uses the gateway's `KeyRing`.
#[derive(Default)]
pub struct TestOnlyKeyRing {
    keys: Vec<(String, String, VerifyingKey)>,
    seen: Mutex<HashSet<(String, String)>>,
}

impl TestOnlyKeyRing {
    pub fn with(mut self, key_id: &str, account: &str, key: &SigningKey) -> Self {
        self.keys
            .push((key_id.into(), account.into(), key.verifying_key()));
        self
    }
}

impl StreamAuth for TestOnlyKeyRing {
    fn account(&self, query: &str, now_ms: i64) -> Result<Option<String>, String> {
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_owned())
        };
        let Some(key) = param("key") else {
            return Ok(None);
        };
        let (ts, nonce, sig) = match (param("ts"), param("nonce"), param("sig")) {
            (Some(t), Some(n), Some(s)) => (t, n, s),
            _ => return Err("missing_auth: key without ts, nonce and sig".into()),
        };
        let (_, account, public) = self
            .keys
            .iter()
            .find(|(k, _, _)| *k == key)
            .ok_or("unknown_key: no such key")?;
        let ts_ms: i64 = ts.parse().map_err(|_| "bad_signature: bad ts")?;
        if (now_ms - ts_ms).abs() > 30_000 {
            return Err("stale_timestamp: outside the window".into());
        }
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .ok()
            .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
            .ok_or("bad_signature: not a signature")?;
        let message = format!("{ts}\n{nonce}\nGET\n/v1/stream\n");
        public
            .verify(message.as_bytes(), &sig)
            .map_err(|_| "bad_signature: does not verify")?;
        if !self
            .seen
            .lock()
            .map_err(|_| "lock")?
            .insert((key.clone(), nonce))
        {
            return Err("replayed_nonce: nonce seen".into());
        }
        Ok(Some(account.clone()))
    }
}

/// The query of a signed stream upgrade.
pub fn signed_query(key_id: &str, key: &SigningKey, ts: i64, nonce: &str) -> String {
    let sig = key.sign(format!("{ts}\n{nonce}\nGET\n/v1/stream\n").as_bytes());
    format!(
        "?key={key_id}&ts={ts}&nonce={nonce}&sig={}",
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    )
}
