//! The matcher's consumer loop.
//!
//! One thread owns the group consumer, the engines and the batch. Rebalance callbacks run on that
//! same thread inside `poll`, so they see a consistent state: on revocation the batch in flight is
//! flushed and committed before the partition is given up; on assignment each new partition is
//! restored and the consumer is pointed at the offset right after its snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tradestream_codec::{avro, json};
use tradestream_engine::{Command, Event, Seq};
use tradestream_runtime::Shutdown;
use tradestream_runtime::dead_letter::{self, Poison};
use tradestream_runtime::headers::Provenance;
use tradestream_runtime::partition::PartitionReader;

use crate::config::{MatcherConfig, OutputFormat};
use crate::restore::{RestoreError, restore};
use crate::state::{PartitionState, TRADES, routes};

/// Counters the worker exposes (the demo and the tests read them; they also go to the log).
#[derive(Debug, Default)]
pub struct MatcherStats {
    /// Input records consumed (including replays).
    pub records_in: AtomicU64,
    /// Output records produced (after dedup).
    pub records_out: AtomicU64,
    /// Trades produced.
    pub trades: AtomicU64,
    /// Records sent to dead letters.
    pub dead_letters: AtomicU64,
    /// Input records processed again after a restore (already processed before the restart).
    pub replayed: AtomicU64,
    /// Outputs regenerated during replay and not produced again because the topic had them.
    pub deduplicated: AtomicU64,
    /// Snapshots written.
    pub snapshots: AtomicU64,
    /// Partitions restored.
    pub restores: AtomicU64,
    /// Re-fetches after a gap in input offsets.
    pub refetches: AtomicU64,
}

/// What to do with a polled record before processing it.
enum Gate {
    Process,
    Skip,
    /// Input offsets jumped: fetch again from this (earlier) offset.
    Refetch(i64),
}

/// How long to wait for a re-fetched offset before asking again, and how often to ask.
const REFETCH_WAIT: Duration = Duration::from_secs(1);
const REFETCH_TRIES: u32 = 8;

/// Why the worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    /// A client failed.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A partition could not be restored.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// The worker cannot start.
    #[error("cannot start: {0}")]
    Setup(String),
    /// Outputs were not acknowledged; nothing was committed, a restart resumes safely.
    #[error("output not acknowledged: {0}")]
    Delivery(String),
}

/// Counts failed deliveries; the loop checks it after each flush.
#[derive(Default)]
struct DeliveryContext {
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut last) = self.last_error.lock() {
                *last = Some(e.to_string());
            }
        }
    }
}

type OutputProducer = ThreadedProducer<DeliveryContext>;

/// Everything the loop and the rebalance callbacks share.
struct Core {
    cfg: MatcherConfig,
    producer: OutputProducer,
    reader: PartitionReader,
    stats: Arc<MatcherStats>,
    partitions: BTreeMap<i32, PartitionState>,
    /// Partitions with input processed since the last commit.
    dirty: Vec<i32>,
    /// Partitions of the dead-letter topic (input partition p dead-letters to p modulo this).
    dlq_partitions: i32,
    /// A failure inside a callback, raised by the loop.
    failure: Option<MatcherError>,
    events: Vec<Event>,
    buf: Vec<u8>,
}

struct RebalanceContext {
    core: Arc<Mutex<Core>>,
}

impl ClientContext for RebalanceContext {}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    // The lock is only taken on the worker thread; a poisoned lock means a panic already ended it.
    core.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConsumerContext for RebalanceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut core = lock(&self.core);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut start = TopicPartitionList::new();
                for elem in tpl.elements() {
                    let p = elem.partition();
                    let committed = committed_offset(consumer, elem.topic(), p);
                    match restore(&core.cfg, &core.reader, p, committed, core.dlq_partitions) {
                        Ok(state) => {
                            let offset = match state.next_offset {
                                0 => Offset::Beginning,
                                n => Offset::Offset(n),
                            };
                            if let Err(e) = start.add_partition_offset(elem.topic(), p, offset) {
                                core.failure.get_or_insert(e.into());
                            }
                            core.stats.restores.fetch_add(1, Ordering::Relaxed);
                            core.partitions.insert(p, state);
                        }
                        Err(e) => {
                            tracing::error!(partition = p, error = %e, "cannot restore partition");
                            core.failure.get_or_insert(e.into());
                        }
                    }
                }
                if let Err(e) = consumer.incremental_assign(&start) {
                    core.failure.get_or_insert(e.into());
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Finish the batch in flight before giving the partitions up.
                if let Err(e) = core.flush_and_commit(consumer) {
                    core.failure.get_or_insert(e);
                }
                for elem in tpl.elements() {
                    core.partitions.remove(&elem.partition());
                    tracing::info!(partition = elem.partition(), "partition revoked");
                }
                if let Err(e) = consumer.incremental_unassign(tpl) {
                    core.failure.get_or_insert(e.into());
                }
            }
            other => {
                let code: RDKafkaErrorCode = other.into();
                tracing::warn!(error = %code, "rebalance error");
                core.failure
                    .get_or_insert(KafkaError::Rebalance(code).into());
            }
        }
    }
}

