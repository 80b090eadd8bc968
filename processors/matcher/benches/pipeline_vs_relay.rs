//! # Matcher versus a bare relay, on the same embedded broker, in one run
//!
//! `cargo bench --bench pipeline_vs_relay` starts tansu in-process, applies topics.yaml, produces
//! one generated order flow (`BENCH_ORDERS`, default 100 000) to `orders`, then
//! 1. a bare relay: a consumer group reads `orders` and writes every record unchanged to the same
//!    partition of `relay-out`, with the matcher's client settings (idempotent, `acks=all`,
//!    same batching), flushing and committing every 2 000 records as the matcher does;
//! 2. the matcher, over the same records, writing executions, trades and market data (Avro);
//! 3. on Apache Kafka (`TRADESTREAM_TEST_BROKER=kafka`) the matcher again with
//!    `--guarantee exactly-once`, into output topics of its own (`executions.eos`, …): one
//!    transaction per round.
//!
//! Each is timed from its start until all input is consumed and its outputs are acknowledged.
//! The last line is one JSON object:
//! `{"relay_records_per_s":…,"matcher_records_per_s":…,"matcher_orders_per_s":…,"ratio":…}`
//! where `ratio` = matcher output records per second / relay output records per second, plus
//! `exactly_once_orders_per_s` and `exactly_once_vs_effectively_once` on Apache Kafka.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tradestream_config::topics::TopicLayout;
use tradestream_loadgen::{FlowConfig, OrderFlow};
use tradestream_matcher::{MatcherConfig, MatcherStats};
use tradestream_runtime::{Guarantee, KafkaConfig, Shutdown};

const BATCH: usize = 2_000;

fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Produces `n` orders; returns when all are acknowledged.
fn produce(kafka: &KafkaConfig, instruments: &tradestream_engine::Instruments, n: u64) {
    let producer: ThreadedProducer<DefaultProducerContext> =
        kafka.producer().create().expect("producer");
    let mut flow = OrderFlow::new(instruments.iter(), &FlowConfig::default());
    for _ in 0..n {
        // Stamped with the wall clock: the matcher rejects a ts far from the broker's.
        let (line, key, _) = flow.next_line_at(tradestream_loadgen::wall_clock_ms());
        send(
            &producer,
            BaseRecord::to("orders")
                .key(key.as_bytes())
                .payload(line.as_bytes()),
        );
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("orders acknowledged");
}

/// The relay: consume → produce unchanged → flush → commit, per batch. Returns its duration.
fn relay(kafka: &KafkaConfig, n: u64) -> Duration {
    let consumer: BaseConsumer = kafka
        .group_consumer("bench-relay")
        .create()
        .expect("consumer");
    let producer: ThreadedProducer<DefaultProducerContext> =
        kafka.producer().create().expect("producer");
    consumer.subscribe(&["orders"]).expect("subscribe");
    let start = Instant::now();
    let mut done = 0u64;
    let deadline = start + Duration::from_secs(600);
    let mut next: std::collections::BTreeMap<i32, i64> = std::collections::BTreeMap::new();
    while done < n && Instant::now() < deadline {
        let mut taken = 0;
        let mut wait = Duration::from_millis(100);
        while taken < BATCH {
            let Some(Ok(m)) = consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            let mut record = BaseRecord::to("relay-out")
                .partition(m.partition())
                .payload(m.payload().unwrap_or_default());
            if let Some(k) = m.key() {
                record = record.key(k);
            }
            send(&producer, record);
            next.insert(m.partition(), m.offset() + 1);
            taken += 1;
        }
        if taken > 0 {
            // As the matcher: outputs acknowledged, then the input offsets committed.
            producer
                .flush(Duration::from_secs(60))
                .expect("relay flush");
            let mut tpl = rdkafka::TopicPartitionList::new();
            for (p, o) in &next {
                tpl.add_partition_offset("orders", *p, rdkafka::Offset::Offset(*o))
                    .expect("offset");
            }
            consumer.commit(&tpl, CommitMode::Sync).expect("commit");
            done += taken as u64;
        }
    }
    assert_eq!(done, n, "the relay did not see every order");
    start.elapsed()
}

/// The output topics of a matcher run, with `suffix` appended (a run per guarantee, each into
/// topics of its own).
const OUTPUTS: [&str; 5] = [
    "executions",
    "trades",
    "market-data",
    "matcher-snapshots",
    "dead-letters",
];

/// The matcher over the same input, into the output topics named with `suffix`. Returns its
/// duration and output record count.
fn matcher(
    kafka: &KafkaConfig,
    instruments: tradestream_engine::Instruments,
    n: u64,
    guarantee: Guarantee,
    suffix: &str,
) -> (Duration, u64) {
    let mut cfg = MatcherConfig::new(kafka.clone(), instruments);
    cfg.run.group = format!("bench-matcher{suffix}");
    cfg.run.guarantee = guarantee;
    let [executions, trades, market_data, snapshots, dead_letters] =
        OUTPUTS.map(|t| format!("{t}{suffix}"));
    cfg.executions = executions;
    cfg.trades = trades;
    cfg.market_data = market_data;
    cfg.snapshots = snapshots;
    cfg.run.dead_letters = dead_letters;
    cfg.snapshot_every_records = 10_000;
    let shutdown = Shutdown::new();
    let stats = Arc::new(MatcherStats::default());
    let start = Instant::now();
    let handle = {
        let (shutdown, stats) = (shutdown.clone(), stats.clone());
        std::thread::spawn(move || tradestream_matcher::run(cfg, &shutdown, stats))
    };
    let deadline = start + Duration::from_secs(600);
    while stats.records_in.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    shutdown.trigger();
    handle.join().expect("matcher thread").expect("matcher ran");
    let elapsed = start.elapsed();
    assert_eq!(
        stats.records_in.load(Ordering::Relaxed),
        n,
        "the matcher did not see every order"
    );
    (elapsed, stats.records_out.load(Ordering::Relaxed))
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
    let mut specs = layout.topics().to_vec();
    let mut out = layout.get("executions").expect("executions").clone();
    out.name = "relay-out".into();
    out.co_partition = None;
    specs.push(out);
    // Under exactly-once (Apache Kafka only) the matcher runs again, into topics of its own.
    let eos = std::env::var("TRADESTREAM_TEST_BROKER").is_ok_and(|b| b == "kafka");
    if eos {
        for name in OUTPUTS {
            let mut spec = layout.get(name).expect("output topic").clone();
            spec.name = format!("{name}.eos");
            spec.co_partition = None;
            specs.push(spec);
        }
    }

    // TRADESTREAM_TEST_BROKER=kafka runs it on a private Apache Kafka node instead.
    let (_node, addr, broker) = tradestream_testkit::bench_broker(|| {
        tradestream_broker::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("broker")
            .to_string()
    });
    let kafka = KafkaConfig::new(addr.clone());
    tradestream_runtime::topics::apply(&TopicLayout::new(specs), &kafka).expect("topics");
    let produced = Instant::now();
    produce(&kafka, &instruments, n);
    println!(
        "pipeline_vs_relay: {n} orders produced in {:.1}s to the {broker} broker on {addr}",
        produced.elapsed().as_secs_f64()
    );

    let relay_time = relay(&kafka, n);
    let relay_rps = n as f64 / relay_time.as_secs_f64();
    println!(
        "relay:   {n} records in {:.2}s = {relay_rps:.0} records/s",
        relay_time.as_secs_f64()
    );
    let (matcher_time, outputs) = matcher(
        &kafka,
        instruments.clone(),
        n,
        Guarantee::EffectivelyOnce,
        "",
    );
    let secs = matcher_time.as_secs_f64();
    let matcher_rps = outputs as f64 / secs;
    let matcher_ops = n as f64 / secs;
    println!(
        "matcher: {n} orders → {outputs} records in {secs:.2}s = {matcher_rps:.0} records/s ({matcher_ops:.0} orders/s)"
    );
    let mut figures = serde_json::json!({
        "broker": broker,
        "relay_records_per_s": relay_rps.round(),
        "matcher_records_per_s": matcher_rps.round(),
        "matcher_orders_per_s": matcher_ops.round(),
        "ratio": (matcher_rps / relay_rps * 1000.0).round() / 1000.0,
    });
    if eos {
        let (eos_time, eos_outputs) =
            matcher(&kafka, instruments, n, Guarantee::ExactlyOnce, ".eos");
        let secs = eos_time.as_secs_f64();
        let eos_ops = n as f64 / secs;
        println!(
            "matcher, exactly-once: {n} orders → {eos_outputs} records in {secs:.2}s = {eos_ops:.0} orders/s"
        );
        figures["exactly_once_orders_per_s"] = eos_ops.round().into();
        figures["exactly_once_vs_effectively_once"] =
            ((eos_ops / matcher_ops * 1000.0).round() / 1000.0).into();
    }
    println!("{figures}");
}
