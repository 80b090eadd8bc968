use tradestream_engine::{
    Account, CancelOrder, EventKind, InstrumentSpec, Instruments, NewOrder, OrderId, OrderType,
    ReplaceOrder, Request, Seq, Side, Symbol, Tif,
};

use super::*;

/// A broker timestamp: 2024-11-29T17:06:40Z.
const NOW: i64 = 1_732_900_000_000;
const WINDOW: Option<Duration> = Some(DEFAULT_MAX_CLOCK_SKEW);
const SKEW_MS: i64 = 300_000;

fn engine() -> Engine {
    Engine::new(
        Instruments::new(&[InstrumentSpec {
            symbol: "BTC-USD".into(),
            tick_size: "0.01".parse().unwrap(),
            lot_size: "0.001".parse().unwrap(),
            min_qty: None,
            max_qty: None,
            min_price: None,
            max_price: None,
        }])
        .unwrap(),
    )
}

fn order(id: &str, side: Side, price: &str, ts: i64) -> Command {
    Command::New(NewOrder {
        order_id: OrderId::new(id).unwrap(),
        account: Account::new(&format!("acct-{id}")).unwrap(),
        symbol: Symbol::new("BTC-USD").unwrap(),
        side,
        order_type: OrderType::Limit,
        price: Some(price.parse().unwrap()),
        qty: "1".parse().unwrap(),
        tif: Tif::Gtc,
        post_only: false,
        ts,
    })
}

fn cancel(id: &str, ts: i64) -> Command {
    Command::Cancel(CancelOrder {
        order_id: OrderId::new(id).unwrap(),
        account: Account::new(&format!("acct-{id}")).unwrap(),
        symbol: Symbol::new("BTC-USD").unwrap(),
        ts,
    })
}

fn run(
    e: &mut Engine,
    cmd: &Command,
    record_ts: Option<i64>,
    window: Option<Duration>,
) -> (Checked, Vec<Event>) {
    let mut out = Vec::new();
    let checked = apply(e, cmd, record_ts, window, &mut out);
    (checked, out)
}

#[test]
fn the_window_is_inclusive_either_way() {
    let mut e = engine();
    for (i, ts) in [NOW, NOW - SKEW_MS, NOW + SKEW_MS, NOW + 1, NOW - 1]
        .into_iter()
        .enumerate()
    {
        let (checked, out) = run(
            &mut e,
            &order(&format!("ok{i}"), Side::Buy, "100", ts),
            Some(NOW),
            WINDOW,
        );
        assert_eq!(checked, Checked::Applied, "ts {ts}");
        assert!(matches!(out[0].kind, EventKind::Accepted { .. }), "ts {ts}");
        assert_eq!(out[0].ts, ts, "an accepted command keeps its own ts");
    }
    for (i, ts) in [NOW - SKEW_MS - 1, NOW + SKEW_MS + 1]
        .into_iter()
        .enumerate()
    {
        let (checked, out) = run(
            &mut e,
            &order(&format!("bad{i}"), Side::Buy, "100", ts),
            Some(NOW),
            WINDOW,
        );
        assert_eq!(checked, Checked::Rejected, "ts {ts}");
        assert!(
            matches!(
                &out[0].kind,
                EventKind::Rejected { reason, .. } if reason.code() == "bad_timestamp"
            ),
            "ts {ts}: {out:?}"
        );
    }
}

