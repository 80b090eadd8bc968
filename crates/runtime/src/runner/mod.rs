//! The consumer loop every worker shares (docs/design.md §7).
//!
//! [`Runner`] drives one [`Worker`] against a cluster reached through the runtime's own
//! interface ([`crate::io`]): librdkafka in production ([`run`]), the simulated cluster in the
//! deterministic simulation. One [`Runner::turn`] is one round of the loop:
//!
//! - poll: records, rebalances (restore on assignment, finish on revocation) and commit results,
//!   each handled by a named function ([`Core::record`], [`Core::assign`], [`Core::revoke`]);
//! - **nothing waits in the steady state**: records are processed as they arrive and their
//!   outputs produced at once; every output carries a token naming its input record, and the
//!   producer's delivery reports advance, per input partition, an "acknowledged up to" offset
//!   ([`crate::acks`]);
//! - every `commit_interval` (100 ms by default, as Kafka Streams commits under exactly-once) the
//!   loop commits progress, as the worker's [`Checkpoints`](crate::Checkpoints) asks
//!   (`checkpoint.rs`); under exactly-once everything written during one interval and its input
//!   offsets go in one transaction (`producer.rs`, `txn.rs`);
//! - input offsets are gated (`gate.rs`): a record below the partition's next offset is
//!   skipped (replayed fetch); a jump forward is a normal gap on Apache Kafka, and is fetched
//!   again from further back only on the embedded broker;
//! - dead letters, with headers naming the error and the source record;
//! - metrics (see [`crate::metrics`]) and a clean stop ([`Runner::stop`]).
//!
//! The loop is synchronous, like librdkafka's consumer; [`run`] runs it on the caller's thread.
//!
//! Layout: `core.rs` (the state every step shares, record processing, dead letters),
//! `rebalance.rs` (assignment, revocation, restoring partitions again), `checkpoint.rs`
//! (commits and transactions), `producer.rs` and `txn.rs` (the producer and its
//! transaction), `gate.rs` (the re-fetch gate), `cadence.rs` (when to checkpoint),
//! `partitions.rs` (the loop's view of its partitions).

mod cadence;
mod checkpoint;
mod core;
mod gate;
mod partitions;
mod producer;
mod rebalance;
mod txn;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Shutdown;
use crate::guarantee::Guarantee;
use crate::io::kafka::{KafkaConsumer, KafkaProducer};
use crate::io::{Clock, Deliveries, GroupConsumer, LogReader, Polled, Producer, SystemClock};
use crate::metrics::BatchMetrics;
use crate::partition::PartitionReader;
use crate::quirks::BrokerQuirks;
use crate::worker::{Checkpoints, LoopConfig, RunError, SetupError, Worker};

use self::cadence::Cadence;
use self::checkpoint::Moment;
use self::core::Core;
use self::partitions::Partitions;
use self::producer::Producing;

/// Runs `worker` until `shutdown` is triggered or an error stops it, and returns the worker. On
/// a clean stop it flushes, checkpoints and commits, calls [`Worker::after_batch`] with
/// `last = true`, and leaves the group so the partitions move at once.
pub fn run<W: Worker>(worker: W, cfg: LoopConfig, shutdown: &Shutdown) -> Result<W, RunError> {
    let name = worker.name().to_owned();
    let quirks = cfg.quirks.resolve(&cfg.kafka);
    if quirks != BrokerQuirks::None {
        tracing::info!(worker = %name, ?quirks, "working around the embedded broker's quirks");
    }
    let exactly_once = cfg.guarantee == Guarantee::ExactlyOnce;
    if exactly_once && quirks == BrokerQuirks::Tansu {
        return Err(SetupError::NoTransactions.into());
    }
    let deliveries = Arc::new(Deliveries::default());
    let producer = if exactly_once {
        let id = cfg
            .transactional_id
            .clone()
            .unwrap_or_else(|| default_transactional_id(&cfg.group));
        tracing::info!(worker = %name, transactional_id = id, "exactly-once: transactional producer");
        KafkaProducer::transactional(&cfg.kafka, &id, deliveries.clone())?
    } else {
        KafkaProducer::idempotent(&cfg.kafka, deliveries.clone())?
    };
    let reader =
        PartitionReader::new(&cfg.kafka, Duration::from_secs(30)).map_err(SetupError::Cluster)?;
    let consumer = KafkaConsumer::new(&cfg.kafka, &cfg.group, quirks, &name)?;
    let mut runner = Runner::new(
        worker,
        consumer,
        producer,
        deliveries,
        reader,
        SystemClock,
        cfg,
        quirks,
    )?;
    while !shutdown.is_triggered() {
        runner.turn()?;
    }
    runner.stop()
}

/// The default `transactional.id`: unique per process.
fn default_transactional_id(group: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!("{group}-{host}-{}", std::process::id())
}

/// One worker's consumer loop, turned one round at a time (see the module documentation).
pub struct Runner<W, C, P, R, K>
where
    W: Worker,
    C: GroupConsumer,
    P: Producer<Group = C::Group>,
    R: LogReader,
    K: Clock,
{
    consumer: C,
    core: Core<W, P, R, K>,
    cadence: Cadence,
    rejoin_when_idle: Option<Duration>,
    idle_since: Instant,
    subscription: Vec<String>,
}

impl<W, C, P, R, K> std::fmt::Debug for Runner<W, C, P, R, K>
where
    W: Worker,
    C: GroupConsumer,
    P: Producer<Group = C::Group>,
    R: LogReader,
    K: Clock,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("worker", &self.core.name)
            .field("partitions", &self.core.parts)
            .finish_non_exhaustive()
    }
}

