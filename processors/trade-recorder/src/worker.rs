//! The trade recorder as a [`Worker`] of the shared consumer loop.
//!
//! `trades` → trade tables; `executions` → order state. Everything a batch produces is written
//! in one [`Store::write`] together with the input offsets it reaches, and on assignment the
//! worker resumes from the offsets in the store, not from the group's commits: with SQLite (one
//! transaction per batch) every record lands exactly once; with Scylla, rows are idempotent by
//! `(source partition, seq)` and offsets are written last, so a replay rewrites the same rows.
//! Dead letters are at-least-once: one sent after the last stored batch is sent again by the
//! replay after a crash (its headers name the same source offset).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tradestream_codec::avro::{self, DecodedKind};
use tradestream_runtime::dead_letter::Poison;
use tradestream_runtime::{
    Context, LoopConfig, Outcome, Position, Record, RunError, Shutdown, Worker, WorkerError,
};
use tradestream_store::{Batch, OffsetRow, Store, StoreError};

use crate::fold::{OrderFold, trade_row};

/// Settings of the trade recorder.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Name in headers, logs and metrics.
    pub worker: String,
    /// Consumer group; also the consumer name of the offsets in the store.
    pub group: String,
    /// Input: fills.
    pub trades: String,
    /// Input: order lifecycle.
    pub executions: String,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            worker: "trade-recorder".into(),
            group: "tradestream-trade-recorder".into(),
            trades: "trades".into(),
            executions: "executions".into(),
        }
    }
}

/// What the recorder did (the demo and tests read these).
#[derive(Debug, Default)]
pub struct RecorderStats {
    /// Input records.
    pub records_in: AtomicU64,
    /// Trade rows written (each trade once, counted when its batch is in the store).
    pub trades_stored: AtomicU64,
    /// Order-state rows written.
    pub orders_stored: AtomicU64,
    /// Records sent to dead letters.
    pub dead_letters: AtomicU64,
    /// Batches written.
    pub batches: AtomicU64,
}

/// The trade recorder.
#[derive(Debug)]
pub struct TradeRecorder {
    cfg: RecorderConfig,
    store: Box<dyn Store>,
    fold: OrderFold,
    batch: Batch,
    stats: Arc<RecorderStats>,
}

impl TradeRecorder {
    /// A recorder writing to `store`.
    pub fn new(cfg: RecorderConfig, store: Box<dyn Store>, stats: Arc<RecorderStats>) -> Self {
        TradeRecorder {
            cfg,
            store,
            fold: OrderFold::new(),
            batch: Batch::default(),
            stats,
        }
    }

    fn execution(&mut self, ev: &avro::DecodedEvent) -> Result<Outcome, WorkerError> {
        let TradeRecorder {
            store, fold, batch, ..
        } = self;
        let mut failed: Option<StoreError> = None;
        // The fold holds every order of the batch in flight (terminal ones are evicted only once
        // written), so what it does not hold is in the store or nowhere.
        let folded = fold.apply(ev, |symbol, id| {
            store.order(symbol, id).unwrap_or_else(|e| {
                failed.get_or_insert(e);
                None
            })
        });
        if let Some(e) = failed {
            return Err(Box::new(e));
        }
        match folded {
            Ok(rows) => {
                batch.orders.extend(rows);
                Ok(Outcome::Done)
            }
            Err(e) => Ok(Outcome::Poison(Poison::new("process", e.to_string()))),
        }
    }
}

impl Worker for TradeRecorder {
    fn name(&self) -> &str {
        &self.cfg.worker
    }

    fn topics(&self) -> Vec<String> {
        vec![self.cfg.trades.clone(), self.cfg.executions.clone()]
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
        _ctx: &mut Context<'_>,
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
        let outcome = if record.topic == self.cfg.trades {
            if let DecodedKind::Trade { .. } = ev.kind {
                self.batch.trades.extend(trade_row(&ev));
                Outcome::Done
            } else {
                Outcome::Poison(Poison::new(
                    "process",
                    format!("a {} event on the trades topic", ev.kind.name()),
                ))
            }
        } else {
            self.execution(&ev)?
        };
        if let Outcome::Poison(_) = outcome {
            self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
        }
        Ok(outcome)
    }

    fn checkpoint(
        &mut self,
        _ctx: &mut Context<'_>,
        positions: &[Position],
    ) -> Result<(), WorkerError> {
        self.batch.offsets = offset_rows(&self.cfg.group, positions);
        self.store.write(&self.batch)?;
        self.fold.evict_terminal();
        let s = &self.stats;
        s.trades_stored
            .fetch_add(self.batch.trades.len() as u64, Ordering::Relaxed);
        s.orders_stored
            .fetch_add(self.batch.orders.len() as u64, Ordering::Relaxed);
        s.batches.fetch_add(1, Ordering::Relaxed);
        self.batch = Batch::default();
        Ok(())
    }

    fn revoke(&mut self, _topic: &str, _partition: i32) {
        // Another worker may update these orders now: forget them, the store will tell.
        self.fold = OrderFold::new();
    }
}

/// The offset rows of a checkpoint.
pub fn offset_rows(consumer: &str, positions: &[Position]) -> Vec<OffsetRow> {
    positions
        .iter()
        .map(|p| OffsetRow::at(consumer, &p.topic, p.partition, p.next_offset))
        .collect()
}

/// Runs the trade recorder until `shutdown` is triggered or an error stops it. The loop's group
/// is the recorder's.
pub fn run(
    cfg: RecorderConfig,
    mut run: LoopConfig,
    store: Box<dyn Store>,
    shutdown: &Shutdown,
    stats: Arc<RecorderStats>,
) -> Result<(), RunError> {
    run.group.clone_from(&cfg.group);
    tradestream_runtime::worker::run(TradeRecorder::new(cfg, store, stats), run, shutdown)?;
    Ok(())
}
