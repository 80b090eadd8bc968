//! # The trade recorder beside the matcher, on the same embedded broker, in one run
//!
//! `cargo bench -p tradestream-trade-recorder --bench recorder_vs_matcher` starts tansu
//! in-process, applies topics.yaml, produces one generated order flow (`BENCH_ORDERS`, default
//! 100 000), then
//! 1. runs the matcher over it, timed until every order is consumed and its outputs are
//!    acknowledged: the rate at which it writes `trades` + `executions` is what the recorder must
//!    keep up with;
//! 2. runs the trade recorder over those two topics into a fresh SQLite store (WAL, one
//!    transaction per batch with the offsets), timed until it has consumed everything.
//!
//! The last line is one JSON object:
//! `{"matcher_records_per_s":…,"recorder_records_per_s":…,"store_rows_per_s":…,"ratio":…}` where
//! `matcher_records_per_s` counts the matcher's `trades` + `executions` records, `store_rows_per_s`
//! counts trade and order-state rows written, and `ratio` = recorder / matcher records per
//! second (≥ 1: the recorder keeps up).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tradestream_loadgen::{FlowConfig, OrderFlow};
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
    let mut records = 0u64;
    for topic in ["trades", "executions"] {
        for p in 0..partitions {
            reader
                .read_to_end(topic, p, 0, |_| records += 1)
                .expect("read");
        }
    }
    let matcher_rps = records as f64 / matcher_secs;
    println!(
        "matcher:  {n} orders → {records} trades + executions in {matcher_secs:.2}s = {matcher_rps:.0} records/s"
    );

    // 2. The trade recorder into a fresh SQLite store.
    let path = std::env::temp_dir().join(format!("recorder-bench-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = open(&StoreUri::Sqlite(path.clone())).expect("store");
    let cfg = TradeRecorderConfig::new(kafka.clone());
    let shutdown = Shutdown::new();
    let stats = Arc::new(TradeRecorderStats::default());
    let start = Instant::now();
    let handle = {
        let (shutdown, stats) = (shutdown.clone(), stats.clone());
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
        "recorder: {records} records → {rows} rows in {secs:.2}s = {recorder_rps:.0} records/s, {rows_ps:.0} rows/s"
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    println!(
        "{}",
        serde_json::json!({
            "broker": broker,
            "matcher_records_per_s": matcher_rps.round(),
            "recorder_records_per_s": recorder_rps.round(),
            "store_rows_per_s": rows_ps.round(),
            "ratio": (recorder_rps / matcher_rps * 1000.0).round() / 1000.0,
        })
    );
}
