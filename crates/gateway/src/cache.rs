//! The Redis cache kept by `tradestream run cache`, as the gateway reads it: [`MarketCache`] for
//! [`CacheReader`]. An empty list of trades or candles is a miss (the store may hold older ones).

use tradestream_cache::CacheReader;
use tradestream_store::{CandleRow, Interval, OrderStateRow, TopOfBookRow, TradeRow};

use crate::reads::{CacheError, CacheFuture, MarketCache};

fn boxed(e: tradestream_cache::CacheError) -> CacheError {
    Box::new(e)
}

/// `Some` unless empty.
fn non_empty<T>(rows: Vec<T>) -> Option<Vec<T>> {
    (!rows.is_empty()).then_some(rows)
}

impl MarketCache for CacheReader {
    fn top_of_book<'a>(&'a self, symbol: &'a str) -> CacheFuture<'a, TopOfBookRow> {
        Box::pin(async move { CacheReader::top_of_book(self, symbol).await.map_err(boxed) })
    }

    fn trades<'a>(&'a self, symbol: &'a str, limit: usize) -> CacheFuture<'a, Vec<TradeRow>> {
        Box::pin(async move {
            CacheReader::trades(self, symbol, limit)
                .await
                .map(non_empty)
                .map_err(boxed)
        })
    }

    fn candles<'a>(
        &'a self,
        symbol: &'a str,
        interval: Interval,
        limit: usize,
    ) -> CacheFuture<'a, Vec<CandleRow>> {
        Box::pin(async move {
            CacheReader::candles(self, symbol, interval, limit)
                .await
                .map(non_empty)
                .map_err(boxed)
        })
    }

    fn order<'a>(&'a self, symbol: &'a str, order_id: &'a str) -> CacheFuture<'a, OrderStateRow> {
        Box::pin(async move {
            CacheReader::order(self, symbol, order_id)
                .await
                .map_err(boxed)
        })
    }

    fn ping(&self) -> CacheFuture<'_, ()> {
        Box::pin(async move { CacheReader::ping(self).await.map(Some).map_err(boxed) })
    }
}
