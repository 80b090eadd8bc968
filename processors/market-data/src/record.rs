//! Candle rows as the `candles` topic's Avro record (`schemas/candle.avsc`, encoded by
//! [`tradestream_codec::records`]).

use tradestream_codec::avro::{AvroError, Framing};
use tradestream_codec::records::{CandleRecord, decode_candle, encode_candle};
use tradestream_store::model::{CandleRow, Interval};

/// The record of a candle row.
pub fn to_record(row: &CandleRow) -> CandleRecord {
    CandleRecord {
        symbol: row.symbol.clone(),
        interval: row.interval.as_str().to_owned(),
        bucket_start_ms: row.bucket_start_ms,
        open: row.open,
        high: row.high,
        low: row.low,
        close: row.close,
        volume: row.volume,
        turnover: row.turnover,
        vwap: row.vwap,
        trade_count: row.trade_count,
        closed: row.closed,
        source_partition: row.source_partition,
        seq: row.seq,
    }
}

/// The candle row of a record; fails on an interval name other than `1s`, `1m`, `1h`.
pub fn from_record(rec: CandleRecord) -> Result<CandleRow, AvroError> {
    let interval = Interval::parse(&rec.interval).ok_or_else(|| AvroError::Field {
        field: "interval",
        reason: format!("unknown interval {:?}", rec.interval),
    })?;
    Ok(CandleRow {
        symbol: rec.symbol,
        interval,
        bucket_start_ms: rec.bucket_start_ms,
        open: rec.open,
        high: rec.high,
        low: rec.low,
        close: rec.close,
        volume: rec.volume,
        turnover: rec.turnover,
        vwap: rec.vwap,
        trade_count: rec.trade_count,
        closed: rec.closed,
        source_partition: rec.source_partition,
        seq: rec.seq,
    })
}

/// Encodes a candle for the `candles` topic.
pub fn encode(row: &CandleRow, framing: Framing) -> Result<Vec<u8>, AvroError> {
    encode_candle(&to_record(row), framing)
}

/// Reads a candle from the `candles` topic (either framing).
pub fn decode(bytes: &[u8]) -> Result<CandleRow, AvroError> {
    decode_candle(bytes).and_then(from_record)
}

#[cfg(test)]
mod tests;
