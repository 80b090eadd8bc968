//! `tradestream query …` and `tradestream store migrate`: reading the results store.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Value, json};
use tradestream_store::scylla;
use tradestream_store::{
    CandleRow, Interval, NotificationRow, OrderStateRow, Store, StoreUri, TopOfBookRow, TradeRow,
};

/// Which store, and how to reach a Scylla/Cassandra one (docs/scylla.md). The password is never
/// an argument: `SCYLLA_PASSWORD` or `--store-password-file`.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// `sqlite:PATH` (the embedded default) or `scylla://host:port[,host:port]/keyspace`.
    #[arg(
        long,
        env = "TRADESTREAM_STORE",
        default_value = "sqlite:data/tradestream.db"
    )]
    pub store: StoreUri,
    /// Scylla/Cassandra login name; its password comes from SCYLLA_PASSWORD or
    /// --store-password-file.
    #[arg(long, env = scylla::ENV_USERNAME)]
    pub store_username: Option<String>,
    /// File whose first line is the Scylla/Cassandra password (instead of SCYLLA_PASSWORD).
    #[arg(long, env = scylla::ENV_PASSWORD_FILE)]
    pub store_password_file: Option<PathBuf>,
    /// PEM file of the CA certificate(s) to trust: connect to Scylla/Cassandra over TLS.
    #[arg(long, env = scylla::ENV_CA_FILE)]
    pub store_ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for clusters that require one (with --store-key-file).
    #[arg(long, env = scylla::ENV_CERT_FILE, requires = "store_ca_file")]
    pub store_cert_file: Option<PathBuf>,
    /// PEM private key of --store-cert-file.
    #[arg(long, env = scylla::ENV_KEY_FILE, requires = "store_cert_file")]
    pub store_key_file: Option<PathBuf>,
    /// Consistency of writes and of the reads a worker resumes from.
    #[arg(
        long,
        env = scylla::ENV_CONSISTENCY,
        default_value = "LOCAL_QUORUM",
        value_parser = scylla::parse_consistency
    )]
    pub store_consistency: scylla::Consistency,
    /// Consistency of query reads (`query`, the gateway).
    #[arg(
        long,
        env = scylla::ENV_READ_CONSISTENCY,
        default_value = "LOCAL_ONE",
        value_parser = scylla::parse_consistency
    )]
    pub store_read_consistency: scylla::Consistency,
    /// The data center whose nodes coordinate this process's requests (set it on a multi-DC
    /// cluster: the LOCAL_* levels count replicas there).
    #[arg(long, env = scylla::ENV_LOCAL_DC)]
    pub store_local_dc: Option<String>,
}

impl StoreArgs {
    /// The Scylla settings these arguments and the environment give.
    pub fn scylla_options(&self) -> anyhow::Result<scylla::ScyllaOptions> {
        let password = match &self.store_password_file {
            Some(file) => Some(scylla::Secret::from_file(file)?),
            None => std::env::var(scylla::ENV_PASSWORD)
                .ok()
                .filter(|p| !p.is_empty())
                .map(scylla::Secret::new),
        };
        let options = scylla::ScyllaOptions {
            username: self.store_username.clone(),
            password,
            tls: self.store_ca_file.as_ref().map(|ca| scylla::TlsFiles {
                ca_file: ca.clone(),
                cert_file: self.store_cert_file.clone(),
                key_file: self.store_key_file.clone(),
            }),
            consistency: self.store_consistency,
            read_consistency: self.store_read_consistency,
            local_dc: self.store_local_dc.clone(),
        };
        options.validate()?;
        Ok(options)
    }

    /// Opens the store. SQLite creates its tables; a Scylla keyspace must have been made by
    /// `tradestream store migrate`.
    pub fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        let options = match self.store {
            StoreUri::Scylla { .. } => self.scylla_options()?,
            StoreUri::Sqlite(_) => scylla::ScyllaOptions::default(),
        };
        Ok(tradestream_store::open_with(&self.store, &options)?)
    }
}

/// `tradestream store …`.
#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Create the schema: on Scylla/Cassandra the keyspace (NetworkTopologyStrategy, with
    /// --replication) and its tables (schemas/cql/*.cql), on SQLite the tables; then move the
    /// rows of replaced tables into their successors. Workers never create the schema.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
        /// Replicas per data center, `DC:N[,DC:N...]` (e.g. `dc1:3,dc2:3`): required on
        /// Scylla/Cassandra; every data center must exist in the cluster.
        #[arg(long)]
        replication: Option<scylla::Replication>,
    },
}

