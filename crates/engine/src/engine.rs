//! The engine: validation, order lifecycle and market data over one book per instrument.

use crate::book::{Book, Emitter, FastBook, Resting, Taker};
use crate::command::{CancelOrder, Command, InvalidCommand, NewOrder, ReplaceOrder, Request};
use crate::event::{Event, EventKind, LevelQty, RejectReason};
use crate::instrument::{Instrument, Instruments};
use crate::name::OrderId;
use crate::types::{OrderType, Price, Qty, Side, Tif};

/// A book and the top of book last published for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot<B> {
    pub(crate) book: B,
    top: Top,
}

type Top = (Option<LevelQty>, Option<LevelQty>);

impl<B: Book> Slot<B> {
    fn current_top(&self) -> Top {
        (self.book.best(Side::Buy), self.book.best(Side::Sell))
    }

    /// Publishes the top of book if the command changed it.
    fn publish_top(&mut self, em: &mut Emitter<'_>) {
        let top = self.current_top();
        if top != self.top {
            self.top = top;
            em.emit(|| EventKind::TopOfBook {
                bid: top.0,
                ask: top.1,
            });
        }
    }
}

/// A matching engine for a set of instruments. Generic over the book so the same rules run on
/// the fast book and on the naive reference book in tests.
#[derive(Debug, Clone)]
pub struct Engine<B: Book = FastBook> {
    pub(crate) instruments: Instruments,
    pub(crate) slots: Vec<Slot<B>>,
    /// Sequence number of the next event (the first event is 1).
    pub(crate) next_seq: u64,
}

impl<B: Book> Engine<B> {
    /// An engine with empty books for `instruments`.
    pub fn new(instruments: Instruments) -> Self {
        let slots = (0..instruments.len()).map(|_| Slot::default()).collect();
        Engine {
            instruments,
            slots,
            next_seq: 1,
        }
    }

    /// The instruments this engine trades.
    pub fn instruments(&self) -> &Instruments {
        &self.instruments
    }

    /// The sequence number of the last event emitted (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The book of the instrument at `index` (configuration order).
    pub fn book(&self, index: usize) -> &B {
        &self.slots[index].book
    }

    /// Applies one command, appending its events to `out` (which is not cleared, so callers can
    /// reuse one buffer across commands and batch them).
    pub fn apply(&mut self, cmd: &Command, out: &mut Vec<Event>) {
        match cmd {
            Command::New(c) => self.new_order(c, out),
            Command::Cancel(c) => self.cancel(c, out),
            Command::Replace(c) => self.replace(c, out),
            Command::Invalid(c) => self.invalid(c, out),
        }
    }

    /// Refuses `cmd` for `reason` without applying it: one `rejected` event, numbered in
    /// sequence like any other, stamped with `ts` (the command's own `ts` may be what is
    /// refused), and addressed as the engine addresses its own rejections: to the sender, the
    /// account the command carries (a malformed command's, if it had a readable one). The book is
    /// unchanged.
    ///
    /// For checks the engine cannot make itself because they need something outside the command
    /// (the matcher's timestamp window, [`RejectReason::BadTimestamp`]). The caller decides from
    /// the input log only, so a replay decides the same.
    pub fn reject(&mut self, cmd: &Command, reason: RejectReason, ts: i64, out: &mut Vec<Event>) {
        // Addressed to the sender, as every rejection is: the refusal tells nobody else anything.
        let (order_id, symbol, request, account) = match cmd {
            Command::New(c) => (c.order_id, c.symbol, Request::New, c.account),
            Command::Cancel(c) => (c.order_id, c.symbol, Request::Cancel, c.account),
            Command::Replace(c) => (c.order_id, c.symbol, Request::Replace, c.account),
            Command::Invalid(c) => (c.order_id, c.symbol, c.request, c.account),
        };
        let mut em = Emitter::new(&mut self.next_seq, ts, symbol, out);
        em.emit(|| EventKind::Rejected {
            order_id,
            account,
            request,
            reason,
        });
    }

    /// Restores a book's contents (used by snapshot restore) and re-derives its top of book.
    pub(crate) fn restore_order(&mut self, index: usize, order: Resting) {
        self.slots[index].book.insert(order);
        let top = self.slots[index].current_top();
        self.slots[index].top = top;
    }