impl<W, C, P, R, K> Runner<W, C, P, R, K>
where
    W: Worker,
    C: GroupConsumer,
    P: Producer<Group = C::Group>,
    R: LogReader,
    K: Clock,
{
    /// A loop for `worker`, subscribed to its topics. `producer` reports to `deliveries`;
    /// `quirks` are resolved (not [`BrokerQuirks::Auto`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        worker: W,
        consumer: C,
        producer: P,
        deliveries: Arc<Deliveries>,
        reader: R,
        clock: K,
        cfg: LoopConfig,
        quirks: BrokerQuirks,
    ) -> Result<Self, RunError> {
        let name = worker.name().to_owned();
        let exactly_once = cfg.guarantee == Guarantee::ExactlyOnce;
        let dlq_partitions = reader
            .partition_count(&cfg.dead_letters)
            .map_err(SetupError::Cluster)?;
        if dlq_partitions == 0 {
            return Err(SetupError::MissingTopic(cfg.dead_letters.clone()).into());
        }
        let subscription = worker.topics();
        consumer.subscribe(&subscription)?;
        tracing::info!(worker = %name, group = %cfg.group, topics = ?subscription, "worker started");
        let now = clock.now();
        let rejoin_when_idle = cfg
            .rejoin_when_idle
            .or_else(|| quirks.default_rejoin_when_idle());
        Ok(Runner {
            consumer,
            cadence: Cadence::new(&cfg, now),
            rejoin_when_idle,
            idle_since: now,
            subscription,
            core: Core {
                worker,
                out: Producing::new(producer, deliveries, exactly_once),
                reader,
                clock,
                metrics: BatchMetrics::new(&name),
                name,
                dlq_partitions,
                quirks,
                parts: Partitions::default(),
                cfg,
            },
        })
    }

    /// The worker.
    pub fn worker(&self) -> &W {
        &self.core.worker
    }

    /// One round of the loop: wait for the first record at most until the next commit is due,
    /// take what has arrived up to a round's worth, then look at the re-fetch timers, commit if
    /// due and let the worker act on the round.
    pub fn turn(&mut self) -> Result<(), RunError> {
        let now = self.core.clock.now();
        self.rejoin_if_idle(now)?;
        let mut taken = 0;
        let mut wait = self.cadence.wait(now);
        while taken < self.core.cfg.max_batch {
            match self.consumer.poll(wait) {
                Polled::Nothing => break,
                Polled::Record(m) => {
                    wait = Duration::ZERO;
                    taken += 1;
                    self.core.record(&self.consumer, &m)?;
                }
                Polled::Assigned(partitions) => {
                    self.core.assign(&self.consumer, &partitions)?;
                    break;
                }
                Polled::Revoked { partitions, lost } => {
                    self.core.revoke(&self.consumer, &partitions, lost)?;
                    break;
                }
                Polled::Committed { offsets, result } => {
                    self.core.commit_result(&offsets, result);
                    break;
                }
                Polled::Error(e) => {
                    tracing::warn!(worker = %self.core.name, error = %e, "consumer error");
                    break;
                }
            }
        }
        self.cadence.took(taken);
        self.core.recover_losses(&self.consumer)?;
        self.core.refetches_due(&self.consumer)?;
        let now = self.core.clock.now();
        let per_batch =
            !self.core.out.txn().enabled() && self.core.worker.checkpoints() == Checkpoints::State;
        if self.cadence.due(now, per_batch) {
            self.core.checkpoint(&self.consumer, Moment::Interval)?;
            self.cadence.checkpointed(self.core.clock.now());
        }
        self.core.after_batch(false)
    }

    /// Re-joins the group after a while without partitions, when the broker's quirks call for
    /// it (the embedded broker does not rebalance when a member's session expires).
    fn rejoin_if_idle(&mut self, now: Instant) -> Result<(), RunError> {
        let Some(limit) = self.rejoin_when_idle else {
            return Ok(());
        };
        if !self.core.parts.is_empty() {
            self.idle_since = now;
        } else if now.saturating_duration_since(self.idle_since) >= limit {
            tracing::info!(worker = %self.core.name, "no partitions for a while; re-joining the group");
            self.consumer.unsubscribe();
            self.consumer.subscribe(&self.subscription)?;
            self.idle_since = now;
        }
        Ok(())
    }

    /// Stops cleanly: flushes, checkpoints and commits, calls [`Worker::after_batch`] with
    /// `last = true` (e.g. final snapshots) and commits what it wrote, then leaves the group so
    /// the partitions move at once. Returns the worker.
    pub fn stop(mut self) -> Result<W, RunError> {
        if !self.core.out.txn().enabled() {
            // Outputs lost now are written again by the next owner's restore.
            self.core.out.flush()?;
        }
        self.core.checkpoint(&self.consumer, Moment::Final)?;
        self.core.after_batch(true)?;
        // What the last round wrote (e.g. snapshots) is in a transaction still open, or in
        // flight.
        self.core.checkpoint(&self.consumer, Moment::Final)?;
        if !self.core.out.txn().enabled() {
            self.core.out.flush()?;
        }
        if self.core.out.aborted() > 0 {
            tracing::info!(worker = %self.core.name, aborted = self.core.out.aborted(), "transactions aborted");
        }
        self.consumer.unsubscribe();
        // Serve the revocation so the group hands the partitions over at once.
        for _ in 0..5 {
            if self.core.parts.is_empty() {
                break;
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                Polled::Revoked { partitions, lost } => {
                    self.core.revoke(&self.consumer, &partitions, lost)?;
                }
                Polled::Nothing | Polled::Record(_) | Polled::Error(_) => {}
                Polled::Assigned(partitions) => self.core.assign(&self.consumer, &partitions)?,
                Polled::Committed { offsets, result } => self.core.commit_result(&offsets, result),
            }
        }
        Ok(self.core.worker)
    }
}

#[cfg(test)]
mod tests;
