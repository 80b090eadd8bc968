//! The JSON contract: order commands in, engine events out, one object per line.
//!
//! This is the `orders` topic's JSON format and the output of `tradestream match`.
//!
//! Commands (`price` only on limit orders, `post_only` optional, `ts` optional — the caller then
//! supplies the record's timestamp):
//! ```json
//! {"type":"new","order_id":"o-1","account":"a-1","symbol":"BTC-USD","side":"buy",
//!  "order_type":"limit","price":"100.50","qty":"2","tif":"gtc","post_only":false,"ts":1732900000000}
//! {"type":"cancel","order_id":"o-1","account":"a-1","symbol":"BTC-USD","ts":1732900000001}
//! {"type":"replace","order_id":"o-1","account":"a-1","symbol":"BTC-USD","price":"101.00","qty":"1","ts":1732900000002}
//! ```
//! `account` is required on every command: on a cancel or replace it is the sender, and only the
//! order's owner may cancel or replace it (the engine rejects anyone else with `not_owner`).
//! Unknown fields are ignored, so producers can add their own. Prices and quantities are decimal
//! strings. A line that does not decode (a missing `account` included) becomes
//! [`Command::Invalid`], which the engine turns into a `rejected` event with reason `malformed`
//! and a `detail` naming what is wrong, keeping the sequence contiguous; the event names the
//! line's `account` when one can be read, so its sender can be told.
//!
//! Events carry `event`, `seq`, `ts`, `symbol` and, per kind:
//! - `accepted`: `order_id`, `account`, `side`, `order_type`, `tif`, `price` (limit), `qty`, `post_only`
//! - `rejected`: `order_id`, `account` (whom to tell: the sender of the refused command; `""`
//!   only for a malformed line without a readable account), `request`
//!   (`new`/`cancel`/`replace`/`unknown`), `reason`, `detail` (`malformed`,
//!   `bad_timestamp`)
//! - `trade`: `price`, `qty`, `maker_order_id`, `maker_account`, `maker_leaves`, `taker_order_id`,
//!   `taker_account`, `taker_side`, `taker_leaves`
//! - `cancelled` / `expired`: `order_id`, `account`, `qty`
//! - `replaced`: `order_id`, `account`, `side`, `old_price`, `price`, `old_qty`, `qty`, `priority_kept`
//! - `book_delta`: `side`, `price`, `qty` (the level's new total; `"0"` removes it)
//! - `top_of_book`: `bid_price`, `bid_qty`, `ask_price`, `ask_qty` (null when that side is empty)

use serde::{Deserialize, Serialize};
use tradestream_engine::{
    Account, CancelOrder, Command, Decimal, Event, EventKind, Instrument, Instruments,
    InvalidCommand, LevelQty, NewOrder, OrderId, OrderType, Price, Qty, ReplaceOrder, Request,
    Side, Symbol, Tif,
};

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireCommand {
    New {
        order_id: String,
        account: String,
        symbol: String,
        side: Side,
        order_type: OrderType,
        #[serde(default)]
        price: Option<String>,
        qty: String,
        tif: Tif,
        #[serde(default)]
        post_only: bool,
        #[serde(default)]
        ts: Option<i64>,
    },
    Cancel {
        order_id: String,
        account: String,
        symbol: String,
        #[serde(default)]
        ts: Option<i64>,
    },
    Replace {
        order_id: String,
        account: String,
        symbol: String,
        #[serde(default)]
        price: Option<String>,
        #[serde(default)]
        qty: Option<String>,
        #[serde(default)]
        ts: Option<i64>,
    },
}

