use super::*;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn parses_and_formats_exactly() {
    assert_eq!(d("100.50"), Decimal::new(10050, 2));
    assert_eq!(d("-0.5"), Decimal::new(-5, 1));
    assert_eq!(d(".5"), Decimal::new(5, 1));
    assert_eq!(d("7"), Decimal::from_int(7));
    assert_eq!(d("100.50").to_string(), "100.50");
    assert_eq!(Decimal::new(-5, 1).to_string(), "-0.5");
    assert_eq!(Decimal::new(5, 3).to_string(), "0.005");
    assert_eq!("".parse::<Decimal>(), Err(DecimalError::Empty));
    assert_eq!(
        "1e5".parse::<Decimal>(),
        Err(DecimalError::InvalidCharacter)
    );
    assert_eq!(
        "1.2.3".parse::<Decimal>(),
        Err(DecimalError::InvalidCharacter)
    );
    assert_eq!(".".parse::<Decimal>(), Err(DecimalError::InvalidCharacter));
    assert_eq!(
        "99999999999999999999".parse::<Decimal>(),
        Err(DecimalError::TooManyDigits)
    );
}

#[test]
fn converts_to_units_only_when_whole() {
    let tick = d("0.01");
    assert_eq!(d("100.50").units_of(tick), Some(10050));
    assert_eq!(d("100.5").units_of(tick), Some(10050));
    assert_eq!(d("100").units_of(tick), Some(10000));
    assert_eq!(d("100.505").units_of(tick), None);
    assert_eq!(d("100.500").units_of(tick), Some(10050));
    assert_eq!(d("2.5").units_of(d("0.5")), Some(5));
    assert_eq!(d("2.25").units_of(d("0.5")), None);
    assert_eq!(d("10").units_of(d("5")), Some(2));
    assert_eq!(d("12").units_of(d("5")), None);
    assert_eq!(
        Decimal::from_units(10050, tick),
        Some(Decimal::new(10050, 2))
    );
}
