//! The consumer loop every worker shares (docs/design.md §7).
//!
//! A worker implements [`Worker`]: what to do when a partition is assigned (restore, and say where
//! to start), with each input record, at each checkpoint and when a partition is revoked. The
//! loop owns everything else:
//!
//! - one group consumer (cooperative-sticky) and one idempotent producer;
//! - **nothing waits in the steady state**: records are processed as they arrive and their
//!   outputs produced at once; every output carries a token naming its input record, and the
//!   producer's delivery reports advance, per input partition, an "acknowledged up to" offset
//!   ([`crate::acks`]);
//! - every `commit_interval` (100 ms by default, as Kafka Streams commits under exactly-once) the
//!   loop commits progress, as the worker's [`Checkpoints`] asks:
//!   - [`Checkpoints::Offsets`] (the matcher, whose state is rebuilt from snapshots and its output
//!     topics): the input offsets whose outputs are all acknowledged, asynchronously, without
//!     waiting for the outputs still in flight;
//!   - [`Checkpoints::State`] (workers with a store): the loop waits until every output is
//!     acknowledged, lets the worker checkpoint (a store transaction holding its offsets), and
//!     commits;
//! - under [`Guarantee::ExactlyOnce`] the producer is transactional instead: everything written
//!   during one interval and its input offsets (with the group's metadata, so a fenced member
//!   cannot commit) go in one transaction. A failed transaction is aborted and every assigned
//!   partition is restored again from the last commit ([`Core::rewind`]);
//! - backpressure is bounded: the producer's queue (a full queue blocks the loop until reports
//!   free it), the consumer's fetch queue, and the acknowledgement tracker, which keeps only
//!   records with outputs in flight;
//! - rebalance callbacks run on the loop's thread inside `poll`: before a partition is given up,
//!   every output is acknowledged, the worker checkpoints and its offsets are committed
//!   synchronously;
//! - input offsets are gated: a record below the partition's next offset is skipped (replayed
//!   fetch); a jump forward is a normal gap on Apache Kafka, and is fetched again from further
//!   back only on the embedded broker (see [`Core::gate`] and [`crate::quirks`]);
//! - dead letters, with headers naming the error and the source record;
//! - metrics (see [`crate::metrics`]) and a clean stop on [`Shutdown`].
//!
//! The loop is synchronous, like librdkafka's consumer; run it on a thread of its own.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::acks::{Acks, Slot, Token};
use crate::client::TRANSACTION_TIMEOUT;
use crate::dead_letter::{self, Poison};
use crate::guarantee::Guarantee;
use crate::headers::Provenance;
use crate::metrics::{self, BatchMetrics, Rebalance};
use crate::partition::PartitionReader;
use crate::quirks::BrokerQuirks;
use crate::{KafkaConfig, Shutdown};

/// An error a worker raises; it stops the loop (nothing after the last commit is lost: a restart
/// resumes from there).
pub type WorkerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the loop stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A client failed.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The worker cannot start (e.g. a topic is missing).
    #[error("cannot start: {0}")]
    Setup(String),
    /// Outputs were not acknowledged; nothing was committed, a restart resumes safely.
    #[error("output not acknowledged: {0}")]
    Delivery(String),
    /// The worker failed.
    #[error(transparent)]
    Worker(WorkerError),
}

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// Connection settings.
    pub kafka: KafkaConfig,
    /// Consumer group.
    pub group: String,
    /// Dead-letter topic.
    pub dead_letters: String,
    /// Most input records per round of the loop (between two looks at the clock, the delivery
    /// reports and the rebalance state), and between two checkpoints of a
    /// [`Checkpoints::State`] worker (bounds its store transactions).
    pub max_batch: usize,
    /// How often progress is committed (and, under exactly-once, how long a transaction stays
    /// open). Shorter: less to replay after a crash and, under exactly-once, lower latency for
    /// `read_committed` readers; longer: fewer commits.
    pub commit_interval: Duration,
    /// Re-join the group after this long without partitions (the embedded broker does not
    /// rebalance when a member's session expires; on real Kafka leave it off). `None`: what
    /// the broker's quirks call for.
    pub rejoin_when_idle: Option<Duration>,
    /// Which broker's quirks to work around ([`BrokerQuirks::Auto`]: detected at start).
    pub quirks: BrokerQuirks,
    /// Effectively-once (any broker) or exactly-once (Kafka transactions).
    pub guarantee: Guarantee,
    /// `transactional.id` under exactly-once (default: `<group>-<host>-<pid>`). A stable id
    /// per instance (e.g. a StatefulSet pod name) lets a restarted instance abort its
    /// predecessor's open transaction at once instead of after the transaction timeout.
    pub transactional_id: Option<String>,
}

/// How a worker's progress is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoints {
    /// The worker keeps nothing that must survive a crash except its outputs (the matcher
    /// rebuilds its state from snapshots, which it writes itself, and its output topics): at
    /// each interval the loop commits the input offsets whose outputs are all acknowledged,
    /// without waiting for the outputs still in flight.
    Offsets,
    /// [`Worker::checkpoint`] persists the state of every record processed so far (a store
    /// transaction holding its offsets): at each interval the loop waits until every output is
    /// acknowledged, then lets the worker checkpoint, then commits.
    State,
}

/// One input record.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value (empty for a tombstone).
    pub payload: &'a [u8],
    /// Record timestamp, ms (create or log-append time).
    pub timestamp_ms: Option<i64>,
}

/// What became of one input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processed (or recognised as already handled).
    Done,
    /// Cannot be processed: the loop writes it to the dead-letter topic and goes on.
    Poison(Poison),
}

/// Where a consumer stands on one input partition after a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Input topic.
    pub topic: String,
    /// Input partition.
    pub partition: i32,
    /// Next offset to read.
    pub next_offset: i64,
}

