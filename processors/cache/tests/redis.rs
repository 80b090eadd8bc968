//! The cache's writes and reads against a real, private `redis-server`: the version guard of the
//! Lua scripts (an older row written after a newer one is refused), trimming, TTLs, the session
//! marker, and the reader's answers and errors.

use std::time::Duration;

use tradestream_cache::keys::offset_field;
use tradestream_cache::{
    CacheError, CacheReader, CacheSettings, CacheWriter, Changes, KeyLayout, Progress, RedisUrl,
};
use tradestream_engine::{Decimal, Side};
use tradestream_store::model::{
    CandleRow, Interval, OrderStateRow, OrderStatus, TopOfBookRow, TradeRow,
};
use tradestream_testkit::RedisServer;

const SUITE: &str = "the cache's Redis tests";

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn writer(server: &RedisServer, prefix: &str, settings: CacheSettings) -> CacheWriter {
    CacheWriter::connect(
        &RedisUrl::new(server.url()),
        KeyLayout::new(prefix),
        settings,
    )
    .expect("connect")
}

fn reader(server: &RedisServer, prefix: &str) -> (tokio::runtime::Runtime, CacheReader) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reader = rt
        .block_on(CacheReader::connect(
            &RedisUrl::new(server.url()),
            KeyLayout::new(prefix),
            Duration::from_secs(2),
        ))
        .expect("reader");
    (rt, reader)
}

fn order(seq: i64, status: OrderStatus, filled: &str) -> OrderStateRow {
    OrderStateRow {
        order_id: "o-1".into(),
        account: "alice".into(),
        symbol: "BTC-USD".into(),
        side: Side::Buy,
        status,
        price: Some(d("100.00")),
        qty: d("2"),
        filled_qty: d(filled),
        avg_price: None,
        notional: d("0"),
        updated_ts_ms: 1_000 + seq,
        source_partition: 1,
        seq,
    }
}

fn top(seq: i64, bid: &str) -> TopOfBookRow {
    TopOfBookRow {
        symbol: "BTC-USD".into(),
        bid: Some((d(bid), d("1"))),
        ask: None,
        ts_ms: 5,
        source_partition: 1,
        seq,
    }
}

fn candle(seq: i64, closed: bool, close: &str) -> CandleRow {
    CandleRow {
        symbol: "BTC-USD".into(),
        interval: Interval::S1,
        bucket_start_ms: 1_000,
        open: d("100.00"),
        high: d("101.00"),
        low: d("99.00"),
        close: d(close),
        volume: d("1"),
        turnover: d("100.00"),
        vwap: d("100.000000"),
        trade_count: 1,
        closed,
        source_partition: 1,
        seq,
    }
}

fn trade(seq: i64) -> TradeRow {
    TradeRow {
        symbol: "BTC-USD".into(),
        source_partition: 1,
        seq,
        ts_ms: 1_000 + seq,
        price: d("100.00"),
        qty: d("1"),
        maker_order_id: format!("m-{seq}"),
        maker_account: "a".into(),
        taker_order_id: format!("t-{seq}"),
        taker_account: "b".into(),
        taker_side: Side::Sell,
    }
}

fn one(f: impl FnOnce(&mut Changes)) -> Changes {
    let mut c = Changes::default();
    f(&mut c);
    c
}

