//! The embedded SQLite backend.
//!
//! - Schema: `schemas/cql/sqlite.sql`, the mirror of the CQL tables, applied on every open
//!   (`CREATE TABLE IF NOT EXISTS`). In the same transaction, a database created before order
//!   state was keyed by (symbol, order id) has the rows of its old `orders` table (keyed by order
//!   id alone) moved into `orders_by_symbol`, and `orders` dropped ([`MOVE_LEGACY_ORDERS`]).
//! - Durability: WAL journal, `synchronous=NORMAL` (a commit survives a process crash; a power
//!   loss may drop the last commits, which the consumer then re-reads from Kafka, because the
//!   offsets roll back with the rows).
//! - Exactly-once: [`Store::write`] is one `BEGIN IMMEDIATE` transaction holding every row of the
//!   batch and its offsets. Either all of it lands or none of it does.
//! - Idempotency: immutable rows (trades, notifications) are `INSERT ... ON CONFLICT DO NOTHING`
//!   on their deterministic keys. Mutable rows (order state, candles, top of book) are upserts
//!   that only apply when the incoming `seq` is at least the stored one, as Scylla's
//!   `USING TIMESTAMP seq` does: an older write never overwrites a newer one. Offsets likewise
//!   never move backwards.
//! - Speed: statements come from the connection's statement cache and decimals are formatted
//!   into stack buffers, so a write allocates nothing per row.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Params, Row, ToSql, TransactionBehavior, params};
use tradestream_engine::{Decimal, Side};

use crate::dump::{BOOL_COLUMNS, DUMP_TABLES};
use crate::{
    Batch, CandleRow, Interval, NotificationRow, OffsetRow, OrderStateRow, OrderStatus, Result,
    Store, StoreCounts, StoreDump, StoreError, TopOfBookRow, TradeRow, day_of, side_from_str,
    sort_open_candles,
};

/// The DDL: one source of truth for the SQLite tables.
pub const SCHEMA: &str = include_str!("../../../schemas/cql/sqlite.sql");

/// Whether the database still has the order table from before `orders_by_symbol`.
const HAS_LEGACY_ORDERS: &str =
    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'orders')";

/// Moves the rows of the old `orders` table (keyed by order id alone) into `orders_by_symbol`,
/// keeping the newer state where both hold one (as every order write does), and drops it. Run
/// by [`Store::migrate`] in the schema's transaction, only when `orders` exists (see
/// `schemas/cql/002_orders_by_symbol.cql`).
pub const MOVE_LEGACY_ORDERS: &str = "\
    INSERT INTO orders_by_symbol (symbol, order_id, account, side, status, price, qty, \
        filled_qty, avg_price, notional, updated_ts_ms, source_partition, seq) \
    SELECT symbol, order_id, account, side, status, price, qty, filled_qty, avg_price, \
        notional, updated_ts_ms, source_partition, seq \
    FROM orders WHERE true \
    ON CONFLICT (symbol, order_id) DO UPDATE SET \
        account = excluded.account, side = excluded.side, status = excluded.status, \
        price = excluded.price, qty = excluded.qty, filled_qty = excluded.filled_qty, \
        avg_price = excluded.avg_price, notional = excluded.notional, \
        updated_ts_ms = excluded.updated_ts_ms, source_partition = excluded.source_partition, \
        seq = excluded.seq \
    WHERE excluded.seq >= orders_by_symbol.seq";

/// How long a writer waits for another connection's write lock before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Statement cache size: every write and read statement below stays prepared.
const STATEMENT_CACHE: usize = 32;

