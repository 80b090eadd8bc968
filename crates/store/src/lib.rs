//! Where the pipeline's results land (docs/design.md §5).
//!
//! [`Store`] is what the downstream workers write and `tradestream query` reads. Two backends:
//! - [`sqlite`]: the embedded default. WAL; each [`Batch`] is one transaction that also holds
//!   the consumer offsets, so a worker that seeks to [`Store::offset`] on start writes every
//!   record exactly once.
//! - [`scylla`]: Scylla/Cassandra. Prepared statements, idempotent writes keyed by
//!   deterministic primary keys, `USING TIMESTAMP` from the source position, offsets written last.
//!
//! The API is synchronous: workers run on their own threads. The Scylla backend drives its async
//! driver on a runtime of its own.
//!
//! ## Layout
//! - [`model`]: the rows, independent of any backend; `(source_partition, seq)` is every row's
//!   version, and with the row's own key its idempotency key (a notification's is `(account,
//!   source_partition, seq)`: one execution tells both accounts of a trade).
//! - [`StoreDump`] (`dump.rs`): every row as text, what `verify` compares.
//! - [`StoreUri`] (`uri.rs`): parsing `--store` values; [`open`] turns one into a store.
//! - [`sqlite`]: the embedded backend; its DDL is `schemas/cql/sqlite.sql`.
//! - [`scylla`]: the cluster backend; its DDL is `schemas/cql/*.cql`, created only by `tradestream
//!   store migrate`. The module documentation gives the layout, the `USING TIMESTAMP` formula,
//!   the partition buckets and the consistency levels; docs/scylla.md the operator's view.
//! - `suite` (tests, or the `test-suite` feature): one test suite that every backend passes,
//!   `tests/sqlite.rs` always, `tests/scylla.rs` when `SCYLLA_URI` names a cluster.
//!
//! ## Guarantees shared by both backends
//! - Writing a batch twice leaves the same rows (replays are harmless).
//! - Order state, candles and top of book keep the version with the highest `seq`: an older
//!   write never overwrites a newer one (a candle closed at a seq also beats its open state at
//!   that seq). Consumer offsets never move backwards.
//! - Order state is keyed by (symbol, order id): ids are unique per book only. A store created
//!   before that had a table `orders` keyed by order id alone; [`Store::migrate`] (which SQLite
//!   runs when it opens, and `tradestream store migrate` runs on Scylla) moves its rows into
//!   `orders_by_symbol` and drops it, so no store keeps the old key.
//! - Reads are newest first: trades of a symbol by (UTC day, seq), of an account and
//!   notifications by (event time, source partition, seq), candles by bucket start. The open
//!   candles of a source partition ([`Store::open_candles`]) come by symbol, interval and bucket
//!   start, and a candle closed at a seq is not open at that seq either.

mod dump;
pub mod model;
pub mod scylla;
pub mod sqlite;
#[cfg(any(test, feature = "test-suite"))]
pub mod suite;
mod uri;

