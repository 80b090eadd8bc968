//! Matcher snapshot chunks (`snapshot_meta.avsc`): [`SnapshotMeta`], [`encode_snapshot`],
//! [`decode_snapshot`].

use super::binary::{Reader, put_bytes, put_long, put_str};
use super::{AvroError, Framing, RecordType};

/// `snapshot_meta.avsc`'s top-level field names, in order: what this file writes and reads (the
/// tests compare them with the parsed schema).
#[cfg(test)]
pub(super) const SNAPSHOT_FIELDS: [&str; 12] = [
    "group",
    "partition",
    "input_offset",
    "last_seq",
    "state_hash",
    "output_hash",
    "chunk",
    "chunks",
    "engine_bytes",
    "trades_seq",
    "market_data_seq",
    "dead_letter_end",
];

/// A matcher snapshot, or one chunk of one (`snapshot_meta.avsc`). Unsigned values keep their
/// bits in the schema's signed types, so every value round-trips exactly.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// The matcher's consumer group.
    pub group: String,
    /// The input partition.
    pub partition: i32,
    /// The last input offset the snapshot covers.
    pub input_offset: i64,
    /// The last seq on the executions topic for that offset.
    pub last_seq: u64,
    /// Hash of the engine state ([`Engine::state_hash`](tradestream_engine::Engine::state_hash)).
    pub state_hash: u64,
    /// Running hash of the outputs up to `last_seq`.
    pub output_hash: u64,
    /// This chunk's index, from 0.
    pub chunk: u32,
    /// How many chunks the snapshot has.
    pub chunks: u32,
    /// This chunk of the engine's snapshot bytes.
    pub engine_bytes: Vec<u8>,
    /// The last seq on the trades topic for that offset.
    pub trades_seq: u64,
    /// The last seq on the market-data topic for that offset.
    pub market_data_seq: u64,
    /// End offset of the dead-letter partition when the snapshot was taken.
    pub dead_letter_end: i64,
}

/// Encodes a snapshot (chunk).
pub fn encode_snapshot(meta: &SnapshotMeta, framing: Framing) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + meta.group.len() + meta.engine_bytes.len());
    RecordType::SnapshotMeta.header(framing, &mut out);
    let o = &mut out;
    put_str(o, &meta.group);
    put_long(o, i64::from(meta.partition));
    put_long(o, meta.input_offset);
    put_long(o, meta.last_seq as i64);
    put_long(o, meta.state_hash as i64);
    put_long(o, meta.output_hash as i64);
    put_long(o, i64::from(meta.chunk as i32));
    put_long(o, i64::from(meta.chunks as i32));
    put_bytes(o, &meta.engine_bytes);
    put_long(o, meta.trades_seq as i64);
    put_long(o, meta.market_data_seq as i64);
    put_long(o, meta.dead_letter_end);
    out
}

/// Reads a snapshot (chunk) (either framing).
pub fn decode_snapshot(bytes: &[u8]) -> Result<SnapshotMeta, AvroError> {
    let mut r = Reader(RecordType::SnapshotMeta.body(bytes)?);
    let meta = SnapshotMeta {
        group: r.str("group")?.to_owned(),
        partition: r.int("partition")?,
        input_offset: r.long("input_offset")?,
        last_seq: r.long("last_seq")? as u64,
        state_hash: r.long("state_hash")? as u64,
        output_hash: r.long("output_hash")? as u64,
        chunk: r.int("chunk")? as u32,
        chunks: r.int("chunks")? as u32,
        engine_bytes: r.bytes("engine_bytes")?.to_vec(),
        trades_seq: r.long("trades_seq")? as u64,
        market_data_seq: r.long("market_data_seq")? as u64,
        dead_letter_end: r.long("dead_letter_end")?,
    };
    r.finish()?;
    Ok(meta)
}
