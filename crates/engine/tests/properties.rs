//! Property tests on random command streams:
//! - the fast book and the naive reference book give identical events and states;
//! - the fast book's structure is sound after every command, and it is never crossed at rest;
//! - quantity is conserved per order and fills follow price-time priority (an independent model
//!   built from the events alone);
//! - sequence numbers are contiguous; the same input gives the same output;
//! - a rejection names the sender's account (never the owner of an order someone else named);
//!   a cancel or replace of a live order from another account is rejected `not_owner` and
//!   changes nothing, one from its owner never is (the model's live orders decide);
//! - snapshot after command k, restore, apply k+1..n = apply 1..n without a pause.

use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;
use tradestream_engine::{
    Account, Book, CancelOrder, Command, Decimal, Engine, Event, EventKind, FastBook,
    InstrumentSpec, Instruments, NewOrder, OrderId, OrderType, Price, ReferenceBook, RejectReason,
    ReplaceOrder, Side, Symbol, Tif,
};

fn instruments() -> Instruments {
    let spec = |symbol: &str| InstrumentSpec {
        symbol: symbol.into(),
        tick_size: Decimal::from_int(1),
        lot_size: Decimal::from_int(1),
        min_qty: None,
        max_qty: Some(Decimal::from_int(50)),
        min_price: Some(Decimal::from_int(1)),
        max_price: Some(Decimal::from_int(200)),
    };
    Instruments::new(&[spec("A"), spec("B")]).unwrap()
}

/// A compact random command; ids come from a small pool so duplicates, reuse after finishing
/// and cancels of finished orders all happen.
#[derive(Debug, Clone)]
enum Op {
    New {
        id: u8,
        sym: bool,
        buy: bool,
        market: bool,
        price: i64,
        qty: i64,
        tif: u8,
        post_only: bool,
    },
    Cancel {
        id: u8,
        sym: bool,
        owner: bool,
    },
    Replace {
        id: u8,
        sym: bool,
        owner: bool,
        price: Option<i64>,
        qty: Option<i64>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..40, any::<bool>(), any::<bool>(), prop::bool::weighted(0.1), 90i64..111,
              -1i64..12, 0u8..10, prop::bool::weighted(0.15))
            .prop_map(|(id, sym, buy, market, price, qty, tif, post_only)| Op::New {
                id, sym, buy, market, price, qty, tif, post_only
            }),
        2 => (0u8..40, prop::bool::weighted(0.9), prop::bool::weighted(0.85))
            .prop_map(|(id, sym, owner)| Op::Cancel { id, sym, owner }),
        3 => (0u8..40, prop::bool::weighted(0.9), prop::bool::weighted(0.85),
              prop::option::weighted(0.7, 88i64..113), prop::option::weighted(0.6, -1i64..12))
            .prop_map(|(id, sym, owner, price, qty)| Op::Replace { id, sym, owner, price, qty }),
    ]
}

/// The account of order id `id`'s new orders (every order with that id belongs to it).
fn owner_of(id: u8) -> Account {
    Account::new(&format!("acct{}", id % 5)).unwrap()
}

/// Another account than [`owner_of`]`(id)`.
fn not_owner_of(id: u8) -> Account {
    Account::new(&format!("acct{}", (id + 1) % 5)).unwrap()
}

fn command(op: &Op, ts: i64) -> Command {
    let oid = |id: u8| OrderId::new(&format!("o{id}")).unwrap();
    let sym = |b: bool| Symbol::new(if b { "A" } else { "B" }).unwrap();
    let sender = |id: u8, owner: bool| {
        if owner {
            owner_of(id)
        } else {
            not_owner_of(id)
        }
    };
    match *op {
        Op::New {
            id,
            sym: s,
            buy,
            market,
            price,
            qty,
            tif,
            post_only,
        } => Command::New(NewOrder {
            order_id: oid(id),
            account: owner_of(id),
            symbol: sym(s),
            side: if buy { Side::Buy } else { Side::Sell },
            order_type: if market {
                OrderType::Market
            } else {
                OrderType::Limit
            },
            price: (!market).then(|| Decimal::from_int(price)),
            qty: Decimal::from_int(qty),
            // Mostly GTC so books fill up; some IOC and FOK (and GTC markets, to be rejected).
            tif: match tif {
                0..=5 => Tif::Gtc,
                6 | 7 => Tif::Ioc,
                _ => Tif::Fok,
            },
            post_only,
            ts,
        }),
        Op::Cancel { id, sym: s, owner } => Command::Cancel(CancelOrder {
            order_id: oid(id),
            account: sender(id, owner),
            symbol: sym(s),
            ts,
        }),
        Op::Replace {
            id,
            sym: s,
            owner,
            price,
            qty,
        } => Command::Replace(ReplaceOrder {
            order_id: oid(id),
            account: sender(id, owner),
            symbol: sym(s),
            price: price.map(Decimal::from_int),
            qty: qty.map(Decimal::from_int),
            ts,
        }),
    }
}

