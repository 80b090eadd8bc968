//! What the matcher's benches share: the broker, topics, producing an order flow (at full speed
//! or paced), and one matcher run into topics of its own.
// Each bench uses part of this.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tradestream_config::topics::{TopicLayout, TopicSpec};
use tradestream_engine::Instruments;
use tradestream_loadgen::{FlowConfig, OrderFlow};
use tradestream_matcher::{MatcherConfig, MatcherStats};
use tradestream_runtime::{Guarantee, KafkaConfig, Shutdown};

/// An environment variable as a number, or `default`.
pub fn env_or(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The repository's instruments and topic layout.
pub fn repo_config() -> (Instruments, TopicLayout) {
    let root = tradestream_testkit::repo_root();
    let instruments =
        tradestream_config::load_instruments(&root.join("instruments.yaml")).expect("instruments");
    let layout =
        tradestream_config::topics::load_topics(&root.join("topics.yaml")).expect("topics");
    (instruments, layout)
}

/// A copy of the spec of `like` named `name`, outside any co-partitioning group.
pub fn topic_like(layout: &TopicLayout, like: &str, name: &str) -> TopicSpec {
    let mut spec = layout.get(like).expect("topic in topics.yaml").clone();
    spec.name = name.into();
    spec.co_partition = None;
    spec
}

/// The output topics of a matcher run.
pub const OUTPUTS: [&str; 5] = [
    "executions",
    "trades",
    "market-data",
    "matcher-snapshots",
    "dead-letters",
];

/// The output topics of the matcher run named `suffix` (`executions{suffix}`, …).
pub fn matcher_topics(layout: &TopicLayout, suffix: &str) -> Vec<TopicSpec> {
    OUTPUTS
        .iter()
        .map(|t| topic_like(layout, t, &format!("{t}{suffix}")))
        .collect()
}

/// The bench's broker (embedded, or a private Apache Kafka node with
/// `TRADESTREAM_TEST_BROKER=kafka`) with `specs` created: the node to keep, the client settings,
/// the broker's address and its name.
pub fn broker(
    specs: Vec<TopicSpec>,
) -> (
    Option<tradestream_testkit::KafkaNode>,
    KafkaConfig,
    String,
    &'static str,
) {
    let (node, addr, name) = tradestream_testkit::bench_broker(|| {
        tradestream_broker::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("broker")
            .to_string()
    });
    let kafka = KafkaConfig::new(addr.clone());
    tradestream_runtime::topics::apply(&TopicLayout::new(specs), &kafka).expect("topics");
    (node, kafka, addr, name)
}

/// The matcher's client settings: `kafka` plus `BENCH_MATCHER_KAFKA=key=value,…` (to see where
/// time goes, e.g. `fetch.wait.max.ms=10`); the measuring clients keep the project's settings.
pub fn matcher_kafka(kafka: &KafkaConfig) -> KafkaConfig {
    let mut k = kafka.clone();
    for kv in std::env::var("BENCH_MATCHER_KAFKA")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((key, value)) = kv.split_once('=') {
            k.passthrough.insert(key.trim().into(), value.trim().into());
        }
    }
    k
}

/// The project's producer (the workers' settings).
pub fn producer(kafka: &KafkaConfig) -> ThreadedProducer<DefaultProducerContext> {
    kafka.producer().create().expect("producer")
}

