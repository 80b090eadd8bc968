//! The market-data worker as a [`Worker`] of the shared consumer loop.
//!
//! - `trades` → candles (1s, 1m, 1h by event time; see [`crate::candles`] for the watermark and
//!   the late-trade rule). Every candle that changed is upserted into the store; a candle the
//!   watermark closed is also produced to the `candles` topic, keyed by symbol.
//! - `market-data` → the top of book of each symbol, upserted into the store.
//!
//! A batch's rows go to the store in one [`Store::write`] with the input offsets it reaches and,
//! for `trades` partitions, the watermark. On assignment the worker resumes from the store: the
//! offset, the watermark, and the partition's open candles. So the store is exactly-once; the
//! `candles` topic is at-least-once (a crash between the broker's acknowledgement and the store
//! write produces those closed candles again; `(symbol, interval, bucket_start)` identifies one).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tradestream_codec::avro::{self, DecodedKind, Framing};
use tradestream_runtime::dead_letter::Poison;
use tradestream_runtime::{
    Context, KafkaConfig, LoopConfig, Outcome, Position, Record, RunError, Shutdown, Stats, Worker,
    WorkerError,
};
use tradestream_store::{Batch, CandleRow, Interval, OffsetRow, Store, TopOfBookRow};

use crate::candles::{
    CandleBuilder, DEFAULT_ALLOWED_LATENESS_MS, DEFAULT_MAX_WATERMARK_LEAD_MS, top_of_book,
};
use crate::record;

/// Settings of the market-data worker.
#[derive(Debug, Clone)]
pub struct MarketDataConfig {
    /// The consumer loop. Its group is also the consumer name of the offsets in the store. Only
    /// [`Guarantee::EffectivelyOnce`](tradestream_runtime::Guarantee): see [`Self::check`].
    pub run: LoopConfig,
    /// Name in headers, logs and metrics.
    pub worker: String,
    /// Input: fills, for candles.
    pub trades: String,
    /// Input: book deltas and top of book.
    pub market_data: String,
    /// Output: closed candles.
    pub candles: String,
    /// How far behind the newest trade a trade may be and still count in its 1s candle.
    pub allowed_lateness_ms: i64,
    /// How far ahead of its record's broker timestamp a trade's event time may move the
    /// watermark (see [`crate::candles`]); keep it well under `allowed_lateness_ms`.
    pub max_watermark_lead_ms: i64,
}

impl MarketDataConfig {
    /// The market-data worker's consumer group (`--group`).
    pub const DEFAULT_GROUP: &'static str = "tradestream-market-data";

    /// Defaults (topics.yaml names, lateness and lead), in group
    /// [`DEFAULT_GROUP`](Self::DEFAULT_GROUP) on `kafka`.
    pub fn new(kafka: KafkaConfig) -> Self {
        Self::with_loop(LoopConfig::new(kafka, Self::DEFAULT_GROUP))
    }

    /// Defaults (topics.yaml names, lateness and lead) in the loop `run`.
    pub fn with_loop(run: LoopConfig) -> Self {
        MarketDataConfig {
            run,
            worker: "market-data".into(),
            trades: "trades".into(),
            market_data: "market-data".into(),
            candles: "candles".into(),
            allowed_lateness_ms: DEFAULT_ALLOWED_LATENESS_MS,
            max_watermark_lead_ms: DEFAULT_MAX_WATERMARK_LEAD_MS,
        }
    }

    /// Refuses what the worker cannot do: exactly-once. A batch is committed by its store write
    /// (candles, tops, offsets and watermarks together), which a Kafka transaction cannot
    /// include; a transaction aborted after the store write would lose the closed candles it
    /// produced to the `candles` topic for good (the store says their trades are done).
    pub fn check(&self) -> Result<(), RunError> {
        self.run.refuse_exactly_once(
            &self.worker,
            "its batches are committed by the store write, which a Kafka transaction cannot \
             include (the store is exactly-once without one); a transaction aborted after the \
             store write would lose the batch's closed candles on the candles topic",
        )
    }
}

tradestream_runtime::stats! {
    /// What the worker did.
    pub struct MarketDataStats {
        /// Input records.
        records_in,
        /// Trades applied to candles.
        trades,
        /// Candle rows written (after merging updates of one batch).
        candles_stored,
        /// Closed candles produced to the `candles` topic.
        candles_closed,
        /// Trades too late for at least their 1s candle.
        late,
        /// Trades whose event time ran more than the allowed lead ahead of their record's
        /// broker timestamp, so they moved the watermark only that far.
        clamped,
        /// Records sent to dead letters.
        dead_letters,
    }
}

/// The market-data worker.
#[derive(Debug)]
pub struct MarketData {
    cfg: MarketDataConfig,
    store: Box<dyn Store>,
    /// One builder per assigned `trades` partition.
    builders: BTreeMap<i32, CandleBuilder>,
    /// Candles changed in this batch, latest version each.
    candles: BTreeMap<(String, Interval, i64), CandleRow>,
    /// Tops of book changed in this batch, latest each.
    tops: BTreeMap<String, TopOfBookRow>,
    stats: Arc<MarketDataStats>,
}

impl MarketData {
    /// A worker writing to `store`.
    pub fn new(cfg: MarketDataConfig, store: Box<dyn Store>, stats: Arc<MarketDataStats>) -> Self {
        MarketData {
            cfg,
            store,
            builders: BTreeMap::new(),
            candles: BTreeMap::new(),
            tops: BTreeMap::new(),
            stats,
        }
    }

    fn keep(&mut self, row: CandleRow) {
        self.candles
            .insert((row.symbol.clone(), row.interval, row.bucket_start_ms), row);
    }

