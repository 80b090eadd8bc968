-- tradestream result tables for SQLite: the same tables and columns as
-- 001_tables.cql and the later CQL files (002_*.cql, ...), with each CQL
-- primary key (partition key, then clustering columns in their clustering
-- order) as the SQLite primary key of a WITHOUT ROWID table, so every read is
-- one range scan of the primary key. One
-- exception: the CQL table open_candles, a copy of the open candles keyed by
-- source partition, is the partial index candles_open_by_partition here (the
-- transaction keeps it in step with candles for free).
--
-- `SqliteStore::open` runs this on every open (crates/store/src/sqlite.rs).
-- Decimals are TEXT in their exact decimal spelling ("100.50"); booleans are 0/1.
-- STRICT tables and CHECK constraints reject values no worker can produce
-- (negative positions, unknown enum names), so a bad row fails its whole
-- batch instead of landing.

CREATE TABLE IF NOT EXISTS trades_by_symbol (
    symbol           TEXT    NOT NULL,
    day              INTEGER NOT NULL,
    seq              INTEGER NOT NULL CHECK (seq >= 0),
    source_partition INTEGER NOT NULL CHECK (source_partition >= 0),
    ts_ms            INTEGER NOT NULL,
    price            TEXT    NOT NULL,
    qty              TEXT    NOT NULL,
    maker_order_id   TEXT    NOT NULL,
    maker_account    TEXT    NOT NULL,
    taker_order_id   TEXT    NOT NULL,
    taker_account    TEXT    NOT NULL,
    taker_side       TEXT    NOT NULL CHECK (taker_side IN ('buy', 'sell')),
    PRIMARY KEY (symbol, day DESC, seq DESC, source_partition ASC)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS trade_days (
    symbol TEXT    NOT NULL,
    day    INTEGER NOT NULL,
    PRIMARY KEY (symbol, day DESC)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS trades_by_account (
    account          TEXT    NOT NULL,
    ts_ms            INTEGER NOT NULL,
    source_partition INTEGER NOT NULL CHECK (source_partition >= 0),
    seq              INTEGER NOT NULL CHECK (seq >= 0),
    role             TEXT    NOT NULL CHECK (role IN ('maker', 'taker', 'self')),
    symbol           TEXT    NOT NULL,
    price            TEXT    NOT NULL,
    qty              TEXT    NOT NULL,
    maker_order_id   TEXT    NOT NULL,
    maker_account    TEXT    NOT NULL,
    taker_order_id   TEXT    NOT NULL,
    taker_account    TEXT    NOT NULL,
    taker_side       TEXT    NOT NULL CHECK (taker_side IN ('buy', 'sell')),
    PRIMARY KEY (account, ts_ms DESC, source_partition ASC, seq DESC)
) STRICT, WITHOUT ROWID;

-- 002_orders_by_symbol.cql. A store opened before it has a table `orders`
-- keyed by order_id alone: `SqliteStore::migrate` moves its rows here and drops
-- it in the same transaction as this script.
CREATE TABLE IF NOT EXISTS orders_by_symbol (
    symbol           TEXT    NOT NULL,
    order_id         TEXT    NOT NULL,
    account          TEXT    NOT NULL,
    side             TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    status           TEXT    NOT NULL CHECK (status IN
        ('new', 'partially_filled', 'filled', 'cancelled', 'expired', 'rejected')),
    price            TEXT,
    qty              TEXT    NOT NULL,
    filled_qty       TEXT    NOT NULL,
    avg_price        TEXT,
    notional         TEXT    NOT NULL,
    updated_ts_ms    INTEGER NOT NULL,
    source_partition INTEGER NOT NULL CHECK (source_partition >= 0),
    seq              INTEGER NOT NULL CHECK (seq >= 0),
    PRIMARY KEY (symbol, order_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS candles (
    symbol           TEXT    NOT NULL,
    interval         TEXT    NOT NULL CHECK (interval IN ('1s', '1m', '1h')),
    bucket_start_ms  INTEGER NOT NULL,
    open             TEXT    NOT NULL,
    high             TEXT    NOT NULL,
    low              TEXT    NOT NULL,
    close            TEXT    NOT NULL,
    volume           TEXT    NOT NULL,
    turnover         TEXT    NOT NULL,
    vwap             TEXT    NOT NULL,
    trade_count      INTEGER NOT NULL,
    closed           INTEGER NOT NULL CHECK (closed IN (0, 1)),
    source_partition INTEGER NOT NULL CHECK (source_partition >= 0),
    seq              INTEGER NOT NULL CHECK (seq >= 0),
    PRIMARY KEY (symbol, interval, bucket_start_ms DESC)
) STRICT, WITHOUT ROWID;

-- The open candles of a source partition (Store::open_candles): what a
-- restarted market-data worker seeds its candle builder with. Partial, so it
-- holds only the few open candles, not the ever-growing closed ones; the
-- query repeats its condition (closed = 0) to use it.
CREATE INDEX IF NOT EXISTS candles_open_by_partition
    ON candles (source_partition, symbol, interval, bucket_start_ms)
    WHERE closed = 0;

CREATE TABLE IF NOT EXISTS top_of_book (
    symbol           TEXT    NOT NULL PRIMARY KEY,
    bid_price        TEXT,
    bid_qty          TEXT,
    ask_price        TEXT,
    ask_qty          TEXT,
    ts_ms            INTEGER NOT NULL,
    source_partition INTEGER NOT NULL CHECK (source_partition >= 0),
    seq              INTEGER NOT NULL CHECK (seq >= 0),
    CHECK ((bid_price IS NULL) = (bid_qty IS NULL)),
    CHECK ((ask_price IS NULL) = (ask_qty IS NULL))
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS notifications_by_account (
    account          TEXT    NOT NULL,
    ts_ms            INTEGER NOT NULL,
    source_partition INTEGER NOT NULL CHECK (source_partition >= 0),
    seq              INTEGER NOT NULL CHECK (seq >= 0),
    kind             TEXT    NOT NULL,
    order_id         TEXT    NOT NULL,
    symbol           TEXT    NOT NULL,
    message          TEXT    NOT NULL,
    PRIMARY KEY (account, ts_ms DESC, source_partition ASC, seq DESC)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer     TEXT    NOT NULL,
    topic        TEXT    NOT NULL,
    partition    INTEGER NOT NULL,
    next_offset  INTEGER NOT NULL CHECK (next_offset >= 0),
    watermark_ms INTEGER,
    PRIMARY KEY (consumer, topic, partition)
) STRICT, WITHOUT ROWID;
