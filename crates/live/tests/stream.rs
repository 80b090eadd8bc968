//! `/v1/stream` against a real broker: records written to the topics with the codecs reach the
//! clients subscribed to their channel and no others; the private channel needs a signature
//! and carries only its account's notifications; a client that never reads is dropped with
//! "slow consumer" while its queue stays bounded; malformed requests get errors.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tradestream_engine::Side;
use tradestream_live::{Hub, HubConfig, StreamAuth, router};

const WAIT: Duration = Duration::from_secs(30);

fn alice_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn bob_key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn auth() -> Arc<dyn StreamAuth> {
    Arc::new(
        TestOnlyKeyRing::default()
            .with("k-alice", "alice", &alice_key())
            .with("k-bob", "bob", &bob_key()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_channels_deliver_to_their_subscribers_only() {
    let _broker = hold_broker();
    let topics = topics("-pub");
    let hub = tokio::task::block_in_place(|| hub(topics.clone(), |_| {}));
    let addr = serve(router(hub.clone(), auth())).await;

    let mut a = connect(addr, "").await;
    subscribe(
        &mut a,
        &["book:BTC-USD", "trades:BTC-USD", "candles:BTC-USD:1s"],
    )
    .await;
    let (ack, _) = wait_for(&mut a, WAIT, "subscribed", |v| v["op"] == "subscribed").await;
    assert_eq!(ack["channels"].as_array().map(Vec::len), Some(3), "{ack}");
    // The book's current state comes at once, empty here.
    let (book, _) = wait_for(&mut a, WAIT, "book", |v| channel_of(v) == "book:BTC-USD").await;
    assert_eq!(book["data"]["bids"], json!([]));

    let mut b = connect(addr, "").await;
    subscribe(&mut b, &["trades:ETH-USD"]).await;
    wait_for(&mut b, WAIT, "subscribed", |v| v["op"] == "subscribed").await;

    let t = topics.clone();
    tokio::task::block_in_place(|| {
        produce(&[
            (
                &t.market_data,
                "BTC-USD",
                delta("BTC-USD", 1, Side::Buy, 10_000, 20_000),
            ),
            (
                &t.market_data,
                "BTC-USD",
                delta("BTC-USD", 2, Side::Sell, 10_100, 5_000),
            ),
            (
                &t.market_data,
                "BTC-USD",
                top("BTC-USD", 3, Some((10_000, 20_000)), Some((10_100, 5_000))),
            ),
            (&t.trades, "BTC-USD", trade("BTC-USD", 1, 10_050, 10_000)),
            (
                &t.candles,
                "BTC-USD",
                candle("BTC-USD", "1s", 1_700_000_000_000, "100.50"),
            ),
            (
                &t.candles,
                "BTC-USD",
                candle("BTC-USD", "1m", 1_700_000_000_000, "100.50"),
            ),
            (&t.trades, "ETH-USD", trade("ETH-USD", 1, 300_000, 1_000)),
            (
                &t.notifications,
                "alice",
                notification("alice", 1, "o-1", "hello"),
            ),
        ]);
    });

    // Messages of a, in the order they came, across its three channels.
    let mut kept = Vec::new();
    let book = wait_for_kept(&mut a, &mut kept, WAIT, "a book with both sides", |v| {
        channel_of(v) == "book:BTC-USD" && v["data"]["ask"].is_object()
    })
    .await;
    let d = &book["data"];
    assert_eq!(
        d["bids"],
        json!([{"price": "100.00", "qty": "2.0000"}]),
        "{d}"
    );
    assert_eq!(
        d["asks"],
        json!([{"price": "101.00", "qty": "0.5000"}]),
        "{d}"
    );
    assert_eq!(d["bid"], json!({"price": "100.00", "qty": "2.0000"}));
    let trade = wait_for_kept(&mut a, &mut kept, WAIT, "a trade", |v| {
        channel_of(v) == "trades:BTC-USD"
    })
    .await;
    assert_eq!(trade["data"][0]["price"], "100.50");
    assert_eq!(trade["data"][0]["qty"], "1.0000");
    assert!(
        trade["data"][0].get("maker_account").is_none(),
        "the tape shows no accounts"
    );
    let c = wait_for_kept(&mut a, &mut kept, WAIT, "a candle", |v| {
        channel_of(v) == "candles:BTC-USD:1s"
    })
    .await;
    assert_eq!(c["data"]["close"], "100.50");

    let (eth, _) = wait_for(&mut b, WAIT, "the ETH trade", |v| {
        channel_of(v) == "trades:ETH-USD"
    })
    .await;
    assert_eq!(eth["data"][0]["price"], "3000.00");
    // Nothing of other channels, on either client.
    kept.extend(drain(&mut a, Duration::from_millis(500)).await);
    for v in kept {
        assert!(
            ["book:BTC-USD", "trades:BTC-USD", "candles:BTC-USD:1s"].contains(&channel_of(&v)),
            "a got {v}"
        );
    }
    for v in drain(&mut b, Duration::from_millis(500)).await {
        assert_eq!(channel_of(&v), "trades:ETH-USD", "b got {v}");
    }

    // A late subscriber gets the book and the recent trades at once.
    let mut late = connect(addr, "").await;
    subscribe(&mut late, &["book:BTC-USD", "trades:BTC-USD"]).await;
    wait_for(&mut late, WAIT, "the current book", |v| {
        channel_of(v) == "book:BTC-USD" && v["data"]["bids"][0]["price"] == "100.00"
    })
    .await;
    wait_for(&mut late, WAIT, "the recent trade", |v| {
        channel_of(v) == "trades:BTC-USD"
    })
    .await;

    // A level at zero leaves the ladder.
    tokio::task::block_in_place(|| {
        produce(&[(
            &t.market_data,
            "BTC-USD",
            delta("BTC-USD", 4, Side::Sell, 10_100, 0),
        )]);
    });
    wait_for(&mut a, WAIT, "the ask level removed", |v| {
        channel_of(v) == "book:BTC-USD" && v["data"]["asks"] == json!([])
    })
    .await;
    hub.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_channel_needs_a_signature_and_carries_its_accounts_only() {
    let _broker = hold_broker();
    let topics = topics("-priv");
    let hub = tokio::task::block_in_place(|| hub(topics.clone(), |_| {}));
    let addr = serve(router(hub.clone(), auth())).await;

    // A wrong signature, a stale timestamp and an unknown key are refused with 401.
    let now = now_ms();
    let forged = signed_query("k-alice", &bob_key(), now, "n1");
    let stale = signed_query("k-alice", &alice_key(), now - 120_000, "n2");
    let unknown = signed_query("k-carol", &alice_key(), now, "n3");
    for (query, code) in [
        (forged, "bad_signature"),
        (stale, "stale_timestamp"),
        (unknown, "unknown_key"),
    ] {
        let url = format!("ws://{addr}/v1/stream{query}");
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401);
                let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default())
                    .into_owned();
                assert!(body.contains(code), "{code}: {body}");
            }
            other => panic!("{code}: expected 401, got {other:?}"),
        }
    }
    // Unsigned: the notifications channel is refused with an error message.
    let mut anon = connect(addr, "").await;
    subscribe(&mut anon, &["notifications"]).await;
    let (err, _) = wait_for(&mut anon, WAIT, "an error", |v| v.get("error").is_some()).await;
    assert_eq!(err["error"]["code"], "missing_auth");

    let mut alice = connect(addr, &signed_query("k-alice", &alice_key(), now_ms(), "a1")).await;
    subscribe(&mut alice, &["notifications"]).await;
    let (ack, _) = wait_for(&mut alice, WAIT, "subscribed", |v| v["op"] == "subscribed").await;
    assert_eq!(ack["channels"], json!(["notifications"]));
    let mut bob = connect(addr, &signed_query("k-bob", &bob_key(), now_ms(), "b1")).await;
    subscribe(&mut bob, &["notifications"]).await;
    wait_for(&mut bob, WAIT, "subscribed", |v| v["op"] == "subscribed").await;
    // The same nonce again is a replay.
    let replay = format!(
        "ws://{addr}/v1/stream{}",
        signed_query("k-bob", &bob_key(), now_ms(), "b1")
    );
    assert!(tokio_tungstenite::connect_async(replay).await.is_err());

    let t = topics.clone();
    tokio::task::block_in_place(|| {
        produce(&[
            (
                &t.notifications,
                "bob",
                notification("bob", 1, "o-b", "for bob"),
            ),
            (
                &t.notifications,
                "alice",
                notification("alice", 1, "o-a", "for alice"),
            ),
            (
                &t.notifications,
                "carol",
                notification("carol", 1, "o-c", "for carol"),
            ),
        ]);
    });
    let (n, before) = wait_for(&mut alice, WAIT, "alice's notification", |v| {
        channel_of(v) == "notifications"
    })
    .await;
    assert_eq!(n["data"][0]["account"], "alice");
    assert_eq!(n["data"][0]["order_id"], "o-a");
    assert!(before.is_empty(), "{before:?}");
    let (n, _) = wait_for(&mut bob, WAIT, "bob's notification", |v| {
        channel_of(v) == "notifications"
    })
    .await;
    assert_eq!(n["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(n["data"][0]["order_id"], "o-b");
    let more = drain(&mut alice, Duration::from_millis(500)).await;
    assert!(more.is_empty(), "alice got more: {more:?}");
    let anon_got = drain(&mut anon, Duration::from_millis(100)).await;
    assert!(
        anon_got
            .iter()
            .all(|v| v["op"] == "subscribed" && v["channels"] == json!([])),
        "the unsigned client got {anon_got:?}"
    );
    hub.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_is_dropped_and_its_queue_stays_bounded() {
    let _broker = hold_broker();
    const QUEUE: usize = 64;
    const BYTES: usize = 1 << 20;
    let topics = topics("-slow");
    let hub = tokio::task::block_in_place(|| {
        hub(topics.clone(), |c: &mut HubConfig| {
            c.client_queue = QUEUE;
            c.client_queue_bytes = BYTES;
        })
    });
    let addr = serve(router(hub.clone(), auth())).await;

    // The slow client: a small receive buffer, subscribed, then never read until dropped.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(addr).await.expect("connect");
    let (mut slow, _) = tokio_tungstenite::client_async(
        format!("ws://{addr}/v1/stream"),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("upgrade");
    subscribe(&mut slow, &["trades:BTC-USD"]).await;
    let mut fast = connect(addr, "").await;
    subscribe(&mut fast, &["trades:BTC-USD"]).await;
    wait_for(&mut fast, WAIT, "subscribed", |v| v["op"] == "subscribed").await;
    wait_until_async(|| hub.clients() == 2).await;

    // The fast client reads on in the background, counting what it gets.
    let got = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let fast_reader = {
        let got = got.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = fast.next().await {
                if m.is_text() {
                    got.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    let started = Instant::now();
    let mut seq = 0u64;
    let mut longest = 0;
    while hub.stats().slow_consumers.load(Ordering::Relaxed) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the slow client was not dropped (longest queue {longest})"
        );
        let t = topics.trades.clone();
        let batch: Vec<_> = (0..2000)
            .map(|_| {
                seq += 1;
                (
                    t.as_str(),
                    "BTC-USD",
                    trade("BTC-USD", seq, 10_000 + (seq % 100) as i64, 1),
                )
            })
            .collect();
        tokio::task::block_in_place(|| produce(&batch));
        longest = longest.max(hub.longest_queue());
        assert!(longest <= QUEUE, "a queue above its bound: {longest}");
        let bytes = hub.largest_queue_bytes();
        assert!(bytes <= BYTES, "a queue above its byte bound: {bytes}");
    }
    eprintln!(
        "slow client dropped after {seq} trades in {:?}; longest queue seen {longest} (bound {QUEUE})",
        started.elapsed()
    );
    assert_eq!(hub.clients(), 1, "only the fast client is left");
    let before = got.load(Ordering::Relaxed);
    assert!(before > 0, "the fast client got nothing");
    let t = topics.trades.clone();
    tokio::task::block_in_place(|| {
        produce(&[(t.as_str(), "BTC-USD", trade("BTC-USD", seq + 1, 10_000, 1))])
    });
    wait_until_async(|| got.load(Ordering::Relaxed) > before).await;
    fast_reader.abort();

    // Reading now, the slow client finds its backlog, then the close frame with the reason.
    let deadline = tokio::time::Instant::now() + WAIT;
    let close = loop {
        match tokio::time::timeout_at(deadline, slow.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), "slow consumer");
    hub.shutdown();
}

async fn wait_until_async(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Needs no broker: the hub is fed by the test (`Hub::apply`), and never reads topics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_errors_and_the_connection_lives_on() {
    let _broker = hold_broker();
    let config = HubConfig::new(
        tradestream_runtime::KafkaConfig::new("127.0.0.1:9"),
        instruments(),
    );
    let hub = Arc::new(Hub::new(config));
    let addr = serve(router(hub.clone(), auth())).await;
    let mut ws = connect(addr, "").await;
    let cases: [(&str, &str); 7] = [
        ("not json", "bad_request"),
        ("{\"op\":\"fly\"}", "bad_request"),
        (
            "{\"op\":\"subscribe\",\"channels\":\"book:BTC-USD\"}",
            "bad_request",
        ),
        (
            "{\"op\":\"subscribe\",\"channels\":[\"book:NOPE\"]}",
            "unknown_symbol",
        ),
        (
            "{\"op\":\"subscribe\",\"channels\":[\"candles:BTC-USD:7m\"]}",
            "unknown_interval",
        ),
        (
            "{\"op\":\"subscribe\",\"channels\":[\"weather:BTC-USD\"]}",
            "unknown_channel",
        ),
        ("[1,2,3]", "bad_request"),
    ];
    for (text, code) in cases {
        ws.send_text(text).await;
        let (err, _) = wait_for(&mut ws, WAIT, code, |v| v.get("error").is_some()).await;
        assert_eq!(err["error"]["code"], code, "{text}: {err}");
    }
    ws.send_binary().await;
    let (err, _) = wait_for(&mut ws, WAIT, "binary", |v| v.get("error").is_some()).await;
    assert_eq!(err["error"]["code"], "bad_request");

    // Still connected: a valid subscription works, fed without a broker.
    subscribe(&mut ws, &["book:BTC-USD"]).await;
    wait_for(&mut ws, WAIT, "the empty book", |v| {
        channel_of(v) == "book:BTC-USD"
    })
    .await;
    hub.apply(vec![tradestream_live::Update::Delta {
        symbol: "BTC-USD".into(),
        side: Side::Sell,
        price: "101.00".parse().expect("decimal"),
        qty: "3".parse().expect("decimal"),
        ts: 1,
        seq: 1,
    }]);
    wait_for(&mut ws, WAIT, "the level", |v| {
        channel_of(v) == "book:BTC-USD" && v["data"]["asks"][0]["qty"] == "3"
    })
    .await;
    assert_eq!(hub.clients(), 1);
}

trait SendRaw {
    async fn send_text(&mut self, text: &str);
    async fn send_binary(&mut self);
}

impl SendRaw for Ws {
    async fn send_text(&mut self, text: &str) {
        futures::SinkExt::send(self, Message::text(text))
            .await
            .expect("send");
    }
    async fn send_binary(&mut self) {
        futures::SinkExt::send(self, Message::binary(vec![1u8, 2, 3]))
            .await
            .expect("send");
    }
}