/// A SQLite database file holding the results. See the module documentation.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating it and its parent directories when missing) the database at `path`,
    /// switches it to WAL and creates the missing tables.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                context: format!("cannot create directory {}", dir.display()),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Switching a new file to WAL takes an exclusive lock without waiting on the busy
        // handler: several workers opening one new store at once retry it.
        let mode: String =
            retry_busy(|| conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0)))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some file systems (network mounts) refuse WAL; the store still works, slower.
            tracing::warn!(path = %path.display(), journal_mode = %mode, "SQLite refused WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut store = SqliteStore {
            conn,
            path: path.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `sql` with `params` and converts every row with `convert`.
    fn query_rows<T>(
        &self,
        sql: &str,
        params: impl Params,
        convert: fn(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(convert(row)?);
        }
        Ok(out)
    }

    /// Runs `sql` with `params` and converts the first row, if any.
    fn query_one<T>(
        &self,
        sql: &str,
        params: impl Params,
        convert: fn(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        rows.next()?.map(convert).transpose()
    }
}

impl Store for SqliteStore {
    fn migrate(&mut self) -> Result<()> {
        // One IMMEDIATE transaction: it waits for the write lock up front (busy timeout) instead
        // of failing when two connections both read the schema and then upgrade to write.
        let conn = &mut self.conn;
        let moved = retry_busy(|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(SCHEMA)?;
            let legacy: bool = tx.query_row(HAS_LEGACY_ORDERS, [], |r| r.get(0))?;
            let moved = if legacy {
                let moved = tx.execute(MOVE_LEGACY_ORDERS, [])?;
                tx.execute("DROP TABLE orders", [])?;
                Some(moved)
            } else {
                None
            };
            tx.commit()?;
            Ok(moved)
        })?;
        if let Some(rows) = moved {
            tracing::info!(
                path = %self.path.display(),
                rows,
                "moved the order states of the old `orders` table (keyed by order id alone) to \
                 orders_by_symbol and dropped it"
            );
        }
        Ok(())
    }

    fn write(&mut self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // IMMEDIATE takes the write lock up front: a deferred transaction that later upgrades
        // can fail with SQLITE_BUSY half-way instead of waiting for the busy timeout.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        write_rows(&tx, batch)?;
        // Dropping `tx` on the error path above rolls everything back.
        tx.commit()?;
        Ok(())
    }

    fn offset(&mut self, consumer: &str, topic: &str, partition: i32) -> Result<Option<OffsetRow>> {
        let found = self
            .conn
            .prepare_cached(SELECT_OFFSET)?
            .query_row(params![consumer, topic, partition], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .optional()?;
        Ok(found.map(|(next_offset, watermark_ms)| OffsetRow {
            consumer: consumer.to_owned(),
            topic: topic.to_owned(),
            partition,
            next_offset,
            watermark_ms,
        }))
    }

    fn trades_by_symbol(&mut self, symbol: &str, limit: usize) -> Result<Vec<TradeRow>> {
        self.query_rows(
            SELECT_TRADES_BY_SYMBOL,
            params![symbol, sql_limit(limit)],
            |r| trade_from_row(r, "trades_by_symbol"),
        )
    }

    fn trades_by_account(&mut self, account: &str, limit: usize) -> Result<Vec<TradeRow>> {
        self.query_rows(
            SELECT_TRADES_BY_ACCOUNT,
            params![account, sql_limit(limit)],
            |r| trade_from_row(r, "trades_by_account"),
        )
    }

    fn order(&mut self, symbol: &str, order_id: &str) -> Result<Option<OrderStateRow>> {
        self.query_one(SELECT_ORDER, params![symbol, order_id], order_from_row)
    }

    fn candle(
        &mut self,
        symbol: &str,
        interval: Interval,
        bucket_start_ms: i64,
    ) -> Result<Option<CandleRow>> {
        self.query_one(
            SELECT_CANDLE,
            params![symbol, interval.as_str(), bucket_start_ms],
            candle_from_row,
        )
    }

    fn candles(
        &mut self,
        symbol: &str,
        interval: Interval,
        limit: usize,
    ) -> Result<Vec<CandleRow>> {
        self.query_rows(
            SELECT_CANDLES,
            params![symbol, interval.as_str(), sql_limit(limit)],
            candle_from_row,
        )
    }

    fn open_candles(&mut self, source_partition: i32) -> Result<Vec<CandleRow>> {
        let mut candles = self.query_rows(
            SELECT_OPEN_CANDLES,
            params![source_partition],
            candle_from_row,
        )?;
        sort_open_candles(&mut candles);
        Ok(candles)
    }

    fn top_of_book(&mut self, symbol: &str) -> Result<Option<TopOfBookRow>> {
        self.query_one(SELECT_TOP, params![symbol], top_from_row)
    }

    fn notifications(&mut self, account: &str, limit: usize) -> Result<Vec<NotificationRow>> {
        self.query_rows(
            SELECT_NOTIFICATIONS,
            params![account, sql_limit(limit)],
            notification_from_row,
        )
    }

    fn counts(&mut self) -> Result<StoreCounts> {
        let counts = self
            .conn
            .prepare_cached(SELECT_COUNTS)?
            .query_row([], |r| {
                Ok([
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ])
            })?;
        // COUNT(*) is never negative.
        let [trades, orders, candles, tops, notifications] = counts.map(i64::unsigned_abs);
        Ok(StoreCounts {
            trades,
            orders,
            candles,
            tops,
            notifications,
        })
    }

    fn dump(&mut self) -> Result<StoreDump> {
        // One read transaction: every table from the same snapshot (WAL).
        let tx = self.conn.transaction()?;
        let mut tables = BTreeMap::new();
        for table in DUMP_TABLES {
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {}",
                table.columns.join(", "),
                table.name,
                table.key().join(", ")
            );
            let mut stmt = tx.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut cells = BTreeMap::new();
                for (i, &column) in table.columns.iter().enumerate() {
                    let text = match row.get_ref(i)? {
                        ValueRef::Null => StoreDump::NULL.to_owned(),
                        ValueRef::Integer(n) if BOOL_COLUMNS.contains(&column) => {
                            (n != 0).to_string()
                        }
                        ValueRef::Integer(n) => n.to_string(),
                        ValueRef::Real(x) => x.to_string(),
                        ValueRef::Text(b) | ValueRef::Blob(b) => {
                            String::from_utf8_lossy(b).into_owned()
                        }
                    };
                    cells.insert(column.to_owned(), text);
                }
                out.push(cells);
            }
            tables.insert(table.name.to_owned(), out);
        }
        Ok(StoreDump { tables })
    }
}