/// Runs `tradestream store …`.
pub fn run_store(cmd: &StoreCommand) -> anyhow::Result<()> {
    match cmd {
        StoreCommand::Migrate { store, replication } => {
            let StoreUri::Scylla { nodes, keyspace } = &store.store else {
                anyhow::ensure!(
                    replication.is_none(),
                    "--replication applies to a Scylla/Cassandra store only"
                );
                store.open()?;
                println!("store {} is migrated", store.store);
                return Ok(());
            };
            let Some(replication) = replication else {
                anyhow::bail!(
                    "store migrate on Scylla/Cassandra needs --replication DC:N[,DC:N...] (the \
                     replicas of the keyspace in each data center, e.g. --replication dc1:3,dc2:3): \
                     a production keyspace is created with NetworkTopologyStrategy only"
                );
            };
            let (_, report) = scylla::ScyllaStore::migrate_keyspace(
                nodes,
                keyspace,
                replication,
                &store.scylla_options()?,
            )?;
            match &report.keyspace {
                scylla::KeyspaceChange::Created => {
                    println!("keyspace {keyspace} created with replication {replication}")
                }
                scylla::KeyspaceChange::Unchanged => {
                    println!("keyspace {keyspace} has replication {replication}")
                }
                scylla::KeyspaceChange::Altered { from } => println!(
                    "keyspace {keyspace}: replication changed from {from} to {replication}; \
                     run `nodetool repair -full {keyspace}` on every node so the new replicas \
                     get their data"
                ),
            }
            if report.rows_moved > 0 {
                println!("moved {} rows out of replaced tables", report.rows_moved);
            }
            println!("store {} is migrated", store.store);
            Ok(())
        }
    }
}

