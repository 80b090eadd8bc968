//! The rows the workers write and `tradestream query` reads, independent of any backend.
//!
//! Every row carries the position it came from: `source_partition` (the `orders` partition, which
//! is also the partition of every matcher output) and `seq` (the output topic's contiguous counter
//! for that partition). It is the version of a row (Scylla's `USING TIMESTAMP` is derived from
//! `seq`, so a replay converges on the same state whatever order the writes land in), and with
//! the row's own key it makes writing the same row twice leave one row. For trades, one
//! `(source_partition, seq)` is one row; one execution can tell several accounts, so a
//! notification is `(account, source_partition, seq)`
//! ([`NotificationRow::idempotency_key`]).

use tradestream_engine::{Decimal, Side};

/// Days since 1970-01-01 (UTC) of an event time in milliseconds.
pub fn day_of(ts_ms: i64) -> i32 {
    // 86_400_000 ms per day; `div_euclid` keeps times before 1970 on the right day.
    i32::try_from(ts_ms.div_euclid(86_400_000)).unwrap_or(i32::MAX)
}

/// One fill, as the `trades` topic carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeRow {
    /// Instrument.
    pub symbol: String,
    /// Source (orders) partition.
    pub source_partition: i32,
    /// `trades` topic seq within that partition.
    pub seq: i64,
    /// Event time, ms since the epoch.
    pub ts_ms: i64,
    /// Fill price.
    pub price: Decimal,
    /// Fill quantity.
    pub qty: Decimal,
    /// Resting order.
    pub maker_order_id: String,
    /// Its owner.
    pub maker_account: String,
    /// Incoming order.
    pub taker_order_id: String,
    /// Its owner.
    pub taker_account: String,
    /// The incoming order's side.
    pub taker_side: Side,
}

impl TradeRow {
    /// The accounts that took part and their stored role: `maker` and `taker`, or a single
    /// `self` entry when both sides belong to one account (a self-match is one
    /// trades-by-account row, not two).
    pub fn account_roles(&self) -> impl Iterator<Item = (&str, &'static str)> {
        let self_match = self.maker_account == self.taker_account;
        let maker_role = if self_match { "self" } else { "maker" };
        let taker = (!self_match).then_some((self.taker_account.as_str(), "taker"));
        std::iter::once((self.maker_account.as_str(), maker_role)).chain(taker)
    }
}

/// The side with this stored name (`buy`, `sell`: [`Side::as_str`]).
pub fn side_from_str(s: &str) -> Option<Side> {
    [Side::Buy, Side::Sell]
        .into_iter()
        .find(|side| side.as_str() == s)
}

/// Where an order stands, folded from its executions. Keyed by (`symbol`, `order_id`): order ids
/// are unique per book only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderStateRow {
    /// The order.
    pub order_id: String,
    /// Its owner.
    pub account: String,
    /// Instrument.
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// Status.
    pub status: OrderStatus,
    /// Limit price (none for market orders).
    pub price: Option<Decimal>,
    /// Ordered quantity (after replaces).
    pub qty: Decimal,
    /// Filled so far.
    pub filled_qty: Decimal,
    /// Volume-weighted average fill price (none before the first fill): `notional /
    /// filled_qty` rounded half-even.
    pub avg_price: Option<Decimal>,
    /// Σ price × qty of the fills, exact, at scale price scale + qty scale (the largest over
    /// the fills); zero before the first fill. The trade recorder resumes an order's average
    /// from it after a restart, so it is never rounded.
    pub notional: Decimal,
    /// Event time of the last change, ms.
    pub updated_ts_ms: i64,
    /// Source partition of the last change.
    pub source_partition: i32,
    /// `executions` seq of the last change.
    pub seq: i64,
}

/// An order's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Resting, nothing filled.
    New,
    /// Partly filled, rest still working.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Cancelled by its owner (possibly after partial fills).
    Cancelled,
    /// The unfilled rest of an IOC/FOK/market order was dropped.
    Expired,
    /// Refused at entry.
    Rejected,
}

impl OrderStatus {
    /// Every status, for parsing.
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::New,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::Rejected,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "new",
            OrderStatus::PartiallyFilled => "partially_filled",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::Rejected => "rejected",
        }
    }

    /// The status with this stored name.
    pub fn parse(s: &str) -> Option<OrderStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// Candle intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Interval {
    /// One second.
    S1,
    /// One minute.
    M1,
    /// One hour.
    H1,
}

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 3] = [Interval::S1, Interval::M1, Interval::H1];

    /// Length in milliseconds.
    pub const fn millis(self) -> i64 {
        match self {
            Interval::S1 => 1_000,
            Interval::M1 => 60_000,
            Interval::H1 => 3_600_000,
        }
    }

    /// The stored name: `1s`, `1m`, `1h`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Interval::S1 => "1s",
            Interval::M1 => "1m",
            Interval::H1 => "1h",
        }
    }

    /// The interval with this name.
    pub fn parse(s: &str) -> Option<Interval> {
        Self::ALL.into_iter().find(|i| i.as_str() == s)
    }

    /// Start of the bucket holding `ts_ms`.
    pub const fn bucket_start(self, ts_ms: i64) -> i64 {
        ts_ms - ts_ms.rem_euclid(self.millis())
    }
}