// ---------------------------------------------------------------------------------------------
// Writes

const INSERT_TRADE_BY_SYMBOL: &str = "\
    INSERT INTO trades_by_symbol (symbol, day, seq, source_partition, ts_ms, price, qty, \
        maker_order_id, maker_account, taker_order_id, taker_account, taker_side) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
    ON CONFLICT DO NOTHING";

const INSERT_TRADE_DAY: &str = "\
    INSERT INTO trade_days (symbol, day) VALUES (?1, ?2) ON CONFLICT DO NOTHING";

const INSERT_TRADE_BY_ACCOUNT: &str = "\
    INSERT INTO trades_by_account (account, ts_ms, source_partition, seq, role, symbol, price, \
        qty, maker_order_id, maker_account, taker_order_id, taker_account, taker_side) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
    ON CONFLICT DO NOTHING";

const UPSERT_ORDER: &str = "\
    INSERT INTO orders_by_symbol (order_id, account, symbol, side, status, price, qty, \
        filled_qty, avg_price, notional, updated_ts_ms, source_partition, seq) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
    ON CONFLICT (symbol, order_id) DO UPDATE SET \
        account = excluded.account, side = excluded.side, \
        status = excluded.status, price = excluded.price, qty = excluded.qty, \
        filled_qty = excluded.filled_qty, avg_price = excluded.avg_price, \
        notional = excluded.notional, updated_ts_ms = excluded.updated_ts_ms, source_partition = excluded.source_partition, \
        seq = excluded.seq \
    WHERE excluded.seq >= orders_by_symbol.seq";

