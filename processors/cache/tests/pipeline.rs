//! The cache worker on a real broker (embedded, or Apache Kafka with
//! `TRADESTREAM_TEST_BROKER=kafka`) and a private `redis-server`: orders → matcher → topics →
//! cache. The cached rows equal the store's (trade recorder and market-data worker over the same
//! topics); a replay from offset 0 in a new group writes nothing; Redis going away stops the
//! worker's commits, and once it is back everything arrives.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tradestream_cache::keys::offset_field;
use tradestream_cache::{CacheConfig, CacheReader, CacheStats, KeyLayout, RedisUrl};
use tradestream_codec::avro;
use tradestream_engine::Instruments;
use tradestream_loadgen::{FlowConfig, OrderFlow};
use tradestream_market_data::{MarketDataConfig, MarketDataStats};
use tradestream_matcher::{MatcherConfig, MatcherStats};
use tradestream_runtime::partition::PartitionReader;
use tradestream_runtime::{KafkaConfig, RunError, Shutdown};
use tradestream_store::model::{Interval, OrderStateRow};
use tradestream_store::{Store, StoreUri};
use tradestream_testkit::{KafkaNode, RedisServer, RedisValue};
use tradestream_trade_recorder::fold::OrderFold;
use tradestream_trade_recorder::{TradeRecorderConfig, TradeRecorderStats};

const SUITE: &str = "the cache worker's pipeline tests";
const INPUTS: [&str; 4] = ["executions", "trades", "market-data", "candles"];

/// A broker with topics.yaml applied.
struct Broker {
    _node: Option<KafkaNode>,
    kafka: KafkaConfig,
    instruments: Instruments,
}

fn broker() -> Broker {
    let root = tradestream_testkit::repo_root();
    let instruments =
        tradestream_config::load_instruments(&root.join("instruments.yaml")).expect("instruments");
    let layout =
        tradestream_config::topics::load_topics(&root.join("topics.yaml")).expect("topics");
    let (node, addr, _) = tradestream_testkit::bench_broker(|| {
        tradestream_broker::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("broker")
            .to_string()
    });
    let kafka = KafkaConfig::new(addr);
    tradestream_runtime::topics::apply(&layout, &kafka).expect("topics");
    Broker {
        _node: node,
        kafka,
        instruments,
    }
}

