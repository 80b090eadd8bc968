//! Tests of the order fold: the lifecycle rule by rule, replays, and a whole engine session.

use std::collections::BTreeMap;

use tradestream_codec::avro::{
    DecodedEvent, DecodedKind, Framing, Provenance, decode_event, encode_event,
};
use tradestream_engine::decimal::exact::div_half_even;
use tradestream_engine::{
    Account, CancelOrder, Command, Decimal, Engine, EventKind, InstrumentSpec, Instruments,
    NewOrder, OrderId, OrderType, ReplaceOrder, Request, Side, Symbol, Tif,
};
use tradestream_store::model::{OrderStateRow, OrderStatus, TradeRow};

use super::*;

const SYM: &str = "BTC-USD";

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn ev(seq: u64, kind: DecodedKind) -> DecodedEvent {
    DecodedEvent {
        seq,
        ts: 1_000 + seq as i64,
        symbol: Symbol::new(SYM).unwrap(),
        source_partition: 3,
        source_offset: seq as i64 * 10,
        kind,
    }
}

fn accepted(id: &str, account: &str, side: Side, price: Option<&str>, qty: &str) -> DecodedKind {
    DecodedKind::Accepted {
        order_id: OrderId::new(id).unwrap(),
        account: Account::new(account).unwrap(),
        side,
        order_type: if price.is_some() {
            OrderType::Limit
        } else {
            OrderType::Market
        },
        tif: Tif::Gtc,
        price: price.map(d),
        qty: d(qty),
        post_only: false,
    }
}

/// A trade: (maker id, maker leaves), (taker id, taker leaves); the taker buys.
fn trade(price: &str, qty: &str, maker: (&str, &str), taker: (&str, &str)) -> DecodedKind {
    DecodedKind::Trade {
        price: d(price),
        qty: d(qty),
        maker_order_id: OrderId::new(maker.0).unwrap(),
        maker_account: Account::new("mm").unwrap(),
        maker_leaves: d(maker.1),
        taker_order_id: OrderId::new(taker.0).unwrap(),
        taker_account: Account::new("tk").unwrap(),
        taker_side: Side::Buy,
        taker_leaves: d(taker.1),
    }
}

fn cancelled(id: &str, qty: &str) -> DecodedKind {
    DecodedKind::Cancelled {
        order_id: OrderId::new(id).unwrap(),
        account: Account::new("mm").unwrap(),
        qty: d(qty),
    }
}

fn expired(id: &str, qty: &str) -> DecodedKind {
    DecodedKind::Expired {
        order_id: OrderId::new(id).unwrap(),
        account: Account::new("tk").unwrap(),
        qty: d(qty),
    }
}

fn replaced(id: &str, price: (&str, &str), open: (&str, &str)) -> DecodedKind {
    DecodedKind::Replaced {
        order_id: OrderId::new(id).unwrap(),
        account: Account::new("mm").unwrap(),
        side: Side::Sell,
        old_price: d(price.0),
        price: d(price.1),
        old_qty: d(open.0),
        qty: d(open.1),
        priority_kept: false,
    }
}

/// A rejection addressed to account `sender` (the engine names the sender of a new order).
fn rejected(id: &str, request: Request, reason: &str) -> DecodedKind {
    DecodedKind::Rejected {
        order_id: OrderId::new(id).unwrap(),
        account: Account::new("sender").unwrap(),
        request,
        reason: reason.into(),
        detail: None,
    }
}

fn no_store(_: &str, _: &str) -> Option<OrderStateRow> {
    None
}

/// Applies with no store behind the fold.
fn apply(fold: &mut OrderFold, e: &DecodedEvent) -> Vec<OrderStateRow> {
    fold.apply(e, no_store).unwrap()
}

fn statuses(rows: &[OrderStateRow]) -> Vec<(&str, OrderStatus)> {
    rows.iter()
        .map(|r| (r.order_id.as_str(), r.status))
        .collect()
}

#[test]
fn accepted_then_partial_then_filled() {
    let mut fold = OrderFold::new();
    let rows = apply(
        &mut fold,
        &ev(1, accepted("m1", "mm", Side::Sell, Some("100.00"), "1.000")),
    );
    assert_eq!(
        rows,
        [OrderStateRow {
            order_id: "m1".into(),
            account: "mm".into(),
            symbol: SYM.into(),
            side: Side::Sell,
            status: OrderStatus::New,
            price: Some(d("100.00")),
            qty: d("1.000"),
            filled_qty: d("0.000"),
            avg_price: None,
            notional: d("0"),
            updated_ts_ms: 1_001,
            source_partition: 3,
            seq: 1,
        }]
    );
    apply(
        &mut fold,
        &ev(2, accepted("t1", "tk", Side::Buy, Some("100.00"), "0.400")),
    );
    let rows = apply(
        &mut fold,
        &ev(3, trade("100.00", "0.400", ("m1", "0.600"), ("t1", "0"))),
    );
    assert_eq!(
        statuses(&rows),
        [
            ("m1", OrderStatus::PartiallyFilled),
            ("t1", OrderStatus::Filled)
        ]
    );
    let m1 = &rows[0];
    assert_eq!(m1.filled_qty, d("0.400"));
    assert_eq!(m1.notional, d("40.00000"), "price scale 2 + qty scale 3");
    assert_eq!(m1.avg_price, Some(d("100.000000")));
    assert_eq!(
        (m1.seq, m1.updated_ts_ms, m1.source_partition),
        (3, 1_003, 3)
    );
    assert_eq!(m1.qty, d("1.000"), "the ordered quantity does not change");

    apply(
        &mut fold,
        &ev(4, accepted("t2", "tk", Side::Buy, None, "0.600")),
    );
    let rows = apply(
        &mut fold,
        &ev(5, trade("100.00", "0.600", ("m1", "0"), ("t2", "0"))),
    );
    assert_eq!(
        statuses(&rows),
        [("m1", OrderStatus::Filled), ("t2", OrderStatus::Filled)]
    );
    assert_eq!(rows[0].filled_qty, d("1.000"));
    assert_eq!(rows[1].price, None, "a market order has no limit price");
}