    fn new_order(&mut self, c: &NewOrder, out: &mut Vec<Event>) {
        let mut em = Emitter::new(&mut self.next_seq, c.ts, c.symbol, out);
        let reject = |em: &mut Emitter<'_>, reason| {
            em.emit(|| EventKind::Rejected {
                order_id: c.order_id,
                account: c.account,
                request: Request::New,
                reason,
            });
        };
        let Some(ix) = self.instruments.index(&c.symbol) else {
            return reject(&mut em, RejectReason::UnknownSymbol);
        };
        let (price, qty) = match validate_new(self.instruments.at(ix), c) {
            Ok(v) => v,
            Err(reason) => return reject(&mut em, reason),
        };
        let slot = &mut self.slots[ix];
        if slot.book.contains(&c.order_id) {
            return reject(&mut em, RejectReason::DuplicateOrderId);
        }
        if let Some(p) = price.filter(|_| c.post_only)
            && crosses_best(&slot.book, c.side, p)
        {
            return reject(&mut em, RejectReason::PostOnlyWouldTrade);
        }
        em.emit(|| EventKind::Accepted {
            order_id: c.order_id,
            account: c.account,
            side: c.side,
            order_type: c.order_type,
            tif: c.tif,
            price,
            qty,
            post_only: c.post_only,
        });
        let expire = |em: &mut Emitter<'_>, qty| {
            em.emit(|| EventKind::Expired {
                order_id: c.order_id,
                account: c.account,
                qty,
            });
        };
        if c.tif == Tif::Fok && slot.book.depth_up_to(c.side.opposite(), price, qty) < qty {
            expire(&mut em, qty);
            return;
        }
        let taker = Taker {
            id: c.order_id,
            account: c.account,
            side: c.side,
            limit: price,
            qty,
        };
        let leaves = slot.book.take(&taker, &mut em);
        if !leaves.is_zero() {
            match (c.tif, price) {
                (Tif::Gtc, Some(price)) => {
                    rest(&mut slot.book, &mut em, taker, price, leaves, c.post_only)
                }
                _ => expire(&mut em, leaves),
            }
        }
        slot.publish_top(&mut em);
    }

    fn cancel(&mut self, c: &CancelOrder, out: &mut Vec<Event>) {
        let mut em = Emitter::new(&mut self.next_seq, c.ts, c.symbol, out);
        // Ownership is checked before anything is removed, and a refusal goes to the sender
        // with nothing but the id it gave: a non-owner learns nothing about the order.
        let removed = match self.instruments.index(&c.symbol) {
            None => Err(RejectReason::UnknownSymbol),
            Some(ix) => match self.slots[ix].book.get(&c.order_id) {
                None => Err(RejectReason::UnknownOrder),
                Some(order) if order.account != c.account => Err(RejectReason::NotOwner),
                Some(_) => self.slots[ix]
                    .book
                    .remove(&c.order_id)
                    .map(|(order, total)| (ix, order, total))
                    .ok_or(RejectReason::UnknownOrder),
            },
        };
        let (ix, order, total) = match removed {
            Ok(v) => v,
            Err(reason) => {
                return em.emit(|| EventKind::Rejected {
                    order_id: c.order_id,
                    account: c.account,
                    request: Request::Cancel,
                    reason,
                });
            }
        };
        em.emit(|| EventKind::Cancelled {
            order_id: order.id,
            account: order.account,
            qty: order.open,
        });
        em.emit(|| EventKind::BookDelta {
            side: order.side,
            price: order.price,
            qty: total,
        });
        self.slots[ix].publish_top(&mut em);
    }

    fn replace(&mut self, c: &ReplaceOrder, out: &mut Vec<Event>) {
        let mut em = Emitter::new(&mut self.next_seq, c.ts, c.symbol, out);
        // Ownership first: a non-owner is refused before the replace is checked against the
        // order, so the reason it gets (`not_owner`) says nothing about the order's price,
        // quantity or flags.
        let checked = self
            .instruments
            .index(&c.symbol)
            .ok_or(RejectReason::UnknownSymbol)
            .and_then(|ix| {
                let old = self.slots[ix]
                    .book
                    .get(&c.order_id)
                    .ok_or(RejectReason::UnknownOrder)?;
                if old.account != c.account {
                    return Err(RejectReason::NotOwner);
                }
                let (price, qty) = validate_replace(self.instruments.at(ix), c)?;
                let (price, qty) = (price.unwrap_or(old.price), qty.unwrap_or(old.open));
                let keeps_priority = price == old.price && qty <= old.open;
                if !keeps_priority
                    && old.post_only
                    && crosses_best(&self.slots[ix].book, old.side, price)
                {
                    return Err(RejectReason::PostOnlyWouldTrade);
                }
                Ok((ix, old, price, qty, keeps_priority))
            });
        let (ix, old, price, qty, keeps_priority) = match checked {
            Ok(v) => v,
            Err(reason) => {
                return em.emit(|| EventKind::Rejected {
                    order_id: c.order_id,
                    account: c.account,
                    request: Request::Replace,
                    reason,
                });
            }
        };
        em.emit(|| EventKind::Replaced {
            order_id: old.id,
            account: old.account,
            side: old.side,
            old_price: old.price,
            price,
            old_qty: old.open,
            qty,
            priority_kept: keeps_priority,
        });
        let slot = &mut self.slots[ix];
        if keeps_priority {
            if qty < old.open
                && let Some(total) = slot.book.reduce(&old.id, qty)
            {
                em.emit(|| EventKind::BookDelta {
                    side: old.side,
                    price,
                    qty: total,
                });
            }
        } else {
            if let Some((_, total)) = slot.book.remove(&old.id) {
                em.emit(|| EventKind::BookDelta {
                    side: old.side,
                    price: old.price,
                    qty: total,
                });
            }
            // A move is a fresh arrival at the new price: it may trade at once (exchange-core's
            // "move"), and what is left goes to the back of the level.
            let taker = Taker {
                id: old.id,
                account: old.account,
                side: old.side,
                limit: Some(price),
                qty,
            };
            let leaves = slot.book.take(&taker, &mut em);
            if !leaves.is_zero() {
                rest(&mut slot.book, &mut em, taker, price, leaves, old.post_only);
            }
        }
        slot.publish_top(&mut em);
    }

    fn invalid(&mut self, c: &InvalidCommand, out: &mut Vec<Event>) {
        let mut em = Emitter::new(&mut self.next_seq, c.ts, c.symbol, out);
        em.emit(|| EventKind::Rejected {
            order_id: c.order_id,
            account: c.account,
            request: c.request,
            reason: RejectReason::Malformed(c.detail.clone()),
        });
    }
}

