//! What the broker tests share: the binary, child processes, the broker, reading topics.
//!
//! Each test starts its own broker: the embedded one (`tradestream broker`) by default, or a
//! private Apache Kafka node when `TRADESTREAM_TEST_BROKER=kafka` (see `tradestream-testkit`).
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::message::{Headers, Message};
use serde_json::Value;
use tradestream_runtime::KafkaConfig;
use tradestream_runtime::partition::PartitionReader;
use tradestream_testkit::{KafkaNode, TestBroker};

pub mod offline;
pub mod store;

pub const PARTITIONS: i32 = 6;

/// These tests each run a broker, a producer and matchers: one at a time on a 2-core machine.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}
pub fn root() -> std::path::PathBuf {
    tradestream_testkit::repo_root()
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tradestream"));
    c.current_dir(root())
        .env("RUST_LOG", "warn,tradestream=info,tradestream_matcher=info");
    c
}

/// A child process killed when dropped, and the file its log goes to (if any).
pub struct Proc(pub Child, pub Option<std::path::PathBuf>);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn signal(child: &Child, sig: &str) {
    signal_pid(child.id(), sig);
}

pub fn signal_pid(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} failed");
}

/// The broker of one test, stopped when dropped.
pub enum Broker {
    /// `tradestream broker` (tansu, in memory) as a child process.
    Embedded(Proc),
    /// A private Apache Kafka node.
    Kafka(KafkaNode),
}

impl Broker {
    /// The broker's process id (to pause it).
    pub fn pid(&self) -> u32 {
        match self {
            Broker::Embedded(p) => p.0.id(),
            Broker::Kafka(k) => k.pid(),
        }
    }
}

/// Which broker the tests run on (`TRADESTREAM_TEST_BROKER`).
pub fn kind() -> TestBroker {
    TestBroker::from_env()
}

/// The test's own broker on a free loopback port, and its address once it serves requests.
pub fn start_broker() -> (Broker, String) {
    match kind() {
        TestBroker::Embedded => {
            let (proc, addr) = start_embedded();
            (Broker::Embedded(proc), addr)
        }
        TestBroker::Kafka => {
            let node = KafkaNode::start();
            let addr = node.addr().to_owned();
            eprintln!("Apache Kafka node at {addr}");
            (Broker::Kafka(node), addr)
        }
    }
}

