//! Tests of the notification rules.

use std::collections::BTreeSet;

use tradestream_codec::avro::{DecodedEvent, DecodedKind};
use tradestream_engine::{Account, Decimal, OrderId, OrderType, Request, Side, Symbol, Tif};
use tradestream_store::model::NotificationRow;

use super::*;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn ev(kind: DecodedKind) -> DecodedEvent {
    DecodedEvent {
        seq: 42,
        ts: 1_732_900_000_123,
        symbol: Symbol::new("BTC-USD").unwrap(),
        source_partition: 6,
        source_offset: 1_000,
        kind,
    }
}

fn id(s: &str) -> OrderId {
    OrderId::new(s).unwrap()
}

fn acct(s: &str) -> Account {
    Account::new(s).unwrap()
}

fn trade(maker: (&str, &str, &str), taker: (&str, &str, &str), taker_side: Side) -> DecodedKind {
    DecodedKind::Trade {
        price: d("60000.00"),
        qty: d("0.50"),
        maker_order_id: id(maker.0),
        maker_account: acct(maker.1),
        maker_leaves: d(maker.2),
        taker_order_id: id(taker.0),
        taker_account: acct(taker.1),
        taker_side,
        taker_leaves: d(taker.2),
    }
}

/// (account, kind, order id, text) of each row.
fn summary(rows: &[NotificationRow]) -> Vec<(&str, &str, &str, &str)> {
    rows.iter()
        .map(|r| {
            (
                r.account.as_str(),
                r.kind.as_str(),
                r.order_id.as_str(),
                r.text.as_str(),
            )
        })
        .collect()
}

#[test]
fn accepted_orders() {
    let limit = ev(DecodedKind::Accepted {
        order_id: id("o1"),
        account: acct("alice"),
        side: Side::Buy,
        order_type: OrderType::Limit,
        tif: Tif::Gtc,
        price: Some(d("60000.00")),
        qty: d("0.50"),
        post_only: true,
    });
    assert_eq!(
        notifications(&limit),
        [NotificationRow {
            account: "alice".into(),
            source_partition: 6,
            seq: 42,
            ts_ms: 1_732_900_000_123,
            kind: "accepted".into(),
            order_id: "o1".into(),
            symbol: "BTC-USD".into(),
            text: "accepted: buy 0.50 BTC-USD at 60000.00 (gtc, post-only)".into(),
        }]
    );
    let market = ev(DecodedKind::Accepted {
        order_id: id("o2"),
        account: acct("bob"),
        side: Side::Sell,
        order_type: OrderType::Market,
        tif: Tif::Ioc,
        price: None,
        qty: d("1"),
        post_only: false,
    });
    assert_eq!(
        summary(&notifications(&market)),
        [(
            "bob",
            "accepted",
            "o2",
            "accepted: sell 1 BTC-USD at market (ioc)"
        )]
    );
}

#[test]
fn a_trade_tells_maker_and_taker() {
    let rows = notifications(&ev(trade(
        ("m1", "maker-acct", "0.25"),
        ("t1", "taker-acct", "0"),
        Side::Buy,
    )));
    assert_eq!(
        summary(&rows),
        [
            (
                "maker-acct",
                "fill",
                "m1",
                "sold 0.50 BTC-USD at 60000.00 (0.25 left)"
            ),
            (
                "taker-acct",
                "fill",
                "t1",
                "bought 0.50 BTC-USD at 60000.00 (filled)"
            ),
        ]
    );
    assert!(rows.iter().all(|r| (r.seq, r.source_partition) == (42, 6)));

    let rows = notifications(&ev(trade(
        ("m1", "maker-acct", "0"),
        ("t1", "taker-acct", "1.50"),
        Side::Sell,
    )));
    assert_eq!(rows[0].text, "bought 0.50 BTC-USD at 60000.00 (filled)");
    assert_eq!(rows[1].text, "sold 0.50 BTC-USD at 60000.00 (1.50 left)");
}

#[test]
fn a_self_match_is_one_combined_notification() {
    let rows = notifications(&ev(trade(
        ("m1", "carol", "0.25"),
        ("t1", "carol", "0"),
        Side::Buy,
    )));
    assert_eq!(
        summary(&rows),
        [(
            "carol",
            "fill",
            "t1",
            "self-trade: order t1 bought 0.50 BTC-USD at 60000.00 from order m1 \
             (t1: filled; m1: 0.25 left)"
        )]
    );
    let rows = notifications(&ev(trade(
        ("m1", "carol", "0"),
        ("t1", "carol", "0.10"),
        Side::Sell,
    )));
    assert_eq!(
        rows[0].text,
        "self-trade: order t1 sold 0.50 BTC-USD at 60000.00 to order m1 (t1: 0.10 left; m1: filled)"
    );
}

#[test]
fn row_keys_are_unique_per_execution() {
    // The store's key, (account, ts_ms, source_partition, seq), and the topic readers'
    // idempotency key, (account, source_partition, seq).
    for (maker, taker) in [("a", "b"), ("a", "a")] {
        let rows = notifications(&ev(trade(("m", maker, "0"), ("t", taker, "0"), Side::Buy)));
        let keys: BTreeSet<_> = rows
            .iter()
            .map(|r| (r.account.clone(), r.ts_ms, r.source_partition, r.seq))
            .collect();
        assert_eq!(keys.len(), rows.len(), "{maker} {taker}");
        let keys: BTreeSet<_> = rows.iter().map(NotificationRow::idempotency_key).collect();
        assert_eq!(keys.len(), rows.len(), "{maker} {taker}");
    }
    // Without the account, the two sides of a trade between two accounts are one key.
    let rows = notifications(&ev(trade(("m", "a", "0"), ("t", "b", "0"), Side::Buy)));
    assert_eq!(
        (rows[0].source_partition, rows[0].seq),
        (rows[1].source_partition, rows[1].seq)
    );
}

