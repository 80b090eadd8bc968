//! # tradestream-cache
//!
//! The latest market state in Redis, for the gateway's reads: each symbol's top of book, its
//! newest trades, its open and recent candles, and every order's state. The rows are the store's
//! ([`tradestream_store::model`]), folded by the same code (the trade recorder's
//! [`OrderFold`](tradestream_trade_recorder::fold::OrderFold), the market-data worker's
//! [`CandleBuilder`](tradestream_market_data::candles::CandleBuilder)), so the cache answers
//! what the store would. Redis is optional: without `REDIS_URL` every read goes to the store.
//!
//! ## Layout
//! - [`worker`]: the [`Worker`](tradestream_runtime::Worker) the shared consumer loop drives:
//!   `executions`, `trades`, `market-data`, `candles` → rows, one atomic Redis write per
//!   checkpoint with the input offsets; [`run`] rides out Redis outages.
//! - [`writer`]: the worker's synchronous connection: [`CacheWriter::write`] (one round trip
//!   per checkpoint) and the reads the folds need.
//! - [`reader`]: [`CacheReader`], the async read API (a `ConnectionManager`).
//! - [`scripts`]: the Lua scripts that compare versions and write atomically.
//! - [`keys`]: the key layout below; [`rows`]: rows as stored (JSON).
//!
//! ## Keys
//! Every key starts with a prefix, `ts:` by default ([`KeyLayout::new`] takes another, so that
//! caches or tests can share one Redis). `{s}` is a symbol, `{iv}` an interval (`1s`, `1m`,
//! `1h`), `{g}` the worker's consumer group.
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `ts:book:{s}` | hash `s`, `c`, `row` | top of book | none |
//! | `ts:trades:{s}` | sorted set, score = seq | the newest 100 trades (`trades_kept`), member = row | none (bounded) |
//! | `ts:candle:{s}:{iv}:{start}` | hash `s`, `c`, `row` | one candle, open or closed | 6 h (1s), 7 d (1m), 30 d (1h) |
//! | `ts:candles:{s}:{iv}` | sorted set, score = member = bucket start | the series' newest 1 000 buckets | as its candles |
//! | `ts:order:{s}:{order_id}` | hash `s`, `c`, `row` | one order's state | none while live; 1 day once filled, cancelled, expired or rejected |
//! | `ts:progress:{g}` | hash | `offset:{topic}:{p}` next offset, `watermark:trades:{p}` | none |
//! | `ts:live:{g}:{instance}` | string | a running worker's session marker | 1 day after its last checkpoint |
//!
//! In a hash, `s` is the row's version (`seq`), `c` is 1 for a closed candle (else 0) and `row`
//! the row as JSON ([`rows`]: decimals as strings). A write goes through a Lua script that
//! compares versions (the store's rule: the highest `seq` wins, and a candle closed at a seq
//! beats its open state at that seq; the same version again is refused), so a replayed or
//! older record never overwrites a newer value. Trades are members of a sorted set: the same
//! trade is the same member, and one older than the kept ones is trimmed at once.
//!
//! ## What the cache may miss
//! An order's state is read back from Redis when the worker does not hold it (after a restart);
//! a terminal order whose key expired is unknown then, as an order whose acceptance left the
//! topic's retention is to the trade recorder. A reader falls back to the store on any miss.

pub mod keys;
pub mod reader;
pub mod rows;
pub mod scripts;
pub mod worker;
pub mod writer;

pub use keys::KeyLayout;
pub use reader::CacheReader;
pub use worker::{Cache, CacheConfig, CacheStats, run};
pub use writer::{CacheSettings, CacheWriter, Changes, Progress, WriteReport};

/// Why a cache call failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The Redis URL is not understood.
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// Redis failed or cannot be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis lost its data since this worker started (restarted empty, or flushed).
    #[error("Redis lost its data since the cache worker started; it resumes from Redis's offsets")]
    Lost,
    /// A cached value cannot be read back.
    #[error("corrupt cache entry {key}: {detail}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        detail: String,
    },
}

impl CacheError {
    /// The error of a checkpoint's write: the progress script's `TSLOST` is [`Self::Lost`].
    fn from_write(e: redis::RedisError) -> CacheError {
        if e.to_string().contains("TSLOST") {
            CacheError::Lost
        } else {
            CacheError::Redis(e)
        }
    }

    /// Whether waiting for Redis may help (Redis down, busy, restarted), as opposed to a
    /// configuration or data error.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CacheError::Redis(_) | CacheError::Lost)
    }
}

/// A Redis URL (`redis://[user:password@]host:port[/db]`). It may carry a password: its
/// `Debug` and `Display` show `***` in its place.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// The URL `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisUrl(url.into().trim().to_owned())
    }

    /// The URL in the file `path` (its first line; a file keeps a password out of argv and
    /// the environment).
    pub fn from_file(path: &std::path::Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Ok(RedisUrl::new(text.lines().next().unwrap_or_default()))
    }

    /// The URL itself, password included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with its password (if any) replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
            return url.clone();
        };
        let rest = &url[scheme_end..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let Some(at) = rest[..authority_end].rfind('@') else {
            return url.clone();
        };
        let userinfo = &rest[..at];
        let user = userinfo.split_once(':').map_or("", |(u, _)| u);
        format!("{}{user}:***{}", &url[..scheme_end], &rest[at..])
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisUrl({:?})", self.redacted())
    }
}

impl std::fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests;
