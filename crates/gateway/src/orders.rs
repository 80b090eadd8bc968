//! Order requests: the HTTP bodies, their validation with the engine's own checks, and the
//! `orders` topic's JSON command they become (see `tradestream_codec::json`).

use serde::{Deserialize, Serialize};
use tradestream_engine::engine::{validate_new, validate_replace};
use tradestream_engine::{
    Account, CancelOrder, Decimal, Instruments, NewOrder, OrderId, OrderType, RejectReason,
    ReplaceOrder, Side, Symbol, Tif,
};

/// `POST /v1/orders`. No `account`: the command carries the authenticated one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrderBody {
    /// Client order id (1–40 bytes).
    pub order_id: String,
    /// Instrument.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: Side,
    /// `limit` or `market`.
    pub order_type: OrderType,
    /// Limit price (decimal string); absent for market orders.
    #[serde(default)]
    pub price: Option<String>,
    /// Quantity (decimal string).
    pub qty: String,
    /// `gtc`, `ioc` or `fok`.
    pub tif: Tif,
    /// Rest only.
    #[serde(default)]
    pub post_only: bool,
    /// Refused: present only to say so clearly.
    #[serde(default)]
    pub account: Option<serde::de::IgnoredAny>,
}

/// `PATCH /v1/orders/{symbol}/{order_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceBody {
    /// New limit price.
    #[serde(default)]
    pub price: Option<String>,
    /// New open quantity.
    #[serde(default)]
    pub qty: Option<String>,
    /// Refused.
    #[serde(default)]
    pub account: Option<serde::de::IgnoredAny>,
}

/// Why a request is refused before Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 400: the request itself is wrong (code, message).
    BadRequest(&'static str, String),
    /// 422: the engine would reject it.
    Rejected(RejectReason),
}

fn name<T>(
    field: &str,
    v: &str,
    f: fn(&str) -> Result<T, tradestream_engine::NameTooLong>,
) -> Result<T, Refusal> {
    if v.is_empty() {
        return Err(Refusal::BadRequest(
            "invalid_field",
            format!("{field} must not be empty"),
        ));
    }
    f(v).map_err(|e| Refusal::BadRequest("invalid_field", format!("{field}: {e}")))
}

fn decimal(field: &str, v: &str) -> Result<Decimal, Refusal> {
    v.parse()
        .map_err(|e: tradestream_engine::decimal::DecimalError| {
            Refusal::BadRequest("invalid_field", format!("{field}: {e}"))
        })
}

fn no_account<T>(a: &Option<T>) -> Result<(), Refusal> {
    match a {
        Some(_) => Err(Refusal::BadRequest(
            "account_not_allowed",
            "the body must not name an account: orders belong to the authenticated key's account"
                .into(),
        )),
        None => Ok(()),
    }
}

/// A new order checked as the engine checks it (everything but the book).
pub fn check_new(
    instruments: &Instruments,
    account: &str,
    body: &NewOrderBody,
    ts: i64,
) -> Result<NewOrder, Refusal> {
    no_account(&body.account)?;
    let cmd = NewOrder {
        order_id: name("order_id", &body.order_id, OrderId::new)?,
        account: name("account", account, Account::new)?,
        symbol: name("symbol", &body.symbol, Symbol::new)?,
        side: body.side,
        order_type: body.order_type,
        price: body
            .price
            .as_deref()
            .map(|p| decimal("price", p))
            .transpose()?,
        qty: decimal("qty", &body.qty)?,
        tif: body.tif,
        post_only: body.post_only,
        ts,
    };
    let inst = instruments
        .get(&cmd.symbol)
        .ok_or(Refusal::Rejected(RejectReason::UnknownSymbol))?;
    validate_new(inst, &cmd).map_err(Refusal::Rejected)?;
    Ok(cmd)
}

