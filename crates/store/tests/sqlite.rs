//! The backend suite on SQLite, plus what only SQLite promises: a failed batch leaves nothing,
//! the file keeps the data across reopen, the file is in WAL mode.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use tradestream_store::sqlite::SqliteStore;
use tradestream_store::suite::{self, T0, candle, offset, order, trade};
use tradestream_store::{Batch, Interval, OrderStatus, Store, StoreCounts, StoreError, StoreUri};

/// A fresh directory under the system temp dir, removed on drop (also when the test panics).
struct TempDir(PathBuf);

impl TempDir {
    fn new(case: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tradestream-store-{}-{}-{case}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn with_store(case: &str, body: &mut dyn FnMut(&mut dyn Store)) {
    let dir = TempDir::new(case);
    let mut store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    body(&mut store);
}

tradestream_store::store_suite!(with_store);

fn sample_batch() -> Batch {
    Batch {
        trades: vec![
            trade("BTC-USD", 0, 1, T0, "60000.00", "0.5", "alice", "bob"),
            trade("BTC-USD", 0, 2, T0 + 1, "60000.01", "0.25", "bob", "bob"),
        ],
        orders: vec![order("o-1", 3, OrderStatus::PartiallyFilled, "0.5")],
        candles: vec![candle("BTC-USD", Interval::S1, T0, 2, false)],
        tops: vec![suite::top("BTC-USD", 4, Some(("59999.99", "1")), None)],
        notifications: vec![suite::notification("alice", 5, T0)],
        offsets: vec![offset("recorder", "trades", 0, 3, None)],
    }
}

#[test]
fn a_failed_batch_leaves_neither_rows_nor_offsets() {
    let dir = TempDir::new("atomic");
    let mut store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    // The candle is written after the trades and orders, before the offsets; its negative seq
    // breaks a CHECK constraint, so the batch fails half-way through.
    let mut batch = sample_batch();
    batch.candles[0].seq = -1;
    let err = store.write(&batch).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err}");
    assert!(err.to_string().contains("CHECK"), "{err}");

    assert_eq!(store.counts().unwrap(), StoreCounts::default());
    assert_eq!(store.offset("recorder", "trades", 0).unwrap(), None);
    assert!(store.trades_by_symbol("BTC-USD", 10).unwrap().is_empty());
    assert_eq!(store.order("BTC-USD", "o-1").unwrap(), None);

    // The store is still usable, and the fixed batch lands whole.
    batch.candles[0].seq = 2;
    store.write(&batch).unwrap();
    assert_eq!(
        store.counts().unwrap(),
        StoreCounts {
            trades: 2,
            orders: 1,
            candles: 1,
            tops: 1,
            notifications: 1
        }
    );
    assert_eq!(
        store.offset("recorder", "trades", 0).unwrap(),
        Some(offset("recorder", "trades", 0, 3, None))
    );
}

#[test]
fn reopening_keeps_the_data() {
    let dir = TempDir::new("reopen");
    let path = dir.path().join("nested/dirs/store.db");
    let batch = sample_batch();
    {
        let mut store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.path(), path);
        store.write(&batch).unwrap();
    }
    let uri: StoreUri = format!("sqlite:{}", path.display()).parse().unwrap();
    let mut store = tradestream_store::open(&uri).unwrap();
    assert_eq!(
        store.counts().unwrap(),
        StoreCounts {
            trades: 2,
            orders: 1,
            candles: 1,
            tops: 1,
            notifications: 1
        }
    );
    let mut newest_first = batch.trades.clone();
    newest_first.reverse();
    assert_eq!(store.trades_by_symbol("BTC-USD", 10).unwrap(), newest_first);
    assert_eq!(store.trades_by_account("bob", 10).unwrap(), newest_first);
    assert_eq!(
        store.order("BTC-USD", "o-1").unwrap(),
        Some(batch.orders[0].clone())
    );
    assert_eq!(
        store.offset("recorder", "trades", 0).unwrap(),
        Some(batch.offsets[0].clone())
    );
}

#[test]
fn the_file_is_in_wal_mode() {
    let dir = TempDir::new("wal");
    let path = dir.path().join("store.db");
    let mut store = SqliteStore::open(&path).unwrap();
    store.write(&sample_batch()).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_corrupt_value_is_reported_not_panicked_on() {
    let dir = TempDir::new("corrupt");
    let path = dir.path().join("store.db");
    let mut store = SqliteStore::open(&path).unwrap();
    store.write(&sample_batch()).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE orders_by_symbol SET price = '12,5' WHERE order_id = 'o-1'",
        [],
    )
    .unwrap();
    raw.execute("UPDATE trades_by_symbol SET qty = '' WHERE seq = 2", [])
        .unwrap();
    match store.order("BTC-USD", "o-1") {
        Err(StoreError::Corrupt {
            table: "orders_by_symbol",
            detail,
        }) => {
            assert!(detail.contains("12,5"), "{detail}")
        }
        other => panic!("expected a corrupt orders row, got {other:?}"),
    }
    assert!(matches!(
        store.trades_by_symbol("BTC-USD", 10),
        Err(StoreError::Corrupt {
            table: "trades_by_symbol",
            ..
        })
    ));
}

