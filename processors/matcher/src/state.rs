//! Per-partition state, and its snapshot records.

use std::time::Instant;

use tradestream_engine::{Engine, EventKind};

/// Output topics with a `seq` counter, in this order everywhere.
pub(crate) const OUTPUTS: usize = 3;
pub(crate) const EXECUTIONS: usize = 0;
pub(crate) const TRADES: usize = 1;
pub(crate) const MARKET_DATA: usize = 2;

/// The output topics an event goes to: fills are both executions and trades.
pub(crate) fn routes(kind: &EventKind) -> &'static [usize] {
    match kind {
        EventKind::Trade { .. } => &[EXECUTIONS, TRADES],
        EventKind::BookDelta { .. } | EventKind::TopOfBook { .. } => &[MARKET_DATA],
        _ => &[EXECUTIONS],
    }
}

/// What the matcher keeps for one input partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    pub engine: Engine,
    /// Next input offset to process.
    pub next_offset: i64,
    /// Last `seq` assigned, per output topic.
    pub seq: [u64; OUTPUTS],
    /// Outputs with `seq` up to this are already in the topic (found at restore): not re-sent.
    pub present: [u64; OUTPUTS],
    /// Input offsets up to this are already in dead letters (found at restore): not re-sent.
    pub dead_lettered: i64,
    /// Input records since the last snapshot.
    pub since_snapshot: u64,
    /// When the last snapshot was taken (or the partition assigned).
    pub snapshot_at: Instant,
    /// Input offset the last snapshot covers (-1: none).
    pub snapshot_offset: i64,
    /// Records replayed after the restore (input already processed before the restart).
    pub replayed: u64,
    /// Committed offset at assignment: input below it was processed before.
    pub committed: i64,
    /// A re-fetch in progress after a gap in the input: the offset awaited, since when, and how
    /// many times it was asked for.
    pub refetch: Option<(i64, Instant, u32)>,
}

/// One snapshot record (a chunk of the engine snapshot plus the metadata).
///
/// Layout (little-endian): `b"TSMS"`, `u16` version, `i32` partition, `i64` input offset covered,
/// 3 × `u64` output seqs, `u64` engine state hash, `u32` chunk, `u32` chunks, `u32` length +
/// engine snapshot bytes of this chunk, `i64` dead-letter partition end offset when taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotChunk {
    pub partition: i32,
    pub input_offset: i64,
    pub seq: [u64; OUTPUTS],
    pub state_hash: u64,
    pub chunk: u32,
    pub chunks: u32,
    pub bytes: Vec<u8>,
    /// End offset of the dead-letter partition when the snapshot was taken: the matcher's dead
    /// letters for input after the snapshot are at or after it.
    pub dead_letter_end: i64,
}

const MAGIC: &[u8; 4] = b"TSMS";
const VERSION: u16 = 1;
/// Chunks stay well under the default 1 MB broker message limit.
pub(crate) const CHUNK_BYTES: usize = 512 * 1024;

impl SnapshotChunk {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.bytes.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.partition.to_le_bytes());
        out.extend_from_slice(&self.input_offset.to_le_bytes());
        for s in self.seq {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out.extend_from_slice(&self.state_hash.to_le_bytes());
        out.extend_from_slice(&self.chunk.to_le_bytes());
        out.extend_from_slice(&self.chunks.to_le_bytes());
        out.extend_from_slice(&(self.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.bytes);
        out.extend_from_slice(&self.dead_letter_end.to_le_bytes());
        out
    }

    pub fn decode(b: &[u8]) -> Option<SnapshotChunk> {
        let mut r = b;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = r.split_at_checked(n)?;
            r = tail;
            Some(head)
        };
        if take(4)? != MAGIC || u16::from_le_bytes(take(2)?.try_into().ok()?) != VERSION {
            return None;
        }
        let partition = i32::from_le_bytes(take(4)?.try_into().ok()?);
        let input_offset = i64::from_le_bytes(take(8)?.try_into().ok()?);
        let mut seq = [0u64; OUTPUTS];
        for s in &mut seq {
            *s = u64::from_le_bytes(take(8)?.try_into().ok()?);
        }
        let state_hash = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let chunk = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let chunks = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let bytes = take(len)?.to_vec();
        let dead_letter_end = i64::from_le_bytes(take(8)?.try_into().ok()?);
        (chunk < chunks && r.is_empty()).then_some(SnapshotChunk {
            partition,
            input_offset,
            seq,
            state_hash,
            chunk,
            chunks,
            bytes,
            dead_letter_end,
        })
    }
}

impl PartitionState {
    /// The snapshot records for this state (one per chunk).
    pub fn snapshot_chunks(&self, partition: i32, dead_letter_end: i64) -> Vec<SnapshotChunk> {
        let engine = self.engine.snapshot();
        let state_hash = tradestream_engine::snapshot::fnv1a64(&engine);
        let parts: Vec<&[u8]> = engine.chunks(CHUNK_BYTES).collect();
        let chunks = parts.len().max(1) as u32;
        (0..chunks)
            .map(|i| SnapshotChunk {
                partition,
                input_offset: self.next_offset - 1,
                seq: self.seq,
                state_hash,
                chunk: i,
                chunks,
                bytes: parts
                    .get(i as usize)
                    .map(|p| p.to_vec())
                    .unwrap_or_default(),
                dead_letter_end,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_chunks_round_trip_and_refuse_garbage() {
        let c = SnapshotChunk {
            partition: 3,
            input_offset: 41,
            seq: [7, 2, 9],
            state_hash: 0xfeed,
            chunk: 1,
            chunks: 2,
            bytes: vec![1, 2, 3],
            dead_letter_end: 12,
        };
        let b = c.encode();
        assert_eq!(SnapshotChunk::decode(&b), Some(c));
        assert_eq!(SnapshotChunk::decode(&b[..b.len() - 1]), None);
        assert_eq!(SnapshotChunk::decode(b"garbage"), None);
    }
}