/// A worker: the part of a job that is not the consumer loop.
pub trait Worker: Send + 'static {
    /// Name, for headers, logs and metric labels (e.g. `matcher`).
    fn name(&self) -> &str;

    /// Input topics.
    fn topics(&self) -> Vec<String>;

    /// How the worker's progress is made durable (the safe default: [`Checkpoints::State`]).
    fn checkpoints(&self) -> Checkpoints {
        Checkpoints::State
    }

    /// `topic`/`partition` was assigned. Restore its state and return the next offset to read
    /// (0: from the beginning). `committed` is the group's committed offset (-1: none).
    fn assign(
        &mut self,
        ctx: &mut Context<'_>,
        topic: &str,
        partition: i32,
        committed: i64,
    ) -> Result<i64, WorkerError>;

    /// Processes one input record, in offset order per partition.
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        record: &Record<'_>,
    ) -> Result<Outcome, WorkerError>;

    /// `positions` are the input partitions that moved since the last checkpoint. For a
    /// [`Checkpoints::State`] worker every output so far is acknowledged and `positions` are
    /// where processing stands: persist what must survive a crash (a store transaction with these
    /// offsets). For a [`Checkpoints::Offsets`] worker they are the acknowledged positions. The
    /// loop commits the offsets to the group right after.
    fn checkpoint(
        &mut self,
        _ctx: &mut Context<'_>,
        _positions: &[Position],
    ) -> Result<(), WorkerError> {
        Ok(())
    }

    /// Called after every round of the loop (the records that arrived, possibly none, and the
    /// commit if one was due), and once more with `last = true` when the loop stops cleanly,
    /// after every output is acknowledged (e.g. to write snapshots that are due).
    fn after_batch(&mut self, _ctx: &mut Context<'_>, _last: bool) -> Result<(), WorkerError> {
        Ok(())
    }

    /// `topic`/`partition` was revoked, after its last batch was checkpointed and committed.
    fn revoke(&mut self, _topic: &str, _partition: i32) {}
}

/// The producer's context: delivery reports go to the acknowledgement tracker.
#[derive(Debug, Default)]
pub struct DeliveryContext {
    acks: Mutex<Acks>,
    /// Signalled when the last output in flight is reported.
    settled: Condvar,
}

impl DeliveryContext {
    /// The tracker; it is only held for a few instructions at a time, by the loop's thread and
    /// the producer's.
    fn acks(&self) -> MutexGuard<'_, Acks> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until every output sent so far is reported; `false` if `timeout` passed first.
    ///
    /// Not `Producer::flush`: on a `ThreadedProducer` the reports are served by the producer's
    /// own thread, and rust-rdkafka's flush then sleeps in 100 ms polls that never see them, so
    /// every flush with anything in flight took 100 ms (measured: one send + flush, 100.1 ms on
    /// both brokers).
    fn wait_settled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut acks = self.acks();
        while acks.in_flight() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            acks = self
                .settled
                .wait_timeout(acks, left)
                .map_or_else(|p| p.into_inner().0, |(guard, _)| guard);
        }
        true
    }
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Token;

    fn delivery(&self, result: &DeliveryResult<'_>, token: Token) {
        let result = match result {
            Ok(_) => Ok(()),
            // Records purged by an abort were meant to be dropped: the loop replays their input.
            Err((e, _))
                if matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)
                ) =>
            {
                Ok(())
            }
            Err((e, _)) => Err(e.to_string()),
        };
        let mut acks = self.acks();
        acks.delivered(token, result);
        if acks.in_flight() == 0 {
            self.settled.notify_all();
        }
    }
}

/// The producer every worker writes through.
pub type OutputProducer = ThreadedProducer<DeliveryContext>;

/// An output record, tagged with its input record's token.
type Output<'a> = BaseRecord<'a, [u8], [u8], Token>;

/// The producer's transaction under exactly-once.
#[derive(Debug, Default)]
struct Txn {
    /// Exactly-once: every write goes in a transaction.
    enabled: bool,
    /// A transaction is open.
    open: bool,
    /// A write failed inside the open transaction: it can only be aborted.
    failed: Option<KafkaError>,
    /// Transactions aborted so far.
    aborted: u64,
}

impl Txn {
    /// Opens a transaction if writes need one and none is open.
    fn begin(&mut self, producer: &OutputProducer) -> Result<(), KafkaError> {
        if self.enabled && !self.open {
            producer.begin_transaction()?;
            self.open = true;
        }
        Ok(())
    }

    /// Sends `record`, inside the transaction under exactly-once. There a failure dooms the
    /// transaction rather than the worker: it is kept for the checkpoint, which aborts and
    /// replays.
    fn send(&mut self, producer: &OutputProducer, record: Output<'_>) -> Result<(), KafkaError> {
        if !self.enabled {
            return send(producer, record);
        }
        if self.failed.is_some() {
            // Nothing of this transaction will be kept: the record is not sent, and its token
            // is reported at once so nothing waits for it.
            producer
                .context()
                .acks()
                .delivered(record.delivery_opaque, Ok(()));
            return Ok(());
        }
        if let Err(e) = self.begin(producer).and_then(|()| send(producer, record)) {
            tracing::warn!(error = %e, "write failed inside the transaction; it will be aborted");
            self.failed = Some(e);
        }
        Ok(())
    }
}

/// The input record being processed: the slot of its partition and its offset.
type Current = Option<(Slot, i64)>;

/// What a worker can do from its callbacks: produce, read partitions, dead-letter.
pub struct Context<'a> {
    producer: &'a OutputProducer,
    txn: &'a mut Txn,
    reader: &'a PartitionReader,
    dead_letters: &'a str,
    dlq_partitions: i32,
    worker: &'a str,
    metrics: &'a mut BatchMetrics,
    assigned: &'a BTreeMap<String, BTreeMap<i32, Assigned>>,
    current: Current,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl Context<'_> {
    /// Produces one record, waiting for queue space if the producer is full. Written while an
    /// input record is processed, it counts as that record's output: the record's offset is
    /// committed only once it is acknowledged.
    pub fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<(), WorkerError> {
        let token = {
            let mut acks = self.producer.context().acks();
            match self.current {
                Some((slot, offset)) => acks.output(slot, offset),
                None => acks.untracked(),
            }
        };
        let mut record = Output::with_opaque_to(topic, token).payload(payload);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        self.txn.send(self.producer, record)?;
        self.metrics.sent(topic);
        Ok(())
    }

    /// Produces one record made from input `source`, with provenance headers naming the source
    /// record, `seq` and this worker (see [`crate::headers::Provenance`]).
    pub fn send_derived(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
        source: &Record<'_>,
        seq: u64,
    ) -> Result<(), WorkerError> {
        let headers = Provenance {
            source_topic: source.topic,
            source_partition: source.partition,
            source_offset: source.offset,
            seq,
            worker: self.worker,
        }
        .headers();
        self.send(topic, partition, key, value, Some(headers))
    }

    /// Waits until everything sent so far is acknowledged.
    pub fn flush(&self) -> Result<(), WorkerError> {
        flush(self.producer).map_err(|e| Box::new(e) as WorkerError)
    }

    /// Every record of `topic`/`partition` below the answer is processed and all its outputs
    /// are acknowledged (`None`: not assigned). Under exactly-once that is every record
    /// processed: what they wrote commits or aborts together with anything written now.
    pub fn acknowledged(&self, topic: &str, partition: i32) -> Option<i64> {
        let a = self.assigned.get(topic)?.get(&partition)?;
        if self.txn.enabled {
            return Some(a.next_offset);
        }
        self.producer.context().acks().acknowledged(a.slot)
    }

    /// Reads partitions by offset (restores, dedup scans).
    pub fn reader(&self) -> &PartitionReader {
        self.reader
    }

    /// The dead-letter topic.
    pub fn dead_letter_topic(&self) -> &str {
        self.dead_letters
    }

    /// Partitions of the dead-letter topic.
    pub fn dead_letter_partitions(&self) -> i32 {
        self.dlq_partitions
    }

    /// The dead-letter partition of input partition `p` (`p` modulo the topic's partitions).
    pub fn dead_letter_partition(&self, p: i32) -> i32 {
        p % self.dlq_partitions
    }

    /// The worker's name.
    pub fn worker(&self) -> &str {
        self.worker
    }
}

