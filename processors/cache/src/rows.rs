//! The store's rows as the cache keeps them: one JSON object each, decimals as strings (never
//! floats), sides, statuses and intervals by their stored names. The encoding is deterministic
//! (fields in a fixed order), so the same row is always the same bytes: a replayed trade is the
//! same member of its sorted set.

use serde::{Deserialize, Serialize};
use tradestream_engine::Decimal;
use tradestream_store::model::{
    CandleRow, Interval, OrderStateRow, OrderStatus, TopOfBookRow, TradeRow, side_from_str,
};

use crate::CacheError;

/// A row the cache holds.
pub trait CachedRow: Sized {
    /// The row as stored.
    fn encode(&self) -> String;
    /// The row back from its stored text; `key` names it in the error.
    fn decode(text: &str, key: &str) -> Result<Self, CacheError>;
}

fn corrupt(key: &str, detail: impl std::fmt::Display) -> CacheError {
    CacheError::Corrupt {
        key: key.to_owned(),
        detail: detail.to_string(),
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Plain structs of strings and integers: serialization cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

fn from_json<'a, T: Deserialize<'a>>(text: &'a str, key: &str) -> Result<T, CacheError> {
    serde_json::from_str(text).map_err(|e| corrupt(key, e))
}

#[derive(Serialize, Deserialize)]
struct Trade {
    symbol: String,
    source_partition: i32,
    seq: i64,
    ts_ms: i64,
    price: Decimal,
    qty: Decimal,
    maker_order_id: String,
    maker_account: String,
    taker_order_id: String,
    taker_account: String,
    taker_side: String,
}

impl CachedRow for TradeRow {
    fn encode(&self) -> String {
        to_json(&Trade {
            symbol: self.symbol.clone(),
            source_partition: self.source_partition,
            seq: self.seq,
            ts_ms: self.ts_ms,
            price: self.price,
            qty: self.qty,
            maker_order_id: self.maker_order_id.clone(),
            maker_account: self.maker_account.clone(),
            taker_order_id: self.taker_order_id.clone(),
            taker_account: self.taker_account.clone(),
            taker_side: self.taker_side.as_str().to_owned(),
        })
    }

    fn decode(text: &str, key: &str) -> Result<Self, CacheError> {
        let t: Trade = from_json(text, key)?;
        Ok(TradeRow {
            taker_side: side_from_str(&t.taker_side)
                .ok_or_else(|| corrupt(key, format!("side {:?}", t.taker_side)))?,
            symbol: t.symbol,
            source_partition: t.source_partition,
            seq: t.seq,
            ts_ms: t.ts_ms,
            price: t.price,
            qty: t.qty,
            maker_order_id: t.maker_order_id,
            maker_account: t.maker_account,
            taker_order_id: t.taker_order_id,
            taker_account: t.taker_account,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Order {
    order_id: String,
    account: String,
    symbol: String,
    side: String,
    status: String,
    price: Option<Decimal>,
    qty: Decimal,
    filled_qty: Decimal,
    avg_price: Option<Decimal>,
    notional: Decimal,
    updated_ts_ms: i64,
    source_partition: i32,
    seq: i64,
}

impl CachedRow for OrderStateRow {
    fn encode(&self) -> String {
        to_json(&Order {
            order_id: self.order_id.clone(),
            account: self.account.clone(),
            symbol: self.symbol.clone(),
            side: self.side.as_str().to_owned(),
            status: self.status.as_str().to_owned(),
            price: self.price,
            qty: self.qty,
            filled_qty: self.filled_qty,
            avg_price: self.avg_price,
            notional: self.notional,
            updated_ts_ms: self.updated_ts_ms,
            source_partition: self.source_partition,
            seq: self.seq,
        })
    }

    fn decode(text: &str, key: &str) -> Result<Self, CacheError> {
        let o: Order = from_json(text, key)?;
        Ok(OrderStateRow {
            side: side_from_str(&o.side)
                .ok_or_else(|| corrupt(key, format!("side {:?}", o.side)))?,
            status: OrderStatus::parse(&o.status)
                .ok_or_else(|| corrupt(key, format!("status {:?}", o.status)))?,
            order_id: o.order_id,
            account: o.account,
            symbol: o.symbol,
            price: o.price,
            qty: o.qty,
            filled_qty: o.filled_qty,
            avg_price: o.avg_price,
            notional: o.notional,
            updated_ts_ms: o.updated_ts_ms,
            source_partition: o.source_partition,
            seq: o.seq,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Candle {
    symbol: String,
    interval: String,
    bucket_start_ms: i64,
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
    turnover: Decimal,
    vwap: Decimal,
    trade_count: i64,
    closed: bool,
    source_partition: i32,
    seq: i64,
}

impl CachedRow for CandleRow {
    fn encode(&self) -> String {
        to_json(&Candle {
            symbol: self.symbol.clone(),
            interval: self.interval.as_str().to_owned(),
            bucket_start_ms: self.bucket_start_ms,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            turnover: self.turnover,
            vwap: self.vwap,
            trade_count: self.trade_count,
            closed: self.closed,
            source_partition: self.source_partition,
            seq: self.seq,
        })
    }

    fn decode(text: &str, key: &str) -> Result<Self, CacheError> {
        let c: Candle = from_json(text, key)?;
        Ok(CandleRow {
            interval: Interval::parse(&c.interval)
                .ok_or_else(|| corrupt(key, format!("interval {:?}", c.interval)))?,
            symbol: c.symbol,
            bucket_start_ms: c.bucket_start_ms,
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
            turnover: c.turnover,
            vwap: c.vwap,
            trade_count: c.trade_count,
            closed: c.closed,
            source_partition: c.source_partition,
            seq: c.seq,
        })
    }
}

/// One side of the book: `[price, qty]`.
type Level = Option<(Decimal, Decimal)>;

#[derive(Serialize, Deserialize)]
struct Book {
    symbol: String,
    bid: Level,
    ask: Level,
    ts_ms: i64,
    source_partition: i32,
    seq: i64,
}

impl CachedRow for TopOfBookRow {
    fn encode(&self) -> String {
        to_json(&Book {
            symbol: self.symbol.clone(),
            bid: self.bid,
            ask: self.ask,
            ts_ms: self.ts_ms,
            source_partition: self.source_partition,
            seq: self.seq,
        })
    }

    fn decode(text: &str, key: &str) -> Result<Self, CacheError> {
        let b: Book = from_json(text, key)?;
        Ok(TopOfBookRow {
            symbol: b.symbol,
            bid: b.bid,
            ask: b.ask,
            ts_ms: b.ts_ms,
            source_partition: b.source_partition,
            seq: b.seq,
        })
    }
}

#[cfg(test)]
mod tests;
