//! The rows as the driver binds and reads them: one struct per statement shape, with the
//! driver's `SerializeRow` / `DeserializeRow` derives, which match fields to the statement's
//! columns and bind markers **by name** (a renamed or reordered column is an error when the
//! statement is first used, never a value in the wrong column). Every write binds `ts`, its
//! `USING TIMESTAMP` (see the module documentation of `scylla`).
//!
//! The column lists of the statements come from the same structs' field names
//! ([`columns`]), so a statement and its row cannot drift apart.

use scylla::value::CqlDecimal;
use scylla::{DeserializeRow, SerializeRow};

use super::buckets::{candle_period, day_bucket};
use super::decimal::{CqlDec, dec, opt_dec};
use crate::{
    CandleRow, Interval, NotificationRow, OffsetRow, OrderStateRow, OrderStatus, Result,
    StoreError, TopOfBookRow, TradeRow, day_of, side_from_str,
};

/// Columns of the write rows below, in the order their statements list them.
pub(crate) mod columns {
    /// `trades_by_symbol`.
    pub const TRADE_BY_SYMBOL: &[&str] = &[
        "symbol",
        "day",
        "seq",
        "source_partition",
        "ts_ms",
        "price",
        "qty",
        "maker_order_id",
        "maker_account",
        "taker_order_id",
        "taker_account",
        "taker_side",
    ];
    /// `trades_by_account_day`.
    pub const TRADE_BY_ACCOUNT: &[&str] = &[
        "account",
        "day",
        "ts_ms",
        "source_partition",
        "seq",
        "role",
        "symbol",
        "price",
        "qty",
        "maker_order_id",
        "maker_account",
        "taker_order_id",
        "taker_account",
        "taker_side",
    ];
    /// What a trade read selects (from either trade table).
    pub const TRADE_READ: &[&str] = &[
        "symbol",
        "source_partition",
        "seq",
        "ts_ms",
        "price",
        "qty",
        "maker_order_id",
        "maker_account",
        "taker_order_id",
        "taker_account",
        "taker_side",
    ];
    /// `orders_by_symbol` (written and read).
    pub const ORDER: &[&str] = &[
        "symbol",
        "order_id",
        "account",
        "side",
        "status",
        "price",
        "qty",
        "filled_qty",
        "avg_price",
        "notional",
        "updated_ts_ms",
        "source_partition",
        "seq",
    ];
    /// What a candle read selects (from either candle table); `open_candles` is written with
    /// these columns.
    pub const CANDLE: &[&str] = &[
        "symbol",
        "interval",
        "bucket_start_ms",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "turnover",
        "vwap",
        "trade_count",
        "closed",
        "source_partition",
        "seq",
    ];
    /// `candles_by_period`: [`CANDLE`] and the period.
    pub const CANDLE_BY_PERIOD: &[&str] = &[
        "symbol",
        "interval",
        "period",
        "bucket_start_ms",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "turnover",
        "vwap",
        "trade_count",
        "closed",
        "source_partition",
        "seq",
    ];
    /// `top_of_book` (written and read).
    pub const TOP: &[&str] = &[
        "symbol",
        "bid_price",
        "bid_qty",
        "ask_price",
        "ask_qty",
        "ts_ms",
        "source_partition",
        "seq",
    ];
    /// `notifications_by_account_day`.
    pub const NOTIFICATION: &[&str] = &[
        "account",
        "day",
        "ts_ms",
        "source_partition",
        "seq",
        "kind",
        "order_id",
        "symbol",
        "message",
    ];
    /// What a notification read selects.
    pub const NOTIFICATION_READ: &[&str] = &[
        "account",
        "ts_ms",
        "source_partition",
        "seq",
        "kind",
        "order_id",
        "symbol",
        "message",
    ];
    /// `consumer_offsets`.
    pub const OFFSET: &[&str] = &[
        "consumer",
        "topic",
        "partition",
        "next_offset",
        "watermark_ms",
    ];
}

// ---------------------------------------------------------------------------------------------
// Writes

