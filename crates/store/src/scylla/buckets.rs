//! Time buckets that keep partitions bounded (docs/scylla.md "Partitions"), and the walk that
//! reads them newest first.
//!
//! - Trades of a symbol, trades of an account, notifications of an account: one partition per
//!   key and UTC day ([`day_bucket`]), listed newest first by a small index table per key
//!   (`trade_days`, `account_trade_days`, `account_notification_days`).
//! - Candles: one partition per (symbol, interval, period), where a period holds
//!   [`CANDLES_PER_PERIOD`] buckets of the interval ([`candle_period`]): a day of 1s candles, 60
//!   days of 1m candles, 3 600 days of 1h candles; at most ~86 400 rows of ~150 bytes (~13 MB)
//!   whatever the interval. `candle_periods` lists the periods of a (symbol, interval).
//!
//! A read of the newest N walks the index newest first, a page of buckets at a time
//! ([`newest_first`]), and reads each bucket's partition until it has N rows: the index is
//! written with the rows, so a bucket without rows is never listed, and a sparse key (an
//! account trading once a month) costs one index read, not a scan of empty days.

use super::exec::BoxFuture;
use crate::{Interval, Result, day_of};

/// Buckets of an interval per candle partition: a day of 1s candles.
pub const CANDLES_PER_PERIOD: i64 = 86_400;

/// Index rows (days, periods) read per page while walking newest first.
pub(crate) const INDEX_PAGE: usize = 16;

/// The UTC day (days since 1970-01-01) of a time: the bucket of trades and notifications.
pub(crate) fn day_bucket(ts_ms: i64) -> i32 {
    day_of(ts_ms)
}

/// The candle partition of a bucket start: `bucket_start_ms / (interval × CANDLES_PER_PERIOD)`,
/// rounded down (so times before 1970 get their own, negative, periods).
pub(crate) fn candle_period(interval: Interval, bucket_start_ms: i64) -> i64 {
    bucket_start_ms.div_euclid(interval.millis() * CANDLES_PER_PERIOD)
}

/// A bucket number of an index table: a day (`int`) or a period (`bigint`).
pub(crate) trait Bucket: Copy + Send {
    /// The newest possible bucket: where a walk starts.
    const NEWEST: Self;
    /// The bucket before this one, if any.
    fn older(self) -> Option<Self>;
}

impl Bucket for i32 {
    const NEWEST: Self = i32::MAX;
    fn older(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

impl Bucket for i64 {
    const NEWEST: Self = i64::MAX;
    fn older(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

/// The newest `limit` rows of a bucketed key, newest first. `buckets(newest, page)` lists at
/// most `page` buckets at or before `newest`, newest first (a page of the index table);
/// `rows(bucket, want)` reads at most `want` rows of one bucket, newest first.
pub(crate) async fn newest_first<'a, B: Bucket, T>(
    limit: usize,
    mut buckets: impl FnMut(B, usize) -> BoxFuture<'a, Vec<B>>,
    mut rows: impl FnMut(B, usize) -> BoxFuture<'a, Vec<T>>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let mut newest = B::NEWEST;
    loop {
        let page = buckets(newest, INDEX_PAGE).await?;
        for &bucket in &page {
            out.extend(rows(bucket, limit - out.len()).await?);
            if out.len() >= limit {
                out.truncate(limit);
                return Ok(out);
            }
        }
        match page.last() {
            Some(oldest) if page.len() == INDEX_PAGE => match oldest.older() {
                Some(next) => newest = next,
                None => return Ok(out),
            },
            _ => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests;