#[test]
fn an_unwritable_path_is_an_error() {
    let dir = TempDir::new("unwritable");
    // A directory where the file should be.
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err}");
}

#[test]
fn workers_opening_one_new_store_at_once_all_succeed_and_write() {
    // The demo and the tests start several workers on one new SQLite file at the same moment:
    // the switch to WAL and the migration must wait for each other, not fail.
    for round in 0..5 {
        let dir = TempDir::new(&format!("concurrent-{round}"));
        let path = dir.path().join("store.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut store = SqliteStore::open(&path)?;
                    let mut batch = sample_batch();
                    batch.offsets = vec![offset(&format!("worker-{i}"), "trades", 0, 3, None)];
                    // Writers and a poller that re-opens (and so migrates) now and then, as
                    // `tradestream query` and the tests do beside running workers.
                    for _ in 0..20 {
                        store.write(&batch)?;
                        SqliteStore::open(&path)?.resume_at("worker-0", "trades", 0)?;
                    }
                    Ok::<(), StoreError>(())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        let mut store = SqliteStore::open(&path).unwrap();
        for i in 0..6 {
            let at = store
                .resume_at(&format!("worker-{i}"), "trades", 0)
                .unwrap();
            assert_eq!(at, 3, "round {round}, worker {i}");
        }
    }
}

/// The order table as it was before order state was keyed by (symbol, order id).
const LEGACY_ORDERS_DDL: &str = "\
    CREATE TABLE orders (
        order_id TEXT NOT NULL PRIMARY KEY, account TEXT NOT NULL, symbol TEXT NOT NULL,
        side TEXT NOT NULL, status TEXT NOT NULL, price TEXT, qty TEXT NOT NULL,
        filled_qty TEXT NOT NULL, avg_price TEXT, notional TEXT NOT NULL,
        updated_ts_ms INTEGER NOT NULL, source_partition INTEGER NOT NULL, seq INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID";

#[test]
fn opening_a_store_with_the_old_order_table_moves_its_rows_and_drops_it() {
    let dir = TempDir::new("legacy-orders");
    let path = dir.path().join("store.db");
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(LEGACY_ORDERS_DDL).unwrap();
        raw.execute_batch(
            "INSERT INTO orders VALUES ('o-1', 'acct-1', 'BTC-USD', 'buy', 'partially_filled', \
                 '60000.50', '1.250', '0.250', '60000.2500', '15000.06250', 5, 3, 9); \
             INSERT INTO orders VALUES ('o-2', 'acct-2', 'ETH-USD', 'sell', 'new', NULL, \
                 '2', '0', NULL, '0', 6, 3, 10);",
        )
        .unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    let o1 = store.order("BTC-USD", "o-1").unwrap().expect("o-1 moved");
    assert_eq!(
        (o1.status, o1.filled_qty, o1.notional, o1.seq),
        (
            OrderStatus::PartiallyFilled,
            suite::d("0.250"),
            suite::d("15000.06250"),
            9
        )
    );
    let o2 = store.order("ETH-USD", "o-2").unwrap().expect("o-2 moved");
    assert_eq!((o2.price, o2.account.as_str()), (None, "acct-2"));
    assert_eq!(store.order("BTC-USD", "o-2").unwrap(), None);
    assert_eq!(store.counts().unwrap().orders, 2);
    // The old table is gone: nothing can keep reading or writing the old key.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let left: i64 = raw
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'orders'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    // Migrating again is harmless. Should the old table reappear (an old worker still running
    // recreates it), its rows move too, each only where it is newer than the stored state.
    store.migrate().unwrap();
    store
        .write(&Batch {
            orders: vec![order("o-1", 12, OrderStatus::Filled, "1.250")],
            ..Batch::default()
        })
        .unwrap();
    raw.execute_batch(LEGACY_ORDERS_DDL).unwrap();
    raw.execute_batch(
        "INSERT INTO orders VALUES ('o-1', 'acct-1', 'BTC-USD', 'buy', 'new', '60000.50', \
             '1.250', '0', NULL, '0', 4, 3, 4); \
         INSERT INTO orders VALUES ('o-2', 'acct-2', 'ETH-USD', 'sell', 'cancelled', NULL, \
             '2', '0', NULL, '0', 11, 3, 11);",
    )
    .unwrap();
    store.migrate().unwrap();
    assert_eq!(
        store.order("BTC-USD", "o-1").unwrap().map(|o| o.status),
        Some(OrderStatus::Filled)
    );
    assert_eq!(
        store.order("ETH-USD", "o-2").unwrap().map(|o| o.status),
        Some(OrderStatus::Cancelled)
    );
}
