//! # tradestream-engine
//!
//! A pure, synchronous, deterministic price-time matching engine. No I/O, no clock, no floats,
//! no hash-order iteration in outputs: the same commands always give byte-identical events.
//!
//! ## Layout
//! - [`decimal`]: exact decimal strings at the edges ↔ integer ticks and lots inside;
//!   [`decimal::exact`], 128-bit exact sums and half-even rounded averages for the workers.
//! - [`instrument`]: tick, lot, quantity limits and price band per symbol.
//! - [`command`] and [`event`]: what goes in and what comes out, as values.
//! - [`engine`]: validation, order lifecycle (time in force, post-only, cancel, replace) and
//!   market data (L2 deltas, top of book), over one [`Book`] per instrument.
//! - [`book`]: the [`Book`] contract, the production [`FastBook`] and the naive
//!   [`ReferenceBook`] the tests compare it with.
//! - [`snapshot`]: canonical snapshot, restore and state hash.
//!
//! ## Semantics
//! - Price-time priority; a trade executes at the resting (maker) order's price.
//! - Every valid new order is `accepted`, then trades, then rests (GTC limit) or `expired`
//!   (IOC, market, or FOK that cannot fill completely at once — FOK then trades nothing).
//! - Post-only limit orders are rejected if they would trade on arrival.
//! - Replace: the same price with a lower (or equal) open quantity keeps the queue position;
//!   any other change removes the order and re-enters it at the back of its new level, where it
//!   may trade at once. Moving a post-only order to a crossing price is rejected.
//! - Only an order's owner may cancel or replace it: a cancel or replace carries the sender's
//!   account, and one from another account is rejected (`not_owner`) before anything about the
//!   order is looked at, so the refusal tells the sender nothing about it.
//! - A `rejected` event names the account to tell: the sender's (a new order's own account, the
//!   account a cancel or replace carried, or the account a malformed command carried), never the
//!   owner of an order someone else named; empty only when a malformed command had no readable
//!   account.
//! - [`Engine::reject`] refuses a command for a reason decided outside the engine (the matcher's
//!   timestamp window, `bad_timestamp`): one `rejected` event in sequence, addressed to the
//!   sender, and the book untouched. The engine itself still reads no clock.
//! - Each command's events are numbered with one per-engine counter, contiguous from 1:
//!   lifecycle events first, then `book_delta` per level changed, then `top_of_book` if the best
//!   bid or ask changed.
//!
//! ## Invariants
//! - At rest the book is never crossed: best bid < best ask.
//! - Per order, accepted quantity + replace changes = filled + resting + cancelled + expired.
//! - Within a level, orders fill in arrival order (a priority-keeping replace keeps its place).
//! - Sequence numbers have no gaps; events never depend on wall-clock time or hash order.
//!
//! ## Limits
//! Identifiers are at most 40 bytes; prices and quantities fit in 64 bits of ticks and lots
//! (decimals have at most 18 fractional digits).
//!
//! ## Complexity
//! With L price levels on a side: new order O(log L + fills), cancel O(1) (O(log L) when a
//! level empties), priority-keeping replace O(1), move O(log L + fills), FOK check O(levels
//! crossed). The fast book recycles nodes and levels, so at steady state a command allocates
//! nothing; the caller reuses one event buffer.

pub mod book;
pub mod command;
pub mod decimal;
pub mod engine;
pub mod event;
pub mod instrument;
pub mod name;
pub mod snapshot;
pub mod types;

#[cfg(test)]
mod tests;

pub use book::{Book, FastBook, ReferenceBook};
pub use command::{CancelOrder, Command, InvalidCommand, NewOrder, ReplaceOrder, Request};
pub use decimal::Decimal;
pub use engine::Engine;
pub use event::{Event, EventKind, LevelQty, RejectReason};
pub use instrument::{Instrument, InstrumentError, InstrumentSpec, Instruments};
pub use name::{Account, Name, NameTooLong, OrderId, Symbol};
pub use snapshot::SnapshotError;
pub use types::{OrderType, Price, Qty, Seq, Side, Tif};