/// `tradestream broker` on a free port; returns it and its address once it accepts connections.
fn start_embedded() -> (Proc, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = bin()
        .args(["broker", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start broker");
    let proc = Proc(child, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "broker did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (proc, addr)
}

/// The test's own broker with the topics of topics.yaml.
pub fn broker_with_topics() -> (Broker, String) {
    let (broker, addr) = start_broker();
    run_ok(&["topics", "apply", "--bootstrap-servers", &addr]);
    (broker, addr)
}

/// The order flow `produce orders --seed seed --poison-per-mille per_mille` writes, over the
/// instruments of instruments.yaml.
fn order_flow(seed: u64, per_mille: u64) -> tradestream_loadgen::OrderFlow {
    let instruments =
        tradestream_config::load_instruments(&root().join("instruments.yaml")).unwrap();
    tradestream_loadgen::OrderFlow::new(
        instruments.iter(),
        &tradestream_loadgen::FlowConfig {
            seed,
            poison_per_mille: per_mille,
            ..Default::default()
        },
    )
}

/// `n` generated order commands as (key, JSON line), the flow `produce orders --seed` writes,
/// stamped with the wall clock now (the matcher rejects a `ts` far from the broker's).
pub fn order_lines(n: usize, seed: u64) -> Vec<(String, String)> {
    let mut flow = order_flow(seed, 0);
    (0..n)
        .map(|_| {
            let (line, key, _) = flow.next_line_at(tradestream_loadgen::wall_clock_ms());
            (key, line)
        })
        .collect()
}

/// The deliberately bad records among the first `count` of the flow `produce orders --seed seed
/// --poison-per-mille per_mille` writes: (how many the matcher cannot decode, how many exceed
/// its record limit). The flow's choices depend on the seed only, not on the clock.
pub fn flow_poison(count: usize, seed: u64, per_mille: u64) -> (usize, usize) {
    let mut flow = order_flow(seed, per_mille);
    let (mut decode, mut oversized) = (0, 0);
    for _ in 0..count {
        let (line, _, poison) = flow.next_line_at(tradestream_loadgen::wall_clock_ms());
        match (poison, line.len() > offline::MAX_RECORD_BYTES) {
            (false, _) => {}
            (true, false) => decode += 1,
            (true, true) => oversized += 1,
        }
    }
    (decode, oversized)
}

/// A broker with the topics of topics.yaml and `count` generated orders (`produce orders`
/// with `seed` and any `extra` arguments) already acknowledged.
pub fn broker_with_orders(count: u64, seed: u64, extra: &[&str]) -> (Broker, String) {
    let (broker, addr) = broker_with_topics();
    let (count, seed) = (count.to_string(), seed.to_string());
    let mut args = vec![
        "produce",
        "orders",
        "--bootstrap-servers",
        &addr,
        "--count",
        &count,
        "--seed",
        &seed,
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    (broker, addr)
}

/// `produce orders` of `count` generated orders with `seed`, acknowledged when it returns.
pub fn produce_orders(addr: &str, count: u64, seed: u64) {
    let (count, seed) = (count.to_string(), seed.to_string());
    run_ok(&[
        "produce",
        "orders",
        "--bootstrap-servers",
        addr,
        "--count",
        &count,
        "--seed",
        &seed,
    ]);
}

/// Writes raw values as they are to (topic, partition), with `key`, and waits for the acks.
pub fn produce_raw(addr: &str, key: Option<&[u8]>, records: &[(&str, i32, &[u8])]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = KafkaConfig::new(addr).producer().create().unwrap();
    for (topic, p, value) in records {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(*p)
            .payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// `produce orders` in the background at `rate` orders/s (with `extra` arguments).
pub fn spawn_producer(addr: &str, count: u64, seed: u64, rate: u64, extra: &[&str]) -> Proc {
    let (count, seed, rate) = (count.to_string(), seed.to_string(), rate.to_string());
    let (log, log_path) = log_file("producer");
    let child = bin()
        .args(["produce", "orders", "--bootstrap-servers", addr])
        .args(["--count", &count, "--seed", &seed, "--rate", &rate])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start producer");
    Proc(child, Some(log_path))
}

/// Waits for a producer started by [`spawn_producer`]; it must have written every order.
pub fn producer_finished(producer: &mut Proc) {
    let status = producer.0.wait().expect("producer exits");
    assert!(
        status.success(),
        "the producer failed ({status}):\n{}",
        matcher_log(producer)
    );
}

/// A numbered log file for a child process under the test's temporary directory.
fn log_file(what: &str) -> (std::fs::File, std::path::PathBuf) {
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{what}-{}-{n}.log", std::process::id()));
    let log = std::fs::File::create(&path).expect("log file");
    eprintln!("{what} {n} logs to {}", path.display());
    (log, path)
}

pub fn run_ok(args: &[&str]) {
    let out = bin().args(args).output().expect("tradestream runs");
    assert!(
        out.status.success(),
        "tradestream {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a matcher; its log goes to a numbered file under the test's temporary directory.
pub fn start_matcher(addr: &str, snapshot_every: u64) -> Proc {
    start_matcher_with(addr, snapshot_every, &[])
}

pub fn start_matcher_with(addr: &str, snapshot_every: u64, extra: &[&str]) -> Proc {
    let every = snapshot_every.to_string();
    let mut args = vec!["--snapshot-every", every.as_str()];
    args.extend_from_slice(extra);
    start_worker("matcher", addr, &args)
}

/// Starts `tradestream run <worker>` (small batches; the broker's quirks detected, so it re-joins
/// when idle on the embedded broker only); its log goes to a numbered file under the test's
/// temporary directory.
pub fn start_worker(worker: &str, addr: &str, extra: &[&str]) -> Proc {
    start_worker_logging(worker, addr, extra, None)
}

/// [`start_worker`] with the log filter `rust_log` (e.g. to see the loop's rebalance lines).
pub fn start_worker_logging(
    worker: &str,
    addr: &str,
    extra: &[&str],
    rust_log: Option<&str>,
) -> Proc {
    let (log, log_path) = log_file(worker);
    let mut cmd = bin();
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    }
    cmd.args([
        "run",
        worker,
        "--bootstrap-servers",
        addr,
        "--max-batch",
        "500",
    ]);
    cmd.args(extra);
    // TRADESTREAM_TEST_KAFKA_DEBUG=cgrp,… adds librdkafka debug contexts to the worker logs.
    if let Ok(debug) = std::env::var("TRADESTREAM_TEST_KAFKA_DEBUG") {
        cmd.args(["--kafka", &format!("debug={debug}")]);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start worker");
    Proc(child, Some(log_path))
}

/// What a worker started by [`start_worker`] has logged so far.
pub fn matcher_log(worker: &Proc) -> String {
    worker
        .1
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default()
}

pub fn free_addr() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// `GET /metrics` from a worker's Prometheus endpoint.
pub fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).expect("metrics endpoint accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("metrics response");
    body
}

/// The sum of every sample of `metric` whose labels contain `label`.
pub fn metric_sum(body: &str, metric: &str, label: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// SIGTERM, then the matcher's final stats line.
pub fn stop_matcher(m: Proc) -> Value {
    stop_worker(m)
}

/// SIGTERM, then the worker's final stats line.
pub fn stop_worker(mut m: Proc) -> Value {
    signal(&m.0, "-TERM");
    let stdout = m.0.stdout.take().expect("stdout");
    let last = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .last()
        .unwrap_or_default();
    let status = m.0.wait().expect("worker exits");
    assert!(status.success(), "worker exit status {status}");
    serde_json::from_str(&last).unwrap_or_else(|_| panic!("stats line, got {last:?}"))
}

/// A record of one partition: offset, payload and headers (as a map).
pub type Rec = (i64, Vec<u8>, BTreeMap<String, String>);

pub fn read_all(reader: &PartitionReader, topic: &str, p: i32) -> Vec<Rec> {
    let mut out = Vec::new();
    reader
        .read_to_end(topic, p, 0, |m| {
            let mut h = BTreeMap::new();
            if let Some(hs) = m.headers() {
                for x in hs.iter() {
                    h.insert(
                        x.key.to_owned(),
                        String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            out.push((m.offset(), m.payload().unwrap_or_default().to_vec(), h));
        })
        .unwrap();
    out
}

/// Input records the matcher group has committed, over all partitions (0 while the broker
/// does not answer).
pub fn committed(addr: &str) -> u64 {
    committed_by_partition(addr)
        .values()
        .filter(|o| **o > 0)
        .sum::<i64>() as u64
}

/// Waits (bounded) until the matcher group has committed more than `at_least` input records.
pub fn wait_committed(addr: &str, at_least: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let now = committed(addr);
        if now >= at_least {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "matcher did not catch up: committed {now}, waiting for {at_least}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether a test that only Apache Kafka can run should run: yes on `TRADESTREAM_TEST_BROKER=kafka`.
/// On the embedded broker it is skipped, loudly; under `CI=true` with no broker chosen at all it
/// fails, so CI cannot pass without having run it somewhere.
pub fn kafka_only(test: &str) -> bool {
    kafka_only_in(test, "pipeline")
}

/// [`kafka_only`] for a test of the test binary `binary` (named in the hint it prints).
pub fn kafka_only_in(test: &str, binary: &str) -> bool {
    if kind() == TestBroker::Kafka {
        return true;
    }
    assert!(
        !tradestream_testkit::in_ci() || TestBroker::chosen(),
        "{test} needs Apache Kafka: under CI=true set TRADESTREAM_TEST_BROKER (see .ci/run)"
    );
    tradestream_testkit::skipped(
        &format!("{test}: needs Apache Kafka"),
        &format!(
            "TRADESTREAM_TEST_BROKER=kafka cargo test -p tradestream --test {binary} (Java 17 and Maven)"
        ),
    );
    false
}

/// The input offset the matcher group has committed, per orders partition (-1: none; empty
/// while the broker does not answer).
pub fn committed_by_partition(addr: &str) -> BTreeMap<i32, i64> {
    use rdkafka::consumer::Consumer;
    let probe: rdkafka::consumer::BaseConsumer = KafkaConfig::new(addr)
        .group_consumer("tradestream-matcher")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition("orders", p);
    }
    let Ok(committed) = probe.committed_offsets(tpl, Duration::from_secs(10)) else {
        return BTreeMap::new();
    };
    (0..PARTITIONS)
        .map(|p| {
            let at = committed
                .find_partition("orders", p)
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(-1);
            (p, at)
        })
        .collect()
}

/// Waits (bounded) until the matcher group has committed, in every orders partition, past the
/// last record a `read_committed` reader sees there. On Apache Kafka a partition's high
/// watermark may lie beyond it (transaction markers), so the watermark is no target.
pub fn wait_all_consumed(addr: &str, timeout: Duration) {
    let reader = PartitionReader::new(&KafkaConfig::new(addr), Duration::from_secs(60)).unwrap();
    let want: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| {
            (
                p,
                read_all(&reader, "orders", p)
                    .last()
                    .map_or(-1, |r| r.0 + 1),
            )
        })
        .collect();
    let deadline = Instant::now() + timeout;
    loop {
        let now = committed_by_partition(addr);
        if want
            .iter()
            .all(|(p, w)| *w < 0 || now.get(p).is_some_and(|c| c >= w))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "matcher did not consume every order within {timeout:?}: committed {now:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
