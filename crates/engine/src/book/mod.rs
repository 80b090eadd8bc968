//! The order book contract and its implementations.
//!
//! The [`Engine`](crate::Engine) owns every rule that is not about the book's shape (validation,
//! time in force, post-only, replace semantics, top-of-book). A [`Book`] only stores resting
//! orders in price-time priority and matches an incoming order against them. Two books implement
//! it: [`FastBook`] for production, and [`ReferenceBook`], a deliberately naive one the tests run
//! beside it on the same command streams.

mod fast;
mod reference;

pub use fast::FastBook;
pub use reference::ReferenceBook;

use crate::event::{Event, EventKind, LevelQty};
use crate::name::{Account, OrderId, Symbol};
use crate::types::{Price, Qty, Seq, Side};

/// An order resting in a book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resting {
    /// Client id.
    pub id: OrderId,
    /// Owner.
    pub account: Account,
    /// Bid or ask.
    pub side: Side,
    /// Limit price, in ticks.
    pub price: Price,
    /// Open quantity, in lots (never zero while resting).
    pub open: Qty,
    /// Post-only flag (kept for the rule on moving a post-only order).
    pub post_only: bool,
}

/// An incoming order being matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taker {
    /// Client id.
    pub id: OrderId,
    /// Owner.
    pub account: Account,
    /// Side of the incoming order; it trades against the opposite side.
    pub side: Side,
    /// Limit price; `None` trades at any price (market order).
    pub limit: Option<Price>,
    /// Quantity to fill.
    pub qty: Qty,
}

/// Numbers events and appends them to the caller's buffer.
#[derive(Debug)]
pub struct Emitter<'a> {
    next_seq: &'a mut u64,
    ts: i64,
    symbol: Symbol,
    out: &'a mut Vec<Event>,
}

impl<'a> Emitter<'a> {
    /// Events for one command: numbered from `*next_seq`, stamped with `ts` and `symbol`.
    pub fn new(next_seq: &'a mut u64, ts: i64, symbol: Symbol, out: &'a mut Vec<Event>) -> Self {
        Emitter {
            next_seq,
            ts,
            symbol,
            out,
        }
    }

    /// Appends one event, made by `kind`, with the next sequence number.
    ///
    /// The event is built by a closure once the buffer has room for it, so it is written in
    /// place. An `Event` is 264 bytes: built first and then pushed (`Vec::push` may grow the
    /// buffer in between), the compiler may keep it on the stack and copy it with a `memcpy`
    /// call, and did so for every event once `RejectReason` gained `BadTimestamp` (8 % more
    /// instructions on the engine bench).
    #[inline]
    pub fn emit(&mut self, kind: impl FnOnce() -> EventKind) {
        let seq = Seq(*self.next_seq);
        *self.next_seq += 1;
        let (ts, symbol) = (self.ts, self.symbol);
        // `extend` with one exactly-sized item reserves first, then writes the item in place.
        self.out.extend(std::iter::once_with(|| Event {
            seq,
            ts,
            symbol,
            kind: kind(),
        }));
    }
}

/// Storage and matching of resting orders for one instrument.
///
/// Implementations must be deterministic: the same calls give the same results and events.
pub trait Book: Default {
    /// The live order with this id.
    fn get(&self, id: &OrderId) -> Option<Resting>;

    /// True when an order with this id is live.
    fn contains(&self, id: &OrderId) -> bool {
        self.get(id).is_some()
    }

    /// The best level on `side`: highest bid or lowest ask.
    fn best(&self, side: Side) -> Option<LevelQty>;

    /// Quantity resting on `side` at prices an incoming order limited to `limit` would trade
    /// with (all prices when `None`); it may stop counting once `cap` is reached.
    fn depth_up_to(&self, side: Side, limit: Option<Price>, cap: Qty) -> Qty;

    /// Matches `taker` against the opposite side in price-time priority while it crosses.
    /// Emits one `Trade` per fill (at the maker's price) and, for each level it touched, one
    /// `BookDelta` with the level's new total once it is done with that level. Returns what is
    /// left of the taker.
    ///
    /// Self-trade prevention has its place here, per fill, between finding the maker and
    /// filling it; this rule is that an account may trade with itself.
    fn take(&mut self, taker: &Taker, out: &mut Emitter<'_>) -> Qty;

    /// Puts `order` at the back of its price level. Returns the level's new total.
    /// The id must not be live and `order.open` must not be zero.
    fn insert(&mut self, order: Resting) -> Qty;

    /// Removes a live order. Returns it and its level's new total.
    fn remove(&mut self, id: &OrderId) -> Option<(Resting, Qty)>;

    /// Lowers a live order's open quantity in place, keeping its queue position. Returns the
    /// level's new total. `open` must be between 1 and the current open quantity.
    fn reduce(&mut self, id: &OrderId, open: Qty) -> Option<Qty>;

    /// Visits every resting order: bids best to worst, then asks best to worst, and within a
    /// level in queue (time) order.
    fn for_each(&self, f: impl FnMut(&Resting));

    /// Number of resting orders.
    fn len(&self) -> usize;

    /// True when nothing rests.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
