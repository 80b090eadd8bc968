//! The matcher as a [`Worker`] of the shared consumer loop.
//!
//! The loop (crates/runtime) owns the consumer, batching, commits and rebalances. The matcher
//! restores a partition when it is assigned, runs each order through that partition's engine,
//! produces the events it has not produced before, and writes snapshots after the commits that
//! make them due.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tradestream_codec::{avro, json};
use tradestream_engine::{Command, Event, Seq};
use tradestream_runtime::dead_letter::Poison;
use tradestream_runtime::partitioner::partition_for;
use tradestream_runtime::registry::{RegistryError, SchemaRegistry};
use tradestream_runtime::{
    Checkpoints, Context, Outcome, Record, RunError, Shutdown, Stats, Worker, WorkerError,
};

use crate::config::{MatcherConfig, OutputFormat};
use crate::restore::restore;
use crate::state::{PartitionState, TRADES, chain, routes};
use crate::stats::MatcherStats;
use crate::timestamps;

/// The matcher: one engine per assigned `orders` partition.
#[derive(Debug)]
pub struct Matcher {
    cfg: MatcherConfig,
    stats: Arc<MatcherStats>,
    partitions: BTreeMap<i32, PartitionState>,
    events: Vec<Event>,
    buf: Vec<u8>,
    /// Framing per output topic (executions, trades, market data).
    framing: [avro::Framing; 3],
    /// The schema registry, when configured, and what it said of each order schema id.
    registry: Option<Registry>,
    /// Partitions of the orders topic (known once a partition is assigned): each order's
    /// symbol must hash there (murmur2, like the Java client) to the partition it came from.
    orders_partitions: i32,
    /// Snapshots waiting for the outputs they cover to be acknowledged, by partition.
    pending: BTreeMap<i32, PendingSnapshot>,
}

/// The schema registry and the verdicts on the ids it was asked about.
#[derive(Debug)]
struct Registry {
    client: SchemaRegistry,
    /// Schema id → whether it is `order_command.avsc` (same canonical form).
    orders: BTreeMap<u32, bool>,
}

impl Registry {
    /// Connects and registers `engine_event.avsc` for the three output topics.
    fn connect(url: &str, cfg: &MatcherConfig) -> Result<(Self, [avro::Framing; 3]), WorkerError> {
        let mut client = SchemaRegistry::new(url)?;
        let schema = avro::RecordType::EngineEvent.avsc();
        let mut framing = [avro::Framing::SingleObject; 3];
        for (f, topic) in framing
            .iter_mut()
            .zip([&cfg.executions, &cfg.trades, &cfg.market_data])
        {
            let schema_id = client.register(&format!("{topic}-value"), schema)?;
            *f = avro::Framing::Confluent { schema_id };
        }
        let registry = Registry {
            client,
            orders: BTreeMap::new(),
        };
        Ok((registry, framing))
    }

    /// Whether a Confluent-framed order's schema id names `order_command.avsc`.
    fn is_order_schema(&mut self, id: u32) -> Result<bool, WorkerError> {
        if let Some(ok) = self.orders.get(&id) {
            return Ok(*ok);
        }
        let ok = match self.client.schema(id) {
            Ok(text) => avro::fingerprint_of(text)
                .is_ok_and(|fp| fp == avro::RecordType::OrderCommand.fingerprint()),
            // An id the registry does not know is the record's fault, not an outage.
            Err(RegistryError::Status { status: 404, .. }) => false,
            Err(e) => return Err(Box::new(e)),
        };
        self.orders.insert(id, ok);
        Ok(ok)
    }
}

impl Matcher {
    /// A matcher with nothing assigned yet.
    /// A matcher with nothing assigned yet; registers its output schema if a registry is
    /// configured.
    pub fn new(cfg: MatcherConfig, stats: Arc<MatcherStats>) -> Result<Self, WorkerError> {
        let (registry, framing) = match &cfg.schema_registry {
            Some(url) => {
                let (registry, framing) = Registry::connect(url, &cfg)?;
                (Some(registry), framing)
            }
            None => (None, [avro::Framing::SingleObject; 3]),
        };
        Ok(Matcher {
            cfg,
            stats,
            partitions: BTreeMap::new(),
            events: Vec::with_capacity(64),
            buf: Vec::with_capacity(512),
            framing,
            registry,
            orders_partitions: 0,
            pending: BTreeMap::new(),
        })
    }

