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
use std::sync::atomic::{AtomicU64, Ordering};

use tradestream_codec::avro::{self, Framing};
use tradestream_runtime::dead_letter::Poison;
use tradestream_runtime::{
    Context, LoopConfig, Outcome, Position, Record, RunError, Shutdown, Worker, WorkerError,
};
use tradestream_store::{Batch, OffsetRow, Store};

use crate::notify::Notifier as Rules;
use crate::record;

/// Settings of the notifier.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Name in headers, logs and metrics.
    pub worker: String,
    /// Consumer group; also the consumer name of the offsets in the store.
    pub group: String,
    /// Input.
    pub executions: String,
    /// Output.
    pub notifications: String,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            worker: "notifier".into(),
            group: "tradestream-notifier".into(),
            executions: "executions".into(),
            notifications: "notifications".into(),
        }
    }
}

/// What the notifier did.
#[derive(Debug, Default)]
pub struct NotifierStats {
    /// Input records.
    pub records_in: AtomicU64,
    /// Notifications produced and stored.
    pub notifications: AtomicU64,
    /// Records sent to dead letters.
    pub dead_letters: AtomicU64,
}

/// The notifier.
#[derive(Debug)]
pub struct NotifierWorker {
    cfg: NotifierConfig,
    store: Box<dyn Store>,
    rules: Rules,
    batch: Batch,
    stats: Arc<NotifierStats>,
}

impl NotifierWorker {
    /// A notifier writing to `store`.
    pub fn new(cfg: NotifierConfig, store: Box<dyn Store>, stats: Arc<NotifierStats>) -> Self {
        NotifierWorker {
            cfg,
            store,
            rules: Rules::new(),
            batch: Batch::default(),
            stats,
        }
    }
}

impl Worker for NotifierWorker {
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
        Ok(self.store.resume_at(&self.cfg.group, topic, partition)?)
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
            .map(|p| OffsetRow::at(&self.cfg.group, &p.topic, p.partition, p.next_offset))
            .collect();
        self.store.write(&self.batch)?;
        self.stats
            .notifications
            .fetch_add(self.batch.notifications.len() as u64, Ordering::Relaxed);
        self.batch = Batch::default();
        Ok(())
    }
}

/// Runs the notifier until `shutdown` is triggered or an error stops it. The loop's group is
/// the notifier's.
pub fn run(
    cfg: NotifierConfig,
    mut run: LoopConfig,
    store: Box<dyn Store>,
    shutdown: &Shutdown,
    stats: Arc<NotifierStats>,
) -> Result<(), RunError> {
    run.group.clone_from(&cfg.group);
    tradestream_runtime::worker::run(NotifierWorker::new(cfg, store, stats), run, shutdown)?;
    Ok(())
}