/// Produces `n` orders of the flow `seed` (the `skip` first ones left out), stamped with the
/// wall clock; returns when all are acknowledged.
fn produce(b: &Broker, seed: u64, skip: u64, n: u64) {
    let producer: ThreadedProducer<DefaultProducerContext> =
        b.kafka.producer().create().expect("producer");
    let cfg = FlowConfig {
        seed,
        ..FlowConfig::default()
    };
    let mut flow = OrderFlow::new(b.instruments.iter(), &cfg);
    for i in 0..skip + n {
        let (line, key, _) = flow.next_line_at(tradestream_loadgen::wall_clock_ms());
        if i < skip {
            continue;
        }
        let mut record = BaseRecord::to("orders")
            .key(key.as_bytes())
            .payload(line.as_bytes());
        while let Err((_, r)) = producer.send(record) {
            record = r;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("orders acknowledged");
}

/// A worker on its own thread.
struct Running {
    shutdown: Shutdown,
    handle: JoinHandle<Result<(), RunError>>,
}

impl Running {
    fn spawn(f: impl FnOnce(Shutdown) -> Result<(), RunError> + Send + 'static) -> Running {
        let shutdown = Shutdown::new();
        let handle = {
            let shutdown = shutdown.clone();
            std::thread::spawn(move || f(shutdown))
        };
        Running { shutdown, handle }
    }

    fn stop(self) {
        self.shutdown.trigger();
        self.handle
            .join()
            .expect("worker thread")
            .expect("worker ran");
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The end of every partition of `topics`: one past its last record, as a fetch sees it (the
/// embedded broker's high watermark may lag behind).
fn ends(b: &Broker, topics: &[&str]) -> BTreeMap<(String, i32), i64> {
    let reader = PartitionReader::new(&b.kafka, Duration::from_secs(30)).expect("reader");
    let mut out = BTreeMap::new();
    for topic in topics {
        for p in 0..reader.partition_count(topic).expect("partitions") {
            let mut end = 0;
            reader
                .read_to_end(topic, p, 0, |m| end = rdkafka::Message::offset(m) + 1)
                .expect("read");
            out.insert(((*topic).to_owned(), p), end);
        }
    }
    out
}

/// Every decoded record of `topic`, partition by partition.
fn read_topic(b: &Broker, topic: &str) -> Vec<avro::DecodedEvent> {
    let reader = PartitionReader::new(&b.kafka, Duration::from_secs(30)).expect("reader");
    let mut out = Vec::new();
    for p in 0..reader.partition_count(topic).expect("partitions") {
        reader
            .read_to_end(topic, p, 0, |m| {
                if let Some(payload) = rdkafka::Message::payload(m) {
                    out.push(avro::decode_event(payload).expect("decodes"));
                }
            })
            .expect("read");
    }
    out
}

/// The matcher over everything in `orders` (running until stopped).
fn start_matcher(b: &Broker) -> (Running, Arc<MatcherStats>) {
    let cfg = MatcherConfig::new(b.kafka.clone(), b.instruments.clone());
    let stats = Arc::new(MatcherStats::default());
    let s = stats.clone();
    (
        Running::spawn(move |sd| tradestream_matcher::run(cfg, &sd, s)),
        stats,
    )
}

/// The cache's progress offsets of `group` under `prefix` (empty while Redis is down).
fn cache_offsets(url: &str, prefix: &str, group: &str) -> BTreeMap<String, i64> {
    let Ok(mut conn) = redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
    else {
        return BTreeMap::new();
    };
    redis::cmd("HGETALL")
        .arg(KeyLayout::new(prefix).progress(group))
        .query(&mut conn)
        .unwrap_or_default()
}

/// Whether the cache's progress reaches `ends` everywhere.
fn caught_up(url: &str, prefix: &str, group: &str, ends: &BTreeMap<(String, i32), i64>) -> bool {
    let at = cache_offsets(url, prefix, group);
    ends.iter().all(|((topic, p), &end)| {
        end == 0 || at.get(&offset_field(topic, *p)).is_some_and(|&o| o >= end)
    })
}

fn start_cache(b: &Broker, url: &str, prefix: &str, group: &str) -> (Running, Arc<CacheStats>) {
    let mut cfg = CacheConfig::new(b.kafka.clone(), RedisUrl::new(url));
    cfg.run.group = group.into();
    cfg.keys = KeyLayout::new(prefix);
    cfg.max_backoff = Duration::from_millis(500);
    // Many checkpoints (and reads back from Redis between them), not one for the whole run.
    cfg.run.max_batch = 300;
    let stats = Arc::new(CacheStats::default());
    let s = stats.clone();
    (
        Running::spawn(move |sd| tradestream_cache::run(cfg, &sd, s)),
        stats,
    )
}

/// Every key under `prefix` but the worker's bookkeeping, with its content.
fn snapshot(redis: &RedisServer, prefix: &str) -> BTreeMap<String, RedisValue> {
    let mut keys = redis.keys(prefix);
    keys.retain(|k, _| !k.starts_with("progress:") && !k.starts_with("live:"));
    keys
}

/// Every order's final state, folded from the whole `executions` topic.
fn folded_orders(b: &Broker) -> BTreeMap<(String, String), OrderStateRow> {
    let mut fold = OrderFold::new();
    let mut out = BTreeMap::new();
    for ev in read_topic(b, "executions") {
        for row in fold.apply(&ev, |_, _| None).expect("folds") {
            out.insert((row.symbol.clone(), row.order_id.clone()), row);
        }
    }
    out
}

fn store_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cache-{name}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

fn open_store(path: &std::path::Path) -> Box<dyn Store> {
    tradestream_store::open(&StoreUri::Sqlite(path.to_owned())).expect("store")
}

/// Every cached row equals the store's: orders, trades, candles, tops of book.
fn assert_cache_equals_store(
    rt: &tokio::runtime::Runtime,
    reader: &CacheReader,
    store: &mut dyn Store,
    orders: &BTreeMap<(String, String), OrderStateRow>,
    symbols: &[String],
) {
    for ((symbol, id), folded) in orders {
        let cached = rt.block_on(reader.order(symbol, id)).expect("read order");
        assert_eq!(cached.as_ref(), Some(folded), "order {symbol}/{id}");
        assert_eq!(
            store.order(symbol, id).unwrap(),
            cached,
            "order {symbol}/{id}"
        );
    }
    for symbol in symbols {
        let cached = rt.block_on(reader.trades(symbol, 100)).expect("trades");
        assert_eq!(
            cached,
            store.trades_by_symbol(symbol, 100).unwrap(),
            "{symbol} trades"
        );
        let top = rt.block_on(reader.top_of_book(symbol)).expect("top");
        assert_eq!(
            top,
            store.top_of_book(symbol).unwrap(),
            "{symbol} top of book"
        );
        for interval in Interval::ALL {
            let cached = rt
                .block_on(reader.candles(symbol, interval, 1_000))
                .expect("candles");
            let stored = store.candles(symbol, interval, 1_000).unwrap();
            assert_eq!(cached, stored, "{symbol} {} candles", interval.as_str());
        }
    }
}

fn runtime_and_reader(url: &str, prefix: &str) -> (tokio::runtime::Runtime, CacheReader) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reader = rt
        .block_on(CacheReader::connect(
            &RedisUrl::new(url),
            KeyLayout::new(prefix),
            Duration::from_secs(5),
        ))
        .expect("reader");
    (rt, reader)
}

const TIMEOUT: Duration = Duration::from_secs(240);

/// Each test runs a broker, a matcher and workers: one at a time on a 2-core machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn the_cache_holds_the_stores_rows_and_a_replay_changes_nothing() {
    let _serial = serial();
    let Some(redis) = RedisServer::start(SUITE) else {
        return;
    };
    let url = redis.url();
    let b = broker();
    let n = 3_000;
    produce(&b, 11, 0, n);
    let (matcher, mstats) = start_matcher(&b);
    wait_until("the matcher", TIMEOUT, || {
        mstats.records_in.load(Ordering::Relaxed) >= n
    });
    matcher.stop();

    // The store: trade recorder and market-data worker over the same topics.
    let path = store_path("equal");
    let recorder = {
        let (cfg, store) = (TradeRecorderConfig::new(b.kafka.clone()), open_store(&path));
        let stats = Arc::new(TradeRecorderStats::default());
        Running::spawn(move |sd| tradestream_trade_recorder::run(cfg, store, &sd, stats))
    };
    let (market, market_stats) = {
        let (cfg, store) = (MarketDataConfig::new(b.kafka.clone()), open_store(&path));
        let stats = Arc::new(MarketDataStats::default());
        let s = stats.clone();
        (
            Running::spawn(move |sd| tradestream_market_data::run(cfg, store, &sd, s)),
            stats,
        )
    };
    let market_inputs: i64 = ends(&b, &["trades", "market-data"]).values().sum();
    wait_until("the market-data worker", TIMEOUT, || {
        i64::try_from(market_stats.records_in.load(Ordering::Relaxed)).unwrap() >= market_inputs
    });
    // Its last closed candles are produced before it stops.
    market.stop();
    // Everything is in the topics now (closed candles included).
    let ends = ends(&b, &INPUTS);
    assert!(
        ends.iter().any(|((t, _), &e)| t == "trades" && e > 0),
        "the flow makes trades"
    );

    let (cache, stats) = start_cache(&b, &url, "eq:", "cache-eq");
    wait_until("the cache", TIMEOUT, || {
        caught_up(&url, "eq:", "cache-eq", &ends)
    });
    cache.stop();
    let mut store = open_store(&path);
    // The recorder has consumed everything too (its offsets are in the store).
    wait_until("the trade recorder", TIMEOUT, || {
        ends.iter()
            .filter(|((t, _), _)| t == "trades" || t == "executions")
            .all(|((t, p), &end)| {
                store
                    .resume_at(TradeRecorderConfig::DEFAULT_GROUP, t, *p)
                    .unwrap()
                    >= end
            })
    });
    recorder.stop();

    let symbols: Vec<String> = b.instruments.iter().map(|i| i.symbol.to_string()).collect();
    let orders = folded_orders(&b);
    assert!(orders.len() > 100, "{} orders", orders.len());
    let (rt, reader) = runtime_and_reader(&url, "eq:");
    assert_cache_equals_store(&rt, &reader, &mut *store, &orders, &symbols);
    let written = stats.written.load(Ordering::Relaxed);
    assert!(written > 0);
    println!(
        "first run: {}",
        tradestream_runtime::Stats::summary(&*stats)
    );

    // A replay from offset 0 in a new group: every write refused, nothing changed.
    let before = snapshot(&redis, "eq:");
    let (replay, replay_stats) = start_cache(&b, &url, "eq:", "cache-eq-replay");
    wait_until("the replay", TIMEOUT, || {
        caught_up(&url, "eq:", "cache-eq-replay", &ends)
    });
    replay.stop();
    println!(
        "replay: {}",
        tradestream_runtime::Stats::summary(&*replay_stats)
    );
    assert_eq!(
        replay_stats.written.load(Ordering::Relaxed),
        0,
        "a replay writes nothing"
    );
    assert!(replay_stats.refused.load(Ordering::Relaxed) > 0);
    assert_eq!(
        snapshot(&redis, "eq:"),
        before,
        "the replay changed the cache"
    );
    assert_cache_equals_store(&rt, &reader, &mut *store, &orders, &symbols);
}

/// The cache group's committed offsets on the input topics.
fn committed(b: &Broker, group: &str) -> BTreeMap<(String, i32), i64> {
    let consumer: BaseConsumer = b.kafka.group_consumer(group).create().expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    let keys: Vec<(String, i32)> = ends(b, &INPUTS).into_keys().collect();
    for (t, p) in &keys {
        tpl.add_partition(t, *p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    keys.into_iter()
        .map(|(t, p)| {
            let at = got
                .find_partition(&t, p)
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(-1);
            ((t, p), at)
        })
        .collect()
}

#[test]
fn redis_down_stops_the_commits_and_everything_arrives_once_it_is_back() {
    let _serial = serial();
    let Some(mut redis) = RedisServer::start(SUITE) else {
        return;
    };
    let url = redis.url();
    let b = broker();
    let (matcher, mstats) = start_matcher(&b);
    let group = "cache-outage";
    let (cache, stats) = start_cache(&b, &url, "out:", group);

    // First half, with Redis up.
    let half = 1_500;
    produce(&b, 5, 0, half);
    wait_until("the matcher", TIMEOUT, || {
        mstats.records_in.load(Ordering::Relaxed) >= half
    });
    let first = ends(&b, &INPUTS);
    wait_until("the cache", TIMEOUT, || {
        caught_up(&url, "out:", group, &first)
    });
    wait_until("the group's commit", TIMEOUT, || {
        committed(&b, group)
            .iter()
            .all(|(k, &at)| first[k] == 0 || at >= first[k])
    });

    // Redis goes away; the second half flows through the matcher meanwhile.
    redis.stop();
    let frozen = committed(&b, group);
    produce(&b, 5, half, half);
    wait_until("the matcher", TIMEOUT, || {
        mstats.records_in.load(Ordering::Relaxed) >= 2 * half
    });
    wait_until("the worker to notice", TIMEOUT, || {
        stats.restarts.load(Ordering::Relaxed) > 0
    });
    std::thread::sleep(Duration::from_secs(3));
    let during = committed(&b, group);
    for (k, &at) in &during {
        assert!(
            at <= frozen[k].max(first[k]),
            "{k:?} committed to {at} while Redis was down (it held {})",
            first[k]
        );
    }

    // Redis is back, empty (no persistence): the worker replays from the start and everything
    // arrives.
    matcher.stop();
    redis.restart();
    let all = ends(&b, &INPUTS);
    wait_until("the cache after the outage", TIMEOUT, || {
        caught_up(&url, "out:", group, &all)
    });
    cache.stop();
    println!("outage: {}", tradestream_runtime::Stats::summary(&*stats));

    let (rt, reader) = runtime_and_reader(&url, "out:");
    let orders = folded_orders(&b);
    assert!(orders.len() > 100);
    for ((symbol, id), folded) in &orders {
        let cached = rt.block_on(reader.order(symbol, id)).expect("order");
        assert_eq!(cached.as_ref(), Some(folded), "order {symbol}/{id}");
    }
    // Tops of book: the last of each symbol on market-data.
    let mut tops = BTreeMap::new();
    for ev in read_topic(&b, "market-data") {
        if let Some(top) = tradestream_market_data::candles::top_of_book(&ev) {
            tops.insert(top.symbol.clone(), top);
        }
    }
    assert!(!tops.is_empty());
    for (symbol, top) in &tops {
        assert_eq!(
            rt.block_on(reader.top_of_book(symbol)).unwrap().as_ref(),
            Some(top),
            "{symbol}"
        );
    }
    // The newest trades of each symbol.
    let mut trades: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for ev in read_topic(&b, "trades") {
        if let Some(t) = tradestream_trade_recorder::fold::trade_row(&ev) {
            trades.entry(t.symbol.clone()).or_default().push(t);
        }
    }
    for (symbol, mut rows) in trades {
        rows.sort_by_key(|t| std::cmp::Reverse(t.seq));
        rows.truncate(100);
        assert_eq!(
            rt.block_on(reader.trades(&symbol, 100)).unwrap(),
            rows,
            "{symbol}"
        );
    }
}