// At an equal seq a closed candle beats an open one: the closing write carries the seq of the
// bucket's last trade. Scylla gets the same result from its tie-break on equal timestamps
// (the greater cell value, `true`, wins).
const UPSERT_CANDLE: &str = "\
    INSERT INTO candles (symbol, interval, bucket_start_ms, open, high, low, close, volume, \
        turnover, vwap, trade_count, closed, source_partition, seq) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
    ON CONFLICT (symbol, interval, bucket_start_ms) DO UPDATE SET \
        open = excluded.open, high = excluded.high, low = excluded.low, \
        close = excluded.close, volume = excluded.volume, turnover = excluded.turnover, \
        vwap = excluded.vwap, trade_count = excluded.trade_count, closed = excluded.closed, \
        source_partition = excluded.source_partition, seq = excluded.seq \
    WHERE excluded.seq > candles.seq \
       OR (excluded.seq = candles.seq AND excluded.closed >= candles.closed)";

const UPSERT_TOP: &str = "\
    INSERT INTO top_of_book (symbol, bid_price, bid_qty, ask_price, ask_qty, ts_ms, \
        source_partition, seq) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
    ON CONFLICT (symbol) DO UPDATE SET \
        bid_price = excluded.bid_price, bid_qty = excluded.bid_qty, \
        ask_price = excluded.ask_price, ask_qty = excluded.ask_qty, ts_ms = excluded.ts_ms, \
        source_partition = excluded.source_partition, seq = excluded.seq \
    WHERE excluded.seq >= top_of_book.seq";

const INSERT_NOTIFICATION: &str = "\
    INSERT INTO notifications_by_account (account, ts_ms, source_partition, seq, kind, \
        order_id, symbol, message) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
    ON CONFLICT DO NOTHING";

const UPSERT_OFFSET: &str = "\
    INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, watermark_ms) \
    VALUES (?1, ?2, ?3, ?4, ?5) \
    ON CONFLICT (consumer, topic, partition) DO UPDATE SET \
        next_offset = excluded.next_offset, watermark_ms = excluded.watermark_ms \
    WHERE excluded.next_offset >= consumer_offsets.next_offset";

