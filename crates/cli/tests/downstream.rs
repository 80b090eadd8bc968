//! The downstream workers (trade recorder, market data, notifier) on a real broker, writing to
//! the embedded SQLite store: exactly-once into the store across SIGKILLs, candles equal to a
//! recomputation from the trades topic, one notification per execution and account, dead
//! letters for bad input, and `tradestream query` over the result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use tradestream_codec::avro::{self, DecodedKind};
use tradestream_engine::Decimal;
use tradestream_runtime::KafkaConfig;
use tradestream_runtime::partition::PartitionReader;
use tradestream_store::{Interval, Store, StoreUri};

mod common;

use common::store::*;
use common::*;

fn open(path: &Path) -> Box<dyn Store> {
    open_uri(&StoreUri::Sqlite(path.to_owned()))
}

fn open_uri(uri: &StoreUri) -> Box<dyn Store> {
    tradestream_store::open(uri).expect("open store")
}

/// A store of the test's own on the Scylla/Cassandra cluster `SCYLLA_URI` names (a keyspace
/// named after it, `name` and this process, migrated as `store migrate` does: workers do not
/// create it), if it names one; dropped by [`drop_keyspace`].
fn scylla_store(name: &str) -> Option<StoreUri> {
    let uri = std::env::var("SCYLLA_URI").ok().filter(|u| !u.is_empty())?;
    let StoreUri::Scylla { nodes, keyspace } = uri.parse().expect("SCYLLA_URI") else {
        panic!("SCYLLA_URI must be a scylla:// URI, got {uri:?}");
    };
    let keyspace = format!("{keyspace}_{name}_{}", std::process::id());
    let options = tradestream_store::scylla::ScyllaOptions::from_env().expect("SCYLLA_* settings");
    tradestream_store::scylla::ScyllaStore::migrate_keyspace_in_local_dc(
        &nodes, &keyspace, 1, &options,
    )
    .expect("migrate the test keyspace");
    Some(StoreUri::Scylla { nodes, keyspace })
}

fn drop_keyspace(uri: &StoreUri) {
    if let StoreUri::Scylla { nodes, keyspace } = uri {
        let store = tradestream_store::scylla::ScyllaStore::connect(nodes, keyspace).unwrap();
        if let Err(e) = store.drop_keyspace() {
            eprintln!("could not drop keyspace {keyspace}: {e}");
        }
    }
}

/// The sum of the offsets `group` has stored for `trades` and `executions`.
fn stored(uri: &StoreUri, group: &str) -> i64 {
    let mut store = open_uri(uri);
    let mut sum = 0;
    for topic in ["trades", "executions"] {
        for p in 0..PARTITIONS {
            sum += store
                .offset(group, topic, p)
                .expect("read offsets")
                .map_or(0, |o| o.next_offset);
        }
    }
    sum
}

