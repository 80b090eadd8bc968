//! Rule-by-rule unit tests. Every rule test is generic over the book and runs twice: on the
//! fast book and on the naive reference book.

use crate::book::Book;
use crate::command::{CancelOrder, Command, InvalidCommand, NewOrder, ReplaceOrder, Request};
use crate::decimal::Decimal;
use crate::engine::Engine;
use crate::event::{Event, EventKind, LevelQty, RejectReason};
use crate::instrument::{InstrumentSpec, Instruments};
use crate::name::{Account, OrderId, Symbol};
use crate::snapshot::SnapshotError;
use crate::types::{OrderType, Price, Qty, Side, Tif};

const SYM: &str = "T";

fn instruments() -> Instruments {
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    Instruments::new(&[
        InstrumentSpec {
            symbol: SYM.into(),
            tick_size: d("0.5"),
            lot_size: d("1"),
            min_qty: Some(d("1")),
            max_qty: Some(d("1000")),
            min_price: Some(d("1")),
            max_price: Some(d("1000")),
        },
        InstrumentSpec {
            symbol: "U".into(),
            tick_size: d("1"),
            lot_size: d("0.1"),
            min_qty: Some(d("0.5")),
            max_qty: None,
            min_price: None,
            max_price: None,
        },
    ])
    .unwrap()
}

fn id(s: &str) -> OrderId {
    OrderId::new(s).unwrap()
}

/// Test harness: an engine plus helpers that return the events of one command.
struct H<B: Book> {
    engine: Engine<B>,
    ts: i64,
}

impl<B: Book> H<B> {
    fn new() -> Self {
        H {
            engine: Engine::new(instruments()),
            ts: 0,
        }
    }

    fn run(&mut self, cmd: Command) -> Vec<EventKind> {
        let mut out = Vec::new();
        self.engine.apply(&cmd, &mut out);
        out.into_iter().map(|e| e.kind).collect()
    }

    fn next_ts(&mut self) -> i64 {
        self.ts += 1;
        self.ts
    }

    #[allow(clippy::too_many_arguments)]
    fn order(
        &mut self,
        oid: &str,
        side: Side,
        order_type: OrderType,
        price: Option<&str>,
        qty: &str,
        tif: Tif,
        post_only: bool,
    ) -> Vec<EventKind> {
        let ts = self.next_ts();
        self.run(Command::New(NewOrder {
            order_id: id(oid),
            account: Account::new(&format!("acct-{oid}")).unwrap(),
            symbol: Symbol::new(SYM).unwrap(),
            side,
            order_type,
            price: price.map(|p| p.parse().unwrap()),
            qty: qty.parse().unwrap(),
            tif,
            post_only,
            ts,
        }))
    }

    fn limit(&mut self, oid: &str, side: Side, price: &str, qty: &str, tif: Tif) -> Vec<EventKind> {
        self.order(oid, side, OrderType::Limit, Some(price), qty, tif, false)
    }

    fn market(&mut self, oid: &str, side: Side, qty: &str, tif: Tif) -> Vec<EventKind> {
        self.order(oid, side, OrderType::Market, None, qty, tif, false)
    }

    /// A cancel from the order's owner (`acct-<oid>`, as [`H::order`] places it).
    fn cancel(&mut self, oid: &str) -> Vec<EventKind> {
        self.cancel_as(&format!("acct-{oid}"), oid)
    }

    fn cancel_as(&mut self, account: &str, oid: &str) -> Vec<EventKind> {
        let ts = self.next_ts();
        self.run(Command::Cancel(CancelOrder {
            order_id: id(oid),
            account: acct(account),
            symbol: Symbol::new(SYM).unwrap(),
            ts,
        }))
    }

    /// A replace from the order's owner (`acct-<oid>`).
    fn replace(&mut self, oid: &str, price: Option<&str>, qty: Option<&str>) -> Vec<EventKind> {
        self.replace_as(&format!("acct-{oid}"), oid, price, qty)
    }

    fn replace_as(
        &mut self,
        account: &str,
        oid: &str,
        price: Option<&str>,
        qty: Option<&str>,
    ) -> Vec<EventKind> {
        let ts = self.next_ts();
        self.run(Command::Replace(ReplaceOrder {
            order_id: id(oid),
            account: acct(account),
            symbol: Symbol::new(SYM).unwrap(),
            price: price.map(|p| p.parse().unwrap()),
            qty: qty.map(|q| q.parse().unwrap()),
            ts,
        }))
    }

    fn open(&self, oid: &str) -> Option<u64> {
        self.engine.book(0).get(&id(oid)).map(|o| o.open.0)
    }
}