/// Every statement of one batch, on an open transaction.
/// Runs `f` again while SQLite answers "busy" without having waited (lock upgrades, WAL
/// switches), for up to [`BUSY_TIMEOUT`].
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn write_rows(conn: &Connection, batch: &Batch) -> Result<()> {
    if !batch.trades.is_empty() {
        let mut by_symbol = conn.prepare_cached(INSERT_TRADE_BY_SYMBOL)?;
        let mut days = conn.prepare_cached(INSERT_TRADE_DAY)?;
        let mut by_account = conn.prepare_cached(INSERT_TRADE_BY_ACCOUNT)?;
        let mut last_day: Option<(&str, i32)> = None;
        for t in &batch.trades {
            let day = day_of(t.ts_ms);
            let price = DecText::new(t.price);
            let qty = DecText::new(t.qty);
            let side = t.taker_side.as_str();
            by_symbol.execute(params![
                t.symbol,
                day,
                t.seq,
                t.source_partition,
                t.ts_ms,
                price,
                qty,
                t.maker_order_id,
                t.maker_account,
                t.taker_order_id,
                t.taker_account,
                side,
            ])?;
            // Consecutive trades are mostly on the same symbol and day: skip the no-op insert.
            if last_day != Some((t.symbol.as_str(), day)) {
                days.execute(params![t.symbol, day])?;
                last_day = Some((t.symbol.as_str(), day));
            }
            for (account, role) in t.account_roles() {
                by_account.execute(params![
                    account,
                    t.ts_ms,
                    t.source_partition,
                    t.seq,
                    role,
                    t.symbol,
                    price,
                    qty,
                    t.maker_order_id,
                    t.maker_account,
                    t.taker_order_id,
                    t.taker_account,
                    side,
                ])?;
            }
        }
    }
    if !batch.orders.is_empty() {
        let mut stmt = conn.prepare_cached(UPSERT_ORDER)?;
        for o in &batch.orders {
            stmt.execute(params![
                o.order_id,
                o.account,
                o.symbol,
                o.side.as_str(),
                o.status.as_str(),
                o.price.map(DecText::new),
                DecText::new(o.qty),
                DecText::new(o.filled_qty),
                o.avg_price.map(DecText::new),
                DecText::new(o.notional),
                o.updated_ts_ms,
                o.source_partition,
                o.seq,
            ])?;
        }
    }
    if !batch.candles.is_empty() {
        let mut stmt = conn.prepare_cached(UPSERT_CANDLE)?;
        for c in &batch.candles {
            stmt.execute(params![
                c.symbol,
                c.interval.as_str(),
                c.bucket_start_ms,
                DecText::new(c.open),
                DecText::new(c.high),
                DecText::new(c.low),
                DecText::new(c.close),
                DecText::new(c.volume),
                DecText::new(c.turnover),
                DecText::new(c.vwap),
                c.trade_count,
                c.closed,
                c.source_partition,
                c.seq,
            ])?;
        }
    }
    if !batch.tops.is_empty() {
        let mut stmt = conn.prepare_cached(UPSERT_TOP)?;
        for t in &batch.tops {
            stmt.execute(params![
                t.symbol,
                t.bid.map(|(p, _)| DecText::new(p)),
                t.bid.map(|(_, q)| DecText::new(q)),
                t.ask.map(|(p, _)| DecText::new(p)),
                t.ask.map(|(_, q)| DecText::new(q)),
                t.ts_ms,
                t.source_partition,
                t.seq,
            ])?;
        }
    }
    if !batch.notifications.is_empty() {
        let mut stmt = conn.prepare_cached(INSERT_NOTIFICATION)?;
        for n in &batch.notifications {
            stmt.execute(params![
                n.account,
                n.ts_ms,
                n.source_partition,
                n.seq,
                n.kind,
                n.order_id,
                n.symbol,
                n.text,
            ])?;
        }
    }
    // Offsets last, in the same transaction: they commit with the rows or not at all.
    if !batch.offsets.is_empty() {
        let mut stmt = conn.prepare_cached(UPSERT_OFFSET)?;
        for o in &batch.offsets {
            stmt.execute(params![
                o.consumer,
                o.topic,
                o.partition,
                o.next_offset,
                o.watermark_ms,
            ])?;
        }
    }
    Ok(())
}

/// A decimal's exact text, formatted on the stack: binding it allocates nothing.
#[derive(Debug, Clone, Copy)]
struct DecText {
    buf: [u8; DecText::CAPACITY],
    /// Bytes used; 0 when formatting failed (a decimal never formats to nothing).
    len: u8,
}

impl DecText {
    /// Longest text: sign, 19 digits of an i64, a point and one leading zero need 22 bytes.
    const CAPACITY: usize = 40;

    fn new(d: Decimal) -> Self {
        let mut buf = [0u8; Self::CAPACITY];
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let len = match write!(cursor, "{d}") {
            Ok(()) => u8::try_from(cursor.position()).unwrap_or(0),
            Err(_) => 0,
        };
        DecText { buf, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl ToSql for DecText {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        if self.len == 0 {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                "decimal does not fit its text buffer".into(),
            ));
        }
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_bytes())))
    }
}

// ---------------------------------------------------------------------------------------------
// Reads

const SELECT_OFFSET: &str = "\
    SELECT next_offset, watermark_ms FROM consumer_offsets \
    WHERE consumer = ?1 AND topic = ?2 AND partition = ?3";

/// Column order read by [`trade_from_row`].
macro_rules! trade_columns {
    () => {
        "symbol, source_partition, seq, ts_ms, price, qty, maker_order_id, maker_account, \
         taker_order_id, taker_account, taker_side"
    };
}

