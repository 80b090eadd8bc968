//! # The downstream workers beside the matcher, on the same broker, in one run
//!
//! `cargo bench -p tradestream-trade-recorder --bench recorder_vs_matcher` starts the bench
//! broker (embedded tansu in-process; a private Apache Kafka node with
//! `TRADESTREAM_TEST_BROKER=kafka`), applies topics.yaml, produces one generated order flow
//! (`BENCH_ORDERS`, default 100 000), then
//! 1. runs the matcher over it, timed until every order is consumed and its outputs are
//!    acknowledged: the rates at which it writes `trades` + `executions` (the recorder's input)
//!    and `trades` + `market-data` (the market-data worker's) are what they must keep up with;
//! 2. runs the trade recorder over `trades` + `executions` into the store, timed until it has
//!    consumed everything;
//! 3. runs the market-data worker over `trades` + `market-data` (candles, tops of book, the
//!    `candles` topic) into the same store, timed the same way.
//!
//! The store is a fresh SQLite file, or, when `SCYLLA_URI` is set (`deploy/local/services up
//! cassandra && eval "$(deploy/local/services env)"`), a keyspace of its own on that
//! Cassandra/Scylla cluster, dropped at the end.
//!
//! The last line is one JSON object:
//! `{"broker":…,"store":…,"matcher_records_per_s":…,"recorder_records_per_s":…,"store_rows_per_s":…,
//! "ratio":…,"matcher_market_records_per_s":…,"market_data_records_per_s":…,
//! "market_data_rows_per_s":…,"market_data_ratio":…}` where `matcher_records_per_s` counts the
//! matcher's `trades` + `executions` records, `store_rows_per_s` the recorder's trade and
//! order-state rows, `ratio` = recorder / matcher records per second,
//! `matcher_market_records_per_s` the matcher's `trades` + `market-data` records,
//! `market_data_rows_per_s` the candle rows written, and `market_data_ratio` = market-data
//! worker / matcher records per second (each ≥ 1: the worker keeps up).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tradestream_loadgen::{FlowConfig, OrderFlow};
use tradestream_market_data::{MarketDataConfig, MarketDataStats};
use tradestream_matcher::{MatcherConfig, MatcherStats};
use tradestream_runtime::partition::PartitionReader;
use tradestream_runtime::{KafkaConfig, Shutdown};
use tradestream_store::{StoreUri, open};
use tradestream_trade_recorder::{TradeRecorderConfig, TradeRecorderStats};

