//! # Recovery time per 1 M orders of history: snapshot + tail against a replay from scratch
//!
//! `cargo bench -p tradestream-matcher --bench recovery` starts the bench broker (embedded tansu
//! in-process; a private Apache Kafka node with `TRADESTREAM_TEST_BROKER=kafka`) and builds a
//! history: `BENCH_RECOVERY_ORDERS` generated orders (default 1 000 000) at full speed, matched
//! by a matcher in a child process (this bench binary again) that snapshots every
//! `BENCH_RECOVERY_SNAPSHOT_EVERY` records per partition (default 10 000, the matcher's default)
//! and is SIGKILLed once it has committed every order, so each partition is left with a tail
//! after its last snapshot, as after a crash.
//!
//! Then two recoveries of the whole history, in the same run, each a matcher taking every
//! partition of its group:
//! - **snapshot**: loads each partition's newest snapshot and replays the tail after it;
//! - **scratch**: the same group with an empty snapshot topic: replays every order.
//!
//! Both replay up to the group's committed offset, producing nothing (every output is already
//! in the topics and deduplicated by seq). The time of a recovery runs from the assignment (the
//! rebalance callback begins, `tradestream_rebalances_total{kind="assigned"}`) to the last
//! partition live (`tradestream_restore_seconds` counted for every partition), both read from
//! the loop's own metrics on a Prometheus endpoint in this process. Scaled to per 1 M orders of
//! history; the goal is ≤ 1 s per 1 M orders.
//!
//! The last line is one JSON object: `{"broker":…,"orders":…,"snapshot_every":…,
//! "snapshot_bytes":…,"tail":…,"snapshot_s":…,"snapshot_s_per_1m":…,"scratch_s":…,
//! "scratch_s_per_1m":…, …}`.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::env_or;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer;
use tradestream_engine::Instruments;
use tradestream_loadgen::{FlowConfig, OrderFlow};
use tradestream_matcher::{MatcherConfig, MatcherStats};
use tradestream_runtime::partition::PartitionReader;
use tradestream_runtime::{KafkaConfig, Shutdown};

/// The history's group (also the prefix of its snapshot keys).
const GROUP: &str = "bench-recovery";
/// An empty snapshot topic: a restore there finds no snapshot and replays everything.
const NO_SNAPSHOTS: &str = "matcher-snapshots-none";
/// Set in the child that builds the history: `bootstrap|snapshot_every`.
const CHILD: &str = "BENCH_RECOVERY_CHILD";

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        history_child(&spec);
        return;
    }
    let orders = env_or("BENCH_RECOVERY_ORDERS", 1_000_000).max(1);
    let snapshot_every = env_or("BENCH_RECOVERY_SNAPSHOT_EVERY", 10_000).max(1);
    let (instruments, layout) = common::repo_config();
    let mut specs = layout.topics().to_vec();
    specs.push(common::topic_like(
        &layout,
        "matcher-snapshots",
        NO_SNAPSHOTS,
    ));
    let (_node, kafka, addr, broker) = common::broker(specs);
    let metrics = free_addr();
    tradestream_runtime::metrics::serve(metrics).expect("metrics endpoint");
    println!(
        "recovery: {orders} orders of history, a snapshot every {snapshot_every} records per \
         partition, on the {broker} broker at {addr}"
    );

    let took = produce(&kafka, &instruments, orders);
    println!(
        "history: {orders} orders produced in {:.1} s",
        took.as_secs_f64()
    );
    let took = build_history(&kafka, &addr, snapshot_every);
    println!(
        "history: matched and committed in {:.1} s by a matcher then SIGKILLed ({:.0} orders/s)",
        took.as_secs_f64(),
        orders as f64 / took.as_secs_f64()
    );

    let snapshot = recover(&kafka, &instruments, &metrics, "matcher-snapshots");
    let scratch = recover(&kafka, &instruments, &metrics, NO_SNAPSHOTS);
    let per_1m = |s: f64| s * 1_000_000.0 / orders as f64;
    println!(
        "snapshot + tail: {:.3} s ({:.3} s per 1 M orders of history; goal ≤ 1 s): {} B of \
         snapshots loaded, {} orders of tail replayed; per partition {:.1} ms on average",
        snapshot.seconds,
        per_1m(snapshot.seconds),
        snapshot.snapshot_bytes,
        snapshot.replayed,
        snapshot.mean_partition_ms
    );
    println!(
        "from scratch:    {:.3} s ({:.3} s per 1 M orders of history): {} orders replayed; per \
         partition {:.1} ms on average",
        scratch.seconds,
        per_1m(scratch.seconds),
        scratch.replayed,
        scratch.mean_partition_ms
    );
    let figures = serde_json::json!({
        "broker": broker,
        "orders": orders,
        "snapshot_every": snapshot_every,
        "snapshot_bytes": snapshot.snapshot_bytes,
        "tail": snapshot.replayed,
        "snapshot_s": common::round3(snapshot.seconds),
        "snapshot_s_per_1m": common::round3(per_1m(snapshot.seconds)),
        "snapshot_partition_mean_ms": common::round3(snapshot.mean_partition_ms),
        "scratch_replayed": scratch.replayed,
        "scratch_s": common::round3(scratch.seconds),
        "scratch_s_per_1m": common::round3(per_1m(scratch.seconds)),
        "scratch_partition_mean_ms": common::round3(scratch.mean_partition_ms),
    });
    println!("{figures}");
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
}