/// Sends one record, waiting while the producer's queue is full.
pub fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    key: &str,
    line: &str,
) {
    let mut record = BaseRecord::to(topic)
        .key(key.as_bytes())
        .payload(line.as_bytes());
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

/// `n` generated (key, line) pairs of the default seeded flow, stamped with the wall clock now.
pub fn flow_lines(instruments: &Instruments, n: u64) -> Vec<(String, String)> {
    let mut flow = OrderFlow::new(instruments.iter(), &FlowConfig::default());
    (0..n)
        .map(|_| {
            let (line, key, _) = flow.next_line_at(tradestream_loadgen::wall_clock_ms());
            (key, line)
        })
        .collect()
}

/// Sends `lines` to `topic` at full speed; returns when all are acknowledged, with the time
/// from the first send to the last acknowledgement.
pub fn produce_all(kafka: &KafkaConfig, topic: &str, lines: &[(String, String)]) -> Duration {
    let producer = producer(kafka);
    let start = Instant::now();
    for (key, line) in lines {
        send(&producer, topic, key, line);
    }
    producer
        .flush(Duration::from_secs(300))
        .expect("records acknowledged");
    start.elapsed()
}

/// Sends `n` orders of `flow` to `topic` at `rate` per second, each stamped with the wall clock
/// as it is sent (the latency clock starts there); returns the time from the first send to the
/// last (the acknowledgements are awaited after).
pub fn produce_paced(
    producer: &ThreadedProducer<DefaultProducerContext>,
    flow: &mut OrderFlow,
    topic: &str,
    rate: u64,
    n: u64,
) -> Duration {
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < n {
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(n);
        while sent < due {
            let (line, key, _) = flow.next_line_at(tradestream_loadgen::wall_clock_ms());
            send(producer, topic, &key, &line);
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed();
    producer
        .flush(Duration::from_secs(120))
        .expect("orders acknowledged");
    elapsed
}

/// A matcher on a thread of its own, reading `orders` in group `bench-matcher{suffix}` into the
/// output topics named with `suffix`.
pub struct RunningMatcher {
    pub shutdown: Shutdown,
    pub stats: Arc<MatcherStats>,
    pub started: Instant,
    handle: std::thread::JoinHandle<Result<(), tradestream_runtime::RunError>>,
}

impl RunningMatcher {
    pub fn start(kafka: &KafkaConfig, instruments: &Instruments, suffix: &str) -> Self {
        Self::start_with(kafka, instruments, suffix, Guarantee::EffectivelyOnce)
    }

    /// [`RunningMatcher::start`] under `guarantee`.
    pub fn start_with(
        kafka: &KafkaConfig,
        instruments: &Instruments,
        suffix: &str,
        guarantee: Guarantee,
    ) -> Self {
        let mut cfg = MatcherConfig::new(kafka.clone(), instruments.clone());
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
        // BENCH_MATCHER_MAX_BATCH: records per round of the loop (to see what a round costs).
        if let Ok(v) = std::env::var("BENCH_MATCHER_MAX_BATCH") {
            cfg.run.max_batch = v.parse().expect("BENCH_MATCHER_MAX_BATCH");
        }
        let shutdown = Shutdown::new();
        let stats = Arc::new(MatcherStats::default());
        let started = Instant::now();
        let handle = {
            let (shutdown, stats) = (shutdown.clone(), stats.clone());
            std::thread::spawn(move || tradestream_matcher::run(cfg, &shutdown, stats))
        };
        RunningMatcher {
            shutdown,
            stats,
            started,
            handle,
        }
    }

    /// Waits (bounded) until `n` input records are consumed, then stops the matcher (it flushes,
    /// checkpoints and commits on the way out). Returns the time from its start to its end, and
    /// from its first record (after its group join and restores, within 5 ms) to its end.
    pub fn finish_after(self, n: u64) -> (Duration, Duration) {
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut first = None;
        loop {
            let done = self.stats.records_in.load(Ordering::Relaxed);
            if done > 0 {
                first.get_or_insert_with(Instant::now);
            }
            if done >= n || Instant::now() >= deadline || self.handle.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.shutdown.trigger();
        self.handle
            .join()
            .expect("matcher thread")
            .expect("matcher ran");
        let elapsed = self.started.elapsed();
        assert!(
            self.stats.records_in.load(Ordering::Relaxed) >= n,
            "the matcher did not see every order"
        );
        let after_first = first.map_or(elapsed, |f| f.elapsed());
        (elapsed, after_first)
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `x` rounded to 3 decimals.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
