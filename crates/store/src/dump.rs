//! [`StoreDump`]: every row of a store as text, what `verify` compares table by table.
//!
//! A dump shows the *logical* tables, the same on both backends: the tables and columns of
//! `schemas/cql/sqlite.sql`. What a backend keeps only to serve a read faster is left out (the
//! Scylla `open_candles` copy and the index tables of its bucketed partitions, SQLite's partial
//! index), and so are the bucket columns a Scylla table adds to its partition key (they follow
//! from the row), so a SQLite store and a Scylla keyspace fed the same batches dump equal.
//!
//! Values are text: integers in decimal, decimals in their exact spelling (`100.50`),
//! booleans `true`/`false`, NULL [`StoreDump::NULL`]. Each table's rows are in ascending order of
//! its primary key columns, compared as the values they hold (numbers as numbers).

use std::collections::BTreeMap;

/// Every row of every table of a store (see the module documentation of `dump.rs`): table name
/// → rows in primary-key order; a row is column → value as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreDump {
    /// Table name → its rows, in primary-key order.
    pub tables: BTreeMap<String, Vec<BTreeMap<String, String>>>,
}

impl StoreDump {
    /// How a NULL reads in a dump.
    pub const NULL: &'static str = "null";

    /// Rows across all tables.
    pub fn row_count(&self) -> usize {
        self.tables.values().map(Vec::len).sum()
    }
}

/// A logical table as dumps show it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DumpTable {
    /// Its name (the SQLite table; the Scylla table it is read from may be another).
    pub name: &'static str,
    /// Its columns, the primary key's first, in key order.
    pub columns: &'static [&'static str],
    /// How many leading columns form the primary key.
    pub key_len: usize,
}

impl DumpTable {
    /// The primary key columns.
    pub fn key(&self) -> &'static [&'static str] {
        &self.columns[..self.key_len]
    }
}

/// Booleans: stored as 0/1 by SQLite, dumped as `true`/`false` by both backends.
pub(crate) const BOOL_COLUMNS: &[&str] = &["closed"];

/// The logical tables, by name.
pub(crate) const DUMP_TABLES: &[DumpTable] = &[
    DumpTable {
        name: "trades_by_symbol",
        columns: &[
            "symbol",
            "day",
            "seq",
            "source_partition",
            "ts_ms",
            "price",
            "qty",
            "maker_order_id",
            "maker_account",
            "taker_order_id",
            "taker_account",
            "taker_side",
        ],
        key_len: 4,
    },
    DumpTable {
        name: "trade_days",
        columns: &["symbol", "day"],
        key_len: 2,
    },
    DumpTable {
        name: "trades_by_account",
        columns: &[
            "account",
            "ts_ms",
            "source_partition",
            "seq",
            "role",
            "symbol",
            "price",
            "qty",
            "maker_order_id",
            "maker_account",
            "taker_order_id",
            "taker_account",
            "taker_side",
        ],
        key_len: 4,
    },
    DumpTable {
        name: "orders_by_symbol",
        columns: &[
            "symbol",
            "order_id",
            "account",
            "side",
            "status",
            "price",
            "qty",
            "filled_qty",
            "avg_price",
            "notional",
            "updated_ts_ms",
            "source_partition",
            "seq",
        ],
        key_len: 2,
    },
    DumpTable {
        name: "candles",
        columns: &[
            "symbol",
            "interval",
            "bucket_start_ms",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "turnover",
            "vwap",
            "trade_count",
            "closed",
            "source_partition",
            "seq",
        ],
        key_len: 3,
    },
    DumpTable {
        name: "top_of_book",
        columns: &[
            "symbol",
            "bid_price",
            "bid_qty",
            "ask_price",
            "ask_qty",
            "ts_ms",
            "source_partition",
            "seq",
        ],
        key_len: 1,
    },
    DumpTable {
        name: "notifications_by_account",
        columns: &[
            "account",
            "ts_ms",
            "source_partition",
            "seq",
            "kind",
            "order_id",
            "symbol",
            "message",
        ],
        key_len: 4,
    },
    DumpTable {
        name: "consumer_offsets",
        columns: &[
            "consumer",
            "topic",
            "partition",
            "next_offset",
            "watermark_ms",
        ],
        key_len: 3,
    },
];

/// One primary key value, ordered as the value it holds (keys hold only text and integers).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum KeyPart {
    /// An integer column.
    Int(i64),
    /// A text column.
    Text(String),
}