#[test]
fn average_price_is_the_exact_vwap_rounded_half_even() {
    // 0.001 @ 100.01 and 0.031 @ 100.00: 3.20001 / 0.032 = 100.0003125, a tie at the sixth
    // digit: half-even keeps 100.000312 (half-up would say …313).
    let mut fold = OrderFold::new();
    apply(
        &mut fold,
        &ev(1, accepted("t", "tk", Side::Buy, Some("100.01"), "0.032")),
    );
    let rows = apply(
        &mut fold,
        &ev(2, trade("100.01", "0.001", ("a", "0"), ("t", "0.031"))),
    );
    assert_eq!(rows[0].avg_price, Some(d("100.010000")));
    let rows = apply(
        &mut fold,
        &ev(3, trade("100.00", "0.031", ("b", "0"), ("t", "0"))),
    );
    assert_eq!(rows[0].avg_price, Some(d("100.000312")));
    assert_eq!(rows[0].filled_qty, d("0.032"));
    assert_eq!(rows[0].notional, d("3.20001"));

    // 0.001 @ 100.03 and 0.031 @ 100.00: 100.0009375, the tie rounds up to the even 8.
    let mut fold = OrderFold::new();
    apply(
        &mut fold,
        &ev(1, accepted("t", "tk", Side::Buy, Some("100.03"), "0.032")),
    );
    apply(
        &mut fold,
        &ev(2, trade("100.03", "0.001", ("a", "0"), ("t", "0.031"))),
    );
    let rows = apply(
        &mut fold,
        &ev(3, trade("100.00", "0.031", ("b", "0"), ("t", "0"))),
    );
    assert_eq!(rows[0].avg_price, Some(d("100.000938")));

    // Not a tie: 1 @ 100.01 + 2 @ 100.00 = 100.0033333…
    let mut fold = OrderFold::new();
    apply(
        &mut fold,
        &ev(1, accepted("t", "tk", Side::Buy, Some("100.01"), "3")),
    );
    apply(
        &mut fold,
        &ev(2, trade("100.01", "1", ("a", "0"), ("t", "2"))),
    );
    let rows = apply(
        &mut fold,
        &ev(3, trade("100.00", "2", ("b", "0"), ("t", "0"))),
    );
    assert_eq!(rows[0].avg_price, Some(d("100.003333")));
}

#[test]
fn average_scale_is_capped_at_18_digits() {
    let mut fold = OrderFold::new();
    apply(&mut fold, &ev(1, accepted("t", "tk", Side::Buy, None, "3")));
    apply(
        &mut fold,
        &ev(2, trade("0.0000000000000001", "1", ("a", "0"), ("t", "2"))),
    );
    let rows = apply(
        &mut fold,
        &ev(3, trade("0.0000000000000002", "2", ("b", "0"), ("t", "0"))),
    );
    // 5e-16 / 3 = 1.666…e-16, at 18 digits (16 + 4 would be 20).
    let avg = rows[0].avg_price.unwrap();
    assert_eq!(avg.scale(), 18);
    assert_eq!(avg, d("0.000000000000000167"));
}

#[test]
fn replace_sets_price_and_ordered_quantity_from_the_new_open_quantity() {
    let mut fold = OrderFold::new();
    apply(
        &mut fold,
        &ev(1, accepted("m", "mm", Side::Sell, Some("100.00"), "1.000")),
    );
    // Unfilled: the ordered quantity is the new open quantity.
    let rows = apply(
        &mut fold,
        &ev(2, replaced("m", ("100.00", "100.50"), ("1.000", "0.800"))),
    );
    assert_eq!(rows[0].status, OrderStatus::New);
    assert_eq!(rows[0].qty, d("0.800"));
    assert_eq!(rows[0].price, Some(d("100.50")));

    apply(
        &mut fold,
        &ev(3, trade("100.50", "0.300", ("m", "0.500"), ("t", "0"))),
    );
    // Partly filled: ordered = filled 0.300 + new open 0.200.
    let rows = apply(
        &mut fold,
        &ev(4, replaced("m", ("100.50", "100.25"), ("0.500", "0.200"))),
    );
    let m = &rows[0];
    assert_eq!(m.status, OrderStatus::PartiallyFilled);
    assert_eq!((m.qty, m.filled_qty), (d("0.500"), d("0.300")));
    assert_eq!(m.price, Some(d("100.25")));
    assert_eq!(m.avg_price, Some(d("100.500000")));
    assert_eq!(m.seq, 4);
}

