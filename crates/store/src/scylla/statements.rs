//! Every statement the store runs, prepared once per session. Bind markers are named (`:col`,
//! `:ts` for `USING TIMESTAMP`, `:max_rows` for `LIMIT`), and the rows of `rows.rs` bind them by
//! name. Each statement carries its consistency level: writes and the reads a worker restores
//! from at [`ScyllaOptions::consistency`], query reads at
//! [`ScyllaOptions::read_consistency`].

use scylla::client::session::Session;
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;

use super::exec::scylla_err;
use super::rows::columns;
use super::settings::ScyllaOptions;
use crate::Result;

/// `INSERT INTO table (a, b) VALUES (:a, :b) USING TIMESTAMP :ts`.
pub(crate) fn insert_cql(table: &str, columns: &[&str]) -> String {
    let markers: Vec<String> = columns.iter().map(|c| format!(":{c}")).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({}) USING TIMESTAMP :ts",
        columns.join(", "),
        markers.join(", ")
    )
}

/// `SELECT a, b FROM table WHERE <filter>`.
pub(crate) fn select_cql(table: &str, columns: &[&str], filter: &str) -> String {
    format!("SELECT {} FROM {table} WHERE {filter}", columns.join(", "))
}

/// Every prepared statement.
#[derive(Debug)]
pub(crate) struct Statements {
    pub insert_trade_by_symbol: PreparedStatement,
    pub insert_trade_day: PreparedStatement,
    pub insert_account_trade: PreparedStatement,
    pub insert_account_trade_day: PreparedStatement,
    pub upsert_order: PreparedStatement,
    pub upsert_candle: PreparedStatement,
    pub insert_candle_period: PreparedStatement,
    pub upsert_open_candle: PreparedStatement,
    pub delete_open_candle: PreparedStatement,
    pub upsert_top: PreparedStatement,
    pub insert_notification: PreparedStatement,
    pub insert_notification_day: PreparedStatement,
    pub upsert_offset: PreparedStatement,
    // State reads: what a worker resumes from.
    pub select_offset: PreparedStatement,
    pub select_order: PreparedStatement,
    pub select_candle: PreparedStatement,
    pub select_open_candles: PreparedStatement,
    // Query reads.
    pub select_trade_days: PreparedStatement,
    pub select_trades_by_symbol_day: PreparedStatement,
    pub select_account_trade_days: PreparedStatement,
    pub select_account_trades_day: PreparedStatement,
    pub select_candle_periods: PreparedStatement,
    pub select_candles_period: PreparedStatement,
    pub select_top: PreparedStatement,
    pub select_notification_days: PreparedStatement,
    pub select_notifications_day: PreparedStatement,
}

