use super::*;

fn cql(bytes: &[u8], scale: i32) -> CqlDecimal {
    CqlDecimal::from_signed_be_bytes_slice_and_exponent(bytes, scale)
}

#[test]
fn decimals_round_trip_through_cql() {
    for d in [
        Decimal::new(10050, 2),
        Decimal::new(-5, 1),
        Decimal::new(0, 0),
        Decimal::new(0, 4),
        Decimal::new(1, 18),
        Decimal::new(127, 0),
        Decimal::new(128, 0),
        Decimal::new(-128, 0),
        Decimal::new(-129, 0),
        Decimal::new(i64::MAX, 4),
        Decimal::new(i64::MIN, 18),
    ] {
        let bytes = d.mantissa().to_be_bytes();
        let stored = cql(minimal_twos_complement(&bytes), i32::from(d.scale()));
        assert_eq!(decimal_from_cql(&stored), Ok(d), "{d}");
    }
}

#[test]
fn unscaled_values_are_minimal() {
    assert_eq!(minimal_twos_complement(&0i64.to_be_bytes()), [0x00]);
    assert_eq!(minimal_twos_complement(&(-1i64).to_be_bytes()), [0xff]);
    assert_eq!(minimal_twos_complement(&127i64.to_be_bytes()), [0x7f]);
    assert_eq!(minimal_twos_complement(&128i64.to_be_bytes()), [0x00, 0x80]);
    assert_eq!(minimal_twos_complement(&(-128i64).to_be_bytes()), [0x80]);
    assert_eq!(
        minimal_twos_complement(&(-129i64).to_be_bytes()),
        [0xff, 0x7f]
    );
    assert_eq!(
        minimal_twos_complement(&10050i64.to_be_bytes()),
        [0x27, 0x42]
    );
}

#[test]
fn decimals_that_do_not_fit_are_refused() {
    // Non-minimal encodings are fine.
    assert_eq!(
        decimal_from_cql(&cql(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 5], 1)),
        Ok(Decimal::new(5, 1))
    );
    // A negative scale is a whole number.
    assert_eq!(
        decimal_from_cql(&cql(&[12], -3)),
        Ok(Decimal::new(12_000, 0))
    );
    assert!(decimal_from_cql(&cql(&[1, 0, 0, 0, 0, 0, 0, 0, 0], 0)).is_err());
    assert!(decimal_from_cql(&cql(&[1], 19)).is_err());
    assert!(decimal_from_cql(&cql(&[1], -19)).is_err());
    assert!(decimal_from_cql(&cql(&[], 0)).is_err());
    let err = dec(&cql(&[1], 40), "orders", "qty").unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "orders",
                ..
            }
        ),
        "{err}"
    );
}
