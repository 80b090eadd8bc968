//! Rebuilding one partition's state: latest snapshot, then what the outputs already hold.

use std::time::Instant;

use rdkafka::message::Message;
use tradestream_engine::Engine;
use tradestream_runtime::headers;
use tradestream_runtime::partition::{PartitionReader, ReadError};

use crate::config::MatcherConfig;
use crate::state::{OUTPUTS, PartitionState, SnapshotChunk};

/// Why a partition could not be restored. The worker stops rather than guess.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Reading a topic failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The snapshot does not fit the configuration.
    #[error("partition {partition}: snapshot unusable: {source}")]
    Snapshot {
        /// Input partition.
        partition: i32,
        /// What is wrong.
        source: tradestream_engine::SnapshotError,
    },
}

/// How many records at the end of the snapshot partition to look at first; a snapshot is one
/// or a few records, so the latest complete one is almost always among them.
const SNAPSHOT_WINDOW: i64 = 64;

/// The latest complete snapshot in the partition: its metadata (from the last chunk) and bytes.
fn latest_snapshot(
    reader: &PartitionReader,
    topic: &str,
    group: &str,
    partition: i32,
) -> Result<Option<(SnapshotChunk, Vec<u8>)>, ReadError> {
    let (low, high) = reader.watermarks(topic, partition)?;
    let mut from = (high - SNAPSHOT_WINDOW).max(low);
    // `high` may lag (see `read_to_end`); reading on to the end covers what it misses.
    loop {
        let mut latest = None;
        let mut assembling: Option<(SnapshotChunk, Vec<u8>)> = None;
        reader.read_to_end(topic, partition, from, |m| {
            let Some(c) = m.payload().and_then(SnapshotChunk::decode) else {
                return;
            };
            if c.partition != partition || c.group != group {
                return;
            }
            let continues = assembling.as_ref().is_some_and(|(prev, _)| {
                prev.input_offset == c.input_offset && prev.chunk + 1 == c.chunk
            });
            if c.chunk == 0 {
                assembling = Some((c.clone(), c.bytes.clone()));
            } else if continues {
                if let Some((prev, bytes)) = assembling.as_mut() {
                    bytes.extend_from_slice(&c.bytes);
                    *prev = c.clone();
                }
            } else {
                assembling = None;
            }
            if let Some((prev, _)) = &assembling
                && prev.chunk + 1 == prev.chunks
            {
                latest = assembling.take();
            }
        })?;
        if latest.is_some() || from == low {
            return Ok(latest);
        }
        from = low;
    }
}

/// The `seq` header of the last record in an output partition (0 when empty).
///
/// Reads from just before the end, further back when that yields nothing: a fetch that starts
/// inside a record batch may be answered with the next batch only (tansu 0.6), so a read from
/// the last offset alone can come back empty.
fn last_seq(reader: &PartitionReader, topic: &str, partition: i32) -> Result<u64, ReadError> {
    let (low, high) = reader.watermarks(topic, partition)?;
    let mut seq = None;
    for back in [1, 1_000, 100_000, i64::MAX] {
        let from = high.saturating_sub(back).max(low);
        reader.read_to_end(topic, partition, from, |m| {
            if let Some(h) = m.headers() {
                seq = Some(headers::number(h, headers::SEQ).unwrap_or(0).max(0) as u64);
            }
        })?;
        if seq.is_some() || from == low {
            break;
        }
    }
    Ok(seq.unwrap_or(0))
}

/// The highest input offset of `partition` this worker dead-lettered at or after `from`.
fn last_dead_letter(
    reader: &PartitionReader,
    cfg: &MatcherConfig,
    partition: i32,
    from: i64,
    dlq_partitions: i32,
) -> Result<i64, ReadError> {
    let dlq_partition = partition % dlq_partitions;
    let (low, _) = reader.watermarks(&cfg.dead_letters, dlq_partition)?;
    let mut last = -1;
    // Start well before `from`: a fetch starting inside a batch may skip the rest of it (see
    // `last_seq`); earlier records only lower nothing, the maximum is kept.
    let start = from.saturating_sub(10_000).max(low);
    reader.read_to_end(&cfg.dead_letters, dlq_partition, start, |m| {
        let Some(h) = m.headers() else { return };
        let ours = headers::text(h, headers::WORKER) == Some(cfg.worker.as_str())
            && headers::text(h, headers::SOURCE_TOPIC) == Some(cfg.orders.as_str())
            && headers::number(h, headers::SOURCE_PARTITION) == Some(i64::from(partition));
        if ours && let Some(offset) = headers::number(h, headers::SOURCE_OFFSET) {
            last = last.max(offset);
        }
    })?;
    Ok(last)
}

/// Restores input partition `partition`; `committed` is the group's committed offset (-1: none).
/// Input partition p dead-letters to partition p modulo `dlq_partitions`.
pub(crate) fn restore(
    cfg: &MatcherConfig,
    reader: &PartitionReader,
    partition: i32,
    committed: i64,
    dlq_partitions: i32,
) -> Result<PartitionState, RestoreError> {
    let snapshot = latest_snapshot(reader, &cfg.snapshots, &cfg.group, partition)?;
    let (engine, next_offset, seq, dlq_from, output_hash) = match snapshot {
        Some((meta, bytes)) => {
            let engine = Engine::restore(cfg.instruments.clone(), &bytes)
                .map_err(|source| RestoreError::Snapshot { partition, source })?;
            (
                engine,
                meta.input_offset + 1,
                meta.seq,
                meta.dead_letter_end,
                meta.output_hash,
            )
        }
        None => (Engine::new(cfg.instruments.clone()), 0, [0; OUTPUTS], 0, 0),
    };
    let topics = [&cfg.executions, &cfg.trades, &cfg.market_data];
    let mut present = [0; OUTPUTS];
    for (t, topic) in topics.iter().enumerate() {
        present[t] = last_seq(reader, topic, partition)?;
    }
    let dead_lettered = last_dead_letter(reader, cfg, partition, dlq_from, dlq_partitions)?;
    tracing::info!(
        partition,
        snapshot_offset = next_offset - 1,
        committed,
        ?seq,
        ?present,
        dead_lettered,
        "partition restored"
    );
    Ok(PartitionState {
        engine,
        next_offset,
        seq,
        present,
        dead_lettered,
        since_snapshot: 0,
        snapshot_at: Instant::now(),
        snapshot_offset: next_offset - 1,
        replayed: 0,
        committed,
        output_hash,
    })
}
