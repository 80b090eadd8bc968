//! The production book: price levels in ordered maps, a FIFO per level as an intrusive doubly
//! linked list through a slab of nodes, and an id → node index.
//!
//! Costs (L = price levels on a side, n = orders touched):
//! - insert: O(log L) to find or create the level, then O(1) append;
//! - cancel / remove: O(1) hash lookup and unlink; O(log L) only when the level empties;
//! - reduce in place: O(1);
//! - take: O(1) to find the best level, O(log L) per level emptied, plus O(1) per fill;
//! - best: O(1): each side's best level is kept beside its tree, and found again in the tree
//!   (O(log L)) only when that level empties.
//!
//! Nodes and levels are recycled through free lists, so a book at steady state allocates
//! nothing per command.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::{Book, Emitter, Resting, Taker};
use crate::event::{EventKind, LevelQty};
use crate::name::OrderId;
use crate::types::{Price, Qty, Side};

/// Index of a side in per-side arrays.
const fn side_ix(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// "No node" in the intrusive list.
const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    order: Resting,
    prev: u32,
    next: u32,
    level: u32,
}

#[derive(Debug, Clone)]
struct Level {
    head: u32,
    tail: u32,
    total: u64,
}

/// The fast order book. See the module documentation for its layout and costs.
///
/// Invariants (checked by `check_invariants` in tests):
/// - every live order is in `index`, in exactly one level's list, and on the level of its price;
/// - a level's `total` is the sum of its orders' open quantities, and no level is empty;
/// - the best bid is below the best ask (the engine only rests what does not cross);
/// - `tops` holds each side's best price and level, as its tree would give them.
#[derive(Debug, Default, Clone)]
pub struct FastBook {
    nodes: Vec<Node>,
    free_nodes: Vec<u32>,
    levels: Vec<Level>,
    free_levels: Vec<u32>,
    bids: BTreeMap<Price, u32>,
    asks: BTreeMap<Price, u32>,
    index: FxHashMap<OrderId, u32>,
    /// The best level of each side (bids, asks) and its price, kept in step with `bids` and
    /// `asks`: the top of the book is read after every command and before every match, and a
    /// tree walk for it was a tenth of the engine's time.
    tops: [Option<(Price, u32)>; 2],
}

impl FastBook {
    fn tree(&self, side: Side) -> &BTreeMap<Price, u32> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    /// The best level of `side` and its price.
    fn top(&self, side: Side) -> Option<(Price, u32)> {
        self.tops[side_ix(side)]
    }

    /// The best level of `side` as its tree gives it.
    fn best_entry(tree: &BTreeMap<Price, u32>, side: Side) -> Option<(Price, u32)> {
        let kv = match side {
            Side::Buy => tree.last_key_value(),
            Side::Sell => tree.first_key_value(),
        };
        kv.map(|(p, l)| (*p, *l))
    }