/// What the trade recorder stored, read through the `Store` trait so that any two backends
/// compare: trades by symbol and by account, and the state of every `sample`-th order.
fn dump_through_trait(
    uri: &StoreUri,
    trades: &[(i32, Rec)],
    executions: &[(i32, Rec)],
    sample: usize,
) -> Vec<String> {
    let mut store = open_uri(uri);
    let (mut symbols, mut accounts) = (BTreeSet::new(), BTreeSet::new());
    for (_, (_, payload, _)) in trades {
        let e = avro::decode_event(payload).expect("trade decodes");
        symbols.insert(e.symbol.as_str().to_owned());
        if let DecodedKind::Trade {
            maker_account,
            taker_account,
            ..
        } = &e.kind
        {
            accounts.insert(maker_account.as_str().to_owned());
            accounts.insert(taker_account.as_str().to_owned());
        }
    }
    let orders: BTreeSet<(String, String)> = executions
        .iter()
        .filter_map(|(_, (_, payload, _))| avro::decode_event(payload).ok())
        .filter_map(|e| match e.kind {
            DecodedKind::Accepted { order_id, .. } => {
                Some((e.symbol.as_str().to_owned(), order_id.as_str().to_owned()))
            }
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for s in &symbols {
        out.push(format!(
            "{s}: {:?}",
            store.trades_by_symbol(s, 1_000_000).unwrap()
        ));
    }
    for a in &accounts {
        out.push(format!(
            "{a}: {:?}",
            store.trades_by_account(a, 1_000_000).unwrap()
        ));
    }
    for (symbol, id) in orders.iter().step_by(sample) {
        out.push(format!(
            "{symbol} {id}: {:?}",
            store.order(symbol, id).unwrap()
        ));
    }
    out
}

/// A small deterministic generator for kill times (its seed is printed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn the_trade_recorder_survives_kills_exactly_once() {
    let _serial = serial();
    let (_broker, addr) = broker_with_orders(100_000, 11, &[]);
    let matcher = start_matcher(&addr, 5_000);

    // The recorder runs beside the matcher and is killed three times at random moments, writing
    // into Cassandra when SCYLLA_URI names a cluster, else into SQLite.
    let killed_path = store_path("recorder-killed");
    let killed = scylla_store("kill").unwrap_or_else(|| StoreUri::Sqlite(killed_path.clone()));
    eprintln!("the killed recorder writes into {killed}");
    let killed_uri = killed.to_string();
    let seed = std::process::id() as u64;
    eprintln!("kill schedule seed {seed}");
    let mut rng = Lcg(seed);
    let group = "tradestream-trade-recorder";
    let mut stored_at_kills = Vec::new();
    for round in 0..3 {
        let before = stored(&killed, group);
        let recorder = start_worker("trade-recorder", &addr, &["--store", &killed_uri]);
        // Kill it while it works: once it has stored a batch, after a random pause.
        let deadline = Instant::now() + Duration::from_secs(120);
        while stored(&killed, group) <= before {
            assert!(
                Instant::now() < deadline,
                "round {round}: the recorder made no progress"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(200 + rng.below(1_500)));
        signal(&recorder.0, "-KILL");
        let at = stored(&killed, group);
        eprintln!("kill -9 trade recorder, round {round}, at {at} stored offsets");
        stored_at_kills.push(at);
        drop(recorder);
    }
    let recorder = start_worker("trade-recorder", &addr, &["--store", &killed_uri]);
    wait_committed(&addr, 100_000, Duration::from_secs(600));
    stop_matcher(matcher);

    let reader = PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(60)).unwrap();
    let trades = topic(&reader, "trades");
    let executions = topic(&reader, "executions");
    let want = [("trades", ends(&trades)), ("executions", ends(&executions))];
    let total: i64 = want.iter().flat_map(|(_, e)| e.values()).sum();
    assert!(
        stored_at_kills.iter().all(|at| *at < total),
        "every kill came before the end: {stored_at_kills:?} of {total}"
    );
    wait_stored_in(&killed, group, &want, Duration::from_secs(600));
    stop_worker(recorder);

    // The same input, uninterrupted, into a store of its own.
    let clean = store_path("recorder-clean");
    let clean_group = "tradestream-trade-recorder-clean";
    let recorder = start_worker(
        "trade-recorder",
        &addr,
        &[
            "--store",
            &format!("sqlite:{}", clean.display()),
            "--group",
            clean_group,
        ],
    );
    wait_stored(&clean, clean_group, &want, Duration::from_secs(600));
    let stats = stop_worker(recorder);
    assert_eq!(stats["dead_letters"], 0, "{stats}");

    if let StoreUri::Scylla { .. } = killed {
        // Cassandra against SQLite, through the trait both implement.
        let (a, b) = (
            dump_through_trait(&killed, &trades, &executions, 7),
            dump_through_trait(&StoreUri::Sqlite(clean.clone()), &trades, &executions, 7),
        );
        drop_keyspace(&killed);
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "Cassandra after kills vs SQLite uninterrupted");
        }
        assert!(trades.len() > 10_000, "a real run: {} trades", trades.len());
        return;
    }
    let (a, b) = (dump(&killed_path), dump(&clean));
    for (table, rows) in &b {
        assert_eq!(
            a[table].len(),
            rows.len(),
            "{table}: rows after kills vs uninterrupted"
        );
        assert!(a[table] == *rows, "{table} differs after kills");
    }
    assert_eq!(
        b["trades_by_symbol"].len(),
        trades.len(),
        "one row per trade"
    );
    assert!(trades.len() > 10_000, "a real run: {} trades", trades.len());
    assert!(!b["orders_by_symbol"].is_empty());
}

/// `d` as an integer count of 10^-18.
fn atto(d: Decimal) -> i128 {
    i128::from(d.mantissa()) * 10i128.pow(u32::from(18 - d.scale()))
}

/// The candles of the trades topic, recomputed here: (symbol, interval, bucket) → (open, high,
/// low, close, volume, trades), prices and volume in 10^-18 units.
type Ohlc = (i128, i128, i128, i128, i128, i64);