/// `tradestream query …`.
#[derive(Debug, clap::Subcommand)]
pub enum QueryCommand {
    /// The newest trades of a symbol (or of an account).
    Trades {
        /// Instrument.
        #[arg(long, required_unless_present = "account")]
        symbol: Option<String>,
        /// Account (instead of a symbol).
        #[arg(long, conflicts_with = "symbol")]
        account: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        out: Output,
    },
    /// One order's state. Order ids are unique per book only, so the symbol is part of the key.
    Order {
        /// Instrument.
        #[arg(long)]
        symbol: String,
        /// Order id.
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// The newest candles of a symbol.
    Candles {
        /// Instrument.
        #[arg(long)]
        symbol: String,
        /// `1s`, `1m` or `1h`.
        #[arg(long, default_value = "1m", value_parser = parse_interval)]
        interval: Interval,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        out: Output,
    },
    /// A symbol's top of book.
    Book {
        /// Instrument.
        #[arg(long)]
        symbol: String,
        #[command(flatten)]
        out: Output,
    },
    /// An account's newest notifications.
    Notifications {
        /// Account.
        #[arg(long)]
        account: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        out: Output,
    },
    /// Row counts of every table.
    Counts {
        #[command(flatten)]
        out: Output,
    },
}

/// Options every query shares.
#[derive(Debug, Clone, clap::Args)]
pub struct Output {
    #[command(flatten)]
    store: StoreArgs,
    /// One JSON value on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_interval(s: &str) -> Result<Interval, String> {
    Interval::parse(s).ok_or_else(|| format!("unknown interval {s:?}: expected 1s, 1m or 1h"))
}

/// Runs a query and prints its answer.
pub fn run(cmd: &QueryCommand) -> anyhow::Result<()> {
    let (out, value, text) = match cmd {
        QueryCommand::Trades {
            symbol,
            account,
            limit,
            out,
        } => {
            let mut store = out.store.open()?;
            let rows = match (symbol, account) {
                (Some(s), _) => store.trades_by_symbol(s, *limit)?,
                (None, Some(a)) => store.trades_by_account(a, *limit)?,
                (None, None) => anyhow::bail!("give --symbol or --account"),
            };
            let text = lines(&rows, trade_line);
            (
                out,
                Value::Array(rows.iter().map(trade_json).collect()),
                text,
            )
        }
        QueryCommand::Order { symbol, id, out } => {
            let row = out.store.open()?.order(symbol, id)?;
            let Some(row) = row else {
                anyhow::bail!("no order {id:?} of {symbol:?} in {}", out.store.store);
            };
            (out, order_json(&row), order_line(&row))
        }
        QueryCommand::Candles {
            symbol,
            interval,
            limit,
            out,
        } => {
            let rows = out.store.open()?.candles(symbol, *interval, *limit)?;
            let text = lines(&rows, candle_line);
            (
                out,
                Value::Array(rows.iter().map(candle_json).collect()),
                text,
            )
        }
        QueryCommand::Book { symbol, out } => {
            let row = out.store.open()?.top_of_book(symbol)?;
            let Some(row) = row else {
                anyhow::bail!("no top of book for {symbol:?} in {}", out.store.store);
            };
            (out, top_json(&row), top_line(&row))
        }
        QueryCommand::Notifications {
            account,
            limit,
            out,
        } => {
            let rows = out.store.open()?.notifications(account, *limit)?;
            let text = lines(&rows, |n| {
                format!("{} {} {} {}", n.ts_ms, n.kind, n.order_id, n.text)
            });
            (
                out,
                Value::Array(rows.iter().map(notification_json).collect()),
                text,
            )
        }
        QueryCommand::Counts { out } => {
            let c = out.store.open()?.counts()?;
            let value = json!({
                "trades": c.trades, "orders": c.orders, "candles": c.candles,
                "tops": c.tops, "notifications": c.notifications,
            });
            let text = format!(
                "trades {}\norders {}\ncandles {}\ntops {}\nnotifications {}",
                c.trades, c.orders, c.candles, c.tops, c.notifications
            );
            (out, value, text)
        }
    };
    if out.json {
        println!("{value}");
    } else {
        println!("{text}");
    }
    Ok(())
}

fn lines<T>(rows: &[T], line: impl Fn(&T) -> String) -> String {
    if rows.is_empty() {
        return "(none)".to_owned();
    }
    let mut s = String::new();
    for row in rows {
        let _ = writeln!(s, "{}", line(row));
    }
    s.trim_end().to_owned()
}

fn trade_json(t: &TradeRow) -> Value {
    json!({
        "symbol": t.symbol, "source_partition": t.source_partition, "seq": t.seq, "ts": t.ts_ms,
        "price": t.price.to_string(), "qty": t.qty.to_string(),
        "maker_order_id": t.maker_order_id, "maker_account": t.maker_account,
        "taker_order_id": t.taker_order_id, "taker_account": t.taker_account,
        "taker_side": t.taker_side.as_str(),
    })
}

fn trade_line(t: &TradeRow) -> String {
    format!(
        "{} {} {} {} @ {} taker {} ({}) maker {} ({}) [p{} #{}]",
        t.ts_ms,
        t.symbol,
        t.taker_side.as_str(),
        t.qty,
        t.price,
        t.taker_order_id,
        t.taker_account,
        t.maker_order_id,
        t.maker_account,
        t.source_partition,
        t.seq
    )
}

fn order_json(o: &OrderStateRow) -> Value {
    json!({
        "order_id": o.order_id, "account": o.account, "symbol": o.symbol, "side": o.side.as_str(),
        "status": o.status.as_str(), "price": o.price.map(|p| p.to_string()),
        "qty": o.qty.to_string(), "filled_qty": o.filled_qty.to_string(),
        "avg_price": o.avg_price.map(|p| p.to_string()), "notional": o.notional.to_string(),
        "updated_ts": o.updated_ts_ms,
        "source_partition": o.source_partition, "seq": o.seq,
    })
}

fn order_line(o: &OrderStateRow) -> String {
    format!(
        "{} {} {} {} {} {} filled {} of {} avg {} (updated {})",
        o.order_id,
        o.account,
        o.symbol,
        o.side.as_str(),
        o.price
            .map_or_else(|| "market".to_owned(), |p| p.to_string()),
        o.status.as_str(),
        o.filled_qty,
        o.qty,
        o.avg_price
            .map_or_else(|| "-".to_owned(), |p| p.to_string()),
        o.updated_ts_ms
    )
}

fn candle_json(c: &CandleRow) -> Value {
    json!({
        "symbol": c.symbol, "interval": c.interval.as_str(), "bucket_start": c.bucket_start_ms,
        "open": c.open.to_string(), "high": c.high.to_string(), "low": c.low.to_string(),
        "close": c.close.to_string(), "volume": c.volume.to_string(),
        "turnover": c.turnover.to_string(), "vwap": c.vwap.to_string(),
        "trades": c.trade_count, "closed": c.closed,
    })
}

fn candle_line(c: &CandleRow) -> String {
    format!(
        "{} {} {} O {} H {} L {} C {} V {} VWAP {} n {}{}",
        c.bucket_start_ms,
        c.symbol,
        c.interval.as_str(),
        c.open,
        c.high,
        c.low,
        c.close,
        c.volume,
        c.vwap,
        c.trade_count,
        if c.closed { "" } else { " (open)" }
    )
}

fn level(l: Option<(tradestream_engine::Decimal, tradestream_engine::Decimal)>) -> Value {
    l.map_or(
        Value::Null,
        |(p, q)| json!({"price": p.to_string(), "qty": q.to_string()}),
    )
}

fn top_json(t: &TopOfBookRow) -> Value {
    json!({
        "symbol": t.symbol, "bid": level(t.bid), "ask": level(t.ask), "ts": t.ts_ms,
        "source_partition": t.source_partition, "seq": t.seq,
    })
}

fn top_line(t: &TopOfBookRow) -> String {
    let side = |l: Option<(tradestream_engine::Decimal, tradestream_engine::Decimal)>| {
        l.map_or_else(|| "-".to_owned(), |(p, q)| format!("{q} @ {p}"))
    };
    format!(
        "{} bid {} | ask {} (at {})",
        t.symbol,
        side(t.bid),
        side(t.ask),
        t.ts_ms
    )
}

fn notification_json(n: &NotificationRow) -> Value {
    json!({
        "account": n.account, "source_partition": n.source_partition, "seq": n.seq,
        "ts": n.ts_ms, "kind": n.kind, "order_id": n.order_id, "symbol": n.symbol, "text": n.text,
    })
}

#[cfg(test)]
mod tests;