    /// Takes `node` out of its level's list (the node stays allocated).
    fn unlink(&mut self, node: u32) {
        let Node {
            prev, next, level, ..
        } = self.nodes[node as usize];
        match prev {
            NIL => self.levels[level as usize].head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.levels[level as usize].tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    /// Frees a level that has no orders left, and removes it from its side (the side's next
    /// level becomes its best if this one was).
    fn drop_level(&mut self, side: Side, price: Price, level: u32) {
        match side {
            Side::Buy => self.bids.remove(&price),
            Side::Sell => self.asks.remove(&price),
        };
        self.free_levels.push(level);
        if self.top(side).is_some_and(|(best, _)| best == price) {
            self.tops[side_ix(side)] = Self::best_entry(self.tree(side), side);
        }
    }

    fn alloc_node(&mut self, node: Node) -> u32 {
        match self.free_nodes.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    /// Checks every structural invariant; used by tests after each command.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = 0usize;
        for (side, tree) in [(Side::Buy, &self.bids), (Side::Sell, &self.asks)] {
            for (&price, &level) in tree {
                let lv = &self.levels[level as usize];
                let (mut cur, mut prev, mut sum) = (lv.head, NIL, 0u64);
                if cur == NIL {
                    return Err(format!("empty level {price:?} on {side}"));
                }
                while cur != NIL {
                    let n = &self.nodes[cur as usize];
                    if n.prev != prev || n.level != level {
                        return Err(format!("broken links at {price:?}"));
                    }
                    if n.order.price != price || n.order.side != side || n.order.open.is_zero() {
                        return Err(format!("misplaced order {}", n.order.id));
                    }
                    if self.index.get(&n.order.id) != Some(&cur) {
                        return Err(format!("index misses {}", n.order.id));
                    }
                    sum += n.order.open.0;
                    seen += 1;
                    prev = cur;
                    cur = n.next;
                }
                if lv.tail != prev || lv.total != sum {
                    return Err(format!("level {price:?} total or tail wrong"));
                }
            }
        }
        for side in [Side::Buy, Side::Sell] {
            if self.top(side) != Self::best_entry(self.tree(side), side) {
                return Err(format!("the best {side} level kept is not the tree's"));
            }
        }
        if seen != self.index.len() {
            return Err(format!("{} indexed, {seen} linked", self.index.len()));
        }
        if let (Some(b), Some(a)) = (self.best(Side::Buy), self.best(Side::Sell))
            && b.price >= a.price
        {
            return Err(format!("crossed book: bid {:?} ask {:?}", b.price, a.price));
        }
        Ok(())
    }
}

impl Book for FastBook {
    fn get(&self, id: &OrderId) -> Option<Resting> {
        self.index.get(id).map(|&i| self.nodes[i as usize].order)
    }

    fn contains(&self, id: &OrderId) -> bool {
        self.index.contains_key(id)
    }

    fn best(&self, side: Side) -> Option<LevelQty> {
        self.top(side).map(|(price, l)| LevelQty {
            price,
            qty: Qty(self.levels[l as usize].total),
        })
    }

    fn depth_up_to(&self, side: Side, limit: Option<Price>, cap: Qty) -> Qty {
        let taker = side.opposite();
        let mut sum = 0u64;
        let mut add = |(&price, &level): (&Price, &u32)| {
            if limit.is_some_and(|l| !taker.crosses(l, price)) || sum >= cap.0 {
                return false;
            }
            sum += self.levels[level as usize].total;
            true
        };
        match side {
            Side::Buy => self.bids.iter().rev().all(&mut add),
            Side::Sell => self.asks.iter().all(&mut add),
        };
        Qty(sum)
    }

    fn take(&mut self, taker: &Taker, out: &mut Emitter<'_>) -> Qty {
        let maker_side = taker.side.opposite();
        let mut leaves = taker.qty.0;
        while leaves > 0 {
            let Some((price, level)) = self.top(maker_side) else {
                break;
            };
            if taker.limit.is_some_and(|l| !taker.side.crosses(l, price)) {
                break;
            }
            let mut cur = self.levels[level as usize].head;
            while cur != NIL && leaves > 0 {
                // Self-trade prevention would decide here, before the fill.
                let node = &mut self.nodes[cur as usize];
                let fill = node.order.open.0.min(leaves);
                node.order.open.0 -= fill;
                leaves -= fill;
                let maker = node.order;
                let next = node.next;
                self.levels[level as usize].total -= fill;
                out.emit(|| EventKind::Trade {
                    price,
                    qty: Qty(fill),
                    maker_order_id: maker.id,
                    maker_account: maker.account,
                    maker_leaves: maker.open,
                    taker_order_id: taker.id,
                    taker_account: taker.account,
                    taker_side: taker.side,
                    taker_leaves: Qty(leaves),
                });
                if maker.open.is_zero() {
                    self.unlink(cur);
                    self.index.remove(&maker.id);
                    self.free_nodes.push(cur);
                }
                cur = next;
            }
            let total = self.levels[level as usize].total;
            out.emit(|| EventKind::BookDelta {
                side: maker_side,
                price,
                qty: Qty(total),
            });
            if total == 0 {
                self.drop_level(maker_side, price, level);
            }
        }
        Qty(leaves)
    }

    fn insert(&mut self, order: Resting) -> Qty {
        let FastBook {
            levels,
            free_levels,
            bids,
            asks,
            tops,
            ..
        } = self;
        let tree = match order.side {
            Side::Buy => bids,
            Side::Sell => asks,
        };
        let level = *tree.entry(order.price).or_insert_with(|| {
            let fresh = Level {
                head: NIL,
                tail: NIL,
                total: 0,
            };
            let level = match free_levels.pop() {
                Some(i) => {
                    levels[i as usize] = fresh;
                    i
                }
                None => {
                    levels.push(fresh);
                    (levels.len() - 1) as u32
                }
            };
            // A new level may be the side's new best.
            let top = &mut tops[side_ix(order.side)];
            if top.is_none_or(|(best, _)| order.side.crosses(order.price, best)) {
                *top = Some((order.price, level));
            }
            level
        });
        let tail = self.levels[level as usize].tail;
        let node = self.alloc_node(Node {
            order,
            prev: tail,
            next: NIL,
            level,
        });
        let lv = &mut self.levels[level as usize];
        match tail {
            NIL => lv.head = node,
            t => self.nodes[t as usize].next = node,
        }
        lv.tail = node;
        lv.total += order.open.0;
        let total = lv.total;
        self.index.insert(order.id, node);
        Qty(total)
    }

    fn remove(&mut self, id: &OrderId) -> Option<(Resting, Qty)> {
        let node = self.index.remove(id)?;
        self.unlink(node);
        self.free_nodes.push(node);
        let Node { order, level, .. } = self.nodes[node as usize];
        let lv = &mut self.levels[level as usize];
        lv.total -= order.open.0;
        let total = lv.total;
        if total == 0 {
            self.drop_level(order.side, order.price, level);
        }
        Some((order, Qty(total)))
    }

    fn reduce(&mut self, id: &OrderId, open: Qty) -> Option<Qty> {
        let node = &mut self.nodes[*self.index.get(id)? as usize];
        let cut = node.order.open.0 - open.0;
        node.order.open = open;
        let lv = &mut self.levels[node.level as usize];
        lv.total -= cut;
        Some(Qty(lv.total))
    }

    fn for_each(&self, mut f: impl FnMut(&Resting)) {
        let bids = self.bids.values().rev();
        for &level in bids.chain(self.asks.values()) {
            let mut cur = self.levels[level as usize].head;
            while cur != NIL {
                let n = &self.nodes[cur as usize];
                f(&n.order);
                cur = n.next;
            }
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}
