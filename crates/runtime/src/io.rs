//! The narrow interface between the consumer loop and a Kafka cluster (docs/design.md §7).
//!
//! The loop ([`crate::runner`]) and the workers never touch a Kafka client directly: they see
//! a [`GroupConsumer`] (group membership, records, rebalances, commits), a [`Producer`]
//! (idempotent or transactional writes whose delivery reports go to [`Deliveries`]), a
//! [`LogReader`] (reading partitions by offset, outside the group) and a [`Clock`]. The
//! runtime owns these traits; [`kafka`] implements them with librdkafka, and the deterministic
//! simulation (`crates/sim`) with a simulated cluster driven by one seeded scheduler.
//!
//! Rebalances are events, not callbacks: [`GroupConsumer::poll`] returns
//! [`Polled::Assigned`] or [`Polled::Revoked`], the loop restores or checkpoints, and only then
//! hands the partitions over with [`GroupConsumer::assign`] or [`GroupConsumer::unassign`]
//! (librdkafka's event API works this way; its rebalance callback is a wrapper around it).
//!
//! Errors are [`ClientError`]s, each either transient (a broker away, a leader moving, a
//! request timing out: the loop backs off and tries again, see [`crate::runner`]) or fatal.

pub mod kafka;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::acks::{Acks, Token};
pub use crate::client_error::ClientError;
use crate::headers::HeaderLookup;
use crate::partition::ReadError;

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`/`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// A record as a consumer or reader returns it.
pub trait InputMessage {
    /// Topic.
    fn topic(&self) -> &str;
    /// Partition.
    fn partition(&self) -> i32;
    /// Offset.
    fn offset(&self) -> i64;
    /// Key.
    fn key(&self) -> Option<&[u8]>;
    /// Value (`None`: a tombstone).
    fn payload(&self) -> Option<&[u8]>;
    /// Record timestamp, ms (create or log-append time), if it has one.
    fn timestamp_ms(&self) -> Option<i64>;
    /// Headers, if any.
    fn headers(&self) -> Option<&dyn HeaderLookup>;
}

/// One record read by a [`LogReader`].
pub struct Fetched<'a> {
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value (`None`: a tombstone).
    pub payload: Option<&'a [u8]>,
    /// Headers, if any.
    pub headers: Option<&'a dyn HeaderLookup>,
}

impl std::fmt::Debug for Fetched<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("offset", &self.offset)
            .field("bytes", &self.payload.map(<[u8]>::len))
            .finish_non_exhaustive()
    }
}

/// One output record.
#[derive(Debug, Clone, Copy)]
pub struct OutRecord<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition (`None`: by key, murmur2 like the Java client).
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value (`None`: a tombstone).
    pub payload: Option<&'a [u8]>,
    /// Headers, in order.
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// What one [`GroupConsumer::poll`] brought.
#[derive(Debug)]
pub enum Polled<M> {
    /// Nothing within the wait.
    Nothing,
    /// An input record.
    Record(M),
    /// The group gave this member partitions: restore them, then [`GroupConsumer::assign`].
    Assigned(Vec<TopicPartition>),
    /// The group takes partitions away: finish them, then [`GroupConsumer::unassign`]. `lost`:
    /// the membership was lost (session expired, fenced), so another member may own them
    /// already and nothing may be handed over.
    Revoked {
        /// The partitions.
        partitions: Vec<TopicPartition>,
        /// Whether the assignment was lost rather than handed over.
        lost: bool,
    },
    /// An asynchronous commit finished.
    Committed {
        /// The offsets it carried.
        offsets: Vec<(TopicPartition, i64)>,
        /// Its result.
        result: Result<(), ClientError>,
    },
    /// The consumer reported an error (it goes on by itself; the loop counts it).
    Error(ClientError),
}

/// Whether a commit waits for the broker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitMode {
    /// Returns at once; the result comes back as [`Polled::Committed`].
    Async,
    /// Waits for the result.
    Sync,
}

/// Where a newly assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Its first offset.
    Beginning,
    /// This offset.
    Offset(i64),
}

impl StartAt {
    /// Offset `next` (0 or below: the beginning).
    pub fn from_next(next: i64) -> Self {
        if next <= 0 {
            StartAt::Beginning
        } else {
            StartAt::Offset(next)
        }
    }
}

/// A group consumer (cooperative rebalancing, manual commits, `read_committed`).
pub trait GroupConsumer {
    /// The records [`GroupConsumer::poll`] returns.
    type Message<'a>: InputMessage
    where
        Self: 'a;
    /// The group's metadata, which a transactional producer sends with its offsets.
    type Group;

    /// Joins the group for `topics`.
    fn subscribe(&self, topics: &[String]) -> Result<(), ClientError>;

    /// Leaves the group (after the revocation is served by `poll`).
    fn unsubscribe(&self);

    /// The next event, waiting at most `timeout` for one.
    fn poll(&self, timeout: Duration) -> Polled<Self::Message<'_>>;

    /// Starts fetching newly assigned partitions from where the loop restored them.
    fn assign(&self, partitions: &[(TopicPartition, StartAt)]) -> Result<(), ClientError>;

    /// Stops fetching revoked partitions.
    fn unassign(&self, partitions: &[TopicPartition]) -> Result<(), ClientError>;

    /// Moves the fetch position of an assigned partition.
    fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<(), ClientError>;

