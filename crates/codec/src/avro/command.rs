//! Order commands (`order_command.avsc`): [`encode_command`], [`decode_command`] and
//! [`decode_command_any`] for topics that mix JSON and Avro.

use tradestream_engine::{
    Account, CancelOrder, Command, InvalidCommand, Name, NewOrder, OrderId, OrderType,
    ReplaceOrder, Request, Side, Symbol, Tif,
};

use super::binary::{
    AvroEnum, Reader, put_bool, put_decimal, put_enum, put_long, put_opt, put_str, read_enum,
};
use super::fields::{decimal_of, name_of, opt_decimal};
use super::{AvroError, Framing, RecordType, WireFormat, sniff};

/// `order_command.avsc`'s top-level field names, in order: what this file writes and reads (the
/// tests compare them with the parsed schema).
#[cfg(test)]
pub(super) const ORDER_FIELDS: [&str; 11] = [
    "type",
    "order_id",
    "account",
    "symbol",
    "side",
    "order_type",
    "price",
    "qty",
    "tif",
    "post_only",
    "ts",
];

/// `OrderCommand` as read, borrowing its strings from the input.
#[derive(Debug, Clone, Copy)]
struct OrderRecord<'a> {
    request: Request,
    order_id: &'a str,
    account: Option<&'a str>,
    symbol: &'a str,
    side: Option<Side>,
    order_type: Option<OrderType>,
    price: Option<&'a str>,
    qty: Option<&'a str>,
    tif: Option<Tif>,
    post_only: bool,
    ts: Option<i64>,
}

/// What was read of a command before its body went wrong.
#[derive(Debug, Default)]
struct Leading<'a> {
    request: Option<Request>,
    order_id: Option<&'a str>,
    account: Option<&'a str>,
    symbol: Option<&'a str>,
}

/// The schema's `CommandType` symbols are `new`, `cancel`, `replace`: [`Request`]'s first three.
const COMMAND_TYPES: usize = 3;

fn read_order<'a>(body: &'a [u8], got: &mut Leading<'a>) -> Result<OrderRecord<'a>, AvroError> {
    let mut r = Reader(body);
    let request = Request::from_index(r.index("type", COMMAND_TYPES)?);
    got.request = Some(request);
    let order_id = r.str("order_id")?;
    got.order_id = Some(order_id);
    let account = r.opt("account", Reader::str)?;
    got.account = account;
    let symbol = r.str("symbol")?;
    got.symbol = Some(symbol);
    let rec = OrderRecord {
        request,
        order_id,
        account,
        symbol,
        side: r.opt("side", read_enum)?,
        order_type: r.opt("order_type", read_enum)?,
        price: r.opt("price", Reader::str)?,
        qty: r.opt("qty", Reader::str)?,
        tif: r.opt("tif", read_enum)?,
        post_only: r.boolean("post_only")?,
        ts: r.opt("ts", Reader::long)?,
    };
    r.finish()?;
    Ok(rec)
}

/// Encodes a new order, cancel or replace (for producers and load generators). A
/// [`Command::Invalid`] has no Avro form and is refused with [`AvroError::Encode`].
pub fn encode_command(cmd: &Command, framing: Framing) -> Result<Vec<u8>, AvroError> {
    let mut out = Vec::with_capacity(96);
    RecordType::OrderCommand.header(framing, &mut out);
    let o = &mut out;
    match cmd {
        Command::New(n) => {
            put_enum(o, Request::New);
            put_str(o, n.order_id.as_str());
            put_opt(o, Some(n.account.as_str()), put_str);
            put_str(o, n.symbol.as_str());
            put_opt(o, Some(n.side), put_enum);
            put_opt(o, Some(n.order_type), put_enum);
            put_opt(o, n.price, put_decimal);
            put_opt(o, Some(n.qty), put_decimal);
            put_opt(o, Some(n.tif), put_enum);
            put_bool(o, n.post_only);
            put_opt(o, Some(n.ts), put_long);
        }
        Command::Cancel(c) => {
            put_enum(o, Request::Cancel);
            put_str(o, c.order_id.as_str());
            put_opt(o, Some(c.account.as_str()), put_str);
            put_str(o, c.symbol.as_str());
            o.extend_from_slice(&[0, 0, 0, 0, 0]); // side, order_type, price, qty, tif: null
            put_bool(o, false);
            put_opt(o, Some(c.ts), put_long);
        }
        Command::Replace(r) => {
            put_enum(o, Request::Replace);
            put_str(o, r.order_id.as_str());
            put_opt(o, Some(r.account.as_str()), put_str);
            put_str(o, r.symbol.as_str());
            o.extend_from_slice(&[0, 0]); // side, order_type: null
            put_opt(o, r.price, put_decimal);
            put_opt(o, r.qty, put_decimal);
            o.push(0); // tif: null
            put_bool(o, false);
            put_opt(o, Some(r.ts), put_long);
        }
        Command::Invalid(_) => {
            return Err(AvroError::Encode("an invalid command has no Avro form"));
        }
    }
    Ok(out)
}