/// A `trades_by_symbol` row.
#[derive(SerializeRow)]
pub(crate) struct TradeBySymbolW<'a> {
    symbol: &'a str,
    day: i32,
    seq: i64,
    source_partition: i32,
    ts_ms: i64,
    price: CqlDec,
    qty: CqlDec,
    maker_order_id: &'a str,
    maker_account: &'a str,
    taker_order_id: &'a str,
    taker_account: &'a str,
    taker_side: &'a str,
    ts: i64,
}

impl<'a> TradeBySymbolW<'a> {
    pub(crate) fn new(t: &'a TradeRow) -> Self {
        TradeBySymbolW {
            symbol: &t.symbol,
            day: day_of(t.ts_ms),
            seq: t.seq,
            source_partition: t.source_partition,
            ts_ms: t.ts_ms,
            price: CqlDec(t.price),
            qty: CqlDec(t.qty),
            maker_order_id: &t.maker_order_id,
            maker_account: &t.maker_account,
            taker_order_id: &t.taker_order_id,
            taker_account: &t.taker_account,
            taker_side: t.taker_side.as_str(),
            ts: t.seq,
        }
    }
}

/// A `trades_by_account_day` row: the trade as one account sees it (`role`).
#[derive(SerializeRow)]
pub(crate) struct AccountTradeW<'a> {
    account: &'a str,
    day: i32,
    ts_ms: i64,
    source_partition: i32,
    seq: i64,
    role: &'a str,
    symbol: &'a str,
    price: CqlDec,
    qty: CqlDec,
    maker_order_id: &'a str,
    maker_account: &'a str,
    taker_order_id: &'a str,
    taker_account: &'a str,
    taker_side: &'a str,
    ts: i64,
}

impl<'a> AccountTradeW<'a> {
    pub(crate) fn new(t: &'a TradeRow, account: &'a str, role: &'a str) -> Self {
        AccountTradeW {
            account,
            day: day_bucket(t.ts_ms),
            ts_ms: t.ts_ms,
            source_partition: t.source_partition,
            seq: t.seq,
            role,
            symbol: &t.symbol,
            price: CqlDec(t.price),
            qty: CqlDec(t.qty),
            maker_order_id: &t.maker_order_id,
            maker_account: &t.maker_account,
            taker_order_id: &t.taker_order_id,
            taker_account: &t.taker_account,
            taker_side: t.taker_side.as_str(),
            ts: t.seq,
        }
    }
}

/// A row of a day index (`trade_days`, `account_trade_days`, `account_notification_days`):
/// `key` is the symbol or the account.
#[derive(SerializeRow)]
pub(crate) struct DayW<'a> {
    key: &'a str,
    day: i32,
    ts: i64,
}

impl<'a> DayW<'a> {
    pub(crate) fn new(key: &'a str, day: i32, ts: i64) -> Self {
        DayW { key, day, ts }
    }
}

/// A `candle_periods` row.
#[derive(SerializeRow)]
pub(crate) struct PeriodW<'a> {
    symbol: &'a str,
    interval: &'a str,
    period: i64,
    ts: i64,
}

impl<'a> PeriodW<'a> {
    pub(crate) fn new(c: &'a CandleRow) -> Self {
        PeriodW {
            symbol: &c.symbol,
            interval: c.interval.as_str(),
            period: candle_period(c.interval, c.bucket_start_ms),
            ts: c.seq,
        }
    }
}

/// An `orders_by_symbol` row.
#[derive(SerializeRow)]
pub(crate) struct OrderW<'a> {
    symbol: &'a str,
    order_id: &'a str,
    account: &'a str,
    side: &'a str,
    status: &'a str,
    price: Option<CqlDec>,
    qty: CqlDec,
    filled_qty: CqlDec,
    avg_price: Option<CqlDec>,
    notional: CqlDec,
    updated_ts_ms: i64,
    source_partition: i32,
    seq: i64,
    ts: i64,
}

impl<'a> OrderW<'a> {
    pub(crate) fn new(o: &'a OrderStateRow) -> Self {
        OrderW {
            symbol: &o.symbol,
            order_id: &o.order_id,
            account: &o.account,
            side: o.side.as_str(),
            status: o.status.as_str(),
            price: o.price.map(CqlDec),
            qty: CqlDec(o.qty),
            filled_qty: CqlDec(o.filled_qty),
            avg_price: o.avg_price.map(CqlDec),
            notional: CqlDec(o.notional),
            updated_ts_ms: o.updated_ts_ms,
            source_partition: o.source_partition,
            seq: o.seq,
            ts: o.seq,
        }
    }
}

