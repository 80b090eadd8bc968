//! Order state, folded from the `executions` topic, and trade rows from the `trades` topic.
//!
//! [`OrderFold`] turns each execution into the [`OrderStateRow`]s it changes. It is pure and
//! synchronous: the worker hands it decoded events in topic order and a lookup into the store for
//! orders it does not hold, and writes the rows it returns.
//!
//! An order is known by its symbol and id: order ids are unique per book only, and one source
//! partition carries several books, so two symbols may each have an order `o-1`. The cache, the
//! store lookup and the store's key (`orders_by_symbol`) all use the pair.
//!
//! ## Rules
//! - `accepted` starts an order: [`OrderStatus::New`], its side, account, limit price and
//!   quantity, nothing filled (`filled_qty` 0 at the quantity's scale, `notional` 0, no
//!   `avg_price`). It is not looked up in the store (a new order has no state; this saves a
//!   read per order) and replaces whatever state an earlier, finished order with the same id
//!   left (the engine lets a finished order's id be reused).
//! - `trade` fills two orders, the maker (side opposite to `taker_side`) and the taker, in that
//!   order: `filled_qty += qty`, `notional += price × qty` (exact), `avg_price` = `notional /
//!   filled_qty` rounded half-even to the most digits of any fill price + 4 (at most 18), and the
//!   status [`Filled`](OrderStatus::Filled) when the event says the order has nothing left
//!   (`*_leaves` is zero), else [`PartiallyFilled`](OrderStatus::PartiallyFilled).
//! - `cancelled` → [`Cancelled`](OrderStatus::Cancelled); `expired` →
//!   [`Expired`](OrderStatus::Expired), even after partial fills (the rest was dropped; the fills
//!   stay in `filled_qty`).
//! - `replaced`: the engine's `qty` is the new *open* quantity, fills excluded, so the ordered
//!   quantity becomes `filled_qty + qty`, and the price the new price. The status stays
//!   [`New`](OrderStatus::New) or [`PartiallyFilled`](OrderStatus::PartiallyFilled) (by
//!   `filled_qty`). A replace that moves the order may trade at once: those trades follow as
//!   their own events.
//! - `rejected` of a *new order* writes a [`Rejected`](OrderStatus::Rejected) row — unless the
//!   order id already names a known order (cached or in the store): a rejected attempt
//!   (`duplicate_order_id`, or a reuse of a finished order's id) must not overwrite the real
//!   order. The row has the event's account (a new order's own; `""` when the engine could not
//!   read one, e.g. a malformed command), side [`Side::Buy`] (a placeholder: the event carries
//!   no side and the row has no "unknown" one), no price, quantity 0 and nothing filled. A
//!   rejection without an order id (an unreadable command) writes nothing.
//! - `rejected` of a cancel or replace changes nothing: the order it named is as it was.
//! - `book_delta` and `top_of_book` never appear on `executions`; they change nothing.
//!
//! Every row carries the event's `source_partition`, `seq` and event time (`updated_ts_ms`).
//!
//! ## Replays
//! A row's `(source_partition, seq)` names the last execution folded into it. An event whose
//! `seq` is at or below that of the order's known state (same partition) was folded already — a
//! replay after a restart, when the store got ahead of the committed offsets — and is skipped
//! ([`FoldStats::duplicates`]). So re-folding a stretch of the topic never double-counts a fill.
//!
//! An event for an order with no known state at all (neither cached nor in the store; only
//! possible when the topic was trimmed before the order's acceptance) is skipped
//! ([`FoldStats::orphans`]): without its acceptance the row's side and quantity are unknown.
//!
//! ## Cache and exactness
//! The fold caches the rows it has returned, and nothing else: every fold decision depends only
//! on an order's row. The row carries the exact fill sum, [`OrderStateRow::notional`] (Σ price ×
//! qty, at its natural scale: the largest price scale + qty scale of the fills), so the average
//! price is exact however many fills an order gets, and an order loaded from the store (after a
//! restart or rebalance) resumes from exactly the state it would have had in the cache: a fold
//! that restarts anywhere writes the same rows as one that never stopped. (The average's scale
//! is recovered exactly from the stored `avg_price`: see `avg_scale`.)
//!
//! Terminal orders (filled, cancelled, expired, rejected) are dropped by
//! [`OrderFold::evict_terminal`], which the worker calls once the rows returned so far are in
//! the store (not earlier: a later event of the same batch may still need them, e.g. to
//! recognise a known id). Live orders stay cached, so the cache holds at most the partition's
//! resting orders — what the matcher's book holds — plus the terminal orders of one batch.
//!
//! ## Errors
//! A quantity or notional that does not fit a [`Decimal`] exactly (a mantissa beyond 64 bits, or
//! a notional scale above 18) is a [`FoldError::Overflow`]: the event is poison (dead-letter it)
//! and the fold is left as it was before it. Nothing is ever rounded to make it fit: a stored
//! notional that lost digits would make the next average differ from an uninterrupted run's.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry as Slot;

