//! The [`Worker`] trait and what the loop hands it (docs/design.md §7).
//!
//! A worker implements [`Worker`]: what to do when a partition is assigned (restore, and say
//! where to start), with each input record, at each checkpoint and when a partition is revoked.
//! The loop ([`crate::runner`]) owns everything else. From its callbacks a worker reaches the
//! cluster only through its [`Context`]: produce (tracked per input record), read partitions by
//! offset, dead-letter, and the loop's clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::acks::Slot;
use crate::client_error::ClientError;
use crate::dead_letter::Poison;
use crate::headers::{Provenance, ProvenanceBuf};
use crate::io::{Clock, LogReader, OutRecord};
use crate::metrics::BatchMetrics;
use crate::partition::ReadError;
use crate::{BrokerQuirks, Guarantee, KafkaConfig};

/// An error a worker raises. A transient client error inside it (see
/// [`crate::io::is_transient`]) makes the loop restore its partitions and go on; anything else
/// stops the loop (nothing after the last commit is lost: a restart resumes from there).
pub type WorkerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the loop stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A client call failed and trying again cannot help.
    #[error("kafka: {0}")]
    Client(#[from] ClientError),
    /// The worker cannot start.
    #[error("cannot start: {0}")]
    Setup(#[from] SetupError),
    /// Outputs were not acknowledged when the loop stopped; nothing past them was committed, a
    /// restart writes them again.
    #[error("output not acknowledged: {0}")]
    Delivery(#[source] Arc<ClientError>),
    /// The worker failed.
    #[error(transparent)]
    Worker(WorkerError),
}

impl From<rdkafka::error::KafkaError> for RunError {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        RunError::Client(e.into())
    }
}

/// Why a worker cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Exactly-once was asked for on a broker without transactions.
    #[error(
        "the embedded broker has no transactions: run with --guarantee effectively-once, or \
         point --bootstrap-servers at Apache Kafka"
    )]
    NoTransactions,
    /// A topic the worker needs does not exist.
    #[error("topic {0} does not exist (run `tradestream topics apply`)")]
    MissingTopic(String),
    /// The cluster could not be read at start.
    #[error("cannot read the cluster: {0}")]
    Cluster(#[source] ReadError),
    /// The worker cannot give the guarantee asked for.
    #[error(
        "the {worker} cannot run with --guarantee exactly-once: {why}. Run it with --guarantee \
         effectively-once (the default; TRADESTREAM_PROCESSING_GUARANTEE)"
    )]
    GuaranteeRefused {
        /// The worker.
        worker: String,
        /// Why.
        why: String,
    },
    /// A setting that cannot work.
    #[error("{0}")]
    Invalid(String),
    /// The worker's saved position (a snapshot, a store's offset) lies beyond the end of its
    /// input partition: the topic was re-created or lost its data. Reading on would skip every
    /// record below the position without a word.
    #[error(
        "{worker}: the saved position of {topic} partition {partition} is offset {next}, beyond \
         the partition's end ({end}): the topic was re-created or lost data, and reading on would \
         skip every record below {next}. {way_out}; refusing to start"
    )]
    PositionBeyondLog {
        /// The worker.
        worker: String,
        /// Input topic.
        topic: String,
        /// Input partition.
        partition: i32,
        /// The saved next offset.
        next: i64,
        /// The partition's end (high watermark).
        end: i64,
        /// How to start afresh ([`Worker::start_afresh`]).
        way_out: &'static str,
    },
    /// A service the worker needs (a store, a cache) could not be opened.
    #[error("{what}: {source}")]
    Service {
        /// Which service.
        what: String,
        /// Why.
        #[source]
        source: WorkerError,
    },
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
    /// How client calls outside the steady state (a synchronous commit at a hand-over or a
    /// stop) are tried again after a transient error.
    pub retry: crate::retry::Retry,
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
pub trait Worker {
    /// Name, for headers, logs and metric labels (e.g. `matcher`).
    fn name(&self) -> &str;

    /// Input topics.
    fn topics(&self) -> Vec<String>;

    /// How the worker's progress is made durable (the safe default: [`Checkpoints::State`]).
    fn checkpoints(&self) -> Checkpoints {
        Checkpoints::State
    }

