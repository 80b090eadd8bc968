//! The downstream workers (trade recorder, market data, notifier, cache) on a real broker: each
//! SIGKILLed under load and restarted, and what it wrote (store tables, the `candles` and
//! `notifications` topics, the cache's keys in Redis) equal to an uninterrupted run; candles equal
//! to a recomputation from the trades topic, one notification per execution and account, dead
//! letters for bad input, and `tradestream query` over the result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use tradestream_cache::{CacheConfig, CacheSettings, CacheWriter, KeyLayout, RedisUrl};
use tradestream_codec::avro::{self, DecodedEvent, DecodedKind};
use tradestream_engine::Decimal;
use tradestream_runtime::KafkaConfig;
use tradestream_runtime::partition::PartitionReader;
use tradestream_store::{Interval, Store, StoreDump, StoreUri};
use tradestream_testkit::{RedisServer, RedisValue};

mod common;

use common::store::*;
use common::*;

fn open(path: &Path) -> Box<dyn Store> {
    open_uri(&StoreUri::Sqlite(path.to_owned()))
}

fn open_uri(uri: &StoreUri) -> Box<dyn Store> {
    tradestream_store::open(uri).expect("open store")
}

/// A keyspace of the test's own on the Scylla/Cassandra cluster `SCYLLA_URI` names (named after
/// it, `name` and this process, migrated as `store migrate` does: workers do not create it),
/// dropped when this is dropped.
struct Keyspace(StoreUri);

impl Keyspace {
    /// The keyspace, if `SCYLLA_URI` names a cluster.
    fn create(name: &str) -> Option<Keyspace> {
        let uri = std::env::var("SCYLLA_URI").ok().filter(|u| !u.is_empty())?;
        let StoreUri::Scylla { nodes, keyspace } = uri.parse().expect("SCYLLA_URI") else {
            panic!("SCYLLA_URI must be a scylla:// URI, got {uri:?}");
        };
        let keyspace = format!("{keyspace}_{name}_{}", std::process::id());
        let options =
            tradestream_store::scylla::ScyllaOptions::from_env().expect("SCYLLA_* settings");
        tradestream_store::scylla::ScyllaStore::migrate_keyspace_in_local_dc(
            &nodes, &keyspace, 1, &options,
        )
        .expect("migrate the test keyspace");
        Some(Keyspace(StoreUri::Scylla { nodes, keyspace }))
    }
}

impl Drop for Keyspace {
    fn drop(&mut self) {
        if let StoreUri::Scylla { nodes, keyspace } = &self.0 {
            let dropped = tradestream_store::scylla::ScyllaStore::connect(nodes, keyspace)
                .and_then(|store| store.drop_keyspace());
            if let Err(e) = dropped {
                eprintln!("could not drop keyspace {keyspace}: {e}");
            }
        }
    }
}

/// The sum of the offsets `group` has stored in `store` for `topics`.
fn stored(store: &mut dyn Store, group: &str, topics: &[&str]) -> i64 {
    let mut sum = 0;
    for topic in topics {
        for p in 0..PARTITIONS {
            sum += store.resume_at(group, topic, p).expect("read offsets");
        }
    }
    sum
}

/// A connection to the cache's Redis under `prefix`.
fn cache_at(url: &str, prefix: &str) -> CacheWriter {
    CacheWriter::connect(
        &RedisUrl::new(url),
        KeyLayout::new(prefix),
        CacheSettings::default(),
    )
    .expect("redis")
}

/// The sum of the input offsets the cache worker `group` has written (0 before its first
/// checkpoint).
fn cached(cache: &mut CacheWriter, group: &str) -> i64 {
    cache
        .progress(group)
        .expect("cache progress")
        .iter()
        .filter(|(field, _)| field.starts_with("offset:"))
        .map(|(_, offset)| offset)
        .sum()
}

/// Every table of a store (`Store::dump`) but the consumer offsets, whose consumer names differ
/// between two runs.
fn tables(uri: &StoreUri) -> StoreDump {
    let mut dump = open_uri(uri).dump().expect("dump the store");
    dump.tables.remove("consumer_offsets");
    dump
}

