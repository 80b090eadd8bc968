//! The cache worker as a [`Worker`] of the shared consumer loop.
//!
//! - `executions` → order states, by the trade recorder's fold
//!   ([`OrderFold`](tradestream_trade_recorder::fold::OrderFold)): the same rows the store holds.
//! - `trades` → the newest trades per symbol
//!   ([`trade_row`](tradestream_trade_recorder::fold::trade_row)), and open candles by the
//!   market-data worker's [`CandleBuilder`] (same lateness and lead, so the same rows).
//! - `market-data` → top of book ([`top_of_book`]).
//! - `candles` → closed candles as the market-data worker published them (this also closes, in
//!   the cache, a candle whose bucket got no trade after a restart of this worker).
//!
//! ## Durability
//! The worker is a [`Checkpoints::State`] worker: at each checkpoint it writes everything the
//! batch changed **and its input offsets** to Redis in one atomic round trip
//! ([`CacheWriter::write`]); the loop commits the group's offsets only after that. On assignment
//! it resumes from the offsets in Redis (not the group's), so Redis is exactly as far as its
//! own offsets say; replays are harmless since every write is version-guarded.
//!
//! Redis is in memory (no persistence): if it restarts empty, its offsets are gone too and the
//! worker replays the topics from their start, rebuilding the cache within the topics'
//! retention. A Redis that lost its data *while* the worker runs is caught by a session marker
//! the worker sets when it starts and the progress script checks ([`CacheError::Lost`]).
//!
//! ## Redis outages
//! A Redis error stops the loop (nothing is committed that Redis does not hold); [`run`] then
//! waits for Redis with a growing backoff (at most [`CacheConfig::max_backoff`]) and starts the
//! loop again, from the offsets Redis holds. Only [`Shutdown`] or a non-Redis error ends it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tradestream_codec::avro::{self, DecodedEvent, DecodedKind};
use tradestream_market_data::candles::{
    CandleBuilder, DEFAULT_ALLOWED_LATENESS_MS, DEFAULT_MAX_WATERMARK_LEAD_MS, top_of_book,
};
use tradestream_runtime::dead_letter::Poison;
use tradestream_runtime::{
    Checkpoints, Context, KafkaConfig, LoopConfig, Outcome, Position, Record, RunError, SetupError,
    Shutdown, Stats, Worker, WorkerError,
};
use tradestream_trade_recorder::fold::{OrderFold, trade_row};

use crate::keys::{KeyLayout, offset_field, watermark_field};
use crate::writer::{CacheSettings, CacheWriter, Changes, Progress};
use crate::{CacheError, RedisUrl};

/// Settings of the cache worker.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// The consumer loop. Its group also names the worker's progress in Redis. Only
    /// [`Guarantee::EffectivelyOnce`](tradestream_runtime::Guarantee): see [`Self::check`].
    pub run: LoopConfig,
    /// Name in logs and metrics.
    pub worker: String,
    /// Where Redis is (its `Debug` hides a password).
    pub redis: RedisUrl,
    /// Key prefix.
    pub keys: KeyLayout,
    /// What the cache keeps and for how long.
    pub settings: CacheSettings,
    /// Input: order lifecycle.
    pub executions: String,
    /// Input: fills.
    pub trades: String,
    /// Input: top of book (and book deltas, ignored).
    pub market_data: String,
    /// Input: closed candles.
    pub candles: String,
    /// As the market-data worker's (its candles are the ones to match).
    pub allowed_lateness_ms: i64,
    /// As the market-data worker's.
    pub max_watermark_lead_ms: i64,
    /// Longest wait between two attempts to reach Redis after an outage.
    pub max_backoff: Duration,
}

impl CacheConfig {
    /// The cache worker's consumer group (`--group`).
    pub const DEFAULT_GROUP: &'static str = "tradestream-cache";

    /// Defaults (topics.yaml names, key prefix `ts:`), in group
    /// [`DEFAULT_GROUP`](Self::DEFAULT_GROUP) on `kafka`, writing to `redis`.
    pub fn new(kafka: KafkaConfig, redis: RedisUrl) -> Self {
        Self::with_loop(LoopConfig::new(kafka, Self::DEFAULT_GROUP), redis)
    }

    /// Defaults in the loop `run`.
    pub fn with_loop(run: LoopConfig, redis: RedisUrl) -> Self {
        CacheConfig {
            run,
            worker: "cache".into(),
            redis,
            keys: KeyLayout::default(),
            settings: CacheSettings::default(),
            executions: "executions".into(),
            trades: "trades".into(),
            market_data: "market-data".into(),
            candles: "candles".into(),
            allowed_lateness_ms: DEFAULT_ALLOWED_LATENESS_MS,
            max_watermark_lead_ms: DEFAULT_MAX_WATERMARK_LEAD_MS,
            max_backoff: Duration::from_secs(5),
        }
    }