fn send(producer: &OutputProducer, record: Output<'_>) -> Result<(), KafkaError> {
    let mut record = record;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            // The queue is bounded (queue.buffering.max.*): wait for delivery reports to free it.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, r)) => {
                producer
                    .context()
                    .acks()
                    .delivered(r.delivery_opaque, Ok(()));
                return Err(e);
            }
        }
    }
}

/// How long a flush waits for the outputs in flight; librdkafka retries within it.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until every output sent so far is acknowledged; fails if any was lost.
fn flush(producer: &OutputProducer) -> Result<(), RunError> {
    if !producer.context().wait_settled(FLUSH_TIMEOUT) {
        let left = producer.context().acks().in_flight();
        return Err(RunError::Delivery(format!(
            "{left} outputs not acknowledged within {} s",
            FLUSH_TIMEOUT.as_secs()
        )));
    }
    delivery_failure(producer)
}

/// Fails if an output was lost.
fn delivery_failure(producer: &OutputProducer) -> Result<(), RunError> {
    match producer.context().acks().failure() {
        Some(e) => Err(RunError::Delivery(e.to_owned())),
        None => Ok(()),
    }
}

/// How long to wait for a re-fetched offset before asking again, and how often to ask.
const REFETCH_WAIT: Duration = Duration::from_secs(1);
const REFETCH_TRIES: u32 = 8;

/// What to do with a polled record before processing it.
enum Gate {
    Process,
    Skip,
    /// Offsets jumped: fetch again from this (earlier) offset.
    Refetch(i64),
}

/// The loop's view of one assigned input partition.
#[derive(Debug)]
struct Assigned {
    /// Next offset to process.
    next_offset: i64,
    /// Where the group's offset stands, as far as this loop committed it.
    committed: i64,
    /// Its acknowledgement slot.
    slot: Slot,
    /// A re-fetch in progress: (offset wanted, when asked, tries).
    refetch: Option<(i64, Instant, u32)>,
    /// Re-fetching gave up: the next record that arrives is processed whatever its offset.
    accept_gap: bool,
    /// Embedded broker only: assigned at this moment at a non-zero offset, and no record has
    /// arrived since. A start inside the partition's last batch is answered with nothing at all
    /// (there is no next batch to answer with), so no gap ever shows; after [`REFETCH_WAIT`]
    /// without a record the partition is fetched again from further back.
    resumed: Option<Instant>,
    /// Restoring since the assignment at this moment: live once processing reaches this offset
    /// (the group's committed offset), timed as [`metrics::RESTORE`].
    restoring: Option<(Instant, i64)>,
}

impl Assigned {
    fn new(next_offset: i64, slot: Slot) -> Self {
        Assigned {
            next_offset,
            committed: next_offset,
            slot,
            refetch: None,
            accept_gap: false,
            resumed: None,
            restoring: None,
        }
    }
}

/// Which progress a checkpoint makes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// The commit interval elapsed: commit without stopping the flow where the worker allows.
    Interval,
    /// A partition is given up or the loop stops: wait for every output, commit synchronously.
    Final,
}

/// Everything the loop and the rebalance callbacks share.
struct Core<W: Worker> {
    worker: W,
    producer: OutputProducer,
    /// The transaction state (exactly-once) and the id to re-create the producer with.
    txn: Txn,
    transactional_id: String,
    reader: PartitionReader,
    cfg: LoopConfig,
    name: String,
    dlq_partitions: i32,
    /// The quirks in force (resolved: never `Auto`).
    quirks: BrokerQuirks,
    /// Assigned partitions by topic, then partition: looked up per record by `&str`, without
    /// allocating a key. A topic without partitions is removed.
    assigned: BTreeMap<String, BTreeMap<i32, Assigned>>,
    metrics: BatchMetrics,
    /// A failure inside a callback, raised by the loop.
    failure: Option<RunError>,
}

impl<W: Worker> std::fmt::Debug for Core<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("worker", &self.name)
            .field("assigned", &self.assigned)
            .finish()
    }
}

impl<W: Worker> Core<W> {
    /// Splits the core into the worker and the context it may use.
    fn parts(&mut self) -> (&mut W, Context<'_>) {
        self.parts_for(None)
    }

    /// [`Core::parts`] while input record `current` is processed.
    fn parts_for(&mut self, current: Current) -> (&mut W, Context<'_>) {
        let ctx = Context {
            producer: &self.producer,
            txn: &mut self.txn,
            reader: &self.reader,
            dead_letters: &self.cfg.dead_letters,
            dlq_partitions: self.dlq_partitions,
            worker: &self.name,
            metrics: &mut self.metrics,
            assigned: &self.assigned,
            current,
        };
        (&mut self.worker, ctx)
    }

    /// The loop's state of an assigned partition.
    fn slot(&mut self, topic: &str, p: i32) -> Option<&mut Assigned> {
        self.assigned.get_mut(topic)?.get_mut(&p)
    }

