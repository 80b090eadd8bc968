//! The key layout (see the crate documentation for the table).
//!
//! Every key starts with the layout's prefix (default [`DEFAULT_PREFIX`]), so several caches (or
//! tests) can share one Redis. Symbols and order ids are placed as they are: both are restricted
//! by the engine to characters without `:` ambiguity at the end of a key (an order id is the last
//! component of its key, a symbol never contains `:`).

use tradestream_store::model::Interval;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "ts:";

/// Builds the cache's keys under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    prefix: String,
}

impl Default for KeyLayout {
    fn default() -> Self {
        KeyLayout::new(DEFAULT_PREFIX)
    }
}

impl KeyLayout {
    /// Keys under `prefix` (e.g. `ts:`; a test uses one of its own).
    pub fn new(prefix: impl Into<String>) -> Self {
        KeyLayout {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}book:{symbol}`: hash, the top of book.
    pub fn book(&self, symbol: &str) -> String {
        format!("{}book:{symbol}", self.prefix)
    }

    /// `{prefix}trades:{symbol}`: sorted set of the newest trades, scored by seq.
    pub fn trades(&self, symbol: &str) -> String {
        format!("{}trades:{symbol}", self.prefix)
    }

    /// `{prefix}candle:{symbol}:{interval}:{bucket_start_ms}`: hash, one candle.
    pub fn candle(&self, symbol: &str, interval: Interval, bucket_start_ms: i64) -> String {
        format!(
            "{}candle:{symbol}:{}:{bucket_start_ms}",
            self.prefix,
            interval.as_str()
        )
    }

    /// `{prefix}candles:{symbol}:{interval}`: sorted set of a series' bucket starts.
    pub fn candle_index(&self, symbol: &str, interval: Interval) -> String {
        format!("{}candles:{symbol}:{}", self.prefix, interval.as_str())
    }

    /// `{prefix}order:{symbol}:{order_id}`: hash, one order's state.
    pub fn order(&self, symbol: &str, order_id: &str) -> String {
        format!("{}order:{symbol}:{order_id}", self.prefix)
    }

    /// `{prefix}progress:{group}`: hash, the worker's input offsets and watermarks.
    pub fn progress(&self, group: &str) -> String {
        format!("{}progress:{group}", self.prefix)
    }

    /// `{prefix}live:{group}:{instance}`: the session marker of one running worker.
    pub fn live(&self, group: &str, instance: &str) -> String {
        format!("{}live:{group}:{instance}", self.prefix)
    }
}

/// The progress field of an input partition's next offset: `offset:{topic}:{partition}`.
pub fn offset_field(topic: &str, partition: i32) -> String {
    format!("offset:{topic}:{partition}")
}

/// The progress field of a `trades` partition's watermark: `watermark:{topic}:{partition}`.
pub fn watermark_field(topic: &str, partition: i32) -> String {
    format!("watermark:{topic}:{partition}")
}

#[cfg(test)]
mod tests;
