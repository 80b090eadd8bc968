//! The Scylla/Cassandra backend. docs/scylla.md is the operator's view of it.
//!
//! ## Layout
//! - `settings.rs`: [`ScyllaOptions`] (credentials, TLS, consistency levels, local data
//!   center) and [`Replication`].
//! - `migrate.rs`: the schema ([`MIGRATIONS`]), keyspace creation, moving the rows of replaced
//!   tables, and the check that refuses a keyspace that is not migrated.
//! - `buckets.rs`: the time buckets that bound partitions and the newest-first walk over them.
//! - `statements.rs`: every statement, prepared once, with its consistency level.
//! - `rows.rs`: the rows as bound and read, matched to columns by name.
//! - `write.rs`: one batch as concurrent writes, offsets last.
//! - `exec.rs`: the store's own runtime and the helpers that run statements.
//! - `decimal.rs`: CQL `decimal` ⇄ [`Decimal`](tradestream_engine::Decimal), exactly.
//! - `dump.rs`: [`Store::dump`].
//!
//! ## Schema
//! Only [`ScyllaStore::migrate_keyspace`] (`tradestream store migrate --replication DC:N,...`)
//! creates the keyspace, with `NetworkTopologyStrategy` and the replicas per data center it is
//! given (a data center the cluster does not have is refused), then runs every statement of
//! `schemas/cql/*.cql` in file order. A primary key cannot change, so a table whose key changes
//! gets a successor under a new name and migrate moves its rows (`orders` →
//! `orders_by_symbol`; the unbounded `trades_by_account`, `candles`, `notifications_by_account`
//! → their time-bucketed successors). Workers connect with [`ScyllaStore::connect`], which
//! creates nothing: a keyspace that is missing, lacks a table or still has a replaced one is
//! [`StoreError::NotMigrated`].
//!
//! Every partition is bounded (`buckets.rs`): trades and notifications by (key, UTC day),
//! candles by (symbol, interval, period of 86 400 buckets), order state by order, top of book by
//! symbol, open candles by source partition, offsets by consumer.
//!
//! ## Writes
//! - Every statement is prepared with all its partition key columns bound (the driver routes it
//!   to a replica owning the token) and marked idempotent (the driver may retry or speculate).
//! - Primary keys are deterministic: the event's own key, or `(source_partition, seq)` for
//!   events. No counters, no list appends: writing a row twice leaves one identical row.
//! - **Timestamp formula.** Every write is `USING TIMESTAMP :ts` bound to the row's `seq`: the
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
//!   seq cannot bring it back. Each close leaves a tombstone in the partition until
//!   `gc_grace_seconds` has passed and compaction purges it, so the read is paged.
//! - These timestamps are tiny next to wall-clock microseconds: a manual `UPDATE` or `DELETE`
//!   without `USING TIMESTAMP` would shadow every later write of its key. Fix data with an
//!   explicit timestamp, or `TRUNCATE`.
//! - [`Store::write`] runs the row statements concurrently (at most [`MAX_IN_FLIGHT`] at once),
//!   then, only when every one succeeded, the offsets. Statements are not grouped into
//!   `BATCH`es: a multi-partition unlogged batch loses token-aware routing and loads one
//!   coordinator, and the timestamps already make the order of writes irrelevant.
//!
//! ## Consistency
//! Writes, and the reads a worker resumes from (offsets, order states, candles), run at
//! [`ScyllaOptions::consistency`] (`LOCAL_QUORUM`): with both at a quorum of the local data
//! center, a restarted worker reads back what it wrote. Query reads (`tradestream query`, the
//! gateway) run at [`ScyllaOptions::read_consistency`] (`LOCAL_ONE`).
//!
//! ## Threads
//! The [`Store`] API is synchronous. The store owns a tokio runtime with one worker thread, which
//! keeps the driver's connection tasks (keep-alives, topology events, reconnection) running
//! between calls; each call blocks on it. Called from inside another tokio runtime, where
//! blocking the thread in place would panic, a call runs on a short-lived thread of its own.

mod buckets;
mod decimal;
mod dump;
mod exec;
mod migrate;
mod rows;
mod settings;
mod statements;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::unprepared::Statement;

pub use buckets::CANDLES_PER_PERIOD;
pub use migrate::{KeyspaceChange, LEGACY_TABLES, MIGRATIONS, TABLES, cql_statements};
/// A consistency level (`LOCAL_QUORUM`, `LOCAL_ONE`, ...), as the driver names it.
pub use scylla::statement::Consistency;
pub use settings::{
    ENV_CA_FILE, ENV_CERT_FILE, ENV_CONSISTENCY, ENV_KEY_FILE, ENV_LOCAL_DC, ENV_PASSWORD,
    ENV_PASSWORD_FILE, ENV_READ_CONSISTENCY, ENV_USERNAME, Replication, ScyllaOptions, Secret,
    TlsFiles, default_consistency, default_read_consistency, parse_consistency,
};

