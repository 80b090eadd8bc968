//! # tradestream-codec
//!
//! Record formats at the pipeline's edges.
//!
//! ## Layout
//! - [`json`]: the JSON contract for order commands and engine events (the `orders` topic's JSON
//!   format and `tradestream match`'s input and output).
//! - [`avro`]: the same contract as Avro records (schemas in `schemas/`), single-object or
//!   Confluent framed, plus the matcher's snapshot records.
//! - [`records`]: the downstream records (candles, notifications).
//! - [`inspect`]: any record as JSON for people reading topics (`tradestream tail`).

pub mod avro;
pub mod inspect;
pub mod json;
pub mod records;

#[cfg(test)]
mod tests;