#[test]
fn cancel_and_expiry_keep_the_fills() {
    let mut fold = OrderFold::new();
    apply(
        &mut fold,
        &ev(1, accepted("m", "mm", Side::Sell, Some("100.00"), "1")),
    );
    apply(
        &mut fold,
        &ev(2, trade("100.00", "0.25", ("m", "0.75"), ("t", "0"))),
    );
    let rows = apply(&mut fold, &ev(3, cancelled("m", "0.75")));
    assert_eq!(statuses(&rows), [("m", OrderStatus::Cancelled)]);
    assert_eq!(rows[0].filled_qty, d("0.25"));
    assert_eq!(rows[0].avg_price, Some(d("100.000000")));

    // IOC partly filled, rest expired: Expired, not Filled.
    apply(
        &mut fold,
        &ev(4, accepted("i", "tk", Side::Buy, Some("101.00"), "2")),
    );
    apply(
        &mut fold,
        &ev(5, trade("100.00", "1", ("x", "0"), ("i", "1"))),
    );
    let rows = apply(&mut fold, &ev(6, expired("i", "1")));
    assert_eq!(statuses(&rows), [("i", OrderStatus::Expired)]);
    assert_eq!(rows[0].filled_qty, d("1"));

    // FOK that could not fill: Expired with nothing filled.
    apply(
        &mut fold,
        &ev(7, accepted("f", "tk", Side::Buy, Some("99.00"), "5")),
    );
    let rows = apply(&mut fold, &ev(8, expired("f", "5")));
    assert_eq!(statuses(&rows), [("f", OrderStatus::Expired)]);
    assert_eq!(rows[0].avg_price, None);
}

#[test]
fn a_rejected_new_order_gets_a_rejected_row() {
    let mut fold = OrderFold::new();
    let rows = apply(
        &mut fold,
        &ev(1, rejected("bad", Request::New, "price_off_tick")),
    );
    assert_eq!(
        rows,
        [OrderStateRow {
            order_id: "bad".into(),
            account: "sender".into(),
            symbol: SYM.into(),
            side: Side::Buy,
            status: OrderStatus::Rejected,
            price: None,
            qty: d("0"),
            filled_qty: d("0"),
            avg_price: None,
            notional: d("0"),
            updated_ts_ms: 1_001,
            source_partition: 3,
            seq: 1,
        }]
    );
    // A second rejected attempt with that id replaces the first.
    let rows = apply(
        &mut fold,
        &ev(2, rejected("bad", Request::New, "unknown_symbol")),
    );
    assert_eq!(rows[0].seq, 2);
}

#[test]
fn rejections_never_touch_a_known_order() {
    let mut fold = OrderFold::new();
    apply(
        &mut fold,
        &ev(1, accepted("o", "mm", Side::Sell, Some("100.00"), "1")),
    );
    // A duplicate id, a cancel and a replace that were refused: the live order is unchanged.
    for (seq, kind) in [
        (2, rejected("o", Request::New, "duplicate_order_id")),
        (3, rejected("o", Request::Cancel, "unknown_symbol")),
        (4, rejected("o", Request::Replace, "price_off_tick")),
        (5, rejected("", Request::Unknown, "malformed")),
    ] {
        assert!(apply(&mut fold, &ev(seq, kind)).is_empty(), "seq {seq}");
    }
    assert_eq!(fold.get(SYM, "o").unwrap().status, OrderStatus::New);
    assert_eq!(fold.stats().rejections_ignored, 4);

    // A rejected new order whose id names a finished order in the store: the finished order's
    // row stays.
    let mut fold = OrderFold::new();
    let stored = OrderStateRow {
        status: OrderStatus::Filled,
        ..fold_row("old", 7)
    };
    let rows = fold
        .apply(
            &ev(9, rejected("old", Request::New, "price_off_tick")),
            |_, id| (id == "old").then(|| stored.clone()),
        )
        .unwrap();
    assert!(rows.is_empty());
}

/// A stored row of a partly filled sell order at partition 3, last changed at `seq`.
fn fold_row(id: &str, seq: i64) -> OrderStateRow {
    OrderStateRow {
        order_id: id.into(),
        account: "mm".into(),
        symbol: SYM.into(),
        side: Side::Sell,
        status: OrderStatus::PartiallyFilled,
        price: Some(d("100.00")),
        qty: d("3"),
        filled_qty: d("1"),
        avg_price: Some(d("100.000000")),
        notional: d("100.00"),
        updated_ts_ms: 500,
        source_partition: 3,
        seq,
    }
}

