//! # tradestream-codec
//!
//! Record formats at the pipeline's edges.
//!
//! ## Layout
//! - [`json`]: the JSON contract for order commands and engine events (the `orders` topic's JSON
//!   format and `tradestream match`'s input and output).

pub mod json;

#[cfg(test)]
mod tests;