/// Decodes one Avro order command (either framing). Never fails: what does not decode becomes
/// [`Command::Invalid`] with a detail starting `avro:` and whatever request type, order id,
/// account, symbol and timestamp could be read. `default_ts` is used when the command has no
/// `ts` (e.g. the Kafka record's timestamp).
pub fn decode_command(bytes: &[u8], default_ts: i64) -> Command {
    let mut got = Leading::default();
    let result = RecordType::OrderCommand
        .body(bytes)
        .and_then(|body| read_order(body, &mut got));
    let (ts, error) = match result {
        Ok(rec) => match convert(&rec, default_ts) {
            Ok(cmd) => return cmd,
            Err(e) => (rec.ts.unwrap_or(default_ts), e),
        },
        Err(e) => (default_ts, e),
    };
    Command::Invalid(InvalidCommand {
        order_id: got
            .order_id
            .and_then(|s| OrderId::new(s).ok())
            .unwrap_or(OrderId(Name::EMPTY)),
        account: got
            .account
            .and_then(|s| Account::new(s).ok())
            .unwrap_or(Account(Name::EMPTY)),
        symbol: got
            .symbol
            .and_then(|s| Symbol::new(s).ok())
            .unwrap_or(Symbol(Name::EMPTY)),
        request: got.request.unwrap_or(Request::Unknown),
        detail: format!("avro: {error}").into_boxed_str(),
        ts,
    })
}

/// Decodes an order command in any format the `orders` topic accepts: JSON or Avro (see
/// [`sniff`]). Never fails, like the format-specific decoders.
pub fn decode_command_any(bytes: &[u8], default_ts: i64) -> Command {
    match sniff(bytes) {
        WireFormat::Json => crate::json::decode_command(bytes, default_ts),
        // An unrecognized record gets the Avro decoder's "bad magic" detail, which names the
        // accepted formats.
        _ => decode_command(bytes, default_ts),
    }
}

fn required<T>(field: &'static str, v: Option<T>, what: &str) -> Result<T, AvroError> {
    v.ok_or_else(|| AvroError::field(field, format!("required on {what}")))
}

/// Turns a decoded record into a command, checking what the command kind needs. Fields a kind
/// does not use are ignored, as the JSON contract ignores unknown fields.
fn convert(r: &OrderRecord<'_>, default_ts: i64) -> Result<Command, AvroError> {
    let order_id = name_of("order_id", r.order_id, OrderId::new)?;
    let symbol = name_of("symbol", r.symbol, Symbol::new)?;
    let ts = r.ts.unwrap_or(default_ts);
    // Every command names its sender: a new order's owner, the account asking to cancel or
    // replace (the engine refuses anyone but the order's owner). Null only passes the schema,
    // which keeps the field nullable so records written before cancels carried it still read.
    let account = |what| {
        required("account", r.account, what).and_then(|a| name_of("account", a, Account::new))
    };
    Ok(match r.request {
        Request::Cancel => Command::Cancel(CancelOrder {
            order_id,
            account: account("a cancel")?,
            symbol,
            ts,
        }),
        Request::Replace => Command::Replace(ReplaceOrder {
            order_id,
            account: account("a replace")?,
            symbol,
            price: opt_decimal("price", r.price)?,
            qty: opt_decimal("qty", r.qty)?,
            ts,
        }),
        // `read_order` only yields new, cancel and replace.
        Request::New | Request::Unknown => {
            const WHAT: &str = "a new order";
            Command::New(NewOrder {
                order_id,
                account: account(WHAT)?,
                symbol,
                side: required("side", r.side, WHAT)?,
                order_type: required("order_type", r.order_type, WHAT)?,
                price: opt_decimal("price", r.price)?,
                qty: decimal_of("qty", required("qty", r.qty, WHAT)?)?,
                tif: required("tif", r.tif, WHAT)?,
                post_only: r.post_only,
                ts,
            })
        }
    })
}
