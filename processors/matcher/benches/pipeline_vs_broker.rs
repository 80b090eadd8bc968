//! # The matcher beside the broker's own ceiling, on the same broker, in one run
//!
//! `cargo bench -p tradestream-matcher --bench pipeline_vs_broker` starts the bench broker
//! (embedded tansu in-process; a private Apache Kafka node with `TRADESTREAM_TEST_BROKER=kafka`),
//! generates one order flow (`BENCH_ORDERS`, default 300 000: the size the broker's ceiling was
//! first measured at, where the group join weighs less) and writes it to `orders`, then
//! runs, alternating, `BENCH_RUNS` times (default 3):
//! 1. **the ceiling**: a bare rdkafka producer with the workers' settings
//!    (`KafkaConfig::producer()`) writes the same records at full speed to a fresh topic shaped
//!    like `orders` (timed from the first send to the last acknowledgement), and a bare group
//!    consumer (`KafkaConfig::group_consumer()`, no processing, no commits) reads them back
//!    (timed from its subscription to the last record, group join included);
//! 2. **the matcher** over `orders` in a fresh group, into output topics of its own, timed from
//!    its start until every order is consumed and its outputs acknowledged and committed; on
//!    Apache Kafka once more under `exactly-once` (one transaction per commit interval);
//! 3. on Apache Kafka, **a Kafka Streams relay** (`deploy/local/kstreams-relay`: byte arrays,
//!    `stream(orders).to(out)`, `exactly_once_v2`, 100 ms commits, one stream thread), a child
//!    JVM over the same pre-filled `orders`, timed until every record is readable
//!    (`read_committed`) on its output topic: from its `RUNNING` state (the headline) and from
//!    the process's start.
//!
//! Figures are medians over the runs. The last line is one JSON object:
//! `{"broker":…,"orders":…,"runs":…,"producer_records_per_s":…,"consumer_records_per_s":…,
//! "matcher_orders_per_s":…,"matcher_records_per_s":…,"ratio":…}` with `ratio` = matcher
//! orders/s ÷ consumer-ceiling records/s (goal ≥ 0.5), `consumer_records_per_s_after_first` =
//! the consumer from its first record (without its group join),
//! `matcher_orders_per_s_after_first` = the matcher from its first record (without its group
//! join and restores), `flush_ms` and `commit_ms` = the medians of two round trips timed on the
//! quiet broker after each ceiling run (one record sent and `Producer::flush`ed on a
//! `ThreadedProducer`, which takes 100 ms and which the loop therefore no longer uses; a
//! synchronous offset commit), plus on Apache Kafka `kstreams_records_per_s` (from RUNNING),
//! `kstreams_records_per_s_with_start`, `ratio_vs_kstreams` = matcher orders/s from its first
//! record ÷ relay records/s from RUNNING, and `ratio_vs_kstreams_with_start` = both with their
//! starts (goal ≥ 1.0).
//!
//! `BENCH_MATCHER_KAFKA=key=value,…` gives the matcher's clients extra librdkafka settings (key
//! `matcher_kafka` in the JSON), to see where its time goes.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{env_or, median, round3};
use rdkafka::consumer::{BaseConsumer, Consumer};
use tradestream_loadgen::latency::{LatencyReader, Outcomes};
use tradestream_runtime::{Guarantee, KafkaConfig};
use tradestream_testkit::{TestBroker, kstreams};

/// The two round trips every round of the worker loop waits for, each timed 20 times on a
/// quiet broker: one record sent to `topic` and flushed (acknowledged), and a synchronous commit
/// of `consumer`'s position. Returns their medians in milliseconds.
fn round_trips(kafka: &KafkaConfig, topic: &str, consumer: &BaseConsumer) -> (f64, f64) {
    use rdkafka::producer::Producer;
    let producer = common::producer(kafka);
    let position = consumer.position().expect("position");
    let (mut flush, mut commit) = (vec![], vec![]);
    for _ in 0..20 {
        let start = Instant::now();
        common::send(&producer, topic, "BTC-USD", "{}");
        producer
            .flush(Duration::from_secs(30))
            .expect("acknowledged");
        flush.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        consumer
            .commit(&position, rdkafka::consumer::CommitMode::Sync)
            .expect("commit");
        commit.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    (median(&flush), median(&commit))
}

/// The ceiling's consumer: a group member reading `topic` until `n` records; the time from its
/// subscription, and from its first record, to the last; then [`round_trips`] with it (the
/// probe records go to `topic` after it has been read).
fn consume_all(
    kafka: &KafkaConfig,
    topic: &str,
    group: &str,
    n: u64,
) -> (Duration, Duration, (f64, f64)) {
    let consumer: BaseConsumer = kafka.group_consumer(group).create().expect("consumer");
    let start = Instant::now();
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = start + Duration::from_secs(600);
    let (mut got, mut first) = (0u64, None);
    while got < n && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.expect("consumed");
            first.get_or_insert_with(Instant::now);
            got += 1;
        }
    }
    assert_eq!(got, n, "the ceiling consumer did not read every record");
    let end = Instant::now();
    let trips = round_trips(kafka, topic, &consumer);
    (end - start, end - first.unwrap_or(start), trips)
}

