//! The worker's side of Redis: a synchronous connection (the consumer loop is synchronous), one
//! atomic pipeline per checkpoint, and the few reads the folds need.
//!
//! [`CacheWriter::write`] sends everything a checkpoint changed in **one round trip**:
//! `MULTI`, `SCRIPT LOAD` of every script (so an `EVALSHA` cannot miss a script, even right
//! after Redis restarted), one script call per row, the progress script last, `EXEC`. Redis runs
//! the transaction as one step: a reader never sees half a checkpoint, and a failure before
//! `EXEC` (the connection dropped, Redis out of memory at queue time) writes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::{Commands, Connection, Pipeline, RedisResult};
use tradestream_store::model::TradeRow;
use tradestream_store::model::{CandleRow, Interval, OrderStateRow, OrderStatus, TopOfBookRow};

use crate::keys::KeyLayout;
use crate::rows::CachedRow;
use crate::scripts::Scripts;
use crate::{CacheError, RedisUrl};

/// How much the cache keeps, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Trades kept per symbol (the newest by seq).
    pub trades_kept: usize,
    /// Buckets kept per symbol and interval (the newest by start).
    pub candles_kept: usize,
    /// How long a filled, cancelled, expired or rejected order stays (a live one stays until it
    /// ends).
    pub terminal_order_ttl: Duration,
    /// How long a 1s / 1m / 1h candle (and its series index) stays after its last write.
    pub candle_ttl: [Duration; 3],
    /// How long the worker's session marker outlives its last checkpoint.
    pub session_ttl: Duration,
    /// Connect, read and write timeout of the worker's connection.
    pub io_timeout: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        const HOUR: u64 = 3_600;
        CacheSettings {
            trades_kept: 100,
            candles_kept: 1_000,
            terminal_order_ttl: Duration::from_secs(24 * HOUR),
            // 1s candles for 6 hours, 1m for 7 days, 1h for 30 days (the candles topic's).
            candle_ttl: [
                Duration::from_secs(6 * HOUR),
                Duration::from_secs(7 * 24 * HOUR),
                Duration::from_secs(30 * 24 * HOUR),
            ],
            session_ttl: Duration::from_secs(24 * HOUR),
            io_timeout: Duration::from_secs(5),
        }
    }
}

impl CacheSettings {
    /// The TTL of a candle of `interval`.
    pub fn candle_ttl(&self, interval: Interval) -> Duration {
        match interval {
            Interval::S1 => self.candle_ttl[0],
            Interval::M1 => self.candle_ttl[1],
            Interval::H1 => self.candle_ttl[2],
        }
    }
}

/// What one checkpoint changed: the latest version of every row (older ones of the same key
/// are dropped before they are sent).
#[derive(Debug, Default, Clone)]
pub struct Changes {
    /// Trades by symbol, in arrival order (only the newest [`CacheSettings::trades_kept`] of
    /// each are sent).
    pub trades: BTreeMap<String, Vec<TradeRow>>,
    /// Order states by (symbol, order id).
    pub orders: BTreeMap<(String, String), OrderStateRow>,
    /// Candles by (symbol, interval, bucket start).
    pub candles: BTreeMap<(String, Interval, i64), CandleRow>,
    /// Tops of book by symbol.
    pub tops: BTreeMap<String, TopOfBookRow>,
}

impl Changes {
    /// Keeps a trade.
    pub fn trade(&mut self, row: TradeRow) {
        self.trades.entry(row.symbol.clone()).or_default().push(row);
    }

    /// Keeps an order state (replacing an older one of the same order).
    pub fn order(&mut self, row: OrderStateRow) {
        keep_newer(
            &mut self.orders,
            (row.symbol.clone(), row.order_id.clone()),
            row,
            |r| (r.seq, false),
        );
    }

    /// Keeps a candle (replacing an older one of the same bucket).
    pub fn candle(&mut self, row: CandleRow) {
        keep_newer(
            &mut self.candles,
            (row.symbol.clone(), row.interval, row.bucket_start_ms),
            row,
            |r| (r.seq, r.closed),
        );
    }

