//! The Scylla/Cassandra backend.
//!
//! ## Schema
//! [`Store::migrate`] runs `CREATE KEYSPACE IF NOT EXISTS` with `SimpleStrategy`, replication
//! factor 1 (right for a single dev node), `USE`s the keyspace, then every statement of
//! `schemas/cql/*.cql` in file order ([`MIGRATIONS`], all `CREATE TABLE IF NOT EXISTS`). A
//! primary key cannot change, so a table whose key changes gets a successor under a new name:
//! when the keyspace still has the old order table, `orders` (keyed by order id alone), migrate
//! copies its rows into `orders_by_symbol` (keyed by symbol and order id), `USING TIMESTAMP`
//! each row's seq as every order write, and then drops it. In production create the keyspace
//! beforehand with `NetworkTopologyStrategy` and the replication each data center needs; `IF NOT
//! EXISTS` then leaves it alone. [`ScyllaStore::connect`] migrates, then prepares every statement
//! once.
//!
//! ## Writes
//! - Every statement is prepared with all its partition key columns bound (the driver routes it
//!   to a replica owning the token) and marked idempotent (the driver may retry or speculate).
//! - Primary keys are deterministic: the event's own key, or `(source_partition, seq)` for
//!   events. No counters, no list appends: writing a row twice leaves one identical row.
//! - **Timestamp formula.** Every write is `USING TIMESTAMP ?` bound to the row's `seq`: the
//!   per-source-partition contiguous counter of the output topic the row comes from (trades:
//!   `trades` seq; order states and notifications: `executions` seq; candles: the `trades` seq of
//!   the bucket's last trade; top of book: `market-data` seq). One key (order, symbol, bucket)
//!   always comes from one source partition, so for one key a later event has a greater seq and
//!   wins whatever order the writes land in, and a replay converges. Consumer offsets use
//!   `next_offset` as their timestamp, so an offset never moves backwards either. At an equal
//!   timestamp Scylla keeps the greater cell value: a candle's closing write (same seq as its
//!   last trade, `closed = true`) beats the open one.
//! - **Open candles.** [`Store::open_candles`] reads one partition of `open_candles`, keyed by
//!   source partition, which every candle write keeps in step: an `INSERT` of the row while the
//!   candle is open, a `DELETE` of it once closed, both `USING TIMESTAMP` the candle's seq. At
//!   an equal timestamp a deletion wins over a write (Cassandra and Scylla both), so the closing
//!   write — at the seq of the last open one — removes the row, and a replayed open write at that
//!   seq cannot bring it back; this is the same tie-break as `closed = true` winning in
//!   `candles`. Each close leaves a tombstone in the partition until `gc_grace_seconds` has
//!   passed and compaction purges it, so the read is paged.
//! - These timestamps are tiny next to wall-clock microseconds: a manual `UPDATE` or `DELETE`
//!   without `USING TIMESTAMP` would shadow every later write of its key. Fix data with an
//!   explicit timestamp, or `TRUNCATE`.
//! - [`Store::write`] runs the row statements concurrently (at most [`MAX_IN_FLIGHT`] at once),
//!   then, only when every one succeeded, the offsets. A crash in between leaves rows that the
//!   replay from the old offsets rewrites identically. Statements are not grouped into `BATCH`es:
//!   a multi-partition unlogged batch loses token-aware routing and loads one coordinator, and
//!   the timestamps already make the order of writes irrelevant.
//!
//! ## Decimals
//! Prices and quantities are CQL `decimal`: a [`Decimal`]'s i64 mantissa is sent as the
//! big-endian two's-complement unscaled value (minimal length) with its scale, and read back
//! exactly, so `100.50` stays `100.50`, not `100.5`. Values that do not fit a [`Decimal`] (more
//! than 64 bits, a scale above 18) read back as [`StoreError::Corrupt`].
//!
//! ## Threads
//! The [`Store`] API is synchronous. The store owns a tokio runtime with one worker thread, which
//! keeps the driver's connection tasks (keep-alives, topology events, reconnection) running
//! between calls; each call blocks on it. Called from inside another tokio runtime, where
//! blocking the thread in place would panic, a call runs on a short-lived thread of its own.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::frame::response::result::ColumnType;
use scylla::response::PagingState;
use scylla::serialize::SerializationError;
use scylla::serialize::row::SerializeRow;
use scylla::serialize::value::SerializeValue;
use scylla::serialize::writers::{CellWriter, WrittenCellProof};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::unprepared::Statement;
use scylla::value::{CqlDecimal, CqlDecimalBorrowed, CqlValue, Row as CqlRow};
use tokio::runtime::Runtime;
use tradestream_engine::Decimal;
use tradestream_engine::decimal::MAX_SCALE;

use crate::dump::{DUMP_TABLES, DumpTable, KeyPart};
use crate::uri::validate_keyspace;
use crate::{
    Batch, CandleRow, Interval, NotificationRow, OffsetRow, OrderStateRow, OrderStatus, Result,
    Store, StoreCounts, StoreDump, StoreError, TopOfBookRow, TradeRow, day_of, side_from_str,
};

/// The table DDL, in the order it runs: (file name, statements). Every statement is idempotent
/// (`IF NOT EXISTS`), so all of them run on every migration; what DDL cannot do (moving the rows
/// of a replaced table into its successor) follows them: see [`Store::migrate`].
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "001_tables.cql",
        include_str!("../../../schemas/cql/001_tables.cql"),
    ),
    (
        "002_orders_by_symbol.cql",
        include_str!("../../../schemas/cql/002_orders_by_symbol.cql"),
    ),
];

/// The order table before `orders_by_symbol`, keyed by order id alone: moved and dropped by
/// [`Store::migrate`] (see `schemas/cql/002_orders_by_symbol.cql`).
const LEGACY_ORDERS: &str = "orders";

/// The columns read by [`order_from_cql`], in order.
macro_rules! order_columns {
    () => {
        "order_id, account, symbol, side, status, price, qty, filled_qty, avg_price, notional, \
         updated_ts_ms, source_partition, seq"
    };
}

/// Most statements of one [`Store::write`] in flight at once: enough to hide round trips, few
/// enough not to flood a small cluster's queues.
pub const MAX_IN_FLIGHT: usize = 256;

/// How long to wait for a TCP connection to a node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a `COUNT(*)` may take: it scans the whole table.
const COUNT_TIMEOUT: Duration = Duration::from_secs(120);

/// Days of `trade_days` read per page while walking a symbol's trades newest first.
const DAY_PAGE: i32 = 16;

