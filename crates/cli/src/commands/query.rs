//! `tradestream query …` and `tradestream store migrate`: reading the results store.

use std::fmt::Write as _;

use serde_json::{Value, json};
use tradestream_store::{
    CandleRow, Interval, NotificationRow, OrderStateRow, Store, StoreUri, TopOfBookRow, TradeRow,
};

/// Which store.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// `sqlite:PATH` (the embedded default) or `scylla://host:port[,host:port]/keyspace`.
    #[arg(
        long,
        env = "TRADESTREAM_STORE",
        default_value = "sqlite:data/tradestream.db"
    )]
    pub store: StoreUri,
}

impl StoreArgs {
    /// Opens the store; opening creates the tables that are missing (both backends migrate
    /// when they open).
    pub fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        Ok(tradestream_store::open(&self.store)?)
    }
}

/// `tradestream store …`.
#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Create the tables that are missing (schemas/cql/*.cql, or the SQLite mirror) and move the
    /// rows of a replaced table into its successor (the old `orders`, keyed by order id alone,
    /// into `orders_by_symbol`).
    Migrate(StoreArgs),
}

/// Runs `tradestream store …`.
pub fn run_store(cmd: &StoreCommand) -> anyhow::Result<()> {
    match cmd {
        StoreCommand::Migrate(args) => {
            args.open()?;
            println!("store {} is migrated", args.store);
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