    /// Keeps a top of book (replacing an older one of the same symbol).
    pub fn top(&mut self, row: TopOfBookRow) {
        keep_newer(&mut self.tops, row.symbol.clone(), row, |r| (r.seq, false));
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.trades.values().map(Vec::len).sum::<usize>()
            + self.orders.len()
            + self.candles.len()
            + self.tops.len()
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Inserts `row` unless the map holds a newer version of its key.
fn keep_newer<K: Ord, R>(
    map: &mut BTreeMap<K, R>,
    key: K,
    row: R,
    version: impl Fn(&R) -> (i64, bool),
) {
    match map.get(&key) {
        Some(old) if version(old) > version(&row) => {}
        _ => {
            map.insert(key, row);
        }
    }
}

/// Where the worker stands, written with a checkpoint's rows.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Progress hash fields ([`crate::keys::offset_field`], [`crate::keys::watermark_field`])
    /// and their values.
    pub fields: Vec<(String, i64)>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Rows written.
    pub written: u64,
    /// Rows refused: the cache held the same or a newer version (a replay).
    pub refused: u64,
}

/// The worker's connection to Redis.
pub struct CacheWriter {
    conn: Connection,
    keys: KeyLayout,
    scripts: Scripts,
    settings: CacheSettings,
}

impl std::fmt::Debug for CacheWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheWriter")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// Milliseconds of a duration, as Redis takes them.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl CacheWriter {
    /// Connects (bounded by [`CacheSettings::io_timeout`]) and checks Redis answers.
    pub fn connect(
        url: &RedisUrl,
        keys: KeyLayout,
        settings: CacheSettings,
    ) -> Result<CacheWriter, CacheError> {
        let client = redis::Client::open(url.as_str()).map_err(CacheError::Url)?;
        let timeout = settings.io_timeout;
        let mut conn = client.get_connection_with_timeout(timeout)?;
        conn.set_read_timeout(Some(timeout))?;
        conn.set_write_timeout(Some(timeout))?;
        let _: String = redis::cmd("PING").query(&mut conn)?;
        Ok(CacheWriter {
            conn,
            keys,
            scripts: Scripts::default(),
            settings,
        })
    }

    /// The key layout.
    pub fn keys(&self) -> &KeyLayout {
        &self.keys
    }

    /// Starts a worker session: sets the marker [`PROGRESS`](crate::scripts::PROGRESS) checks.
    pub fn start_session(&mut self, group: &str, instance: &str) -> Result<(), CacheError> {
        let key = self.keys.live(group, instance);
        let ttl = millis(self.settings.session_ttl);
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("PX")
            .arg(ttl)
            .query(&mut self.conn)?;
        Ok(())
    }

    /// Ends a worker session (best effort: an expired marker is harmless).
    pub fn end_session(&mut self, group: &str, instance: &str) {
        let key = self.keys.live(group, instance);
        let _: RedisResult<i64> = self.conn.del(key);
    }

    /// The progress of `group`: every field of its progress hash.
    pub fn progress(&mut self, group: &str) -> Result<BTreeMap<String, i64>, CacheError> {
        let key = self.keys.progress(group);
        let all: BTreeMap<String, String> = self.conn.hgetall(&key)?;
        all.into_iter()
            .map(|(field, value)| {
                value
                    .parse()
                    .map(|v| (field, v))
                    .map_err(|e| CacheError::Corrupt {
                        key: key.clone(),
                        detail: format!("{e}"),
                    })
            })
            .collect()
    }

    /// The cached state of an order.
    pub fn order(
        &mut self,
        symbol: &str,
        order_id: &str,
    ) -> Result<Option<OrderStateRow>, CacheError> {
        let key = self.keys.order(symbol, order_id);
        self.row(&key)
    }

