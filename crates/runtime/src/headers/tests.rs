//! Unit tests of the provenance headers.

use super::*;

#[test]
fn numbers_are_written_as_to_string_writes_them() {
    for n in [
        0,
        7,
        -1,
        10,
        -10,
        1_234_567,
        i128::from(i32::MIN),
        i128::from(i32::MAX),
        i128::from(i64::MIN),
        i128::from(i64::MAX),
        i128::from(u64::MAX),
    ] {
        let mut buf = [0u8; 20];
        let magnitude = u64::try_from(n.unsigned_abs()).unwrap();
        assert_eq!(
            decimal(&mut buf, n < 0, magnitude),
            n.to_string().as_bytes()
        );
    }
}

#[test]
fn provenance_headers_carry_decimal_text() {
    let headers = Provenance {
        source_topic: "orders",
        source_partition: 3,
        source_offset: -1,
        seq: u64::MAX,
        worker: "matcher",
    }
    .headers();
    assert_eq!(text(&headers, SOURCE_TOPIC), Some("orders"));
    assert_eq!(text(&headers, SOURCE_PARTITION), Some("3"));
    assert_eq!(text(&headers, SOURCE_OFFSET), Some("-1"));
    assert_eq!(text(&headers, SEQ), Some("18446744073709551615"));
    assert_eq!(text(&headers, WORKER), Some("matcher"));
}