/// A Scylla/Cassandra keyspace holding the results. See the module documentation.
pub struct ScyllaStore {
    session: Session,
    statements: Statements,
    nodes: Vec<String>,
    keyspace: String,
    // Last: dropped after the session.
    runtime: OwnedRuntime,
}

impl fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("nodes", &self.nodes)
            .field("keyspace", &self.keyspace)
            .finish_non_exhaustive()
    }
}

impl ScyllaStore {
    /// Connects to the cluster through `nodes` (`host:port` contact points), creates the keyspace
    /// and tables that are missing and prepares every statement.
    pub fn connect(nodes: &[String], keyspace: &str) -> Result<Self> {
        validate_keyspace(keyspace).map_err(|reason| StoreError::Uri {
            uri: keyspace.to_owned(),
            reason,
        })?;
        if nodes.is_empty() {
            return Err(StoreError::Uri {
                uri: format!("scylla:///{keyspace}"),
                reason: "no contact points".to_owned(),
            });
        }
        // Unquoted CQL names are case-insensitive: keep the form the server reports.
        let keyspace = keyspace.to_ascii_lowercase();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tradestream-scylla")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Other(format!("cannot start the Scylla runtime: {e}")))?;
        let runtime = OwnedRuntime(Some(runtime));
        let (session, statements) = runtime.block_on(async {
            let session = SessionBuilder::new()
                .known_nodes(nodes)
                .connection_timeout(CONNECT_TIMEOUT)
                .build()
                .await
                .map_err(scylla_err(format!("connect to {}", nodes.join(","))))?;
            migrate_schema(&session, &keyspace).await?;
            let statements = Statements::prepare(&session).await?;
            move_legacy_orders(&session, &keyspace, &statements).await?;
            Ok::<_, StoreError>((session, statements))
        })??;
        tracing::info!(nodes = %nodes.join(","), keyspace = %keyspace, "connected to Scylla");
        Ok(ScyllaStore {
            session,
            statements,
            nodes: nodes.to_vec(),
            keyspace,
            runtime,
        })
    }

    /// The keyspace in use.
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// Drops the whole keyspace, tables and data (tests and shadow keyspaces of `replay`).
    pub fn drop_keyspace(self) -> Result<()> {
        let ddl = format!("DROP KEYSPACE IF EXISTS {}", self.keyspace);
        self.runtime.block_on(async {
            self.session
                .query_unpaged(ddl, ())
                .await
                .map(drop)
                .map_err(scylla_err("drop keyspace"))
        })?
    }
}

impl Store for ScyllaStore {
    fn migrate(&mut self) -> Result<()> {
        let (session, keyspace) = (&self.session, &self.keyspace);
        self.statements = self.runtime.block_on(async {
            migrate_schema(session, keyspace).await?;
            let statements = Statements::prepare(session).await?;
            move_legacy_orders(session, keyspace, &statements).await?;
            Ok::<_, StoreError>(statements)
        })??;
        Ok(())
    }