/// (maker, taker, price in ticks, qty) of each trade.
fn trades(events: &[EventKind]) -> Vec<(String, String, i64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            EventKind::Trade {
                maker_order_id,
                taker_order_id,
                price,
                qty,
                ..
            } => Some((
                maker_order_id.to_string(),
                taker_order_id.to_string(),
                price.0,
                qty.0,
            )),
            _ => None,
        })
        .collect()
}

fn reason(events: &[EventKind]) -> Option<RejectReason> {
    match events {
        [EventKind::Rejected { reason, .. }] => Some(reason.clone()),
        _ => None,
    }
}

/// The account a lone rejection is addressed to.
fn told(events: &[EventKind]) -> Option<Account> {
    match events {
        [EventKind::Rejected { account, .. }] => Some(*account),
        _ => None,
    }
}

fn acct(s: &str) -> Account {
    Account::new(s).unwrap()
}

fn expired(events: &[EventKind]) -> Option<u64> {
    events.iter().find_map(|e| match e {
        EventKind::Expired { qty, .. } => Some(qty.0),
        _ => None,
    })
}

fn t(maker: &str, taker: &str, price: i64, qty: u64) -> (String, String, i64, u64) {
    (maker.into(), taker.into(), price, qty)
}

// Prices of instrument T are in ticks of 0.5: "100" is tick 200.

fn price_time_priority<B: Book>() {
    let mut h = H::<B>::new();
    h.limit("s1", Side::Sell, "100.5", "2", Tif::Gtc);
    h.limit("s2", Side::Sell, "100", "3", Tif::Gtc);
    h.limit("s3", Side::Sell, "100", "4", Tif::Gtc);
    let ev = h.limit("b1", Side::Buy, "101", "8", Tif::Gtc);
    // Best price first, then arrival order; each at the maker's price.
    assert_eq!(
        trades(&ev),
        vec![
            t("s2", "b1", 200, 3),
            t("s3", "b1", 200, 4),
            t("s1", "b1", 201, 1)
        ]
    );
    assert_eq!(h.open("s1"), Some(1));
    assert_eq!(h.open("b1"), None, "fully filled taker does not rest");
}

fn gtc_rests_ioc_expires<B: Book>() {
    let mut h = H::<B>::new();
    h.limit("s1", Side::Sell, "100", "2", Tif::Gtc);
    let ev = h.limit("b1", Side::Buy, "100", "5", Tif::Gtc);
    assert_eq!(trades(&ev), vec![t("s1", "b1", 200, 2)]);
    assert_eq!(h.open("b1"), Some(3));
    assert!(ev.contains(&EventKind::BookDelta {
        side: Side::Buy,
        price: Price(200),
        qty: Qty(3)
    }));
    h.limit("s2", Side::Sell, "101", "2", Tif::Gtc);
    let ev = h.limit("b2", Side::Buy, "101", "5", Tif::Ioc);
    assert_eq!(trades(&ev), vec![t("s2", "b2", 202, 2)]);
    assert_eq!(expired(&ev), Some(3));
    assert_eq!(h.open("b2"), None);
}

fn fok_all_or_nothing<B: Book>() {
    let mut h = H::<B>::new();
    h.limit("s1", Side::Sell, "100", "2", Tif::Gtc);
    h.limit("s2", Side::Sell, "101", "2", Tif::Gtc);
    h.limit("s3", Side::Sell, "102", "9", Tif::Gtc);
    // 4 available at ≤ 101: a FOK for 5 trades nothing and expires whole.
    let ev = h.limit("b1", Side::Buy, "101", "5", Tif::Fok);
    assert!(trades(&ev).is_empty());
    assert_eq!(expired(&ev), Some(5));
    assert_eq!((h.open("s1"), h.open("s2")), (Some(2), Some(2)));
    // Exactly 4 fills across two levels.
    let ev = h.limit("b2", Side::Buy, "101", "4", Tif::Fok);
    assert_eq!(
        trades(&ev),
        vec![t("s1", "b2", 200, 2), t("s2", "b2", 202, 2)]
    );
    assert_eq!(expired(&ev), None);
}