    fn trade(
        &mut self,
        ctx: &mut Context<'_>,
        record: &Record<'_>,
        ev: &avro::DecodedEvent,
    ) -> Result<Outcome, WorkerError> {
        let p = record.partition;
        let MarketData {
            cfg,
            store,
            builders,
            candles,
            ..
        } = self;
        let builder = builders.entry(p).or_insert_with(|| builder(cfg, p));
        let (late_before, clamped_before) = (builder.late(Interval::S1), builder.clamped());
        let applied = builder.try_apply(ev, record.timestamp_ms, |symbol, interval, start| {
            // This batch's version is newer than the store's.
            match candles.get(&(symbol.to_owned(), interval, start)) {
                Some(row) => Ok(Some(row.clone())),
                None => store.candle(symbol, interval, start),
            }
        })?;
        if builder.late(Interval::S1) > late_before {
            self.stats.late.fetch_add(1, Ordering::Relaxed);
        }
        if builder.clamped() > clamped_before {
            self.stats.clamped.fetch_add(1, Ordering::Relaxed);
            tradestream_runtime::metrics::watermark_clamped(&self.cfg.worker, p);
            tracing::warn!(
                partition = p,
                offset = record.offset,
                ts = ev.ts,
                record_ts = record.timestamp_ms,
                "trade time far ahead of its record timestamp: watermark held back"
            );
        }
        let out = match applied {
            Ok(out) => out,
            Err(e) => {
                return Ok(Outcome::Poison(Poison::new("process", e.to_string())));
            }
        };
        self.stats.trades.fetch_add(1, Ordering::Relaxed);
        for row in out.closed {
            let value = record::encode(&row, Framing::SingleObject)?;
            ctx.send_derived(
                &self.cfg.candles,
                None,
                Some(row.symbol.as_bytes()),
                &value,
                record,
                u64::try_from(row.seq).unwrap_or(0),
            )?;
            self.stats.candles_closed.fetch_add(1, Ordering::Relaxed);
            self.keep(row);
        }
        for row in out.updated {
            self.keep(row);
        }
        Ok(Outcome::Done)
    }
}

/// The candle builder of `trades` partition `partition`.
fn builder(cfg: &MarketDataConfig, partition: i32) -> CandleBuilder {
    CandleBuilder::new(partition, cfg.allowed_lateness_ms).with_max_lead(cfg.max_watermark_lead_ms)
}

impl Worker for MarketData {
    fn name(&self) -> &str {
        &self.cfg.worker
    }

    fn topics(&self) -> Vec<String> {
        vec![self.cfg.trades.clone(), self.cfg.market_data.clone()]
    }

    fn assign(
        &mut self,
        _ctx: &mut Context<'_>,
        topic: &str,
        partition: i32,
        _committed: i64,
    ) -> Result<i64, WorkerError> {
        let stored = self.store.offset(&self.cfg.run.group, topic, partition)?;
        if topic == self.cfg.trades {
            let mut builder = builder(&self.cfg, partition);
            if let Some(w) = stored.as_ref().and_then(|o| o.watermark_ms) {
                builder.restore_watermark(w);
            }
            builder.restore_open(self.store.open_candles(partition)?);
            self.builders.insert(partition, builder);
        }
        Ok(stored.map_or(0, |o| o.next_offset))
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        record: &Record<'_>,
    ) -> Result<Outcome, WorkerError> {
        self.stats.records_in.fetch_add(1, Ordering::Relaxed);
        let outcome = match avro::decode_event(record.payload) {
            Err(e) => Outcome::Poison(Poison::decode(e)),
            Ok(ev) if record.topic == self.cfg.trades => match ev.kind {
                DecodedKind::Trade { .. } => self.trade(ctx, record, &ev)?,
                _ => Outcome::Poison(Poison::new(
                    "process",
                    format!("a {} event on the trades topic", ev.kind.name()),
                )),
            },
            Ok(ev) => {
                // Book deltas: the store keeps the top of book only.
                if let Some(top) = top_of_book(&ev) {
                    self.tops.insert(top.symbol.clone(), top);
                }
                Outcome::Done
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
        let offsets = positions
            .iter()
            .map(|p| OffsetRow {
                consumer: self.cfg.run.group.clone(),
                topic: p.topic.clone(),
                partition: p.partition,
                next_offset: p.next_offset,
                watermark_ms: if p.topic == self.cfg.trades {
                    self.builders
                        .get(&p.partition)
                        .and_then(CandleBuilder::watermark)
                } else {
                    None
                },
            })
            .collect();
        let batch = Batch {
            candles: std::mem::take(&mut self.candles).into_values().collect(),
            tops: std::mem::take(&mut self.tops).into_values().collect(),
            offsets,
            ..Batch::default()
        };
        self.store.write(&batch)?;
        self.stats
            .candles_stored
            .fetch_add(batch.candles.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn revoke(&mut self, topic: &str, partition: i32) {
        if topic == self.cfg.trades {
            self.builders.remove(&partition);
        }
    }
}

/// Runs the market-data worker until `shutdown` is triggered or an error stops it; refuses a
/// configuration [`MarketDataConfig::check`] refuses.
pub fn run(
    cfg: MarketDataConfig,
    store: Box<dyn Store>,
    shutdown: &Shutdown,
    stats: Arc<MarketDataStats>,
) -> Result<(), RunError> {
    cfg.check()?;
    let run = cfg.run.clone();
    tradestream_runtime::run(MarketData::new(cfg, store, stats.clone()), run, shutdown)?;
    tracing::info!(stats = %stats.summary(), "market-data worker stopped");
    Ok(())
}
