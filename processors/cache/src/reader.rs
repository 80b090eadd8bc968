//! [`CacheReader`]: the async read API the gateway uses, over a
//! [`ConnectionManager`](redis::aio::ConnectionManager) (one multiplexed connection, reconnected
//! in the background; cheap to clone).
//!
//! Every call answers `Ok(None)` / `Ok(vec![])` when the cache does not hold the data (a miss) and
//! `Err` when Redis cannot be asked or holds something unreadable: in both cases the caller reads
//! the store instead.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tradestream_store::model::{CandleRow, Interval, OrderStateRow, TopOfBookRow, TradeRow};

use crate::keys::KeyLayout;
use crate::rows::CachedRow;
use crate::{CacheError, RedisUrl};

/// Reads the cache the worker keeps. Clone it freely (the clones share one connection).
#[derive(Clone)]
pub struct CacheReader {
    conn: ConnectionManager,
    keys: KeyLayout,
}

impl std::fmt::Debug for CacheReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheReader")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl CacheReader {
    /// Connects to `url` with keys under `keys`; every request (and reconnect attempt) gives up
    /// after `timeout`, so a Redis that is down turns into a quick error, not a hung request.
    pub async fn connect(
        url: &RedisUrl,
        keys: KeyLayout,
        timeout: Duration,
    ) -> Result<CacheReader, CacheError> {
        let client = redis::Client::open(url.as_str()).map_err(CacheError::Url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        let conn = client.get_connection_manager_with_config(config).await?;
        Ok(CacheReader { conn, keys })
    }

    /// The key layout.
    pub fn keys(&self) -> &KeyLayout {
        &self.keys
    }

    /// Whether Redis answers (for readiness checks).
    pub async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// A symbol's top of book.
    pub async fn top_of_book(&self, symbol: &str) -> Result<Option<TopOfBookRow>, CacheError> {
        self.row(&self.keys.book(symbol)).await
    }

    /// The newest trades of a symbol, newest first (at most `limit`, and at most what the worker
    /// keeps).
    pub async fn trades(&self, symbol: &str, limit: usize) -> Result<Vec<TradeRow>, CacheError> {
        let Some(stop) = last_index(limit) else {
            return Ok(Vec::new());
        };
        let key = self.keys.trades(symbol);
        let mut conn = self.conn.clone();
        let texts: Vec<String> = conn.zrevrange(&key, 0, stop).await?;
        texts.iter().map(|t| TradeRow::decode(t, &key)).collect()
    }

    /// The newest candles of a symbol at an interval, newest first (at most `limit`). Two round
    /// trips: the series' newest bucket starts, then their rows (a bucket whose row expired is
    /// left out).
    pub async fn candles(
        &self,
        symbol: &str,
        interval: Interval,
        limit: usize,
    ) -> Result<Vec<CandleRow>, CacheError> {
        let Some(stop) = last_index(limit) else {
            return Ok(Vec::new());
        };
        let mut conn = self.conn.clone();
        let starts: Vec<i64> = conn
            .zrevrange(self.keys.candle_index(symbol, interval), 0, stop)
            .await?;
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = starts
            .iter()
            .map(|&s| self.keys.candle(symbol, interval, s))
            .collect();
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.hget(key, "row");
        }
        let texts: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        keys.iter()
            .zip(texts)
            .filter_map(|(key, text)| text.map(|t| CandleRow::decode(&t, key)))
            .collect()
    }

    /// The state of the order `order_id` of `symbol`.
    pub async fn order(
        &self,
        symbol: &str,
        order_id: &str,
    ) -> Result<Option<OrderStateRow>, CacheError> {
        self.row(&self.keys.order(symbol, order_id)).await
    }

    async fn row<R: CachedRow>(&self, key: &str) -> Result<Option<R>, CacheError> {
        let mut conn = self.conn.clone();
        let text: Option<String> = conn.hget(key, "row").await?;
        text.map(|t| R::decode(&t, key)).transpose()
    }
}

/// The last rank of a range of `limit` (`None` for 0).
fn last_index(limit: usize) -> Option<isize> {
    let limit = isize::try_from(limit).unwrap_or(isize::MAX);
    (limit > 0).then(|| limit - 1)
}