/// One Kafka Streams relay run over `orders` into `output`: the time from its `RUNNING` state,
/// and from its start, until `n` records are readable on `output`.
fn kstreams_run(
    kafka: &KafkaConfig,
    classpath: &str,
    output: &str,
    app_id: &str,
    n: u64,
) -> (Duration, Duration) {
    let reader = LatencyReader::start(kafka, output, Outcomes::OrderLines).expect("reader");
    let start = Instant::now();
    let mut relay = kstreams::KStreamsRelay::start(
        classpath,
        &kafka.bootstrap_servers,
        "orders",
        output,
        app_id,
    );
    let running = relay.wait_running(Duration::from_secs(120));
    let deadline = Instant::now() + Duration::from_secs(600);
    while reader.records() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let end = Instant::now();
    assert!(
        reader.records() >= n,
        "the Kafka Streams relay did not deliver every record:\n{}",
        relay.log_tail()
    );
    drop(relay);
    drop(reader);
    (end - running, end - start)
}

fn main() {
    let n = env_or("BENCH_ORDERS", 300_000);
    let runs = env_or("BENCH_RUNS", 3).max(1);
    let on_kafka = TestBroker::from_env() == TestBroker::Kafka;
    let (instruments, layout) = common::repo_config();
    let mut specs = layout.topics().to_vec();
    for r in 1..=runs {
        specs.push(common::topic_like(
            &layout,
            "orders",
            &format!("ceiling.r{r}"),
        ));
        specs.extend(common::matcher_topics(&layout, &format!(".r{r}")));
        if on_kafka {
            specs.extend(common::matcher_topics(&layout, &format!(".eos.r{r}")));
            specs.push(common::topic_like(
                &layout,
                "orders",
                &format!("kstreams-out.r{r}"),
            ));
        }
    }
    let classpath = on_kafka.then(kstreams::build);
    let (_node, kafka, addr, broker) = common::broker(specs);

    let matcher_kafka = common::matcher_kafka(&kafka);
    let lines = common::flow_lines(&instruments, n);
    let took = common::produce_all(&kafka, "orders", &lines);
    println!(
        "pipeline_vs_broker: {n} orders written to `orders` in {:.1}s on the {broker} broker at {addr}; {runs} runs",
        took.as_secs_f64()
    );

    let (
        mut producer_rps,
        mut consumer_rps,
        mut matcher_ops,
        mut matcher_ops_after_first,
        mut matcher_rps,
        mut ks_rps,
        mut ks_rps_start,
        mut eos_ops,
    ) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    let (mut flushes, mut commits, mut consumer_rps_after_first) = (vec![], vec![], vec![]);
    for r in 1..=runs {
        let topic = format!("ceiling.r{r}");
        let produced = common::produce_all(&kafka, &topic, &lines);
        let (consumed, after_first, (flush_ms, commit_ms)) =
            consume_all(&kafka, &topic, &format!("bench-ceiling.r{r}"), n);
        flushes.push(flush_ms);
        commits.push(commit_ms);
        println!(
            "run {r} round trips: one record sent and flushed {flush_ms:.1} ms, a sync commit {commit_ms:.1} ms (medians of 20)"
        );
        consumer_rps_after_first.push(n as f64 / after_first.as_secs_f64());
        producer_rps.push(n as f64 / produced.as_secs_f64());
        consumer_rps.push(n as f64 / consumed.as_secs_f64());
        println!(
            "run {r} ceiling: producer {n} records in {:.2}s = {:.0} records/s; consumer {:.2}s = {:.0} records/s ({:.0} records/s after its first record)",
            produced.as_secs_f64(),
            producer_rps[producer_rps.len() - 1],
            consumed.as_secs_f64(),
            consumer_rps[consumer_rps.len() - 1],
            n as f64 / after_first.as_secs_f64()
        );

        let matcher =
            common::RunningMatcher::start(&matcher_kafka, &instruments, &format!(".r{r}"));
        let stats = std::sync::Arc::clone(&matcher.stats);
        let (total, after_first) = matcher.finish_after(n);
        let secs = total.as_secs_f64();
        let outputs = stats.records_out.load(Ordering::Relaxed);
        matcher_ops.push(n as f64 / secs);
        matcher_rps.push(outputs as f64 / secs);
        matcher_ops_after_first.push(n as f64 / after_first.as_secs_f64());
        println!(
            "run {r} matcher: {n} orders → {outputs} records in {secs:.2}s = {:.0} orders/s ({:.0} records/s; {:.0} orders/s from its first record)",
            n as f64 / secs,
            outputs as f64 / secs,
            n as f64 / after_first.as_secs_f64()
        );

        if on_kafka {
            // The same under exactly-once: one transaction per commit interval.
            let eos = common::RunningMatcher::start_with(
                &matcher_kafka,
                &instruments,
                &format!(".eos.r{r}"),
                Guarantee::ExactlyOnce,
            );
            let (total, _) = eos.finish_after(n);
            eos_ops.push(n as f64 / total.as_secs_f64());
            println!(
                "run {r} matcher, exactly-once: {n} orders in {:.2}s = {:.0} orders/s",
                total.as_secs_f64(),
                eos_ops[eos_ops.len() - 1]
            );
        }

        if let Some(cp) = &classpath {
            let (from_running, from_start) = kstreams_run(
                &kafka,
                cp,
                &format!("kstreams-out.r{r}"),
                &format!("bench-kstreams-r{r}"),
                n,
            );
            ks_rps.push(n as f64 / from_running.as_secs_f64());
            ks_rps_start.push(n as f64 / from_start.as_secs_f64());
            println!(
                "run {r} Kafka Streams relay: {n} records readable {:.2}s after RUNNING = {:.0} records/s ({:.2}s after its start = {:.0} records/s)",
                from_running.as_secs_f64(),
                ks_rps[ks_rps.len() - 1],
                from_start.as_secs_f64(),
                ks_rps_start[ks_rps_start.len() - 1]
            );
        }
    }

    let (producer, consumer) = (median(&producer_rps), median(&consumer_rps));
    let (ops, rps) = (median(&matcher_ops), median(&matcher_rps));
    let ratio = ops / consumer;
    println!(
        "median of {runs}: producer {producer:.0} records/s, consumer {consumer:.0} records/s, matcher {ops:.0} orders/s ({rps:.0} records/s); matcher ÷ consumer ceiling = {ratio:.3} (goal ≥ 0.5)"
    );
    let mut figures = serde_json::json!({
        "broker": broker,
        "orders": n,
        "runs": runs,
        "producer_records_per_s": producer.round(),
        "consumer_records_per_s": consumer.round(),
        "consumer_records_per_s_after_first": median(&consumer_rps_after_first).round(),
        "matcher_orders_per_s": ops.round(),
        "matcher_records_per_s": rps.round(),
        "matcher_orders_per_s_after_first": median(&matcher_ops_after_first).round(),
        "ratio": round3(ratio),
        "flush_ms": round3(median(&flushes)),
        "commit_ms": round3(median(&commits)),
    });
    if !matcher_kafka.passthrough.is_empty() {
        figures["matcher_kafka"] = format!("{:?}", matcher_kafka.passthrough).into();
    }
    if on_kafka {
        let (ks, ks_start) = (median(&ks_rps), median(&ks_rps_start));
        // Like with like: each from its first record / RUNNING, and each with its start.
        let running = median(&matcher_ops_after_first) / ks;
        let with_start = ops / ks_start;
        println!(
            "median of {runs}: Kafka Streams relay {ks:.0} records/s from RUNNING ({ks_start:.0} with its start); matcher ÷ relay = {running:.3} once running, {with_start:.3} with their starts (goal ≥ 1.0)"
        );
        figures["kstreams_records_per_s"] = ks.round().into();
        figures["kstreams_records_per_s_with_start"] = ks_start.round().into();
        figures["ratio_vs_kstreams"] = round3(running).into();
        figures["ratio_vs_kstreams_with_start"] = round3(with_start).into();
        let eos = median(&eos_ops);
        println!(
            "median of {runs}: matcher exactly-once {eos:.0} orders/s = {:.3} × effectively-once",
            eos / ops
        );
        figures["exactly_once_orders_per_s"] = eos.round().into();
        figures["exactly_once_vs_effectively_once"] = round3(eos / ops).into();
    }
    println!("{figures}");
}