/// The values of a candle, shared by `candles_by_period` and `open_candles`.
#[derive(SerializeRow)]
pub(crate) struct CandleValuesW<'a> {
    symbol: &'a str,
    interval: &'a str,
    bucket_start_ms: i64,
    open: CqlDec,
    high: CqlDec,
    low: CqlDec,
    close: CqlDec,
    volume: CqlDec,
    turnover: CqlDec,
    vwap: CqlDec,
    trade_count: i64,
    closed: bool,
    source_partition: i32,
    seq: i64,
    ts: i64,
}

impl<'a> CandleValuesW<'a> {
    pub(crate) fn new(c: &'a CandleRow) -> Self {
        CandleValuesW {
            symbol: &c.symbol,
            interval: c.interval.as_str(),
            bucket_start_ms: c.bucket_start_ms,
            open: CqlDec(c.open),
            high: CqlDec(c.high),
            low: CqlDec(c.low),
            close: CqlDec(c.close),
            volume: CqlDec(c.volume),
            turnover: CqlDec(c.turnover),
            vwap: CqlDec(c.vwap),
            trade_count: c.trade_count,
            closed: c.closed,
            source_partition: c.source_partition,
            seq: c.seq,
            ts: c.seq,
        }
    }
}

/// A `candles_by_period` row: the candle in its period's partition.
#[derive(SerializeRow)]
pub(crate) struct CandleByPeriodW<'a> {
    period: i64,
    #[scylla(flatten)]
    values: CandleValuesW<'a>,
}

impl<'a> CandleByPeriodW<'a> {
    pub(crate) fn new(c: &'a CandleRow) -> Self {
        CandleByPeriodW {
            period: candle_period(c.interval, c.bucket_start_ms),
            values: CandleValuesW::new(c),
        }
    }
}

/// The key of an `open_candles` row, deleted `USING TIMESTAMP ts` once its candle is closed.
#[derive(SerializeRow)]
pub(crate) struct OpenCandleKeyW<'a> {
    source_partition: i32,
    symbol: &'a str,
    interval: &'a str,
    bucket_start_ms: i64,
    ts: i64,
}

impl<'a> OpenCandleKeyW<'a> {
    pub(crate) fn new(c: &'a CandleRow) -> Self {
        OpenCandleKeyW {
            source_partition: c.source_partition,
            symbol: &c.symbol,
            interval: c.interval.as_str(),
            bucket_start_ms: c.bucket_start_ms,
            ts: c.seq,
        }
    }
}

/// A `top_of_book` row; a side's price and qty are both null when that side is empty.
#[derive(SerializeRow)]
pub(crate) struct TopW<'a> {
    symbol: &'a str,
    bid_price: Option<CqlDec>,
    bid_qty: Option<CqlDec>,
    ask_price: Option<CqlDec>,
    ask_qty: Option<CqlDec>,
    ts_ms: i64,
    source_partition: i32,
    seq: i64,
    ts: i64,
}

impl<'a> TopW<'a> {
    pub(crate) fn new(t: &'a TopOfBookRow) -> Self {
        TopW {
            symbol: &t.symbol,
            bid_price: t.bid.map(|(p, _)| CqlDec(p)),
            bid_qty: t.bid.map(|(_, q)| CqlDec(q)),
            ask_price: t.ask.map(|(p, _)| CqlDec(p)),
            ask_qty: t.ask.map(|(_, q)| CqlDec(q)),
            ts_ms: t.ts_ms,
            source_partition: t.source_partition,
            seq: t.seq,
            ts: t.seq,
        }
    }
}

/// A `notifications_by_account_day` row.
#[derive(SerializeRow)]
pub(crate) struct NotificationW<'a> {
    account: &'a str,
    day: i32,
    ts_ms: i64,
    source_partition: i32,
    seq: i64,
    kind: &'a str,
    order_id: &'a str,
    symbol: &'a str,
    message: &'a str,
    ts: i64,
}