#[test]
fn a_microsecond_order_is_rejected_in_sequence_and_trades_nothing() {
    let mut e = engine();
    run(
        &mut e,
        &order("m", Side::Sell, "100", NOW),
        Some(NOW),
        WINDOW,
    );
    let seq = e.last_seq();
    // Would cross the resting sell, stamped in microseconds.
    let (checked, out) = run(
        &mut e,
        &order("u", Side::Buy, "100", NOW * 1_000),
        Some(NOW + 5),
        WINDOW,
    );
    assert_eq!(checked, Checked::Rejected);
    let [rejected] = out.as_slice() else {
        panic!("one rejection, nothing traded: {out:?}");
    };
    assert_eq!(rejected.seq, Seq(seq + 1));
    assert_eq!(rejected.ts, NOW + 5, "stamped with the broker's time");
    let EventKind::Rejected {
        order_id,
        account,
        request,
        reason,
    } = &rejected.kind
    else {
        panic!("{rejected:?}");
    };
    assert_eq!(
        (order_id.as_str(), account.as_str(), *request),
        ("u", "acct-u", Request::New)
    );
    assert_eq!(reason.code(), "bad_timestamp");
    let detail = reason.detail().unwrap();
    assert!(detail.contains("1732900000000000"), "{detail}");
    assert!(detail.contains("ahead"), "{detail}");
    // Seconds instead of milliseconds: decades behind.
    let (checked, out) = run(
        &mut e,
        &order("s", Side::Buy, "100", NOW / 1_000),
        Some(NOW),
        WINDOW,
    );
    assert_eq!(checked, Checked::Rejected);
    let detail = match &out[0].kind {
        EventKind::Rejected { reason, .. } => reason.detail().unwrap().to_owned(),
        other => panic!("{other:?}"),
    };
    assert!(detail.contains("behind"), "{detail}");
    // The resting sell is still there for a well-stamped buy.
    let (_, out) = run(
        &mut e,
        &order("b", Side::Buy, "100", NOW),
        Some(NOW),
        WINDOW,
    );
    assert!(
        out.iter()
            .any(|e| matches!(e.kind, EventKind::Trade { .. }))
    );
}

#[test]
fn a_badly_stamped_cancel_or_replace_is_refused_to_the_sender_and_changes_nothing() {
    let mut e = engine();
    run(&mut e, &order("o", Side::Buy, "99", NOW), Some(NOW), WINDOW);
    let (checked, out) = run(&mut e, &cancel("o", i64::MAX), Some(NOW), WINDOW);
    assert_eq!(checked, Checked::Rejected);
    assert!(matches!(
        &out[0].kind,
        EventKind::Rejected { account, request: Request::Cancel, .. } if account.as_str() == "acct-o"
    ));
    let replace = Command::Replace(ReplaceOrder {
        order_id: OrderId::new("o").unwrap(),
        account: Account::new("acct-o").unwrap(),
        symbol: Symbol::new("BTC-USD").unwrap(),
        price: Some("100".parse().unwrap()),
        qty: None,
        ts: i64::MIN,
    });
    let (checked, _) = run(&mut e, &replace, Some(NOW), WINDOW);
    assert_eq!(checked, Checked::Rejected);
    assert!(e.is_live(0, &OrderId::new("o").unwrap()));
    let (checked, out) = run(&mut e, &cancel("o", NOW), Some(NOW), WINDOW);
    assert_eq!(checked, Checked::Applied);
    assert!(matches!(out[0].kind, EventKind::Cancelled { .. }));
}

#[test]
fn no_window_or_no_broker_timestamp_applies_unchecked() {
    let mut e = engine();
    let (checked, out) = run(
        &mut e,
        &order("a", Side::Buy, "1", NOW * 1_000),
        None,
        WINDOW,
    );
    assert_eq!(checked, Checked::Unchecked);
    assert!(matches!(out[0].kind, EventKind::Accepted { .. }));
    let (checked, out) = run(
        &mut e,
        &order("b", Side::Buy, "1", NOW * 1_000),
        Some(NOW),
        None,
    );
    assert_eq!(checked, Checked::Applied);
    assert!(matches!(out[0].kind, EventKind::Accepted { .. }));
}

#[test]
fn extreme_values_do_not_overflow() {
    assert!(outside_window(i64::MAX, i64::MIN, u64::MAX).is_none());
    assert!(outside_window(i64::MAX, i64::MIN, 0).is_some());
    assert!(outside_window(i64::MIN, i64::MAX, 1).is_some());
    assert!(outside_window(NOW, NOW, 0).is_none());
}
