//! # tradestream-trade-recorder
//!
//! Records what the matcher did for `tradestream query`: every trade, and every order's state.
//!
//! ## Layout
//! - [`fold`]: the pure part — [`OrderFold`](fold::OrderFold) folds the `executions` topic into
//!   order states, [`trade_row`](fold::trade_row) maps the `trades` topic to trade rows. No
//!   Kafka, no store I/O: the worker feeds it decoded events and writes what it returns.
//! - [`worker`]: the [`Worker`](tradestream_runtime::Worker) the shared consumer loop drives:
//!   decode, fold, one store write per batch with the input offsets.

pub mod fold;
pub mod worker;

pub use worker::{TradeRecorder, TradeRecorderConfig, TradeRecorderStats, run};
