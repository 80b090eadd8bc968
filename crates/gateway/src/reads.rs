//! Reads: the cache first, the store on a miss or a cache error.
//!
//! [`MarketCache`] is the gateway's view of the Redis cache (`tradestream_cache::CacheReader`
//! implements it). Every fallback to the store is counted in
//! `tradestream_gateway_cache_fallbacks_total{read,why}` (`why` = `miss` or `error`). The store
//! API is synchronous: its calls run on the blocking pool, one at a time per store handle.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tradestream_store::{CandleRow, Interval, OrderStateRow, Store, TopOfBookRow, TradeRow};

/// A cache error, as text.
pub type CacheError = Box<dyn std::error::Error + Send + Sync>;

/// What a cache read gives: `Ok(None)` is a miss.
pub type CacheResult<T> = Result<Option<T>, CacheError>;

/// A boxed future of a cache read.
pub type CacheFuture<'a, T> = Pin<Box<dyn Future<Output = CacheResult<T>> + Send + 'a>>;

/// The cache the gateway reads first.
pub trait MarketCache: Send + Sync + std::fmt::Debug {
    /// A symbol's top of book.
    fn top_of_book<'a>(&'a self, symbol: &'a str) -> CacheFuture<'a, TopOfBookRow>;
    /// A symbol's newest trades, newest first (a miss when the cache holds none).
    fn trades<'a>(&'a self, symbol: &'a str, limit: usize) -> CacheFuture<'a, Vec<TradeRow>>;
    /// A symbol's newest candles at an interval, newest first.
    fn candles<'a>(
        &'a self,
        symbol: &'a str,
        interval: Interval,
        limit: usize,
    ) -> CacheFuture<'a, Vec<CandleRow>>;
    /// One order's state.
    fn order<'a>(&'a self, symbol: &'a str, order_id: &'a str) -> CacheFuture<'a, OrderStateRow>;
    /// Reachable (for `/readyz`).
    fn ping(&self) -> CacheFuture<'_, ()>;
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Neither a cache nor a store is configured.
    #[error("no store is configured for reads")]
    NoStore,
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}

/// The cache (optional) and the store (optional) reads go to.
#[derive(Debug, Clone, Default)]
pub struct Reads {
    /// The cache, read first.
    pub cache: Option<Arc<dyn MarketCache>>,
    /// The store, read on a miss or a cache error.
    pub store: Option<Arc<Mutex<Box<dyn Store>>>>,
}

impl Reads {
    /// Reads from `cache` then `store`.
    pub fn new(cache: Option<Arc<dyn MarketCache>>, store: Option<Box<dyn Store>>) -> Self {
        Reads {
            cache,
            store: store.map(|s| Arc::new(Mutex::new(s))),
        }
    }

    async fn read_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> tradestream_store::Result<T> + Send + 'static,
    ) -> Result<T, ReadError> {
        let store = self.store.clone().ok_or(ReadError::NoStore)?;
        tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut **guard).map_err(|e| ReadError::Store(e.to_string()))
        })
        .await
        .map_err(|e| ReadError::Store(e.to_string()))?
    }

    /// The cache's answer, or `None` to fall back (counted).
    async fn cached<T>(&self, read: &'static str, fut: Option<CacheFuture<'_, T>>) -> Option<T> {
        let fut = fut?;
        match fut.await {
            Ok(Some(v)) => {
                metrics::counter!("tradestream_gateway_cache_hits_total", "read" => read)
                    .increment(1);
                Some(v)
            }
            Ok(None) => {
                metrics::counter!("tradestream_gateway_cache_fallbacks_total", "read" => read, "why" => "miss").increment(1);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, read, "cache read failed; reading the store");
                metrics::counter!("tradestream_gateway_cache_fallbacks_total", "read" => read, "why" => "error").increment(1);
                None
            }
        }
    }

    /// A symbol's top of book.
    pub async fn top_of_book(&self, symbol: &str) -> Result<Option<TopOfBookRow>, ReadError> {
        let c = self.cache.as_deref().map(|c| c.top_of_book(symbol));
        if let Some(v) = self.cached("book", c).await {
            return Ok(Some(v));
        }
        let symbol = symbol.to_owned();
        self.read_store(move |s| s.top_of_book(&symbol)).await
    }

    /// A symbol's newest trades.
    pub async fn trades(&self, symbol: &str, limit: usize) -> Result<Vec<TradeRow>, ReadError> {
        let c = self.cache.as_deref().map(|c| c.trades(symbol, limit));
        if let Some(v) = self.cached("trades", c).await {
            return Ok(v);
        }
        let symbol = symbol.to_owned();
        self.read_store(move |s| s.trades_by_symbol(&symbol, limit))
            .await
    }

    /// A symbol's newest candles.
    pub async fn candles(
        &self,
        symbol: &str,
        interval: Interval,
        limit: usize,
    ) -> Result<Vec<CandleRow>, ReadError> {
        let c = self
            .cache
            .as_deref()
            .map(|c| c.candles(symbol, interval, limit));
        if let Some(v) = self.cached("candles", c).await {
            return Ok(v);
        }
        let symbol = symbol.to_owned();
        self.read_store(move |s| s.candles(&symbol, interval, limit))
            .await
    }

    /// One order's state (any owner: the caller checks).
    pub async fn order(
        &self,
        symbol: &str,
        order_id: &str,
    ) -> Result<Option<OrderStateRow>, ReadError> {
        let c = self.cache.as_deref().map(|c| c.order(symbol, order_id));
        if let Some(v) = self.cached("order", c).await {
            return Ok(Some(v));
        }
        let (symbol, order_id) = (symbol.to_owned(), order_id.to_owned());
        self.read_store(move |s| s.order(&symbol, &order_id)).await
    }

    /// Store and cache reachable, where configured.
    pub async fn ready(&self) -> Result<(), String> {
        if let Some(cache) = &self.cache {
            cache.ping().await.map_err(|e| format!("cache: {e}"))?;
        }
        if self.store.is_some() {
            self.read_store(|s| s.top_of_book("").map(|_| ()))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