    /// Refuses what the worker cannot do: exactly-once. A batch is committed by its Redis
    /// write, which a Kafka transaction cannot include (and the worker produces nothing, so a
    /// transaction would add nothing).
    pub fn check(&self) -> Result<(), RunError> {
        self.run.refuse_exactly_once(
            &self.worker,
            "its batches are committed by the Redis write, which a Kafka transaction cannot \
             include (the cache is idempotent without one)",
        )?;
        if self.settings.trades_kept == 0 || self.settings.candles_kept == 0 {
            return Err(SetupError::Invalid(
                "the cache must keep at least one trade and one candle per series".into(),
            )
            .into());
        }
        Ok(())
    }
}

tradestream_runtime::stats! {
    /// What the cache worker did.
    pub struct CacheStats {
        /// Input records.
        records_in,
        /// Rows written to Redis.
        written,
        /// Rows Redis refused: it held the same or a newer version (replays).
        refused,
        /// Checkpoints written.
        checkpoints,
        /// Records sent to dead letters.
        dead_letters,
        /// Times the loop was started again after a Redis outage.
        restarts,
    }
}

/// The cache worker.
#[derive(Debug)]
pub struct Cache {
    cfg: CacheConfig,
    writer: CacheWriter,
    /// This run's session marker id.
    instance: String,
    fold: OrderFold,
    /// One candle builder per assigned `trades` partition.
    builders: BTreeMap<i32, CandleBuilder>,
    changes: Changes,
    stats: Arc<CacheStats>,
}

impl Cache {
    /// A worker writing through `writer`; starts its session in Redis.
    pub fn new(
        cfg: CacheConfig,
        mut writer: CacheWriter,
        stats: Arc<CacheStats>,
    ) -> Result<Self, CacheError> {
        let instance = uuid::Uuid::new_v4().simple().to_string();
        writer.start_session(&cfg.run.group, &instance)?;
        Ok(Cache {
            cfg,
            writer,
            instance,
            fold: OrderFold::new(),
            builders: BTreeMap::new(),
            changes: Changes::default(),
            stats,
        })
    }

    fn builder(&self, partition: i32) -> CandleBuilder {
        CandleBuilder::new(partition, self.cfg.allowed_lateness_ms)
            .with_max_lead(self.cfg.max_watermark_lead_ms)
    }

    fn execution(&mut self, ev: &DecodedEvent) -> Result<Outcome, WorkerError> {
        let Cache {
            writer,
            fold,
            changes,
            ..
        } = self;
        // The fold holds every order of the batch in flight (terminal ones are evicted only once
        // written), so what it does not hold is in Redis or nowhere.
        match fold.try_apply(ev, |symbol, id| writer.order(symbol, id))? {
            Ok(rows) => {
                rows.into_iter().for_each(|r| changes.order(r));
                Ok(Outcome::Done)
            }
            Err(e) => Ok(Outcome::Poison(Poison::new("process", e.to_string()))),
        }
    }

    fn trade(&mut self, record: &Record<'_>, ev: &DecodedEvent) -> Result<Outcome, WorkerError> {
        let p = record.partition;
        if !self.builders.contains_key(&p) {
            let b = self.builder(p);
            self.builders.insert(p, b);
        }
        let Cache {
            writer,
            builders,
            changes,
            ..
        } = self;
        let Some(builder) = builders.get_mut(&p) else {
            return Ok(Outcome::Done);
        };
        // The trade itself is kept whatever its candles make of it (as the trade recorder does).
        if let Some(row) = trade_row(ev) {
            changes.trade(row);
        }
        let applied = builder.try_apply(ev, record.timestamp_ms, |symbol, interval, start| {
            // This batch's version is newer than the cache's.
            match changes.candles.get(&(symbol.to_owned(), interval, start)) {
                Some(row) => Ok(Some(row.clone())),
                None => writer.candle(symbol, interval, start),
            }
        })?;
        let out = match applied {
            Ok(out) => out,
            Err(e) => return Ok(Outcome::Poison(Poison::new("process", e.to_string()))),
        };
        out.closed
            .into_iter()
            .chain(out.updated)
            .for_each(|row| changes.candle(row));
        Ok(Outcome::Done)
    }
}

impl Worker for Cache {
    fn name(&self) -> &str {
        &self.cfg.worker
    }

    fn topics(&self) -> Vec<String> {
        vec![
            self.cfg.executions.clone(),
            self.cfg.trades.clone(),
            self.cfg.market_data.clone(),
            self.cfg.candles.clone(),
        ]
    }

    fn checkpoints(&self) -> Checkpoints {
        Checkpoints::State
    }

    fn assign(
        &mut self,
        _ctx: &mut Context<'_>,
        topic: &str,
        partition: i32,
        _committed: i64,
    ) -> Result<i64, WorkerError> {
        let progress = self.writer.progress(&self.cfg.run.group)?;
        if topic == self.cfg.trades {
            let mut builder = self.builder(partition);
            if let Some(&w) = progress.get(&watermark_field(topic, partition)) {
                builder.restore_watermark(w);
            }
            self.builders.insert(partition, builder);
        }
        Ok(progress
            .get(&offset_field(topic, partition))
            .copied()
            .unwrap_or(0))
    }