use self::buckets::{candle_period, newest_first};
use self::exec::{OwnedRuntime, cql_limit, scylla_err, select, select_paged};
use self::rows::{CandleR, NotificationR, OffsetR, OrderR, TopR, TradeR};
use self::statements::Statements;
use crate::dump::DUMP_TABLES;
use crate::uri::validate_keyspace;
use crate::{
    Batch, CandleRow, Interval, NotificationRow, OffsetRow, OrderStateRow, Result, Store,
    StoreCounts, StoreDump, StoreError, TopOfBookRow, TradeRow,
};

/// Most statements of one [`Store::write`] in flight at once: enough to hide round trips, few
/// enough not to flood a small cluster's queues.
pub const MAX_IN_FLIGHT: usize = 256;

/// How long to wait for a TCP connection to a node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a full scan (`COUNT(*)`, a dump page) may take.
const COUNT_TIMEOUT: Duration = Duration::from_secs(120);

/// A Scylla/Cassandra keyspace holding the results. See the module documentation.
pub struct ScyllaStore {
    session: Session,
    statements: Statements,
    nodes: Vec<String>,
    keyspace: String,
    options: ScyllaOptions,
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

/// What [`ScyllaStore::migrate_keyspace`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// Whether the keyspace was created, left alone or had its replication changed.
    pub keyspace: KeyspaceChange,
    /// Rows copied out of replaced tables.
    pub rows_moved: u64,
}

/// A runtime, a session on it and the keyspace name, checked.
struct Connection {
    runtime: OwnedRuntime,
    session: Session,
    keyspace: String,
}

impl Connection {
    fn open(nodes: &[String], keyspace: &str, options: &ScyllaOptions) -> Result<Self> {
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
        options.validate()?;
        let builder = options.apply(
            SessionBuilder::new()
                .known_nodes(nodes)
                .connection_timeout(CONNECT_TIMEOUT),
        )?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tradestream-scylla")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io {
                context: "cannot start the Scylla runtime".to_owned(),
                source,
            })?;
        let runtime = OwnedRuntime(Some(runtime));
        let session = runtime.block_on(async {
            builder
                .build()
                .await
                .map_err(scylla_err(format!("connect to {}", nodes.join(","))))
        })??;
        Ok(Connection {
            runtime,
            session,
            // Unquoted CQL names are case-insensitive: keep the form the server reports.
            keyspace: keyspace.to_ascii_lowercase(),
        })
    }

    fn into_store(
        self,
        nodes: &[String],
        statements: Statements,
        options: &ScyllaOptions,
    ) -> ScyllaStore {
        ScyllaStore {
            session: self.session,
            statements,
            nodes: nodes.to_vec(),
            keyspace: self.keyspace,
            options: options.clone(),
            runtime: self.runtime,
        }
    }
}

impl ScyllaStore {
    /// [`ScyllaStore::connect_with`] the options of the environment
    /// ([`ScyllaOptions::from_env`]).
    pub fn connect(nodes: &[String], keyspace: &str) -> Result<Self> {
        Self::connect_with(nodes, keyspace, &ScyllaOptions::from_env()?)
    }

    /// Connects to the cluster through `nodes` (`host:port` contact points) and prepares every
    /// statement. Creates nothing: a keyspace that does not exist, lacks a table or still has a
    /// replaced one is [`StoreError::NotMigrated`] (run `tradestream store migrate`).
    pub fn connect_with(nodes: &[String], keyspace: &str, options: &ScyllaOptions) -> Result<Self> {
        let conn = Connection::open(nodes, keyspace, options)?;
        let (session, ks) = (&conn.session, conn.keyspace.as_str());
        let statements = conn.runtime.block_on(async {
            migrate::check_schema(session, ks).await?;
            session
                .use_keyspace(ks, false)
                .await
                .map_err(scylla_err(format!("use keyspace {ks}")))?;
            Statements::prepare(session, options).await
        })??;
        tracing::info!(nodes = %nodes.join(","), keyspace = %conn.keyspace, "connected to Scylla");
        Ok(conn.into_store(nodes, statements, options))
    }

