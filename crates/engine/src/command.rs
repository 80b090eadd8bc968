//! Commands: what the engine is asked to do. Prices and quantities are still decimals here; the
//! engine converts them with the instrument's tick and lot, so an off-grid value is a rejection
//! with a sequence number like any other outcome.

use crate::decimal::Decimal;
use crate::name::{Account, OrderId, Symbol};
use crate::types::{OrderType, Side, Tif};

/// One command. `ts` is the command's event time (milliseconds); the engine copies it onto the
/// events it causes and never reads a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Place an order.
    New(NewOrder),
    /// Cancel a live order.
    Cancel(CancelOrder),
    /// Change a live order's price and/or open quantity.
    Replace(ReplaceOrder),
    /// A command that could not be decoded. It is rejected in sequence, so nothing is lost.
    Invalid(InvalidCommand),
}

/// Place an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// Client id; must not be live in the book already.
    pub order_id: OrderId,
    /// Owner.
    pub account: Account,
    /// Instrument.
    pub symbol: Symbol,
    /// Buy or sell.
    pub side: Side,
    /// Limit or market.
    pub order_type: OrderType,
    /// Limit price; absent for market orders.
    pub price: Option<Decimal>,
    /// Quantity.
    pub qty: Decimal,
    /// Time in force.
    pub tif: Tif,
    /// Rest only: reject instead of trading on arrival.
    pub post_only: bool,
    /// Event time, milliseconds.
    pub ts: i64,
}

/// Cancel a live order. Only its owner may: the engine refuses a cancel whose `account` is not
/// the order's with [`RejectReason::NotOwner`](crate::RejectReason::NotOwner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelOrder {
    /// The order.
    pub order_id: OrderId,
    /// Who asks: must be the order's owner.
    pub account: Account,
    /// Its instrument.
    pub symbol: Symbol,
    /// Event time, milliseconds.
    pub ts: i64,
}

/// Change a live order. At least one of `price` and `qty` must be given. Only its owner may:
/// the engine refuses a replace whose `account` is not the order's with
/// [`RejectReason::NotOwner`](crate::RejectReason::NotOwner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaceOrder {
    /// The order.
    pub order_id: OrderId,
    /// Who asks: must be the order's owner.
    pub account: Account,
    /// Its instrument.
    pub symbol: Symbol,
    /// New limit price, if it changes.
    pub price: Option<Decimal>,
    /// New open (remaining) quantity, if it changes.
    pub qty: Option<Decimal>,
    /// Event time, milliseconds.
    pub ts: i64,
}

/// What a command asked for, named in rejections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Request {
    /// A new order.
    New,
    /// A cancel.
    Cancel,
    /// A replace.
    Replace,
    /// Could not be told.
    Unknown,
}

impl Request {
    /// The contract's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Request::New => "new",
            Request::Cancel => "cancel",
            Request::Replace => "replace",
            Request::Unknown => "unknown",
        }
    }
}

/// A command that failed to decode, with what could be recovered of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCommand {
    /// The order id, if one could be read (else empty).
    pub order_id: OrderId,
    /// The account, if one could be read (else empty); the rejection is addressed to it.
    pub account: Account,
    /// The symbol, if one could be read (else empty).
    pub symbol: Symbol,
    /// What was asked, if it could be told.
    pub request: Request,
    /// What is wrong, for people.
    pub detail: Box<str>,
    /// Event time, milliseconds (0 when unknown).
    pub ts: i64,
}

impl Command {
    /// The instrument the command names (empty for a malformed command without a readable one).
    pub fn symbol(&self) -> Symbol {
        match self {
            Command::New(c) => c.symbol,
            Command::Cancel(c) => c.symbol,
            Command::Replace(c) => c.symbol,
            Command::Invalid(c) => c.symbol,
        }
    }

    /// The command's event time.
    pub fn ts(&self) -> i64 {
        match self {
            Command::New(c) => c.ts,
            Command::Cancel(c) => c.ts,
            Command::Replace(c) => c.ts,
            Command::Invalid(c) => c.ts,
        }
    }
}