fn market_orders<B: Book>() {
    let mut h = H::<B>::new();
    let ev = h.market("m0", Side::Buy, "1", Tif::Ioc);
    assert_eq!(
        expired(&ev),
        Some(1),
        "market order on an empty book expires"
    );
    h.limit("s1", Side::Sell, "100", "2", Tif::Gtc);
    h.limit("s2", Side::Sell, "900", "2", Tif::Gtc);
    let ev = h.market("m1", Side::Buy, "5", Tif::Ioc);
    assert_eq!(
        trades(&ev),
        vec![t("s1", "m1", 200, 2), t("s2", "m1", 1800, 2)]
    );
    assert_eq!(expired(&ev), Some(1));
    h.limit("b1", Side::Buy, "90", "3", Tif::Gtc);
    let ev = h.market("m2", Side::Sell, "4", Tif::Fok);
    assert!(trades(&ev).is_empty());
    assert_eq!(expired(&ev), Some(4));
    let ev = h.market("m3", Side::Sell, "3", Tif::Fok);
    assert_eq!(trades(&ev), vec![t("b1", "m3", 180, 3)]);
    assert_eq!(
        reason(&h.market("m4", Side::Buy, "1", Tif::Gtc)),
        Some(RejectReason::MarketOrderGtc)
    );
    let ev = h.order(
        "m5",
        Side::Buy,
        OrderType::Market,
        Some("100"),
        "1",
        Tif::Ioc,
        false,
    );
    assert_eq!(reason(&ev), Some(RejectReason::MarketOrderWithPrice));
    let ev = h.order(
        "m6",
        Side::Buy,
        OrderType::Limit,
        None,
        "1",
        Tif::Gtc,
        false,
    );
    assert_eq!(reason(&ev), Some(RejectReason::MissingPrice));
}

fn post_only<B: Book>() {
    let mut h = H::<B>::new();
    h.limit("s1", Side::Sell, "100", "2", Tif::Gtc);
    let ev = h.order(
        "p1",
        Side::Buy,
        OrderType::Limit,
        Some("100"),
        "1",
        Tif::Gtc,
        true,
    );
    assert_eq!(reason(&ev), Some(RejectReason::PostOnlyWouldTrade));
    assert_eq!(h.open("s1"), Some(2));
    let ev = h.order(
        "p2",
        Side::Buy,
        OrderType::Limit,
        Some("99.5"),
        "1",
        Tif::Gtc,
        true,
    );
    assert!(matches!(
        ev[0],
        EventKind::Accepted {
            post_only: true,
            ..
        }
    ));
    assert_eq!(h.open("p2"), Some(1));
    let ev = h.order(
        "p3",
        Side::Buy,
        OrderType::Limit,
        Some("99"),
        "1",
        Tif::Ioc,
        true,
    );
    assert_eq!(reason(&ev), Some(RejectReason::PostOnlyNotGtcLimit));
    // Moving a post-only order across the spread is rejected and leaves it as it was.
    let ev = h.replace("p2", Some("100"), None);
    assert_eq!(reason(&ev), Some(RejectReason::PostOnlyWouldTrade));
    assert_eq!(h.engine.book(0).get(&id("p2")).unwrap().price, Price(199));
}

fn cancel_rules<B: Book>() {
    let mut h = H::<B>::new();
    h.limit("b1", Side::Buy, "99", "2", Tif::Gtc);
    h.limit("b2", Side::Buy, "99", "3", Tif::Gtc);
    let ev = h.cancel("b1");
    assert_eq!(
        ev[..2],
        [
            EventKind::Cancelled {
                order_id: id("b1"),
                account: Account::new("acct-b1").unwrap(),
                qty: Qty(2)
            },
            EventKind::BookDelta {
                side: Side::Buy,
                price: Price(198),
                qty: Qty(3)
            }
        ]
    );
    assert_eq!(reason(&h.cancel("b1")), Some(RejectReason::UnknownOrder));
    assert_eq!(reason(&h.cancel("nope")), Some(RejectReason::UnknownOrder));
    h.limit("s1", Side::Sell, "99", "3", Tif::Gtc);
    assert_eq!(
        reason(&h.cancel("b2")),
        Some(RejectReason::UnknownOrder),
        "a filled order cannot be cancelled"
    );
    let ev = h.limit("i1", Side::Sell, "500", "1", Tif::Ioc);
    assert_eq!(expired(&ev), Some(1));
    assert_eq!(reason(&h.cancel("i1")), Some(RejectReason::UnknownOrder));
}

