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
use std::sync::atomic::Ordering;

use tradestream_codec::avro::{self, DecodedKind};
use tradestream_runtime::dead_letter::Poison;
use tradestream_runtime::{
    Context, KafkaConfig, LoopConfig, Outcome, Position, Record, RunError, Shutdown, Stats, Worker,
    WorkerError,
};
use tradestream_store::{Batch, OffsetRow, Store};

use crate::fold::{OrderFold, trade_row};

/// Settings of the trade recorder.
#[derive(Debug, Clone)]
pub struct TradeRecorderConfig {
    /// The consumer loop. Its group is also the consumer name of the offsets in the store. Only
    /// [`Guarantee::EffectivelyOnce`](tradestream_runtime::Guarantee): see [`Self::check`].
    pub run: LoopConfig,
    /// Name in headers, logs and metrics.
    pub worker: String,
    /// Input: fills.
    pub trades: String,
    /// Input: order lifecycle.
    pub executions: String,
}

impl TradeRecorderConfig {
    /// The trade recorder's consumer group (`--group`).
    pub const DEFAULT_GROUP: &'static str = "tradestream-trade-recorder";

    /// Defaults (topics.yaml names), in group [`DEFAULT_GROUP`](Self::DEFAULT_GROUP) on `kafka`.
    pub fn new(kafka: KafkaConfig) -> Self {
        Self::with_loop(LoopConfig::new(kafka, Self::DEFAULT_GROUP))
    }

    /// Defaults (topics.yaml names) in the loop `run`.
    pub fn with_loop(run: LoopConfig) -> Self {
        TradeRecorderConfig {
            run,
            worker: "trade-recorder".into(),
            trades: "trades".into(),
            executions: "executions".into(),
        }
    }

    /// Refuses what the recorder cannot do: exactly-once. A batch is committed by its store
    /// write (rows and offsets together), which a Kafka transaction cannot include; the store
    /// is exactly-once without one, and a transaction aborted after the store write would lose
    /// the batch's dead letters for good (the store says their input is done).
    pub fn check(&self) -> Result<(), RunError> {
        self.run.refuse_exactly_once(
            &self.worker,
            "its batches are committed by the store write, which a Kafka transaction cannot \
             include (the store is exactly-once without one); a transaction aborted after the \
             store write would lose the batch's dead letters",
        )
    }
}

tradestream_runtime::stats! {
    /// What the recorder did (the demo and tests read these).
    pub struct TradeRecorderStats {
        /// Input records.
        records_in,
        /// Trade rows written (each trade once, counted when its batch is in the store).
        trades_stored,
        /// Order-state rows written.
        orders_stored,
        /// Records sent to dead letters.
        dead_letters,
        /// Batches written.
        batches,
    }
}

/// The trade recorder.
#[derive(Debug)]
pub struct TradeRecorder {
    cfg: TradeRecorderConfig,
    store: Box<dyn Store>,
    fold: OrderFold,
    batch: Batch,
    stats: Arc<TradeRecorderStats>,
}

impl TradeRecorder {
    /// A recorder writing to `store`.
    pub fn new(
        cfg: TradeRecorderConfig,
        store: Box<dyn Store>,
        stats: Arc<TradeRecorderStats>,
    ) -> Self {
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
        // The fold holds every order of the batch in flight (terminal ones are evicted only once
        // written), so what it does not hold is in the store or nowhere.
        match fold.try_apply(ev, |symbol, id| store.order(symbol, id))? {
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
        Ok(self
            .store
            .resume_at(&self.cfg.run.group, topic, partition)?)
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
        self.batch.offsets = offset_rows(&self.cfg.run.group, positions);
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

/// Runs the trade recorder until `shutdown` is triggered or an error stops it; refuses a
/// configuration [`TradeRecorderConfig::check`] refuses.
pub fn run(
    cfg: TradeRecorderConfig,
    store: Box<dyn Store>,
    shutdown: &Shutdown,
    stats: Arc<TradeRecorderStats>,
) -> Result<(), RunError> {
    cfg.check()?;
    let run = cfg.run.clone();
    tradestream_runtime::run(TradeRecorder::new(cfg, store, stats.clone()), run, shutdown)?;
    tracing::info!(stats = %stats.summary(), "trade recorder stopped");
    Ok(())
}
