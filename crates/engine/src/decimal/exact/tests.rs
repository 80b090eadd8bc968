use super::*;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn rounds_half_to_even() {
    assert_eq!(div_half_even(5, 2), Some(2));
    assert_eq!(div_half_even(7, 2), Some(4));
    assert_eq!(div_half_even(-5, 2), Some(-2));
    assert_eq!(div_half_even(-7, 2), Some(-4));
    assert_eq!(div_half_even(26, 10), Some(3));
    assert_eq!(div_half_even(24, 10), Some(2));
    assert_eq!(div_half_even(1, 3), Some(0));
    assert_eq!(div_half_even(2, 3), Some(1));
    assert_eq!(div_half_even(1, 0), None);
    assert_eq!(div_half_even(i128::MIN, -1), None);
}

#[test]
fn adds_and_divides_exactly() {
    let a = Wide::product(d("60000.00"), d("0.5"));
    let b = Wide::product(d("60000.01"), d("0.25"));
    let sum = a.checked_add(b).unwrap();
    assert_eq!((sum.mantissa(), sum.scale()), (450_000_025, 4));
    assert_eq!(sum.to_decimal(), Some(d("45000.0025")));
    let qty = Wide::of(d("0.5")).checked_add(Wide::of(d("0.25"))).unwrap();
    // 45000.0025 / 0.75 = 60000.003333…
    assert_eq!(sum.div_round(qty, 6), Some(d("60000.003333")));
    // Ties go to the even neighbour: 0.125 → 0.12, 0.135 → 0.14.
    assert_eq!(Wide::of(d("0.125")).to_decimal(), Some(d("0.125")));
    let one = Wide::of(d("1"));
    assert_eq!(Wide::of(d("0.125")).div_round(one, 2), Some(d("0.12")));
    assert_eq!(Wide::of(d("0.135")).div_round(one, 2), Some(d("0.14")));
    assert_eq!(Wide::of(d("1")).div_round(Wide::ZERO, 2), None);
    assert_eq!(Wide::of(d("1")).div_round(one, MAX_SCALE + 1), None);
    assert!(Wide::ZERO.is_zero() && !one.is_zero());
    let max = Wide {
        mantissa: i128::MAX,
        scale: 0,
    };
    assert_eq!(max.checked_add(one), None);
    assert_eq!(
        max.checked_add(Wide::of(d("0.1"))),
        None,
        "aligning overflows"
    );
}

#[test]
fn to_decimal_keeps_the_scale_or_rounds_what_does_not_fit() {
    assert_eq!(
        Wide::product(d("1.50"), d("2.0")).to_decimal(),
        Some(d("3.000"))
    );
    // 36 digits of scale: rounded to 18.
    let tiny = Wide::product(d("0.000000000000000001"), d("0.5"));
    assert_eq!(tiny.to_decimal(), Some(d("0.000000000000000000")));
    // A value beyond 64 bits at its scale loses fraction digits…
    let big = Wide::product(d("9000000.000000000"), d("900.000000000"));
    assert_eq!(big.to_decimal(), Some(d("8100000000.000000000")));
    // …and is `None` when not even its integer part fits.
    assert_eq!(
        Wide::product(d("9000000000"), d("9000000000")).to_decimal(),
        None
    );
}

#[test]
fn exact_conversion_never_rounds() {
    let three = Wide::product(d("1.50"), d("2.0"));
    assert_eq!(three.to_exact_decimal(), Some(d("3.000")));
    assert_eq!(Wide::of(d("-0.5")).to_exact_decimal(), Some(d("-0.5")));
    let max = Decimal::new(i64::MAX, MAX_SCALE);
    assert_eq!(Wide::of(max).to_exact_decimal(), Some(max));
    // A scale above 18, even for a value that a lower scale holds exactly (1.000…).
    let one = Wide::product(d("1.000000000000"), d("1.0000000"));
    assert_eq!(one.scale(), 19);
    assert_eq!(one.to_exact_decimal(), None);
    // A mantissa beyond 64 bits, even with trailing zeros.
    let big = Wide::product(d("9000000.000000000"), d("900.000000000"));
    assert_eq!(big.to_exact_decimal(), None);
    assert_eq!(
        Wide::product(d("9000000000"), d("9000000000")).to_exact_decimal(),
        None
    );
}

#[test]
fn compares_by_value() {
    let max = Decimal::new(i64::MAX, 0);
    let min = Decimal::new(i64::MIN + 1, 18);
    assert_eq!(cmp(max, min), Ordering::Greater);
    assert_eq!(
        cmp(Decimal::new(i64::MAX, 18), Decimal::new(i64::MAX - 1, 18)),
        Ordering::Greater
    );
    assert_eq!(cmp(d("1.50"), d("1.5")), Ordering::Equal);
    assert_eq!(cmp(d("1.49"), d("1.5")), Ordering::Less);
    assert_eq!(cmp(d("-1"), d("-1.001")), Ordering::Greater);
}

#[test]
fn vwap_scale_is_capped() {
    assert_eq!(vwap_scale(0), 4);
    assert_eq!(vwap_scale(2), 6);
    assert_eq!(vwap_scale(14), 18);
    assert_eq!(vwap_scale(16), 18);
    assert_eq!(vwap_scale(u8::MAX), 18);
}
