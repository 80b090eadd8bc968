use std::collections::BTreeMap;

use tradestream_runtime::KafkaConfig;
use tradestream_runtime::headers::{self, HeaderLookup};
use tradestream_runtime::io::{Fetched, LogReader};
use tradestream_runtime::partition::ReadError;

use std::cell::RefCell;

use super::{first_gap, latest_snapshot};
use crate::config::MatcherConfig;
use crate::state::{SnapshotChunk, Tail};

/// Output headers as a map.
struct Headers(BTreeMap<&'static str, String>);

impl HeaderLookup for Headers {
    fn header(&self, key: &str) -> Option<&[u8]> {
        self.0.get(key).map(String::as_bytes)
    }
}

/// One output partition in memory: (offset, seq) of the matcher's outputs for input partition
/// 0, starting at `low`.
struct Outputs {
    low: i64,
    seqs: Vec<u64>,
}

impl LogReader for Outputs {
    fn log_bounds(&self, _topic: &str, _partition: i32) -> Result<(i64, i64), ReadError> {
        Ok((self.low, self.low + self.seqs.len() as i64))
    }

    fn scan(
        &self,
        _topic: &str,
        _partition: i32,
        from: i64,
        f: &mut dyn FnMut(&Fetched<'_>),
    ) -> Result<(), ReadError> {
        for (i, seq) in self.seqs.iter().enumerate() {
            let offset = self.low + i as i64;
            if offset < from {
                continue;
            }
            let h = Headers(BTreeMap::from([
                (headers::WORKER, "matcher".to_owned()),
                (headers::SOURCE_TOPIC, "orders".to_owned()),
                (headers::SOURCE_PARTITION, "0".to_owned()),
                (headers::SOURCE_OFFSET, seq.to_string()),
                (headers::SEQ, seq.to_string()),
            ]));
            f(&Fetched {
                offset,
                key: None,
                payload: Some(b"v"),
                headers: Some(&h),
            });
        }
        Ok(())
    }

    fn partition_count(&self, _topic: &str) -> Result<i32, ReadError> {
        Ok(1)
    }
}

fn gap(low: i64, seqs: &[u64], after: u64) -> Option<u64> {
    let cfg = MatcherConfig::new(
        KafkaConfig::new("127.0.0.1:1"),
        tradestream_engine::Instruments::default(),
    );
    let log = Outputs {
        low,
        seqs: seqs.to_vec(),
    };
    let tail = Tail {
        seq: seqs.iter().copied().max().unwrap_or(0),
        source_offset: 0,
    };
    first_gap(&log, &cfg, "executions", 0, after, tail).unwrap()
}

/// Issue 21: a delivery that timed out while later ones landed left a gap (seq 11 missing,
/// 12..20 present); restore skipped every seq up to the newest, so 11 was never written again.
/// The first missing seq after the snapshot is found, and writing starts again from it.
#[test]
fn the_first_missing_seq_after_the_snapshot_is_found() {
    let with_gap: Vec<u64> = (1..=10).chain(12..=20).collect();
    assert_eq!(gap(0, &with_gap, 5), Some(11));
    assert_eq!(gap(0, &with_gap, 0), Some(11), "no snapshot");
    assert_eq!(
        gap(0, &with_gap, 11),
        None,
        "the gap is before the snapshot"
    );
    let whole: Vec<u64> = (1..=20).collect();
    assert_eq!(gap(0, &whole, 5), None);
    assert_eq!(gap(0, &whole, 20), None, "nothing after the snapshot");
    // The failed output was the newest of its batch: 19 and 20 missing, 21 written after.
    let tail_gap: Vec<u64> = (1..=18).chain([21]).collect();
    assert_eq!(gap(0, &tail_gap, 3), Some(19));
}

#[test]
fn a_written_again_stretch_closes_the_gap() {
    // 11 missing, then everything from 11 written again after 20.
    let repaired: Vec<u64> = (1..=10).chain(12..=20).chain(11..=20).collect();
    assert_eq!(gap(0, &repaired, 5), None);
}

#[test]
fn outputs_removed_by_retention_are_no_gap() {
    // The partition starts at offset 5000 with seq 4001; no snapshot.
    let left: Vec<u64> = (4_001..=4_100).collect();
    assert_eq!(gap(5_000, &left, 0), None);
    let left_with_gap: Vec<u64> = (4_001..=4_050).chain(4_052..=4_100).collect();
    assert_eq!(gap(5_000, &left_with_gap, 0), Some(4_051));
}

#[test]
fn the_scan_reaches_back_past_a_long_stretch() {
    // 5 000 outputs after the snapshot (more than the first window) with a gap near the start.
    let long: Vec<u64> = (1..=100).chain(102..=5_100).collect();
    assert_eq!(gap(0, &long, 50), Some(101));
}

/// A snapshot partition in memory: (key, value) per offset from 0; the `from` of every scan.
struct Snapshots {
    records: Vec<(Vec<u8>, Vec<u8>)>,
    scans: RefCell<Vec<i64>>,
}

impl LogReader for Snapshots {
    fn log_bounds(&self, _topic: &str, _partition: i32) -> Result<(i64, i64), ReadError> {
        Ok((0, self.records.len() as i64))
    }

    fn scan(
        &self,
        _topic: &str,
        _partition: i32,
        from: i64,
        f: &mut dyn FnMut(&Fetched<'_>),
    ) -> Result<(), ReadError> {
        self.scans.borrow_mut().push(from);
        for (i, (key, value)) in self.records.iter().enumerate().skip(from as usize) {
            f(&Fetched {
                offset: i as i64,
                key: Some(key),
                payload: (!value.is_empty()).then_some(value.as_slice()),
                headers: None,
            });
        }
        Ok(())
    }

    fn partition_count(&self, _topic: &str) -> Result<i32, ReadError> {
        Ok(1)
    }
}

/// The chunk records of a snapshot of input offset `input_offset` in `chunks` chunks, its
/// engine bytes made of `fill`.
fn snapshot(input_offset: i64, chunks: u32, fill: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
    let parts: Vec<Vec<u8>> = (0..chunks).map(|i| vec![fill, i as u8, 7]).collect();
    let state_hash = tradestream_engine::snapshot::fnv1a64(&parts.concat());
    parts
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let c = SnapshotChunk {
                group: "g".into(),
                partition: 0,
                input_offset,
                seq: [1, 2, 3],
                state_hash,
                output_hash: 9,
                chunk: i as u32,
                chunks,
                bytes,
                dead_letter_end: 0,
            };
            (format!("g/0/{input_offset}/{i}").into_bytes(), c.encode())
        })
        .collect()
}

/// Issue 21: two writers (a zombie and the new owner) interleaving their chunks left no
/// snapshot the restore could assemble (it expected a snapshot's chunks next to each other),
/// and compaction with one key per chunk index could keep chunk 0 of one and chunk 1 of the
/// other. Chunks are matched by snapshot, and the one completed last is taken.
#[test]
fn chunks_of_two_writers_interleaved_still_assemble() {
    let a = snapshot(100, 2, 0xA);
    let b = snapshot(200, 2, 0xB);
    let log = Snapshots {
        records: vec![a[0].clone(), b[0].clone(), a[1].clone(), b[1].clone()],
        scans: RefCell::default(),
    };
    let found = latest_snapshot(&log, "s", "g", 0)
        .unwrap()
        .expect("a snapshot");
    assert_eq!(found.meta.input_offset, 200);
    assert_eq!(found.bytes, [0xB, 0, 7, 0xB, 1, 7]);
    assert_eq!(found.keys, [b"g/0/200/0".to_vec(), b"g/0/200/1".to_vec()]);

    // B's chunk 1 lost: A, complete, is taken.
    let log = Snapshots {
        records: vec![a[0].clone(), b[0].clone(), a[1].clone()],
        scans: RefCell::default(),
    };
    let found = latest_snapshot(&log, "s", "g", 0)
        .unwrap()
        .expect("a snapshot");
    assert_eq!(found.meta.input_offset, 100);
}

/// Issue 21: a snapshot of more chunks than the first window (64 records) never fitted it, and
/// every restore read the whole partition. The window grows until the snapshot is in it.
#[test]
fn a_snapshot_of_many_chunks_restores_without_a_full_scan() {
    let mut records = Vec::new();
    for input_offset in 0..500 {
        records.extend(snapshot(input_offset, 1, 1));
    }
    records.extend(snapshot(1_000, 100, 2));
    let log = Snapshots {
        records,
        scans: RefCell::default(),
    };
    let found = latest_snapshot(&log, "s", "g", 0)
        .unwrap()
        .expect("a snapshot");
    assert_eq!(found.meta.input_offset, 1_000);
    assert_eq!(found.bytes.len(), 300);
    let scans = log.scans.borrow();
    assert!(
        scans.iter().all(|from| *from > 0),
        "read from the start: {scans:?}"
    );
}

/// A chunk with the right offset but bytes that do not hash to the state is no snapshot.
#[test]
fn chunks_that_do_not_hash_to_the_state_are_passed_over() {
    let good = snapshot(100, 1, 1);
    let mut bad = snapshot(200, 2, 2);
    let mut c = SnapshotChunk::decode(&bad[1].1).unwrap();
    c.bytes = vec![0, 0, 0];
    bad[1].1 = c.encode();
    let log = Snapshots {
        records: [good, bad].concat(),
        scans: RefCell::default(),
    };
    let found = latest_snapshot(&log, "s", "g", 0)
        .unwrap()
        .expect("a snapshot");
    assert_eq!(found.meta.input_offset, 100);
}
