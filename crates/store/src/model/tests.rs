use super::*;

fn trade(maker_account: &str, taker_account: &str) -> TradeRow {
    TradeRow {
        symbol: "X".into(),
        source_partition: 0,
        seq: 1,
        ts_ms: 0,
        price: Decimal::from_int(1),
        qty: Decimal::from_int(1),
        maker_order_id: "m".into(),
        maker_account: maker_account.into(),
        taker_order_id: "t".into(),
        taker_account: taker_account.into(),
        taker_side: Side::Buy,
    }
}

#[test]
fn a_self_match_is_one_role() {
    let two = trade("a", "b");
    let roles: Vec<_> = two.account_roles().collect();
    assert_eq!(roles, [("a", "maker"), ("b", "taker")]);
    let one = trade("a", "a");
    let roles: Vec<_> = one.account_roles().collect();
    assert_eq!(roles, [("a", "self")]);
}

#[test]
fn stored_names_parse_back() {
    for side in [Side::Buy, Side::Sell] {
        assert_eq!(side_from_str(side.as_str()), Some(side));
    }
    assert_eq!(side_from_str("BUY"), None);
    for status in OrderStatus::ALL {
        assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
    }
    for interval in Interval::ALL {
        assert_eq!(Interval::parse(interval.as_str()), Some(interval));
    }
}

#[test]
fn days_and_buckets() {
    assert_eq!(day_of(0), 0);
    assert_eq!(day_of(86_399_999), 0);
    assert_eq!(day_of(86_400_000), 1);
    assert_eq!(day_of(-1), -1);
    assert_eq!(Interval::M1.bucket_start(61_500), 60_000);
    assert_eq!(Interval::S1.bucket_start(-1), -1_000);
}