fn replace_keeps_priority_only_when_reducing_at_same_price<B: Book>() {
    let mut h = H::<B>::new();
    h.limit("a", Side::Sell, "100", "5", Tif::Gtc);
    h.limit("b", Side::Sell, "100", "5", Tif::Gtc);
    let ev = h.replace("a", None, Some("3"));
    assert!(matches!(
        ev[0],
        EventKind::Replaced {
            priority_kept: true,
            old_qty: Qty(5),
            qty: Qty(3),
            ..
        }
    ));
    assert_eq!(
        trades(&h.limit("x", Side::Buy, "100", "1", Tif::Ioc)),
        vec![t("a", "x", 200, 1)]
    );
    // Increasing loses priority: a goes behind b.
    let ev = h.replace("a", None, Some("4"));
    assert!(matches!(
        ev[0],
        EventKind::Replaced {
            priority_kept: false,
            ..
        }
    ));
    assert_eq!(
        trades(&h.limit("y", Side::Buy, "100", "6", Tif::Ioc)),
        vec![t("b", "y", 200, 5), t("a", "y", 200, 1)]
    );
    // A price change loses priority even back at the same level.
    h.limit("c", Side::Sell, "100", "1", Tif::Gtc);
    h.replace("a", Some("100.5"), None);
    h.replace("a", Some("100"), None);
    assert_eq!(
        trades(&h.limit("z", Side::Buy, "100", "2", Tif::Ioc)),
        vec![t("c", "z", 200, 1), t("a", "z", 200, 1)]
    );
}

fn replace_that_crosses_trades_at_once<B: Book>() {
    let mut h = H::<B>::new();
    h.limit("s1", Side::Sell, "101", "2", Tif::Gtc);
    h.limit("b1", Side::Buy, "99", "5", Tif::Gtc);
    let ev = h.replace("b1", Some("101"), None);
    assert!(matches!(
        ev[0],
        EventKind::Replaced {
            priority_kept: false,
            ..
        }
    ));
    assert_eq!(trades(&ev), vec![t("s1", "b1", 202, 2)]);
    assert_eq!(h.open("b1"), Some(3));
    assert_eq!(h.engine.book(0).get(&id("b1")).unwrap().price, Price(202));
}

fn replace_rejections<B: Book>() {
    let mut h = H::<B>::new();
    h.limit("b1", Side::Buy, "99", "5", Tif::Gtc);
    assert_eq!(
        reason(&h.replace("b1", None, Some("0"))),
        Some(RejectReason::InvalidQuantity)
    );
    assert_eq!(
        reason(&h.replace("b1", None, Some("-1"))),
        Some(RejectReason::InvalidQuantity)
    );
    assert_eq!(
        reason(&h.replace("zz", Some("98"), None)),
        Some(RejectReason::UnknownOrder)
    );
    assert_eq!(
        reason(&h.replace("b1", None, None)),
        Some(RejectReason::NothingToReplace)
    );
    assert_eq!(
        reason(&h.replace("b1", Some("98.2"), None)),
        Some(RejectReason::PriceOffTick)
    );
    assert_eq!(
        reason(&h.replace("b1", Some("2000"), None)),
        Some(RejectReason::PriceOutOfBand)
    );
    assert_eq!(h.open("b1"), Some(5), "a rejected replace changes nothing");
}

fn new_order_rejections<B: Book>() {
    let mut h = H::<B>::new();
    let lim = |h: &mut H<B>, price: &str, qty: &str| {
        reason(&h.limit("r", Side::Buy, price, qty, Tif::Gtc))
    };
    assert_eq!(lim(&mut h, "100", "0"), Some(RejectReason::InvalidQuantity));
    assert_eq!(
        lim(&mut h, "100", "-2"),
        Some(RejectReason::InvalidQuantity)
    );
    assert_eq!(
        lim(&mut h, "100", "1.5"),
        Some(RejectReason::QuantityOffLot)
    );
    assert_eq!(
        lim(&mut h, "100", "1001"),
        Some(RejectReason::QuantityAboveMax)
    );
    assert_eq!(lim(&mut h, "0", "1"), Some(RejectReason::InvalidPrice));
    assert_eq!(lim(&mut h, "-1", "1"), Some(RejectReason::InvalidPrice));
    assert_eq!(lim(&mut h, "100.25", "1"), Some(RejectReason::PriceOffTick));
    assert_eq!(lim(&mut h, "0.5", "1"), Some(RejectReason::PriceOutOfBand));
    assert_eq!(
        lim(&mut h, "1000.5", "1"),
        Some(RejectReason::PriceOutOfBand)
    );
    // Below the minimum quantity, on instrument U (min 0.5, lot 0.1).
    let mut out = Vec::new();
    h.engine.apply(
        &Command::New(NewOrder {
            order_id: id("u1"),
            account: Account::new("a").unwrap(),
            symbol: Symbol::new("U").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            price: Some(Decimal::from_int(5)),
            qty: "0.4".parse().unwrap(),
            tif: Tif::Gtc,
            post_only: false,
            ts: 0,
        }),
        &mut out,
    );
    assert!(matches!(
        &out[0].kind,
        EventKind::Rejected {
            reason: RejectReason::QuantityBelowMin,
            ..
        }
    ));
    // Unknown symbol: the rejection carries the symbol as given.
    let mut out = Vec::new();
    h.engine.apply(
        &Command::Cancel(CancelOrder {
            order_id: id("c"),
            account: acct("acct-c"),
            symbol: Symbol::new("NOPE").unwrap(),
            ts: 0,
        }),
        &mut out,
    );
    assert_eq!(out[0].symbol.as_str(), "NOPE");
    assert!(matches!(
        &out[0].kind,
        EventKind::Rejected {
            reason: RejectReason::UnknownSymbol,
            request: Request::Cancel,
            ..
        }
    ));
    // Duplicate live id; the same id is fine again once the first order is gone.
    h.limit("d", Side::Buy, "90", "1", Tif::Gtc);
    assert_eq!(
        reason(&h.limit("d", Side::Buy, "91", "1", Tif::Gtc)),
        Some(RejectReason::DuplicateOrderId)
    );
    h.cancel("d");
    assert!(matches!(
        h.limit("d", Side::Buy, "91", "1", Tif::Gtc)[0],
        EventKind::Accepted { .. }
    ));
    // Malformed commands are rejected in sequence with their detail.
    let ev = h.run(Command::Invalid(InvalidCommand {
        order_id: id("m"),
        account: acct("acct-m"),
        symbol: Symbol::new(SYM).unwrap(),
        request: Request::New,
        detail: "qty: invalid character in decimal".into(),
        ts: 0,
    }));
    assert_eq!(
        reason(&ev),
        Some(RejectReason::Malformed(
            "qty: invalid character in decimal".into()
        ))
    );
}

