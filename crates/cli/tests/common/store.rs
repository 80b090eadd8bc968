//! The results store as the tests compare it: a fresh SQLite file per run, and every row of it
//! table by table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tradestream_runtime::partition::PartitionReader;
use tradestream_store::StoreUri;

use super::{PARTITIONS, Rec, read_all};

/// A fresh SQLite store path under the test's temporary directory.
pub fn store_path(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}.db",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// Every row of the result tables, as text, in a stable order (consumer offsets excluded: their
/// consumer names differ between stores).
pub fn dump(path: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let db = rusqlite::Connection::open(path).expect("open sqlite");
    let mut out = BTreeMap::new();
    for table in [
        "trades_by_symbol",
        "trade_days",
        "trades_by_account",
        "orders_by_symbol",
        "candles",
        "top_of_book",
        "notifications_by_account",
    ] {
        let mut stmt = db
            .prepare(&format!("SELECT * FROM {table}"))
            .expect("select");
        let columns = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |row| {
                let mut line = Vec::with_capacity(columns);
                for i in 0..columns {
                    let v: rusqlite::types::Value = row.get(i)?;
                    line.push(format!("{v:?}"));
                }
                Ok(line.join("|"))
            })
            .expect("query")
            .map(Result::unwrap)
            .collect();
        rows.sort();
        out.insert(table, rows);
    }
    out
}

/// Every record of `topic`, partition by partition.
pub fn topic(reader: &PartitionReader, topic: &str) -> Vec<(i32, Rec)> {
    (0..PARTITIONS)
        .flat_map(|p| read_all(reader, topic, p).into_iter().map(move |r| (p, r)))
        .collect()
}

/// Next offset of every partition of `topic` (what a caught-up consumer has stored).
pub fn ends(recs: &[(i32, Rec)]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for (p, (offset, ..)) in recs {
        ends.insert(*p, offset + 1);
    }
    ends
}

/// Waits (bounded) until `group` has stored in `store` every offset in `want`.
pub fn wait_stored(
    path: &Path,
    group: &str,
    want: &[(&str, BTreeMap<i32, i64>)],
    timeout: Duration,
) {
    wait_stored_in(&StoreUri::Sqlite(path.to_owned()), group, want, timeout);
}

pub fn wait_stored_in(
    uri: &StoreUri,
    group: &str,
    want: &[(&str, BTreeMap<i32, i64>)],
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    let mut store = tradestream_store::open(uri).expect("open store");
    loop {
        let mut behind = Vec::new();
        for (topic, ends) in want {
            for (p, end) in ends {
                let at = store
                    .offset(group, topic, *p)
                    .expect("read offsets")
                    .map_or(0, |o| o.next_offset);
                if at < *end {
                    behind.push(format!("{topic}/{p} at {at} of {end}"));
                }
            }
        }
        if behind.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group} did not catch up: {behind:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