    fn write(&mut self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (session, st) = (&self.session, &self.statements);
        self.runtime.block_on(async {
            let mut rows: Vec<WriteFuture<'_>> = Vec::with_capacity(
                batch.trades.len() * 4
                    + batch.orders.len()
                    + batch.candles.len() * 2
                    + batch.tops.len()
                    + batch.notifications.len(),
            );
            let mut last_day: Option<(&str, i32)> = None;
            for t in &batch.trades {
                let day = day_of(t.ts_ms);
                let (price, qty, side) = (CqlDec(t.price), CqlDec(t.qty), t.taker_side.as_str());
                rows.push(exec(
                    session,
                    &st.insert_trade_by_symbol,
                    "trades_by_symbol",
                    (
                        t.symbol.as_str(),
                        day,
                        t.seq,
                        t.source_partition,
                        t.ts_ms,
                        price,
                        qty,
                        t.maker_order_id.as_str(),
                        t.maker_account.as_str(),
                        t.taker_order_id.as_str(),
                        t.taker_account.as_str(),
                        side,
                        t.seq,
                    ),
                ));
                // Consecutive trades are mostly on the same symbol and day: one day row is enough.
                if last_day != Some((t.symbol.as_str(), day)) {
                    last_day = Some((t.symbol.as_str(), day));
                    rows.push(exec(
                        session,
                        &st.insert_trade_day,
                        "trade_days",
                        (t.symbol.as_str(), day, t.seq),
                    ));
                }
                for (account, role) in t.account_roles() {
                    rows.push(exec(
                        session,
                        &st.insert_trade_by_account,
                        "trades_by_account",
                        (
                            account,
                            t.ts_ms,
                            t.source_partition,
                            t.seq,
                            role,
                            t.symbol.as_str(),
                            price,
                            qty,
                            t.maker_order_id.as_str(),
                            t.maker_account.as_str(),
                            t.taker_order_id.as_str(),
                            t.taker_account.as_str(),
                            side,
                            t.seq,
                        ),
                    ));
                }
            }
            for o in &batch.orders {
                rows.push(upsert_order(session, st, o));
            }
            for c in &batch.candles {
                let values = (
                    c.symbol.as_str(),
                    c.interval.as_str(),
                    c.bucket_start_ms,
                    CqlDec(c.open),
                    CqlDec(c.high),
                    CqlDec(c.low),
                    CqlDec(c.close),
                    CqlDec(c.volume),
                    CqlDec(c.turnover),
                    CqlDec(c.vwap),
                    c.trade_count,
                    c.closed,
                    c.source_partition,
                    c.seq,
                    c.seq,
                );
                rows.push(exec(session, &st.upsert_candle, "candles", values));
                // The open-candle copy, at the same timestamp: on a tie the closing DELETE wins.
                rows.push(if c.closed {
                    exec(
                        session,
                        &st.delete_open_candle,
                        "open_candles",
                        (
                            c.seq,
                            c.source_partition,
                            c.symbol.as_str(),
                            c.interval.as_str(),
                            c.bucket_start_ms,
                        ),
                    )
                } else {
                    exec(session, &st.upsert_open_candle, "open_candles", values)
                });
            }
            for t in &batch.tops {
                rows.push(exec(
                    session,
                    &st.upsert_top,
                    "top_of_book",
                    (
                        t.symbol.as_str(),
                        t.bid.map(|(p, _)| CqlDec(p)),
                        t.bid.map(|(_, q)| CqlDec(q)),
                        t.ask.map(|(p, _)| CqlDec(p)),
                        t.ask.map(|(_, q)| CqlDec(q)),
                        t.ts_ms,
                        t.source_partition,
                        t.seq,
                        t.seq,
                    ),
                ));
            }
            for n in &batch.notifications {
                rows.push(exec(
                    session,
                    &st.insert_notification,
                    "notifications_by_account",
                    (
                        n.account.as_str(),
                        n.ts_ms,
                        n.source_partition,
                        n.seq,
                        n.kind.as_str(),
                        n.order_id.as_str(),
                        n.symbol.as_str(),
                        n.text.as_str(),
                        n.seq,
                    ),
                ));
            }
            run_concurrently(rows, MAX_IN_FLIGHT).await?;
            // Only now that every row is acknowledged: the positions they cover.
            let offsets = batch
                .offsets
                .iter()
                .map(|o| {
                    exec(
                        session,
                        &st.upsert_offset,
                        "consumer_offsets",
                        (
                            o.consumer.as_str(),
                            o.topic.as_str(),
                            o.partition,
                            o.next_offset,
                            o.watermark_ms,
                            o.next_offset,
                        ),
                    )
                })
                .collect();
            run_concurrently(offsets, MAX_IN_FLIGHT).await
        })?
    }

    fn offset(&mut self, consumer: &str, topic: &str, partition: i32) -> Result<Option<OffsetRow>> {
        let found = self.runtime.block_on(select(
            &self.session,
            &self.statements.select_offset,
            (consumer, topic, partition),
            "consumer_offsets",
            |(next_offset, watermark_ms): (i64, Option<i64>)| Ok((next_offset, watermark_ms)),
        ))??;
        Ok(found
            .into_iter()
            .next()
            .map(|(next_offset, watermark_ms)| OffsetRow {
                consumer: consumer.to_owned(),
                topic: topic.to_owned(),
                partition,
                next_offset,
                watermark_ms,
            }))
    }

    fn trades_by_symbol(&mut self, symbol: &str, limit: usize) -> Result<Vec<TradeRow>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (session, st) = (&self.session, &self.statements);
        self.runtime.block_on(async {
            let mut out = Vec::new();
            // Walk the symbol's days newest first, a page of days at a time.
            let mut newest_day = i32::MAX;
            loop {
                let days = select(
                    session,
                    &st.select_trade_days,
                    (symbol, newest_day, DAY_PAGE),
                    "trade_days",
                    |(day,): (i32,)| Ok(day),
                )
                .await?;
                for &day in &days {
                    let want = limit - out.len();
                    let trades = select(
                        session,
                        &st.select_trades_by_symbol_day,
                        (symbol, day, cql_limit(want)),
                        "trades_by_symbol",
                        |r| trade_from_cql(r, "trades_by_symbol"),
                    )
                    .await?;
                    out.extend(trades);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
                let next = match days.last() {
                    Some(&oldest) if days.len() == DAY_PAGE as usize => oldest.checked_sub(1),
                    _ => None,
                };
                match next {
                    Some(day) => newest_day = day,
                    None => return Ok(out),
                }
            }
        })?
    }

    fn trades_by_account(&mut self, account: &str, limit: usize) -> Result<Vec<TradeRow>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.runtime.block_on(select(
            &self.session,
            &self.statements.select_trades_by_account,
            (account, cql_limit(limit)),
            "trades_by_account",
            |r| trade_from_cql(r, "trades_by_account"),
        ))?
    }

    fn order(&mut self, symbol: &str, order_id: &str) -> Result<Option<OrderStateRow>> {
        let rows = self.runtime.block_on(select(
            &self.session,
            &self.statements.select_order,
            (symbol, order_id),
            "orders_by_symbol",
            order_from_cql,
        ))??;
        Ok(rows.into_iter().next())
    }

    fn candle(
        &mut self,
        symbol: &str,
        interval: Interval,
        bucket_start_ms: i64,
    ) -> Result<Option<CandleRow>> {
        let rows = self.runtime.block_on(select(
            &self.session,
            &self.statements.select_candle,
            (symbol, interval.as_str(), bucket_start_ms),
            "candles",
            candle_from_cql,
        ))??;
        Ok(rows.into_iter().next())
    }

    fn candles(
        &mut self,
        symbol: &str,
        interval: Interval,
        limit: usize,
    ) -> Result<Vec<CandleRow>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.runtime.block_on(select(
            &self.session,
            &self.statements.select_candles,
            (symbol, interval.as_str(), cql_limit(limit)),
            "candles",
            candle_from_cql,
        ))?
    }

    fn open_candles(&mut self, source_partition: i32) -> Result<Vec<CandleRow>> {
        let mut candles = self.runtime.block_on(select_paged(
            &self.session,
            &self.statements.select_open_candles,
            (source_partition,),
            "open_candles",
            candle_from_cql,
        ))??;
        crate::sort_open_candles(&mut candles);
        Ok(candles)
    }

    fn top_of_book(&mut self, symbol: &str) -> Result<Option<TopOfBookRow>> {
        let rows = self.runtime.block_on(select(
            &self.session,
            &self.statements.select_top,
            (symbol,),
            "top_of_book",
            top_from_cql,
        ))??;
        Ok(rows.into_iter().next())
    }

    fn notifications(&mut self, account: &str, limit: usize) -> Result<Vec<NotificationRow>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.runtime.block_on(select(
            &self.session,
            &self.statements.select_notifications,
            (account, cql_limit(limit)),
            "notifications_by_account",
            notification_from_cql,
        ))?
    }

    /// `SELECT COUNT(*)` of each table: a full scan of the cluster, for demos and tests only.
    fn counts(&mut self) -> Result<StoreCounts> {
        let session = &self.session;
        let [trades, orders, candles, tops, notifications] = self.runtime.block_on(async {
            let mut counts = [0u64; 5];
            let tables = [
                "trades_by_symbol",
                "orders_by_symbol",
                "candles",
                "top_of_book",
                "notifications_by_account",
            ];
            for (count, table) in counts.iter_mut().zip(tables) {
                let mut stmt = Statement::new(format!("SELECT COUNT(*) FROM {table}"));
                stmt.set_request_timeout(Some(COUNT_TIMEOUT));
                stmt.set_is_idempotent(true);
                let result = session
                    .query_unpaged(stmt, ())
                    .await
                    .map_err(scylla_err(format!("count {table}")))?;
                let (n,): (i64,) = result
                    .into_rows_result()
                    .map_err(scylla_err(format!("count {table}")))?
                    .single_row()
                    .map_err(scylla_err(format!("count {table}")))?;
                *count = n.unsigned_abs();
            }
            Ok::<_, StoreError>(counts)
        })??;
        Ok(StoreCounts {
            trades,
            orders,
            candles,
            tops,
            notifications,
        })
    }

    /// A paged full scan of each logical table, sorted by primary key here (the cluster returns
    /// rows in token order).
    fn dump(&mut self) -> Result<StoreDump> {
        let session = &self.session;
        let tables = self.runtime.block_on(async {
            let mut tables = BTreeMap::new();
            for table in DUMP_TABLES {
                let rows = dump_table(session, table.name, table).await?;
                tables.insert(table.name.to_owned(), rows);
            }
            Ok::<_, StoreError>(tables)
        })??;
        Ok(StoreDump { tables })
    }
}