/// Every table of `a` equals `b`'s, row for row.
fn assert_same_tables(a: &StoreDump, b: &StoreDump, what: &str) {
    assert_eq!(
        a.tables.keys().collect::<Vec<_>>(),
        b.tables.keys().collect::<Vec<_>>(),
        "{what}: tables"
    );
    for (table, rows) in &b.tables {
        let got = &a.tables[table];
        if let Some(i) = (0..got.len().max(rows.len())).find(|i| got.get(*i) != rows.get(*i)) {
            panic!(
                "{what}: {table} differs ({} rows vs {}), first at row {i}:\n {:?}\n {:?}",
                got.len(),
                rows.len(),
                got.get(i),
                rows.get(i)
            );
        }
    }
}

/// A record of a worker's at-least-once output topic as a consumer deduplicating by its bytes
/// sees it: per source partition, in order, each record once. Also checks that no two different
/// records share an idempotency key (`key_of`): a duplicate is the same record again.
fn deduplicated(
    recs: &[(i32, Rec)],
    source_and_key: impl Fn(&[u8]) -> (i32, String),
) -> (BTreeMap<i32, Vec<Vec<u8>>>, usize) {
    let mut by_key: BTreeMap<(i32, String), &[u8]> = BTreeMap::new();
    let mut out: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    let mut duplicates = 0;
    for (p, (offset, payload, _)) in recs {
        let (source, key) = source_and_key(payload);
        match by_key.insert((source, key.clone()), payload) {
            Some(first) if first == payload.as_slice() => duplicates += 1,
            Some(first) => panic!(
                "partition {p} offset {offset}: {key} from source partition {source} again, \
                 differing: {:?} then {:?}",
                String::from_utf8_lossy(first),
                String::from_utf8_lossy(payload)
            ),
            None => out.entry(source).or_default().push(payload.clone()),
        }
    }
    (out, duplicates)
}

/// The (source partition, idempotency key) of a notification record.
fn notification_key(payload: &[u8]) -> (i32, String) {
    let n = tradestream_notifier::record::decode(payload).expect("notification decodes");
    (n.source_partition, format!("{}/{}", n.account, n.seq))
}

/// The (source partition, identity) of a closed-candle record.
fn candle_key(payload: &[u8]) -> (i32, String) {
    let c = tradestream_market_data::record::decode(payload).expect("candle decodes");
    (
        c.source_partition,
        format!("{}/{}/{}", c.symbol, c.interval.as_str(), c.bucket_start_ms),
    )
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

/// One downstream worker of the kill test: how it is started and how far it has got.
struct Downstream<'a> {
    worker: &'static str,
    args: Vec<String>,
    progress: Box<dyn FnMut() -> i64 + 'a>,
}

impl Downstream<'_> {
    /// `tradestream run <worker> <args>` on the broker at `addr`.
    fn start(&self, addr: &str) -> Proc {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        start_worker(self.worker, addr, &args)
    }
}

/// Kill rounds: every worker is started, then each in turn is SIGKILLed at a random moment once
/// it has made progress of its own.
const KILL_ROUNDS: usize = 3;