impl Statements {
    /// Prepares every statement on `session` (whose keyspace is in use).
    pub(crate) async fn prepare(session: &Session, options: &ScyllaOptions) -> Result<Self> {
        let write = options.consistency;
        let query = options.read_consistency;
        let p = async |cql: String, level: Consistency| prepare(session, &cql, level).await;
        let day_index = |table: &str, key: &str| {
            format!("INSERT INTO {table} ({key}, day) VALUES (:key, :day) USING TIMESTAMP :ts")
        };
        let days_page = |table: &str, key: &str| {
            format!("SELECT day FROM {table} WHERE {key} = :{key} AND day <= :day LIMIT :max_rows")
        };
        Ok(Statements {
            insert_trade_by_symbol: p(
                insert_cql("trades_by_symbol", columns::TRADE_BY_SYMBOL),
                write,
            )
            .await?,
            insert_trade_day: p(day_index("trade_days", "symbol"), write).await?,
            insert_account_trade: p(
                insert_cql("trades_by_account_day", columns::TRADE_BY_ACCOUNT),
                write,
            )
            .await?,
            insert_account_trade_day: p(day_index("account_trade_days", "account"), write).await?,
            upsert_order: p(insert_cql("orders_by_symbol", columns::ORDER), write).await?,
            upsert_candle: p(
                insert_cql("candles_by_period", columns::CANDLE_BY_PERIOD),
                write,
            )
            .await?,
            insert_candle_period: p(
                "INSERT INTO candle_periods (symbol, interval, period) \
                 VALUES (:symbol, :interval, :period) USING TIMESTAMP :ts"
                    .to_owned(),
                write,
            )
            .await?,
            upsert_open_candle: p(insert_cql("open_candles", columns::CANDLE), write).await?,
            delete_open_candle: p(
                "DELETE FROM open_candles USING TIMESTAMP :ts WHERE \
                 source_partition = :source_partition AND symbol = :symbol \
                 AND interval = :interval AND bucket_start_ms = :bucket_start_ms"
                    .to_owned(),
                write,
            )
            .await?,
            upsert_top: p(insert_cql("top_of_book", columns::TOP), write).await?,
            insert_notification: p(
                insert_cql("notifications_by_account_day", columns::NOTIFICATION),
                write,
            )
            .await?,
            insert_notification_day: p(day_index("account_notification_days", "account"), write)
                .await?,
            upsert_offset: p(insert_cql("consumer_offsets", columns::OFFSET), write).await?,

            select_offset: p(
                "SELECT next_offset, watermark_ms FROM consumer_offsets \
                 WHERE consumer = :consumer AND topic = :topic AND partition = :partition"
                    .to_owned(),
                write,
            )
            .await?,
            select_order: p(
                select_cql(
                    "orders_by_symbol",
                    columns::ORDER,
                    "symbol = :symbol AND order_id = :order_id",
                ),
                write,
            )
            .await?,
            select_candle: p(
                select_cql(
                    "candles_by_period",
                    columns::CANDLE,
                    "symbol = :symbol AND interval = :interval AND period = :period \
                     AND bucket_start_ms = :bucket_start_ms",
                ),
                write,
            )
            .await?,
            select_open_candles: p(
                select_cql(
                    "open_candles",
                    columns::CANDLE,
                    "source_partition = :source_partition",
                ),
                write,
            )
            .await?,

            select_trade_days: p(days_page("trade_days", "symbol"), query).await?,
            select_trades_by_symbol_day: p(
                select_cql(
                    "trades_by_symbol",
                    columns::TRADE_READ,
                    "symbol = :symbol AND day = :day LIMIT :max_rows",
                ),
                query,
            )
            .await?,
            select_account_trade_days: p(days_page("account_trade_days", "account"), query).await?,
            select_account_trades_day: p(
                select_cql(
                    "trades_by_account_day",
                    columns::TRADE_READ,
                    "account = :account AND day = :day LIMIT :max_rows",
                ),
                query,
            )
            .await?,
            select_candle_periods: p(
                "SELECT period FROM candle_periods WHERE symbol = :symbol \
                 AND interval = :interval AND period <= :period LIMIT :max_rows"
                    .to_owned(),
                query,
            )
            .await?,
            select_candles_period: p(
                select_cql(
                    "candles_by_period",
                    columns::CANDLE,
                    "symbol = :symbol AND interval = :interval AND period = :period \
                     LIMIT :max_rows",
                ),
                query,
            )
            .await?,
            select_top: p(
                select_cql("top_of_book", columns::TOP, "symbol = :symbol"),
                query,
            )
            .await?,
            select_notification_days: p(days_page("account_notification_days", "account"), query)
                .await?,
            select_notifications_day: p(
                select_cql(
                    "notifications_by_account_day",
                    columns::NOTIFICATION_READ,
                    "account = :account AND day = :day LIMIT :max_rows",
                ),
                query,
            )
            .await?,
        })
    }
}

/// Prepares one statement at `level` and marks it idempotent: every statement here can be
/// retried.
pub(crate) async fn prepare(
    session: &Session,
    cql: &str,
    level: Consistency,
) -> Result<PreparedStatement> {
    let mut stmt = session
        .prepare(cql)
        .await
        .map_err(scylla_err(format!("prepare {cql:?}")))?;
    stmt.set_is_idempotent(true);
    stmt.set_consistency(level);
    Ok(stmt)
}

#[cfg(test)]
mod tests;
