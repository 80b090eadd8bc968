//! The schema: creating the keyspace (`store migrate` only), the tables, moving the rows of
//! replaced tables, and the check a worker runs before it uses a keyspace.
//!
//! - [`create_keyspace`]: `NetworkTopologyStrategy` with the replication `store migrate` was
//!   given; a data center the cluster does not have is refused (a keyspace replicated to a
//!   data center without nodes cannot reach `LOCAL_QUORUM` there, nor `QUORUM` anywhere).
//! - [`migrate_tables`]: every statement of `schemas/cql/*.cql` in file order ([`MIGRATIONS`],
//!   all `CREATE TABLE IF NOT EXISTS`), then the rows of each replaced table still in the
//!   keyspace ([`LEGACY_TABLES`]) are copied to its successor, `USING TIMESTAMP` each row's seq
//!   like every write (a newer row written there since wins; a copy cut short is simply done
//!   again), and the old table is dropped once all its rows are copied.
//! - [`check_schema`]: what a worker runs on connect. A keyspace that is missing, lacks a table
//!   or still has a replaced one is [`StoreError::NotMigrated`]: workers never create or change
//!   the schema.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::response::PagingState;
use scylla::statement::unprepared::Statement;

use super::MAX_IN_FLIGHT;
use super::buckets::day_bucket;
use super::exec::{BoxFuture, WriteFuture, exec, run_concurrently, scylla_err};
use super::rows::{
    AccountTradeW, CandleR, DayW, LegacyAccountTradeR, NotificationR, OrderR, columns,
};
use super::settings::Replication;
use super::statements::Statements;
use super::write::{upsert_order, write_batch};
use crate::{Batch, Result, StoreError};

/// The table DDL, in the order it runs: (file name, statements). Every statement is idempotent
/// (`IF NOT EXISTS`), so all of them run on every migration.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "001_tables.cql",
        include_str!("../../../../schemas/cql/001_tables.cql"),
    ),
    (
        "002_orders_by_symbol.cql",
        include_str!("../../../../schemas/cql/002_orders_by_symbol.cql"),
    ),
    (
        "003_bounded_partitions.cql",
        include_str!("../../../../schemas/cql/003_bounded_partitions.cql"),
    ),
];

/// The tables the store reads and writes.
pub const TABLES: &[&str] = &[
    "trades_by_symbol",
    "trade_days",
    "trades_by_account_day",
    "account_trade_days",
    "orders_by_symbol",
    "candles_by_period",
    "candle_periods",
    "open_candles",
    "top_of_book",
    "notifications_by_account_day",
    "account_notification_days",
    "consumer_offsets",
];

/// Replaced tables, each with its successor: a primary key cannot change, so a table whose key
/// changes gets a new name, and `store migrate` moves the old one's rows.
pub const LEGACY_TABLES: &[(&str, &str)] = &[
    // 002: keyed by order id alone; order ids are unique per book only.
    ("orders", "orders_by_symbol"),
    // 003: one unbounded partition per account, per (symbol, interval), per account.
    ("trades_by_account", "trades_by_account_day"),
    ("candles", "candles_by_period"),
    ("notifications_by_account", "notifications_by_account_day"),
];

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

/// The data centers of the cluster's nodes (`system.local` and `system.peers`).
pub(crate) async fn data_centers(session: &Session) -> Result<BTreeSet<String>> {
    let mut dcs = BTreeSet::new();
    for table in ["system.local", "system.peers"] {
        let context = || format!("read the data centers from {table}");
        let rows = session
            .query_unpaged(format!("SELECT data_center FROM {table}"), ())
            .await
            .map_err(scylla_err(context()))?
            .into_rows_result()
            .map_err(scylla_err(context()))?;
        for row in rows
            .rows::<(Option<String>,)>()
            .map_err(scylla_err(context()))?
        {
            if let (Some(dc),) = row.map_err(scylla_err(context()))? {
                dcs.insert(dc);
            }
        }
    }
    Ok(dcs)
}