/// Every downstream worker SIGKILLed three times at random moments while orders flow, then
/// restarted: no effect lost, none applied twice. The store (Cassandra when `SCYLLA_URI` names
/// a cluster, else SQLite) equals, table by table, the store of an uninterrupted run (each
/// worker replayed into a SQLite store of its own); the `candles` and `notifications` topics
/// hold the uninterrupted run's records, a record written again before the kill being the same
/// bytes; the cache's keys in Redis equal those of a cache that ran without interruption.
#[test]
fn downstream_workers_survive_kills_exactly_once() {
    let _serial = serial();
    const ORDERS: u64 = 60_000;
    let (_broker, addr) = broker_with_topics();
    // A minute of orders: every kill lands while the pipeline has work in hand.
    let mut producer = spawn_producer(&addr, ORDERS, 11, 1_000, &[]);
    let matcher = start_matcher(&addr, 5_000);

    let killed_path = store_path("killed");
    let keyspace = Keyspace::create("kill");
    let killed = keyspace
        .as_ref()
        .map_or_else(|| StoreUri::Sqlite(killed_path.clone()), |k| k.0.clone());
    eprintln!("the killed workers write into {killed}");
    let killed_uri = killed.to_string();
    // The cache's Redis: a private server (missing outside CI: the cache is left out, loudly).
    let redis = RedisServer::start("the downstream kill test's cache");
    let redis_url = redis.as_ref().map(RedisServer::url);

    let store_worker =
        |worker: &'static str, group: &'static str, topics: &'static [&'static str]| {
            let mut store = open_uri(&killed);
            Downstream {
                worker,
                args: vec!["--store".into(), killed_uri.clone()],
                progress: Box::new(move || stored(&mut *store, group, topics)),
            }
        };
    let mut workers = vec![
        store_worker(
            "trade-recorder",
            "tradestream-trade-recorder",
            &["trades", "executions"],
        ),
        store_worker(
            "market-data",
            "tradestream-market-data",
            &["trades", "market-data"],
        ),
        store_worker("notifier", "tradestream-notifier", &["executions"]),
    ];
    if let Some(url) = &redis_url {
        let mut cache = cache_at(url, "ts:");
        workers.push(Downstream {
            worker: "cache",
            args: vec!["--redis-url".into(), url.clone()],
            progress: Box::new(move || cached(&mut cache, CacheConfig::DEFAULT_GROUP)),
        });
    }

    let seed = u64::from(std::process::id());
    eprintln!("kill schedule seed {seed}");
    let mut rng = Lcg(seed);
    let mut kills = Vec::new();
    for round in 0..KILL_ROUNDS {
        let before: Vec<i64> = workers.iter_mut().map(|w| (w.progress)()).collect();
        let running: Vec<Proc> = workers.iter().map(|w| w.start(&addr)).collect();
        for ((w, proc), before) in workers.iter_mut().zip(running).zip(before) {
            let deadline = Instant::now() + Duration::from_secs(120);
            while (w.progress)() <= before {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: {} made no progress:\n{}",
                    w.worker,
                    matcher_log(&proc)
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            std::thread::sleep(Duration::from_millis(200 + rng.below(1_500)));
            signal(&proc.0, "-KILL");
            drop(proc);
            let at = (w.progress)();
            let flowing = producer.0.try_wait().expect("producer status").is_none();
            eprintln!(
                "kill -9 {}, round {round}, at {at} stored offsets{}",
                w.worker,
                if flowing {
                    ", orders still flowing"
                } else {
                    ""
                }
            );
            kills.push((w.worker, at));
        }
    }
    let running: Vec<Proc> = workers.iter().map(|w| w.start(&addr)).collect();
    producer_finished(&mut producer);
    wait_committed(&addr, ORDERS, Duration::from_secs(600));
    stop_matcher(matcher);

    // The matcher's outputs are complete: the store workers catch up and stop (the market-data
    // worker's last closed candles are on `candles` then), then the cache catches up on those.
    let reader = PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(60)).unwrap();
    let trades = topic(&reader, "trades");
    let executions = topic(&reader, "executions");
    let market_data = topic(&reader, "market-data");
    let (t, e, m) = (ends(&trades), ends(&executions), ends(&market_data));
    let timeout = Duration::from_secs(600);
    let inputs = [
        (
            "tradestream-trade-recorder",
            vec![("trades", t.clone()), ("executions", e.clone())],
        ),
        (
            "tradestream-market-data",
            vec![("trades", t.clone()), ("market-data", m.clone())],
        ),
        ("tradestream-notifier", vec![("executions", e.clone())]),
    ];
    for (group, want) in &inputs {
        wait_stored_in(&killed, group, want, timeout);
    }
    let mut running = running.into_iter();
    for w in workers.iter().take(inputs.len()) {
        let stats = stop_worker(running.next().expect("a store worker"));
        assert_eq!(stats["dead_letters"], 0, "{}: {stats}", w.worker);
    }
    let candles = topic(&reader, "candles");
    let cache_ends: Vec<(&str, BTreeMap<i32, i64>)> = vec![
        ("executions", e.clone()),
        ("trades", t.clone()),
        ("market-data", m.clone()),
        ("candles", ends(&candles)),
    ];
    let cache_total: i64 = cache_ends.iter().flat_map(|(_, e)| e.values()).sum();
    if let (Some(cache), Some(url)) = (running.next(), &redis_url) {
        wait_cached(
            &mut cache_at(url, "ts:"),
            CacheConfig::DEFAULT_GROUP,
            cache_total,
            timeout,
        );
        let stats = stop_worker(cache);
        assert_eq!(stats["dead_letters"], 0, "cache: {stats}");
    }
    // Every kill came while the worker still had input to process.
    for (worker, at) in &kills {
        let end = workers
            .iter_mut()
            .find(|w| w.worker == *worker)
            .map(|w| (w.progress)())
            .expect("a worker");
        assert!(
            *at < end,
            "{worker} was killed at {at}, its input ends at {end}"
        );
    }

    // The same input, uninterrupted: each store worker replayed into a SQLite store of its own
    // (its `candles` and `notifications` go to `<topic>.clean`), the cache in a group and under
    // a key prefix of their own.
    let clean = store_path("clean");
    let clean_uri = format!("sqlite:{}", clean.display());
    for worker in ["trade-recorder", "market-data", "notifier"] {
        run_ok(&[
            "replay",
            worker,
            "--suffix",
            "clean",
            "--shadow-store",
            &clean_uri,
            "--bootstrap-servers",
            &addr,
        ]);
    }
    let clean_cache = "tradestream-cache-clean";
    if let Some(url) = &redis_url {
        let cache = start_worker(
            "cache",
            &addr,
            &[
                "--redis-url",
                url,
                "--key-prefix",
                "clean:",
                "--group",
                clean_cache,
            ],
        );
        wait_cached(
            &mut cache_at(url, "clean:"),
            clean_cache,
            cache_total,
            timeout,
        );
        stop_worker(cache);
    }

    // The store: every table, row for row, and each as large as the topics say.
    let (after_kills, uninterrupted) = (tables(&killed), tables(&StoreUri::Sqlite(clean)));
    assert_same_tables(
        &after_kills,
        &uninterrupted,
        "killed workers vs uninterrupted",
    );
    let rows = |table: &str| uninterrupted.tables[table].len();
    let decoded: Vec<DecodedEvent> = trades
        .iter()
        .map(|(_, (_, payload, _))| avro::decode_event(payload).expect("trade decodes"))
        .collect();
    assert_eq!(rows("trades_by_symbol"), trades.len(), "one row per trade");
    let sides: usize = decoded
        .iter()
        .map(|ev| match &ev.kind {
            DecodedKind::Trade {
                maker_account,
                taker_account,
                ..
            } if maker_account == taker_account => 1,
            _ => 2,
        })
        .sum();
    assert_eq!(
        rows("trades_by_account"),
        sides,
        "one row per account of a trade"
    );
    let (want_candles, bad) = candles_from(&trades);
    assert_eq!(
        (rows("candles"), bad),
        (want_candles.len(), 0),
        "one row per candle"
    );
    let (want_notes, undecodable) = notifications_of(&executions);
    assert!(undecodable.is_empty(), "{undecodable:?}");
    assert_eq!(rows("notifications_by_account"), want_notes.len());
    let orders = folded_orders(&executions);
    assert_eq!(rows("orders_by_symbol"), orders.len(), "one row per order");
    let tops: BTreeSet<String> = market_data
        .iter()
        .filter_map(|(_, (_, payload, _))| {
            let ev = avro::decode_event(payload).expect("market data decodes");
            tradestream_market_data::candles::top_of_book(&ev).map(|top| top.symbol)
        })
        .collect();
    assert_eq!(
        rows("top_of_book"),
        tops.len(),
        "one row per symbol with a book"
    );
    let days: BTreeSet<(String, i64)> = decoded
        .iter()
        .map(|ev| (ev.symbol.as_str().to_owned(), ev.ts.div_euclid(86_400_000)))
        .collect();
    assert_eq!(
        rows("trade_days"),
        days.len(),
        "one row per symbol and day traded"
    );
    assert!(trades.len() > 10_000, "a real run: {} trades", trades.len());

    // The topics the killed workers wrote: the uninterrupted run's records, a duplicate being
    // the same record again.
    for (live, key) in [
        (
            "notifications",
            notification_key as fn(&[u8]) -> (i32, String),
        ),
        ("candles", candle_key),
    ] {
        let (killed_run, duplicates) = deduplicated(&topic(&reader, live), key);
        let (clean_run, clean_duplicates) =
            deduplicated(&topic(&reader, &format!("{live}.clean")), key);
        assert_eq!(
            clean_duplicates, 0,
            "{live}.clean: an uninterrupted run writes once"
        );
        assert!(
            killed_run == clean_run,
            "{live}: after kills (deduplicated) vs uninterrupted, per source partition: {:?} vs {:?}",
            killed_run.values().map(Vec::len).collect::<Vec<_>>(),
            clean_run.values().map(Vec::len).collect::<Vec<_>>()
        );
        let total: usize = clean_run.values().map(Vec::len).sum();
        eprintln!("{live}: {total} records, {duplicates} written again after kills");
    }
    let notes: usize = deduplicated(&topic(&reader, "notifications.clean"), notification_key)
        .0
        .values()
        .map(Vec::len)
        .sum();
    assert_eq!(
        notes,
        want_notes.len(),
        "one notification per execution and account"
    );

    // The cache: every key of the uninterrupted cache, holding the same, progress included.
    if let Some(redis) = &redis {
        let mut after_kills = redis.keys("ts:");
        let mut uninterrupted = redis.keys("clean:");
        for keys in [&mut after_kills, &mut uninterrupted] {
            keys.retain(|k, _| !k.starts_with("live:"));
        }
        let progress = |keys: &mut BTreeMap<String, RedisValue>, group: &str| {
            keys.remove(&format!("progress:{group}"))
                .unwrap_or_else(|| panic!("no progress of {group}"))
        };
        assert_eq!(
            progress(&mut after_kills, CacheConfig::DEFAULT_GROUP),
            progress(&mut uninterrupted, clean_cache),
            "cache progress: offsets and watermarks"
        );
        let orders_cached = uninterrupted
            .keys()
            .filter(|k| k.starts_with("order:"))
            .count();
        assert_eq!(orders_cached, orders.len(), "one cached state per order");
        let books = uninterrupted
            .keys()
            .filter(|k| k.starts_with("book:"))
            .count();
        assert_eq!(books, tops.len(), "one cached book per symbol with a book");
        assert_eq!(after_kills.len(), uninterrupted.len(), "cache keys");
        for (key, value) in &uninterrupted {
            assert_eq!(after_kills.get(key), Some(value), "cache key {key}");
        }
    }
}

