//! The notifier as a [`Worker`] of the shared consumer loop.
//!
//! `executions` → the `notifications` topic (keyed by account, so one account's notifications
//! stay in one partition, in execution order) and the notifications table. A batch's rows are
//! written with its input offsets in one [`Store::write`], after the batch's records are
//! acknowledged by the broker; on assignment the worker resumes from the store's offsets.
//! So the table is exactly-once, and the topic at-least-once: a crash between the broker's
//! acknowledgement and the store write sends that batch's notifications again, unchanged.
//!
//! Where duplicates are dropped: the worker itself skips nothing on a replay (it resumes from the
//! store's offsets, so it re-sends only what was not stored). The table drops them by its key,
//! `((account), ts_ms, source_partition, seq)` (SQLite: `ON CONFLICT DO NOTHING`; Scylla: the
//! same row again). Topic readers drop them by `(account, source_partition, seq)`
//! ([`Dedup`](crate::record::Dedup)): the record's key is the account, its value and its
//! `source-partition` and `seq` headers give the rest. The account is part of the key because
//! `seq` is the execution's: a trade between two accounts is two notifications with one seq,
//! one per account (and a self-match one combined notification).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tradestream_codec::avro::{self, Framing};
use tradestream_runtime::dead_letter::Poison;
use tradestream_runtime::{
    Context, KafkaConfig, LoopConfig, Outcome, Position, Record, RunError, Shutdown, Stats, Worker,
    WorkerError,
};
use tradestream_store::{Batch, OffsetRow, Store};

use crate::notify::NotificationRules;
use crate::record;

/// Settings of the notifier.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// The consumer loop. Its group is also the consumer name of the offsets in the store. Only
    /// [`Guarantee::EffectivelyOnce`](tradestream_runtime::Guarantee): see [`Self::check`].
    pub run: LoopConfig,
    /// Name in headers, logs and metrics.
    pub worker: String,
    /// Input.
    pub executions: String,
    /// Output.
    pub notifications: String,
}

impl NotifierConfig {
    /// The notifier's consumer group (`--group`).
    pub const DEFAULT_GROUP: &'static str = "tradestream-notifier";

    /// Defaults (topics.yaml names), in group [`DEFAULT_GROUP`](Self::DEFAULT_GROUP) on `kafka`.
    pub fn new(kafka: KafkaConfig) -> Self {
        Self::with_loop(LoopConfig::new(kafka, Self::DEFAULT_GROUP))
    }

    /// Defaults (topics.yaml names) in the loop `run`.
    pub fn with_loop(run: LoopConfig) -> Self {
        NotifierConfig {
            run,
            worker: "notifier".into(),
            executions: "executions".into(),
            notifications: "notifications".into(),
        }
    }

    /// Refuses what the notifier cannot do: exactly-once. A batch is committed by its store
    /// write (rows and offsets together), which a Kafka transaction cannot include; a
    /// transaction aborted after the store write would lose the batch's notifications on the
    /// `notifications` topic for good (the store says their executions are done).
    pub fn check(&self) -> Result<(), RunError> {
        self.run.refuse_exactly_once(
            &self.worker,
            "its batches are committed by the store write, which a Kafka transaction cannot \
             include (the store is exactly-once without one); a transaction aborted after the \
             store write would lose the batch's notifications on the notifications topic",
        )
    }
}

tradestream_runtime::stats! {
    /// What the notifier did.
    pub struct NotifierStats {
        /// Input records.
        records_in,
        /// Notifications produced and stored.
        notifications,
        /// Records sent to dead letters.
        dead_letters,
    }
}

/// The notifier.
#[derive(Debug)]
pub struct Notifier {
    cfg: NotifierConfig,
    store: Box<dyn Store>,
    rules: NotificationRules,
    batch: Batch,
    stats: Arc<NotifierStats>,
}

impl Notifier {
    /// A notifier writing to `store`.
    pub fn new(cfg: NotifierConfig, store: Box<dyn Store>, stats: Arc<NotifierStats>) -> Self {
        Notifier {
            cfg,
            store,
            rules: NotificationRules::new(),
            batch: Batch::default(),
            stats,
        }
    }
}

impl Worker for Notifier {
    fn name(&self) -> &str {
        &self.cfg.worker
    }

    fn topics(&self) -> Vec<String> {
        vec![self.cfg.executions.clone()]
    }

    fn assign(
        &mut self,
        _ctx: &mut Context<'_>,
        topic: &str,
        partition: i32,
        _committed: i64,
    ) -> Result<i64, WorkerError> {
        Ok(self
            .store
            .resume_at(&self.cfg.run.group, topic, partition)?)
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        record: &Record<'_>,
    ) -> Result<Outcome, WorkerError> {
        self.stats.records_in.fetch_add(1, Ordering::Relaxed);
        let ev = match avro::decode_event(record.payload) {
            Ok(ev) => ev,
            Err(e) => {
                self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                return Ok(Outcome::Poison(Poison::decode(e)));
            }
        };
        for row in self.rules.notify(&ev) {
            let value = record::encode(&row, Framing::SingleObject)?;
            ctx.send_derived(
                &self.cfg.notifications,
                None,
                Some(row.account.as_bytes()),
                &value,
                record,
                u64::try_from(row.seq).unwrap_or(0),
            )?;
            self.batch.notifications.push(row);
        }
        Ok(Outcome::Done)
    }

    fn checkpoint(
        &mut self,
        _ctx: &mut Context<'_>,
        positions: &[Position],
    ) -> Result<(), WorkerError> {
        self.batch.offsets = positions
            .iter()
            .map(|p| OffsetRow::at(&self.cfg.run.group, &p.topic, p.partition, p.next_offset))
            .collect();
        self.store.write(&self.batch)?;
        self.stats
            .notifications
            .fetch_add(self.batch.notifications.len() as u64, Ordering::Relaxed);
        self.batch = Batch::default();
        Ok(())
    }
}

/// Runs the notifier until `shutdown` is triggered or an error stops it; refuses a
/// configuration [`NotifierConfig::check`] refuses.
pub fn run(
    cfg: NotifierConfig,
    store: Box<dyn Store>,
    shutdown: &Shutdown,
    stats: Arc<NotifierStats>,
) -> Result<(), RunError> {
    cfg.check()?;
    let run = cfg.run.clone();
    tradestream_runtime::run(Notifier::new(cfg, store, stats.clone()), run, shutdown)?;
    tracing::info!(stats = %stats.summary(), "notifier stopped");
    Ok(())
}