/// The replication map of `keyspace`, or none when it does not exist.
async fn keyspace_replication(
    session: &Session,
    keyspace: &str,
) -> Result<Option<BTreeMap<String, String>>> {
    let context = || format!("read the replication of keyspace {keyspace}");
    let rows = session
        .query_unpaged(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .map_err(scylla_err(context()))?
        .into_rows_result()
        .map_err(scylla_err(context()))?;
    let mut found = None;
    for row in rows
        .rows::<(BTreeMap<String, String>,)>()
        .map_err(scylla_err(context()))?
    {
        found = Some(row.map_err(scylla_err(context()))?.0);
    }
    Ok(found)
}

/// Whether a stored replication map is `replication` (NetworkTopologyStrategy, same counts).
fn same_replication(stored: &BTreeMap<String, String>, replication: &Replication) -> bool {
    let class = stored.get("class").map(String::as_str).unwrap_or_default();
    let counts: BTreeMap<&str, &str> = stored
        .iter()
        .filter(|(k, _)| k.as_str() != "class")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let wanted: Vec<(String, String)> = replication
        .data_centers()
        .iter()
        .map(|(dc, n)| (dc.clone(), n.to_string()))
        .collect();
    class.ends_with("NetworkTopologyStrategy")
        && counts.len() == wanted.len()
        && wanted
            .iter()
            .all(|(dc, n)| counts.get(dc.as_str()) == Some(&n.as_str()))
}

/// Creates `keyspace` with `NetworkTopologyStrategy` and `replication`, or, when it exists with
/// another replication, alters it to that (the operator runs a full repair afterwards, see
/// docs/scylla.md). Refuses a data center the cluster does not have. Returns what it did.
pub(crate) async fn create_keyspace(
    session: &Session,
    keyspace: &str,
    replication: &Replication,
) -> Result<KeyspaceChange> {
    let known = data_centers(session).await?;
    let unknown: Vec<&String> = replication
        .data_centers()
        .keys()
        .filter(|dc| !known.contains(*dc))
        .collect();
    if !unknown.is_empty() {
        return Err(StoreError::settings(format!(
            "replication {replication}: the cluster has no data center {} (it has: {})",
            unknown
                .iter()
                .map(|dc| dc.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            known.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let (verb, change) = match keyspace_replication(session, keyspace).await? {
        None => ("CREATE KEYSPACE IF NOT EXISTS", KeyspaceChange::Created),
        Some(stored) if same_replication(&stored, replication) => {
            return Ok(KeyspaceChange::Unchanged);
        }
        Some(stored) => (
            "ALTER KEYSPACE",
            KeyspaceChange::Altered {
                from: format!("{stored:?}"),
            },
        ),
    };
    let ddl = format!(
        "{verb} {keyspace} WITH replication = {}",
        replication.cql_map()
    );
    session
        .query_unpaged(ddl.as_str(), ())
        .await
        .map_err(scylla_err(&ddl))?;
    Ok(change)
}

/// What [`create_keyspace`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyspaceChange {
    /// The keyspace is new.
    Created,
    /// It existed with the same replication.
    Unchanged,
    /// It existed with another replication (shown), now the given one: run a full repair.
    Altered {
        /// The replication before.
        from: String,
    },
}

/// The tables of `keyspace`, or none when it does not exist.
async fn tables_of(session: &Session, keyspace: &str) -> Result<Option<BTreeSet<String>>> {
    if keyspace_replication(session, keyspace).await?.is_none() {
        return Ok(None);
    }
    let context = || format!("list the tables of keyspace {keyspace}");
    let rows = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .map_err(scylla_err(context()))?
        .into_rows_result()
        .map_err(scylla_err(context()))?;
    let mut tables = BTreeSet::new();
    for row in rows.rows::<(String,)>().map_err(scylla_err(context()))? {
        tables.insert(row.map_err(scylla_err(context()))?.0);
    }
    Ok(Some(tables))
}

/// Fails with [`StoreError::NotMigrated`] unless `keyspace` exists with every table of
/// [`TABLES`] and none of [`LEGACY_TABLES`].
pub(crate) async fn check_schema(session: &Session, keyspace: &str) -> Result<()> {
    let not_migrated = |detail: String| StoreError::NotMigrated {
        keyspace: keyspace.to_owned(),
        detail,
    };
    let Some(tables) = tables_of(session, keyspace).await? else {
        return Err(not_migrated("the keyspace does not exist".to_owned()));
    };
    let missing: Vec<&str> = TABLES
        .iter()
        .copied()
        .filter(|t| !tables.contains(*t))
        .collect();
    if !missing.is_empty() {
        return Err(not_migrated(format!(
            "missing tables: {}",
            missing.join(", ")
        )));
    }
    let legacy: Vec<&str> = LEGACY_TABLES
        .iter()
        .map(|(old, _)| *old)
        .filter(|t| tables.contains(*t))
        .collect();
    if !legacy.is_empty() {
        return Err(not_migrated(format!(
            "replaced tables whose rows are not moved yet: {}",
            legacy.join(", ")
        )));
    }
    Ok(())
}

/// Runs the table DDL in `keyspace` (which the session uses), prepares the statements and moves
/// the rows of every replaced table still there. Returns the statements and the rows moved.
pub(crate) async fn migrate_tables(
    session: &Session,
    keyspace: &str,
    options: &super::ScyllaOptions,
) -> Result<(Statements, u64)> {
    for (file, script) in MIGRATIONS {
        for ddl in cql_statements(script) {
            // The driver waits for schema agreement after each DDL statement.
            session
                .query_unpaged(ddl, ())
                .await
                .map_err(scylla_err(format!("schemas/cql/{file}")))?;
        }
    }
    let statements = Statements::prepare(session, options).await?;
    let tables = tables_of(session, keyspace).await?.unwrap_or_default();
    let mut moved = 0;
    for &(old, new) in LEGACY_TABLES {
        if !tables.contains(old) {
            continue;
        }
        let n = move_legacy(session, &statements, old).await?;
        session
            .query_unpaged(format!("DROP TABLE IF EXISTS {old}"), ())
            .await
            .map_err(scylla_err(format!("drop {keyspace}.{old}")))?;
        tracing::info!(
            keyspace,
            rows = n,
            from = old,
            to = new,
            "moved the rows of a replaced table to its successor and dropped it"
        );
        moved += n;
    }
    Ok((statements, moved))
}

/// Copies every row of the replaced table `old` into its successor; returns how many.
async fn move_legacy(session: &Session, st: &Statements, old: &'static str) -> Result<u64> {
    match old {
        "orders" => {
            for_each_page(session, old, columns::ORDER, move |page: Vec<OrderR>| {
                Box::pin(async move {
                    let orders = page
                        .into_iter()
                        .map(OrderR::into_row)
                        .collect::<Result<Vec<_>>>()?;
                    let writes = orders
                        .iter()
                        .map(|o| upsert_order(session, st, o))
                        .collect();
                    run_concurrently(writes, MAX_IN_FLIGHT).await
                })
            })
            .await
        }
        "candles" => {
            for_each_page(session, old, columns::CANDLE, move |page: Vec<CandleR>| {
                Box::pin(async move {
                    let batch = Batch {
                        candles: page
                            .into_iter()
                            .map(CandleR::into_row)
                            .collect::<Result<_>>()?,
                        ..Batch::default()
                    };
                    write_batch(session, st, &batch).await
                })
            })
            .await
        }
        "notifications_by_account" => {
            for_each_page(
                session,
                old,
                columns::NOTIFICATION_READ,
                move |page: Vec<NotificationR>| {
                    Box::pin(async move {
                        let batch = Batch {
                            notifications: page
                                .into_iter()
                                .map(NotificationR::into_row)
                                .collect::<Result<_>>()?,
                            ..Batch::default()
                        };
                        write_batch(session, st, &batch).await
                    })
                },
            )
            .await
        }
        "trades_by_account" => {
            let mut cols = vec!["account", "role"];
            cols.extend_from_slice(columns::TRADE_READ);
            for_each_page(
                session,
                old,
                &cols,
                move |page: Vec<LegacyAccountTradeR>| {
                    Box::pin(async move {
                        let rows = page
                            .into_iter()
                            .map(LegacyAccountTradeR::into_parts)
                            .collect::<Result<Vec<_>>>()?;
                        let mut writes: Vec<WriteFuture<'_>> = Vec::with_capacity(rows.len() * 2);
                        let mut days = BTreeSet::new();
                        for (account, role, trade) in &rows {
                            writes.push(exec(
                                session,
                                &st.insert_account_trade,
                                "trades_by_account_day",
                                AccountTradeW::new(trade, account, role),
                            ));
                            let day = day_bucket(trade.ts_ms);
                            if days.insert((account.as_str(), day)) {
                                writes.push(exec(
                                    session,
                                    &st.insert_account_trade_day,
                                    "account_trade_days",
                                    DayW::new(account, day, trade.seq),
                                ));
                            }
                        }
                        run_concurrently(writes, MAX_IN_FLIGHT).await
                    })
                },
            )
            .await
        }
        other => Err(StoreError::Other(format!(
            "no row move is defined for the replaced table {other}"
        ))),
    }
}

/// Rows per page while moving a replaced table.
const MOVE_PAGE: i32 = 1_000;

/// Reads `table` a page at a time (its `columns`, by name) and hands each page to `f`; returns
/// the number of rows. A row that cannot be read fails the move and leaves the table in place.
async fn for_each_page<'a, R>(
    session: &'a Session,
    table: &str,
    columns: &[&str],
    mut f: impl FnMut(Vec<R>) -> BoxFuture<'a, ()>,
) -> Result<u64>
where
    R: for<'f> DeserializeRow<'f, 'f>,
{
    let context = || format!("move the rows of {table}");
    let mut stmt = Statement::new(format!("SELECT {} FROM {table}", columns.join(", ")));
    stmt.set_page_size(MOVE_PAGE);
    stmt.set_is_idempotent(true);
    let mut moved = 0u64;
    let mut paging_state = PagingState::start();
    loop {
        let (result, paging) = session
            .query_single_page(stmt.clone(), (), paging_state)
            .await
            .map_err(scylla_err(context()))?;
        let rows = result.into_rows_result().map_err(scylla_err(context()))?;
        let page = rows
            .rows::<R>()
            .map_err(scylla_err(context()))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(scylla_err(context()))?;
        moved += page.len() as u64;
        f(page).await?;
        match paging.into_paging_control_flow() {
            ControlFlow::Break(()) => return Ok(moved),
            ControlFlow::Continue(next) => paging_state = next,
        }
    }
}

#[cfg(test)]
mod tests;