    /// Decides whether a polled record is the next input of its partition.
    ///
    /// A record below the next offset was processed already (a fetch replayed it). A jump
    /// forward is a gap: on Apache Kafka gaps are normal (transaction control records, aborted
    /// transactions under `read_committed`, compaction) and the record is processed. Only on the
    /// embedded broker, whose fetch answers a start inside a record batch with the *next* batch,
    /// is a gap fetched again from further back (64, 256, 1024, … offsets before), up to
    /// [`REFETCH_TRIES`] times. Records polled while a re-fetch is pending are skipped, but the
    /// seek back puts each of them in front of the consumer again; when the tries run out the
    /// loop seeks back to the gap once more and takes whatever comes first, so a record that
    /// was fetched is never dropped.
    fn gate(&mut self, topic: &str, p: i32, offset: i64) -> Gate {
        let refetch_gaps = self.quirks.refetch_gaps();
        let Some(a) = self.slot(topic, p) else {
            return Gate::Skip; // revoked meanwhile
        };
        a.resumed = None;
        if offset < a.next_offset {
            // Already processed. If a re-fetch is pending, this answer shows the fetch now starts
            // before the wanted offset: batches are contiguous, so it comes next if it exists
            // (the partition may simply be at its end). Nothing more to ask.
            if a.refetch.is_some_and(|(at, ..)| at == a.next_offset) {
                a.refetch = None;
            }
            return Gate::Skip;
        }
        if offset == a.next_offset || a.next_offset == 0 || !refetch_gaps || a.accept_gap {
            if offset > a.next_offset && a.next_offset > 0 {
                tracing::debug!(
                    topic,
                    partition = p,
                    expected = a.next_offset,
                    got = offset,
                    "gap in input offsets"
                );
            }
            a.refetch = None;
            a.accept_gap = false;
            return Gate::Process;
        }
        let want = a.next_offset;
        match a.refetch {
            Some((at, since, _)) if at == want && since.elapsed() < REFETCH_WAIT => Gate::Skip,
            Some((at, _, tries)) if at == want && tries >= REFETCH_TRIES => {
                tracing::error!(
                    topic,
                    partition = p,
                    expected = want,
                    got = offset,
                    "input offsets jumped and re-fetching did not help; taking the gap as it is"
                );
                a.refetch = None;
                a.accept_gap = true;
                Gate::Refetch(want)
            }
            previous => {
                let tries = previous
                    .filter(|(at, ..)| *at == want)
                    .map_or(0, |(.., t)| t)
                    + 1;
                tracing::warn!(
                    topic,
                    partition = p,
                    expected = want,
                    got = offset,
                    tries,
                    "gap in input offsets; fetching again"
                );
                Gate::Refetch(self.ask_again(topic, p, tries))
            }
        }
    }

    /// Notes re-fetch number `tries` of a partition's next offset; returns where to fetch from.
    fn ask_again(&mut self, topic: &str, p: i32, tries: u32) -> i64 {
        self.metrics.refetch();
        let Some(a) = self.slot(topic, p) else {
            return 0;
        };
        let want = a.next_offset;
        a.refetch = Some((want, Instant::now(), tries));
        a.resumed = None;
        let back = 64i64 << (2 * (tries - 1).min(20));
        (want - back).max(0)
    }