fn rejections_name_the_account_to_tell<B: Book>() {
    let nobody = Account(crate::name::Name::EMPTY);
    let mut h = H::<B>::new();
    // A refused new order: the account it was sent for.
    assert_eq!(
        told(&h.limit("r", Side::Buy, "100.25", "1", Tif::Gtc)),
        Some(acct("acct-r"))
    );
    // A duplicate id: the sender of the duplicate, not the owner of the live order.
    h.limit("live", Side::Buy, "90", "2", Tif::Gtc);
    let ev = h.run(Command::New(NewOrder {
        order_id: id("live"),
        account: acct("other"),
        symbol: Symbol::new(SYM).unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: Some(Decimal::from_int(91)),
        qty: Decimal::from_int(1),
        tif: Tif::Gtc,
        post_only: false,
        ts: 0,
    }));
    assert_eq!(reason(&ev), Some(RejectReason::DuplicateOrderId));
    assert_eq!(told(&ev), Some(acct("other")));
    // A refused replace of a live order by its owner: the owner, whatever the reason.
    assert_eq!(
        told(&h.replace("live", None, Some("0"))),
        Some(acct("acct-live"))
    );
    assert_eq!(
        told(&h.replace("live", None, None)),
        Some(acct("acct-live"))
    );
    h.limit("s", Side::Sell, "100", "1", Tif::Gtc);
    h.order(
        "po",
        Side::Buy,
        OrderType::Limit,
        Some("99"),
        "1",
        Tif::Gtc,
        true,
    );
    let ev = h.replace("po", Some("100"), None);
    assert_eq!(reason(&ev), Some(RejectReason::PostOnlyWouldTrade));
    assert_eq!(told(&ev), Some(acct("acct-po")));
    // An order the engine does not hold (never was, or finished): the sender.
    assert_eq!(told(&h.cancel_as("x", "nope")), Some(acct("x")));
    assert_eq!(
        told(&h.replace_as("x", "nope", Some("99"), None)),
        Some(acct("x"))
    );
    h.cancel("live");
    assert_eq!(told(&h.cancel("live")), Some(acct("acct-live")));
    assert_eq!(
        told(&h.replace_as("x", "live", None, Some("1"))),
        Some(acct("x"))
    );
    // An unknown symbol: the sender, for a new order as for a cancel or replace.
    let mut out = Vec::new();
    let elsewhere = Symbol::new("NOPE").unwrap();
    h.engine.apply(
        &Command::Replace(ReplaceOrder {
            order_id: id("s"),
            account: acct("acct-s"),
            symbol: elsewhere,
            price: None,
            qty: Some(Decimal::from_int(1)),
            ts: 0,
        }),
        &mut out,
    );
    h.engine.apply(
        &Command::New(NewOrder {
            order_id: id("n"),
            account: acct("a"),
            symbol: elsewhere,
            side: Side::Buy,
            order_type: OrderType::Limit,
            price: Some(Decimal::from_int(1)),
            qty: Decimal::from_int(1),
            tif: Tif::Gtc,
            post_only: false,
            ts: 0,
        }),
        &mut out,
    );
    let kinds: Vec<EventKind> = out.into_iter().map(|e| e.kind).collect();
    assert_eq!(told(&kinds[..1]), Some(acct("acct-s")));
    assert_eq!(told(&kinds[1..]), Some(acct("a")));
    // A malformed command: the account it carried, if any could be read.
    let malformed = |account| {
        Command::Invalid(InvalidCommand {
            order_id: id("m"),
            account,
            symbol: Symbol::new(SYM).unwrap(),
            request: Request::New,
            detail: "qty: missing".into(),
            ts: 0,
        })
    };
    assert_eq!(
        told(&h.run(malformed(acct("acct-m")))),
        Some(acct("acct-m"))
    );
    assert_eq!(told(&h.run(malformed(nobody))), Some(nobody));
}