#[test]
fn an_older_version_written_after_a_newer_one_is_refused() {
    let Some(server) = RedisServer::start(SUITE) else {
        return;
    };
    let mut w = writer(&server, "older:", CacheSettings::default());
    let (rt, r) = reader(&server, "older:");

    // Order state: seq 7 written, then seq 5 (a replay of an older state) and 7 again.
    let newer = order(7, OrderStatus::PartiallyFilled, "1");
    let report = w.write(&one(|c| c.order(newer.clone())), None).unwrap();
    assert_eq!((report.written, report.refused), (1, 0));
    for older in [order(5, OrderStatus::New, "0"), newer.clone()] {
        let report = w.write(&one(|c| c.order(older)), None).unwrap();
        assert_eq!((report.written, report.refused), (0, 1));
    }
    assert_eq!(rt.block_on(r.order("BTC-USD", "o-1")).unwrap(), Some(newer));
    // A newer one replaces it.
    let filled = order(9, OrderStatus::Filled, "2");
    assert_eq!(
        w.write(&one(|c| c.order(filled.clone())), None)
            .unwrap()
            .written,
        1
    );
    assert_eq!(
        rt.block_on(r.order("BTC-USD", "o-1")).unwrap(),
        Some(filled)
    );

    // Top of book.
    w.write(&one(|c| c.top(top(30, "100.00"))), None).unwrap();
    assert_eq!(
        w.write(&one(|c| c.top(top(29, "99.00"))), None)
            .unwrap()
            .refused,
        1
    );
    assert_eq!(
        rt.block_on(r.top_of_book("BTC-USD")).unwrap(),
        Some(top(30, "100.00"))
    );

    // Candles: closed at a seq beats open at that seq; an older open never comes back.
    w.write(&one(|c| c.candle(candle(6, false, "100.50"))), None)
        .unwrap();
    assert_eq!(
        w.write(&one(|c| c.candle(candle(6, true, "100.50"))), None)
            .unwrap()
            .written,
        1
    );
    for older in [candle(6, false, "100.50"), candle(5, false, "100.40")] {
        assert_eq!(w.write(&one(|c| c.candle(older)), None).unwrap().refused, 1);
    }
    assert_eq!(
        rt.block_on(r.candles("BTC-USD", Interval::S1, 10)).unwrap(),
        [candle(6, true, "100.50")]
    );

    // Within one checkpoint the older version is dropped before it is sent.
    let mut c = Changes::default();
    c.top(top(40, "101.00"));
    c.top(top(35, "98.00"));
    w.write(&c, None).unwrap();
    assert_eq!(
        rt.block_on(r.top_of_book("BTC-USD")).unwrap(),
        Some(top(40, "101.00"))
    );
}

#[test]
fn trades_keep_the_newest_n_and_a_replay_adds_nothing() {
    let Some(server) = RedisServer::start(SUITE) else {
        return;
    };
    let settings = CacheSettings {
        trades_kept: 5,
        ..CacheSettings::default()
    };
    let mut w = writer(&server, "trades:", settings);
    let (rt, r) = reader(&server, "trades:");
    let report = w
        .write(&one(|c| (1..=8).for_each(|s| c.trade(trade(s)))), None)
        .unwrap();
    // Only the newest five of the checkpoint are sent.
    assert_eq!(report.written, 5);
    let seqs = |rows: Vec<TradeRow>| rows.iter().map(|t| t.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(rt.block_on(r.trades("BTC-USD", 10)).unwrap()),
        [8, 7, 6, 5, 4]
    );
    assert_eq!(seqs(rt.block_on(r.trades("BTC-USD", 2)).unwrap()), [8, 7]);
    assert!(rt.block_on(r.trades("BTC-USD", 0)).unwrap().is_empty());
    // A replay of everything: nothing new; the older ones are trimmed again at once.
    let report = w
        .write(&one(|c| (1..=3).for_each(|s| c.trade(trade(s)))), None)
        .unwrap();
    assert_eq!((report.written, report.refused), (0, 3));
    let report = w
        .write(&one(|c| (4..=8).for_each(|s| c.trade(trade(s)))), None)
        .unwrap();
    assert_eq!((report.written, report.refused), (0, 5));
    assert_eq!(
        seqs(rt.block_on(r.trades("BTC-USD", 10)).unwrap()),
        [8, 7, 6, 5, 4]
    );
    assert!(rt.block_on(r.trades("ETH-USD", 10)).unwrap().is_empty());
}