    /// Re-fetches that got no answer within [`REFETCH_WAIT`] (e.g. the partition's end was in
    /// the skipped batch, so no later record arrives to show the gap again): asks again from
    /// further back. Returns (topic, partition, offset) to seek to.
    fn refetches_due(&mut self) -> Vec<(String, i32, i64)> {
        let due: Vec<(String, i32, u32)> = self
            .assigned
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions.iter().filter_map(move |(p, a)| match a.refetch {
                    Some((at, since, tries))
                        if at == a.next_offset
                            && tries < REFETCH_TRIES
                            && since.elapsed() >= REFETCH_WAIT =>
                    {
                        Some((topic.clone(), *p, tries + 1))
                    }
                    None if a.resumed.is_some_and(|t| t.elapsed() >= REFETCH_WAIT) => {
                        Some((topic.clone(), *p, 1))
                    }
                    _ => None,
                })
            })
            .collect();
        due.into_iter()
            .map(|(topic, p, tries)| {
                tracing::warn!(
                    topic,
                    partition = p,
                    tries,
                    "no record since the partition was assigned or re-fetched; fetching again from further back"
                );
                let at = self.ask_again(&topic, p, tries);
                (topic, p, at)
            })
            .collect()
    }

    /// Processes one gated record.
    fn process(&mut self, m: &BorrowedMessage<'_>) -> Result<(), RunError> {
        let topic = m.topic();
        let p = m.partition();
        let offset = m.offset();
        let Some(a) = self.slot(topic, p) else {
            return Ok(());
        };
        a.next_offset = offset + 1;
        let slot = a.slot;
        if let Some((since, live_at)) = a.restoring
            && a.next_offset >= live_at
        {
            a.restoring = None;
            self.live(topic, p, since);
        }
        let record = Record {
            topic,
            partition: p,
            offset,
            key: m.key(),
            payload: m.payload().unwrap_or_default(),
            timestamp_ms: m.timestamp().to_millis(),
        };
        self.metrics.received(topic, p, record.timestamp_ms);
        let current = Some((slot, offset));
        let (worker, mut ctx) = self.parts_for(current);
        let outcome = worker
            .process(&mut ctx, &record)
            .map_err(RunError::Worker)?;
        if let Outcome::Poison(poison) = outcome {
            self.dead_letter(&record, &poison, current)?;
        }
        self.producer.context().acks().processed(slot, offset);
        Ok(())
    }

    fn dead_letter(
        &mut self,
        record: &Record<'_>,
        poison: &Poison,
        current: Current,
    ) -> Result<(), RunError> {
        tracing::warn!(
            worker = %self.name,
            topic = record.topic,
            partition = record.partition,
            offset = record.offset,
            class = poison.class,
            error = %poison.message,
            "record sent to dead letters"
        );
        let (payload, truncated_from) =
            dead_letter::bounded(record.payload, dead_letter::MAX_PAYLOAD);
        let headers = dead_letter::headers(
            poison,
            record.topic,
            record.partition,
            record.offset,
            &self.name,
            truncated_from,
        );
        let key = record
            .key
            .map(|k| dead_letter::bounded(k, dead_letter::MAX_TEXT).0);
        let (_, mut ctx) = self.parts_for(current);
        let (topic, partition) = (
            ctx.dead_letters,
            ctx.dead_letter_partition(record.partition),
        );
        ctx.send(topic, Some(partition), key, payload, Some(headers))
            .map_err(RunError::Worker)?;
        self.metrics.dead_letter(poison.class);
        Ok(())
    }

    /// Where processing stands, on every partition that moved.
    fn processed_positions(&mut self) -> Vec<Position> {
        take_positions(&mut self.assigned, |a| Some(a.next_offset))
    }

    /// Makes progress durable (see [`Checkpoints`]). At [`Moment::Final`] everything processed is
    /// acknowledged, checkpointed and committed before it returns.
    fn checkpoint<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        moment: Moment,
    ) -> Result<(), RunError> {
        if self.txn.enabled {
            let positions = self.processed_positions();
            return self.commit_transaction(consumer, &positions);
        }
        let positions =
            if moment == Moment::Interval && self.worker.checkpoints() == Checkpoints::Offsets {
                delivery_failure(&self.producer)?;
                let acks = self.producer.context().acks();
                take_positions(&mut self.assigned, |a| acks.acknowledged(a.slot))
            } else {
                let positions = self.processed_positions();
                if positions.is_empty() {
                    return Ok(());
                }
                flush(&self.producer)?;
                positions
            };
        if positions.is_empty() {
            return Ok(());
        }
        let (worker, mut ctx) = self.parts();
        worker
            .checkpoint(&mut ctx, &positions)
            .map_err(RunError::Worker)?;
        let mut tpl = TopicPartitionList::new();
        for pos in &positions {
            tpl.add_partition_offset(&pos.topic, pos.partition, Offset::Offset(pos.next_offset))?;
        }
        // In the steady state the commit goes out without waiting (its result comes back in
        // `poll`, see `LoopContext::commit_callback`); a later commit covers a failed one.
        let mode = match moment {
            Moment::Interval => CommitMode::Async,
            Moment::Final => CommitMode::Sync,
        };
        match consumer.commit(&tpl, mode) {
            Ok(()) => {}
            Err(e) if lost_membership(&e) => {
                // The group moved on without this member (its session expired, or a
                // rebalance began). Everything up to here is acknowledged and checkpointed;
                // the next owner resumes from the last accepted commit and its outputs are
                // deduplicated by seq. The rebalance callback takes the partitions away.
                tracing::warn!(
                    worker = %self.name,
                    error = %e,
                    "commit refused: this member lost its partitions in a rebalance"
                );
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        self.metrics.committed(now_ms());
        Ok(())
    }

    /// Exactly-once checkpoint: the worker's checkpoint, then the input offsets with the group's
    /// metadata and the commit, in the open transaction. A transaction that cannot commit (this
    /// member was fenced by a newer generation, the broker aborted it on timeout, a write
    /// failed) is aborted, and every assigned partition is restored from the last commit.
    fn commit_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        positions: &[Position],
    ) -> Result<(), RunError> {
        if positions.is_empty() && !self.txn.open && self.txn.failed.is_none() {
            return Ok(());
        }
        if self.txn.failed.is_none() {
            let (worker, mut ctx) = self.parts();
            worker
                .checkpoint(&mut ctx, positions)
                .map_err(RunError::Worker)?;
        }
        match self.try_commit(consumer, positions) {
            Ok(()) => {
                self.metrics.committed(now_ms());
                Ok(())
            }
            Err(e) => self.abort_and_rewind(consumer, &e),
        }
    }

    fn try_commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        positions: &[Position],
    ) -> Result<(), KafkaError> {
        if let Some(e) = self.txn.failed.take() {
            return Err(e);
        }
        self.txn.begin(&self.producer)?;
        if !positions.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for pos in positions {
                tpl.add_partition_offset(
                    &pos.topic,
                    pos.partition,
                    Offset::Offset(pos.next_offset),
                )?;
            }
            let group = consumer
                .group_metadata()
                .ok_or(KafkaError::ConsumerCommit(RDKafkaErrorCode::State))?;
            self.producer
                .send_offsets_to_transaction(&tpl, &group, TRANSACTION_TIMEOUT)?;
        }
        self.producer.commit_transaction(TRANSACTION_TIMEOUT)?;
        self.txn.open = false;
        Ok(())
    }

    /// Aborts the open transaction (re-creating the producer when the error is fatal, e.g. a
    /// fenced epoch), then restores every assigned partition from the group's committed offset.
    fn abort_and_rewind<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        error: &KafkaError,
    ) -> Result<(), RunError> {
        tracing::warn!(
            worker = %self.name,
            error = %error,
            "transaction not committed; aborting it and processing its input again from the last commit"
        );
        self.abort(error)?;
        self.rewind(consumer)
    }

    /// Aborts the open transaction; nothing it wrote becomes visible.
    fn abort(&mut self, error: &KafkaError) -> Result<(), RunError> {
        let fatal = matches!(error, KafkaError::Transaction(e) if e.is_fatal());
        let aborted = !fatal
            && self
                .producer
                .abort_transaction(TRANSACTION_TIMEOUT)
                .inspect_err(|e| tracing::warn!(worker = %self.name, error = %e, "abort failed"))
                .is_ok();
        if !aborted {
            // A fatal error (e.g. the broker bumped the producer epoch when it aborted a timed-out
            // transaction): only a new producer can write again. Its `init_transactions` also
            // aborts whatever the old one left open.
            tracing::warn!(worker = %self.name, "re-creating the transactional producer");
            self.producer = transactional_producer(&self.cfg, &self.transactional_id)?;
        }
        self.txn.open = false;
        self.txn.failed = None;
        self.txn.aborted += 1;
        self.metrics.aborted();
        Ok(())
    }

    /// Restores every assigned partition from the group's committed offset, as on assignment,
    /// and moves the consumer there: the worker's state must not keep anything an aborted
    /// transaction did.
    fn rewind<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), RunError> {
        let partitions: Vec<(String, i32)> = self
            .assigned
            .iter()
            .flat_map(|(t, ps)| ps.keys().map(move |p| (t.clone(), *p)))
            .collect();
        for (topic, p) in partitions {
            let committed = committed_offset(consumer, &topic, p);
            self.worker.revoke(&topic, p);
            let (worker, mut ctx) = self.parts();
            let next = worker
                .assign(&mut ctx, &topic, p, committed)
                .map_err(RunError::Worker)?;
            let next = next.max(0);
            if let Some(old) = self.assigned.get(&topic).and_then(|ps| ps.get(&p)) {
                self.producer.context().acks().close(old.slot);
                let fresh = self.open_partition(next);
                if let Some(a) = self.assigned.get_mut(&topic).and_then(|ps| ps.get_mut(&p)) {
                    *a = fresh;
                }
            }
            let offset = if next <= 0 {
                Offset::Beginning
            } else {
                Offset::Offset(next)
            };
            // A failed seek would let the fetch position run ahead of the restored state, and
            // the records in between be taken for a gap: stop instead (a restart is safe).
            consumer.seek(&topic, p, offset, Duration::from_secs(10))?;
            tracing::info!(worker = %self.name, topic, partition = p, next, "partition restored after an abort");
        }
        Ok(())
    }

    fn after_batch(&mut self, last: bool) -> Result<(), RunError> {
        let (worker, mut ctx) = self.parts();
        worker.after_batch(&mut ctx, last).map_err(RunError::Worker)
    }

    fn assign(&mut self, consumer: &BaseConsumer<LoopContext<W>>, tpl: &TopicPartitionList) {
        // Every partition of the assignment waits for the restores before it: its restore time
        // runs from here.
        let since = Instant::now();
        metrics::rebalanced(&self.name, Rebalance::Assigned, tpl.count());
        let mut start = TopicPartitionList::new();
        for elem in tpl.elements() {
            let (topic, p) = (elem.topic().to_owned(), elem.partition());
            let committed = committed_offset(consumer, &topic, p);
            let (worker, mut ctx) = self.parts();
            match worker.assign(&mut ctx, &topic, p, committed) {
                Ok(next) => {
                    let offset = match next {
                        n if n <= 0 => Offset::Beginning,
                        n => Offset::Offset(n),
                    };
                    if let Err(e) = start.add_partition_offset(&topic, p, offset) {
                        self.failure.get_or_insert(e.into());
                    }
                    tracing::info!(worker = %self.name, topic, partition = p, next, "partition assigned");
                    let mut assigned = self.open_partition(next.max(0));
                    if next.max(0) >= committed {
                        // Nothing processed before is ahead of the restored state: live now.
                        self.live(&topic, p, since);
                    } else {
                        assigned.restoring = Some((since, committed));
                    }
                    self.assigned.entry(topic).or_default().insert(p, assigned);
                }
                Err(e) => {
                    tracing::error!(topic, partition = p, error = %e, "cannot restore partition");
                    self.failure.get_or_insert(RunError::Worker(e));
                }
            }
        }
        if let Err(e) = consumer.incremental_assign(&start) {
            self.failure.get_or_insert(e.into());
        }
        metrics::owned(&self.name, self.owned(), &[]);
    }

    fn revoke(&mut self, consumer: &BaseConsumer<LoopContext<W>>, tpl: &TopicPartitionList) {
        let since = Instant::now();
        let lost = consumer.assignment_lost();
        if self.txn.enabled && lost {
            // Another member may own these partitions already: nothing of the open transaction
            // may become visible. Abort it; the partitions kept (if any) are restored.
            if self.txn.open || self.txn.failed.is_some() {
                let lost = KafkaError::ConsumerCommit(RDKafkaErrorCode::AssignmentLost);
                for elem in tpl.elements() {
                    self.forget(elem.topic(), elem.partition());
                }
                if let Err(e) = self.abort_and_rewind(consumer, &lost) {
                    self.failure.get_or_insert(e);
                }
            }
        } else if let Err(e) = self.checkpoint(consumer, Moment::Final) {
            // Finish the batch in flight before giving the partitions up.
            self.failure.get_or_insert(e);
        }
        let took = since.elapsed();
        let mut given_up = Vec::with_capacity(tpl.count());
        for elem in tpl.elements() {
            self.forget(elem.topic(), elem.partition());
            self.worker.revoke(elem.topic(), elem.partition());
            let handoff_ms = took.as_secs_f64() * 1000.0;
            tracing::info!(worker = %self.name, topic = elem.topic(), partition = elem.partition(), lost, handoff_ms, "partition revoked");
            if !lost {
                metrics::handed_off(&self.name, took);
            }
            given_up.push((elem.topic().to_owned(), elem.partition()));
        }
        if let Err(e) = consumer.incremental_unassign(tpl) {
            self.failure.get_or_insert(e.into());
        }
        let kind = if lost {
            Rebalance::Lost
        } else {
            Rebalance::Revoked
        };
        metrics::rebalanced(&self.name, kind, tpl.count());
        metrics::owned(&self.name, self.owned(), &given_up);
    }
}