/// Rests the remainder of `taker` and publishes the level's new total.
fn rest<B: Book>(
    book: &mut B,
    em: &mut Emitter<'_>,
    taker: Taker,
    price: Price,
    open: Qty,
    post_only: bool,
) {
    let total = book.insert(Resting {
        id: taker.id,
        account: taker.account,
        side: taker.side,
        price,
        open,
        post_only,
    });
    em.emit(|| EventKind::BookDelta {
        side: taker.side,
        price,
        qty: total,
    });
}

/// True when an order on `side` at `price` would trade with the best opposite level.
fn crosses_best<B: Book>(book: &B, side: Side, price: Price) -> bool {
    book.best(side.opposite())
        .is_some_and(|best| side.crosses(price, best.price))
}

/// Checks a new order against its instrument, without the book (stateless: the gateway runs
/// the same checks before an order reaches Kafka); returns its limit price (if any) and quantity.
/// The symbol is the caller's to look up ([`RejectReason::UnknownSymbol`]).
#[inline]
pub fn validate_new(inst: &Instrument, c: &NewOrder) -> Result<(Option<Price>, Qty), RejectReason> {
    let price = match (c.order_type, c.price) {
        (OrderType::Limit, None) => return Err(RejectReason::MissingPrice),
        (OrderType::Market, Some(_)) => return Err(RejectReason::MarketOrderWithPrice),
        (OrderType::Market, None) if c.tif == Tif::Gtc => {
            return Err(RejectReason::MarketOrderGtc);
        }
        (OrderType::Market, None) => None,
        (OrderType::Limit, Some(p)) => Some(p),
    };
    if c.post_only && (c.order_type != OrderType::Limit || c.tif != Tif::Gtc) {
        return Err(RejectReason::PostOnlyNotGtcLimit);
    }
    let price = price.map(|p| inst.price(p)).transpose()?;
    let qty = inst.qty(c.qty)?;
    Ok((price, qty))
}

/// Checks a replace against its instrument, without the live order (stateless, like
/// [`validate_new`]); returns the new price and open quantity where the replace names them (the
/// engine keeps the order's own for the others). The minimum quantity does not apply: a partly
/// filled order may already be below it.
#[inline]
pub fn validate_replace(
    inst: &Instrument,
    c: &ReplaceOrder,
) -> Result<(Option<Price>, Option<Qty>), RejectReason> {
    if c.price.is_none() && c.qty.is_none() {
        return Err(RejectReason::NothingToReplace);
    }
    let price = c.price.map(|p| inst.price(p)).transpose()?;
    let qty = c.qty.map(|q| inst.open_qty(q)).transpose()?;
    Ok((price, qty))
}

impl<B: Book> Engine<B> {
    /// True when `id` is live in the book of the instrument at `index`.
    pub fn is_live(&self, index: usize, id: &OrderId) -> bool {
        self.slots[index].book.contains(id)
    }
}
