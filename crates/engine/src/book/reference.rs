//! A deliberately naive book: one vector of orders with arrival numbers, searched linearly.
//! It exists so the tests can run the fast book beside something obviously right; it is never
//! used in production.

use super::{Book, Emitter, Resting, Taker};
use crate::event::{EventKind, LevelQty};
use crate::name::OrderId;
use crate::types::{Price, Qty, Side};

/// The reference book. Every operation is O(n).
#[derive(Debug, Default, Clone)]
pub struct ReferenceBook {
    /// (arrival number, order); arrival numbers only grow.
    orders: Vec<(u64, Resting)>,
    arrivals: u64,
}

impl ReferenceBook {
    fn level_total(&self, side: Side, price: Price) -> Qty {
        Qty(self
            .orders
            .iter()
            .filter(|(_, o)| o.side == side && o.price == price)
            .map(|(_, o)| o.open.0)
            .sum())
    }

    /// Better-first ordering of two prices on `side`.
    fn better(side: Side, a: Price, b: Price) -> bool {
        match side {
            Side::Buy => a > b,
            Side::Sell => a < b,
        }
    }

    fn sorted(&self) -> Vec<(u64, Resting)> {
        let mut v = self.orders.clone();
        v.sort_by(|(ta, a), (tb, b)| {
            let side_rank = |s: Side| matches!(s, Side::Sell);
            side_rank(a.side)
                .cmp(&side_rank(b.side))
                .then_with(|| match a.side {
                    Side::Buy => b.price.cmp(&a.price),
                    Side::Sell => a.price.cmp(&b.price),
                })
                .then(ta.cmp(tb))
        });
        v
    }
}

impl Book for ReferenceBook {
    fn get(&self, id: &OrderId) -> Option<Resting> {
        self.orders
            .iter()
            .find(|(_, o)| o.id == *id)
            .map(|(_, o)| *o)
    }

    fn best(&self, side: Side) -> Option<LevelQty> {
        let price = self
            .orders
            .iter()
            .filter(|(_, o)| o.side == side)
            .map(|(_, o)| o.price)
            .reduce(|a, b| if Self::better(side, b, a) { b } else { a })?;
        Some(LevelQty {
            price,
            qty: self.level_total(side, price),
        })
    }

    fn depth_up_to(&self, side: Side, limit: Option<Price>, _cap: Qty) -> Qty {
        let taker = side.opposite();
        Qty(self
            .orders
            .iter()
            .filter(|(_, o)| o.side == side && limit.is_none_or(|l| taker.crosses(l, o.price)))
            .map(|(_, o)| o.open.0)
            .sum())
    }

    fn take(&mut self, taker: &Taker, out: &mut Emitter<'_>) -> Qty {
        let maker_side = taker.side.opposite();
        let mut leaves = taker.qty;
        while !leaves.is_zero() {
            let Some(best) = self.best(maker_side) else {
                break;
            };
            if taker
                .limit
                .is_some_and(|l| !taker.side.crosses(l, best.price))
            {
                break;
            }
            // Fill the level's orders oldest first.
            while !leaves.is_zero() {
                let Some(pos) = self
                    .orders
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, o))| o.side == maker_side && o.price == best.price)
                    .min_by_key(|(_, (t, _))| *t)
                    .map(|(i, _)| i)
                else {
                    break;
                };
                let maker = &mut self.orders[pos].1;
                let fill = maker.open.min(leaves);
                maker.open.0 -= fill.0;
                leaves.0 -= fill.0;
                let maker = *maker;
                out.emit(|| EventKind::Trade {
                    price: best.price,
                    qty: fill,
                    maker_order_id: maker.id,
                    maker_account: maker.account,
                    maker_leaves: maker.open,
                    taker_order_id: taker.id,
                    taker_account: taker.account,
                    taker_side: taker.side,
                    taker_leaves: leaves,
                });
                if maker.open.is_zero() {
                    self.orders.remove(pos);
                }
            }
            out.emit(|| EventKind::BookDelta {
                side: maker_side,
                price: best.price,
                qty: self.level_total(maker_side, best.price),
            });
        }
        leaves
    }

    fn insert(&mut self, order: Resting) -> Qty {
        self.arrivals += 1;
        self.orders.push((self.arrivals, order));
        self.level_total(order.side, order.price)
    }

    fn remove(&mut self, id: &OrderId) -> Option<(Resting, Qty)> {
        let pos = self.orders.iter().position(|(_, o)| o.id == *id)?;
        let (_, order) = self.orders.remove(pos);
        Some((order, self.level_total(order.side, order.price)))
    }

    fn reduce(&mut self, id: &OrderId, open: Qty) -> Option<Qty> {
        let (_, order) = self.orders.iter_mut().find(|(_, o)| o.id == *id)?;
        order.open = open;
        let (side, price) = (order.side, order.price);
        Some(self.level_total(side, price))
    }

    fn for_each(&self, mut f: impl FnMut(&Resting)) {
        for (_, o) in self.sorted() {
            f(&o);
        }
    }

    fn len(&self) -> usize {
        self.orders.len()
    }
}