fn run<B: Book>(engine: &mut Engine<B>, cmds: &[Command]) -> Vec<Event> {
    let mut out = Vec::new();
    for c in cmds {
        engine.apply(c, &mut out);
    }
    out
}

/// An order as the event-only model sees it.
#[derive(Debug, Clone, Copy)]
struct ModelOrder {
    account: Account,
    side: Side,
    /// Limit price, if it is a limit order.
    price: Option<Price>,
    /// Unresolved quantity: not yet filled, cancelled or expired.
    remaining: u64,
    gtc: bool,
}

/// Replays events into an independent model of every order and every price queue, checking
/// conservation and priority as it goes. Queues are keyed by (symbol, side, price).
#[derive(Default)]
struct Model {
    orders: BTreeMap<(String, String), ModelOrder>,
    queues: BTreeMap<(String, bool, i64), VecDeque<String>>,
    /// Orders touched by the current command that may need to rest at its end.
    pending: Vec<(String, String)>,
}

impl Model {
    fn queue(&mut self, sym: &str, side: Side, price: Price) -> &mut VecDeque<String> {
        self.queues
            .entry((sym.to_owned(), side == Side::Buy, price.0))
            .or_default()
    }

    fn dequeue(&mut self, sym: &str, id: &str) {
        let o = self.orders[&(sym.to_owned(), id.to_owned())];
        if let Some(p) = o.price {
            self.queue(sym, o.side, p).retain(|x| x != id);
        }
    }

    fn settle(&mut self, sym: &str, id: &str) {
        let key = (sym.to_owned(), id.to_owned());
        if self.orders.get(&key).is_some_and(|o| o.remaining == 0) {
            self.dequeue(sym, id);
            self.orders.remove(&key);
        }
    }