const SELECT_TRADES_BY_SYMBOL: &str = concat!(
    "SELECT ",
    trade_columns!(),
    " FROM trades_by_symbol WHERE symbol = ?1 \
      ORDER BY day DESC, seq DESC, source_partition ASC LIMIT ?2"
);

const SELECT_TRADES_BY_ACCOUNT: &str = concat!(
    "SELECT ",
    trade_columns!(),
    " FROM trades_by_account WHERE account = ?1 \
      ORDER BY ts_ms DESC, source_partition ASC, seq DESC LIMIT ?2"
);

const SELECT_ORDER: &str = "\
    SELECT order_id, account, symbol, side, status, price, qty, filled_qty, avg_price, \
        notional, updated_ts_ms, source_partition, seq \
    FROM orders_by_symbol WHERE symbol = ?1 AND order_id = ?2";

/// Column order read by [`candle_from_row`].
macro_rules! candle_columns {
    () => {
        "symbol, interval, bucket_start_ms, open, high, low, close, volume, turnover, vwap, \
         trade_count, closed, source_partition, seq"
    };
}

const SELECT_CANDLE: &str = concat!(
    "SELECT ",
    candle_columns!(),
    " FROM candles WHERE symbol = ?1 AND interval = ?2 AND bucket_start_ms = ?3"
);

const SELECT_CANDLES: &str = concat!(
    "SELECT ",
    candle_columns!(),
    " FROM candles WHERE symbol = ?1 AND interval = ?2 \
      ORDER BY bucket_start_ms DESC LIMIT ?3"
);

// `closed = 0` is the partial index's condition, spelled the same: SQLite uses a partial index
// only when the query implies its condition, and `INDEXED BY` turns a query that could not use
// it into an error instead of a scan of every candle ever closed. The order is set in Rust
// (`sort_open_candles`).
const SELECT_OPEN_CANDLES: &str = concat!(
    "SELECT ",
    candle_columns!(),
    " FROM candles INDEXED BY candles_open_by_partition \
      WHERE source_partition = ?1 AND closed = 0"
);

const SELECT_TOP: &str = "\
    SELECT symbol, bid_price, bid_qty, ask_price, ask_qty, ts_ms, source_partition, seq \
    FROM top_of_book WHERE symbol = ?1";

const SELECT_NOTIFICATIONS: &str = "\
    SELECT account, source_partition, seq, ts_ms, kind, order_id, symbol, message \
    FROM notifications_by_account WHERE account = ?1 \
    ORDER BY ts_ms DESC, source_partition ASC, seq DESC LIMIT ?2";

const SELECT_COUNTS: &str = "\
    SELECT (SELECT COUNT(*) FROM trades_by_symbol), (SELECT COUNT(*) FROM orders_by_symbol), \
        (SELECT COUNT(*) FROM candles), (SELECT COUNT(*) FROM top_of_book), \
        (SELECT COUNT(*) FROM notifications_by_account)";

/// A `LIMIT` value: SQLite takes an i64.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn corrupt(table: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { table, detail }
}

fn text_at<'r>(row: &'r Row<'_>, idx: usize, table: &'static str) -> Result<&'r str> {
    row.get_ref(idx)?
        .as_str()
        .map_err(|e| corrupt(table, format!("column {idx}: {e}")))
}

fn dec_at(row: &Row<'_>, idx: usize, table: &'static str) -> Result<Decimal> {
    parse_dec(text_at(row, idx, table)?, idx, table)
}

fn opt_dec_at(row: &Row<'_>, idx: usize, table: &'static str) -> Result<Option<Decimal>> {
    match row.get_ref(idx)? {
        ValueRef::Null => Ok(None),
        _ => dec_at(row, idx, table).map(Some),
    }
}

fn parse_dec(s: &str, idx: usize, table: &'static str) -> Result<Decimal> {
    s.parse()
        .map_err(|e| corrupt(table, format!("column {idx}: {s:?} is not a decimal: {e}")))
}