/// `Engine::reject`: a command refused outside the engine's rules (the matcher's timestamp
/// window) is answered in sequence like any rejection, addressed to the sender as the engine
/// addresses its own, stamped with the time given, and changes nothing in the book.
fn refused_commands_are_rejected_in_sequence<B: Book>() {
    let mut h = H::<B>::new();
    h.limit("live", Side::Buy, "90", "2", Tif::Gtc);
    let bad = RejectReason::BadTimestamp("ts 1732900000000000 is far ahead".into());
    let mut out = Vec::new();
    let mut refuse = |h: &mut H<B>, cmd: Command| {
        out.clear();
        h.engine.reject(&cmd, bad.clone(), 77, &mut out);
        out.clone()
    };
    let before = h.engine.last_seq();
    // A new order that would trade with the live one: refused, addressed to its own account.
    let ev = refuse(
        &mut h,
        Command::New(NewOrder {
            order_id: id("x"),
            account: acct("acct-x"),
            symbol: Symbol::new(SYM).unwrap(),
            side: Side::Sell,
            order_type: OrderType::Limit,
            price: Some(Decimal::from_int(90)),
            qty: Decimal::from_int(1),
            tif: Tif::Gtc,
            post_only: false,
            ts: 1_732_900_000_000_000,
        }),
    );
    assert_eq!(
        ev,
        [Event {
            seq: crate::types::Seq(before + 1),
            ts: 77,
            symbol: Symbol::new(SYM).unwrap(),
            kind: EventKind::Rejected {
                order_id: id("x"),
                account: acct("acct-x"),
                request: Request::New,
                reason: bad.clone(),
            },
        }]
    );
    assert_eq!(h.open("live"), Some(2), "nothing traded");
    // A cancel or replace of a live order: the sender; the order stays as it was.
    let cancel = |oid: &str, symbol: &str, account: &str| {
        Command::Cancel(CancelOrder {
            order_id: id(oid),
            account: acct(account),
            symbol: Symbol::new(symbol).unwrap(),
            ts: -1,
        })
    };
    let ev = refuse(&mut h, cancel("live", SYM, "acct-live"));
    let kinds: Vec<EventKind> = ev.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(told(&kinds), Some(acct("acct-live")));
    assert!(matches!(
        kinds[0],
        EventKind::Rejected {
            request: Request::Cancel,
            ..
        }
    ));
    let ev = refuse(
        &mut h,
        Command::Replace(ReplaceOrder {
            order_id: id("live"),
            account: acct("acct-other"),
            symbol: Symbol::new(SYM).unwrap(),
            price: Some(Decimal::from_int(1)),
            qty: None,
            ts: i64::MAX,
        }),
    );
    let kinds: Vec<EventKind> = ev.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(told(&kinds), Some(acct("acct-other")), "never the owner");
    assert_eq!(reason(&kinds), Some(bad.clone()));
    assert_eq!(h.open("live"), Some(2), "not cancelled, not moved");
    // An order the engine does not hold, or an unknown symbol: still the sender.
    let kinds: Vec<EventKind> = refuse(&mut h, cancel("nope", SYM, "acct-y"))
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(told(&kinds), Some(acct("acct-y")));
    let kinds: Vec<EventKind> = refuse(&mut h, cancel("live", "NOPE", "acct-y"))
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(told(&kinds), Some(acct("acct-y")));
    // The sequence goes on without a gap.
    assert_eq!(h.engine.last_seq(), before + 5);
    let mut next = Vec::new();
    h.engine.apply(&cancel("live", SYM, "acct-live"), &mut next);
    assert_eq!(next[0].seq.0, before + 6);
    assert!(matches!(next[0].kind, EventKind::Cancelled { .. }));
}