    /// Applies the events of one command.
    fn command(&mut self, events: &[Event]) -> Result<(), String> {
        for e in events {
            let sym = e.symbol.as_str().to_owned();
            match &e.kind {
                EventKind::Accepted {
                    order_id,
                    account,
                    side,
                    price,
                    qty,
                    tif,
                    ..
                } => {
                    let key = (sym.clone(), order_id.to_string());
                    if self.orders.contains_key(&key) {
                        return Err(format!("{order_id} accepted while live"));
                    }
                    self.orders.insert(
                        key.clone(),
                        ModelOrder {
                            account: *account,
                            side: *side,
                            price: *price,
                            remaining: qty.0,
                            gtc: *tif == Tif::Gtc,
                        },
                    );
                    self.pending.push(key);
                }
                EventKind::Trade {
                    price,
                    qty,
                    maker_order_id,
                    maker_leaves,
                    taker_order_id,
                    taker_leaves,
                    taker_side,
                    ..
                } => {
                    let maker = maker_order_id.to_string();
                    let front = self
                        .queue(&sym, taker_side.opposite(), *price)
                        .front()
                        .cloned();
                    if front.as_deref() != Some(maker.as_str()) {
                        return Err(format!("maker {maker} is not first in queue: {front:?}"));
                    }
                    for (id, leaves) in [
                        (&maker, maker_leaves),
                        (&taker_order_id.to_string(), taker_leaves),
                    ] {
                        let o = self
                            .orders
                            .get_mut(&(sym.clone(), id.clone()))
                            .ok_or(format!("trade for unknown {id}"))?;
                        o.remaining = o.remaining.checked_sub(qty.0).ok_or("overfill")?;
                        if o.remaining != leaves.0 {
                            return Err(format!(
                                "{id}: leaves {} != model {}",
                                leaves.0, o.remaining
                            ));
                        }
                    }
                    self.settle(&sym, &maker);
                }
                EventKind::Cancelled { order_id, qty, .. }
                | EventKind::Expired { order_id, qty, .. } => {
                    let id = order_id.to_string();
                    let o = self
                        .orders
                        .get_mut(&(sym.clone(), id.clone()))
                        .ok_or(format!("end of unknown {id}"))?;
                    if o.remaining != qty.0 {
                        return Err(format!("{id}: ended {} of {}", qty.0, o.remaining));
                    }
                    o.remaining = 0;
                    self.settle(&sym, &id);
                }
                EventKind::Replaced {
                    order_id,
                    price,
                    old_qty,
                    qty,
                    priority_kept,
                    ..
                } => {
                    let key = (sym.clone(), order_id.to_string());
                    let o = *self.orders.get(&key).ok_or("replace of unknown order")?;
                    if o.remaining != old_qty.0 {
                        return Err(format!(
                            "{order_id}: replace from {} but model has {}",
                            old_qty.0, o.remaining
                        ));
                    }
                    if !priority_kept {
                        self.dequeue(&sym, order_id.as_str());
                        self.pending.push(key.clone());
                    }
                    let o = self
                        .orders
                        .get_mut(&key)
                        .ok_or("replace of unknown order")?;
                    o.price = Some(*price);
                    o.remaining = qty.0;
                }
                EventKind::Rejected { .. }
                | EventKind::BookDelta { .. }
                | EventKind::TopOfBook { .. } => {}
            }
        }
        // End of command: what is left of a GTC limit order (new or moved) joins the back of its
        // queue; anything else left unresolved is an error.
        for key in std::mem::take(&mut self.pending) {
            let Some(o) = self.orders.get(&key).copied() else {
                continue;
            };
            if o.remaining == 0 {
                self.settle(&key.0, &key.1);
                continue;
            }
            match (o.gtc, o.price) {
                (true, Some(p)) => self.queue(&key.0, o.side, p).push_back(key.1.clone()),
                _ => return Err(format!("{} left with {} unresolved", key.1, o.remaining)),
            }
        }
        self.queues.retain(|_, q| !q.is_empty());
        self.orders.retain(|_, o| o.remaining > 0);
        Ok(())
    }

    /// Whom a rejection of `cmd` must name: the sender, whatever the command.
    fn to_tell(cmd: &Command) -> Account {
        match cmd {
            Command::New(c) => c.account,
            Command::Cancel(c) => c.account,
            Command::Replace(c) => c.account,
            Command::Invalid(c) => c.account,
        }
    }

    /// For a cancel or replace of an order the model holds live, asked before its events are
    /// applied: whether the sender is someone other than its owner (`None`: not such a command,
    /// or no such live order).
    fn sent_by_non_owner(&self, cmd: &Command) -> Option<bool> {
        let (symbol, id, sender) = match cmd {
            Command::Cancel(c) => (c.symbol, c.order_id, c.account),
            Command::Replace(c) => (c.symbol, c.order_id, c.account),
            Command::New(_) | Command::Invalid(_) => return None,
        };
        self.orders
            .get(&(symbol.to_string(), id.to_string()))
            .map(|o| o.account != sender)
    }