use tradestream_codec::avro::{DecodedEvent, DecodedKind};
use tradestream_engine::decimal::exact::{Wide, vwap_scale};
use tradestream_engine::{Decimal, OrderId, Request, Side, Symbol};
use tradestream_store::model::{OrderStateRow, OrderStatus, TradeRow};

/// Why an execution could not be folded. The event is poison: the fold is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    /// A quantity or the fill notional does not fit a 64-bit decimal at its natural scale (or
    /// the average price does not fit at its scale).
    #[error("order {order_id}: {what} does not fit")]
    Overflow {
        /// The order.
        order_id: String,
        /// What overflowed (`filled_qty`, `qty`, `notional`, `avg_price`).
        what: &'static str,
    },
}

/// What the fold skipped, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FoldStats {
    /// Order updates already folded (a replayed event): skipped.
    pub duplicates: u64,
    /// Order updates for an order with no known state: skipped.
    pub orphans: u64,
    /// Rejections that changed no order (of a cancel or replace, of a known order id, or
    /// without an order id).
    pub rejections_ignored: u64,
}

/// What identifies an order: its book and its id within it.
type OrderKey = (Symbol, OrderId);

/// One order's state: its row and nothing more (and the key the row's symbol and id spell), so
/// that a row loaded from the store is the same state as the cached one it was written from.
#[derive(Debug, Clone)]
struct Entry {
    key: OrderKey,
    row: OrderStateRow,
}

impl Entry {
    /// The state in `row` (new, or loaded from the store) of the order `key`.
    fn from_row(key: OrderKey, row: OrderStateRow) -> Entry {
        Entry { key, row }
    }

    /// True when `ev` is already folded into this state.
    fn has_seen(&self, ev: &DecodedEvent) -> bool {
        self.row.source_partition == ev.source_partition && self.row.seq >= seq_of(ev)
    }

    /// Records `ev` as the last change.
    fn stamp(&mut self, ev: &DecodedEvent) {
        self.row.updated_ts_ms = ev.ts;
        self.row.source_partition = ev.source_partition;
        self.row.seq = seq_of(ev);
    }

    /// Adds one fill.
    fn fill(&mut self, price: Decimal, qty: Decimal, leaves: Decimal) -> Result<(), FoldError> {
        let overflow = |what| FoldError::Overflow {
            order_id: self.row.order_id.clone(),
            what,
        };
        let filled = Wide::of(self.row.filled_qty)
            .checked_add(Wide::of(qty))
            .ok_or_else(|| overflow("filled_qty"))?;
        let notional = Wide::of(self.row.notional)
            .checked_add(Wide::product(price, qty))
            .ok_or_else(|| overflow("notional"))?;
        let avg_price = if filled.is_zero() {
            None
        } else {
            Some(
                notional
                    .div_round(filled, avg_scale(self.row.avg_price, price))
                    .ok_or_else(|| overflow("avg_price"))?,
            )
        };
        let filled_qty = filled
            .to_exact_decimal()
            .ok_or_else(|| overflow("filled_qty"))?;
        let notional = notional
            .to_exact_decimal()
            .ok_or_else(|| overflow("notional"))?;
        // Everything fits: commit.
        self.row.filled_qty = filled_qty;
        self.row.notional = notional;
        self.row.avg_price = avg_price;
        self.row.status = if leaves.mantissa() == 0 {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        Ok(())
    }
}

/// The scale of the average price after a fill at `price`: [`vwap_scale`] of the most digits of
/// any fill price. The earlier fills' prices are not in the row, but their average is, at
/// `vwap_scale(earlier price digits)`; `vwap_scale` is monotone, so the largest of that scale
/// and `vwap_scale(price.scale())` is exactly `vwap_scale` of the largest price scale.
fn avg_scale(avg_price: Option<Decimal>, price: Decimal) -> u8 {
    let this = vwap_scale(price.scale());
    avg_price.map_or(this, |avg| avg.scale().max(this))
}

/// The event's seq as stored (seqs stay far below 2^63; saturate rather than wrap).
fn seq_of(ev: &DecodedEvent) -> i64 {
    i64::try_from(ev.seq).unwrap_or(i64::MAX)
}

/// True for the statuses after which an order gets no more executions.
fn is_terminal(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Filled | OrderStatus::Cancelled | OrderStatus::Expired | OrderStatus::Rejected
    )
}