    /// What `tradestream store migrate` runs: creates `keyspace` with `NetworkTopologyStrategy`
    /// and `replication` (refusing a data center the cluster does not have; altering the
    /// replication of an existing keyspace that has another), creates the missing tables and
    /// moves the rows of replaced ones (see the module documentation). Idempotent.
    pub fn migrate_keyspace(
        nodes: &[String],
        keyspace: &str,
        replication: &Replication,
        options: &ScyllaOptions,
    ) -> Result<(Self, MigrateReport)> {
        let conn = Connection::open(nodes, keyspace, options)?;
        let (session, ks) = (&conn.session, conn.keyspace.as_str());
        let (statements, report) = conn.runtime.block_on(async {
            let change = migrate::create_keyspace(session, ks, replication).await?;
            session
                .use_keyspace(ks, false)
                .await
                .map_err(scylla_err(format!("use keyspace {ks}")))?;
            let (statements, rows_moved) = migrate::migrate_tables(session, ks, options).await?;
            Ok::<_, StoreError>((
                statements,
                MigrateReport {
                    keyspace: change,
                    rows_moved,
                },
            ))
        })??;
        Ok((conn.into_store(nodes, statements, options), report))
    }

    /// [`ScyllaStore::migrate_keyspace`] with `replicas` replicas in the data center of the node
    /// the connection reaches first (its `system.local`): for one-data-center dev clusters and
    /// tests, which have no replication to name. Production names its data centers.
    pub fn migrate_keyspace_in_local_dc(
        nodes: &[String],
        keyspace: &str,
        replicas: u32,
        options: &ScyllaOptions,
    ) -> Result<(Self, MigrateReport)> {
        let conn = Connection::open(nodes, keyspace, options)?;
        let session = &conn.session;
        let dc = conn.runtime.block_on(async {
            let context = || "read the local data center".to_owned();
            let (dc,): (String,) = session
                .query_unpaged("SELECT data_center FROM system.local", ())
                .await
                .map_err(scylla_err(context()))?
                .into_rows_result()
                .map_err(scylla_err(context()))?
                .single_row()
                .map_err(scylla_err(context()))?;
            Ok::<_, StoreError>(dc)
        })??;
        drop(conn);
        let replication: Replication = format!("{dc}:{replicas}").parse()?;
        Self::migrate_keyspace(nodes, keyspace, &replication, options)
    }