    /// One cached candle.
    pub fn candle(
        &mut self,
        symbol: &str,
        interval: Interval,
        bucket_start_ms: i64,
    ) -> Result<Option<CandleRow>, CacheError> {
        let key = self.keys.candle(symbol, interval, bucket_start_ms);
        self.row(&key)
    }

    fn row<R: CachedRow>(&mut self, key: &str) -> Result<Option<R>, CacheError> {
        let text: Option<String> = self.conn.hget(key, "row")?;
        text.map(|t| R::decode(&t, key)).transpose()
    }

    /// Writes `changes` and then, when given, the progress of `group` for session `instance`,
    /// in one atomic round trip (see the module documentation).
    pub fn write(
        &mut self,
        changes: &Changes,
        progress: Option<(&str, &str, &Progress)>,
    ) -> Result<WriteReport, CacheError> {
        if changes.is_empty() && progress.is_none_or(|(_, _, p)| p.fields.is_empty()) {
            return Ok(WriteReport::default());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for script in self.scripts.all() {
            pipe.load_script(script).ignore();
        }
        let rows = self.add_rows(&mut pipe, changes);
        if let Some((group, instance, p)) = progress {
            let mut inv = self.scripts.progress.prepare_invoke();
            inv.key(self.keys.progress(group))
                .key(self.keys.live(group, instance))
                .arg(millis(self.settings.session_ttl));
            for (field, value) in &p.fields {
                inv.arg(field).arg(*value);
            }
            pipe.invoke_script(&inv).ignore();
        }
        let results: Vec<i64> = pipe.query(&mut self.conn).map_err(CacheError::from_write)?;
        let written = results.iter().filter(|&&r| r == 1).count() as u64;
        debug_assert_eq!(results.len(), rows);
        Ok(WriteReport {
            written,
            refused: results.len() as u64 - written,
        })
    }

    /// Adds one script call per row; returns how many.
    fn add_rows(&self, pipe: &mut Pipeline, changes: &Changes) -> usize {
        let (keys, scripts, s) = (&self.keys, &self.scripts, &self.settings);
        let mut n = 0;
        for (symbol, trades) in &changes.trades {
            let key = keys.trades(symbol);
            for row in &trades[trades.len().saturating_sub(s.trades_kept)..] {
                let mut inv = scripts.trade.prepare_invoke();
                inv.key(&key)
                    .arg(row.seq)
                    .arg(row.encode())
                    .arg(s.trades_kept);
                pipe.invoke_script(&inv);
                n += 1;
            }
        }
        for row in changes.orders.values() {
            let terminal = matches!(
                row.status,
                OrderStatus::Filled
                    | OrderStatus::Cancelled
                    | OrderStatus::Expired
                    | OrderStatus::Rejected
            );
            let ttl = if terminal {
                millis(s.terminal_order_ttl)
            } else {
                0
            };
            let mut inv = scripts.upsert.prepare_invoke();
            inv.key(keys.order(&row.symbol, &row.order_id))
                .arg(row.seq)
                .arg(0)
                .arg(row.encode())
                .arg(ttl);
            pipe.invoke_script(&inv);
            n += 1;
        }
        for row in changes.candles.values() {
            let mut inv = scripts.candle.prepare_invoke();
            inv.key(keys.candle(&row.symbol, row.interval, row.bucket_start_ms))
                .key(keys.candle_index(&row.symbol, row.interval))
                .arg(row.seq)
                .arg(i32::from(row.closed))
                .arg(row.encode())
                .arg(millis(s.candle_ttl(row.interval)))
                .arg(row.bucket_start_ms)
                .arg(s.candles_kept);
            pipe.invoke_script(&inv);
            n += 1;
        }
        for row in changes.tops.values() {
            let mut inv = scripts.upsert.prepare_invoke();
            inv.key(keys.book(&row.symbol))
                .arg(row.seq)
                .arg(0)
                .arg(row.encode())
                .arg(0);
            pipe.invoke_script(&inv);
            n += 1;
        }
        n
    }
}
