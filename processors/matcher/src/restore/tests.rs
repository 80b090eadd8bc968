use std::collections::BTreeMap;

use tradestream_runtime::KafkaConfig;
use tradestream_runtime::headers::{self, HeaderLookup};
use tradestream_runtime::io::{Fetched, LogReader};
use tradestream_runtime::partition::ReadError;

use super::first_gap;
use crate::config::MatcherConfig;
use crate::state::Tail;

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
