use tradestream_engine::Side;

use super::*;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn round_trip<R: CachedRow + PartialEq + std::fmt::Debug>(row: &R) {
    let text = row.encode();
    assert_eq!(&R::decode(&text, "k").unwrap(), row, "{text}");
    assert_eq!(text, row.encode(), "deterministic");
}

#[test]
fn rows_round_trip_exactly() {
    round_trip(&TradeRow {
        symbol: "BTC-USD".into(),
        source_partition: 2,
        seq: 9,
        ts_ms: 1_700_000_000_000,
        price: d("60000.10"),
        qty: d("0.500"),
        maker_order_id: "m".into(),
        maker_account: "a".into(),
        taker_order_id: "t".into(),
        taker_account: "b".into(),
        taker_side: Side::Sell,
    });
    round_trip(&OrderStateRow {
        order_id: "o-1".into(),
        account: "alice".into(),
        symbol: "ETH-USD".into(),
        side: Side::Buy,
        status: OrderStatus::PartiallyFilled,
        price: Some(d("3000.00")),
        qty: d("2.0"),
        filled_qty: d("0.5"),
        avg_price: Some(d("3000.000000")),
        notional: d("1500.000"),
        updated_ts_ms: 5,
        source_partition: 1,
        seq: 44,
    });
    round_trip(&CandleRow {
        symbol: "ETH-USD".into(),
        interval: Interval::M1,
        bucket_start_ms: 60_000,
        open: d("1.10"),
        high: d("1.20"),
        low: d("1.00"),
        close: d("1.15"),
        volume: d("3.0"),
        turnover: d("3.450"),
        vwap: d("1.150000"),
        trade_count: 3,
        closed: true,
        source_partition: 0,
        seq: 7,
    });
    round_trip(&TopOfBookRow {
        symbol: "X".into(),
        bid: Some((d("1.00"), d("5"))),
        ask: None,
        ts_ms: 1,
        source_partition: 3,
        seq: 2,
    });
}

#[test]
fn bad_text_is_a_corrupt_error_naming_the_key() {
    let e = TradeRow::decode("{}", "ts:trades:X").unwrap_err();
    assert!(matches!(e, CacheError::Corrupt { ref key, .. } if key == "ts:trades:X"));
    let mut text = TopOfBookRow {
        symbol: "X".into(),
        bid: None,
        ask: None,
        ts_ms: 1,
        source_partition: 0,
        seq: 1,
    }
    .encode();
    text = text.replace("\"bid\":null", "\"bid\":[1.5,2]");
    assert!(TopOfBookRow::decode(&text, "k").is_err(), "floats refused");
}