#[test]
fn replayed_events_are_skipped() {
    let mut fold = OrderFold::new();
    let e1 = ev(1, accepted("m", "mm", Side::Sell, Some("100.00"), "1"));
    let e2 = ev(2, trade("100.00", "0.5", ("m", "0.5"), ("t", "0")));
    apply(&mut fold, &e1);
    assert_eq!(apply(&mut fold, &e2).len(), 1, "t is an orphan");
    assert!(apply(&mut fold, &e1).is_empty());
    assert!(apply(&mut fold, &e2).is_empty());
    assert_eq!(fold.get(SYM, "m").unwrap().filled_qty, d("0.5"));
    assert_eq!(
        fold.stats(),
        FoldStats {
            duplicates: 2,
            orphans: 2,
            rejections_ignored: 0
        }
    );

    // The store got ahead of the offsets: its row already holds seq 8, so trade 6 is a replay.
    let mut fold = OrderFold::new();
    let rows = fold
        .apply(
            &ev(6, trade("100.00", "1", ("s", "1"), ("t", "0"))),
            |_, id| (id == "s").then(|| fold_row("s", 8)),
        )
        .unwrap();
    assert!(rows.is_empty());
    assert_eq!(fold.stats().duplicates, 1);
    assert_eq!(fold.stats().orphans, 1);
}

/// Issue 21: a late duplicate of an order's `accepted` (a zombie's late write, design §2.5) that
/// arrives after a restart, when the order is no longer cached, was checked against the cache
/// only: it overwrote the stored row with a fresh one, and the fills that followed were counted
/// from zero (`filled_qty` 2, not 3). It is judged against the stored row, like every other event.
#[test]
fn a_late_duplicate_acceptance_after_a_restart_is_skipped_by_the_stored_row() {
    let mut fold = OrderFold::new();
    // Stored: s accepted at seq 1, 1 of 3 filled at seq 8. A fresh fold (restarted) gets s's
    // acceptance again, byte for byte, then the next fill.
    let stored = |_: &str, id: &str| (id == "s").then(|| fold_row("s", 8));
    let dup = fold
        .apply(
            &ev(1, accepted("s", "mm", Side::Sell, Some("100.00"), "3")),
            stored,
        )
        .unwrap();
    assert!(dup.is_empty(), "the duplicate changed the order: {dup:?}");
    assert_eq!(fold.stats().duplicates, 1);
    let rows = fold
        .apply(&ev(9, trade("100.00", "2", ("s", "0"), ("t", "0"))), stored)
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].filled_qty,
        d("3"),
        "the fills before the restart stay"
    );
    assert_eq!(rows[0].notional, d("300.00"));
    assert_eq!(rows[0].status, OrderStatus::Filled);
}

#[test]
fn orders_missing_from_the_cache_come_from_the_store() {
    let mut fold = OrderFold::new();
    let mut looked_up = Vec::new();
    // Stored: 1 filled at 100.00 of 3. Then 2 more at 101.00: (100 + 202) / 3 = 100.666667.
    let rows = fold
        .apply(
            &ev(9, trade("101.00", "2", ("s", "0"), ("t", "0"))),
            |sym, id| {
                looked_up.push(format!("{sym}/{id}"));
                (id == "s").then(|| fold_row("s", 8))
            },
        )
        .unwrap();
    assert_eq!(looked_up, ["BTC-USD/s", "BTC-USD/t"], "by symbol and id");
    assert_eq!(rows.len(), 1);
    let s = &rows[0];
    assert_eq!(s.status, OrderStatus::Filled);
    assert_eq!((s.filled_qty, s.qty), (d("3"), d("3")));
    assert_eq!(s.notional, d("302.00"));
    assert_eq!(s.avg_price, Some(d("100.666667")));
    assert_eq!(s.account, "mm", "the stored fields stay");

    // Now cached: no second lookup.
    fold.apply(&ev(10, cancelled("s", "0")), |_, id| {
        panic!("looked up {id}")
    })
    .unwrap();
}

#[test]
fn terminal_orders_are_evicted_on_request() {
    let mut fold = OrderFold::new();
    apply(
        &mut fold,
        &ev(1, accepted("m", "mm", Side::Sell, Some("100.00"), "2")),
    );
    apply(
        &mut fold,
        &ev(2, accepted("t", "tk", Side::Buy, Some("100.00"), "1")),
    );
    apply(
        &mut fold,
        &ev(3, trade("100.00", "1", ("m", "1"), ("t", "0"))),
    );
    apply(
        &mut fold,
        &ev(4, rejected("r", Request::New, "missing_price")),
    );
    assert_eq!(fold.len(), 3);
    assert_eq!(fold.evict_terminal(), 2);
    assert_eq!(fold.len(), 1);
    assert_eq!(
        fold.get(SYM, "m").unwrap().status,
        OrderStatus::PartiallyFilled
    );
    assert!(fold.get(SYM, "t").is_none());
    assert_eq!(fold.evict_terminal(), 0);
}

#[test]
fn a_reused_id_starts_a_fresh_order() {
    let mut fold = OrderFold::new();
    apply(
        &mut fold,
        &ev(1, accepted("o", "a", Side::Buy, Some("1.00"), "1")),
    );
    apply(&mut fold, &ev(2, cancelled("o", "1")));
    let rows = apply(
        &mut fold,
        &ev(3, accepted("o", "b", Side::Sell, Some("2.00"), "5")),
    );
    assert_eq!(rows[0].status, OrderStatus::New);
    assert_eq!(rows[0].account, "b");
    assert_eq!(rows[0].qty, d("5"));
}