/// Rows of the dump per page of a full scan.
const DUMP_PAGE: i32 = 1_000;

/// Every row of `from` as the logical table `table` (its columns, by name), in key order.
async fn dump_table(
    session: &Session,
    from: &'static str,
    table: &DumpTable,
) -> Result<Vec<BTreeMap<String, String>>> {
    let context = || format!("dump {from}");
    let mut stmt = Statement::new(format!("SELECT {} FROM {from}", table.columns.join(", ")));
    stmt.set_is_idempotent(true);
    stmt.set_request_timeout(Some(COUNT_TIMEOUT));
    stmt.set_page_size(DUMP_PAGE);
    let mut keyed = Vec::new();
    let mut paging_state = PagingState::start();
    loop {
        let (result, paging) = session
            .query_single_page(stmt.clone(), (), paging_state)
            .await
            .map_err(scylla_err(context()))?;
        let rows = result.into_rows_result().map_err(scylla_err(context()))?;
        for row in rows.rows::<CqlRow>().map_err(scylla_err(context()))? {
            let row = row.map_err(scylla_err(context()))?;
            let mut key = Vec::with_capacity(table.key_len);
            let mut cells = BTreeMap::new();
            for ((i, &column), value) in table.columns.iter().enumerate().zip(row.columns) {
                if i < table.key_len {
                    key.push(match &value {
                        Some(CqlValue::Int(n)) => KeyPart::Int(i64::from(*n)),
                        Some(CqlValue::BigInt(n)) => KeyPart::Int(*n),
                        Some(CqlValue::Text(t) | CqlValue::Ascii(t)) => KeyPart::Text(t.clone()),
                        other => {
                            return Err(corrupt(from, format!("key {column}: {other:?}")));
                        }
                    });
                }
                let text = match value {
                    None => StoreDump::NULL.to_owned(),
                    Some(CqlValue::Text(t) | CqlValue::Ascii(t)) => t,
                    Some(CqlValue::Int(n)) => n.to_string(),
                    Some(CqlValue::BigInt(n)) => n.to_string(),
                    Some(CqlValue::Boolean(b)) => b.to_string(),
                    Some(CqlValue::Decimal(d)) => dec(&d, from, column)?.to_string(),
                    Some(other) => {
                        return Err(corrupt(from, format!("{column}: unexpected {other:?}")));
                    }
                };
                cells.insert(column.to_owned(), text);
            }
            keyed.push((key, cells));
        }
        match paging.into_paging_control_flow() {
            ControlFlow::Break(()) => break,
            ControlFlow::Continue(next) => paging_state = next,
        }
    }
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(keyed.into_iter().map(|(_, cells)| cells).collect())
}

// ---------------------------------------------------------------------------------------------
// Schema and statements

/// The keyspace statement for a dev cluster (see the module documentation for production).
fn keyspace_ddl(keyspace: &str) -> String {
    format!(
        "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
         {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )
}

/// The statements of a CQL script: `--` comments removed, split on `;`, blanks dropped.
pub fn cql_statements(script: &str) -> Vec<String> {
    let mut code = String::with_capacity(script.len());
    for line in script.lines() {
        let line = line.find("--").map_or(line, |at| &line[..at]);
        code.push_str(line);
        code.push('\n');
    }
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn migrate_schema(session: &Session, keyspace: &str) -> Result<()> {
    session
        .query_unpaged(keyspace_ddl(keyspace), ())
        .await
        .map_err(scylla_err(format!("create keyspace {keyspace}")))?;
    session
        .use_keyspace(keyspace, false)
        .await
        .map_err(scylla_err(format!("use keyspace {keyspace}")))?;
    for (file, script) in MIGRATIONS {
        for ddl in cql_statements(script) {
            // The driver waits for schema agreement after each DDL statement.
            session
                .query_unpaged(ddl, ())
                .await
                .map_err(scylla_err(format!("schemas/cql/{file}")))?;
        }
    }
    Ok(())
}

/// The write of one order state (`USING TIMESTAMP` its seq).
fn upsert_order<'a>(
    session: &'a Session,
    st: &'a Statements,
    o: &'a OrderStateRow,
) -> WriteFuture<'a> {
    exec(
        session,
        &st.upsert_order,
        "orders_by_symbol",
        (
            o.order_id.as_str(),
            o.account.as_str(),
            o.symbol.as_str(),
            o.side.as_str(),
            o.status.as_str(),
            o.price.map(CqlDec),
            CqlDec(o.qty),
            CqlDec(o.filled_qty),
            o.avg_price.map(CqlDec),
            CqlDec(o.notional),
            o.updated_ts_ms,
            o.source_partition,
            o.seq,
            o.seq,
        ),
    )
}

