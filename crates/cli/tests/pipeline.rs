//! The pipeline on a real broker: `tradestream broker` as a child process on a free loopback
//! port, the matcher as a child process (so it can be killed), and every output compared with
//! the engine run offline over what the orders topic holds.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tradestream_codec::avro;
use tradestream_engine::{Command as EngineCommand, Engine};
use tradestream_runtime::KafkaConfig;
use tradestream_runtime::headers;
use tradestream_runtime::partition::PartitionReader;

mod common;

use common::*;

/// The matcher's limit (MatcherConfig::max_record_bytes default).
const MAX_RECORD_BYTES: usize = 64 * 1024;

/// What the engine run offline over one orders partition says the matcher must write.
struct Offline {
    /// The exact bytes of every expected output per topic (Avro, with the provenance the
    /// matcher must give it).
    expected: BTreeMap<&'static str, Vec<Vec<u8>>>,
    /// Records the matcher must dead-letter.
    poison: usize,
    /// The output hash chain after each input offset.
    chain_at: BTreeMap<i64, u64>,
}

/// The engine offline over one orders partition.
fn offline(p: i32, orders: &[Rec]) -> Offline {
    let instruments =
        tradestream_config::load_instruments(&root().join("instruments.yaml")).unwrap();
    let mut engine: Engine = Engine::new(instruments.clone());
    let mut expected: BTreeMap<&'static str, Vec<Vec<u8>>> = BTreeMap::new();
    let mut poison = 0;
    let mut events = Vec::new();
    let (mut chain, mut chain_at) = (0u64, BTreeMap::new());
    for (offset, payload, _) in orders {
        chain_at.insert(*offset, chain);
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
                let index = ["executions", "trades", "market-data"]
                    .iter()
                    .position(|x| x == t)
                    .unwrap();
                chain = tradestream_matcher::output_chain(chain, index, provenance.seq, &buf);
                records.push(buf);
            }
        }
        chain_at.insert(*offset, chain);
    }
    Offline {
        expected,
        poison,
        chain_at,
    }
}

/// Every output topic equals the offline run, per partition; seq contiguous from 1; provenance
/// consistent; every snapshot's output hash chain equals the offline chain at its offset.
/// Returns (outputs checked, dead letters).
fn verify(addr: &str) -> (usize, usize) {
    let reader = PartitionReader::new(&KafkaConfig::new(addr), Duration::from_secs(60)).unwrap();
    let (mut checked, mut dead, mut snapshots) = (0, 0, 0);
    for p in 0..PARTITIONS {
        let orders = read_all(&reader, "orders", p);
        let Offline {
            expected,
            poison,
            chain_at,
        } = offline(p, &orders);
        // Every snapshot carries the output hash chain of the input it covers.
        for (_, payload, _) in read_all(&reader, "matcher-snapshots", p) {
            let meta = avro::decode_snapshot(&payload).expect("snapshot decodes");
            if meta.group == "tradestream-matcher" && meta.chunk == 0 {
                assert_eq!(
                    Some(&meta.output_hash),
                    chain_at.get(&meta.input_offset),
                    "output hash of the snapshot of {p} at {}",
                    meta.input_offset
                );
                snapshots += 1;
            }
        }
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
    assert!(snapshots > 0, "no snapshot carried an output hash to check");
    (checked, dead)
}

#[test]
fn matcher_outputs_equal_the_offline_engine() {
    let _serial = serial();
    let (_broker, addr) = broker_with_orders(20_000, 1, &["--poison-per-mille", "10"]);
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

    // A replay into shadow topics reproduces every output and the output hash chain…
    let replay = bin()
        .args([
            "replay",
            "matcher",
            "--suffix",
            "r1",
            "--bootstrap-servers",
            &addr,
        ])
        .output()
        .expect("replay runs");
    assert!(
        replay.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let out = bin()
        .args(["verify", "--suffix", "r1", "--bootstrap-servers", &addr])
        .output()
        .expect("verify runs");
    assert!(
        out.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("verify prints JSON");
    assert_eq!(report["records_compared"].as_u64(), Some(checked as u64));
    assert!(report["chains_compared"].as_u64() >= Some(1), "{report}");
    // … and verify notices a shadow that differs.
    produce_raw(&addr, None, &[("trades.r1", 0, b"stray")]);
    let out = bin()
        .args(["verify", "--suffix", "r1", "--bootstrap-servers", &addr])
        .output()
        .expect("verify runs");
    assert!(
        !out.status.success(),
        "verify must fail on a differing shadow"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("trades/0"), "{err}");
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
