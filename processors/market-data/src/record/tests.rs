use tradestream_engine::Decimal;

use super::*;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn row(interval: Interval) -> CandleRow {
    CandleRow {
        symbol: "ETH-USD".into(),
        interval,
        bucket_start_ms: 3_600_000,
        open: d("3000.10"),
        high: d("3001.00"),
        low: d("2999.95"),
        close: d("3000.00"),
        volume: d("2.5000"),
        turnover: d("7500.375000"),
        vwap: d("3000.150000"),
        trade_count: 4,
        closed: false,
        source_partition: 5,
        seq: 77,
    }
}

#[test]
fn candle_rows_round_trip_through_the_topic_record() {
    for interval in Interval::ALL {
        let r = row(interval);
        let bytes = encode(&r, Framing::SingleObject).unwrap();
        assert_eq!(decode(&bytes).unwrap(), r);
        assert_eq!(to_record(&r).interval, interval.as_str());
    }
}

#[test]
fn an_unknown_interval_is_an_error() {
    let rec = CandleRecord {
        interval: "5m".into(),
        ..to_record(&row(Interval::M1))
    };
    let bytes = encode_candle(&rec, Framing::SingleObject).unwrap();
    assert!(matches!(
        decode(&bytes),
        Err(AvroError::Field {
            field: "interval",
            ..
        })
    ));
    assert!(decode(&[0xC3, 0x01, 1, 2]).is_err());
}
