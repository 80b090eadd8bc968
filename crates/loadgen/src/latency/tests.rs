use super::*;

#[test]
fn nearest_rank_percentiles() {
    let mut h = Histogram::default();
    for ms in 1..=1000 {
        h.record_micros(ms * 1000);
    }
    let p = h.percentiles();
    assert_eq!(p.count, 1000);
    assert_eq!(p.p50_ms, 500.0);
    assert_eq!(p.p99_ms, 990.0);
    assert_eq!(p.p99_9_ms, 999.0);
    assert_eq!(p.max_ms, 1000.0);
    h.record_micros(-5);
    assert_eq!(h.quantile_ms(0.0), 0.0);
    assert_eq!(Histogram::default().percentiles(), Percentiles::default());
}

#[test]
fn the_ts_of_a_json_line() {
    assert_eq!(
        json_ts(br#"{"type":"cancel","order_id":"o-1","ts":1732900000001}"#),
        Some(1_732_900_000_001)
    );
    assert_eq!(json_ts(br#"{"ts": 12}"#), Some(12));
    assert_eq!(json_ts(br#"{"type":"cancel"}"#), None);
}
