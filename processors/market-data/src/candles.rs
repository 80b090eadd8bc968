//! OHLC candles by event time, closed by a watermark; and top of book.
//!
//! [`CandleBuilder`] turns the `trade` events of one source partition (the `trades` topic) into
//! [`CandleRow`]s for every [`Interval`]. It is pure and synchronous: the worker hands it decoded
//! trades in topic order and a lookup into the store for candles it does not hold, upserts the
//! rows it returns and produces them to the `candles` topic.
//!
//! ## Buckets and candles
//! A trade at event time `ts` belongs, per interval, to the bucket `[start, start + length)` with
//! `start = interval.bucket_start(ts)`. Within a bucket trades are taken in `seq` order — the
//! order the matcher made them — so `open` is the price of the bucket's first trade in that
//! order and `close` of its last (an out-of-order event time inside a bucket does not reorder
//! the venue's trades). `high`/`low` compare by value; `volume` = Σ qty and `turnover` = Σ price
//! × qty, exact (kept in 128 bits; should a turnover outgrow a 64-bit decimal at its natural
//! scale, the row shows it rounded half-even to the digits that fit); `vwap` = turnover /
//! volume rounded half-even to the price's digits + 4 (at most 18).
//!
//! ## Watermark, closing and late trades
//! The builder keeps an event-time **watermark**: the largest trade time it has seen minus the
//! allowed lateness (default [`DEFAULT_ALLOWED_LATENESS_MS`]). It never goes back.
//! - A trade's time counts for the watermark only up to its record's broker timestamp (the
//!   `trades` record's create or log-append time, given to [`CandleBuilder::apply`]) plus the
//!   allowed lead (default [`DEFAULT_MAX_WATERMARK_LEAD_MS`]); [`CandleBuilder::clamped`] counts
//!   the trades held back. So one trade stamped in microseconds — which the matcher now rejects,
//!   but an older matcher or orders already in the log may have let through — cannot move the
//!   watermark years ahead and make every later trade late. The trade itself still goes to the
//!   candles of its own (bad) time. A record without a broker timestamp is not held back.
//! - A bucket **closes** when its end is at or below the watermark (`start + length <=
//!   watermark`): its candle is marked `closed`, returned once among the closed outputs, and
//!   dropped from the builder. A closed candle is final: it was published as such.
//! - A trade is **late** for an interval when its bucket there has closed already (`end <=
//!   watermark` before the trade, or the stored candle says `closed`). It is *not* applied to
//!   that interval's candle, and [`CandleBuilder::late`] counts it for that interval. It *is*
//!   applied to the longer intervals whose buckets are still open: a trade 3 s behind a
//!   watermark that closed its 1 s bucket still counts in its open 1 m and 1 h candles.
//! - A trade never closes its own bucket (its end is above `ts` and so above `ts − lateness`).
//!
//! Trades are the only input that moves the watermark in [`CandleBuilder::apply`];
//! [`CandleBuilder::advance_to`] moves it with another event time of the same partition (a
//! top-of-book, say) so that a quiet symbol's candles still close. Feed it event times and record
//! timestamps from the log only — never the wall clock — or a replay would close candles
//! differently.
//!
//! ## Exactly-once
//! A candle carries the `(source_partition, seq)` of the last trade in it. A trade whose `seq` is
//! at or below that of the candle it would change is already in it (a replay after a restart,
//! when the store got ahead of the committed offsets) and is skipped for that candle
//! ([`CandleBuilder::duplicates`]). The state a restart needs is the watermark (stored with the
//! offsets, [`CandleBuilder::restore_watermark`]) and the open candles (stored as rows with
//! `closed = false`): the builder fetches a candle it does not hold through the `lookup` given
//! to [`CandleBuilder::apply`], and [`CandleBuilder::restore_open`] seeds it with open candles
//! the worker read back (so buckets that get no more trades still close).
//!
//! ## Determinism
//! Outputs depend only on the input trades (and restored state), never on hash order or time:
//! changed candles come shortest interval first, closed ones by bucket end, then symbol, then
//! interval.