impl<W: Worker> Core<W> {
    /// The loop's record of a partition that starts (or restarts) at `next`: a fresh
    /// acknowledgement slot, and on the embedded broker the watch for a start inside its last
    /// batch.
    fn open_partition(&self, next: i64) -> Assigned {
        let slot = self.producer.context().acks().open(next);
        let mut assigned = Assigned::new(next, slot);
        if self.quirks.refetch_gaps() && next > 0 {
            assigned.resumed = Some(Instant::now());
        }
        assigned
    }

    /// Partitions assigned now.
    fn owned(&self) -> usize {
        self.assigned.values().map(BTreeMap::len).sum()
    }

    /// `topic`/`p`, assigned at `since`, is live: its restore is over.
    fn live(&self, topic: &str, p: i32, since: Instant) {
        let took = since.elapsed();
        let restore_ms = took.as_secs_f64() * 1000.0;
        tracing::info!(worker = %self.name, topic, partition = p, restore_ms, "partition live");
        metrics::restored(&self.name, took);
    }

    /// Drops the loop's record of an assigned partition.
    fn forget(&mut self, topic: &str, p: i32) {
        if let Some(partitions) = self.assigned.get_mut(topic) {
            if let Some(a) = partitions.remove(&p) {
                self.producer.context().acks().close(a.slot);
            }
            if partitions.is_empty() {
                self.assigned.remove(topic);
            }
        }
    }
}

/// When the loop checkpoints: every `commit_interval`, and for a worker whose checkpoints are
/// store transactions also after `max_batch` records, so a transaction stays small under load.
#[derive(Debug)]
struct Cadence {
    interval: Duration,
    max_batch: usize,
    next: Instant,
    /// Records taken since the last checkpoint.
    taken: usize,
}

impl Cadence {
    /// How long the loop waits for input when there is none, so a quiet loop still looks at
    /// its delivery reports, rebalances and snapshots regularly.
    const MAX_WAIT: Duration = Duration::from_millis(100);

    fn new(cfg: &LoopConfig, now: Instant) -> Self {
        Cadence {
            interval: cfg.commit_interval,
            max_batch: cfg.max_batch,
            next: now + cfg.commit_interval,
            taken: 0,
        }
    }