    /// The book must hold exactly the model's live orders, in the model's queue order.
    fn matches(&self, engine: &Engine<FastBook>) -> Result<(), String> {
        let mut from_book: BTreeMap<(String, bool, i64), Vec<(String, u64)>> = BTreeMap::new();
        for (i, inst) in engine.instruments().iter().enumerate() {
            engine.book(i).for_each(|o| {
                from_book
                    .entry((inst.symbol.to_string(), o.side == Side::Buy, o.price.0))
                    .or_default()
                    .push((o.id.to_string(), o.open.0));
            });
        }
        let from_model: BTreeMap<_, Vec<(String, u64)>> = self
            .queues
            .iter()
            .map(|(k, q)| {
                let v = q
                    .iter()
                    .map(|id| {
                        (
                            id.clone(),
                            self.orders[&(k.0.clone(), id.clone())].remaining,
                        )
                    })
                    .collect();
                (k.clone(), v)
            })
            .collect();
        if from_book != from_model {
            return Err(format!("book {from_book:?}\nmodel {from_model:?}"));
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn fast_book_equals_reference_book(ops in prop::collection::vec(op(), 1..400)) {
        let cmds: Vec<Command> = ops.iter().enumerate().map(|(i, o)| command(o, i as i64)).collect();
        let mut fast = Engine::<FastBook>::new(instruments());
        let mut reference = Engine::<ReferenceBook>::new(instruments());
        for (i, c) in cmds.iter().enumerate() {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            fast.apply(c, &mut a);
            reference.apply(c, &mut b);
            prop_assert_eq!(&a, &b, "command {} {:?}", i, c);
            for book in 0..2 {
                prop_assert_eq!(fast.book(book).check_invariants(), Ok(()));
            }
        }
        prop_assert_eq!(fast.snapshot(), reference.snapshot());
        prop_assert_eq!(fast.state_hash(), reference.state_hash());
    }

    #[test]
    fn conservation_priority_and_contiguous_seq(ops in prop::collection::vec(op(), 1..400)) {
        let mut engine = Engine::<FastBook>::new(instruments());
        let mut model = Model::default();
        let mut expected_seq = 1;
        for (i, o) in ops.iter().enumerate() {
            let mut events = Vec::new();
            let cmd = command(o, i as i64);
            let to_tell = Model::to_tell(&cmd);
            let non_owner = model.sent_by_non_owner(&cmd);
            engine.apply(&cmd, &mut events);
            prop_assert!(!events.is_empty(), "every command has an outcome");
            let refused_as_non_owner = matches!(
                events.as_slice(),
                [Event { kind: EventKind::Rejected { reason: RejectReason::NotOwner, .. }, .. }]
            );
            prop_assert_eq!(
                refused_as_non_owner,
                non_owner == Some(true),
                "command {} {:?}: {:?}", i, o, events
            );
            for e in &events {
                prop_assert_eq!(e.seq.0, expected_seq);
                expected_seq += 1;
                if let EventKind::Rejected { account, .. } = &e.kind {
                    prop_assert_eq!(*account, to_tell, "command {} {:?}", i, o);
                }
            }
            if let Err(why) = model.command(&events) {
                return Err(TestCaseError::fail(format!("command {i} {o:?}: {why}\n{events:#?}")));
            }
            if let Err(why) = model.matches(&engine) {
                return Err(TestCaseError::fail(format!("after command {i} {o:?}: {why}")));
            }
        }
    }

    #[test]
    fn snapshot_restore_resumes_exactly(ops in prop::collection::vec(op(), 1..300), cut in 0usize..300) {
        let cmds: Vec<Command> = ops.iter().enumerate().map(|(i, o)| command(o, i as i64)).collect();
        let k = cut.min(cmds.len());
        let mut straight = Engine::<FastBook>::new(instruments());
        let all = run(&mut straight, &cmds);

        let mut first = Engine::<FastBook>::new(instruments());
        let mut resumed = run(&mut first, &cmds[..k]);
        let mut restored = Engine::<FastBook>::restore(instruments(), &first.snapshot())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(restored.state_hash(), first.state_hash());
        resumed.extend(run(&mut restored, &cmds[k..]));
        prop_assert_eq!(resumed, all);
        prop_assert_eq!(restored.state_hash(), straight.state_hash());
        prop_assert_eq!(restored.snapshot(), straight.snapshot());
    }

    #[test]
    fn same_input_same_output(ops in prop::collection::vec(op(), 1..300)) {
        let cmds: Vec<Command> = ops.iter().enumerate().map(|(i, o)| command(o, i as i64)).collect();
        let a = run(&mut Engine::<FastBook>::new(instruments()), &cmds);
        let b = run(&mut Engine::<FastBook>::new(instruments()), &cmds);
        prop_assert_eq!(a, b);
    }
}