    /// Why a Confluent-framed order cannot be read, if the registry says its schema is not
    /// `order_command.avsc`.
    fn schema_poison(&mut self, payload: &[u8]) -> Result<Option<Poison>, WorkerError> {
        let (Some(registry), [avro::CONFLUENT_MAGIC, a, b, c, d, ..]) =
            (&mut self.registry, payload)
        else {
            return Ok(None);
        };
        let id = u32::from_be_bytes([*a, *b, *c, *d]);
        Ok((!registry.is_order_schema(id)?).then(|| {
            Poison::new(
                "schema",
                format!("schema id {id} is not order_command.avsc in the schema registry"),
            )
        }))
    }

    /// Produces the events of one command to their topics, skipping those already present.
    fn emit(&mut self, ctx: &mut Context<'_>, source: &Record<'_>) -> Result<(), WorkerError> {
        let (p, offset) = (source.partition, source.offset);
        let Matcher {
            cfg,
            partitions,
            events,
            buf,
            stats,
            framing,
            ..
        } = self;
        let Some(state) = partitions.get_mut(&p) else {
            return Ok(());
        };
        let topics = [&cfg.executions, &cfg.trades, &cfg.market_data];
        for event in events.iter() {
            for &t in routes(&event.kind) {
                state.seq[t] += 1;
                let seq = state.seq[t];
                buf.clear();
                match cfg.format {
                    OutputFormat::Avro => {
                        let provenance = avro::Provenance {
                            source_partition: p,
                            source_offset: offset,
                            seq,
                        };
                        avro::encode_event(&cfg.instruments, event, provenance, framing[t], buf);
                    }
                    OutputFormat::Json => {
                        // On a topic `seq` is the topic's counter, not the engine's.
                        let numbered = Event {
                            seq: Seq(seq),
                            ..event.clone()
                        };
                        json::encode_event(&cfg.instruments, &numbered, buf);
                    }
                }
                state.output_hash = chain(state.output_hash, t, seq, buf);
                let tail = state.tails[t];
                if seq == tail.seq && offset != tail.source_offset {
                    return Err(format!(
                        "partition {p}: {} seq {seq} was written for {} offset {}, but replaying \
                         the input makes it for offset {offset}: the output topics hold another \
                         history (another group's outputs, or orders removed and re-written). \
                         Refusing to write outputs whose seq would collide with them",
                        topics[t], cfg.orders, tail.source_offset
                    )
                    .into());
                }
                if seq <= state.present[t] {
                    stats.deduplicated.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                ctx.send_derived(
                    topics[t],
                    Some(p),
                    Some(event.symbol.as_bytes()),
                    buf,
                    source,
                    seq,
                )?;
                stats.records_out.fetch_add(1, Ordering::Relaxed);
                if t == TRADES {
                    stats.trades.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    /// Takes a snapshot of every partition that is due (or of all, when `all`), and writes each
    /// snapshot taken once every output of the input it covers is acknowledged: restoring from
    /// a snapshot replays only the input after it, so an output before it that never reached
    /// the broker would be lost. The flow does not stop for it: a snapshot waits in `pending`
    /// for the acknowledgements (a few milliseconds), at most one per partition.
    fn snapshots(&mut self, ctx: &mut Context<'_>, all: bool) -> Result<(), WorkerError> {
        let due: Vec<i32> = self
            .partitions
            .iter()
            .filter(|(p, s)| {
                s.since_snapshot > 0
                    && !self.pending.contains_key(p)
                    && (all
                        || s.since_snapshot >= self.cfg.snapshot_every_records
                        || s.snapshot_at.elapsed() >= self.cfg.snapshot_every)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            let dlq_partition = ctx.dead_letter_partition(p);
            // Dead letters of later input land after this end: a restore looks for them there.
            let (_, dlq_end) = ctx
                .reader()
                .log_bounds(&self.cfg.run.dead_letters, dlq_partition)?;
            let Some(state) = self.partitions.get_mut(&p) else {
                continue;
            };
            let chunks = state.snapshot_chunks(
                &self.cfg.run.group,
                p,
                dlq_end,
                self.cfg.snapshot_chunk_bytes,
            );
            let bytes = chunks.iter().map(|c| c.bytes.len()).sum();
            let records = chunks
                .into_iter()
                .map(|chunk| {
                    // One key per chunk of each snapshot (group, partition, input offset,
                    // chunk): compaction keeps the latest record per key, so chunks of two
                    // snapshots (two writers interleaved) never replace one another; older
                    // snapshots are deleted by tombstone once two newer ones are written.
                    let key = format!(
                        "{}/{p}/{}/{}",
                        self.cfg.run.group, chunk.input_offset, chunk.chunk
                    );
                    (key, chunk.encode())
                })
                .collect();
            state.since_snapshot = 0;
            state.snapshot_at = Instant::now();
            state.snapshot_offset = state.next_offset - 1;
            self.pending.insert(
                p,
                PendingSnapshot {
                    covers: state.next_offset,
                    records,
                    bytes,
                },
            );
        }
        let ready: Vec<i32> = self
            .pending
            .iter()
            .filter(|(p, s)| {
                ctx.acknowledged(&self.cfg.orders, **p)
                    .is_some_and(|acked| acked >= s.covers)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in ready {
            let Some(snapshot) = self.pending.remove(&p) else {
                continue;
            };
            for (key, value) in &snapshot.records {
                ctx.send(
                    &self.cfg.snapshots,
                    Some(p),
                    Some(key.as_bytes()),
                    value,
                    &[],
                )?;
            }
            if let Some(state) = self.partitions.get_mut(&p) {
                state.kept_snapshots.push_back(
                    snapshot
                        .records
                        .iter()
                        .map(|(k, _)| k.as_bytes().to_vec())
                        .collect(),
                );
                while state.kept_snapshots.len() > 2 {
                    let Some(old) = state.kept_snapshots.pop_front() else {
                        break;
                    };
                    for key in old.iter().filter(|k| !k.is_empty()) {
                        ctx.send_tombstone(&self.cfg.snapshots, Some(p), key)?;
                    }
                }
            }
            self.stats.snapshots.fetch_add(1, Ordering::Relaxed);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            tradestream_runtime::metrics::snapshot_written(
                &self.cfg.worker,
                p,
                snapshot.bytes,
                now,
            );
        }
        Ok(())
    }
}

/// A snapshot taken and not written yet.
#[derive(Debug)]
struct PendingSnapshot {
    /// The input it covers: every offset below this.
    covers: i64,
    /// (key, value) of each chunk.
    records: Vec<(String, Vec<u8>)>,
    /// Size of the engine state it holds.
    bytes: usize,
}

impl Worker for Matcher {
    fn name(&self) -> &str {
        &self.cfg.worker
    }

    fn topics(&self) -> Vec<String> {
        vec![self.cfg.orders.clone()]
    }

    /// The matcher's state is rebuilt from its snapshots and output topics: the loop commits
    /// acknowledged offsets without stopping the flow.
    fn start_afresh(&self) -> &'static str {
        "Its snapshot belongs to the old history: run the matcher with --start-afresh to \
         discard it and rebuild the book from the partition's start"
    }

    fn checkpoints(&self) -> Checkpoints {
        Checkpoints::Offsets
    }

    fn assign(
        &mut self,
        ctx: &mut Context<'_>,
        _topic: &str,
        partition: i32,
        committed: i64,
    ) -> Result<i64, WorkerError> {
        let dlq_partitions = ctx.dead_letter_partitions();
        if self.orders_partitions == 0 {
            self.orders_partitions = ctx.reader().partition_count(&self.cfg.orders)?;
        }
        let state = restore(
            &self.cfg,
            ctx.reader(),
            partition,
            committed,
            dlq_partitions,
        )?;
        let next = state.next_offset;
        self.stats.restores.fetch_add(1, Ordering::Relaxed);
        self.partitions.insert(partition, state);
        Ok(next)
    }

    fn process(&mut self, ctx: &mut Context<'_>, m: &Record<'_>) -> Result<Outcome, WorkerError> {
        let (p, offset) = (m.partition, m.offset);
        let Some(state) = self.partitions.get_mut(&p) else {
            return Ok(Outcome::Done);
        };
        state.next_offset = offset + 1;
        state.since_snapshot += 1;
        if offset < state.committed {
            state.replayed += 1;
            self.stats.replayed.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.records_in.fetch_add(1, Ordering::Relaxed);
        let schema_poison = self.schema_poison(m.payload)?;
        let Some(state) = self.partitions.get_mut(&p) else {
            return Ok(Outcome::Done);
        };
        let poison = if let Some(poison) = schema_poison {
            poison
        } else if m.payload.len() > self.cfg.max_record_bytes {
            Poison::new(
                "oversized",
                format!(
                    "record is {} bytes; at most {} are accepted",
                    m.payload.len(),
                    self.cfg.max_record_bytes
                ),
            )
        } else {
            // JSON or Avro (single-object or Confluent framing), told apart by the first byte.
            match avro::decode_command_any(m.payload, m.timestamp_ms.unwrap_or(0)) {
                Command::Invalid(bad) => Poison::decode(bad.detail),
                cmd if misrouted(&cmd, p, self.orders_partitions) => Poison::new(
                    "misrouted",
                    format!(
                        "symbol {} belongs in partition {} (murmur2 of the symbol, as the Java \
                         client hashes keys), not {p}: matching it here would open a second \
                         book; produce orders keyed by symbol with the murmur2 partitioner",
                        cmd.symbol(),
                        partition_for(cmd.symbol().as_str().as_bytes(), self.orders_partitions)
                    ),
                ),
                cmd => {
                    self.events.clear();
                    timestamps::apply_counted(
                        &mut state.engine,
                        &cmd,
                        m,
                        &self.cfg,
                        &self.stats,
                        &mut self.events,
                    );
                    self.emit(ctx, m)?;
                    return Ok(Outcome::Done);
                }
            }
        };
        if offset <= state.dead_lettered {
            // Sent before the restart this replay follows.
            self.stats.deduplicated.fetch_add(1, Ordering::Relaxed);
            return Ok(Outcome::Done);
        }
        self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
        Ok(Outcome::Poison(poison))
    }

    fn after_batch(&mut self, ctx: &mut Context<'_>, last: bool) -> Result<(), WorkerError> {
        self.snapshots(ctx, last)
    }

    fn revoke(&mut self, _topic: &str, partition: i32) {
        // A snapshot still waiting is dropped: the partition's previous one stays valid.
        self.pending.remove(&partition);
        self.partitions.remove(&partition);
    }
}

/// Whether a command sits in a partition its symbol does not hash to. The book of a symbol
/// lives in exactly one partition; an order elsewhere (a producer with another partitioner, or
/// an explicit partition) would be matched in a second book.
fn misrouted(cmd: &Command, partition: i32, partitions: i32) -> bool {
    let symbol = cmd.symbol();
    partitions > 0
        && !symbol.is_empty()
        && partition_for(symbol.as_bytes(), partitions) != partition
}

/// Runs the matcher until `shutdown` is triggered or an error stops it. On a clean stop it
/// flushes, commits and snapshots every partition before leaving the group.
pub fn run(
    cfg: MatcherConfig,
    shutdown: &Shutdown,
    stats: Arc<MatcherStats>,
) -> Result<(), RunError> {
    let run = cfg.run.clone();
    let matcher = Matcher::new(cfg, stats.clone()).map_err(RunError::Worker)?;
    tradestream_runtime::run(matcher, run, shutdown)?;
    tracing::info!(stats = %stats.summary(), "matcher stopped");
    Ok(())
}

#[cfg(test)]
mod tests;