/// Every field a command can have, borrowed from the input: the fast path of
/// [`decode_command`] (a string with escapes cannot be borrowed and takes the slow path). A line it reads as a complete command decodes exactly as through
/// [`WireCommand`] (which buffers the object and allocates a `String` per field); anything else
/// (an unknown type, a missing field, a field of the wrong type even where [`WireCommand`]
/// ignores it, a duplicate) goes the slow way, which also words the error.
#[derive(Deserialize)]
struct FlatCommand<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    order_id: Option<&'a str>,
    #[serde(default)]
    account: Option<&'a str>,
    #[serde(default)]
    symbol: Option<&'a str>,
    #[serde(default)]
    side: Option<Side>,
    #[serde(default)]
    order_type: Option<OrderType>,
    #[serde(default)]
    price: Option<&'a str>,
    #[serde(default)]
    qty: Option<&'a str>,
    #[serde(default)]
    tif: Option<Tif>,
    #[serde(default)]
    post_only: bool,
    #[serde(default)]
    ts: Option<i64>,
}

impl FlatCommand<'_> {
    /// The command, if this is a complete one of its type that converts without error (the
    /// error is not worded for people: the slow path does that).
    fn command(self, default_ts: i64) -> Result<Command, FieldError> {
        let missing = |field: &'static str| (field, String::new());
        let order_id = name(
            "order_id",
            self.order_id.ok_or(missing("order_id"))?,
            OrderId::new,
        )?;
        let account = name(
            "account",
            self.account.ok_or(missing("account"))?,
            Account::new,
        )?;
        let symbol = name("symbol", self.symbol.ok_or(missing("symbol"))?, Symbol::new)?;
        let ts = self.ts.unwrap_or(default_ts);
        Ok(match self.kind {
            "new" => Command::New(NewOrder {
                order_id,
                account,
                symbol,
                side: self.side.ok_or(missing("side"))?,
                order_type: self.order_type.ok_or(missing("order_type"))?,
                price: self.price.map(|p| decimal("price", p)).transpose()?,
                qty: decimal("qty", self.qty.ok_or(missing("qty"))?)?,
                tif: self.tif.ok_or(missing("tif"))?,
                post_only: self.post_only,
                ts,
            }),
            "cancel" => Command::Cancel(CancelOrder {
                order_id,
                account,
                symbol,
                ts,
            }),
            "replace" => Command::Replace(ReplaceOrder {
                order_id,
                account,
                symbol,
                price: self.price.map(|p| decimal("price", p)).transpose()?,
                qty: self.qty.map(|q| decimal("qty", q)).transpose()?,
                ts,
            }),
            _ => return Err(missing("type")),
        })
    }
}