fn only_the_owner_may_cancel_or_replace<B: Book>() {
    let mut h = H::<B>::new();
    h.limit("s", Side::Sell, "100", "1", Tif::Gtc);
    h.order(
        "po",
        Side::Buy,
        OrderType::Limit,
        Some("99"),
        "5",
        Tif::Gtc,
        true,
    );
    let resting = |h: &H<B>| {
        let mut all = Vec::new();
        h.engine.book(0).for_each(|o| all.push(*o));
        all
    };
    let before = resting(&h);
    // Whatever the non-owner asks, even what the owner would be refused for (a post-only move
    // to a crossing price, an off-tick price, nothing to replace), the answer is `not_owner`,
    // addressed to the sender, naming only the id it gave: it learns nothing about the order.
    let not_owner = |request| {
        vec![EventKind::Rejected {
            order_id: id("po"),
            account: acct("mallory"),
            request,
            reason: RejectReason::NotOwner,
        }]
    };
    assert_eq!(h.cancel_as("mallory", "po"), not_owner(Request::Cancel));
    for (price, qty) in [
        (Some("98"), None),
        (None, Some("1")),
        (Some("100"), None),
        (Some("98.2"), None),
        (None, None),
    ] {
        assert_eq!(
            h.replace_as("mallory", "po", price, qty),
            not_owner(Request::Replace),
            "{price:?} {qty:?}"
        );
    }
    // The owner of another order in the same book is not the owner of this one.
    assert_eq!(
        reason(&h.cancel_as("acct-s", "po")),
        Some(RejectReason::NotOwner)
    );
    assert_eq!(resting(&h), before, "the book is unchanged");
    assert_eq!(h.open("po"), Some(5));
    // The owner may.
    assert!(matches!(
        h.replace("po", None, Some("3"))[0],
        EventKind::Replaced { .. }
    ));
    assert!(matches!(h.cancel("po")[0], EventKind::Cancelled { .. }));
}

fn market_data_and_sequence<B: Book>() {
    let mut h = H::<B>::new();
    let mut all: Vec<Event> = Vec::new();
    let cmds = [
        ("s1", Side::Sell, "100", "2"),
        ("s2", Side::Sell, "100", "3"),
        ("b1", Side::Buy, "99", "1"),
        ("b2", Side::Buy, "100", "4"),
    ];
    for (oid, side, price, qty) in cmds {
        let cmd = Command::New(NewOrder {
            order_id: id(oid),
            account: Account::new("a").unwrap(),
            symbol: Symbol::new(SYM).unwrap(),
            side,
            order_type: OrderType::Limit,
            price: Some(price.parse().unwrap()),
            qty: qty.parse().unwrap(),
            tif: Tif::Gtc,
            post_only: false,
            ts: 7,
        });
        h.engine.apply(&cmd, &mut all);
    }
    let seqs: Vec<u64> = all.iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>());
    assert!(all.iter().all(|e| e.ts == 7 && e.symbol.as_str() == SYM));
    let last: Vec<&EventKind> = all.iter().rev().take(3).map(|e| &e.kind).collect();
    // b2 takes 4 of 5 at 100: one delta for the ask level, then the new top of book.
    assert_eq!(
        last,
        [
            &EventKind::TopOfBook {
                bid: Some(LevelQty {
                    price: Price(198),
                    qty: Qty(1)
                }),
                ask: Some(LevelQty {
                    price: Price(200),
                    qty: Qty(1)
                })
            },
            &EventKind::BookDelta {
                side: Side::Sell,
                price: Price(200),
                qty: Qty(1)
            },
            &EventKind::Trade {
                price: Price(200),
                qty: Qty(2),
                maker_order_id: id("s2"),
                maker_account: Account::new("a").unwrap(),
                maker_leaves: Qty(1),
                taker_order_id: id("b2"),
                taker_account: Account::new("a").unwrap(),
                taker_side: Side::Buy,
                taker_leaves: Qty(0)
            },
        ]
    );
    // A change behind the top publishes a delta but no top of book.
    let ev = h.limit("b3", Side::Buy, "98", "1", Tif::Gtc);
    assert!(!ev.iter().any(|e| matches!(e, EventKind::TopOfBook { .. })));
    assert_eq!(h.engine.last_seq(), all.len() as u64 + ev.len() as u64);
}