fn side_at(row: &Row<'_>, idx: usize, table: &'static str) -> Result<Side> {
    let s = text_at(row, idx, table)?;
    side_from_str(s).ok_or_else(|| corrupt(table, format!("column {idx}: unknown side {s:?}")))
}

fn trade_from_row(row: &Row<'_>, table: &'static str) -> Result<TradeRow> {
    Ok(TradeRow {
        symbol: row.get(0)?,
        source_partition: row.get(1)?,
        seq: row.get(2)?,
        ts_ms: row.get(3)?,
        price: dec_at(row, 4, table)?,
        qty: dec_at(row, 5, table)?,
        maker_order_id: row.get(6)?,
        maker_account: row.get(7)?,
        taker_order_id: row.get(8)?,
        taker_account: row.get(9)?,
        taker_side: side_at(row, 10, table)?,
    })
}

fn order_from_row(row: &Row<'_>) -> Result<OrderStateRow> {
    const T: &str = "orders_by_symbol";
    let status = text_at(row, 4, T)?;
    Ok(OrderStateRow {
        order_id: row.get(0)?,
        account: row.get(1)?,
        symbol: row.get(2)?,
        side: side_at(row, 3, T)?,
        status: OrderStatus::parse(status)
            .ok_or_else(|| corrupt(T, format!("unknown status {status:?}")))?,
        price: opt_dec_at(row, 5, T)?,
        qty: dec_at(row, 6, T)?,
        filled_qty: dec_at(row, 7, T)?,
        avg_price: opt_dec_at(row, 8, T)?,
        notional: dec_at(row, 9, T)?,
        updated_ts_ms: row.get(10)?,
        source_partition: row.get(11)?,
        seq: row.get(12)?,
    })
}

fn candle_from_row(row: &Row<'_>) -> Result<CandleRow> {
    const T: &str = "candles";
    let interval = text_at(row, 1, T)?;
    Ok(CandleRow {
        symbol: row.get(0)?,
        interval: Interval::parse(interval)
            .ok_or_else(|| corrupt(T, format!("unknown interval {interval:?}")))?,
        bucket_start_ms: row.get(2)?,
        open: dec_at(row, 3, T)?,
        high: dec_at(row, 4, T)?,
        low: dec_at(row, 5, T)?,
        close: dec_at(row, 6, T)?,
        volume: dec_at(row, 7, T)?,
        turnover: dec_at(row, 8, T)?,
        vwap: dec_at(row, 9, T)?,
        trade_count: row.get(10)?,
        closed: row.get(11)?,
        source_partition: row.get(12)?,
        seq: row.get(13)?,
    })
}

fn top_from_row(row: &Row<'_>) -> Result<TopOfBookRow> {
    const T: &str = "top_of_book";
    let level = |p: usize| -> Result<Option<(Decimal, Decimal)>> {
        match (opt_dec_at(row, p, T)?, opt_dec_at(row, p + 1, T)?) {
            (Some(price), Some(qty)) => Ok(Some((price, qty))),
            (None, None) => Ok(None),
            _ => Err(corrupt(
                T,
                format!(
                    "columns {p} and {}: price and qty must both be set or null",
                    p + 1
                ),
            )),
        }
    };
    Ok(TopOfBookRow {
        symbol: row.get(0)?,
        bid: level(1)?,
        ask: level(3)?,
        ts_ms: row.get(5)?,
        source_partition: row.get(6)?,
        seq: row.get(7)?,
    })
}

fn notification_from_row(row: &Row<'_>) -> Result<NotificationRow> {
    Ok(NotificationRow {
        account: row.get(0)?,
        source_partition: row.get(1)?,
        seq: row.get(2)?,
        ts_ms: row.get(3)?,
        kind: row.get(4)?,
        order_id: row.get(5)?,
        symbol: row.get(6)?,
        text: row.get(7)?,
    })
}

#[cfg(test)]
mod tests;