    /// The group's committed offset (`None`: nothing committed).
    fn committed(&self, tp: &TopicPartition) -> Result<Option<i64>, ClientError>;

    /// Commits offsets (each the next offset to read).
    fn commit(
        &self,
        offsets: &[(TopicPartition, i64)],
        mode: CommitMode,
    ) -> Result<(), ClientError>;

    /// The group's metadata for a transactional commit (`None`: not in a group now).
    fn group_metadata(&self) -> Option<Self::Group>;
}

/// A producer whose delivery reports go to the [`Deliveries`] it was made with, tagged with
/// the [`Token`] each record was sent with.
pub trait Producer {
    /// The group metadata [`Producer::send_offsets_to_transaction`] takes.
    type Group;

    /// Queues one record. [`SendError::QueueFull`]: the queue is full, try again once reports
    /// have freed it.
    fn send(&self, record: &OutRecord<'_>, token: Token) -> Result<(), SendError>;

    /// Waits until every record sent so far is reported; `false` if `timeout` passed first.
    fn wait_settled(&self, timeout: Duration) -> bool;

    /// Waits a moment for the queue to make room (after [`SendError::QueueFull`]).
    fn wait_for_room(&self);

    /// Begins a transaction (transactional producers only).
    fn begin_transaction(&self) -> Result<(), ClientError>;

    /// Adds input offsets to the open transaction, fenced by the group's generation.
    fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, i64)],
        group: &Self::Group,
        timeout: Duration,
    ) -> Result<(), ClientError>;

    /// Commits the open transaction.
    fn commit_transaction(&self, timeout: Duration) -> Result<(), ClientError>;

    /// Aborts the open transaction.
    fn abort_transaction(&self, timeout: Duration) -> Result<(), ClientError>;

    /// Replaces a transactional producer that hit a fatal error (e.g. a bumped epoch) with a new
    /// one of the same `transactional.id`, whose initialisation aborts what the old one left
    /// open.
    fn renew(&mut self) -> Result<(), ClientError>;
}

/// Why a record was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The producer's queue is full.
    #[error("the producer's queue is full")]
    QueueFull,
    /// The record was refused.
    #[error(transparent)]
    Failed(ClientError),
}

/// Reads partitions by offset, outside any consumer group (restores, dedup scans).
pub trait LogReader {
    /// Log start and high watermark of a partition. The high watermark may lag on some brokers;
    /// use it as a lower bound of the end.
    fn log_bounds(&self, topic: &str, partition: i32) -> Result<(i64, i64), ReadError>;

    /// Calls `f` on every record of `topic`/`partition` from offset `from` to the end of the
    /// partition as a fetch sees it. Start at a batch boundary (e.g. 0) or before the records
    /// wanted: the embedded broker answers a fetch inside a batch from the next one.
    fn scan(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        f: &mut dyn FnMut(&Fetched<'_>),
    ) -> Result<(), ReadError>;

    /// How many partitions `topic` has (0 when it does not exist).
    fn partition_count(&self, topic: &str) -> Result<i32, ReadError>;

    /// Log start and end of a partition, the end as a read finds it: the high watermark, or
    /// further when the broker's watermark lags what a fetch returns (the embedded broker's can
    /// lag by many records). Costs a read from just before the watermark: use it where a
    /// decision rests on the end (refusing a position or a history beyond it).
    fn fetched_bounds(&self, topic: &str, partition: i32) -> Result<(i64, i64), ReadError> {
        let (start, watermark) = self.log_bounds(topic, partition)?;
        let mut end = watermark;
        self.scan(topic, partition, (watermark - 1).max(start), &mut |m| {
            end = end.max(m.offset + 1);
        })?;
        Ok((start, end))
    }
}

/// Where the loop and the workers take the time from: the system clock, or the simulation's.
pub trait Clock {
    /// A monotonic instant.
    fn now(&self) -> Instant;
    /// Milliseconds since the Unix epoch (metrics and logs only, never decisions).
    fn unix_ms(&self) -> i64;
    /// Waits `d` (backing off before trying again).
    fn sleep(&self, d: Duration);
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Where a producer's delivery reports go: the acknowledgement tracker, shared between the
/// loop and whatever thread serves the reports.
#[derive(Debug, Default)]
pub struct Deliveries {
    acks: Mutex<Acks>,
    /// Signalled when the last output in flight is reported.
    settled: std::sync::Condvar,
}

impl Deliveries {
    /// The tracker; it is only held for a few instructions at a time.
    pub fn acks(&self) -> MutexGuard<'_, Acks> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A delivery report: `Ok` when the broker acknowledged the output, `Err` when it is lost.
    pub fn report(&self, token: Token, result: Result<(), ClientError>) {
        let mut acks = self.acks();
        acks.delivered(token, result);
        if acks.in_flight() == 0 {
            self.settled.notify_all();
        }
    }

    /// Waits on the system clock until every output sent so far is reported; `false` if
    /// `timeout` passed first.
    pub fn wait_settled(&self, timeout: Duration) -> bool {
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

/// Whether an error, or any error in its chain of sources, is a transient client error (or a
/// read that timed out): what the loop retries rather than stopping for.
pub fn is_transient(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut e: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = e {
        if let Some(c) = err.downcast_ref::<ClientError>() {
            return c.is_transient();
        }
        if let Some(r) = err.downcast_ref::<ReadError>() {
            return r.is_transient();
        }
        e = err.source();
    }
    false
}

#[cfg(test)]
mod tests;