pub use dump::StoreDump;
pub use model::*;
pub use uri::StoreUri;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `--store` value is not understood.
    #[error("invalid store URI {uri:?}: {reason}")]
    Uri {
        /// What was given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Scylla/Cassandra failed.
    #[error("scylla: {context}")]
    Scylla {
        /// What the store was doing (`connect to HOST:PORT`, `write trades`, a statement).
        context: String,
        /// The driver's error, whatever its type (`NewSessionError`, `ExecutionError`, ...;
        /// boxed, they are large).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The Scylla keyspace is missing, lacks a table or still has a replaced one: workers do
    /// not create or change the schema.
    #[error(
        "keyspace {keyspace} is not migrated ({detail}): run `tradestream store migrate --store \
         scylla://HOST:PORT/{keyspace} --replication DC:N[,DC:N]` first"
    )]
    NotMigrated {
        /// The keyspace.
        keyspace: String,
        /// What is missing.
        detail: String,
    },
    /// Store settings that cannot work (credentials, TLS files, consistency, replication).
    #[error("store settings: {message}")]
    Settings {
        /// What is wrong.
        message: String,
        /// The error behind it, when there is one (a password file that cannot be read, a
        /// certificate rustls refuses).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// A stored value cannot be read back (e.g. a decimal or status the code does not know).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The operating system refused what the store needs (a directory, a thread, a runtime).
    #[error("{context}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Any other failure.
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    /// [`StoreError::Settings`] without an error behind it.
    pub(crate) fn settings(message: impl Into<String>) -> Self {
        StoreError::Settings {
            message: message.into(),
            source: None,
        }
    }

    /// [`StoreError::Settings`] caused by `source`.
    pub(crate) fn settings_from(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Settings {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// A result of a store call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A results store. See the crate documentation for the guarantees of each backend.
pub trait Store: Send + std::fmt::Debug {
    /// Creates the tables that are missing and moves the rows of a replaced table into its
    /// successor (idempotent): the order states of `orders`, keyed by order id alone, go to
    /// `orders_by_symbol`, keyed by (symbol, order id), and `orders` is dropped.
    fn migrate(&mut self) -> Result<()>;

    /// Writes one consumed batch with the offsets it reaches: atomically (SQLite) or rows first,
    /// offsets last (Scylla). Idempotent; an older row or offset never replaces a newer one.
    fn write(&mut self, batch: &Batch) -> Result<()>;

    /// Where `consumer` stands on `topic`/`partition` (none: never written).
    fn offset(&mut self, consumer: &str, topic: &str, partition: i32) -> Result<Option<OffsetRow>>;

    /// The newest trades of a symbol, newest first.
    fn trades_by_symbol(&mut self, symbol: &str, limit: usize) -> Result<Vec<TradeRow>>;

    /// The newest trades an account took part in, newest first.
    fn trades_by_account(&mut self, account: &str, limit: usize) -> Result<Vec<TradeRow>>;

    /// The state of the order `order_id` of `symbol` (order ids are unique per book only).
    fn order(&mut self, symbol: &str, order_id: &str) -> Result<Option<OrderStateRow>>;

    /// One candle.
    fn candle(
        &mut self,
        symbol: &str,
        interval: Interval,
        bucket_start_ms: i64,
    ) -> Result<Option<CandleRow>>;

    /// The newest candles of a symbol at an interval, newest first.
    fn candles(&mut self, symbol: &str, interval: Interval, limit: usize)
    -> Result<Vec<CandleRow>>;

    /// The candles of `source_partition` whose `closed` is false, by symbol, then interval
    /// (shortest first), then bucket start: what a restarted market-data worker seeds its candle
    /// builder with, so that buckets that get no more trades still close.
    fn open_candles(&mut self, source_partition: i32) -> Result<Vec<CandleRow>>;

    /// A symbol's top of book.
    fn top_of_book(&mut self, symbol: &str) -> Result<Option<TopOfBookRow>>;

    /// An account's newest notifications, newest first.
    fn notifications(&mut self, account: &str, limit: usize) -> Result<Vec<NotificationRow>>;

    /// Row counts. A full scan on Scylla: for demos and tests.
    fn counts(&mut self) -> Result<StoreCounts>;

    /// Every row of every table, each table's rows in primary-key order, values as text: what
    /// `verify` compares. The tables are the logical ones, the same on both backends (see
    /// [`StoreDump`]), consumer offsets included. A full scan held in memory: for verification
    /// and tests, not for a store of production size.
    fn dump(&mut self) -> Result<StoreDump>;

    /// The offset `consumer` resumes `topic`/`partition` from: the stored one, or 0.
    fn resume_at(&mut self, consumer: &str, topic: &str, partition: i32) -> Result<i64> {
        Ok(self
            .offset(consumer, topic, partition)?
            .map_or(0, |o| o.next_offset))
    }
}

/// Sorts candles into the order of [`Store::open_candles`]. Both backends store an interval by
/// its name, whose text order (`1h` < `1m` < `1s`) is not the interval order, so they sort the
/// (few) open candles after reading them.
fn sort_open_candles(candles: &mut [CandleRow]) {
    fn key(c: &CandleRow) -> (&str, Interval, i64) {
        (c.symbol.as_str(), c.interval, c.bucket_start_ms)
    }
    candles.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
}

/// [`open_with`] the Scylla options of the environment ([`scylla::ScyllaOptions::from_env`]).
pub fn open(uri: &StoreUri) -> Result<Box<dyn Store>> {
    match uri {
        StoreUri::Sqlite(path) => Ok(Box::new(sqlite::SqliteStore::open(path)?)),
        StoreUri::Scylla { .. } => open_with(uri, &scylla::ScyllaOptions::from_env()?),
    }
}

/// Opens the store a URI names (`sqlite:PATH` or `scylla://host:port/keyspace`). SQLite creates
/// the tables that are missing; a Scylla keyspace must have been created by `tradestream store
/// migrate` ([`StoreError::NotMigrated`] otherwise) and is reached with `options`.
pub fn open_with(uri: &StoreUri, options: &scylla::ScyllaOptions) -> Result<Box<dyn Store>> {
    match uri {
        StoreUri::Sqlite(path) => Ok(Box::new(sqlite::SqliteStore::open(path)?)),
        StoreUri::Scylla { nodes, keyspace } => Ok(Box::new(scylla::ScyllaStore::connect_with(
            nodes, keyspace, options,
        )?)),
    }
}