#[test]
fn cancels_expiries_and_replaces() {
    let cancelled = ev(DecodedKind::Cancelled {
        order_id: id("o1"),
        account: acct("alice"),
        qty: d("0.25"),
    });
    assert_eq!(
        summary(&notifications(&cancelled)),
        [(
            "alice",
            "cancelled",
            "o1",
            "cancelled: 0.25 BTC-USD was open"
        )]
    );
    let expired = ev(DecodedKind::Expired {
        order_id: id("o2"),
        account: acct("bob"),
        qty: d("1.00"),
    });
    assert_eq!(
        summary(&notifications(&expired)),
        [("bob", "expired", "o2", "expired: 1.00 BTC-USD unfilled")]
    );
    let replaced = ev(DecodedKind::Replaced {
        order_id: id("o3"),
        account: acct("carol"),
        side: Side::Sell,
        old_price: d("60000.00"),
        price: d("60010.00"),
        old_qty: d("0.50"),
        qty: d("0.40"),
        priority_kept: false,
    });
    assert_eq!(
        summary(&notifications(&replaced)),
        [(
            "carol",
            "replaced",
            "o3",
            "replaced: sell BTC-USD at 60000.00 -> 60010.00, open 0.50 -> 0.40 \
             (lost queue priority)"
        )]
    );
}

/// A rejection addressed to `account` (`""`: nobody).
fn rejected(
    order_id: &str,
    account: &str,
    request: Request,
    reason: &str,
    detail: Option<&str>,
) -> DecodedKind {
    DecodedKind::Rejected {
        order_id: id(order_id),
        account: acct(account),
        request,
        reason: reason.into(),
        detail: detail.map(Into::into),
    }
}

#[test]
fn rejections_tell_the_account_the_engine_names() {
    let off_tick = ev(rejected(
        "o1",
        "alice",
        Request::New,
        "price_off_tick",
        None,
    ));
    assert_eq!(
        notifications(&off_tick),
        [NotificationRow {
            account: "alice".into(),
            source_partition: 6,
            seq: 42,
            ts_ms: 1_732_900_000_123,
            kind: "rejected".into(),
            order_id: "o1".into(),
            symbol: "BTC-USD".into(),
            text: "rejected: price_off_tick".into(),
        }]
    );
    // The reason's detail, and the refused request when it was not a new order.
    let malformed = ev(rejected(
        "o2",
        "bob",
        Request::Cancel,
        "malformed",
        Some("missing symbol"),
    ));
    assert_eq!(
        summary(&notifications(&malformed)),
        [(
            "bob",
            "rejected",
            "o2",
            "rejected: malformed: missing symbol (cancel request)"
        )]
    );
    let replace = ev(rejected(
        "o3",
        "carol",
        Request::Replace,
        "post_only_would_trade",
        None,
    ));
    assert_eq!(
        summary(&notifications(&replace)),
        [(
            "carol",
            "rejected",
            "o3",
            "rejected: post_only_would_trade (replace request)"
        )]
    );
    // The same row as the helper builds for that account.
    assert_eq!(
        notifications(&replace),
        [rejection(&replace, "carol").unwrap()]
    );
    // Another account's cancel: the engine names the sender, who alone is told.
    let not_owner = ev(rejected(
        "o4",
        "mallory",
        Request::Cancel,
        "not_owner",
        None,
    ));
    assert_eq!(
        summary(&notifications(&not_owner)),
        [(
            "mallory",
            "rejected",
            "o4",
            "rejected: not_owner (cancel request)"
        )]
    );
    // None of them is unaddressed.
    let mut n = NotificationRules::new();
    for e in [&off_tick, &malformed, &replace, &not_owner] {
        assert_eq!(n.notify(e).len(), 1);
    }
    assert_eq!(n.unaddressed(), 0);
}

#[test]
fn rejections_without_an_account_are_unaddressed() {
    // A malformed command whose account could not be read, or a record written before the
    // engine named the sender of every refused cancel (an unknown order then had nobody).
    let unknown = ev(rejected("o9", "", Request::Cancel, "unknown_order", None));
    let unreadable = ev(rejected(
        "",
        "",
        Request::Unknown,
        "malformed",
        Some("expected value"),
    ));
    let mut n = NotificationRules::new();
    for e in [&unknown, &unreadable] {
        assert!(notifications(e).is_empty());
        assert!(n.notify(e).is_empty());
    }
    assert_eq!(
        n.notify(&ev(trade(("m", "a", "0"), ("t", "b", "0"), Side::Buy)))
            .len(),
        2
    );
    assert_eq!(n.unaddressed(), 2);

    // With an account from elsewhere, the helper still builds the text.
    let row = rejection(&unknown, "dave").unwrap();
    assert_eq!(
        (
            row.account.as_str(),
            row.kind.as_str(),
            row.order_id.as_str(),
            row.text.as_str()
        ),
        (
            "dave",
            "rejected",
            "o9",
            "rejected: unknown_order (cancel request)"
        )
    );
    assert_eq!((row.seq, row.source_partition), (42, 6));
    assert_eq!(
        rejection(&ev(trade(("m", "a", "0"), ("t", "b", "0"), Side::Buy)), "a"),
        None
    );
}

#[test]
fn market_data_tells_nobody() {
    let delta = ev(DecodedKind::BookDelta {
        side: Side::Buy,
        price: d("1"),
        qty: d("1"),
    });
    assert!(notifications(&delta).is_empty());
    let top = ev(DecodedKind::TopOfBook {
        bid: None,
        ask: None,
    });
    assert!(notifications(&top).is_empty());
}