fn committed_offset<C: ConsumerContext>(consumer: &BaseConsumer<C>, topic: &str, p: i32) -> i64 {
    let mut tpl = TopicPartitionList::new();
    if tpl
        .add_partition(topic, p)
        .set_offset(Offset::Invalid)
        .is_err()
    {
        return -1;
    }
    let Ok(committed) = consumer.committed_offsets(tpl, Duration::from_secs(10)) else {
        return -1;
    };
    committed
        .find_partition(topic, p)
        .and_then(|e| e.offset().to_raw())
        .unwrap_or(-1)
}

/// Sends one record, waiting for queue space if the producer is full.
fn send(producer: &OutputProducer, record: BaseRecord<'_, [u8], [u8]>) -> Result<(), MatcherError> {
    let mut record = record;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

impl Core {
    /// Decides whether a polled record is the next input of its partition.
    ///
    /// `orders` is never compacted and never written transactionally, so its offsets have no
    /// gaps. A jump means the fetch skipped records: the embedded tansu 0.6 answers a fetch that
    /// starts inside a record batch with the *next* batch, so resuming right after a snapshot
    /// loses the rest of that batch. The records are fetched again from further back each time
    /// (64, 256, 1024, … offsets before; earlier records are skipped as already processed), up
    /// to [`REFETCH_TRIES`] times, before the gap is accepted with an error.
    fn gate(&mut self, p: i32, offset: i64) -> Gate {
        let Some(state) = self.partitions.get_mut(&p) else {
            return Gate::Skip; // revoked meanwhile
        };
        if offset < state.next_offset {
            return Gate::Skip; // already processed
        }
        if offset == state.next_offset || state.next_offset == 0 {
            state.refetch = None;
            return Gate::Process;
        }
        let want = state.next_offset;
        match state.refetch {
            Some((at, since, _)) if at == want && since.elapsed() < REFETCH_WAIT => Gate::Skip,
            Some((at, _, tries)) if at == want && tries >= REFETCH_TRIES => {
                tracing::error!(
                    partition = p,
                    expected = want,
                    got = offset,
                    "input offsets jumped and re-fetching did not help; records are missing"
                );
                state.refetch = None;
                Gate::Process
            }
            previous => {
                let tries = previous
                    .filter(|(at, ..)| *at == want)
                    .map_or(0, |(.., t)| t)
                    + 1;
                tracing::warn!(
                    partition = p,
                    expected = want,
                    got = offset,
                    tries,
                    "gap in input offsets; fetching again"
                );
                state.refetch = Some((want, Instant::now(), tries));
                self.stats.refetches.fetch_add(1, Ordering::Relaxed);
                let back = 64i64 << (2 * (tries - 1).min(20));
                Gate::Refetch((want - back).max(0))
            }
        }
    }

    /// Processes one input record of an assigned partition (already gated).
    fn process(&mut self, m: &BorrowedMessage<'_>) -> Result<(), MatcherError> {
        let p = m.partition();
        let offset = m.offset();
        let Some(state) = self.partitions.get_mut(&p) else {
            return Ok(());
        };
        state.next_offset = offset + 1;
        state.since_snapshot += 1;
        if offset < state.committed {
            state.replayed += 1;
            self.stats.replayed.fetch_add(1, Ordering::Relaxed);
        }
        if !self.dirty.contains(&p) {
            self.dirty.push(p);
        }
        self.stats.records_in.fetch_add(1, Ordering::Relaxed);
        let payload = m.payload().unwrap_or_default();
        let poison = if payload.len() > self.cfg.max_record_bytes {
            Some(Poison {
                class: "oversized",
                message: format!(
                    "record is {} bytes; at most {} are accepted",
                    payload.len(),
                    self.cfg.max_record_bytes
                ),
            })
        } else {
            let ts = m.timestamp().to_millis().unwrap_or(0);
            // JSON or Avro (single-object or Confluent framing), told apart by the first byte.
            match avro::decode_command_any(payload, ts) {
                Command::Invalid(bad) => Some(Poison {
                    class: "decode",
                    message: bad.detail.into_string(),
                }),
                cmd => {
                    self.events.clear();
                    state.engine.apply(&cmd, &mut self.events);
                    None
                }
            }
        };
        match poison {
            Some(poison) => self.dead_letter(m, &poison),
            None => self.emit(p, offset),
        }
    }

    /// Produces the events of one command to their topics, skipping those already present.
    fn emit(&mut self, p: i32, offset: i64) -> Result<(), MatcherError> {
        let Core {
            cfg,
            producer,
            partitions,
            events,
            buf,
            stats,
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
                if seq <= state.present[t] {
                    stats.deduplicated.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                buf.clear();
                match cfg.format {
                    OutputFormat::Avro => {
                        let provenance = avro::Provenance {
                            source_partition: p,
                            source_offset: offset,
                            seq,
                        };
                        avro::encode_event(
                            &cfg.instruments,
                            event,
                            provenance,
                            avro::Framing::SingleObject,
                            buf,
                        );
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
                let provenance = Provenance {
                    source_topic: &cfg.orders,
                    source_partition: p,
                    source_offset: offset,
                    seq,
                    worker: &cfg.worker,
                };
                let record = BaseRecord::to(topics[t])
                    .partition(p)
                    .key(event.symbol.as_str().as_bytes())
                    .payload(buf.as_slice())
                    .headers(provenance.headers());
                send(producer, record)?;
                stats.records_out.fetch_add(1, Ordering::Relaxed);
                if t == TRADES {
                    stats.trades.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    fn dead_letter(
        &mut self,
        m: &BorrowedMessage<'_>,
        poison: &Poison,
    ) -> Result<(), MatcherError> {
        let p = m.partition();
        let already = self
            .partitions
            .get(&p)
            .is_some_and(|s| m.offset() <= s.dead_lettered);
        if already {
            self.stats.deduplicated.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        tracing::warn!(
            partition = p,
            offset = m.offset(),
            class = poison.class,
            error = %poison.message,
            "record sent to dead letters"
        );
        let dlq_partition = p % self.dlq_partitions;
        let headers = dead_letter::headers(poison, m.topic(), p, m.offset(), &self.cfg.worker);
        let record = BaseRecord::to(&self.cfg.dead_letters)
            .partition(dlq_partition)
            .payload(m.payload().unwrap_or_default())
            .headers(headers);
        let record = match m.key() {
            Some(k) => record.key(k),
            None => record,
        };
        send(&self.producer, record)?;
        self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Waits until every output is acknowledged, then commits the input it came from.
    fn flush_and_commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), MatcherError> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        self.producer.flush(Duration::from_secs(60))?;
        let failed = self.producer.context().failed.load(Ordering::SeqCst);
        if failed > 0 {
            let last = self
                .producer
                .context()
                .last_error
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .unwrap_or_default();
            return Err(MatcherError::Delivery(format!(
                "{failed} records failed: {last}"
            )));
        }
        let mut tpl = TopicPartitionList::new();
        for p in self.dirty.drain(..) {
            if let Some(state) = self.partitions.get(&p) {
                tpl.add_partition_offset(&self.cfg.orders, p, Offset::Offset(state.next_offset))?;
            }
        }
        consumer.commit(&tpl, CommitMode::Sync)?;
        Ok(())
    }

    /// Writes a snapshot of every partition that is due (or of all, when `all`). Call right
    /// after [`Core::flush_and_commit`], so the outputs it covers are acknowledged.
    fn snapshot_due(&mut self, all: bool) -> Result<(), MatcherError> {
        let mut wrote = false;
        let due: Vec<i32> = self
            .partitions
            .iter()
            .filter(|(_, s)| {
                s.since_snapshot > 0
                    && (all
                        || s.since_snapshot >= self.cfg.snapshot_every_records
                        || s.snapshot_at.elapsed() >= self.cfg.snapshot_every)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            let dlq_partition = p % self.dlq_partitions;
            let (_, dlq_end) = self
                .reader
                .watermarks(&self.cfg.dead_letters, dlq_partition)
                .map_err(|e| MatcherError::Setup(e.to_string()))?;
            let Some(state) = self.partitions.get_mut(&p) else {
                continue;
            };
            let chunks = state.snapshot_chunks(&self.cfg.group, p, dlq_end);
            state.since_snapshot = 0;
            state.snapshot_at = Instant::now();
            state.snapshot_offset = state.next_offset - 1;
            for chunk in chunks {
                // One key per chunk: compaction keeps the latest record per key, and every chunk
                // of the latest snapshot must survive it.
                let key = format!("{}/{p}/{}", self.cfg.group, chunk.chunk);
                let value = chunk.encode();
                send(
                    &self.producer,
                    BaseRecord::to(&self.cfg.snapshots)
                        .partition(p)
                        .key(key.as_bytes())
                        .payload(value.as_slice()),
                )?;
            }
            self.stats.snapshots.fetch_add(1, Ordering::Relaxed);
            wrote = true;
        }
        if wrote {
            self.producer.flush(Duration::from_secs(60))?;
        }
        Ok(())
    }
}

/// Runs the matcher until `shutdown` is triggered or an error stops it. On a clean stop it
/// flushes, commits and snapshots every partition before leaving the group.
pub fn run(
    cfg: MatcherConfig,
    shutdown: Shutdown,
    stats: Arc<MatcherStats>,
) -> Result<(), MatcherError> {
    let producer: OutputProducer = cfg
        .kafka
        .producer()
        .create_with_context(DeliveryContext::default())?;
    let reader = PartitionReader::new(&cfg.kafka, Duration::from_secs(30))
        .map_err(|e| MatcherError::Setup(e.to_string()))?;
    let dlq_partitions = reader
        .partition_count(&cfg.dead_letters)
        .map_err(|e| MatcherError::Setup(e.to_string()))?;
    if dlq_partitions == 0 {
        return Err(MatcherError::Setup(format!(
            "topic {} does not exist (run `tradestream topics apply`)",
            cfg.dead_letters
        )));
    }
    let core = Arc::new(Mutex::new(Core {
        producer,
        reader,
        stats,
        partitions: BTreeMap::new(),
        dirty: Vec::new(),
        dlq_partitions,
        failure: None,
        events: Vec::with_capacity(64),
        buf: Vec::with_capacity(512),
        cfg: cfg.clone(),
    }));
    let consumer: BaseConsumer<RebalanceContext> = cfg
        .kafka
        .group_consumer(&cfg.group)
        .create_with_context(RebalanceContext { core: core.clone() })?;
    consumer.subscribe(&[&cfg.orders])?;
    tracing::info!(group = %cfg.group, topic = %cfg.orders, "matcher started");

    let result = (|| -> Result<(), MatcherError> {
        let mut idle_since = Instant::now();
        while !shutdown.is_triggered() {
            if let Some(limit) = cfg.rejoin_when_idle {
                if !lock(&core).partitions.is_empty() {
                    idle_since = Instant::now();
                } else if idle_since.elapsed() >= limit {
                    tracing::info!("no partitions for a while; re-joining the group");
                    consumer.unsubscribe();
                    consumer.subscribe(&[&cfg.orders])?;
                    idle_since = Instant::now();
                }
            }
            let mut taken = 0;
            let mut wait = Duration::from_millis(100);
            while taken < cfg.max_batch {
                let Some(next) = consumer.poll(wait) else {
                    break;
                };
                wait = Duration::ZERO;
                let m = match next {
                    Ok(m) => m,
                    Err(KafkaError::PartitionEOF(_)) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "consumer error");
                        break;
                    }
                };
                taken += 1;
                let mut c = lock(&core);
                match c.gate(m.partition(), m.offset()) {
                    Gate::Process => c.process(&m)?,
                    Gate::Skip => {}
                    Gate::Refetch(at) => {
                        drop(c);
                        consumer.seek(
                            &cfg.orders,
                            m.partition(),
                            Offset::Offset(at),
                            Duration::from_secs(10),
                        )?;
                    }
                }
            }
            let mut c = lock(&core);
            if let Some(e) = c.failure.take() {
                return Err(e);
            }
            c.flush_and_commit(&consumer)?;
            c.snapshot_due(false)?;
        }
        let mut c = lock(&core);
        c.flush_and_commit(&consumer)?;
        c.snapshot_due(true)?;
        Ok(())
    })();
    if result.is_ok() {
        consumer.unsubscribe();
        // Serve the revocation so the group hands the partitions over at once.
        let _ = consumer.poll(Duration::from_millis(500));
    }
    let c = lock(&core);
    let s = &c.stats;
    tracing::info!(
        records_in = s.records_in.load(Ordering::Relaxed),
        records_out = s.records_out.load(Ordering::Relaxed),
        dead_letters = s.dead_letters.load(Ordering::Relaxed),
        replayed = s.replayed.load(Ordering::Relaxed),
        deduplicated = s.deduplicated.load(Ordering::Relaxed),
        "matcher stopped"
    );
    result
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("partitions", &self.partitions.keys().collect::<Vec<_>>())
            .finish()
    }
}