/// Also returns how many records did not decode.
fn candles_from(trades: &[(i32, Rec)]) -> (BTreeMap<(String, &'static str, i64), Ohlc>, usize) {
    let mut out: BTreeMap<(String, &'static str, i64), Ohlc> = BTreeMap::new();
    let mut bad = 0;
    for (_, (_, payload, _)) in trades {
        let Ok(ev) = avro::decode_event(payload) else {
            bad += 1;
            continue;
        };
        let DecodedKind::Trade { price, qty, .. } = ev.kind else {
            panic!("not a trade on trades");
        };
        let (px, q) = (atto(price), atto(qty));
        for interval in Interval::ALL {
            let key = (
                ev.symbol.as_str().to_owned(),
                interval.as_str(),
                interval.bucket_start(ev.ts),
            );
            let c = out.entry(key).or_insert((px, px, px, px, 0, 0));
            c.1 = c.1.max(px);
            c.2 = c.2.min(px);
            c.3 = px;
            c.4 += q;
            c.5 += 1;
        }
    }
    (out, bad)
}

#[test]
fn downstream_workers_store_candles_notifications_and_dead_letters() {
    let _serial = serial();
    // Paced, so that the orders (stamped with the wall clock) span seconds of event time and fill
    // a few dozen candles.
    let (_broker, addr) = broker_with_orders(20_000, 5, &["--rate", "4000"]);
    let matcher = start_matcher(&addr, 5_000);
    wait_committed(&addr, 20_000, Duration::from_secs(300));
    stop_matcher(matcher);

    // Bad records on each input topic: every worker must dead-letter what it reads and go on.
    let bad: &[u8] = b"\xC3\x01 not an event";
    produce_raw(
        &addr,
        Some(b"poison"),
        &[
            ("trades", 0, bad),
            ("executions", 1, bad),
            ("market-data", 2, bad),
        ],
    );

    let path = store_path("downstream");
    let uri = format!("sqlite:{}", path.display());
    let workers: Vec<Proc> = ["trade-recorder", "market-data", "notifier"]
        .iter()
        .map(|w| start_worker(w, &addr, &["--store", &uri]))
        .collect();

    let reader = PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(60)).unwrap();
    let trades = topic(&reader, "trades");
    let executions = topic(&reader, "executions");
    let market_data = topic(&reader, "market-data");
    let (t, e, m) = (ends(&trades), ends(&executions), ends(&market_data));
    let timeout = Duration::from_secs(300);
    wait_stored(
        &path,
        "tradestream-trade-recorder",
        &[("trades", t.clone()), ("executions", e.clone())],
        timeout,
    );
    wait_stored(
        &path,
        "tradestream-market-data",
        &[("trades", t), ("market-data", m)],
        timeout,
    );
    wait_stored(&path, "tradestream-notifier", &[("executions", e)], timeout);
    let stats: Vec<_> = workers.into_iter().map(stop_worker).collect();
    let market_stats = &stats[1];
    assert_eq!(
        market_stats["late"], 0,
        "no late trades in this flow: {market_stats}"
    );
    assert_eq!(
        market_stats["clamped"], 0,
        "trades of well-stamped orders are never ahead of their records: {market_stats}"
    );

    // Trades: one row each.
    let mut store = open(&path);
    let counts = store.counts().unwrap();
    let real_trades = trades.len() - 1; // one poison record
    assert_eq!(counts.trades as usize, real_trades);
    assert!(real_trades > 1_000, "{real_trades} trades");

    // Candles: equal to the recomputation, every interval, every bucket.
    let (expected, bad) = candles_from(&trades);
    assert_eq!(bad, 1, "the one poison record on trades");
    let mut compared = 0;
    for symbol in ["BTC-USD", "ETH-USD", "SOL-USD"] {
        for interval in Interval::ALL {
            let rows = store.candles(symbol, interval, 1_000_000).unwrap();
            let want: Vec<_> = expected
                .iter()
                .filter(|((s, i, _), _)| s == symbol && *i == interval.as_str())
                .collect();
            assert_eq!(rows.len(), want.len(), "{symbol} {}", interval.as_str());
            for row in rows {
                let key = (symbol.to_owned(), interval.as_str(), row.bucket_start_ms);
                let c = expected.get(&key).expect("a candle with trades");
                let got = (
                    atto(row.open),
                    atto(row.high),
                    atto(row.low),
                    atto(row.close),
                    atto(row.volume),
                    row.trade_count,
                );
                assert_eq!(&got, c, "{key:?}");
                compared += 1;
            }
        }
    }
    assert!(compared > 10, "{compared} candles compared");

    // Notifications: exactly one per execution and account, in order per account.
    let mut want: BTreeMap<(String, i32, i64), u32> = BTreeMap::new();
    for (p, (offset, payload, _)) in &executions {
        let Ok(ev) = avro::decode_event(payload) else {
            assert_eq!(
                (*p, *offset),
                (1, last_offset(&executions, 1)),
                "only the poison record"
            );
            continue;
        };
        let seq = ev.seq as i64;
        let accounts: Vec<String> = match &ev.kind {
            DecodedKind::Accepted { account, .. }
            | DecodedKind::Cancelled { account, .. }
            | DecodedKind::Replaced { account, .. }
            | DecodedKind::Expired { account, .. } => vec![account.as_str().to_owned()],
            DecodedKind::Rejected { account, .. } if !account.as_str().is_empty() => {
                vec![account.as_str().to_owned()]
            }
            DecodedKind::Rejected { .. } => vec![],
            DecodedKind::Trade {
                maker_account,
                taker_account,
                ..
            } if maker_account == taker_account => vec![taker_account.as_str().to_owned()],
            DecodedKind::Trade {
                maker_account,
                taker_account,
                ..
            } => vec![
                maker_account.as_str().to_owned(),
                taker_account.as_str().to_owned(),
            ],
            other => panic!("{} on executions", other.name()),
        };
        for a in accounts {
            *want.entry((a, ev.source_partition, seq)).or_default() += 1;
        }
    }
    let mut got: BTreeMap<(String, i32, i64), u32> = BTreeMap::new();
    for (_, (_, payload, _)) in topic(&reader, "notifications") {
        let n = tradestream_notifier::record::decode(&payload).expect("notification decodes");
        *got.entry((n.account.clone(), n.source_partition, n.seq))
            .or_default() += 1;
    }
    assert_eq!(
        got.len(),
        want.len(),
        "notifications by (account, partition, seq)"
    );
    assert!(
        got == want,
        "every execution of an account yields exactly one notification"
    );
    assert_eq!(counts.notifications as usize, want.len());
    // A reader deduplicating as docs/design.md §2.4 says, by (account, source partition, seq), keeps
    // every one of them: both sides of each trade between two accounts.
    let mut dedup = tradestream_notifier::record::Dedup::new();
    let mut kept: BTreeMap<(String, i32, i64), u32> = BTreeMap::new();
    for p in 0..PARTITIONS {
        let mut last: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for (_, payload, _) in read_all(&reader, "notifications", p) {
            let n = tradestream_notifier::record::decode(&payload).unwrap();
            let prev = last.insert((n.account.clone(), n.source_partition), n.seq);
            assert!(
                prev.is_none_or(|s| s < n.seq),
                "out of order for {}",
                n.account
            );
            if dedup.first_time(&n) {
                *kept
                    .entry((n.account, n.source_partition, n.seq))
                    .or_default() += 1;
            }
        }
    }
    assert!(kept == want, "the reader's dedup keeps every notification");

    // Dead letters: each bad record once, from each worker that read it, with its source.
    let mut dead: BTreeMap<(String, String), u32> = BTreeMap::new();
    for (_, (_, _, headers)) in topic(&reader, "dead-letters") {
        let worker = headers.get("worker").cloned().unwrap_or_default();
        if worker == "matcher" {
            continue;
        }
        assert_eq!(
            headers.get("error-class").map(String::as_str),
            Some("decode")
        );
        assert!(headers.contains_key("source-offset"), "{headers:?}");
        let source = headers.get("source-topic").cloned().unwrap_or_default();
        *dead.entry((worker, source)).or_default() += 1;
    }
    let expect_dead: BTreeMap<(String, String), u32> = [
        ("trade-recorder", "trades"),
        ("trade-recorder", "executions"),
        ("market-data", "trades"),
        ("market-data", "market-data"),
        ("notifier", "executions"),
    ]
    .into_iter()
    .map(|(w, t)| ((w.to_owned(), t.to_owned()), 1))
    .collect();
    assert_eq!(dead, expect_dead);

    // `tradestream query` reads the store.
    let query = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["query"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--store", &uri, "--json"]);
        let out = bin().args(&all).output().expect("query runs");
        assert!(
            out.status.success(),
            "query {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("query prints JSON")
    };
    let newest = query(&["trades", "--symbol", "BTC-USD", "--limit", "5"]);
    assert_eq!(newest.as_array().map(Vec::len), Some(5), "{newest}");
    let order_id = newest[0]["taker_order_id"].as_str().unwrap().to_owned();
    let order = query(&["order", "--symbol", "BTC-USD", &order_id]);
    assert_eq!(order["order_id"], order_id.as_str());
    assert_eq!(order["symbol"], "BTC-USD");
    let book = query(&["book", "--symbol", "BTC-USD"]);
    assert!(!book["bid"].is_null() || !book["ask"].is_null(), "{book}");
    let candles = query(&["candles", "--symbol", "BTC-USD", "--interval", "1m"]);
    assert!(!candles.as_array().unwrap().is_empty());
}

/// The offset of the last record of partition `p` in `recs`.
fn last_offset(recs: &[(i32, Rec)], p: i32) -> i64 {
    recs.iter()
        .filter(|(q, _)| *q == p)
        .map(|(_, (o, ..))| *o)
        .max()
        .unwrap_or(-1)
}