/// One OHLC bucket of trades (by event time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandleRow {
    /// Instrument.
    pub symbol: String,
    /// Bucket length.
    pub interval: Interval,
    /// Bucket start, ms since the epoch.
    pub bucket_start_ms: i64,
    /// First trade's price.
    pub open: Decimal,
    /// Highest price.
    pub high: Decimal,
    /// Lowest price.
    pub low: Decimal,
    /// Last trade's price.
    pub close: Decimal,
    /// Sum of quantities.
    pub volume: Decimal,
    /// Sum of price × quantity.
    pub turnover: Decimal,
    /// turnover / volume, rounded half-even to the price scale + 4 digits.
    pub vwap: Decimal,
    /// Trades in the bucket.
    pub trade_count: i64,
    /// Whether the watermark has passed the bucket's end (no more trades will change it).
    pub closed: bool,
    /// Source partition of the last trade in it.
    pub source_partition: i32,
    /// `trades` seq of the last trade in it.
    pub seq: i64,
}

/// Best bid and ask of one symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopOfBookRow {
    /// Instrument.
    pub symbol: String,
    /// Best bid price and quantity.
    pub bid: Option<(Decimal, Decimal)>,
    /// Best ask price and quantity.
    pub ask: Option<(Decimal, Decimal)>,
    /// Event time, ms.
    pub ts_ms: i64,
    /// Source partition.
    pub source_partition: i32,
    /// `market-data` seq.
    pub seq: i64,
}

/// What happened to an account's order, as told to the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    /// The account told.
    pub account: String,
    /// Source partition of the execution.
    pub source_partition: i32,
    /// `executions` seq of the execution.
    pub seq: i64,
    /// Event time, ms.
    pub ts_ms: i64,
    /// `accepted`, `fill`, `cancelled`, `replaced`, `expired` or `rejected`.
    pub kind: String,
    /// The order.
    pub order_id: String,
    /// Instrument.
    pub symbol: String,
    /// Human-readable text (e.g. "bought 0.5 BTC-USD at 60000.00", "rejected: price_off_tick").
    pub text: String,
}

impl NotificationRow {
    /// What identifies a notification, in the store and on the `notifications` topic:
    /// `(account, source_partition, seq)`. Not `(source_partition, seq)` alone: `seq` is the
    /// execution's, and the two sides of a trade between two accounts are two notifications
    /// of one execution. (A self-match is one combined notification, so the key is unique.)
    pub fn idempotency_key(&self) -> (&str, i32, i64) {
        (self.account.as_str(), self.source_partition, self.seq)
    }
}

/// Where a consumer stands on one input partition, written in the same transaction as the rows
/// it covers (SQLite) or after them (Scylla).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRow {
    /// Consumer (worker group).
    pub consumer: String,
    /// Input topic.
    pub topic: String,
    /// Input partition.
    pub partition: i32,
    /// Next offset to read.
    pub next_offset: i64,
    /// The worker's event-time watermark for this partition (ms; market-data only).
    pub watermark_ms: Option<i64>,
}

impl OffsetRow {
    /// `consumer` goes on at `next_offset` of `topic`/`partition` (no watermark).
    pub fn at(consumer: &str, topic: &str, partition: i32, next_offset: i64) -> Self {
        OffsetRow {
            consumer: consumer.to_owned(),
            topic: topic.to_owned(),
            partition,
            next_offset,
            watermark_ms: None,
        }
    }
}

/// Everything one consumed batch writes: applied atomically with its offsets where the backend
/// can (SQLite), idempotently and offsets last where it cannot (Scylla).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Trades (each goes to the by-symbol and, once per account, the by-account table).
    pub trades: Vec<TradeRow>,
    /// Order states (upserts; the latest per order wins).
    pub orders: Vec<OrderStateRow>,
    /// Candles (upserts by symbol, interval, bucket).
    pub candles: Vec<CandleRow>,
    /// Tops of book (upserts by symbol).
    pub tops: Vec<TopOfBookRow>,
    /// Notifications.
    pub notifications: Vec<NotificationRow>,
    /// Input positions after this batch.
    pub offsets: Vec<OffsetRow>,
}

impl Batch {
    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.trades.is_empty()
            && self.orders.is_empty()
            && self.candles.is_empty()
            && self.tops.is_empty()
            && self.notifications.is_empty()
            && self.offsets.is_empty()
    }
}

/// Row counts, for the demo's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Trades (by symbol).
    pub trades: u64,
    /// Order states.
    pub orders: u64,
    /// Candles (every interval).
    pub candles: u64,
    /// Symbols with a top of book.
    pub tops: u64,
    /// Notifications.
    pub notifications: u64,
}

#[cfg(test)]
mod tests;