/// Waits (bounded) until the cache worker `group` has written `total` input offsets (the sum
/// over every input partition).
fn wait_cached(cache: &mut CacheWriter, group: &str, total: i64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let at = cached(cache, group);
        if at >= total {
            assert_eq!(at, total, "{group} is past the inputs' end");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group} did not catch up: {at} of {total} offsets"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every order's final state, folded from the whole `executions` topic.
fn folded_orders(executions: &[(i32, Rec)]) -> BTreeMap<(String, String), ()> {
    let mut fold = tradestream_trade_recorder::fold::OrderFold::new();
    let mut out = BTreeMap::new();
    for (_, (_, payload, _)) in executions {
        let ev = avro::decode_event(payload).expect("execution decodes");
        for row in fold.apply(&ev, |_, _| None).expect("folds") {
            out.insert((row.symbol, row.order_id), ());
        }
    }
    out
}

/// How many notifications per (account, source partition, seq).
type Notifications = BTreeMap<(String, i32, i64), u32>;

/// The notifications `executions` calls for: (account, source partition, seq) → how many (one
/// each), and the (partition, offset) of every record that does not decode.
fn notifications_of(executions: &[(i32, Rec)]) -> (Notifications, Vec<(i32, i64)>) {
    let mut want = Notifications::new();
    let mut undecodable = Vec::new();
    for (p, (offset, payload, _)) in executions {
        let Ok(ev) = avro::decode_event(payload) else {
            undecodable.push((*p, *offset));
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
    (want, undecodable)
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
    assert_eq!(
        compared,
        expected.len(),
        "every candle of the trades is stored"
    );

    // Notifications: exactly one per execution and account, in order per account.
    let (want, undecodable) = notifications_of(&executions);
    assert_eq!(
        undecodable,
        [(1, last_offset(&executions, 1))],
        "only the poison record"
    );
    let mut got = Notifications::new();
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
    let mut kept = Notifications::new();
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
    let top = store
        .top_of_book("BTC-USD")
        .unwrap()
        .expect("BTC-USD has a book");
    assert_eq!(
        (book["seq"].as_i64(), book["source_partition"].as_i64()),
        (Some(top.seq), Some(i64::from(top.source_partition))),
        "{book}"
    );
    assert!(!book["bid"].is_null() || !book["ask"].is_null(), "{book}");
    let candles = query(&["candles", "--symbol", "BTC-USD", "--interval", "1m"]);
    let starts: Vec<i64> = candles
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["bucket_start"].as_i64().unwrap())
        .collect();
    let stored: Vec<i64> = store
        .candles("BTC-USD", Interval::M1, 20)
        .unwrap()
        .iter()
        .map(|c| c.bucket_start_ms)
        .collect();
    assert!(!stored.is_empty(), "BTC-USD traded");
    assert_eq!(starts, stored, "the newest 1m candles, as stored");
}

/// The offset of the last record of partition `p` in `recs`.
fn last_offset(recs: &[(i32, Rec)], p: i32) -> i64 {
    recs.iter()
        .filter(|(q, _)| *q == p)
        .map(|(_, (o, ..))| *o)
        .max()
        .unwrap_or(-1)
}
