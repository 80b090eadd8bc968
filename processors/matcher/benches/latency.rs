//! # End-to-end latency under a paced load: order timestamp → outcome readable
//!
//! `cargo bench -p tradestream-matcher --bench latency` starts the bench broker (embedded tansu
//! in-process; a private Apache Kafka node with `TRADESTREAM_TEST_BROKER=kafka`) and a matcher,
//! then produces a generated order flow at `BENCH_RATE` orders/s (default 20 000) for
//! `BENCH_SECONDS` (default 30), each order stamped with the wall clock as it is sent. A separate
//! reader (`tradestream_loadgen::latency::LatencyReader`: its own consumer, assigned to every
//! partition of `executions`, `read_committed`) takes, per order, the time from that stamp to the
//! moment its first outcome (accepted, rejected, cancelled or replaced) is returned to it. A
//! warm-up (`BENCH_WARMUP` orders at the same rate, default 2 000) is measured and discarded.
//!
//! On Apache Kafka it then does the same through the Kafka Streams relay of
//! `deploy/local/kstreams-relay` (`stream(in).to(out)`, `exactly_once_v2`, 100 ms commits): the
//! same paced flow into its input topic, the same reader on its output topic.
//!
//! The last line is one JSON object: `{"broker":…,"rate":…,"seconds":…,"orders":…,
//! "achieved_rate":…,"p50_ms":…,"p99_ms":…,"p99_9_ms":…,"max_ms":…}` (the matcher), plus on
//! Apache Kafka `kstreams_achieved_rate`, `kstreams_p50_ms`, `kstreams_p99_ms`,
//! `kstreams_p99_9_ms`, `kstreams_max_ms`.

mod common;

use std::time::Duration;

use common::env_or;
use tradestream_loadgen::latency::{LatencyReader, Outcomes, Percentiles};
use tradestream_loadgen::{FlowConfig, OrderFlow};
use tradestream_testkit::{TestBroker, kstreams};

/// One paced measurement: warm-up, then `rate` × `seconds` orders into `input`, measured by a
/// reader of `output` and, as the floor, by a reader of `input` itself (order timestamp → order
/// readable: the producer and the broker alone). Returns the achieved send rate and the
/// percentiles of the output and of the input.
fn measure(
    kafka: &tradestream_runtime::KafkaConfig,
    instruments: &tradestream_engine::Instruments,
    (input, output, outcomes): (&str, &str, Outcomes),
    (rate, seconds, warmup): (u64, u64, u64),
) -> (f64, Percentiles, Percentiles) {
    let reader = LatencyReader::start(kafka, output, outcomes).expect("latency reader");
    let floor = LatencyReader::start(kafka, input, Outcomes::OrderLines).expect("input reader");
    let producer = common::producer(kafka);
    let mut flow = OrderFlow::new(instruments.iter(), &FlowConfig::default());
    common::produce_paced(&producer, &mut flow, input, rate, warmup);
    assert!(
        reader.wait_for(warmup, Duration::from_secs(180)),
        "the warm-up's outcomes did not all arrive ({} of {warmup})",
        reader.samples()
    );
    let warm = reader.take();
    floor.take();
    let floor_start = floor.samples();
    let n = rate * seconds;
    let sending = common::produce_paced(&producer, &mut flow, input, rate, n);
    let complete = reader.wait_for(warmup + n, Duration::from_secs(120 + seconds));
    let seen = reader.samples();
    let mut histogram = reader.stop().expect("latency reader");
    assert!(
        complete,
        "only {} of {n} outcomes arrived",
        seen.saturating_sub(warm.len() as u64)
    );
    floor.wait_for(floor_start + n, Duration::from_secs(30));
    let mut input_histogram = floor.stop().expect("input reader");
    (
        n as f64 / sending.as_secs_f64(),
        histogram.percentiles(),
        input_histogram.percentiles(),
    )
}

fn main() {
    let rate = env_or("BENCH_RATE", 20_000).max(1);
    let seconds = env_or("BENCH_SECONDS", 30).max(1);
    let warmup = env_or("BENCH_WARMUP", 2_000);
    let on_kafka = TestBroker::from_env() == TestBroker::Kafka;
    let (instruments, layout) = common::repo_config();
    let mut specs = layout.topics().to_vec();
    if on_kafka {
        specs.push(common::topic_like(&layout, "orders", "kstreams-in"));
        specs.push(common::topic_like(&layout, "orders", "kstreams-out"));
    }
    let classpath = on_kafka.then(kstreams::build);
    let (_node, kafka, addr, broker) = common::broker(specs);
    println!(
        "latency: {rate} orders/s for {seconds}s (after {warmup} warm-up orders) on the {broker} broker at {addr}; order timestamp → first outcome readable on `executions` (read_committed)"
    );

    let matcher_kafka = common::matcher_kafka(&kafka);
    let matcher = common::RunningMatcher::start(&matcher_kafka, &instruments, "");
    let (achieved, p, floor) = measure(
        &kafka,
        &instruments,
        ("orders", "executions", Outcomes::EngineEvents),
        (rate, seconds, warmup),
    );
    matcher.finish_after(0);
    println!("orders readable on `orders` (producer + broker alone): {floor}");
    println!("matcher: sent at {achieved:.0} orders/s; {p}");
    let mut figures = serde_json::json!({
        "broker": broker,
        "rate": rate,
        "seconds": seconds,
        "orders": p.count,
        "achieved_rate": achieved.round(),
        "p50_ms": p.p50_ms,
        "p99_ms": p.p99_ms,
        "p99_9_ms": p.p99_9_ms,
        "max_ms": p.max_ms,
        "input_p50_ms": floor.p50_ms,
        "input_p99_ms": floor.p99_ms,
        "input_p99_9_ms": floor.p99_9_ms,
    });
    if !matcher_kafka.passthrough.is_empty() {
        figures["matcher_kafka"] = format!("{:?}", matcher_kafka.passthrough).into();
    }

    if let Some(cp) = classpath {
        let mut relay = kstreams::KStreamsRelay::start(
            &cp,
            &kafka.bootstrap_servers,
            "kstreams-in",
            "kstreams-out",
            "bench-kstreams-latency",
        );
        relay.wait_running(Duration::from_secs(120));
        let (achieved, k, _) = measure(
            &kafka,
            &instruments,
            ("kstreams-in", "kstreams-out", Outcomes::OrderLines),
            (rate, seconds, warmup),
        );
        drop(relay);
        println!("Kafka Streams relay: sent at {achieved:.0} records/s; {k}");
        println!(
            "p99: matcher {:.1} ms, Kafka Streams relay {:.1} ms",
            p.p99_ms, k.p99_ms
        );
        figures["kstreams_achieved_rate"] = achieved.round().into();
        figures["kstreams_p50_ms"] = k.p50_ms.into();
        figures["kstreams_p99_ms"] = k.p99_ms.into();
        figures["kstreams_p99_9_ms"] = k.p99_9_ms.into();
        figures["kstreams_max_ms"] = k.max_ms.into();
    }
    println!("{figures}");
}