use std::collections::{BTreeMap, BTreeSet};

use tradestream_codec::avro::{DecodedEvent, DecodedKind};
use tradestream_engine::Decimal;
use tradestream_store::model::{CandleRow, Interval, TopOfBookRow};

use tradestream_engine::decimal::exact::{self, Wide, vwap_scale};

/// The default allowed lateness: a trade up to 5 s behind the newest one still lands in its
/// 1 s candle. (Producers stamp orders with their own clocks; 5 s covers ordinary skew and
/// batching without delaying closed candles much.)
pub const DEFAULT_ALLOWED_LATENESS_MS: i64 = 5_000;

/// The default for how far ahead of its record's broker timestamp a trade's event time may move
/// the watermark: 1 s. Kept well under [`DEFAULT_ALLOWED_LATENESS_MS`], so that a trade stamped
/// far ahead (a microsecond `ts`) closes no bucket a trade arriving with it could still fall in.
pub const DEFAULT_MAX_WATERMARK_LEAD_MS: i64 = 1_000;

/// Why a trade could not be applied. The event is poison (dead-letter it); the builder is
/// unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CandleError {
    /// The trade comes from another source partition than the builder's.
    #[error("a trade of partition {got} given to the candle builder of partition {expected}")]
    WrongPartition {
        /// The builder's partition.
        expected: i32,
        /// The trade's.
        got: i32,
    },
    /// A trade quantity of zero or less.
    #[error("{symbol}: trade quantity {qty} is not positive")]
    InvalidQuantity {
        /// Instrument.
        symbol: String,
        /// The quantity.
        qty: Decimal,
    },
    /// A sum does not fit in a 64-bit decimal.
    #[error("{symbol} {interval}: {what} does not fit")]
    Overflow {
        /// Instrument.
        symbol: String,
        /// Interval name.
        interval: &'static str,
        /// What overflowed (`volume`, `turnover`, `vwap`).
        what: &'static str,
    },
}

/// What one input did to the candles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CandleOutput {
    /// Candles the trade changed, still open (shortest interval first).
    pub updated: Vec<CandleRow>,
    /// Candles the watermark closed (`closed = true`), by bucket end, symbol, interval.
    pub closed: Vec<CandleRow>,
}

impl CandleOutput {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.updated.is_empty() && self.closed.is_empty()
    }
}

/// A candle's identity: symbol, interval, bucket start.
type Key = (String, Interval, i64);

/// An open candle with the exact sums behind it.
#[derive(Debug, Clone)]
struct Open {
    row: CandleRow,
    volume: Wide,
    turnover: Wide,
    /// The most digits of any trade price in the bucket (the VWAP keeps 4 more).
    price_scale: u8,
}

impl Open {
    /// A candle as stored.
    fn from_row(row: CandleRow) -> Open {
        let price_scale = [row.open, row.high, row.low, row.close]
            .iter()
            .map(|p| p.scale())
            .max()
            .unwrap_or(0);
        Open {
            volume: Wide::of(row.volume),
            turnover: Wide::of(row.turnover),
            price_scale,
            row,
        }
    }

    /// True when the trade `(partition, seq)` is already in the candle.
    fn has_seen(&self, partition: i32, seq: i64) -> bool {
        self.row.source_partition == partition && self.row.seq >= seq
    }

    /// The candle of a bucket's first trade.
    fn first(key: &Key, trade: &Trade) -> Result<Open, CandleError> {
        let p = trade.price;
        let empty = Open {
            row: CandleRow {
                symbol: key.0.clone(),
                interval: key.1,
                bucket_start_ms: key.2,
                open: p,
                high: p,
                low: p,
                close: p,
                volume: Decimal::new(0, trade.qty.scale()),
                turnover: Decimal::new(0, p.scale() + trade.qty.scale()),
                vwap: p,
                trade_count: 0,
                closed: false,
                source_partition: trade.partition,
                seq: trade.seq,
            },
            volume: Wide::ZERO,
            turnover: Wide::ZERO,
            price_scale: p.scale(),
        };
        empty.add(trade)
    }