    /// How long to wait for the first record of a round: no longer than until the next
    /// checkpoint is due.
    fn wait(&self, now: Instant) -> Duration {
        self.next.saturating_duration_since(now).min(Self::MAX_WAIT)
    }

    /// A round took `n` records.
    fn took(&mut self, n: usize) {
        self.taken += n;
    }

    /// Whether to checkpoint now; `per_batch`: the worker's checkpoints are store transactions.
    fn due(&self, now: Instant, per_batch: bool) -> bool {
        now >= self.next || (per_batch && self.taken >= self.max_batch)
    }

    /// A checkpoint was made at `now`.
    fn checkpointed(&mut self, now: Instant) {
        self.next = now + self.interval;
        self.taken = 0;
    }
}

/// The partitions whose position (`at`: processed or acknowledged) moved past what was
/// committed; notes them as committed.
fn take_positions(
    assigned: &mut BTreeMap<String, BTreeMap<i32, Assigned>>,
    at: impl Fn(&Assigned) -> Option<i64>,
) -> Vec<Position> {
    let mut positions = Vec::new();
    for (topic, partitions) in assigned {
        for (p, a) in partitions.iter_mut() {
            let Some(next) = at(a).filter(|n| *n > a.committed) else {
                continue;
            };
            a.committed = next;
            positions.push(Position {
                topic: topic.clone(),
                partition: *p,
                next_offset: next,
            });
        }
    }
    positions
}

/// The transactional producer of `cfg`'s worker, its transactions initialised (which also
/// aborts any transaction a previous producer with the same id left open).
fn transactional_producer(cfg: &LoopConfig, id: &str) -> Result<OutputProducer, RunError> {
    let producer: OutputProducer = cfg
        .kafka
        .transactional_producer(id)
        .create_with_context(DeliveryContext::default())?;
    producer.init_transactions(Duration::from_secs(30))?;
    Ok(producer)
}

/// The default `transactional.id`: unique per process.
fn default_transactional_id(group: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!("{group}-{host}-{}", std::process::id())
}

/// Whether a commit failed because this member no longer owns its partitions: normal on Apache
/// Kafka when a session expires (e.g. a long pause) or a rebalance is under way, never fatal.
pub(crate) fn lost_membership(e: &KafkaError) -> bool {
    let code = match e {
        KafkaError::ConsumerCommit(code) => *code,
        _ => return false,
    };
    matches!(
        code,
        RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::FencedInstanceId
            | RDKafkaErrorCode::StaleMemberEpoch
            | RDKafkaErrorCode::AssignmentLost
            | RDKafkaErrorCode::State
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The consumer's context: rebalances go to the core; statistics become lag metrics.
struct LoopContext<W: Worker> {
    core: Arc<Mutex<Core<W>>>,
    worker: String,
}

fn lock<W: Worker>(core: &Mutex<Core<W>>) -> MutexGuard<'_, Core<W>> {
    // The lock is only taken on the loop's thread (callbacks run inside `poll`); a poisoned
    // lock means a panic already ended it.
    core.lock().unwrap_or_else(|p| p.into_inner())
}

impl<W: Worker> ClientContext for LoopContext<W> {
    fn stats(&self, statistics: Statistics) {
        // Statistics may be served while a rebalance callback holds the core: skip that report
        // (the next comes within `statistics.interval.ms`) rather than wait for ourselves.
        let Ok(core) = self.core.try_lock() else {
            return;
        };
        let owned: Vec<(String, i32)> = core
            .assigned
            .iter()
            .flat_map(|(t, ps)| ps.keys().map(move |p| (t.clone(), *p)))
            .collect();
        drop(core);
        metrics::consumer_lag(&self.worker, &statistics, |topic, p| {
            owned.iter().any(|(t, q)| *q == p && t == topic)
        });
    }
}

impl<W: Worker> ConsumerContext for LoopContext<W> {
    /// The result of an asynchronous commit. A refused one is not fatal: the next commit
    /// covers it, and at worst a restart replays a little more (outputs are deduplicated).
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {}
            Err(e) if lost_membership(&e) => {
                tracing::warn!(worker = %self.worker, error = %e, "commit refused: this member lost its partitions in a rebalance");
            }
            Err(e) => {
                tracing::warn!(worker = %self.worker, error = %e, "commit failed; the next one covers it")
            }
        }
    }

    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut core = lock(&self.core);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => core.assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => core.revoke(consumer, tpl),
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