fn snapshot_round_trip<B: Book>() {
    let mut h = H::<B>::new();
    h.limit("s1", Side::Sell, "100", "2", Tif::Gtc);
    h.limit("s2", Side::Sell, "100", "3", Tif::Gtc);
    h.order(
        "b1",
        Side::Buy,
        OrderType::Limit,
        Some("99"),
        "4",
        Tif::Gtc,
        true,
    );
    let bytes = h.engine.snapshot();
    let restored = Engine::<B>::restore(instruments(), &bytes).unwrap();
    assert_eq!(restored.snapshot(), bytes);
    assert_eq!(restored.state_hash(), h.engine.state_hash());
    let mut r = H {
        engine: restored,
        ts: h.ts,
    };
    // Queue order, post-only flag and the sequence survive.
    assert_eq!(
        r.limit("x", Side::Buy, "100", "3", Tif::Ioc),
        h.limit("x", Side::Buy, "100", "3", Tif::Ioc)
    );
    assert_eq!(
        r.replace("b1", Some("100"), None),
        h.replace("b1", Some("100"), None)
    );
    assert_eq!(r.engine.state_hash(), h.engine.state_hash());
    h.limit("y", Side::Buy, "1", "1", Tif::Gtc);
    assert_ne!(r.engine.state_hash(), h.engine.state_hash());
}

macro_rules! on_both_books {
    ($($name:ident),* $(,)?) => {
        mod fast_book {
            $(#[test] fn $name() { super::$name::<crate::book::FastBook>() })*
        }
        mod reference_book {
            $(#[test] fn $name() { super::$name::<crate::book::ReferenceBook>() })*
        }
    };
}

on_both_books!(
    price_time_priority,
    gtc_rests_ioc_expires,
    fok_all_or_nothing,
    market_orders,
    post_only,
    cancel_rules,
    replace_keeps_priority_only_when_reducing_at_same_price,
    replace_that_crosses_trades_at_once,
    replace_rejections,
    new_order_rejections,
    rejections_name_the_account_to_tell,
    refused_commands_are_rejected_in_sequence,
    only_the_owner_may_cancel_or_replace,
    market_data_and_sequence,
    snapshot_round_trip,
);

#[test]
fn restore_refuses_bad_snapshots() {
    let mut h = H::<crate::FastBook>::new();
    h.limit("s1", Side::Sell, "100", "2", Tif::Gtc);
    let bytes = h.engine.snapshot();
    let restore = |b: &[u8]| Engine::<crate::FastBook>::restore(instruments(), b).err();
    assert_eq!(restore(b"nope, not this"), Some(SnapshotError::BadMagic));
    assert_eq!(
        restore(&bytes[..bytes.len() - 3]),
        Some(SnapshotError::Truncated)
    );
    let mut extra = bytes.clone();
    extra.push(0);
    assert_eq!(restore(&extra), Some(SnapshotError::TrailingBytes(1)));
    let mut v2 = bytes.clone();
    v2[4] = 9;
    assert_eq!(restore(&v2), Some(SnapshotError::UnsupportedVersion(9)));
    // Another configuration: same symbols, different tick.
    let other = Instruments::new(&[InstrumentSpec {
        symbol: SYM.into(),
        tick_size: Decimal::from_int(1),
        lot_size: Decimal::from_int(1),
        min_qty: None,
        max_qty: None,
        min_price: None,
        max_price: None,
    }])
    .unwrap();
    assert!(matches!(
        Engine::<crate::FastBook>::restore(other, &bytes),
        Err(SnapshotError::InstrumentMismatch { .. })
    ));
}

#[test]
fn fast_book_keeps_its_invariants_through_the_rules() {
    let mut h = H::<crate::FastBook>::new();
    for i in 0..40 {
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let price = if side == Side::Buy {
            95 + i % 5
        } else {
            100 + i % 5
        };
        h.limit(&format!("o{i}"), side, &price.to_string(), "3", Tif::Gtc);
        h.engine.book(0).check_invariants().unwrap();
    }
    for i in (0..40).step_by(3) {
        h.cancel(&format!("o{i}"));
        h.engine.book(0).check_invariants().unwrap();
    }
    h.market("m", Side::Buy, "20", Tif::Ioc);
    h.engine.book(0).check_invariants().unwrap();
    h.replace("o4", Some("110"), Some("50"));
    h.engine.book(0).check_invariants().unwrap();
    // Moves across the spread and along each side: new best levels, best levels emptied,
    // moves that trade in part and moves that trade entirely.
    for i in (1..40).step_by(2) {
        h.replace(&format!("o{i}"), Some(&(96 + i % 9).to_string()), None);
        h.engine.book(0).check_invariants().unwrap();
    }
}
