//! # tradestream-market-data
//!
//! Market data for `tradestream query` and the `candles` topic: OHLC candles per symbol and
//! interval by event time, and each symbol's top of book.
//!
//! ## Layout
//! - [`candles`]: the pure part — [`CandleBuilder`](candles::CandleBuilder) turns one source
//!   partition's trades into candles, closed by an event-time watermark (the rules for late
//!   trades are in its documentation); [`top_of_book`](candles::top_of_book) maps the
//!   `market-data` topic's top-of-book events to rows.
//! - [`record`]: candle rows to and from the `candles` topic's Avro record.
//!
//! - [`worker`]: the [`Worker`](tradestream_runtime::Worker) the shared consumer loop drives:
//!   decode, build candles and tops of book, produce closed candles, one store write per batch
//!   with the input offsets and the watermark.

pub mod candles;
pub mod record;
pub mod worker;

pub use worker::{MarketData, MarketDataConfig, MarketDataStats, run};