impl<'a> NotificationW<'a> {
    pub(crate) fn new(n: &'a NotificationRow) -> Self {
        NotificationW {
            account: &n.account,
            day: day_bucket(n.ts_ms),
            ts_ms: n.ts_ms,
            source_partition: n.source_partition,
            seq: n.seq,
            kind: &n.kind,
            order_id: &n.order_id,
            symbol: &n.symbol,
            message: &n.text,
            ts: n.seq,
        }
    }
}

/// A `consumer_offsets` row, `USING TIMESTAMP` its next offset (never moves back).
#[derive(SerializeRow)]
pub(crate) struct OffsetW<'a> {
    consumer: &'a str,
    topic: &'a str,
    partition: i32,
    next_offset: i64,
    watermark_ms: Option<i64>,
    ts: i64,
}

impl<'a> OffsetW<'a> {
    pub(crate) fn new(o: &'a OffsetRow) -> Self {
        OffsetW {
            consumer: &o.consumer,
            topic: &o.topic,
            partition: o.partition,
            next_offset: o.next_offset,
            watermark_ms: o.watermark_ms,
            ts: o.next_offset,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reads

fn corrupt(table: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { table, detail }
}

/// A trade as read from `trades_by_symbol` or `trades_by_account_day`.
#[derive(DeserializeRow)]
pub(crate) struct TradeR {
    symbol: String,
    source_partition: i32,
    seq: i64,
    ts_ms: i64,
    price: CqlDecimal,
    qty: CqlDecimal,
    maker_order_id: String,
    maker_account: String,
    taker_order_id: String,
    taker_account: String,
    taker_side: String,
}

impl TradeR {
    pub(crate) fn into_row(self, table: &'static str) -> Result<TradeRow> {
        let side = self.taker_side;
        Ok(TradeRow {
            price: dec(&self.price, table, "price")?,
            qty: dec(&self.qty, table, "qty")?,
            taker_side: side_from_str(&side)
                .ok_or_else(|| corrupt(table, format!("unknown side {side:?}")))?,
            symbol: self.symbol,
            source_partition: self.source_partition,
            seq: self.seq,
            ts_ms: self.ts_ms,
            maker_order_id: self.maker_order_id,
            maker_account: self.maker_account,
            taker_order_id: self.taker_order_id,
            taker_account: self.taker_account,
        })
    }
}

/// An order state as read from `orders_by_symbol` (or the old `orders`).
#[derive(DeserializeRow)]
pub(crate) struct OrderR {
    symbol: String,
    order_id: String,
    account: String,
    side: String,
    status: String,
    price: Option<CqlDecimal>,
    qty: CqlDecimal,
    filled_qty: CqlDecimal,
    avg_price: Option<CqlDecimal>,
    notional: CqlDecimal,
    updated_ts_ms: i64,
    source_partition: i32,
    seq: i64,
}

impl OrderR {
    pub(crate) fn into_row(self) -> Result<OrderStateRow> {
        const T: &str = "orders_by_symbol";
        let (side, status) = (self.side, self.status);
        Ok(OrderStateRow {
            side: side_from_str(&side)
                .ok_or_else(|| corrupt(T, format!("unknown side {side:?}")))?,
            status: OrderStatus::parse(&status)
                .ok_or_else(|| corrupt(T, format!("unknown status {status:?}")))?,
            price: opt_dec(&self.price, T, "price")?,
            qty: dec(&self.qty, T, "qty")?,
            filled_qty: dec(&self.filled_qty, T, "filled_qty")?,
            avg_price: opt_dec(&self.avg_price, T, "avg_price")?,
            notional: dec(&self.notional, T, "notional")?,
            order_id: self.order_id,
            account: self.account,
            symbol: self.symbol,
            updated_ts_ms: self.updated_ts_ms,
            source_partition: self.source_partition,
            seq: self.seq,
        })
    }
}

/// A candle as read from `candles_by_period`, `open_candles` (or the old `candles`).
#[derive(DeserializeRow)]
pub(crate) struct CandleR {
    symbol: String,
    interval: String,
    bucket_start_ms: i64,
    open: CqlDecimal,
    high: CqlDecimal,
    low: CqlDecimal,
    close: CqlDecimal,
    volume: CqlDecimal,
    turnover: CqlDecimal,
    vwap: CqlDecimal,
    trade_count: i64,
    closed: bool,
    source_partition: i32,
    seq: i64,
}

impl CandleR {
    pub(crate) fn into_row(self) -> Result<CandleRow> {
        const T: &str = "candles";
        let interval = self.interval;
        Ok(CandleRow {
            interval: Interval::parse(&interval)
                .ok_or_else(|| corrupt(T, format!("unknown interval {interval:?}")))?,
            open: dec(&self.open, T, "open")?,
            high: dec(&self.high, T, "high")?,
            low: dec(&self.low, T, "low")?,
            close: dec(&self.close, T, "close")?,
            volume: dec(&self.volume, T, "volume")?,
            turnover: dec(&self.turnover, T, "turnover")?,
            vwap: dec(&self.vwap, T, "vwap")?,
            symbol: self.symbol,
            bucket_start_ms: self.bucket_start_ms,
            trade_count: self.trade_count,
            closed: self.closed,
            source_partition: self.source_partition,
            seq: self.seq,
        })
    }
}

/// A `top_of_book` row as read.
#[derive(DeserializeRow)]
pub(crate) struct TopR {
    symbol: String,
    bid_price: Option<CqlDecimal>,
    bid_qty: Option<CqlDecimal>,
    ask_price: Option<CqlDecimal>,
    ask_qty: Option<CqlDecimal>,
    ts_ms: i64,
    source_partition: i32,
    seq: i64,
}

impl TopR {
    pub(crate) fn into_row(self) -> Result<TopOfBookRow> {
        const T: &str = "top_of_book";
        let level =
            |side: &str, price: Option<CqlDecimal>, qty: Option<CqlDecimal>| match (price, qty) {
                (Some(p), Some(q)) => Ok(Some((dec(&p, T, side)?, dec(&q, T, side)?))),
                (None, None) => Ok(None),
                _ => Err(corrupt(
                    T,
                    format!("{side}: price and qty must both be set or null"),
                )),
            };
        Ok(TopOfBookRow {
            bid: level("bid", self.bid_price, self.bid_qty)?,
            ask: level("ask", self.ask_price, self.ask_qty)?,
            symbol: self.symbol,
            ts_ms: self.ts_ms,
            source_partition: self.source_partition,
            seq: self.seq,
        })
    }
}

/// A notification as read from `notifications_by_account_day` (or the old table).
#[derive(DeserializeRow)]
pub(crate) struct NotificationR {
    account: String,
    ts_ms: i64,
    source_partition: i32,
    seq: i64,
    kind: String,
    order_id: String,
    symbol: String,
    message: String,
}

impl NotificationR {
    pub(crate) fn into_row(self) -> Result<NotificationRow> {
        Ok(NotificationRow {
            account: self.account,
            source_partition: self.source_partition,
            seq: self.seq,
            ts_ms: self.ts_ms,
            kind: self.kind,
            order_id: self.order_id,
            symbol: self.symbol,
            text: self.message,
        })
    }
}

/// A consumer position as read (the key is what was asked for).
#[derive(DeserializeRow)]
pub(crate) struct OffsetR {
    pub(crate) next_offset: i64,
    pub(crate) watermark_ms: Option<i64>,
}

/// A trade as the old `trades_by_account` held it, with its account and role: moved by
/// `store migrate` (the derive has no `flatten` for reads, hence the repeated columns).
#[derive(DeserializeRow)]
pub(crate) struct LegacyAccountTradeR {
    account: String,
    role: String,
    symbol: String,
    source_partition: i32,
    seq: i64,
    ts_ms: i64,
    price: CqlDecimal,
    qty: CqlDecimal,
    maker_order_id: String,
    maker_account: String,
    taker_order_id: String,
    taker_account: String,
    taker_side: String,
}

impl LegacyAccountTradeR {
    /// (account, role, trade).
    pub(crate) fn into_parts(self) -> Result<(String, String, TradeRow)> {
        let trade = TradeR {
            symbol: self.symbol,
            source_partition: self.source_partition,
            seq: self.seq,
            ts_ms: self.ts_ms,
            price: self.price,
            qty: self.qty,
            maker_order_id: self.maker_order_id,
            maker_account: self.maker_account,
            taker_order_id: self.taker_order_id,
            taker_account: self.taker_account,
            taker_side: self.taker_side,
        }
        .into_row("trades_by_account")?;
        Ok((self.account, self.role, trade))
    }
}