/// Produces `n` orders; returns when all are acknowledged.
fn produce(kafka: &KafkaConfig, instruments: &tradestream_engine::Instruments, n: u64) {
    let producer: ThreadedProducer<DefaultProducerContext> =
        kafka.producer().create().expect("producer");
    let mut flow = OrderFlow::new(instruments.iter(), &FlowConfig::default());
    for _ in 0..n {
        // Stamped with the wall clock: the matcher rejects a ts far from the broker's.
        let (line, key, _) = flow.next_line_at(tradestream_loadgen::wall_clock_ms());
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

/// Waits until `done()` reaches `n` (bounded), then stops the worker thread.
fn finish<E: std::fmt::Debug>(
    n: u64,
    done: impl Fn() -> u64,
    shutdown: &Shutdown,
    handle: std::thread::JoinHandle<Result<(), E>>,
) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while done() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    shutdown.trigger();
    handle.join().expect("worker thread").expect("worker ran");
    assert!(done() >= n, "the worker did not see every record");
}

fn main() {
    let n: u64 = std::env::var("BENCH_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let root = tradestream_testkit::repo_root();
    let instruments =
        tradestream_config::load_instruments(&root.join("instruments.yaml")).expect("instruments");
    let layout =
        tradestream_config::topics::load_topics(&root.join("topics.yaml")).expect("topics");
    // TRADESTREAM_TEST_BROKER=kafka runs it on a private Apache Kafka node instead.
    let (_node, addr, broker) = tradestream_testkit::bench_broker(|| {
        tradestream_broker::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("broker")
            .to_string()
    });
    let kafka = KafkaConfig::new(addr.clone());
    tradestream_runtime::topics::apply(&layout, &kafka).expect("topics");
    produce(&kafka, &instruments, n);
    println!("recorder_vs_matcher: {n} orders produced to the {broker} broker on {addr}");

    // 1. The matcher.
    let mut cfg = MatcherConfig::new(kafka.clone(), instruments);
    cfg.run.group = "bench-matcher".into();
    let shutdown = Shutdown::new();
    let stats = Arc::new(MatcherStats::default());
    let start = Instant::now();
    let handle = {
        let (shutdown, stats) = (shutdown.clone(), stats.clone());
        std::thread::spawn(move || tradestream_matcher::run(cfg, &shutdown, stats))
    };
    finish(
        n,
        || stats.records_in.load(Ordering::Relaxed),
        &shutdown,
        handle,
    );
    let matcher_secs = start.elapsed().as_secs_f64();

    let reader = PartitionReader::new(&kafka, Duration::from_secs(60)).expect("reader");
    let partitions = reader.partition_count("trades").expect("partitions");
    let count = |topic: &str| {
        let mut records = 0u64;
        for p in 0..partitions {
            reader
                .read_to_end(topic, p, 0, |_| records += 1)
                .expect("read");
        }
        records
    };
    let (trades, executions, market) = (count("trades"), count("executions"), count("market-data"));
    let records = trades + executions;
    let matcher_rps = records as f64 / matcher_secs;
    let matcher_market_rps = (trades + market) as f64 / matcher_secs;
    println!(
        "matcher:  {n} orders → {trades} trades, {executions} executions, {market} market data in {matcher_secs:.2}s = {matcher_rps:.0} trades + executions/s, {matcher_market_rps:.0} trades + market data/s"
    );

    // 2. The trade recorder into a fresh store.
    let store = BenchStore::new();
    let shutdown = Shutdown::new();
    let stats = Arc::new(TradeRecorderStats::default());
    let start = Instant::now();
    let handle = {
        let (shutdown, stats, store) = (shutdown.clone(), stats.clone(), store.open());
        let mut cfg = TradeRecorderConfig::new(kafka.clone());
        cfg.run.max_batch = max_batch();
        std::thread::spawn(move || tradestream_trade_recorder::run(cfg, store, &shutdown, stats))
    };
    finish(
        records,
        || stats.records_in.load(Ordering::Relaxed),
        &shutdown,
        handle,
    );
    let secs = start.elapsed().as_secs_f64();
    let rows =
        stats.trades_stored.load(Ordering::Relaxed) + stats.orders_stored.load(Ordering::Relaxed);
    let recorder_rps = records as f64 / secs;
    let rows_ps = rows as f64 / secs;
    println!(
        "recorder: {records} records → {rows} rows in {secs:.2}s = {recorder_rps:.0} records/s, {rows_ps:.0} rows/s ({})",
        store.uri
    );

    // 3. The market-data worker into the same store.
    let market_records = trades + market;
    let shutdown = Shutdown::new();
    let stats = Arc::new(MarketDataStats::default());
    let start = Instant::now();
    let handle = {
        let (shutdown, stats, store) = (shutdown.clone(), stats.clone(), store.open());
        let mut cfg = MarketDataConfig::new(kafka.clone());
        cfg.run.max_batch = max_batch();
        std::thread::spawn(move || tradestream_market_data::run(cfg, store, &shutdown, stats))
    };
    finish(
        market_records,
        || stats.records_in.load(Ordering::Relaxed),
        &shutdown,
        handle,
    );
    let secs = start.elapsed().as_secs_f64();
    let candle_rows = stats.candles_stored.load(Ordering::Relaxed);
    let market_rps = market_records as f64 / secs;
    let market_rows_ps = candle_rows as f64 / secs;
    println!(
        "market data: {market_records} records → {candle_rows} candle rows in {secs:.2}s = {market_rps:.0} records/s, {market_rows_ps:.0} rows/s"
    );
    let store_name = match &store.uri {
        StoreUri::Sqlite(_) => "sqlite".to_owned(),
        scylla => scylla.to_string(),
    };
    store.remove();
    println!(
        "{}",
        serde_json::json!({
            "broker": broker,
            "store": store_name,
            "matcher_records_per_s": matcher_rps.round(),
            "recorder_records_per_s": recorder_rps.round(),
            "store_rows_per_s": rows_ps.round(),
            "ratio": (recorder_rps / matcher_rps * 1000.0).round() / 1000.0,
            "matcher_market_records_per_s": matcher_market_rps.round(),
            "market_data_records_per_s": market_rps.round(),
            "market_data_rows_per_s": market_rows_ps.round(),
            "market_data_ratio": (market_rps / matcher_market_rps * 1000.0).round() / 1000.0,
        })
    );
}

/// The bench's results store: a fresh SQLite file, or a keyspace of its own on the cluster
/// `SCYLLA_URI` names.
struct BenchStore {
    uri: StoreUri,
}

impl BenchStore {
    fn new() -> Self {
        let tag = format!(
            "{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        );
        let uri = match std::env::var("SCYLLA_URI").ok().filter(|u| !u.is_empty()) {
            Some(uri) => {
                let StoreUri::Scylla { nodes, keyspace } = uri.parse().expect("SCYLLA_URI") else {
                    panic!("SCYLLA_URI must be a scylla:// URI, got {uri:?}");
                };
                let mut keyspace = format!("{keyspace}_bench");
                keyspace.truncate(47 - tag.len());
                let keyspace = format!("{keyspace}_{tag}");
                // Workers do not create the schema: migrate it as `store migrate` does.
                let options =
                    tradestream_store::scylla::ScyllaOptions::from_env().expect("SCYLLA_*");
                tradestream_store::scylla::ScyllaStore::migrate_keyspace_in_local_dc(
                    &nodes, &keyspace, 1, &options,
                )
                .expect("migrate the bench keyspace");
                StoreUri::Scylla { nodes, keyspace }
            }
            None => {
                let path = std::env::temp_dir().join(format!("recorder-bench-{tag}.db"));
                StoreUri::Sqlite(path)
            }
        };
        let store = BenchStore { uri };
        // A keyspace of this name cannot exist yet; a file in the temp dir might.
        if matches!(store.uri, StoreUri::Sqlite(_)) {
            store.remove();
        }
        store
    }

    /// A connection (created and migrated on first use).
    fn open(&self) -> Box<dyn tradestream_store::Store> {
        open(&self.uri).expect("store")
    }

    /// Deletes the SQLite file, or drops the keyspace.
    fn remove(&self) {
        match &self.uri {
            StoreUri::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            StoreUri::Scylla { nodes, keyspace } => {
                if let Ok(store) = tradestream_store::scylla::ScyllaStore::connect(nodes, keyspace)
                    && let Err(e) = store.drop_keyspace()
                {
                    eprintln!("could not drop keyspace {keyspace}: {e}");
                }
            }
        }
    }
}

/// `BENCH_MAX_BATCH`: the store workers' records per store transaction (default: the loop's).
fn max_batch() -> usize {
    std::env::var("BENCH_MAX_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(tradestream_runtime::LoopConfig::DEFAULT_MAX_BATCH)
}
