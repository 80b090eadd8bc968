//! The engine run offline over what the orders topic holds, and the check that every output
//! topic of the matcher equals it (docs/design.md §2).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tradestream_codec::avro;
use tradestream_engine::{Command as EngineCommand, Engine, Instruments};
use tradestream_runtime::KafkaConfig;
use tradestream_runtime::headers;
use tradestream_runtime::partition::PartitionReader;
use tradestream_runtime::partitioner::partition_for;

use super::{PARTITIONS, Rec, read_all, root};

/// The matcher's limit (MatcherConfig::max_record_bytes default).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

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

/// The broker timestamp of every record of orders partition `p`, by offset.
fn record_timestamps(reader: &PartitionReader, p: i32) -> BTreeMap<i64, Option<i64>> {
    use rdkafka::message::Message;
    let mut out = BTreeMap::new();
    reader
        .read_to_end("orders", p, 0, |m| {
            out.insert(m.offset(), m.timestamp().to_millis());
        })
        .unwrap();
    out
}

/// The engine offline over one orders partition, with the matcher's default timestamp window
/// around each record's broker timestamp (`timestamps`, by offset).
fn offline(
    p: i32,
    orders: &[Rec],
    timestamps: &BTreeMap<i64, Option<i64>>,
    instruments: &Instruments,
) -> Offline {
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
        if matches!(cmd, EngineCommand::Invalid(_)) || misrouted(&cmd, p) {
            poison += 1;
            continue;
        }
        events.clear();
        tradestream_matcher::timestamps::apply(
            &mut engine,
            &cmd,
            timestamps[offset],
            Some(tradestream_matcher::timestamps::DEFAULT_MAX_CLOCK_SKEW),
            &mut events,
        );
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
                    instruments,
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

/// Whether the matcher must dead-letter `cmd` from partition `p`: its symbol hashes elsewhere.
fn misrouted(cmd: &EngineCommand, p: i32) -> bool {
    !matches!(cmd, EngineCommand::Invalid(_))
        && partition_for(cmd.symbol().as_str().as_bytes(), PARTITIONS) != p
}

/// How strict [`verify_with`] is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Check {
    /// Effectively-once with a zombie: an output may appear more than once, always byte for
    /// byte the same under the same seq (readers deduplicate by seq).
    pub duplicates_ok: bool,
    /// Records another writer put in the output topics (no `worker: matcher` header) are
    /// passed over.
    pub foreign_ok: bool,
    /// Snapshots of an older history (the input topics were re-created since) are passed over:
    /// those whose input offset lies beyond the end of the partition.
    pub old_snapshots_ok: bool,
}

/// What [`verify_with`] found.
#[derive(Debug, Default)]
pub struct Verified {
    /// Outputs compared with the offline run (after deduplication).
    pub checked: usize,
    /// The same, per output topic.
    pub by_topic: BTreeMap<&'static str, usize>,
    /// Dead letters of the matcher.
    pub dead: usize,
    /// Outputs found more than once (identical).
    pub duplicates: usize,
}

/// [`verify_with`], strict: no duplicates, no foreign records.
pub fn verify(addr: &str) -> (usize, usize) {
    let v = verify_with(addr, Check::default());
    (v.checked, v.dead)
}

/// Every output topic equals the offline run, per partition; seq contiguous from 1; provenance
/// consistent; every snapshot's output hash chain equals the offline chain at its offset.
pub fn verify_with(addr: &str, check: Check) -> Verified {
    verify_against(addr, check, &root().join("instruments.yaml"))
}

/// [`verify_with`] for a matcher that ran with the instruments file `instruments`.
pub fn verify_against(addr: &str, check: Check, instruments: &Path) -> Verified {
    let instruments = tradestream_config::load_instruments(instruments).unwrap();
    let reader = PartitionReader::new(&KafkaConfig::new(addr), Duration::from_secs(60)).unwrap();
    let (mut checked, mut dead, mut snapshots, mut duplicates) = (0, 0, 0, 0);
    let mut by_topic = BTreeMap::new();
    for p in 0..PARTITIONS {
        let orders = read_all(&reader, "orders", p);
        let Offline {
            expected,
            poison,
            chain_at,
        } = offline(p, &orders, &record_timestamps(&reader, p), &instruments);
        // Every snapshot carries the output hash chain of the input it covers.
        for (_, payload, _) in read_all(&reader, "matcher-snapshots", p) {
            if payload.is_empty() {
                continue; // a tombstone of an older snapshot
            }
            let meta = avro::decode_snapshot(&payload).expect("snapshot decodes");
            let old =
                check.old_snapshots_ok && meta.input_offset >= orders.last().map_or(0, |r| r.0 + 1);
            if meta.group == "tradestream-matcher" && meta.chunk == 0 && !old {
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
            let mut live = read_all(&reader, topic, p);
            if check.foreign_ok {
                live.retain(|(_, _, h)| {
                    h.get(headers::WORKER).map(String::as_str) == Some("matcher")
                });
            }
            let want = expected.get(topic).cloned().unwrap_or_default();
            if check.duplicates_ok {
                // The raw topic: every record, a duplicate too, is byte for byte the offline
                // run's output with its seq. Then what a reader keeping the first record of
                // each seq gets is compared below, as without duplicates.
                let mut seen = std::collections::BTreeSet::new();
                live.retain(|(offset, payload, h)| {
                    let seq: usize = h[headers::SEQ].parse().expect("a numeric seq header");
                    let Some(expected) = seq.checked_sub(1).and_then(|i| want.get(i)) else {
                        panic!(
                            "{topic}/{p} offset {offset}: seq {seq}, the offline run has {}",
                            want.len()
                        )
                    };
                    if payload != expected {
                        panic!(
                            "{topic}/{p} offset {offset}: seq {seq} is not the offline run's\n \
                             live {:?}\n want {:?}",
                            avro::decode_event(payload),
                            avro::decode_event(expected)
                        );
                    }
                    let first = seen.insert(seq);
                    if !first {
                        duplicates += 1;
                    }
                    first
                });
            }
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
            *by_topic.entry(topic).or_default() += live.len();
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
        if check.duplicates_ok {
            offsets.sort_unstable();
        }
        offsets.dedup();
        if !check.duplicates_ok {
            assert_eq!(offsets.len(), n, "a dead letter was written twice");
        }
        assert_eq!(offsets.len(), poison, "dead letters of partition {p}");
        for (_, _, h) in &dlq {
            assert_eq!(h["source-topic"], "orders");
            assert!(
                ["decode", "oversized", "misrouted"].contains(&h["error-class"].as_str()),
                "{h:?}"
            );
            assert!(!h["error-message"].is_empty());
        }
        dead += offsets.len();
    }
    assert!(snapshots > 0, "no snapshot carried an output hash to check");
    Verified {
        checked,
        by_topic,
        dead,
        duplicates,
    }
}