/// Runs `worker` until `shutdown` is triggered or an error stops it, and returns the worker. On
/// a clean stop it flushes, checkpoints and commits, calls [`Worker::after_batch`] with
/// `last = true`, and leaves the group so the partitions move at once.
pub fn run<W: Worker>(worker: W, cfg: LoopConfig, shutdown: &Shutdown) -> Result<W, RunError> {
    let name = worker.name().to_owned();
    let quirks = cfg.quirks.resolve(&cfg.kafka);
    let rejoin_when_idle = cfg
        .rejoin_when_idle
        .or_else(|| quirks.default_rejoin_when_idle());
    if quirks != BrokerQuirks::None {
        tracing::info!(worker = %name, ?quirks, "working around the embedded broker's quirks");
    }
    let topics = worker.topics();
    let exactly_once = cfg.guarantee == Guarantee::ExactlyOnce;
    if exactly_once && quirks == BrokerQuirks::Tansu {
        return Err(RunError::Setup(
            "the embedded broker has no transactions: run with --guarantee effectively-once, or \
             point --bootstrap-servers at Apache Kafka"
                .into(),
        ));
    }
    let transactional_id = cfg
        .transactional_id
        .clone()
        .unwrap_or_else(|| default_transactional_id(&cfg.group));
    let producer: OutputProducer = if exactly_once {
        tracing::info!(worker = %name, transactional_id, "exactly-once: transactional producer");
        transactional_producer(&cfg, &transactional_id)?
    } else {
        cfg.kafka
            .producer()
            .create_with_context(DeliveryContext::default())?
    };
    let reader = PartitionReader::new(&cfg.kafka, Duration::from_secs(30))
        .map_err(|e| RunError::Setup(e.to_string()))?;
    let dlq_partitions = reader
        .partition_count(&cfg.dead_letters)
        .map_err(|e| RunError::Setup(e.to_string()))?;
    if dlq_partitions == 0 {
        return Err(RunError::Setup(format!(
            "topic {} does not exist (run `tradestream topics apply`)",
            cfg.dead_letters
        )));
    }
    let core = Arc::new(Mutex::new(Core {
        worker,
        producer,
        txn: Txn {
            enabled: exactly_once,
            ..Txn::default()
        },
        transactional_id,
        reader,
        name: name.clone(),
        dlq_partitions,
        quirks,
        assigned: BTreeMap::new(),
        metrics: BatchMetrics::new(&name),
        failure: None,
        cfg: cfg.clone(),
    }));
    let mut consumer_cfg = cfg.kafka.group_consumer(&cfg.group);
    quirks.tune_consumer(&cfg.kafka, &mut consumer_cfg);
    let consumer: BaseConsumer<LoopContext<W>> = consumer_cfg.create_with_context(LoopContext {
        core: core.clone(),
        worker: name.clone(),
    })?;
    let subscription: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&subscription)?;
    tracing::info!(worker = %name, group = %cfg.group, topics = ?topics, "worker started");

    let result = (|| -> Result<(), RunError> {
        let mut idle_since = Instant::now();
        let mut cadence = Cadence::new(&cfg, Instant::now());
        while !shutdown.is_triggered() {
            if let Some(limit) = rejoin_when_idle {
                if !lock(&core).assigned.is_empty() {
                    idle_since = Instant::now();
                } else if idle_since.elapsed() >= limit {
                    tracing::info!(worker = %name, "no partitions for a while; re-joining the group");
                    consumer.unsubscribe();
                    consumer.subscribe(&subscription)?;
                    idle_since = Instant::now();
                }
            }
            // Wait for the first record at most until the next commit is due; then take what
            // has arrived, without waiting, up to a round's worth.
            let mut taken = 0;
            let mut wait = cadence.wait(Instant::now());
            while taken < cfg.max_batch {
                let Some(next) = consumer.poll(wait) else {
                    break;
                };
                wait = Duration::ZERO;
                let m = match next {
                    Ok(m) => m,
                    Err(KafkaError::PartitionEOF(_)) => continue,
                    Err(e) => {
                        tracing::warn!(worker = %name, error = %e, "consumer error");
                        break;
                    }
                };
                taken += 1;
                let mut c = lock(&core);
                match c.gate(m.topic(), m.partition(), m.offset()) {
                    Gate::Process => c.process(&m)?,
                    Gate::Skip => {}
                    Gate::Refetch(at) => {
                        drop(c);
                        consumer.seek(
                            m.topic(),
                            m.partition(),
                            Offset::Offset(at),
                            Duration::from_secs(10),
                        )?;
                    }
                }
            }
            cadence.took(taken);
            let mut c = lock(&core);
            if let Some(e) = c.failure.take() {
                return Err(e);
            }
            for (topic, p, at) in c.refetches_due() {
                consumer.seek(&topic, p, Offset::Offset(at), Duration::from_secs(10))?;
            }
            let per_batch = !c.txn.enabled && c.worker.checkpoints() == Checkpoints::State;
            if cadence.due(Instant::now(), per_batch) {
                c.checkpoint(&consumer, Moment::Interval)?;
                cadence.checkpointed(Instant::now());
            }
            c.after_batch(false)?;
        }
        let mut c = lock(&core);
        c.checkpoint(&consumer, Moment::Final)?;
        c.after_batch(true)?;
        // What the last round wrote (e.g. snapshots) is in a transaction still open, or in
        // flight.
        c.checkpoint(&consumer, Moment::Final)?;
        if !c.txn.enabled {
            flush(&c.producer)?;
        }
        if c.txn.aborted > 0 {
            tracing::info!(worker = %name, aborted = c.txn.aborted, "transactions aborted");
        }
        Ok(())
    })();
    if result.is_ok() {
        consumer.unsubscribe();
        // Serve the revocation so the group hands the partitions over at once.
        let _ = consumer.poll(Duration::from_millis(500));
    }
    drop(consumer);
    result?;
    let core = Arc::try_unwrap(core)
        .map_err(|_| RunError::Setup("the consumer outlived the loop".into()))?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    Ok(core.worker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cadence(now: Instant) -> Cadence {
        let mut cfg = LoopConfig::new(KafkaConfig::new("127.0.0.1:1"), "g");
        cfg.commit_interval = Duration::from_millis(100);
        cfg.max_batch = 1_000;
        Cadence::new(&cfg, now)
    }

    #[test]
    fn checkpoints_come_every_interval_however_many_records_arrive() {
        let t0 = Instant::now();
        let mut c = cadence(t0);
        let ms = Duration::from_millis;
        assert!(!c.due(t0, false));
        // Far more than a batch, but the matcher's offsets-only checkpoints wait for the clock.
        c.took(50_000);
        assert!(!c.due(t0 + ms(99), false));
        assert!(c.due(t0 + ms(100), false));
        c.checkpointed(t0 + ms(103));
        assert!(
            !c.due(t0 + ms(150), false),
            "the interval restarts at the checkpoint"
        );
        assert!(c.due(t0 + ms(203), false));
        // A quiet loop still checkpoints on time: nothing taken, the clock alone.
        c.checkpointed(t0 + ms(203));
        assert!(c.due(t0 + ms(303), false));
    }

    #[test]
    fn store_checkpoints_also_come_after_a_batch_of_records() {
        let t0 = Instant::now();
        let mut c = cadence(t0);
        c.took(999);
        assert!(!c.due(t0, true));
        c.took(1);
        assert!(
            c.due(t0, true),
            "max_batch records: a store transaction is due"
        );
        assert!(!c.due(t0, false), "but not an offsets-only checkpoint");
        c.checkpointed(t0);
        assert!(!c.due(t0, true), "the count restarts at the checkpoint");
    }

    #[test]
    fn the_wait_for_input_ends_when_the_next_checkpoint_is_due() {
        let t0 = Instant::now();
        let c = cadence(t0);
        assert_eq!(c.wait(t0), Duration::from_millis(100));
        assert_eq!(
            c.wait(t0 + Duration::from_millis(70)),
            Duration::from_millis(30)
        );
        assert_eq!(c.wait(t0 + Duration::from_millis(500)), Duration::ZERO);
        let mut slow = LoopConfig::new(KafkaConfig::new("127.0.0.1:1"), "g");
        slow.commit_interval = Duration::from_secs(5);
        let c = Cadence::new(&slow, t0);
        assert_eq!(
            c.wait(t0),
            Cadence::MAX_WAIT,
            "a quiet loop looks around often"
        );
    }
}