    /// The candle with one more trade.
    fn add(mut self, trade: &Trade) -> Result<Open, CandleError> {
        let overflow = |what| CandleError::Overflow {
            symbol: self.row.symbol.clone(),
            interval: self.row.interval.as_str(),
            what,
        };
        let volume = self
            .volume
            .checked_add(Wide::of(trade.qty))
            .ok_or_else(|| overflow("volume"))?;
        let turnover = self
            .turnover
            .checked_add(Wide::product(trade.price, trade.qty))
            .ok_or_else(|| overflow("turnover"))?;
        let price_scale = self.price_scale.max(trade.price.scale());
        // A volume is a count of lots: it must stay exact.
        let volume_row = volume
            .to_exact_decimal()
            .ok_or_else(|| overflow("volume"))?;
        let turnover_row = turnover.to_decimal().ok_or_else(|| overflow("turnover"))?;
        let vwap = turnover
            .div_round(volume, vwap_scale(price_scale))
            .ok_or_else(|| overflow("vwap"))?;
        let row = &mut self.row;
        row.volume = volume_row;
        row.turnover = turnover_row;
        row.vwap = vwap;
        if exact::cmp(trade.price, row.high).is_gt() {
            row.high = trade.price;
        }
        if exact::cmp(trade.price, row.low).is_lt() {
            row.low = trade.price;
        }
        row.close = trade.price;
        row.trade_count += 1;
        row.source_partition = trade.partition;
        row.seq = trade.seq;
        self.volume = volume;
        self.turnover = turnover;
        self.price_scale = price_scale;
        Ok(self)
    }
}

/// The parts of a trade event a candle needs.
struct Trade {
    price: Decimal,
    qty: Decimal,
    partition: i32,
    seq: i64,
}

/// The end of a bucket (saturating: a bucket at the end of time never closes).
fn bucket_end(interval: Interval, start: i64) -> i64 {
    start.saturating_add(interval.millis())
}

/// The position of `interval` in [`Interval::ALL`].
fn index(interval: Interval) -> usize {
    match interval {
        Interval::S1 => 0,
        Interval::M1 => 1,
        Interval::H1 => 2,
    }
}

/// Builds the candles of one source partition. See the module documentation for the rules.
#[derive(Debug)]
pub struct CandleBuilder {
    source_partition: i32,
    allowed_lateness_ms: i64,
    watermark: Option<i64>,
    open: BTreeMap<Key, Open>,
    /// The open candles by bucket end, to close them in order without a scan.
    by_end: BTreeSet<(i64, Key)>,
    late: [u64; Interval::ALL.len()],
    duplicates: u64,
    max_lead_ms: i64,
    clamped: u64,
}

impl CandleBuilder {
    /// A builder for the trades of `source_partition` that lets trades arrive up to
    /// `allowed_lateness_ms` behind the newest one (a negative value counts as 0).
    pub fn new(source_partition: i32, allowed_lateness_ms: i64) -> Self {
        CandleBuilder {
            source_partition,
            allowed_lateness_ms: allowed_lateness_ms.max(0),
            watermark: None,
            open: BTreeMap::new(),
            by_end: BTreeSet::new(),
            late: [0; Interval::ALL.len()],
            duplicates: 0,
            max_lead_ms: DEFAULT_MAX_WATERMARK_LEAD_MS,
            clamped: 0,
        }
    }

    /// Lets a trade move the watermark at most `max_lead_ms` past its record's broker timestamp
    /// (default [`DEFAULT_MAX_WATERMARK_LEAD_MS`]; a negative value counts as 0).
    pub fn with_max_lead(mut self, max_lead_ms: i64) -> Self {
        self.max_lead_ms = max_lead_ms.max(0);
        self
    }

    /// The source partition whose trades this builder takes.
    pub fn source_partition(&self) -> i32 {
        self.source_partition
    }