/// A field that failed to convert: its name and why.
type FieldError = (&'static str, String);

fn name<T>(
    field: &'static str,
    v: &str,
    f: fn(&str) -> Result<T, tradestream_engine::NameTooLong>,
) -> Result<T, FieldError> {
    f(v).map_err(|e| (field, e.to_string()))
}

fn decimal(field: &'static str, v: &str) -> Result<Decimal, FieldError> {
    v.parse()
        .map_err(|e: tradestream_engine::decimal::DecimalError| (field, e.to_string()))
}

fn convert(w: WireCommand, default_ts: i64) -> Result<Command, FieldError> {
    Ok(match w {
        WireCommand::New {
            order_id,
            account,
            symbol,
            side,
            order_type,
            price,
            qty,
            tif,
            post_only,
            ts,
        } => Command::New(NewOrder {
            order_id: name("order_id", &order_id, OrderId::new)?,
            account: name("account", &account, Account::new)?,
            symbol: name("symbol", &symbol, Symbol::new)?,
            side,
            order_type,
            price: price.map(|p| decimal("price", &p)).transpose()?,
            qty: decimal("qty", &qty)?,
            tif,
            post_only,
            ts: ts.unwrap_or(default_ts),
        }),
        WireCommand::Cancel {
            order_id,
            account,
            symbol,
            ts,
        } => Command::Cancel(CancelOrder {
            order_id: name("order_id", &order_id, OrderId::new)?,
            account: name("account", &account, Account::new)?,
            symbol: name("symbol", &symbol, Symbol::new)?,
            ts: ts.unwrap_or(default_ts),
        }),
        WireCommand::Replace {
            order_id,
            account,
            symbol,
            price,
            qty,
            ts,
        } => Command::Replace(ReplaceOrder {
            order_id: name("order_id", &order_id, OrderId::new)?,
            account: name("account", &account, Account::new)?,
            symbol: name("symbol", &symbol, Symbol::new)?,
            price: price.map(|p| decimal("price", &p)).transpose()?,
            qty: qty.map(|q| decimal("qty", &q)).transpose()?,
            ts: ts.unwrap_or(default_ts),
        }),
    })
}

/// Decodes one command. Never fails: what does not decode becomes [`Command::Invalid`] with
/// whatever order id, account, symbol, request type and timestamp could be read, and a detail
/// saying why.
/// `default_ts` is used when the command has no `ts` (e.g. the Kafka record's timestamp).
pub fn decode_command(bytes: &[u8], default_ts: i64) -> Command {
    // An object only: serde would also read a struct from an array, which the slow path's
    // tagged enum reads differently.
    let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if let Some(cmd) = object
        .then(|| serde_json::from_slice::<FlatCommand<'_>>(bytes).ok())
        .flatten()
        .and_then(|flat| flat.command(default_ts).ok())
    {
        return cmd;
    }
    decode_command_tagged(bytes, default_ts)
}

/// [`decode_command`] without the fast path: through [`WireCommand`], which also words the
/// errors.
pub(crate) fn decode_command_tagged(bytes: &[u8], default_ts: i64) -> Command {
    let detail = match serde_json::from_slice::<WireCommand>(bytes) {
        Ok(w) => match convert(w, default_ts) {
            Ok(cmd) => return cmd,
            Err((field, why)) => format!("{field}: {why}"),
        },
        Err(e) => e.to_string(),
    };
    salvage(bytes, detail, default_ts)
}

/// Recovers what it can from a command that did not decode.
fn salvage(bytes: &[u8], detail: String, default_ts: i64) -> Command {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let text = |k: &str| value.get(k).and_then(serde_json::Value::as_str);
    let request = match text("type") {
        Some("new") => Request::New,
        Some("cancel") => Request::Cancel,
        Some("replace") => Request::Replace,
        _ => Request::Unknown,
    };
    Command::Invalid(InvalidCommand {
        order_id: text("order_id")
            .and_then(|s| OrderId::new(s).ok())
            .unwrap_or(OrderId(tradestream_engine::Name::EMPTY)),
        account: text("account")
            .and_then(|s| Account::new(s).ok())
            .unwrap_or(Account(tradestream_engine::Name::EMPTY)),
        symbol: text("symbol")
            .and_then(|s| Symbol::new(s).ok())
            .unwrap_or(Symbol(tradestream_engine::Name::EMPTY)),
        request,
        detail: detail.into_boxed_str(),
        ts: value
            .get("ts")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(default_ts),
    })
}

#[derive(Serialize)]
struct WireEvent<'a> {
    event: &'static str,
    seq: u64,
    ts: i64,
    symbol: &'a str,
    #[serde(flatten)]
    body: Body<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Accepted {
        order_id: &'a str,
        account: &'a str,
        side: Side,
        order_type: OrderType,
        tif: Tif,
        #[serde(skip_serializing_if = "Option::is_none")]
        price: Option<String>,
        qty: String,
        post_only: bool,
    },
    Rejected {
        order_id: &'a str,
        account: &'a str,
        request: &'static str,
        reason: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<&'a str>,
    },
    Trade {
        price: String,
        qty: String,
        maker_order_id: &'a str,
        maker_account: &'a str,
        maker_leaves: String,
        taker_order_id: &'a str,
        taker_account: &'a str,
        taker_side: Side,
        taker_leaves: String,
    },
    Ended {
        order_id: &'a str,
        account: &'a str,
        qty: String,
    },
    Replaced {
        order_id: &'a str,
        account: &'a str,
        side: Side,
        old_price: String,
        price: String,
        old_qty: String,
        qty: String,
        priority_kept: bool,
    },
    BookDelta {
        side: Side,
        price: String,
        qty: String,
    },
    TopOfBook {
        bid_price: Option<String>,
        bid_qty: Option<String>,
        ask_price: Option<String>,
        ask_qty: Option<String>,
    },
}

/// Formats ticks and lots with the instrument's units; events of unknown symbols carry none.
struct Units<'a>(Option<&'a Instrument>);