    /// `topic`/`partition` was assigned (or must be restored again after a failure). Restore
    /// its state and return the next offset to read (0: from the beginning). `committed` is the
    /// group's committed offset (-1: none).
    fn assign(
        &mut self,
        ctx: &mut Context<'_>,
        topic: &str,
        partition: i32,
        committed: i64,
    ) -> Result<i64, WorkerError>;

    /// What to tell an operator whose saved position lies beyond the end of the input (see
    /// [`SetupError::PositionBeyondLog`]): the documented way to start afresh.
    fn start_afresh(&self) -> &'static str {
        "The store holds another history: point the worker at a new store (--store) and it \
         rebuilds everything from the topics"
    }

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

    /// `topic`/`partition` was revoked, after its last batch was checkpointed and committed, or
    /// is about to be restored again after a failure: forget everything about it that was not
    /// checkpointed.
    fn revoke(&mut self, _topic: &str, _partition: i32) {}
}

/// The input record being processed: the slot of its partition and its offset.
pub(crate) type Current = Option<(Slot, i64)>;

/// Where the loop's outputs go: the producer and its transaction (see `runner::producer`).
pub(crate) trait Output {
    /// Produces `record`; written while input record `current` is processed, it counts as that
    /// record's output.
    fn send(&mut self, record: &OutRecord<'_>, current: Current) -> Result<(), WorkerError>;

    /// Waits until everything sent so far is acknowledged.
    fn flush(&mut self) -> Result<(), WorkerError>;

    /// Every record of the partition of `slot` below the answer is processed and all its outputs
    /// are acknowledged; `next_offset` is the partition's next offset to process.
    fn acknowledged(&self, slot: Slot, next_offset: i64) -> Option<i64>;
}

/// The loop's view of its assigned partitions, for [`Context::acknowledged`].
pub(crate) trait Assignment {
    /// The acknowledgement slot and next offset of an assigned partition.
    fn slot(&self, topic: &str, partition: i32) -> Option<(Slot, i64)>;
}

/// What a worker can do from its callbacks: produce, read partitions, dead-letter, tell the
/// time.
pub struct Context<'a> {
    pub(crate) out: &'a mut dyn Output,
    pub(crate) reader: &'a dyn LogReader,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) dead_letters: &'a str,
    pub(crate) dlq_partitions: i32,
    pub(crate) worker: &'a str,
    pub(crate) metrics: &'a mut BatchMetrics,
    pub(crate) assignment: &'a dyn Assignment,
    pub(crate) current: Current,
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
        headers: &[(&str, &[u8])],
    ) -> Result<(), WorkerError> {
        self.write(topic, partition, key, Some(payload), headers)
    }

    /// Produces a tombstone for `key` (compacted topics).
    pub fn send_tombstone(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: &[u8],
    ) -> Result<(), WorkerError> {
        self.write(topic, partition, Some(key), None, &[])
    }

    fn write(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> Result<(), WorkerError> {
        let record = OutRecord {
            topic,
            partition,
            key,
            payload,
            headers,
        };
        self.out.send(&record, self.current)?;
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
        let mut buf = ProvenanceBuf::default();
        let provenance = Provenance {
            source_topic: source.topic,
            source_partition: source.partition,
            source_offset: source.offset,
            seq,
            worker: self.worker,
        };
        let pairs = provenance.pairs(&mut buf);
        self.send(topic, partition, key, value, &pairs)
    }

    /// Waits until everything sent so far is acknowledged.
    pub fn flush(&mut self) -> Result<(), WorkerError> {
        self.out.flush()
    }

    /// Every record of `topic`/`partition` below the answer is processed and all its outputs
    /// are acknowledged (`None`: not assigned). Under exactly-once that is every record
    /// processed: what they wrote commits or aborts together with anything written now.
    pub fn acknowledged(&self, topic: &str, partition: i32) -> Option<i64> {
        let (slot, next_offset) = self.assignment.slot(topic, partition)?;
        self.out.acknowledged(slot, next_offset)
    }

    /// Reads partitions by offset (restores, dedup scans).
    pub fn reader(&self) -> &dyn LogReader {
        self.reader
    }

    /// The loop's clock (the system's, or the simulation's): take the time from here, never
    /// from `Instant::now`, so that a simulated run is deterministic.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Milliseconds since the Unix epoch on the loop's clock (metrics and logs only).
    pub fn unix_ms(&self) -> i64 {
        self.clock.unix_ms()
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
