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
use tradestream_codec::json;
use tradestream_engine::{Command as EngineCommand, Engine};
use tradestream_runtime::KafkaConfig;
use tradestream_runtime::headers;
use tradestream_runtime::partition::PartitionReader;

const PARTITIONS: i32 = 6;
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

fn start_matcher(addr: &str, snapshot_every: u64) -> Proc {
    let child = bin()
        .args([
            "run",
            "matcher",
            "--bootstrap-servers",
            addr,
            "--snapshot-every",
            &snapshot_every.to_string(),
            "--max-batch",
            "500",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start matcher");
    Proc(child)
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

/// Records of one partition: (key, payload, headers as a map, timestamp).
type Rec = (Vec<u8>, Vec<u8>, BTreeMap<String, String>);

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
            out.push((
                m.key().unwrap_or_default().to_vec(),
                m.payload().unwrap_or_default().to_vec(),
                h,
            ));
        })
        .unwrap();
    out
}

/// Waits (bounded) until the matcher group has committed `total` input records.
fn wait_caught_up(addr: &str, total: u64, timeout: Duration) {
    use rdkafka::consumer::Consumer;
    let deadline = Instant::now() + timeout;
    let probe: rdkafka::consumer::BaseConsumer = KafkaConfig::new(addr)
        .group_consumer("tradestream-matcher")
        .create()
        .unwrap();
    loop {
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition("orders", p);
        }
        let committed: i64 = probe
            .committed_offsets(tpl, Duration::from_secs(10))
            .map(|c| {
                c.elements()
                    .iter()
                    .filter_map(|e| e.offset().to_raw())
                    .filter(|o| *o > 0)
                    .sum()
            })
            .unwrap_or(0);
        if committed as u64 >= total {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "matcher did not catch up: committed {committed} of {total}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The engine offline over one orders partition: JSON of every expected output per topic
/// (seq removed: on topics it is per topic, offline it is per engine), and the count of
/// records the matcher must dead-letter.
fn offline(orders: &[Rec]) -> (BTreeMap<&'static str, Vec<Value>>, usize) {
    let instruments =
        tradestream_config::load_instruments(&root().join("instruments.yaml")).unwrap();
    let mut engine: Engine = Engine::new(instruments.clone());
    let mut expected: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    let mut poison = 0;
    let mut events = Vec::new();
    for (_, payload, _) in orders {
        if payload.len() > MAX_RECORD_BYTES {
            poison += 1;
            continue;
        }
        let cmd = json::decode_command(payload, 0);
        if matches!(cmd, EngineCommand::Invalid(_)) {
            poison += 1;
            continue;
        }
        events.clear();
        engine.apply(&cmd, &mut events);
        for e in &events {
            let mut buf = Vec::new();
            json::encode_event(&instruments, e, &mut buf);
            let mut v: Value = serde_json::from_slice(&buf).unwrap();
            v.as_object_mut().unwrap().remove("seq");
            let topics: &[&'static str] = match v["event"].as_str().unwrap() {
                "trade" => &["executions", "trades"],
                "book_delta" | "top_of_book" => &["market-data"],
                _ => &["executions"],
            };
            for t in topics {
                expected.entry(t).or_default().push(v.clone());
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
        let (expected, poison) = offline(&orders);
        for topic in ["executions", "trades", "market-data"] {
            let live = read_all(&reader, topic, p);
            let want = expected.get(topic).cloned().unwrap_or_default();
            assert_eq!(live.len(), want.len(), "{topic}/{p}: record count");
            for (i, ((_, payload, h), want)) in live.iter().zip(&want).enumerate() {
                assert_eq!(
                    h[headers::SEQ],
                    (i + 1).to_string(),
                    "{topic}/{p}: seq contiguous"
                );
                assert_eq!(h[headers::SOURCE_PARTITION], p.to_string());
                let mut v: Value = serde_json::from_slice(payload).unwrap();
                v.as_object_mut().unwrap().remove("seq");
                assert_eq!(&v, want, "{topic}/{p} record {i}");
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
    let matcher = start_matcher(&addr, 2_000);
    wait_caught_up(&addr, 20_000, Duration::from_secs(300));
    let stats = stop_matcher(matcher);
    let (checked, dead) = verify(&addr);
    assert!(checked > 20_000, "{checked}");
    assert!(dead > 50, "poison records reached dead letters: {dead}");
    assert_eq!(stats["dead_letters"].as_u64(), Some(dead as u64));
}

#[test]
fn crashes_lose_nothing_and_duplicate_nothing() {
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
            "4000",
            "--poison-per-mille",
            "5",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start producer");
    let producer = Proc(producer);
    // A graceful stop and restart first.
    let matcher = start_matcher(&addr, SNAPSHOT_EVERY);
    std::thread::sleep(Duration::from_millis(2_000));
    stop_matcher(matcher);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for kill in 0..3 {
        let matcher = start_matcher(&addr, SNAPSHOT_EVERY);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(2_000 + rng % 3_000));
        signal(&matcher.0, "-KILL");
        drop(matcher);
        eprintln!("killed matcher ({})", kill + 1);
    }
    // The run after the last kill recovers and finishes the flow.
    let matcher = start_matcher(&addr, SNAPSHOT_EVERY);
    let mut producer = producer;
    assert!(producer.0.wait().expect("producer exits").success());
    wait_caught_up(&addr, ORDERS, Duration::from_secs(600));
    let stats = stop_matcher(matcher);
    verify(&addr);
    // Recovery is bounded by the snapshot interval plus one batch per partition, not history.
    let replayed = stats["replayed"].as_u64().unwrap();
    assert!(
        replayed <= PARTITIONS as u64 * (SNAPSHOT_EVERY + 500),
        "replayed {replayed}"
    );
}
