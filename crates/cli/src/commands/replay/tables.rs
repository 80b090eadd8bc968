//! Two stores compared table by table, row by row by primary key
//! ([`Store::dump`](tradestream_store::Store::dump)).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, bail};
use tradestream_store::{StoreDump, StoreUri};

use super::diff::{Diffs, cut};

/// The consumer offsets: never compared by default (the replay's consumer has its own name).
const OFFSETS: &str = "consumer_offsets";

/// The tables each store worker writes, by the worker name in a replay's consumer
/// (`tradestream-replay-<worker>-<suffix>`).
const WORKER_TABLES: [(&str, &[&str]); 3] = [
    (
        "trade-recorder",
        &[
            "trades_by_symbol",
            "trade_days",
            "trades_by_account",
            "orders_by_symbol",
        ],
    ),
    ("market-data", &["candles", "top_of_book"]),
    ("notifier", &["notifications_by_account"]),
];

/// The primary key columns of each table (schemas/cql/*.cql); a table not listed is keyed by
/// its whole row.
const KEYS: [(&str, &[&str]); 8] = [
    (
        "trades_by_symbol",
        &["symbol", "day", "seq", "source_partition"],
    ),
    ("trade_days", &["symbol", "day"]),
    (
        "trades_by_account",
        &["account", "ts_ms", "source_partition", "seq"],
    ),
    ("orders_by_symbol", &["symbol", "order_id"]),
    ("candles", &["symbol", "interval", "bucket_start_ms"]),
    ("top_of_book", &["symbol"]),
    (
        "notifications_by_account",
        &["account", "ts_ms", "source_partition", "seq"],
    ),
    (OFFSETS, &["consumer", "topic", "partition"]),
];

type Row = BTreeMap<String, String>;

/// Opens a store to read it; a SQLite file must exist (opening would create an empty one).
fn dump(uri: &StoreUri, which: &str) -> anyhow::Result<StoreDump> {
    if let StoreUri::Sqlite(path) = uri
        && !path.exists()
    {
        bail!("the {which} store {uri} does not exist");
    }
    let mut store =
        tradestream_store::open(uri).with_context(|| format!("opening the {which} store {uri}"))?;
    store
        .dump()
        .with_context(|| format!("reading the {which} store {uri}"))
}

/// The tables of the workers whose replay consumers wrote offsets in `shadow`.
fn replayed_tables(shadow: &StoreDump) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for row in shadow.tables.get(OFFSETS).into_iter().flatten() {
        let Some(consumer) = row.get("consumer") else {
            continue;
        };
        for (worker, tables) in WORKER_TABLES {
            if consumer.starts_with(&format!("tradestream-replay-{worker}-")) {
                out.extend(tables.iter().map(|t| (*t).to_owned()));
            }
        }
    }
    out
}

/// A row's key in `table` as text, e.g. `symbol=BTC-USD order_id=17`.
fn key(table: &str, row: &Row) -> String {
    let columns = KEYS
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, k)| k.to_vec());
    match columns {
        Some(cols) => cols
            .iter()
            .map(|c| format!("{c}={}", row.get(*c).map_or("∅", String::as_str)))
            .collect::<Vec<_>>()
            .join(" "),
        None => show_row(row),
    }
}

fn show_row(row: &Row) -> String {
    cut(
        &row.iter()
            .map(|(c, v)| format!("{c}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        400,
    )
}

/// The columns whose values differ, `column: live → shadow`.
fn changed(live: &Row, shadow: &Row) -> String {
    let columns: BTreeSet<&String> = live.keys().chain(shadow.keys()).collect();
    cut(
        &columns
            .into_iter()
            .filter(|c| live.get(*c) != shadow.get(*c))
            .map(|c| {
                let v = |r: &Row| r.get(c).cloned().unwrap_or_else(|| "∅".into());
                format!("{c}: {} → {}", v(live), v(shadow))
            })
            .collect::<Vec<_>>()
            .join(", "),
        400,
    )
}

/// Compares `live` with `shadow`: the tables asked for, else those of the replayed workers,
/// else all but the consumer offsets. Returns the summary's fields.
pub fn compare(
    live: &StoreUri,
    shadow: &StoreUri,
    asked: &[String],
    diffs: &mut Diffs,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let live_dump = dump(live, "live")?;
    let shadow_dump = dump(shadow, "shadow")?;
    let tables: BTreeSet<String> = if !asked.is_empty() {
        asked.iter().cloned().collect()
    } else {
        let replayed = replayed_tables(&shadow_dump);
        if replayed.is_empty() {
            live_dump
                .tables
                .keys()
                .chain(shadow_dump.tables.keys())
                .filter(|t| *t != OFFSETS)
                .cloned()
                .collect()
        } else {
            replayed
        }
    };
    let (mut compared, mut skipped, mut rows) = (Vec::new(), Vec::new(), 0u64);
    for table in &tables {
        let (Some(l), Some(s)) = (live_dump.tables.get(table), shadow_dump.tables.get(table))
        else {
            if !asked.is_empty() {
                bail!("table {table} is not in both stores");
            }
            // In one store only (a store of an older schema).
            skipped.push(table.clone());
            continue;
        };
        compared.push(table.clone());
        rows += l.len() as u64;
        let place = format!("table {table}");
        let by_key = |rows: &[Row]| -> BTreeMap<String, Row> {
            rows.iter().map(|r| (key(table, r), r.clone())).collect()
        };
        let (l, s) = (by_key(l), by_key(s));
        for (k, lr) in &l {
            match s.get(k) {
                None => diffs.add(&place, || {
                    format!(
                        "{table} [{k}]: in the live store, not in the shadow: {}",
                        show_row(lr)
                    )
                }),
                Some(sr) if sr != lr => {
                    diffs.add(&place, || format!("{table} [{k}]: {}", changed(lr, sr)))
                }
                Some(_) => {}
            }
        }
        for (k, sr) in &s {
            if !l.contains_key(k) {
                diffs.add(&place, || {
                    format!(
                        "{table} [{k}]: in the shadow store, not in the live: {}",
                        show_row(sr)
                    )
                });
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("tables".into(), serde_json::json!(compared));
    if !skipped.is_empty() {
        out.insert("tables_skipped".into(), serde_json::json!(skipped));
    }
    out.insert("rows_compared".into(), rows.into());
    Ok(out)
}
