//! # tradestream-codec
//!
//! Record formats at the pipeline's edges.
//!
//! ## Layout
//! - [`json`]: the JSON contract for order commands and engine events (the `orders` topic's JSON
//!   format and `tradestream match`'s input and output).
//! - [`avro`]: the same contract as Avro records (schemas in `schemas/`), single-object or
//!   Confluent framed, plus the matcher's snapshot records.

pub mod avro;
pub mod json;
pub mod records;

#[cfg(test)]
mod tests;
