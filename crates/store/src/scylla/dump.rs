//! [`Store::dump`](crate::Store::dump) on Scylla: a paged full scan of each logical table,
//! sorted by primary key here (the cluster returns rows in token order).

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use scylla::client::session::Session;
use scylla::response::PagingState;
use scylla::statement::unprepared::Statement;
use scylla::value::{CqlValue, Row as CqlRow};

use super::COUNT_TIMEOUT;
use super::decimal::dec;
use super::exec::scylla_err;
use crate::dump::{DumpTable, KeyPart};
use crate::{Result, StoreDump, StoreError};

/// The Scylla table a logical table of the dump is read from.
pub(crate) fn source_table(logical: &'static str) -> &'static str {
    match logical {
        "trades_by_account" => "trades_by_account_day",
        "candles" => "candles_by_period",
        "notifications_by_account" => "notifications_by_account_day",
        other => other,
    }
}

fn corrupt(table: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { table, detail }
}

/// Rows of the dump per page of a full scan.
const DUMP_PAGE: i32 = 1_000;

/// Every row of `from` as the logical table `table` (its columns, by name), in key order.
pub(crate) async fn dump_table(
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
