//! The pipeline on a real broker: `tradestream broker` as a child process on a free loopback
//! port, the matcher as a child process (so it can be killed), and every output compared with
//! the engine run offline over what the orders topic holds.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::message::{Headers, Message};
use serde_json::Value;
use tradestream_codec::avro;
use tradestream_engine::{Command as EngineCommand, Engine};
use tradestream_runtime::KafkaConfig;
use tradestream_runtime::headers;
use tradestream_runtime::partition::PartitionReader;

const PARTITIONS: i32 = 6;

/// These tests each run a broker, a producer and matchers: one at a time on a 2-core machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}
/// The matcher's limit (MatcherConfig::max_record_bytes default).
const MAX_RECORD_BYTES: usize = 64 * 1024;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tradestream"));
    c.current_dir(root())
        .env("RUST_LOG", "warn,tradestream=info,tradestream_matcher=info");
    c
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} failed");
}

/// `tradestream broker` on a free port; returns it and its address once it accepts connections.
fn start_broker() -> (Proc, String) {
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
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "broker did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (proc, addr)
}

fn run_ok(args: &[&str]) {
    let out = bin().args(args).output().expect("tradestream runs");
    assert!(
        out.status.success(),
        "tradestream {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a matcher; its log goes to a numbered file under the test's temporary directory.
fn start_matcher(addr: &str, snapshot_every: u64) -> Proc {
    start_matcher_with(addr, snapshot_every, &[])
}

fn start_matcher_with(addr: &str, snapshot_every: u64, extra: &[&str]) -> Proc {
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("matcher-{}-{n}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).expect("matcher log file");
    eprintln!("matcher {n} logs to {}", log_path.display());
    let mut cmd = bin();
    cmd.args([
        "run",
        "matcher",
        "--bootstrap-servers",
        addr,
        "--snapshot-every",
        &snapshot_every.to_string(),
        "--max-batch",
        "500",
        "--rejoin-when-idle-ms",
        "15000",
    ]);
    cmd.args(extra);
    // TRADESTREAM_TEST_KAFKA_DEBUG=cgrp,… adds librdkafka debug contexts to the matcher logs.
    if let Ok(debug) = std::env::var("TRADESTREAM_TEST_KAFKA_DEBUG") {
        cmd.args(["--kafka", &format!("debug={debug}")]);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start matcher");
    Proc(child)
}

fn free_addr() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// `GET /metrics` from a worker's Prometheus endpoint.
fn scrape(addr: &str) -> String {
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
fn metric_sum(body: &str, metric: &str, label: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// SIGTERM, then the matcher's final stats line.
fn stop_matcher(mut m: Proc) -> Value {
    signal(&m.0, "-TERM");
    let stdout = m.0.stdout.take().expect("stdout");
    let last = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .last()
        .unwrap_or_default();
    let status = m.0.wait().expect("matcher exits");
    assert!(status.success(), "matcher exit status {status}");
    serde_json::from_str(&last).unwrap_or_else(|_| panic!("stats line, got {last:?}"))
}

/// A record of one partition: offset, payload and headers (as a map).
type Rec = (i64, Vec<u8>, BTreeMap<String, String>);

fn read_all(reader: &PartitionReader, topic: &str, p: i32) -> Vec<Rec> {
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

/// Input records the matcher group has committed, over all partitions.
fn committed(addr: &str) -> u64 {
    use rdkafka::consumer::Consumer;
    let probe: rdkafka::consumer::BaseConsumer = KafkaConfig::new(addr)
        .group_consumer("tradestream-matcher")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition("orders", p);
    }
    probe
        .committed_offsets(tpl, Duration::from_secs(10))
        .map(|c| {
            c.elements()
                .iter()
                .filter_map(|e| e.offset().to_raw())
                .filter(|o| *o > 0)
                .sum::<i64>() as u64
        })
        .unwrap_or(0)
}

/// Waits (bounded) until the matcher group has committed more than `at_least` input records.
fn wait_committed(addr: &str, at_least: u64, timeout: Duration) -> u64 {
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

/// The engine offline over one orders partition: the exact bytes of every expected output per
/// topic (Avro, with the provenance the matcher must give it), and the count of records the
/// matcher must dead-letter.
fn offline(p: i32, orders: &[Rec]) -> (BTreeMap<&'static str, Vec<Vec<u8>>>, usize) {
    let instruments =
        tradestream_config::load_instruments(&root().join("instruments.yaml")).unwrap();
    let mut engine: Engine = Engine::new(instruments.clone());
    let mut expected: BTreeMap<&'static str, Vec<Vec<u8>>> = BTreeMap::new();
    let mut poison = 0;
    let mut events = Vec::new();
    for (offset, payload, _) in orders {
        if payload.len() > MAX_RECORD_BYTES {
            poison += 1;
            continue;
        }
        let cmd = avro::decode_command_any(payload, 0);
        if matches!(cmd, EngineCommand::Invalid(_)) {
            poison += 1;
            continue;
        }
        events.clear();
        engine.apply(&cmd, &mut events);
        for e in &events {
            let topics: &[&'static str] = match e.kind.name() {
                "trade" => &["executions", "trades"],
                "book_delta" | "top_of_book" => &["market-data"],
                _ => &["executions"],
            };
            for t in topics {
                let records = expected.entry(t).or_default();
                let provenance = avro::Provenance {
                    source_partition: p,
                    source_offset: *offset,
                    seq: records.len() as u64 + 1,
                };
                let mut buf = Vec::new();
                avro::encode_event(
                    &instruments,
                    e,
                    provenance,
                    avro::Framing::SingleObject,
                    &mut buf,
                );
                records.push(buf);
            }
        }
    }
    (expected, poison)
}

/// Every output topic equals the offline run, per partition; seq contiguous from 1; provenance
/// consistent. Returns (outputs checked, dead letters).
fn verify(addr: &str) -> (usize, usize) {
    let reader = PartitionReader::new(&KafkaConfig::new(addr), Duration::from_secs(60)).unwrap();
    let (mut checked, mut dead) = (0, 0);
    for p in 0..PARTITIONS {
        let orders = read_all(&reader, "orders", p);
        let (expected, poison) = offline(p, &orders);
        for topic in ["executions", "trades", "market-data"] {
            let live = read_all(&reader, topic, p);
            let want = expected.get(topic).cloned().unwrap_or_default();
            if live.len() != want.len() {
                let first = live
                    .iter()
                    .zip(&want)
                    .position(|((_, payload, _), want)| payload != want)
                    .unwrap_or(live.len().min(want.len()));
                let show = |i: usize| {
                    let l = live
                        .get(i)
                        .map(|(o, b, h)| (o, avro::decode_event(b), h.clone()));
                    let w = want.get(i).map(|b| avro::decode_event(b));
                    format!("record {i}:\n live {l:?}\n want {w:?}")
                };
                panic!(
                    "{topic}/{p}: {} records, {} expected; first difference at {first}\n{}\n{}",
                    live.len(),
                    want.len(),
                    show(first),
                    show(first + 1)
                );
            }
            for (i, ((_, payload, h), want)) in live.iter().zip(&want).enumerate() {
                assert_eq!(
                    h[headers::SEQ],
                    (i + 1).to_string(),
                    "{topic}/{p}: seq contiguous"
                );
                assert_eq!(h[headers::SOURCE_PARTITION], p.to_string());
                if payload != want {
                    let live = avro::decode_event(payload);
                    let want = avro::decode_event(want);
                    panic!("{topic}/{p} record {i}: live {live:?}\nwant {want:?}");
                }
            }
            checked += live.len();
        }
        // Dead letters of partition p: exactly once each, with their source.
        let dlq: Vec<Rec> = read_all(&reader, "dead-letters", p)
            .into_iter()
            .filter(|(_, _, h)| h.get(headers::WORKER).map(String::as_str) == Some("matcher"))
            .collect();
        let mut offsets: Vec<i64> = dlq
            .iter()
            .map(|(_, _, h)| h[headers::SOURCE_OFFSET].parse().unwrap())
            .collect();
        let n = offsets.len();
        offsets.dedup();
        assert_eq!(offsets.len(), n, "a dead letter was written twice");
        assert_eq!(n, poison, "dead letters of partition {p}");
        for (_, _, h) in &dlq {
            assert_eq!(h["source-topic"], "orders");
            assert!(["decode", "oversized"].contains(&h["error-class"].as_str()));
            assert!(!h["error-message"].is_empty());
        }
        dead += n;
    }
    (checked, dead)
}

#[test]
fn matcher_outputs_equal_the_offline_engine() {
    let _serial = serial();
    let (_broker, addr) = start_broker();
    run_ok(&["topics", "apply", "--bootstrap-servers", &addr]);
    run_ok(&[
        "produce",
        "orders",
        "--bootstrap-servers",
        &addr,
        "--count",
        "20000",
        "--seed",
        "1",
        "--poison-per-mille",
        "10",
    ]);
    let metrics = free_addr();
    let matcher = start_matcher_with(&addr, 2_000, &["--metrics-listen", &metrics]);
    wait_committed(&addr, 20_000, Duration::from_secs(300));
    let body = scrape(&metrics);
    let stats = stop_matcher(matcher);
    // The Prometheus endpoint counts what the matcher did, by partition and by error class.
    let records_in = metric_sum(&body, "tradestream_records_in_total", r#"worker="matcher""#);
    assert!(records_in >= 20_000.0, "records_in {records_in}\n{body}");
    let dead_letters = metric_sum(&body, "tradestream_dead_letters_total", r#"class="decode""#);
    assert!(dead_letters > 0.0, "dead letters by class\n{body}");
    assert!(
        body.contains("tradestream_latency_seconds_bucket")
            || body.contains("tradestream_latency_seconds{"),
        "latency histogram\n{body}"
    );
    let (checked, dead) = verify(&addr);
    assert!(checked > 20_000, "{checked}");
    assert!(dead > 50, "poison records reached dead letters: {dead}");
    assert_eq!(stats["dead_letters"].as_u64(), Some(dead as u64));
}

#[test]
fn crashes_lose_nothing_and_duplicate_nothing() {
    let _serial = serial();
    const ORDERS: u64 = 100_000;
    const SNAPSHOT_EVERY: u64 = 3_000;
    let (_broker, addr) = start_broker();
    run_ok(&["topics", "apply", "--bootstrap-servers", &addr]);
    // Orders arrive while the matcher is killed and restarted.
    let producer = bin()
        .args([
            "produce",
            "orders",
            "--bootstrap-servers",
            &addr,
            "--count",
            &ORDERS.to_string(),
            "--seed",
            "2",
            "--rate",
            "1500",
            "--poison-per-mille",
            "5",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start producer");
    let producer = Proc(producer);
    // A graceful stop and restart first, once the matcher has made progress.
    let matcher = start_matcher(&addr, SNAPSHOT_EVERY);
    wait_committed(&addr, 1, Duration::from_secs(120));
    stop_matcher(matcher);
    let mut done = committed(&addr);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for kill in 0..3 {
        // A new member gets the partitions once the killed one's session expires; kill it at
        // a random moment after it has made progress of its own.
        let matcher = start_matcher(&addr, SNAPSHOT_EVERY);
        wait_committed(&addr, done + 1, Duration::from_secs(120));
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(200 + rng % 2_000));
        signal(&matcher.0, "-KILL");
        drop(matcher);
        done = committed(&addr);
        eprintln!("killed matcher ({}) at {done} committed", kill + 1);
    }
    // The run after the last kill recovers and finishes the flow.
    let matcher = start_matcher(&addr, SNAPSHOT_EVERY);
    let mut producer = producer;
    assert!(producer.0.wait().expect("producer exits").success());
    wait_committed(&addr, ORDERS, Duration::from_secs(600));
    let stats = stop_matcher(matcher);
    verify(&addr);
    // Recovery is bounded by the snapshot interval plus one batch per partition, not history.
    let replayed = stats["replayed"].as_u64().unwrap();
    assert!(
        replayed <= PARTITIONS as u64 * (SNAPSHOT_EVERY + 500),
        "replayed {replayed}"
    );
}

#[test]
fn a_paused_broker_delays_but_loses_nothing() {
    let _serial = serial();
    let (broker, addr) = start_broker();
    run_ok(&["topics", "apply", "--bootstrap-servers", &addr]);
    let producer = Proc(
        bin()
            .args([
                "produce",
                "orders",
                "--bootstrap-servers",
                &addr,
                "--count",
                "20000",
                "--seed",
                "3",
                "--rate",
                "2000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start producer"),
    );
    let matcher = start_matcher(&addr, 2_000);
    let before = wait_committed(&addr, 1, Duration::from_secs(120));
    // The broker stops answering for 5 s while both clients are mid-flight.
    signal(&broker.0, "-STOP");
    std::thread::sleep(Duration::from_secs(5));
    signal(&broker.0, "-CONT");
    let mut producer = producer;
    assert!(producer.0.wait().expect("producer exits").success());
    let after = wait_committed(&addr, 20_000, Duration::from_secs(300));
    assert!(after > before);
    let stats = stop_matcher(matcher);
    assert_eq!(stats["dead_letters"].as_u64(), Some(0));
    verify(&addr);
}
