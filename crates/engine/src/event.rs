//! Events: everything the engine says, as values, each with a contiguous sequence number.

use std::fmt;

use crate::command::Request;
use crate::name::{Account, OrderId, Symbol};
use crate::types::{OrderType, Price, Qty, Seq, Side, Tif};

/// One engine output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Per-engine sequence number: 1, 2, 3, … with no gaps.
    pub seq: Seq,
    /// Event time of the command that caused it, milliseconds.
    pub ts: i64,
    /// Instrument (as given, for rejections of unknown symbols).
    pub symbol: Symbol,
    /// What happened.
    pub kind: EventKind,
}

/// Aggregate resting quantity at one price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelQty {
    /// Price, in ticks.
    pub price: Price,
    /// Sum of the open quantity of the orders at that price, in lots.
    pub qty: Qty,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A new order passed validation. Trades, a rest or an expiry follow.
    Accepted {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        account: Account,
        /// Buy or sell.
        side: Side,
        /// Limit or market.
        order_type: OrderType,
        /// Time in force.
        tif: Tif,
        /// Limit price (none for market orders).
        price: Option<Price>,
        /// Quantity.
        qty: Qty,
        /// Post-only flag.
        post_only: bool,
    },
    /// A command was refused; the book is unchanged.
    Rejected {
        /// The order named by the command (empty if none could be read).
        order_id: OrderId,
        /// Whom to tell: the account that sent the command (a new order's own account, the
        /// account a cancel or replace carried — never the owner of the order it named, which
        /// may be someone else's — or the account a malformed command carried). Empty only for
        /// a malformed command whose account could not be read.
        account: Account,
        /// What was asked.
        request: Request,
        /// Why.
        reason: RejectReason,
    },
    /// One fill, at the resting (maker) order's price.
    Trade {
        /// Price, in ticks.
        price: Price,
        /// Quantity, in lots.
        qty: Qty,
        /// The resting order.
        maker_order_id: OrderId,
        /// Its owner.
        maker_account: Account,
        /// What the maker has left open after this fill.
        maker_leaves: Qty,
        /// The incoming order.
        taker_order_id: OrderId,
        /// Its owner.
        taker_account: Account,
        /// The incoming order's side.
        taker_side: Side,
        /// What the taker has left after this fill.
        taker_leaves: Qty,
    },
    /// A live order was cancelled on request.
    Cancelled {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        account: Account,
        /// The open quantity that was cancelled.
        qty: Qty,
    },
    /// A live order's price and/or open quantity changed.
    Replaced {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        account: Account,
        /// Its side.
        side: Side,
        /// Price before.
        old_price: Price,
        /// Price after.
        price: Price,
        /// Open quantity before.
        old_qty: Qty,
        /// Open quantity after (before any trade the move causes).
        qty: Qty,
        /// True when the order kept its place in the queue.
        priority_kept: bool,
    },
    /// The unfilled remainder of an IOC, FOK or market order was dropped.
    Expired {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        account: Account,
        /// The quantity that expired.
        qty: Qty,
    },
    /// L2: the aggregate quantity at one price on one side changed (zero: the level is gone).
    BookDelta {
        /// Side of the book.
        side: Side,
        /// The level's price, in ticks.
        price: Price,
        /// New aggregate open quantity, in lots.
        qty: Qty,
    },
    /// The best bid and/or best ask changed (price or quantity).
    TopOfBook {
        /// Best bid, if any.
        bid: Option<LevelQty>,
        /// Best ask, if any.
        ask: Option<LevelQty>,
    },
}

impl EventKind {
    /// The contract's name for this event.
    pub const fn name(&self) -> &'static str {
        match self {
            EventKind::Accepted { .. } => "accepted",
            EventKind::Rejected { .. } => "rejected",
            EventKind::Trade { .. } => "trade",
            EventKind::Cancelled { .. } => "cancelled",
            EventKind::Replaced { .. } => "replaced",
            EventKind::Expired { .. } => "expired",
            EventKind::BookDelta { .. } => "book_delta",
            EventKind::TopOfBook { .. } => "top_of_book",
        }
    }
}

/// Why a command was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// The symbol is not configured.
    UnknownSymbol,
    /// Quantity zero or negative.
    InvalidQuantity,
    /// Quantity not a whole number of lots.
    QuantityOffLot,
    /// Quantity under the instrument's minimum.
    QuantityBelowMin,
    /// Quantity over the instrument's maximum.
    QuantityAboveMax,
    /// Price zero or negative.
    InvalidPrice,
    /// Price not a whole number of ticks.
    PriceOffTick,
    /// Price outside the instrument's band.
    PriceOutOfBand,
    /// A limit order without a price.
    MissingPrice,
    /// A market order with a price.
    MarketOrderWithPrice,
    /// A market order with `tif = gtc`.
    MarketOrderGtc,
    /// `post_only` on anything but a GTC limit order.
    PostOnlyNotGtcLimit,
    /// A post-only order (or the move of one) would trade on arrival.
    PostOnlyWouldTrade,
    /// A new order whose id is live in the book.
    DuplicateOrderId,
    /// Cancel or replace of an order that is not live (unknown, filled, cancelled, expired).
    UnknownOrder,
    /// A replace that names neither price nor quantity.
    NothingToReplace,
    /// The command's `ts` is too far from the broker's timestamp of its record. The engine has no
    /// clock: the matcher decides and refuses the command through [`Engine::reject`]; the text
    /// says by how much it was off.
    ///
    /// [`Engine::reject`]: crate::Engine::reject
    BadTimestamp(Box<str>),
    /// A cancel or replace from an account that does not own the order. The rejection goes to
    /// the sender and says nothing about the order beyond the id the sender gave.
    NotOwner,
    /// The command could not be decoded.
    Malformed(Box<str>),
}

impl RejectReason {
    /// A stable code for the reason.
    pub const fn code(&self) -> &'static str {
        match self {
            RejectReason::UnknownSymbol => "unknown_symbol",
            RejectReason::InvalidQuantity => "invalid_quantity",
            RejectReason::QuantityOffLot => "quantity_off_lot",
            RejectReason::QuantityBelowMin => "quantity_below_min",
            RejectReason::QuantityAboveMax => "quantity_above_max",
            RejectReason::InvalidPrice => "invalid_price",
            RejectReason::PriceOffTick => "price_off_tick",
            RejectReason::PriceOutOfBand => "price_out_of_band",
            RejectReason::MissingPrice => "missing_price",
            RejectReason::MarketOrderWithPrice => "market_order_with_price",
            RejectReason::MarketOrderGtc => "market_order_gtc",
            RejectReason::PostOnlyNotGtcLimit => "post_only_not_gtc_limit",
            RejectReason::PostOnlyWouldTrade => "post_only_would_trade",
            RejectReason::DuplicateOrderId => "duplicate_order_id",
            RejectReason::UnknownOrder => "unknown_order",
            RejectReason::NothingToReplace => "nothing_to_replace",
            RejectReason::BadTimestamp(_) => "bad_timestamp",
            RejectReason::NotOwner => "not_owner",
            RejectReason::Malformed(_) => "malformed",
        }
    }

    /// Extra text, for malformed commands and bad timestamps.
    pub fn detail(&self) -> Option<&str> {
        match self {
            RejectReason::Malformed(d) | RejectReason::BadTimestamp(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.detail() {
            Some(d) => write!(f, "{}: {d}", self.code()),
            None => f.write_str(self.code()),
        }
    }
}