/// Moves the rows of the old `orders` table (keyed by order id alone) into `orders_by_symbol`
/// and drops it, when the keyspace still has it; returns how many rows it copied. A page at a
/// time, each row `USING TIMESTAMP` its seq like every order write, so a state written to the
/// new table since wins and a move cut short by a crash is simply done again. The table is
/// dropped only after every row is copied; a row that cannot be read fails the migration and
/// leaves `orders` in place.
async fn move_legacy_orders(session: &Session, keyspace: &str, st: &Statements) -> Result<u64> {
    let context = || format!("move {keyspace}.{LEGACY_ORDERS} to orders_by_symbol");
    let exists = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables \
             WHERE keyspace_name = ? AND table_name = ?",
            (keyspace, LEGACY_ORDERS),
        )
        .await
        .map_err(scylla_err(context()))?
        .into_rows_result()
        .map_err(scylla_err(context()))?
        .rows_num()
        > 0;
    if !exists {
        return Ok(0);
    }
    let select = prepare(
        session,
        concat!("SELECT ", order_columns!(), " FROM orders"),
    )
    .await?;
    let mut moved = 0u64;
    let mut paging_state = PagingState::start();
    loop {
        let (result, paging) = session
            .execute_single_page(&select, (), paging_state)
            .await
            .map_err(scylla_err(context()))?;
        let rows = result.into_rows_result().map_err(scylla_err(context()))?;
        let mut page = Vec::with_capacity(rows.rows_num());
        for row in rows.rows::<OrderCols>().map_err(scylla_err(context()))? {
            page.push(order_from_cql(row.map_err(scylla_err(context()))?)?);
        }
        run_concurrently(
            page.iter().map(|o| upsert_order(session, st, o)).collect(),
            MAX_IN_FLIGHT,
        )
        .await?;
        moved += page.len() as u64;
        match paging.into_paging_control_flow() {
            ControlFlow::Break(()) => break,
            ControlFlow::Continue(next) => paging_state = next,
        }
    }
    session
        .query_unpaged(format!("DROP TABLE IF EXISTS {LEGACY_ORDERS}"), ())
        .await
        .map_err(scylla_err(context()))?;
    tracing::info!(
        keyspace,
        rows = moved,
        "moved the order states of the old `orders` table (keyed by order id alone) to \
         orders_by_symbol and dropped it"
    );
    Ok(moved)
}

/// Every statement, prepared once per session (and again after [`Store::migrate`]).
struct Statements {
    insert_trade_by_symbol: PreparedStatement,
    insert_trade_day: PreparedStatement,
    insert_trade_by_account: PreparedStatement,
    upsert_order: PreparedStatement,
    upsert_candle: PreparedStatement,
    upsert_open_candle: PreparedStatement,
    delete_open_candle: PreparedStatement,
    upsert_top: PreparedStatement,
    insert_notification: PreparedStatement,
    upsert_offset: PreparedStatement,
    select_offset: PreparedStatement,
    select_trade_days: PreparedStatement,
    select_trades_by_symbol_day: PreparedStatement,
    select_trades_by_account: PreparedStatement,
    select_order: PreparedStatement,
    select_candle: PreparedStatement,
    select_candles: PreparedStatement,
    select_open_candles: PreparedStatement,
    select_top: PreparedStatement,
    select_notifications: PreparedStatement,
}

/// Columns read by [`trade_from_cql`].
macro_rules! trade_columns {
    () => {
        "symbol, source_partition, seq, ts_ms, price, qty, maker_order_id, maker_account, \
         taker_order_id, taker_account, taker_side"
    };
}

/// Columns read by [`candle_from_cql`].
macro_rules! candle_columns {
    () => {
        "symbol, interval, bucket_start_ms, open, high, low, close, volume, turnover, vwap, \
         trade_count, closed, source_partition, seq"
    };
}

impl Statements {
    async fn prepare(session: &Session) -> Result<Self> {
        Ok(Statements {
            insert_trade_by_symbol: prepare(
                session,
                "INSERT INTO trades_by_symbol (symbol, day, seq, source_partition, ts_ms, price, \
                 qty, maker_order_id, maker_account, taker_order_id, taker_account, taker_side) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
            )
            .await?,
            insert_trade_day: prepare(
                session,
                "INSERT INTO trade_days (symbol, day) VALUES (?, ?) USING TIMESTAMP ?",
            )
            .await?,
            insert_trade_by_account: prepare(
                session,
                "INSERT INTO trades_by_account (account, ts_ms, source_partition, seq, role, \
                 symbol, price, qty, maker_order_id, maker_account, taker_order_id, \
                 taker_account, taker_side) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
            )
            .await?,
            upsert_order: prepare(
                session,
                concat!(
                    "INSERT INTO orders_by_symbol (",
                    order_columns!(),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
                ),
            )
            .await?,
            upsert_candle: prepare(
                session,
                concat!(
                    "INSERT INTO candles (",
                    candle_columns!(),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
                ),
            )
            .await?,
            upsert_open_candle: prepare(
                session,
                concat!(
                    "INSERT INTO open_candles (",
                    candle_columns!(),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
                ),
            )
            .await?,
            delete_open_candle: prepare(
                session,
                "DELETE FROM open_candles USING TIMESTAMP ? WHERE source_partition = ? \
                 AND symbol = ? AND interval = ? AND bucket_start_ms = ?",
            )
            .await?,
            upsert_top: prepare(
                session,
                "INSERT INTO top_of_book (symbol, bid_price, bid_qty, ask_price, ask_qty, ts_ms, \
                 source_partition, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
            )
            .await?,
            insert_notification: prepare(
                session,
                "INSERT INTO notifications_by_account (account, ts_ms, source_partition, seq, \
                 kind, order_id, symbol, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 USING TIMESTAMP ?",
            )
            .await?,
            upsert_offset: prepare(
                session,
                "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, \
                 watermark_ms) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?",
            )
            .await?,
            select_offset: prepare(
                session,
                "SELECT next_offset, watermark_ms FROM consumer_offsets \
                 WHERE consumer = ? AND topic = ? AND partition = ?",
            )
            .await?,
            select_trade_days: prepare(
                session,
                "SELECT day FROM trade_days WHERE symbol = ? AND day <= ? LIMIT ?",
            )
            .await?,
            select_trades_by_symbol_day: prepare(
                session,
                concat!(
                    "SELECT ",
                    trade_columns!(),
                    " FROM trades_by_symbol WHERE symbol = ? AND day = ? LIMIT ?"
                ),
            )
            .await?,
            select_trades_by_account: prepare(
                session,
                concat!(
                    "SELECT ",
                    trade_columns!(),
                    " FROM trades_by_account WHERE account = ? LIMIT ?"
                ),
            )
            .await?,
            select_order: prepare(
                session,
                concat!(
                    "SELECT ",
                    order_columns!(),
                    " FROM orders_by_symbol WHERE symbol = ? AND order_id = ?"
                ),
            )
            .await?,
            select_candle: prepare(
                session,
                concat!(
                    "SELECT ",
                    candle_columns!(),
                    " FROM candles WHERE symbol = ? AND interval = ? AND bucket_start_ms = ?"
                ),
            )
            .await?,
            select_candles: prepare(
                session,
                concat!(
                    "SELECT ",
                    candle_columns!(),
                    " FROM candles WHERE symbol = ? AND interval = ? LIMIT ?"
                ),
            )
            .await?,
            select_open_candles: prepare(
                session,
                concat!(
                    "SELECT ",
                    candle_columns!(),
                    " FROM open_candles WHERE source_partition = ?"
                ),
            )
            .await?,
            select_top: prepare(
                session,
                "SELECT symbol, bid_price, bid_qty, ask_price, ask_qty, ts_ms, source_partition, \
                 seq FROM top_of_book WHERE symbol = ?",
            )
            .await?,
            select_notifications: prepare(
                session,
                "SELECT account, source_partition, seq, ts_ms, kind, order_id, symbol, message \
                 FROM notifications_by_account WHERE account = ? LIMIT ?",
            )
            .await?,
        })
    }
}