/// Folds the executions of one source partition into order states. See the module
/// documentation for the rules.
#[derive(Debug, Default)]
pub struct OrderFold {
    orders: BTreeMap<OrderKey, Entry>,
    stats: FoldStats,
}

impl OrderFold {
    /// An empty fold.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`OrderFold::apply`] with a lookup that can fail (a store, a cache): the first failure
    /// is returned as the outer error, the fold's own verdict inside.
    pub fn try_apply<E>(
        &mut self,
        ev: &DecodedEvent,
        mut lookup: impl FnMut(&str, &str) -> Result<Option<OrderStateRow>, E>,
    ) -> Result<Result<Vec<OrderStateRow>, FoldError>, E> {
        let mut failed = None;
        let folded = self.apply(ev, |symbol, id| {
            lookup(symbol, id).unwrap_or_else(|e| {
                failed.get_or_insert(e);
                None
            })
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(folded),
        }
    }

    /// Folds one execution; returns the order states it changed, in order (maker before taker
    /// for a trade). `lookup(symbol, order_id)` fetches an order's stored state when the fold
    /// does not hold it.
    pub fn apply(
        &mut self,
        ev: &DecodedEvent,
        mut lookup: impl FnMut(&str, &str) -> Option<OrderStateRow>,
    ) -> Result<Vec<OrderStateRow>, FoldError> {
        let sym = ev.symbol;
        let changed = match &ev.kind {
            DecodedKind::Accepted {
                order_id,
                account,
                side,
                price,
                qty,
                ..
            } => {
                // Judged against the order's stored state, not only the cache: a late
                // duplicate after a restart or rebalance must not start the order afresh.
                if self
                    .load((sym, *order_id), &mut lookup)
                    .is_some_and(|e| e.has_seen(ev))
                {
                    self.stats.duplicates += 1;
                    return Ok(Vec::new());
                }
                let row = OrderStateRow {
                    order_id: order_id.to_string(),
                    account: account.to_string(),
                    symbol: ev.symbol.to_string(),
                    side: *side,
                    status: OrderStatus::New,
                    price: *price,
                    qty: *qty,
                    filled_qty: Decimal::new(0, qty.scale()),
                    avg_price: None,
                    notional: Decimal::from_int(0),
                    updated_ts_ms: ev.ts,
                    source_partition: ev.source_partition,
                    seq: seq_of(ev),
                };
                vec![Entry::from_row((sym, *order_id), row)]
            }
            DecodedKind::Rejected {
                order_id,
                account,
                request,
                ..
            } => {
                if *request != Request::New || order_id.as_str().is_empty() {
                    self.stats.rejections_ignored += 1;
                    return Ok(Vec::new());
                }
                match self.load((sym, *order_id), &mut lookup) {
                    Some(e) if e.has_seen(ev) => {
                        self.stats.duplicates += 1;
                        return Ok(Vec::new());
                    }
                    // A known order stays as it was; only an earlier rejected attempt with the
                    // same id gives way to the newer one.
                    Some(e) if e.row.status != OrderStatus::Rejected => {
                        self.stats.rejections_ignored += 1;
                        return Ok(Vec::new());
                    }
                    _ => {}
                }
                let row = OrderStateRow {
                    order_id: order_id.to_string(),
                    account: account.to_string(),
                    symbol: ev.symbol.to_string(),
                    side: Side::Buy,
                    status: OrderStatus::Rejected,
                    price: None,
                    qty: Decimal::from_int(0),
                    filled_qty: Decimal::from_int(0),
                    avg_price: None,
                    notional: Decimal::from_int(0),
                    updated_ts_ms: ev.ts,
                    source_partition: ev.source_partition,
                    seq: seq_of(ev),
                };
                vec![Entry::from_row((sym, *order_id), row)]
            }
            DecodedKind::Trade {
                price,
                qty,
                maker_order_id,
                maker_leaves,
                taker_order_id,
                taker_leaves,
                ..
            } => {
                let mut changed: Vec<Entry> = Vec::with_capacity(2);
                for (id, leaves) in [
                    (maker_order_id, maker_leaves),
                    (taker_order_id, taker_leaves),
                ] {
                    // The same order on both sides cannot happen (the engine never matches an
                    // order with itself); should it, the second fill builds on the first.
                    let known = match changed.iter().position(|e| e.key == (sym, *id)) {
                        Some(i) => Some(changed.remove(i)),
                        None => self.updatable((sym, *id), ev, &mut lookup),
                    };
                    let Some(mut e) = known else { continue };
                    e.fill(*price, *qty, *leaves)?;
                    e.stamp(ev);
                    changed.push(e);
                }
                changed
            }
            DecodedKind::Cancelled { order_id, .. } => self
                .updatable((sym, *order_id), ev, &mut lookup)
                .map(|mut e| {
                    e.row.status = OrderStatus::Cancelled;
                    e.stamp(ev);
                    e
                })
                .into_iter()
                .collect(),
            DecodedKind::Expired { order_id, .. } => self
                .updatable((sym, *order_id), ev, &mut lookup)
                .map(|mut e| {
                    e.row.status = OrderStatus::Expired;
                    e.stamp(ev);
                    e
                })
                .into_iter()
                .collect(),
            DecodedKind::Replaced {
                order_id,
                price,
                qty,
                ..
            } => match self.updatable((sym, *order_id), ev, &mut lookup) {
                None => Vec::new(),
                Some(mut e) => {
                    let ordered = Wide::of(e.row.filled_qty)
                        .checked_add(Wide::of(*qty))
                        .and_then(Wide::to_exact_decimal)
                        .ok_or_else(|| FoldError::Overflow {
                            order_id: order_id.to_string(),
                            what: "qty",
                        })?;
                    e.row.qty = ordered;
                    e.row.price = Some(*price);
                    e.row.status = if e.row.filled_qty.mantissa() == 0 {
                        OrderStatus::New
                    } else {
                        OrderStatus::PartiallyFilled
                    };
                    e.stamp(ev);
                    vec![e]
                }
            },
            DecodedKind::BookDelta { .. } | DecodedKind::TopOfBook { .. } => Vec::new(),
        };
        // Everything computed: commit.
        let rows = changed.iter().map(|e| e.row.clone()).collect();
        for e in changed {
            self.orders.insert(e.key, e);
        }
        Ok(rows)
    }

    /// The order's state, from the cache or else the store (then cached).
    fn load(
        &mut self,
        key: OrderKey,
        lookup: &mut impl FnMut(&str, &str) -> Option<OrderStateRow>,
    ) -> Option<&Entry> {
        match self.orders.entry(key) {
            Slot::Occupied(cached) => Some(cached.into_mut()),
            Slot::Vacant(slot) => {
                let row = lookup(key.0.as_str(), key.1.as_str())?;
                Some(slot.insert(Entry::from_row(key, row)))
            }
        }
    }

    /// A copy of the order's state to update with `ev`, or `None` (counted) when the order is
    /// unknown or `ev` is already folded into it.
    fn updatable(
        &mut self,
        key: OrderKey,
        ev: &DecodedEvent,
        lookup: &mut impl FnMut(&str, &str) -> Option<OrderStateRow>,
    ) -> Option<Entry> {
        match self.load(key, lookup) {
            None => {
                self.stats.orphans += 1;
                None
            }
            Some(e) if e.has_seen(ev) => {
                self.stats.duplicates += 1;
                None
            }
            Some(e) => Some(e.clone()),
        }
    }

    /// Drops the filled, cancelled, expired and rejected orders from the cache; returns how
    /// many. Call it once the rows returned so far are in the store.
    pub fn evict_terminal(&mut self) -> usize {
        let before = self.orders.len();
        self.orders.retain(|_, e| !is_terminal(e.row.status));
        before - self.orders.len()
    }

    /// The cached state of the order `order_id` of `symbol`.
    pub fn get(&self, symbol: &str, order_id: &str) -> Option<&OrderStateRow> {
        let key = (Symbol::new(symbol).ok()?, OrderId::new(order_id).ok()?);
        self.orders.get(&key).map(|e| &e.row)
    }

    /// How many orders the cache holds.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// True when the cache holds no order.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// What the fold skipped so far.
    pub fn stats(&self) -> FoldStats {
        self.stats
    }
}

/// The trade row of a `trade` event from the `trades` topic (`None` for any other event).
pub fn trade_row(ev: &DecodedEvent) -> Option<TradeRow> {
    let DecodedKind::Trade {
        price,
        qty,
        maker_order_id,
        maker_account,
        taker_order_id,
        taker_account,
        taker_side,
        ..
    } = &ev.kind
    else {
        return None;
    };
    Some(TradeRow {
        symbol: ev.symbol.to_string(),
        source_partition: ev.source_partition,
        seq: seq_of(ev),
        ts_ms: ev.ts,
        price: *price,
        qty: *qty,
        maker_order_id: maker_order_id.to_string(),
        maker_account: maker_account.to_string(),
        taker_order_id: taker_order_id.to_string(),
        taker_account: taker_account.to_string(),
        taker_side: *taker_side,
    })
}

#[cfg(test)]
mod tests;