    fn process(
        &mut self,
        _ctx: &mut Context<'_>,
        record: &Record<'_>,
    ) -> Result<Outcome, WorkerError> {
        self.stats.records_in.fetch_add(1, Ordering::Relaxed);
        let outcome = if record.topic == self.cfg.candles {
            match tradestream_market_data::record::decode(record.payload) {
                Ok(row) => {
                    self.changes.candle(row);
                    Outcome::Done
                }
                Err(e) => Outcome::Poison(Poison::decode(e)),
            }
        } else {
            match avro::decode_event(record.payload) {
                Err(e) => Outcome::Poison(Poison::decode(e)),
                Ok(ev) if record.topic == self.cfg.executions => self.execution(&ev)?,
                Ok(ev) if record.topic == self.cfg.trades => match ev.kind {
                    DecodedKind::Trade { .. } => self.trade(record, &ev)?,
                    _ => Outcome::Poison(Poison::new(
                        "process",
                        format!("a {} event on the trades topic", ev.kind.name()),
                    )),
                },
                Ok(ev) => {
                    // market-data: the cache keeps the top of book only.
                    if let Some(top) = top_of_book(&ev) {
                        self.changes.top(top);
                    }
                    Outcome::Done
                }
            }
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
        let mut progress = Progress::default();
        for p in positions {
            progress
                .fields
                .push((offset_field(&p.topic, p.partition), p.next_offset));
            if p.topic == self.cfg.trades
                && let Some(w) = self
                    .builders
                    .get(&p.partition)
                    .and_then(CandleBuilder::watermark)
            {
                progress
                    .fields
                    .push((watermark_field(&p.topic, p.partition), w));
            }
        }
        let report = self.writer.write(
            &self.changes,
            Some((&self.cfg.run.group, &self.instance, &progress)),
        )?;
        self.changes = Changes::default();
        self.fold.evict_terminal();
        let s = &self.stats;
        s.written.fetch_add(report.written, Ordering::Relaxed);
        s.refused.fetch_add(report.refused, Ordering::Relaxed);
        s.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn revoke(&mut self, topic: &str, partition: i32) {
        if topic == self.cfg.trades {
            self.builders.remove(&partition);
        } else if topic == self.cfg.executions {
            // Another worker may update these orders now: forget them, Redis will tell.
            self.fold = OrderFold::new();
        }
    }
}

/// Whether the loop stopped because of Redis (then [`run`] waits for it and starts again).
fn redis_outage(e: &RunError) -> Option<&CacheError> {
    match e {
        RunError::Worker(w) => w
            .downcast_ref::<CacheError>()
            .filter(|c| c.is_unavailable()),
        _ => None,
    }
}

/// Sleeps `d` in short steps; false when `shutdown` was triggered meanwhile.
fn sleep_unless_stopped(d: Duration, shutdown: &Shutdown) -> bool {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if shutdown.is_triggered() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !shutdown.is_triggered()
}

/// Runs the cache worker until `shutdown` is triggered or a non-Redis error stops it (Redis
/// outages are waited out: see the module documentation); refuses a configuration
/// [`CacheConfig::check`] refuses.
pub fn run(cfg: CacheConfig, shutdown: &Shutdown, stats: Arc<CacheStats>) -> Result<(), RunError> {
    cfg.check()?;
    let first_backoff = Duration::from_millis(200);
    let mut backoff = first_backoff;
    while !shutdown.is_triggered() {
        let started = Instant::now();
        let attempt = CacheWriter::connect(&cfg.redis, cfg.keys.clone(), cfg.settings.clone())
            .and_then(|w| Cache::new(cfg.clone(), w, stats.clone()));
        let err = match attempt {
            Err(e) if e.is_unavailable() => e.to_string(),
            Err(e) => {
                return Err(SetupError::Service {
                    what: "the cache".into(),
                    source: Box::new(e),
                }
                .into());
            }
            Ok(worker) => match tradestream_runtime::run(worker, cfg.run.clone(), shutdown) {
                Ok(mut worker) => {
                    worker.writer.end_session(&cfg.run.group, &worker.instance);
                    break;
                }
                Err(e) => match redis_outage(&e) {
                    Some(c) => c.to_string(),
                    None => return Err(e),
                },
            },
        };
        if started.elapsed() > Duration::from_secs(30) {
            backoff = first_backoff;
        }
        stats.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            worker = %cfg.worker,
            redis = %cfg.redis,
            error = %err,
            retry_in = ?backoff,
            "Redis unavailable: nothing past what it holds is committed; retrying"
        );
        if !sleep_unless_stopped(backoff, shutdown) {
            break;
        }
        backoff = (backoff * 2).min(cfg.max_backoff);
    }
    tracing::info!(stats = %stats.summary(), "cache worker stopped");
    Ok(())
}