/// Prepares one statement and marks it idempotent: every statement here can be retried.
async fn prepare(session: &Session, cql: &str) -> Result<PreparedStatement> {
    let mut stmt = session
        .prepare(cql)
        .await
        .map_err(scylla_err(format!("prepare {cql:?}")))?;
    stmt.set_is_idempotent(true);
    Ok(stmt)
}

// ---------------------------------------------------------------------------------------------
// Execution

/// A runtime dropped without blocking: dropping a runtime inside another one would panic.
struct OwnedRuntime(Option<Runtime>);

impl OwnedRuntime {
    /// Runs `fut` to completion on this runtime. Inside another tokio runtime, where blocking the
    /// current thread on a runtime panics, on a thread of its own.
    fn block_on<F>(&self, fut: F) -> Result<F::Output>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(runtime) = &self.0 else {
            return Err(StoreError::Other(
                "the Scylla runtime is shut down".to_owned(),
            ));
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(runtime.block_on(fut));
        }
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("tradestream-scylla-call".to_owned())
                .spawn_scoped(scope, || runtime.block_on(fut))
                .map_err(|e| StoreError::Other(format!("cannot start a Scylla call thread: {e}")))?
                .join()
                .map_err(|_| StoreError::Other("a Scylla call thread panicked".to_owned()))
        })
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

type WriteFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// One write, as a future.
fn exec<'a>(
    session: &'a Session,
    stmt: &'a PreparedStatement,
    table: &'static str,
    values: impl SerializeRow + Send + 'a,
) -> WriteFuture<'a> {
    Box::pin(async move {
        session
            .execute_unpaged(stmt, values)
            .await
            .map(drop)
            .map_err(scylla_err(format!("write {table}")))
    })
}

/// Drives `writes` with at most `limit` in flight; the first error wins (the rest are dropped:
/// every write is idempotent, so whether they landed does not matter).
async fn run_concurrently(writes: Vec<WriteFuture<'_>>, limit: usize) -> Result<()> {
    let mut pending = writes.into_iter();
    let mut in_flight: Vec<WriteFuture<'_>> = Vec::with_capacity(limit.min(pending.len()));
    std::future::poll_fn(|cx| {
        loop {
            while in_flight.len() < limit {
                match pending.next() {
                    Some(write) => in_flight.push(write),
                    None => break,
                }
            }
            if in_flight.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let before = in_flight.len();
            let mut i = 0;
            while i < in_flight.len() {
                match in_flight[i].as_mut().poll(cx) {
                    Poll::Ready(Ok(())) => drop(in_flight.swap_remove(i)),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => i += 1,
                }
            }
            if in_flight.len() == before {
                return Poll::Pending;
            }
        }
    })
    .await
}

/// Runs a prepared `SELECT` and converts every row.
async fn select<R, T>(
    session: &Session,
    stmt: &PreparedStatement,
    values: impl SerializeRow,
    table: &'static str,
    convert: impl Fn(R) -> Result<T>,
) -> Result<Vec<T>>
where
    R: for<'f> DeserializeRow<'f, 'f>,
{
    let context = || format!("read {table}");
    let rows = session
        .execute_unpaged(stmt, values)
        .await
        .map_err(scylla_err(context()))?
        .into_rows_result()
        .map_err(scylla_err(context()))?;
    let mut out = Vec::with_capacity(rows.rows_num());
    for row in rows.rows::<R>().map_err(scylla_err(context()))? {
        out.push(convert(row.map_err(scylla_err(context()))?)?);
    }
    Ok(out)
}

/// Like [`select`], a page at a time: for partitions whose tombstones may outnumber their rows
/// (`open_candles`), which an unpaged read would have to scan in one request.
async fn select_paged<R, T>(
    session: &Session,
    stmt: &PreparedStatement,
    values: impl SerializeRow,
    table: &'static str,
    convert: impl Fn(R) -> Result<T>,
) -> Result<Vec<T>>
where
    R: for<'f> DeserializeRow<'f, 'f>,
{
    let context = || format!("read {table}");
    let mut out = Vec::new();
    let mut paging_state = PagingState::start();
    loop {
        let (result, paging) = session
            .execute_single_page(stmt, &values, paging_state)
            .await
            .map_err(scylla_err(context()))?;
        let rows = result.into_rows_result().map_err(scylla_err(context()))?;
        for row in rows.rows::<R>().map_err(scylla_err(context()))? {
            out.push(convert(row.map_err(scylla_err(context()))?)?);
        }
        match paging.into_paging_control_flow() {
            ControlFlow::Break(()) => return Ok(out),
            ControlFlow::Continue(next) => paging_state = next,
        }
    }
}

fn scylla_err<E: fmt::Display>(context: impl fmt::Display) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Scylla(format!("{context}: {e}"))
}

/// A `LIMIT` value: CQL takes a positive int.
fn cql_limit(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX).max(1)
}

// ---------------------------------------------------------------------------------------------
// Decimals

/// A [`Decimal`] bound as a CQL `decimal`, without allocating.
#[derive(Debug, Clone, Copy)]
struct CqlDec(Decimal);

impl SerializeValue for CqlDec {
    fn serialize<'b>(
        &self,
        typ: &ColumnType,
        writer: CellWriter<'b>,
    ) -> Result<WrittenCellProof<'b>, SerializationError> {
        let bytes = self.0.mantissa().to_be_bytes();
        CqlDecimalBorrowed::from_signed_be_bytes_slice_and_exponent(
            minimal_twos_complement(&bytes),
            i32::from(self.0.scale()),
        )
        .serialize(typ, writer)
    }
}

