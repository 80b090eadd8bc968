use super::*;
use tradestream_engine::{Decimal, Price, Qty, Symbol};

#[test]
fn reads_quoted_and_unquoted_decimals_exactly() {
    let yaml = r#"
instruments:
  - symbol: BTC-USD
    tick-size: 0.01
    lot-size: "0.0001"
    min-qty: "0.001"
    max-price: 1000000
  - symbol: ETH-USD
    tick-size: "0.05"
    lot-size: 0.001
"#;
    let inst = parse_instruments(yaml, "test").unwrap();
    assert_eq!(inst.len(), 2);
    let btc = inst.get(&Symbol::new("BTC-USD").unwrap()).unwrap();
    assert_eq!(btc.tick_size, Decimal::new(1, 2));
    assert_eq!(btc.lot_size, Decimal::new(1, 4));
    assert_eq!(btc.min_qty, Qty(10));
    assert_eq!(btc.max_price, Price(100_000_000));
    let eth = inst.get(&Symbol::new("ETH-USD").unwrap()).unwrap();
    assert_eq!(eth.tick_size, Decimal::new(5, 2));
}

#[test]
fn refuses_unknown_fields_and_bad_instruments() {
    let unknown = "instruments:\n  - symbol: X\n    tick-size: 1\n    lot-size: 1\n    tick: 2\n";
    let err = parse_instruments(unknown, "f.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field"), "{err}");
    let dup = "instruments:\n  - {symbol: X, tick-size: 1, lot-size: 1}\n  - {symbol: X, tick-size: 1, lot-size: 1}\n";
    let err = parse_instruments(dup, "f.yaml").unwrap_err().to_string();
    assert!(err.contains("configured twice"), "{err}");
    let off = "instruments:\n  - {symbol: X, tick-size: 0.5, lot-size: 1, max-price: 0.75}\n";
    let err = parse_instruments(off, "f.yaml").unwrap_err().to_string();
    assert!(err.contains("not a whole number of ticks"), "{err}");
    let zero = "instruments:\n  - {symbol: X, tick-size: 0, lot-size: 1}\n";
    let err = parse_instruments(zero, "f.yaml").unwrap_err().to_string();
    assert!(err.contains("must be positive"), "{err}");
}

#[test]
fn reports_unreadable_files() {
    let err = load_instruments(Path::new("/nonexistent/instruments.yaml")).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot read /nonexistent/instruments.yaml")
    );
}
