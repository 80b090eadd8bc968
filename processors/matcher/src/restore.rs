//! Rebuilding one partition's state: latest snapshot, then what the outputs already hold.

use std::collections::BTreeMap;
use std::time::Instant;

use tradestream_engine::Engine;
use tradestream_runtime::headers;
use tradestream_runtime::io::{Fetched, LogReader};
use tradestream_runtime::partition::ReadError;

use crate::config::MatcherConfig;
use crate::state::{OUTPUTS, PartitionState, SnapshotChunk, Tail};

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
    /// The input the engine would have to replay is gone, or the outputs cannot come from it:
    /// starting would rebuild a book from part of its history and number outputs that
    /// collide with the ones already written.
    #[error("partition {partition}: {message}")]
    History {
        /// Input partition.
        partition: i32,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// How many records at the end of the snapshot partition to look at first; a snapshot is one
/// or a few records, so the latest complete one is almost always among them. When it is not
/// (a snapshot of many chunks, or chunks of two writers interleaved) the window grows fourfold
/// until one is found or the partition's start is reached: a snapshot of any size restores
/// without reading the whole partition.
const SNAPSHOT_WINDOW: i64 = 64;

/// The latest complete snapshot, as read: its metadata (from the last chunk), its engine bytes
/// and the keys of its chunk records (so that a later snapshot can delete them).
pub(crate) struct Found {
    pub meta: SnapshotChunk,
    pub bytes: Vec<u8>,
    pub keys: Vec<Vec<u8>>,
}

/// The chunks of one snapshot (one input offset and engine state) seen so far.
#[derive(Default)]
struct Assembly {
    chunks: BTreeMap<u32, (SnapshotChunk, Vec<u8>)>,
    /// The offset of the record that completed it.
    completed_at: Option<i64>,
}

/// The latest complete snapshot in the partition: of the snapshots whose every chunk is there
/// (and whose bytes hash to the state hash they carry), the one completed last. Chunks are
/// matched by input offset and state hash, not by adjacency, so chunks of two writers (a zombie
/// and the new owner) interleaved in the partition still assemble.
pub(crate) fn latest_snapshot(
    reader: &dyn LogReader,
    topic: &str,
    group: &str,
    partition: i32,
) -> Result<Option<Found>, ReadError> {
    let (low, high) = reader.log_bounds(topic, partition)?;
    let mut window = SNAPSHOT_WINDOW;
    // `high` may lag (see `LogReader::log_bounds`); reading on to the end covers what it misses.
    loop {
        let from = high.saturating_sub(window).max(low);
        let mut seen: BTreeMap<(i64, u64), Assembly> = BTreeMap::new();
        reader.scan(topic, partition, from, &mut |m| {
            let Some(c) = m.payload.and_then(SnapshotChunk::decode) else {
                return;
            };
            if c.partition != partition || c.group != group {
                return;
            }
            let a = seen.entry((c.input_offset, c.state_hash)).or_default();
            if a.completed_at.is_some() {
                return;
            }
            let (chunk, chunks) = (c.chunk, c.chunks);
            a.chunks
                .insert(chunk, (c, m.key.map(<[u8]>::to_vec).unwrap_or_default()));
            let whole = a.chunks.len() == chunks as usize
                && a.chunks.keys().copied().eq(0..chunks)
                && a.chunks.values().all(|(c, _)| c.chunks == chunks);
            if whole {
                a.completed_at = Some(m.offset);
            }
        })?;
        let latest = seen
            .into_values()
            .filter_map(|a| Some((a.completed_at?, a)))
            .filter_map(|(at, a)| {
                let mut bytes = Vec::new();
                let mut keys = Vec::with_capacity(a.chunks.len());
                let mut meta = None;
                for (c, key) in a.chunks.into_values() {
                    bytes.extend_from_slice(&c.bytes);
                    keys.push(key);
                    meta = Some(c);
                }
                let mut meta = meta?;
                // A chunk of the same offset and hash from a writer with another chunk size
                // would not fit: the bytes must hash to the state they claim.
                (tradestream_engine::snapshot::fnv1a64(&bytes) == meta.state_hash).then(|| {
                    meta.bytes = Vec::new();
                    (at, Found { meta, bytes, keys })
                })
            })
            .max_by_key(|(at, _)| *at)
            .map(|(_, f)| f);
        if latest.is_some() || from == low {
            return Ok(latest);
        }
        window = window.saturating_mul(4);
    }
}

/// The newest record in output partition `partition` that this matcher wrote for input
/// partition `partition`: its `worker`, `source-topic` and `source-partition` headers say so.
/// Anything else at the tail (another worker's record, a record without headers) is reported
/// and passed over, never taken for the matcher's position.
///
/// Reads from just before the end, further back when that yields nothing: a fetch that starts
/// inside a record batch may be answered with the next batch only (tansu 0.6), so a read from
/// the last offset alone can come back empty; the last records may also be foreign ones.
pub(crate) fn tail(
    reader: &dyn LogReader,
    cfg: &MatcherConfig,
    topic: &str,
    partition: i32,
) -> Result<Tail, ReadError> {
    let (low, high) = reader.log_bounds(topic, partition)?;
    let mut tail = None;
    let mut foreign: Vec<i64> = Vec::new();
    for back in [1, 1_000, 100_000, i64::MAX] {
        let from = high.saturating_sub(back).max(low);
        foreign.clear();
        reader.scan(
            topic,
            partition,
            from,
            &mut |m| match ours(cfg, partition, m) {
                Some(t) => tail = Some(t),
                None => foreign.push(m.offset),
            },
        )?;
        if tail.is_some() || from == low {
            break;
        }
    }
    if !foreign.is_empty() {
        tracing::warn!(
            topic,
            partition,
            records = foreign.len(),
            offsets = ?&foreign[..foreign.len().min(10)],
            worker = %cfg.worker,
            "records near the end of an output partition were not written by this matcher for this \
             input partition (missing or foreign provenance headers); they are ignored"
        );
    }
    Ok(tail.unwrap_or(Tail {
        seq: 0,
        source_offset: -1,
    }))
}

/// The seq and source offset of an output record this matcher wrote for input `partition`
/// (`None`: another writer's, or without provenance headers).
fn ours(cfg: &MatcherConfig, partition: i32, m: &Fetched<'_>) -> Option<Tail> {
    let h = m.headers?;
    let mine = headers::text(h, headers::WORKER) == Some(cfg.worker.as_str())
        && headers::text(h, headers::SOURCE_TOPIC) == Some(cfg.orders.as_str())
        && headers::number(h, headers::SOURCE_PARTITION) == Some(i64::from(partition));
    let seq = headers::number(h, headers::SEQ)?;
    let source_offset = headers::number(h, headers::SOURCE_OFFSET)?;
    (mine && seq > 0).then(|| Tail {
        seq: seq.unsigned_abs(),
        source_offset,
    })
}

/// The first seq after `after` (the snapshot's) that is missing from an output partition
/// whose newest output of this matcher is `tail`. A delivery that timed out while later ones
/// landed (the idempotent producer goes on after a timeout) leaves such a gap; the outputs
/// from the gap on are written again, in order, so none is lost for good and readers that
/// apply each seq once, in order, get every one (docs/design.md §2.4).
///
/// Scans back from the end until it meets an output at or below `after` (or the start of the
/// partition: when retention removed the first outputs, the gap is looked for from the oldest
/// one left).
pub(crate) fn first_gap(
    reader: &dyn LogReader,
    cfg: &MatcherConfig,
    topic: &str,
    partition: i32,
    after: u64,
    tail: Tail,
) -> Result<Option<u64>, ReadError> {
    if tail.seq <= after {
        return Ok(None);
    }
    let (low, high) = reader.log_bounds(topic, partition)?;
    let mut back: i64 = 1_000;
    loop {
        let from = high.saturating_sub(back).max(low);
        let mut seen = std::collections::BTreeSet::new();
        let mut reached = false;
        reader.scan(topic, partition, from, &mut |m| {
            if let Some(t) = ours(cfg, partition, m) {
                if t.seq <= after {
                    reached = true;
                } else {
                    seen.insert(t.seq);
                }
            }
        })?;
        if reached || from == low {
            let start = if reached || after > 0 {
                after + 1
            } else {
                seen.first().copied().unwrap_or(after + 1)
            };
            let mut expect = start;
            for &s in seen.range(start..=tail.seq) {
                if s != expect {
                    return Ok(Some(expect));
                }
                expect += 1;
            }
            return Ok((expect <= tail.seq).then_some(expect));
        }
        back = back.saturating_mul(10);
    }
}

/// The highest input offset of `partition` this worker dead-lettered at or after `from`.
fn last_dead_letter(
    reader: &dyn LogReader,
    cfg: &MatcherConfig,
    partition: i32,
    from: i64,
    dlq_partitions: i32,
) -> Result<i64, ReadError> {
    let dlq_partition = partition % dlq_partitions;
    let (low, _) = reader.log_bounds(&cfg.run.dead_letters, dlq_partition)?;
    let mut last = -1;
    // Start well before `from`: a fetch starting inside a batch may skip the rest of it (see
    // `last_seq`); earlier records only lower nothing, the maximum is kept.
    let start = from.saturating_sub(10_000).max(low);
    reader.scan(&cfg.run.dead_letters, dlq_partition, start, &mut |m| {
        let Some(h) = m.headers else { return };
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
    reader: &dyn LogReader,
    partition: i32,
    committed: i64,
    dlq_partitions: i32,
) -> Result<PartitionState, RestoreError> {
    let started = Instant::now();
    let snapshot = latest_snapshot(reader, &cfg.snapshots, &cfg.run.group, partition)?;
    let snapshot_bytes = snapshot.as_ref().map_or(0, |f| f.bytes.len());
    let mut kept_snapshots = std::collections::VecDeque::new();
    let (mut engine, mut next_offset, mut seq, mut dlq_from, mut output_hash) = match snapshot {
        Some(Found { meta, bytes, keys }) => {
            kept_snapshots.push_back(keys);
            let engine = Engine::restore(cfg.instruments.clone(), &bytes)
                .map_err(|source| RestoreError::Snapshot { partition, source })?;
            tradestream_runtime::metrics::snapshot_loaded(&cfg.worker, partition, bytes.len());
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
    let snapshot_ms = started.elapsed().as_secs_f64() * 1000.0;
    let topics = [&cfg.executions, &cfg.trades, &cfg.market_data];
    let mut tails = [Tail::default(); OUTPUTS];
    for (t, topic) in topics.iter().enumerate() {
        tails[t] = tail(reader, cfg, topic, partition)?;
    }
    // Read after the tails: every output in them was made from an order that was in the log
    // when they were read. Read before, a live owner (the one this member takes over from, or a
    // zombie) could have gone past the end in between, and that history would look foreign.
    let (mut log_start, mut log_end) = reader.log_bounds(&cfg.orders, partition)?;
    if next_offset > log_end || tails.iter().any(|t| t.source_offset >= log_end) {
        // Before deciding that the history lies beyond the end: the embedded broker's high
        // watermark can lag what a fetch returns by many records (a restart in the demo's
        // serve phase read an end of 1 for a partition of 1 005 orders and refused to start).
        (log_start, log_end) = reader.fetched_bounds(&cfg.orders, partition)?;
    }
    if next_offset > log_end && cfg.start_afresh {
        // The snapshot is of another history (the runtime refuses it without the flag).
        tracing::warn!(
            partition,
            snapshot_offset = next_offset - 1,
            log_end,
            "the snapshot lies beyond the end of the input; discarding it (--start-afresh)"
        );
        (engine, next_offset, seq, dlq_from, output_hash) =
            (Engine::new(cfg.instruments.clone()), 0, [0; OUTPUTS], 0, 0);
        kept_snapshots.clear();
    }
    check_history(cfg, partition, next_offset, (log_start, log_end), &tails)?;
    let mut present = tails.map(|t| t.seq);
    for (t, topic) in topics.iter().enumerate() {
        if let Some(gap) = first_gap(reader, cfg, topic, partition, seq[t], tails[t])? {
            tracing::warn!(
                partition,
                topic = %topic,
                missing_seq = gap,
                newest_seq = tails[t].seq,
                "outputs missing before the newest one (a delivery failed while later ones \
                 landed): writing them again from the gap on"
            );
            present[t] = gap - 1;
        }
    }
    let dead_lettered = last_dead_letter(reader, cfg, partition, dlq_from, dlq_partitions)?;
    // The rest of the restore (replaying the input after the snapshot up to `committed`) happens
    // in the loop; `tradestream_restore_seconds` times the whole of it.
    tracing::info!(
        partition,
        snapshot_offset = next_offset - 1,
        snapshot_bytes,
        snapshot_ms,
        restore_ms = started.elapsed().as_secs_f64() * 1000.0,
        replay = (committed - next_offset).max(0),
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
        tails,
        kept_snapshots,
    })
}

/// Refuses a restore the input cannot support: the orders to replay from `next_offset` were
/// removed by retention (or by `DeleteRecords`), or the outputs already written claim input
/// beyond the end of `orders`. In both cases a fresh engine would rebuild a book from part of
/// its history, and its outputs would collide by `seq` with the ones already there.
fn check_history(
    cfg: &MatcherConfig,
    partition: i32,
    next_offset: i64,
    (log_start, log_end): (i64, i64),
    tails: &[Tail; OUTPUTS],
) -> Result<(), RestoreError> {
    let history = |message: String| RestoreError::History { partition, message };
    if next_offset < log_start {
        let from = if next_offset == 0 {
            format!("there is no snapshot of group {}", cfg.run.group)
        } else {
            format!(
                "the latest snapshot of group {} covers input up to offset {}",
                cfg.run.group,
                next_offset - 1
            )
        };
        return Err(history(format!(
            "{from}, but {} partition {partition} now starts at offset {log_start}: the orders \
             before it are gone (retention), so the book cannot be rebuilt. Restore the snapshot \
             topic {} (or the orders) from a backup, keep `orders` longer than the snapshot \
             interval, or start a new venue with new topics; refusing to start",
            cfg.orders, cfg.snapshots
        )));
    }
    if let Some(t) = tails.iter().find(|t| t.source_offset >= log_end) {
        return Err(history(format!(
            "the outputs hold seq {} made from {} offset {}, beyond the partition's end ({log_end}): \
             they belong to another history (another cluster, or topics re-created). Point the \
             matcher at its own output topics or clear them; refusing to start",
            t.seq, cfg.orders, t.source_offset
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