/// `bytes` without the leading bytes that only repeat the sign (at least one byte stays).
fn minimal_twos_complement(mut bytes: &[u8]) -> &[u8] {
    while let [first, second, ..] = bytes {
        let redundant =
            (*first == 0x00 && second & 0x80 == 0) || (*first == 0xff && second & 0x80 != 0);
        if !redundant {
            break;
        }
        bytes = &bytes[1..];
    }
    bytes
}

/// A stored `decimal` back as a [`Decimal`], or why it does not fit one.
fn decimal_from_cql(d: &CqlDecimal) -> std::result::Result<Decimal, String> {
    let (bytes, scale) = d.as_signed_be_bytes_slice_and_exponent();
    let bytes = minimal_twos_complement(bytes);
    let Some(&first) = bytes.first() else {
        return Err("empty decimal".to_owned());
    };
    if bytes.len() > 8 {
        return Err(format!(
            "unscaled value of {} bytes exceeds 64 bits",
            bytes.len()
        ));
    }
    let fill = if first & 0x80 != 0 { 0xff } else { 0x00 };
    let mut be = [fill; 8];
    be[8 - bytes.len()..].copy_from_slice(bytes);
    let mantissa = i64::from_be_bytes(be);
    if scale < 0 {
        // 12E+3: a whole number, written with scale 0.
        let mantissa = 10i64
            .checked_pow(scale.unsigned_abs())
            .and_then(|p| mantissa.checked_mul(p))
            .ok_or_else(|| format!("{mantissa}E+{} exceeds 64 bits", scale.unsigned_abs()))?;
        return Ok(Decimal::new(mantissa, 0));
    }
    match u8::try_from(scale) {
        Ok(scale) if scale <= MAX_SCALE => Ok(Decimal::new(mantissa, scale)),
        _ => Err(format!("scale {scale} exceeds {MAX_SCALE}")),
    }
}

fn dec(d: &CqlDecimal, table: &'static str, column: &str) -> Result<Decimal> {
    decimal_from_cql(d).map_err(|detail| StoreError::Corrupt {
        table,
        detail: format!("{column}: {detail}"),
    })
}

fn opt_dec(d: &Option<CqlDecimal>, table: &'static str, column: &str) -> Result<Option<Decimal>> {
    d.as_ref().map(|d| dec(d, table, column)).transpose()
}

fn corrupt(table: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { table, detail }
}

// ---------------------------------------------------------------------------------------------
// Rows

type TradeCols = (
    String,
    i32,
    i64,
    i64,
    CqlDecimal,
    CqlDecimal,
    String,
    String,
    String,
    String,
    String,
);

fn trade_from_cql(r: TradeCols, table: &'static str) -> Result<TradeRow> {
    let (symbol, source_partition, seq, ts_ms, price, qty, mo, ma, to, ta, side) = r;
    Ok(TradeRow {
        price: dec(&price, table, "price")?,
        qty: dec(&qty, table, "qty")?,
        taker_side: side_from_str(&side)
            .ok_or_else(|| corrupt(table, format!("unknown side {side:?}")))?,
        symbol,
        source_partition,
        seq,
        ts_ms,
        maker_order_id: mo,
        maker_account: ma,
        taker_order_id: to,
        taker_account: ta,
    })
}

type OrderCols = (
    String,
    String,
    String,
    String,
    String,
    Option<CqlDecimal>,
    CqlDecimal,
    CqlDecimal,
    Option<CqlDecimal>,
    CqlDecimal,
    i64,
    i32,
    i64,
);

fn order_from_cql(r: OrderCols) -> Result<OrderStateRow> {
    const T: &str = "orders_by_symbol";
    let (order_id, account, symbol, side, status, price, qty, filled, avg, notional, ts, sp, seq) =
        r;
    Ok(OrderStateRow {
        side: side_from_str(&side).ok_or_else(|| corrupt(T, format!("unknown side {side:?}")))?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| corrupt(T, format!("unknown status {status:?}")))?,
        price: opt_dec(&price, T, "price")?,
        qty: dec(&qty, T, "qty")?,
        filled_qty: dec(&filled, T, "filled_qty")?,
        avg_price: opt_dec(&avg, T, "avg_price")?,
        notional: dec(&notional, T, "notional")?,
        order_id,
        account,
        symbol,
        updated_ts_ms: ts,
        source_partition: sp,
        seq,
    })
}

type CandleCols = (
    String,
    String,
    i64,
    CqlDecimal,
    CqlDecimal,
    CqlDecimal,
    CqlDecimal,
    CqlDecimal,
    CqlDecimal,
    CqlDecimal,
    i64,
    bool,
    i32,
    i64,
);

fn candle_from_cql(r: CandleCols) -> Result<CandleRow> {
    const T: &str = "candles";
    let (
        symbol,
        interval,
        bucket,
        open,
        high,
        low,
        close,
        volume,
        turnover,
        vwap,
        n,
        closed,
        sp,
        seq,
    ) = r;
    Ok(CandleRow {
        interval: Interval::parse(&interval)
            .ok_or_else(|| corrupt(T, format!("unknown interval {interval:?}")))?,
        open: dec(&open, T, "open")?,
        high: dec(&high, T, "high")?,
        low: dec(&low, T, "low")?,
        close: dec(&close, T, "close")?,
        volume: dec(&volume, T, "volume")?,
        turnover: dec(&turnover, T, "turnover")?,
        vwap: dec(&vwap, T, "vwap")?,
        symbol,
        bucket_start_ms: bucket,
        trade_count: n,
        closed,
        source_partition: sp,
        seq,
    })
}

type TopCols = (
    String,
    Option<CqlDecimal>,
    Option<CqlDecimal>,
    Option<CqlDecimal>,
    Option<CqlDecimal>,
    i64,
    i32,
    i64,
);

fn top_from_cql(r: TopCols) -> Result<TopOfBookRow> {
    const T: &str = "top_of_book";
    let (symbol, bid_price, bid_qty, ask_price, ask_qty, ts_ms, sp, seq) = r;
    let level = |side: &str, price: Option<CqlDecimal>, qty: Option<CqlDecimal>| match (price, qty)
    {
        (Some(p), Some(q)) => Ok(Some((dec(&p, T, side)?, dec(&q, T, side)?))),
        (None, None) => Ok(None),
        _ => Err(corrupt(
            T,
            format!("{side}: price and qty must both be set or null"),
        )),
    };
    Ok(TopOfBookRow {
        bid: level("bid", bid_price, bid_qty)?,
        ask: level("ask", ask_price, ask_qty)?,
        symbol,
        ts_ms,
        source_partition: sp,
        seq,
    })
}