    /// The keyspace in use.
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// The data centers of the cluster's nodes.
    pub fn data_centers(&self) -> Result<BTreeSet<String>> {
        self.runtime
            .block_on(migrate::data_centers(&self.session))?
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
    /// Creates the missing tables of the keyspace (which must exist: only
    /// [`ScyllaStore::migrate_keyspace`] creates one) and moves the rows of replaced tables.
    fn migrate(&mut self) -> Result<()> {
        let (session, keyspace, options) = (&self.session, &self.keyspace, &self.options);
        let (statements, _) = self
            .runtime
            .block_on(migrate::migrate_tables(session, keyspace, options))??;
        self.statements = statements;
        Ok(())
    }

    fn write(&mut self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.runtime
            .block_on(write::write_batch(&self.session, &self.statements, batch))?
    }

    fn offset(&mut self, consumer: &str, topic: &str, partition: i32) -> Result<Option<OffsetRow>> {
        let found = self.runtime.block_on(select(
            &self.session,
            &self.statements.select_offset,
            (consumer, topic, partition),
            "consumer_offsets",
            |r: OffsetR| Ok((r.next_offset, r.watermark_ms)),
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
        let (session, st) = (&self.session, &self.statements);
        self.runtime.block_on(newest_first(
            limit,
            move |newest: i32, page| {
                Box::pin(select(
                    session,
                    &st.select_trade_days,
                    (symbol, newest, cql_limit(page)),
                    "trade_days",
                    |(day,): (i32,)| Ok(day),
                ))
            },
            move |day, want| {
                Box::pin(select(
                    session,
                    &st.select_trades_by_symbol_day,
                    (symbol, day, cql_limit(want)),
                    "trades_by_symbol",
                    |r: TradeR| r.into_row("trades_by_symbol"),
                ))
            },
        ))?
    }

    fn trades_by_account(&mut self, account: &str, limit: usize) -> Result<Vec<TradeRow>> {
        let (session, st) = (&self.session, &self.statements);
        self.runtime.block_on(newest_first(
            limit,
            move |newest: i32, page| {
                Box::pin(select(
                    session,
                    &st.select_account_trade_days,
                    (account, newest, cql_limit(page)),
                    "account_trade_days",
                    |(day,): (i32,)| Ok(day),
                ))
            },
            move |day, want| {
                Box::pin(select(
                    session,
                    &st.select_account_trades_day,
                    (account, day, cql_limit(want)),
                    "trades_by_account_day",
                    |r: TradeR| r.into_row("trades_by_account_day"),
                ))
            },
        ))?
    }

    fn order(&mut self, symbol: &str, order_id: &str) -> Result<Option<OrderStateRow>> {
        let rows = self.runtime.block_on(select(
            &self.session,
            &self.statements.select_order,
            (symbol, order_id),
            "orders_by_symbol",
            OrderR::into_row,
        ))??;
        Ok(rows.into_iter().next())
    }

    fn candle(
        &mut self,
        symbol: &str,
        interval: Interval,
        bucket_start_ms: i64,
    ) -> Result<Option<CandleRow>> {
        let period = candle_period(interval, bucket_start_ms);
        let rows = self.runtime.block_on(select(
            &self.session,
            &self.statements.select_candle,
            (symbol, interval.as_str(), period, bucket_start_ms),
            "candles_by_period",
            CandleR::into_row,
        ))??;
        Ok(rows.into_iter().next())
    }

    fn candles(
        &mut self,
        symbol: &str,
        interval: Interval,
        limit: usize,
    ) -> Result<Vec<CandleRow>> {
        let (session, st) = (&self.session, &self.statements);
        let name = interval.as_str();
        self.runtime.block_on(newest_first(
            limit,
            move |newest: i64, page| {
                Box::pin(select(
                    session,
                    &st.select_candle_periods,
                    (symbol, name, newest, cql_limit(page)),
                    "candle_periods",
                    |(period,): (i64,)| Ok(period),
                ))
            },
            move |period, want| {
                Box::pin(select(
                    session,
                    &st.select_candles_period,
                    (symbol, name, period, cql_limit(want)),
                    "candles_by_period",
                    CandleR::into_row,
                ))
            },
        ))?
    }

    fn open_candles(&mut self, source_partition: i32) -> Result<Vec<CandleRow>> {
        let mut candles = self.runtime.block_on(select_paged(
            &self.session,
            &self.statements.select_open_candles,
            (source_partition,),
            "open_candles",
            CandleR::into_row,
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
            TopR::into_row,
        ))??;
        Ok(rows.into_iter().next())
    }

    fn notifications(&mut self, account: &str, limit: usize) -> Result<Vec<NotificationRow>> {
        let (session, st) = (&self.session, &self.statements);
        self.runtime.block_on(newest_first(
            limit,
            move |newest: i32, page| {
                Box::pin(select(
                    session,
                    &st.select_notification_days,
                    (account, newest, cql_limit(page)),
                    "account_notification_days",
                    |(day,): (i32,)| Ok(day),
                ))
            },
            move |day, want| {
                Box::pin(select(
                    session,
                    &st.select_notifications_day,
                    (account, day, cql_limit(want)),
                    "notifications_by_account_day",
                    NotificationR::into_row,
                ))
            },
        ))?
    }

    /// `SELECT COUNT(*)` of each table: a full scan of the cluster, for demos and tests only.
    fn counts(&mut self) -> Result<StoreCounts> {
        let (session, level) = (&self.session, self.options.read_consistency);
        let [trades, orders, candles, tops, notifications] = self.runtime.block_on(async {
            let mut counts = [0u64; 5];
            let tables = [
                "trades_by_symbol",
                "orders_by_symbol",
                "candles_by_period",
                "top_of_book",
                "notifications_by_account_day",
            ];
            for (count, table) in counts.iter_mut().zip(tables) {
                let mut stmt = Statement::new(format!("SELECT COUNT(*) FROM {table}"));
                stmt.set_request_timeout(Some(COUNT_TIMEOUT));
                stmt.set_is_idempotent(true);
                stmt.set_consistency(level);
                let context = || format!("count {table}");
                let (n,): (i64,) = session
                    .query_unpaged(stmt, ())
                    .await
                    .map_err(scylla_err(context()))?
                    .into_rows_result()
                    .map_err(scylla_err(context()))?
                    .single_row()
                    .map_err(scylla_err(context()))?;
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

    /// A paged full scan of each logical table (see [`StoreDump`]) from the table that holds it
    /// here, at the write consistency level, sorted by primary key.
    fn dump(&mut self) -> Result<StoreDump> {
        let session = &self.session;
        let tables = self.runtime.block_on(async {
            let mut tables = BTreeMap::new();
            for table in DUMP_TABLES {
                let rows = dump::dump_table(session, dump::source_table(table.name), table).await?;
                tables.insert(table.name.to_owned(), rows);
            }
            Ok::<_, StoreError>(tables)
        })??;
        Ok(StoreDump { tables })
    }
}

#[cfg(test)]
mod tests;