impl Units<'_> {
    fn price(&self, p: Price) -> String {
        match self.0 {
            Some(i) => i.price_decimal(p).to_string(),
            None => p.0.to_string(),
        }
    }

    fn qty(&self, q: Qty) -> String {
        match self.0 {
            Some(i) => i.qty_decimal(q).to_string(),
            None => q.0.to_string(),
        }
    }

    fn level(&self, l: Option<LevelQty>) -> (Option<String>, Option<String>) {
        match l {
            Some(l) => (Some(self.price(l.price)), Some(self.qty(l.qty))),
            None => (None, None),
        }
    }
}

/// Appends one event as a JSON object (no newline) to `out`.
pub fn encode_event(instruments: &Instruments, event: &Event, out: &mut Vec<u8>) {
    let u = Units(instruments.get(&event.symbol));
    let body = match &event.kind {
        EventKind::Accepted {
            order_id,
            account,
            side,
            order_type,
            tif,
            price,
            qty,
            post_only,
        } => Body::Accepted {
            order_id: order_id.as_str(),
            account: account.as_str(),
            side: *side,
            order_type: *order_type,
            tif: *tif,
            price: price.map(|p| u.price(p)),
            qty: u.qty(*qty),
            post_only: *post_only,
        },
        EventKind::Rejected {
            order_id,
            account,
            request,
            reason,
        } => Body::Rejected {
            order_id: order_id.as_str(),
            account: account.as_str(),
            request: request.as_str(),
            reason: reason.code(),
            detail: reason.detail(),
        },
        EventKind::Trade {
            price,
            qty,
            maker_order_id,
            maker_account,
            maker_leaves,
            taker_order_id,
            taker_account,
            taker_side,
            taker_leaves,
        } => Body::Trade {
            price: u.price(*price),
            qty: u.qty(*qty),
            maker_order_id: maker_order_id.as_str(),
            maker_account: maker_account.as_str(),
            maker_leaves: u.qty(*maker_leaves),
            taker_order_id: taker_order_id.as_str(),
            taker_account: taker_account.as_str(),
            taker_side: *taker_side,
            taker_leaves: u.qty(*taker_leaves),
        },
        EventKind::Cancelled {
            order_id,
            account,
            qty,
        }
        | EventKind::Expired {
            order_id,
            account,
            qty,
        } => Body::Ended {
            order_id: order_id.as_str(),
            account: account.as_str(),
            qty: u.qty(*qty),
        },
        EventKind::Replaced {
            order_id,
            account,
            side,
            old_price,
            price,
            old_qty,
            qty,
            priority_kept,
        } => Body::Replaced {
            order_id: order_id.as_str(),
            account: account.as_str(),
            side: *side,
            old_price: u.price(*old_price),
            price: u.price(*price),
            old_qty: u.qty(*old_qty),
            qty: u.qty(*qty),
            priority_kept: *priority_kept,
        },
        EventKind::BookDelta { side, price, qty } => Body::BookDelta {
            side: *side,
            price: u.price(*price),
            qty: u.qty(*qty),
        },
        EventKind::TopOfBook { bid, ask } => {
            let (bid_price, bid_qty) = u.level(*bid);
            let (ask_price, ask_qty) = u.level(*ask);
            Body::TopOfBook {
                bid_price,
                bid_qty,
                ask_price,
                ask_qty,
            }
        }
    };
    let wire = WireEvent {
        event: event.kind.name(),
        seq: event.seq.0,
        ts: event.ts,
        symbol: event.symbol.as_str(),
        body,
    };
    // Serializing plain strings, numbers and booleans into a Vec cannot fail.
    serde_json::to_writer(out, &wire).expect("event serializes to JSON");
}