type NotificationCols = (String, i32, i64, i64, String, String, String, String);

fn notification_from_cql(r: NotificationCols) -> Result<NotificationRow> {
    let (account, source_partition, seq, ts_ms, kind, order_id, symbol, text) = r;
    Ok(NotificationRow {
        account,
        source_partition,
        seq,
        ts_ms,
        kind,
        order_id,
        symbol,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cql(bytes: &[u8], scale: i32) -> CqlDecimal {
        CqlDecimal::from_signed_be_bytes_slice_and_exponent(bytes, scale)
    }

    #[test]
    fn decimals_round_trip_through_cql() {
        for d in [
            Decimal::new(10050, 2),
            Decimal::new(-5, 1),
            Decimal::new(0, 0),
            Decimal::new(0, 4),
            Decimal::new(1, 18),
            Decimal::new(127, 0),
            Decimal::new(128, 0),
            Decimal::new(-128, 0),
            Decimal::new(-129, 0),
            Decimal::new(i64::MAX, 4),
            Decimal::new(i64::MIN, 18),
        ] {
            let bytes = d.mantissa().to_be_bytes();
            let stored = cql(minimal_twos_complement(&bytes), i32::from(d.scale()));
            assert_eq!(decimal_from_cql(&stored), Ok(d), "{d}");
        }
    }

    #[test]
    fn unscaled_values_are_minimal() {
        assert_eq!(minimal_twos_complement(&0i64.to_be_bytes()), [0x00]);
        assert_eq!(minimal_twos_complement(&(-1i64).to_be_bytes()), [0xff]);
        assert_eq!(minimal_twos_complement(&127i64.to_be_bytes()), [0x7f]);
        assert_eq!(minimal_twos_complement(&128i64.to_be_bytes()), [0x00, 0x80]);
        assert_eq!(minimal_twos_complement(&(-128i64).to_be_bytes()), [0x80]);
        assert_eq!(
            minimal_twos_complement(&(-129i64).to_be_bytes()),
            [0xff, 0x7f]
        );
        assert_eq!(
            minimal_twos_complement(&10050i64.to_be_bytes()),
            [0x27, 0x42]
        );
    }

    #[test]
    fn decimals_that_do_not_fit_are_refused() {
        // Non-minimal encodings are fine.
        assert_eq!(
            decimal_from_cql(&cql(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 5], 1)),
            Ok(Decimal::new(5, 1))
        );
        // A negative scale is a whole number.
        assert_eq!(
            decimal_from_cql(&cql(&[12], -3)),
            Ok(Decimal::new(12_000, 0))
        );
        assert!(decimal_from_cql(&cql(&[1, 0, 0, 0, 0, 0, 0, 0, 0], 0)).is_err());
        assert!(decimal_from_cql(&cql(&[1], 19)).is_err());
        assert!(decimal_from_cql(&cql(&[1], -19)).is_err());
        assert!(decimal_from_cql(&cql(&[], 0)).is_err());
        let err = dec(&cql(&[1], 40), "orders", "qty").unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    table: "orders",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn table_script_has_one_statement_per_table() {
        let (_, script) = MIGRATIONS[0];
        let statements = cql_statements(script);
        let tables: Vec<&str> = statements
            .iter()
            .map(|s| {
                assert!(s.starts_with("CREATE TABLE IF NOT EXISTS "), "{s}");
                s["CREATE TABLE IF NOT EXISTS ".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            tables,
            [
                "trades_by_symbol",
                "trade_days",
                "trades_by_account",
                "candles",
                "open_candles",
                "top_of_book",
                "notifications_by_account",
                "consumer_offsets"
            ]
        );
        assert_eq!(
            cql_statements("-- a; b\nCREATE x (a int); -- c;\n\n;CREATE y (b int)"),
            ["CREATE x (a int)", "CREATE y (b int)"]
        );
    }

    #[test]
    fn keyspace_ddl_is_simple_strategy_rf1() {
        assert_eq!(
            keyspace_ddl("ks"),
            "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 1}"
        );
    }

    #[test]
    fn limits_are_positive_ints() {
        assert_eq!(cql_limit(0), 1);
        assert_eq!(cql_limit(10), 10);
        assert_eq!(cql_limit(usize::MAX), i32::MAX);
    }

    #[test]
    fn a_bad_keyspace_or_no_node_is_an_error() {
        let nodes = ["127.0.0.1:9042".to_owned()];
        assert!(matches!(
            ScyllaStore::connect(&nodes, "bad-name"),
            Err(StoreError::Uri { .. })
        ));
        assert!(matches!(
            ScyllaStore::connect(&[], "ks"),
            Err(StoreError::Uri { .. })
        ));
    }

    /// Nothing listens on port 1: connecting fails with an error, outside and inside a runtime.
    #[test]
    fn an_unreachable_cluster_is_an_error_not_a_panic() {
        let nodes = ["127.0.0.1:1".to_owned()];
        match ScyllaStore::connect(&nodes, "ks") {
            Err(StoreError::Scylla(msg)) => {
                assert!(msg.contains("connect to 127.0.0.1:1"), "{msg}")
            }
            other => panic!("expected a connection error, got {other:?}"),
        }
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let inside = outer.block_on(async { ScyllaStore::connect(&nodes, "ks") });
        assert!(matches!(inside, Err(StoreError::Scylla(_))), "{inside:?}");
    }

    #[test]
    fn owned_runtime_blocks_inside_another_runtime() {
        let rt = OwnedRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        ));
        assert_eq!(rt.block_on(async { 7 }).unwrap(), 7);
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = outer.block_on(async { rt.block_on(async { 8 }) });
        assert_eq!(got.unwrap(), 8);
        // Dropping it inside a runtime must not panic either.
        outer.block_on(async move { drop(rt) });
    }

    #[test]
    fn concurrent_writes_stop_at_the_first_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ok = |_: usize| -> WriteFuture<'static> { Box::pin(async { Ok(()) }) };
        let writes: Vec<_> = (0..1000).map(ok).collect();
        assert!(rt.block_on(run_concurrently(writes, 7)).is_ok());
        assert!(rt.block_on(run_concurrently(Vec::new(), 7)).is_ok());
        let mut writes: Vec<_> = (0..10).map(ok).collect();
        writes.push(Box::pin(async { Err(StoreError::Other("boom".into())) }));
        writes.extend((0..10).map(ok));
        let err = rt.block_on(run_concurrently(writes, 3)).unwrap_err();
        assert_eq!(err.to_string(), "boom");
    }
}
