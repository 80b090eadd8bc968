use super::*;

#[test]
fn decimal_text_is_the_display_form() {
    for d in [
        Decimal::new(10050, 2),
        Decimal::new(-5, 1),
        Decimal::new(1, 18),
        Decimal::new(i64::MAX, 0),
        Decimal::new(i64::MIN + 1, 18),
        Decimal::new(0, 3),
    ] {
        let text = DecText::new(d);
        assert_eq!(text.as_bytes(), d.to_string().as_bytes());
        let back: Decimal = d.to_string().parse().unwrap();
        assert_eq!(back, d);
    }
}