#[test]
fn market_data_events_change_nothing() {
    let mut fold = OrderFold::new();
    let delta = DecodedKind::BookDelta {
        side: Side::Buy,
        price: d("1"),
        qty: d("1"),
    };
    assert!(
        fold.apply(&ev(1, delta), |_, id| panic!("looked up {id}"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn trade_rows_map_every_field() {
    let e = ev(12, trade("100.00", "0.5", ("m", "0"), ("t", "1")));
    assert_eq!(
        trade_row(&e),
        Some(TradeRow {
            symbol: SYM.into(),
            source_partition: 3,
            seq: 12,
            ts_ms: 1_012,
            price: d("100.00"),
            qty: d("0.5"),
            maker_order_id: "m".into(),
            maker_account: "mm".into(),
            taker_order_id: "t".into(),
            taker_account: "tk".into(),
            taker_side: Side::Buy,
        })
    );
    assert_eq!(trade_row(&ev(1, cancelled("m", "1"))), None);
}

// ---------------------------------------------------------------------------------------------
// A whole session through the real engine and the Avro codec
// ---------------------------------------------------------------------------------------------

fn instruments() -> Instruments {
    Instruments::new(&[InstrumentSpec {
        symbol: SYM.into(),
        tick_size: d("0.01"),
        lot_size: d("0.001"),
        min_qty: None,
        max_qty: None,
        min_price: Some(d("90")),
        max_price: Some(d("110")),
    }])
    .unwrap()
}

/// A small deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn commands(n: usize) -> Vec<Command> {
    let mut rng = Lcg(42);
    let sym = Symbol::new(SYM).unwrap();
    let mut out = Vec::with_capacity(n);
    // The account of each command's order `o<i>` (new orders only); cancels and replaces are
    // sent by the target's owner.
    let mut owners: Vec<Account> = Vec::with_capacity(n);
    let nobody = Account::new("acct0").unwrap();
    for i in 0..n {
        let ts = 10_000 + i as i64;
        let t = rng.next(i as u64 + 1) as usize;
        let target = OrderId::new(&format!("o{t}")).unwrap();
        let owner = owners.get(t).copied().unwrap_or(nobody);
        // One price in 40 is off the 0.01 tick: a rejected new order.
        let price = match rng.next(40) {
            0 => Decimal::new(99_905, 3),
            _ => Decimal::new(9_990 + rng.next(21) as i64, 2),
        };
        let qty = Decimal::new(1 + rng.next(3_000) as i64, 3);
        let cmd = match rng.next(10) {
            0 => Command::Cancel(CancelOrder {
                order_id: target,
                account: owner,
                symbol: sym,
                ts,
            }),
            1 => Command::Replace(ReplaceOrder {
                order_id: target,
                account: owner,
                symbol: sym,
                price: (rng.next(2) == 0).then_some(price),
                qty: Some(qty),
                ts,
            }),
            k => Command::New(NewOrder {
                order_id: OrderId::new(&format!("o{i}")).unwrap(),
                account: Account::new(&format!("acct{}", rng.next(4))).unwrap(),
                symbol: sym,
                side: if k % 2 == 0 { Side::Buy } else { Side::Sell },
                order_type: if k == 9 {
                    OrderType::Market
                } else {
                    OrderType::Limit
                },
                price: (k != 9).then_some(price),
                qty,
                tif: match k {
                    9 | 8 => Tif::Ioc,
                    7 => Tif::Fok,
                    _ => Tif::Gtc,
                },
                post_only: false,
                ts,
            }),
        };
        owners.push(match &cmd {
            Command::New(c) => c.account,
            _ => nobody,
        });
        out.push(cmd);
    }
    out
}

/// The engine's executions, numbered as the matcher numbers the executions topic, through
/// Avro and back; and the engine at the end.
fn session(n: usize) -> (Vec<DecodedEvent>, Engine) {
    let instruments = instruments();
    let mut engine: Engine = Engine::new(instruments.clone());
    let mut events = Vec::new();
    for cmd in commands(n) {
        engine.apply(&cmd, &mut events);
    }
    let mut seq = 0;
    let mut decoded = Vec::new();
    for (offset, e) in events.iter().enumerate() {
        if matches!(
            e.kind,
            EventKind::BookDelta { .. } | EventKind::TopOfBook { .. }
        ) {
            continue;
        }
        seq += 1;
        let prov = Provenance {
            source_partition: 3,
            source_offset: offset as i64,
            seq,
        };
        let mut buf = Vec::new();
        encode_event(&instruments, e, prov, Framing::SingleObject, &mut buf);
        decoded.push(decode_event(&buf).unwrap());
    }
    (decoded, engine)
}

/// Per order: Σ qty and Σ price × qty of its fills, as exact integers at scales 3 and 5.
fn fills(events: &[DecodedEvent]) -> BTreeMap<String, (i128, i128)> {
    let mut out: BTreeMap<String, (i128, i128)> = BTreeMap::new();
    for e in events {
        if let DecodedKind::Trade {
            price,
            qty,
            maker_order_id,
            taker_order_id,
            ..
        } = &e.kind
        {
            assert_eq!((price.scale(), qty.scale()), (2, 3));
            let (p, q) = (i128::from(price.mantissa()), i128::from(qty.mantissa()));
            for id in [maker_order_id, taker_order_id] {
                let f = out.entry(id.to_string()).or_default();
                f.0 += q;
                f.1 += p * q;
            }
        }
    }
    out
}

/// A store of order states, keyed as the real one: (symbol, order id).
type OrderStore = BTreeMap<(String, String), OrderStateRow>;

/// Folds `events` writing every row into `store` (latest per order wins).
fn fold_into(fold: &mut OrderFold, events: &[DecodedEvent], store: &mut OrderStore) {
    for e in events {
        let rows = fold
            .apply(e, |sym, id| {
                store.get(&(sym.to_owned(), id.to_owned())).cloned()
            })
            .unwrap();
        for r in rows {
            store.insert((r.symbol.clone(), r.order_id.clone()), r);
        }
        fold.evict_terminal();
    }
}

#[test]
fn a_whole_engine_session_folds_to_the_engines_state() {
    let (events, engine) = session(3_000);
    let mut store = BTreeMap::new();
    let mut fold = OrderFold::new();
    fold_into(&mut fold, &events, &mut store);
    assert_eq!(fold.stats().orphans, 0);
    assert_eq!(fold.stats().duplicates, 0);

    let fills = fills(&events);
    let mut seen = [0usize; 6];
    for ((_, id), row) in &store {
        seen[OrderStatus::ALL
            .iter()
            .position(|s| *s == row.status)
            .unwrap()] += 1;
        let live = engine.is_live(0, &OrderId::new(id).unwrap());
        assert_eq!(
            live,
            matches!(row.status, OrderStatus::New | OrderStatus::PartiallyFilled),
            "{row:?}"
        );
        let (q, n) = fills.get(id).copied().unwrap_or_default();
        assert_eq!(i128::from(row.filled_qty.mantissa()), q, "{id}");
        if row.status != OrderStatus::Rejected {
            assert_eq!(row.filled_qty.scale(), 3, "{row:?}");
        }
        match row.avg_price {
            None => assert_eq!(q, 0),
            Some(avg) => {
                // avg = round_half_even(n / q) at 6 digits; n at scale 5, q at scale 3.
                assert_eq!(avg.scale(), 6);
                let want = div_half_even(n * 10_000, q).unwrap();
                assert_eq!(i128::from(avg.mantissa()), want, "{id}");
            }
        }
        // The notional is the exact sum, at scale 2 + 3.
        match q {
            0 => assert_eq!(row.notional, d("0"), "{id}"),
            _ => assert_eq!(row.notional, Decimal::new(n.try_into().unwrap(), 5), "{id}"),
        }
        if row.status == OrderStatus::Filled {
            assert_eq!(row.filled_qty, row.qty, "{row:?}");
        }
        if row.status != OrderStatus::Rejected {
            assert_eq!(row.qty.scale(), 3, "{row:?}");
            assert!(row.filled_qty.mantissa() <= row.qty.mantissa(), "{row:?}");
        }
    }
    // The session exercises every status.
    assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
    // Only live orders stay cached.
    assert!(fold.len() < store.len());
}

#[test]
fn a_replay_from_the_middle_converges_on_the_same_rows() {
    let (events, _) = session(1_500);
    let mut full = BTreeMap::new();
    fold_into(&mut OrderFold::new(), &events, &mut full);

    // A worker that wrote everything up to event 900 but committed offsets only up to 600
    // restarts: a fresh fold replays from 600 over the store as it was at 900.
    let mut store = BTreeMap::new();
    fold_into(&mut OrderFold::new(), &events[..900], &mut store);
    let mut fold = OrderFold::new();
    fold_into(&mut fold, &events[600..], &mut store);
    assert!(fold.stats().duplicates > 0);
    assert_eq!(fold.stats().orphans, 0);

    // Orders reloaded from the store resume from their exact notional: every row, average
    // prices included, is the uninterrupted run's, digit for digit.
    assert_eq!(store, full);
}

#[test]
fn a_restart_anywhere_writes_the_same_rows_as_an_uninterrupted_fold() {
    let (events, _) = session(1_500);
    let mut full = BTreeMap::new();
    fold_into(&mut OrderFold::new(), &events, &mut full);
    for cut in [1, 250, events.len() / 2, 1_001, events.len() - 1] {
        let mut store = BTreeMap::new();
        fold_into(&mut OrderFold::new(), &events[..cut], &mut store);
        fold_into(&mut OrderFold::new(), &events[cut..], &mut store);
        assert!(store == full, "restarted after {cut} events");
    }
}

// ---------------------------------------------------------------------------------------------
// Restarts: an order loaded from the store resumes exactly
// ---------------------------------------------------------------------------------------------

/// Orders with several fills at different price (and quantity) scales, a replace and a cancel in
/// between: `m` sells 10 to five takers at 100.01, 100.0, 99.999, 100.5 and 100.25; `b` buys at
/// three makers' prices of 1, 2 and 3 digits; `tiny` fills at prices of 15 and 14 digits, where
/// the average's scale is capped at 18.
fn fills_at_mixed_scales() -> Vec<DecodedEvent> {
    let kinds = [
        accepted("m", "mm", Side::Sell, Some("99.99"), "10"),
        accepted("t1", "tk", Side::Buy, Some("100.01"), "1"),
        trade("100.01", "1", ("m", "9"), ("t1", "0")),
        accepted("t2", "tk", Side::Buy, Some("100.0"), "2"),
        trade("100.0", "2", ("m", "7"), ("t2", "0")),
        accepted("t3", "tk", Side::Buy, None, "3.0"),
        trade("99.999", "3.0", ("m", "4.0"), ("t3", "0")),
        replaced("m", ("99.99", "100.5"), ("4.0", "3.5")),
        accepted("t4", "tk", Side::Buy, Some("100.5"), "2.5"),
        trade("100.5", "2.5", ("m", "1.0"), ("t4", "0")),
        accepted("t5", "tk", Side::Buy, Some("100.25"), "1"),
        trade("100.25", "1", ("m", "0.0"), ("t5", "0")),
        accepted("b", "tk", Side::Buy, Some("101"), "6"),
        accepted("a1", "mm", Side::Sell, Some("100.1"), "1"),
        trade("100.1", "1", ("a1", "0"), ("b", "5")),
        accepted("a2", "mm", Side::Sell, Some("100.05"), "2"),
        trade("100.05", "2", ("a2", "0"), ("b", "3")),
        accepted("a3", "mm", Side::Sell, Some("100.125"), "3"),
        trade("100.125", "2", ("a3", "1"), ("b", "1")),
        cancelled("a3", "1"),
        accepted("tiny", "tk", Side::Buy, None, "3"),
        trade("0.000000000000001", "1", ("z1", "0"), ("tiny", "2")),
        trade("0.00000000000002", "2", ("z2", "0"), ("tiny", "0")),
        expired("b", "1"),
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| ev(i as u64 + 1, kind))
        .collect()
}

#[test]
fn a_restart_resumes_the_exact_notional_not_the_rounded_average() {
    let events = fills_at_mixed_scales();
    let mut full = BTreeMap::new();
    fold_into(&mut OrderFold::new(), &events, &mut full);

    // 100.01 + 200.0 + 299.9970 + 251.25 + 100.25 = 951.5070 at scale 3 + 1; over 9.5 filled,
    // 100.158631578… at the largest price scale (3) + 4.
    let m = &full[&(SYM.to_owned(), "m".to_owned())];
    assert_eq!((m.status, m.qty), (OrderStatus::Filled, d("9.5")));
    assert_eq!(m.filled_qty, d("9.5"));
    assert_eq!(m.notional, d("951.5070"));
    assert_eq!(m.avg_price, Some(d("100.1586316")));
    // 100.1 + 200.10 + 200.250 = 500.450 over 5 = 100.09 at scale 3 + 4.
    let b = &full[&(SYM.to_owned(), "b".to_owned())];
    assert_eq!((b.status, b.filled_qty), (OrderStatus::Expired, d("5")));
    assert_eq!(b.notional, d("500.450"));
    assert_eq!(b.avg_price, Some(d("100.0900000")));
    // 1e-15 + 4e-14 = 4.1e-14 over 3, at 18 digits (15 + 4 is capped).
    let tiny = &full[&(SYM.to_owned(), "tiny".to_owned())];
    assert_eq!(tiny.notional, d("0.000000000000041"));
    assert_eq!(tiny.avg_price, Some(d("0.000000000000013667")));

    // Half the events, the rows "stored", then a fresh fold that finds them through its lookup:
    // the same rows as the uninterrupted fold. And so for every other restart point.
    for cut in std::iter::once(events.len() / 2).chain(0..=events.len()) {
        let mut store = BTreeMap::new();
        fold_into(&mut OrderFold::new(), &events[..cut], &mut store);
        let mut fold = OrderFold::new();
        fold_into(&mut fold, &events[cut..], &mut store);
        assert_eq!(store, full, "restarted after {cut} events");
        assert_eq!(fold.stats().duplicates, 0);
    }
}

#[test]
fn a_stored_rounded_average_does_not_leak_into_the_next_one() {
    // Stored: 1 @ 100.01 and 2 @ 100.0, average 100.003333 (rounded). Resuming from average ×
    // filled would say 300.009999; the stored notional says 300.010.
    let stored = OrderStateRow {
        qty: d("6"),
        filled_qty: d("3"),
        avg_price: Some(d("100.003333")),
        notional: d("300.01"),
        ..fold_row("s", 8)
    };
    let mut fold = OrderFold::new();
    let rows = fold
        .apply(
            &ev(9, trade("99.999", "3", ("s", "0"), ("t", "0"))),
            |_, id| (id == "s").then(|| stored.clone()),
        )
        .unwrap();
    // (300.01 + 299.997) / 6 = 100.0011666…: 100.0011667 (from 300.009999: …665).
    assert_eq!(rows[0].notional, d("600.007"));
    assert_eq!(rows[0].avg_price, Some(d("100.0011667")));
}

#[test]
fn a_notional_that_does_not_fit_exactly_is_poison() {
    // 12 + 7 digits of scale: more than a decimal holds, although the value (1) would fit at a
    // lower scale. Rounding it would make the next average depend on whether the worker
    // restarted.
    let mut fold = OrderFold::new();
    apply(
        &mut fold,
        &ev(1, accepted("t", "tk", Side::Buy, None, "2.0000000")),
    );
    let before = fold.get(SYM, "t").cloned();
    let err = fold
        .apply(
            &ev(
                2,
                trade(
                    "1.000000000000",
                    "1.0000000",
                    ("a", "0"),
                    ("t", "1.0000000"),
                ),
            ),
            no_store,
        )
        .unwrap_err();
    assert_eq!(
        err,
        FoldError::Overflow {
            order_id: "t".into(),
            what: "notional"
        }
    );
    assert_eq!(fold.get(SYM, "t").cloned(), before, "the fold is unchanged");

    // 9e9 × 9e9 = 8.1e19 is beyond 64 bits even at scale 0 (its average, 9e9, would fit).
    apply(
        &mut fold,
        &ev(3, accepted("u", "tk", Side::Buy, None, "9000000000")),
    );
    let err = fold
        .apply(
            &ev(4, trade("9000000000", "9000000000", ("u", "0"), ("v", "0"))),
            no_store,
        )
        .unwrap_err();
    assert_eq!(
        err,
        FoldError::Overflow {
            order_id: "u".into(),
            what: "notional"
        }
    );
    assert_eq!(fold.get(SYM, "u").unwrap().filled_qty, d("0"));
}

/// `ev` on another symbol of the same source partition.
fn ev_on(symbol: &str, seq: u64, kind: DecodedKind) -> DecodedEvent {
    DecodedEvent {
        symbol: Symbol::new(symbol).unwrap(),
        ..ev(seq, kind)
    }
}

#[test]
fn the_same_order_id_on_two_symbols_is_two_orders() {
    // Order ids are unique per book only: two symbols of one partition may both have an `o-1`.
    let mut fold = OrderFold::new();
    apply(
        &mut fold,
        &ev_on(
            SYM,
            1,
            accepted("o-1", "mm", Side::Sell, Some("100.00"), "2"),
        ),
    );
    apply(
        &mut fold,
        &ev_on(
            "ETH-USD",
            2,
            accepted("o-1", "other", Side::Buy, Some("5.00"), "3"),
        ),
    );
    let btc = apply(
        &mut fold,
        &ev_on(SYM, 3, trade("100.00", "1", ("o-1", "1"), ("t", "0"))),
    );
    let eth = apply(&mut fold, &ev_on("ETH-USD", 4, cancelled("o-1", "3")));
    let summary = |rows: &[OrderStateRow]| -> Vec<(String, String, OrderStatus, Decimal, Decimal)> {
        rows.iter()
            .map(|r| {
                (
                    r.symbol.clone(),
                    r.account.clone(),
                    r.status,
                    r.qty,
                    r.filled_qty,
                )
            })
            .collect()
    };
    assert_eq!(
        summary(&btc),
        [(
            SYM.to_owned(),
            "mm".to_owned(),
            OrderStatus::PartiallyFilled,
            d("2"),
            d("1")
        )],
        "the fill lands on the BTC-USD order"
    );
    assert_eq!(
        summary(&eth),
        [(
            "ETH-USD".to_owned(),
            "other".to_owned(),
            OrderStatus::Cancelled,
            d("3"),
            d("0")
        )],
        "the cancel lands on the ETH-USD order, unfilled"
    );
}

#[test]
fn two_symbols_with_one_order_id_through_the_fold_and_the_store() {
    use tradestream_store::sqlite::SqliteStore;
    use tradestream_store::{Batch, Store};

    let dir = std::env::temp_dir().join(format!(
        "tradestream-fold-two-symbols-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut store = SqliteStore::open(dir.join("store.db")).unwrap();
    let events = [
        ev_on(
            SYM,
            1,
            accepted("o-1", "mm", Side::Sell, Some("100.00"), "2"),
        ),
        ev_on(
            "ETH-USD",
            2,
            accepted("o-1", "other", Side::Buy, Some("5.00"), "3"),
        ),
        ev_on(SYM, 3, trade("100.00", "1", ("o-1", "1"), ("t", "0"))),
        ev_on("ETH-USD", 4, cancelled("o-1", "3")),
        ev_on(SYM, 5, trade("100.00", "1", ("o-1", "0"), ("t", "0"))),
    ];
    let mut fold = OrderFold::new();
    for (i, e) in events.iter().enumerate() {
        // A restart after each event: every order comes back from the store, by symbol and id.
        if i > 0 {
            fold = OrderFold::new();
        }
        let rows = fold
            .apply(e, |symbol, id| store.order(symbol, id).unwrap())
            .unwrap();
        store
            .write(&Batch {
                orders: rows,
                ..Batch::default()
            })
            .unwrap();
    }
    let btc = store.order(SYM, "o-1").unwrap().unwrap();
    let eth = store.order("ETH-USD", "o-1").unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        (btc.account.as_str(), btc.status, btc.qty, btc.filled_qty),
        ("mm", OrderStatus::Filled, d("2"), d("2"))
    );
    assert_eq!(
        (eth.account.as_str(), eth.status, eth.qty, eth.filled_qty),
        ("other", OrderStatus::Cancelled, d("3"), d("0"))
    );
    assert_eq!(
        fold.stats().orphans,
        1,
        "only the taker `t`, never accepted here"
    );
}