#[test]
fn terminal_orders_and_candles_expire_live_orders_do_not() {
    let Some(server) = RedisServer::start(SUITE) else {
        return;
    };
    let mut w = writer(&server, "ttl:", CacheSettings::default());
    let mut live = order(1, OrderStatus::New, "0");
    live.order_id = "live".into();
    let mut done = order(2, OrderStatus::Cancelled, "0");
    done.order_id = "done".into();
    w.write(
        &one(|c| {
            c.order(live);
            c.order(done);
            c.candle(candle(3, false, "100.00"));
        }),
        None,
    )
    .unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let ttl = |conn: &mut redis::Connection, key: &str| -> i64 {
        redis::cmd("PTTL").arg(key).query(conn).unwrap()
    };
    assert_eq!(ttl(&mut conn, "ttl:order:BTC-USD:live"), -1, "no TTL");
    let day = 24 * 3_600_000;
    let t = ttl(&mut conn, "ttl:order:BTC-USD:done");
    assert!(t > day - 60_000 && t <= day, "{t}");
    let t = ttl(&mut conn, "ttl:candle:BTC-USD:1s:1000");
    assert!(t > 0 && t <= 6 * 3_600_000, "{t}");
}

#[test]
fn progress_moves_forward_only_and_needs_the_session_marker() {
    let Some(mut server) = RedisServer::start(SUITE) else {
        return;
    };
    let mut w = writer(&server, "progress:", CacheSettings::default());
    let progress = |at: i64| Progress {
        fields: vec![(offset_field("trades", 0), at)],
    };
    // No session: refused as lost.
    let err = w
        .write(&Changes::default(), Some(("g", "i-1", &progress(5))))
        .unwrap_err();
    assert!(matches!(err, CacheError::Lost), "{err}");
    w.start_session("g", "i-1").unwrap();
    w.write(&Changes::default(), Some(("g", "i-1", &progress(5))))
        .unwrap();
    w.write(&Changes::default(), Some(("g", "i-1", &progress(3))))
        .unwrap();
    assert_eq!(w.progress("g").unwrap()[&offset_field("trades", 0)], 5);
    w.write(&Changes::default(), Some(("g", "i-1", &progress(9))))
        .unwrap();
    assert_eq!(w.progress("g").unwrap()[&offset_field("trades", 0)], 9);

    // Redis restarts empty: the writer's connection fails, a new one finds no marker.
    server.restart();
    let err = w.write(&Changes::default(), Some(("g", "i-1", &progress(10))));
    assert!(
        err.as_ref().is_err_and(CacheError::is_unavailable),
        "{err:?}"
    );
    let mut w = writer(&server, "progress:", CacheSettings::default());
    let err = w
        .write(&Changes::default(), Some(("g", "i-1", &progress(10))))
        .unwrap_err();
    assert!(matches!(err, CacheError::Lost), "{err}");
    assert!(w.progress("g").unwrap().is_empty());
}

#[test]
fn the_reader_answers_misses_and_fails_fast_when_redis_is_down() {
    let Some(mut server) = RedisServer::start(SUITE) else {
        return;
    };
    let (rt, r) = reader(&server, "reader:");
    assert_eq!(rt.block_on(r.top_of_book("NOPE")).unwrap(), None);
    assert_eq!(rt.block_on(r.order("NOPE", "x")).unwrap(), None);
    assert!(
        rt.block_on(r.candles("NOPE", Interval::M1, 5))
            .unwrap()
            .is_empty()
    );
    rt.block_on(r.ping()).unwrap();

    // Garbage under a row key is an error, not a panic.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: () = redis::cmd("HSET")
        .arg("reader:book:BAD")
        .arg("row")
        .arg("{not json")
        .query(&mut conn)
        .unwrap();
    let err = rt.block_on(r.top_of_book("BAD")).unwrap_err();
    assert!(matches!(err, CacheError::Corrupt { .. }), "{err}");

    server.stop();
    let started = std::time::Instant::now();
    let err = rt.block_on(r.top_of_book("BTC-USD")).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // And it reconnects once Redis is back.
    server.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while rt.block_on(r.ping()).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the reader did not reconnect"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
