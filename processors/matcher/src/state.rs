//! Per-partition state, and its snapshot records.

use std::time::Instant;

use tradestream_codec::avro;
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
    /// The output hash chain over every output of the partition so far ([`chain`]).
    pub output_hash: u64,
    /// The newest output of each topic found at restore: when the replay regenerates its
    /// `seq`, it must come from the same input offset, or the outputs belong to another
    /// history.
    pub tails: [Tail; OUTPUTS],
    /// The chunk keys of the snapshots of this partition kept in the snapshot topic, oldest
    /// first: writing a new one deletes (tombstones) all but the newest before it, so the
    /// topic holds at most two per partition, and the one before the newest stays whole should
    /// the newest not land.
    pub kept_snapshots: std::collections::VecDeque<Vec<Vec<u8>>>,
}

/// The newest output of this matcher in an output partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Its `seq` (0: none).
    pub seq: u64,
    /// The input offset it was made from (-1: none).
    pub source_offset: i64,
}

/// One link of the output hash chain (docs/design.md §4): FNV-1a 64 over the previous link, the
/// output topic's index (0 executions, 1 trades, 2 market data), the record's `seq` and its
/// value bytes, all little-endian. The matcher folds in every output in the order it makes
/// them, including those a restore finds already written, so the chain after input offset n
/// depends only on the input up to n: a restored partition continues the chain of an
/// uninterrupted run, and `verify` can compare a live chain with a replay's.
pub fn chain(prev: u64, topic: usize, seq: u64, value: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let topic = u8::try_from(topic).unwrap_or(u8::MAX);
    for &b in prev
        .to_le_bytes()
        .iter()
        .chain(std::iter::once(&topic))
        .chain(seq.to_le_bytes().iter())
        .chain(value)
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// One snapshot record: a chunk of the engine snapshot plus the metadata, written as
/// `schemas/snapshot_meta.avsc` (Avro single-object encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotChunk {
    pub group: String,
    pub partition: i32,
    pub input_offset: i64,
    pub seq: [u64; OUTPUTS],
    pub state_hash: u64,
    pub output_hash: u64,
    pub chunk: u32,
    pub chunks: u32,
    pub bytes: Vec<u8>,
    /// End offset of the dead-letter partition when the snapshot was taken: the matcher's dead
    /// letters for input after the snapshot are at or after it.
    pub dead_letter_end: i64,
}

impl SnapshotChunk {
    pub fn encode(&self) -> Vec<u8> {
        let meta = avro::SnapshotMeta {
            group: self.group.clone(),
            partition: self.partition,
            input_offset: self.input_offset,
            last_seq: self.seq[EXECUTIONS],
            state_hash: self.state_hash,
            output_hash: self.output_hash,
            chunk: self.chunk,
            chunks: self.chunks,
            engine_bytes: self.bytes.clone(),
            trades_seq: self.seq[TRADES],
            market_data_seq: self.seq[MARKET_DATA],
            dead_letter_end: self.dead_letter_end,
        };
        avro::encode_snapshot(&meta, avro::Framing::SingleObject)
    }

    pub fn decode(b: &[u8]) -> Option<SnapshotChunk> {
        let m = avro::decode_snapshot(b).ok()?;
        (m.chunk < m.chunks).then_some(SnapshotChunk {
            group: m.group,
            partition: m.partition,
            input_offset: m.input_offset,
            seq: [m.last_seq, m.trades_seq, m.market_data_seq],
            state_hash: m.state_hash,
            output_hash: m.output_hash,
            chunk: m.chunk,
            chunks: m.chunks,
            bytes: m.engine_bytes,
            dead_letter_end: m.dead_letter_end,
        })
    }
}

impl PartitionState {
    /// The snapshot records for this state, one per `chunk_bytes` of engine snapshot.
    pub fn snapshot_chunks(
        &self,
        group: &str,
        partition: i32,
        dead_letter_end: i64,
        chunk_bytes: usize,
    ) -> Vec<SnapshotChunk> {
        let engine = self.engine.snapshot();
        let state_hash = tradestream_engine::snapshot::fnv1a64(&engine);
        let parts: Vec<&[u8]> = engine.chunks(chunk_bytes.max(1)).collect();
        let chunks = parts.len().max(1) as u32;
        (0..chunks)
            .map(|i| SnapshotChunk {
                group: group.to_owned(),
                partition,
                input_offset: self.next_offset - 1,
                seq: self.seq,
                state_hash,
                output_hash: self.output_hash,
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
mod tests;