/// A cancel: the symbol must be known (the ownership check is the engine's).
pub fn check_cancel(
    instruments: &Instruments,
    account: &str,
    symbol: &str,
    order_id: &str,
    ts: i64,
) -> Result<CancelOrder, Refusal> {
    let cmd = CancelOrder {
        order_id: name("order_id", order_id, OrderId::new)?,
        account: name("account", account, Account::new)?,
        symbol: name("symbol", symbol, Symbol::new)?,
        ts,
    };
    instruments
        .get(&cmd.symbol)
        .ok_or(Refusal::Rejected(RejectReason::UnknownSymbol))?;
    Ok(cmd)
}

/// A replace checked as the engine checks it without the live order.
pub fn check_replace(
    instruments: &Instruments,
    account: &str,
    symbol: &str,
    order_id: &str,
    body: &ReplaceBody,
    ts: i64,
) -> Result<ReplaceOrder, Refusal> {
    no_account(&body.account)?;
    let cmd = ReplaceOrder {
        order_id: name("order_id", order_id, OrderId::new)?,
        account: name("account", account, Account::new)?,
        symbol: name("symbol", symbol, Symbol::new)?,
        price: body
            .price
            .as_deref()
            .map(|p| decimal("price", p))
            .transpose()?,
        qty: body.qty.as_deref().map(|q| decimal("qty", q)).transpose()?,
        ts,
    };
    let inst = instruments
        .get(&cmd.symbol)
        .ok_or(Refusal::Rejected(RejectReason::UnknownSymbol))?;
    validate_replace(inst, &cmd).map_err(Refusal::Rejected)?;
    Ok(cmd)
}

/// A command in the `orders` topic's JSON format.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireCommand<'a> {
    /// A new order.
    New {
        /// Id.
        order_id: &'a str,
        /// Owner.
        account: &'a str,
        /// Instrument.
        symbol: &'a str,
        /// Side.
        side: Side,
        /// Type.
        order_type: OrderType,
        /// Limit price.
        #[serde(skip_serializing_if = "Option::is_none")]
        price: Option<String>,
        /// Quantity.
        qty: String,
        /// Time in force.
        tif: Tif,
        /// Post-only.
        post_only: bool,
        /// Server time, ms.
        ts: i64,
    },
    /// A cancel.
    Cancel {
        /// Id.
        order_id: &'a str,
        /// Sender.
        account: &'a str,
        /// Instrument.
        symbol: &'a str,
        /// Server time, ms.
        ts: i64,
    },
    /// A replace.
    Replace {
        /// Id.
        order_id: &'a str,
        /// Sender.
        account: &'a str,
        /// Instrument.
        symbol: &'a str,
        /// New price.
        #[serde(skip_serializing_if = "Option::is_none")]
        price: Option<String>,
        /// New open quantity.
        #[serde(skip_serializing_if = "Option::is_none")]
        qty: Option<String>,
        /// Server time, ms.
        ts: i64,
    },
}

/// JSON bytes of a new order command.
pub fn encode_new(c: &NewOrder) -> Vec<u8> {
    encode(&WireCommand::New {
        order_id: c.order_id.as_str(),
        account: c.account.as_str(),
        symbol: c.symbol.as_str(),
        side: c.side,
        order_type: c.order_type,
        price: c.price.map(|p| p.to_string()),
        qty: c.qty.to_string(),
        tif: c.tif,
        post_only: c.post_only,
        ts: c.ts,
    })
}

/// JSON bytes of a cancel.
pub fn encode_cancel(c: &CancelOrder) -> Vec<u8> {
    encode(&WireCommand::Cancel {
        order_id: c.order_id.as_str(),
        account: c.account.as_str(),
        symbol: c.symbol.as_str(),
        ts: c.ts,
    })
}

/// JSON bytes of a replace.
pub fn encode_replace(c: &ReplaceOrder) -> Vec<u8> {
    encode(&WireCommand::Replace {
        order_id: c.order_id.as_str(),
        account: c.account.as_str(),
        symbol: c.symbol.as_str(),
        price: c.price.map(|p| p.to_string()),
        qty: c.qty.map(|q| q.to_string()),
        ts: c.ts,
    })
}

fn encode(w: &WireCommand<'_>) -> Vec<u8> {
    // Strings, numbers and booleans only: serializing into a Vec cannot fail.
    serde_json::to_vec(w).unwrap_or_default()
}