/// `n` orders of the default flow to `orders` at full speed; the time until all are
/// acknowledged. Generated as they are sent: a million lines held at once would take hundreds
/// of megabytes.
fn produce(kafka: &KafkaConfig, instruments: &Instruments, n: u64) -> Duration {
    let producer = common::producer(kafka);
    let mut flow = OrderFlow::new(instruments.iter(), &FlowConfig::default());
    let start = Instant::now();
    for _ in 0..n {
        let (line, key, _) = flow.next_line_at(tradestream_loadgen::wall_clock_ms());
        common::send(&producer, "orders", &key, &line);
    }
    producer
        .flush(Duration::from_secs(600))
        .expect("orders acknowledged");
    start.elapsed()
}

/// The matcher of the history, in this process: runs until it is killed.
fn history_child(spec: &str) {
    let (bootstrap, every) = spec.split_once('|').expect("bootstrap|snapshot_every");
    let (instruments, _) = common::repo_config();
    let mut cfg = MatcherConfig::new(KafkaConfig::new(bootstrap), instruments);
    cfg.run.group = GROUP.into();
    cfg.snapshot_every_records = every.parse().expect("snapshot_every");
    // Snapshots by count only: the tails are what the count leaves.
    cfg.snapshot_every = Duration::from_secs(3600);
    let result = tradestream_matcher::run(cfg, &Shutdown::new(), Arc::default());
    eprintln!("history matcher stopped: {result:?}");
    std::process::exit(1);
}

/// Runs the history's matcher in a child process until its group has committed every order,
/// then SIGKILLs it; the time that took.
fn build_history(kafka: &KafkaConfig, addr: &str, snapshot_every: u64) -> Duration {
    let start = Instant::now();
    let mut child: Child = Command::new(std::env::current_exe().expect("this bench"))
        .env(CHILD, format!("{addr}|{snapshot_every}"))
        .stdout(Stdio::null())
        .spawn()
        .expect("history matcher");
    let reader = PartitionReader::new(kafka, Duration::from_secs(30)).expect("reader");
    let partitions = reader.partition_count("orders").expect("orders");
    let ends: Vec<i64> = (0..partitions)
        .map(|p| reader.watermarks("orders", p).expect("watermarks").1)
        .collect();
    let probe: BaseConsumer = kafka.group_consumer(GROUP).create().expect("probe");
    let deadline = Instant::now() + Duration::from_secs(1_800);
    loop {
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition("orders", p);
        }
        let done = probe
            .committed_offsets(tpl, Duration::from_secs(10))
            .is_ok_and(|c| {
                (0..partitions).all(|p| {
                    let at = c
                        .find_partition("orders", p)
                        .and_then(|e| e.offset().to_raw())
                        .unwrap_or(-1);
                    at >= ends[p as usize] || ends[p as usize] == 0
                })
            });
        if done {
            break;
        }
        assert!(
            child.try_wait().expect("child status").is_none(),
            "the history matcher stopped"
        );
        assert!(
            Instant::now() < deadline,
            "the history matcher did not commit every order"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = start.elapsed();
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    took
}

/// What one recovery took.
struct Recovery {
    /// Assignment → every partition live.
    seconds: f64,
    /// Mean over partitions of assignment → that partition live.
    mean_partition_ms: f64,
    /// Engine state loaded, over all partitions.
    snapshot_bytes: f64,
    /// Orders replayed.
    replayed: u64,
}

/// A matcher of the history's group restores every partition from `snapshots` and replays up
/// to the committed offsets; timed with the loop's metrics on `metrics`.
fn recover(
    kafka: &KafkaConfig,
    instruments: &Instruments,
    metrics: &SocketAddr,
    snapshots: &str,
) -> Recovery {
    let before = scrape(metrics);
    let counted = |body: &str, metric: &str, label: &str| {
        sum(body, metric, label) - sum(&before, metric, label)
    };
    let mut cfg = MatcherConfig::new(kafka.clone(), instruments.clone());
    cfg.run.group = GROUP.into();
    cfg.snapshots = snapshots.into();
    let shutdown = Shutdown::new();
    let stats = Arc::new(MatcherStats::default());
    let handle = {
        let (shutdown, stats) = (shutdown.clone(), stats.clone());
        std::thread::spawn(move || tradestream_matcher::run(cfg, &shutdown, stats))
    };
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut assigned_at = None;
    let (live_at, body) = loop {
        let body = scrape(metrics);
        let assigned = counted(&body, "tradestream_rebalances_total", r#"kind="assigned""#);
        if assigned > 0.0 {
            assigned_at.get_or_insert_with(Instant::now);
        }
        let live = counted(&body, "tradestream_restore_seconds_count", "");
        if assigned > 0.0 && live >= assigned {
            break (Instant::now(), body);
        }
        if handle.is_finished() {
            let result = handle.join();
            panic!("the matcher stopped: {result:?}");
        }
        assert!(Instant::now() < deadline, "the recovery did not finish");
        std::thread::sleep(Duration::from_millis(2));
    };
    let partitions = counted(&body, "tradestream_restore_seconds_count", "");
    let mean = counted(&body, "tradestream_restore_seconds_sum", "") / partitions;
    let loaded = if snapshots == NO_SNAPSHOTS {
        0.0
    } else {
        sum(&body, "tradestream_snapshot_bytes", "")
    };
    shutdown.trigger();
    handle
        .join()
        .expect("matcher thread")
        .expect("the matcher ran");
    Recovery {
        seconds: assigned_at.map_or(0.0, |a| (live_at - a).as_secs_f64()),
        mean_partition_ms: mean * 1000.0,
        snapshot_bytes: loaded,
        replayed: stats.replayed.load(Ordering::Relaxed),
    }
}

/// `GET /metrics` from the endpoint in this process.
fn scrape(addr: &SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("metrics endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("response");
    body
}

/// The sum of every sample of `metric` whose labels contain `label`.
fn sum(body: &str, metric: &str, label: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