    /// The current watermark, ms (none before the first trade or restore).
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Sets the watermark stored with the offsets the worker resumes from. It does not close
    /// anything by itself: call [`Self::close_passed`] once the open candles are restored.
    pub fn restore_watermark(&mut self, watermark_ms: i64) {
        self.watermark = Some(watermark_ms);
    }

    /// Seeds the builder with candles read back from the store. Closed candles and candles of
    /// another partition are ignored; a candle the builder holds already is kept.
    pub fn restore_open(&mut self, rows: impl IntoIterator<Item = CandleRow>) {
        for row in rows {
            if !row.closed && row.source_partition == self.source_partition {
                let key = (row.symbol.clone(), row.interval, row.bucket_start_ms);
                if !self.open.contains_key(&key) {
                    self.insert(key, Open::from_row(row));
                }
            }
        }
    }

    /// [`CandleBuilder::apply`] with a lookup that can fail (a store, a cache): the first
    /// failure is returned as the outer error, the builder's own verdict inside.
    pub fn try_apply<E>(
        &mut self,
        ev: &DecodedEvent,
        record_ts_ms: Option<i64>,
        mut lookup: impl FnMut(&str, Interval, i64) -> Result<Option<CandleRow>, E>,
    ) -> Result<Result<CandleOutput, CandleError>, E> {
        let mut failed = None;
        let applied = self.apply(ev, record_ts_ms, |symbol, interval, start| {
            lookup(symbol, interval, start).unwrap_or_else(|e| {
                failed.get_or_insert(e);
                None
            })
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(applied),
        }
    }

    /// Applies one event of the `trades` topic: a trade updates the open candles of its buckets
    /// and moves the watermark, which may close candles; other events change nothing.
    /// `record_ts_ms` is the broker timestamp of the event's record, which bounds how far the
    /// watermark may move (none: unbounded). `lookup` fetches a candle the builder does not hold
    /// from the store (symbol, interval, bucket start).
    pub fn apply(
        &mut self,
        ev: &DecodedEvent,
        record_ts_ms: Option<i64>,
        mut lookup: impl FnMut(&str, Interval, i64) -> Option<CandleRow>,
    ) -> Result<CandleOutput, CandleError> {
        let DecodedKind::Trade { price, qty, .. } = &ev.kind else {
            return Ok(CandleOutput::default());
        };
        if ev.source_partition != self.source_partition {
            return Err(CandleError::WrongPartition {
                expected: self.source_partition,
                got: ev.source_partition,
            });
        }
        let symbol = ev.symbol.as_str();
        if !qty.is_positive() {
            return Err(CandleError::InvalidQuantity {
                symbol: symbol.to_owned(),
                qty: *qty,
            });
        }
        let trade = Trade {
            price: *price,
            qty: *qty,
            partition: ev.source_partition,
            // Seqs stay far below 2^63; saturate rather than wrap.
            seq: i64::try_from(ev.seq).unwrap_or(i64::MAX),
        };

        // Work out every interval first, so that an error leaves the builder as it was.
        let mut changed: Vec<(Key, Open)> = Vec::with_capacity(Interval::ALL.len());
        let mut late = [false; Interval::ALL.len()];
        let mut duplicate = false;
        for interval in Interval::ALL {
            let start = interval.bucket_start(ev.ts);
            if self.has_closed(bucket_end(interval, start)) {
                late[index(interval)] = true;
                continue;
            }
            let key = (symbol.to_owned(), interval, start);
            let current = match self.open.get(&key) {
                Some(open) => Some(open.clone()),
                None => match lookup(symbol, interval, start) {
                    // Hold a stored open candle from now on, whatever this trade does to it.
                    Some(row) if !row.closed => {
                        let open = Open::from_row(row);
                        self.insert(key.clone(), open.clone());
                        Some(open)
                    }
                    other => other.map(Open::from_row),
                },
            };
            let next = match current {
                Some(open) if open.has_seen(trade.partition, trade.seq) => {
                    duplicate = true;
                    continue;
                }
                Some(open) if open.row.closed => {
                    late[index(interval)] = true;
                    continue;
                }
                Some(open) => open.add(&trade)?,
                None => Open::first(&key, &trade)?,
            };
            changed.push((key, next));
        }

        for (count, was_late) in self.late.iter_mut().zip(late) {
            *count += u64::from(was_late);
        }
        self.duplicates += u64::from(duplicate);
        let updated = changed.iter().map(|(_, open)| open.row.clone()).collect();
        for (key, open) in changed {
            self.insert(key, open);
        }
        let watermark_time = self.watermark_time(ev.ts, record_ts_ms);
        let closed = self.advance_to(watermark_time);
        Ok(CandleOutput { updated, closed })
    }

    /// The time a trade at `event_ts_ms` recorded at `record_ts_ms` may move the watermark with:
    /// its own, held to the record's broker timestamp plus the allowed lead (counted when held).
    fn watermark_time(&mut self, event_ts_ms: i64, record_ts_ms: Option<i64>) -> i64 {
        match record_ts_ms.map(|r| r.saturating_add(self.max_lead_ms)) {
            Some(bound) if event_ts_ms > bound => {
                self.clamped += 1;
                bound
            }
            _ => event_ts_ms,
        }
    }

    /// Moves the watermark to `event_ts_ms − allowed lateness` if that is later, and returns the
    /// candles that closed. `event_ts_ms` must be an event time from this partition's log.
    pub fn advance_to(&mut self, event_ts_ms: i64) -> Vec<CandleRow> {
        let candidate = event_ts_ms.saturating_sub(self.allowed_lateness_ms);
        if self.watermark.is_none_or(|w| candidate > w) {
            self.watermark = Some(candidate);
        }
        self.close_passed()
    }

    /// Closes every held candle whose bucket end the watermark has reached; returns them
    /// (`closed = true`) by bucket end, symbol, interval, and forgets them.
    pub fn close_passed(&mut self) -> Vec<CandleRow> {
        let mut closed = Vec::new();
        while let Some(first) = self.by_end.first()
            && self.has_closed(first.0)
            && let Some((_, key)) = self.by_end.pop_first()
        {
            if let Some(open) = self.open.remove(&key) {
                closed.push(CandleRow {
                    closed: true,
                    ..open.row
                });
            }
        }
        closed
    }

    /// True when a bucket ending at `end` has closed.
    fn has_closed(&self, end: i64) -> bool {
        self.watermark.is_some_and(|w| end <= w)
    }

    fn insert(&mut self, key: Key, open: Open) {
        self.by_end.insert((bucket_end(key.1, key.2), key.clone()));
        self.open.insert(key, open);
    }

    /// The candles held open.
    pub fn open_candles(&self) -> impl Iterator<Item = &CandleRow> {
        self.open.values().map(|o| &o.row)
    }

    /// How many candles are held open.
    pub fn open_len(&self) -> usize {
        self.open.len()
    }

    /// Trades that came too late for `interval` (their bucket there had closed).
    pub fn late(&self, interval: Interval) -> u64 {
        self.late[index(interval)]
    }

    /// Trades whose event time was more than the allowed lead ahead of their record's broker
    /// timestamp: they moved the watermark only that far.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Trades skipped for at least one candle because they were in it already (replays).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

/// The top-of-book row of a `top_of_book` event from the `market-data` topic (`None` for any
/// other event).
pub fn top_of_book(ev: &DecodedEvent) -> Option<TopOfBookRow> {
    let DecodedKind::TopOfBook { bid, ask } = &ev.kind else {
        return None;
    };
    Some(TopOfBookRow {
        symbol: ev.symbol.to_string(),
        bid: bid.map(|l| (l.price, l.qty)),
        ask: ask.map(|l| (l.price, l.qty)),
        ts_ms: ev.ts,
        source_partition: ev.source_partition,
        seq: i64::try_from(ev.seq).unwrap_or(i64::MAX),
    })
}

#[cfg(test)]
mod tests;
