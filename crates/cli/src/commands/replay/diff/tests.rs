use super::*;

#[test]
fn counts_every_difference_and_cuts_long_values() {
    let mut d = Diffs::new(1);
    d.add("topic trades", || "one".into());
    d.add("topic trades", || panic!("not shown, not made"));
    d.add("table candles", || panic!("not shown, not made"));
    assert_eq!(d.total(), 3);
    assert_eq!(d.counts()["topic trades"], 2);
    assert_eq!(cut("abcdef", 3), "abc…");
    assert_eq!(show_value(b"stray"), "\"stray\"");
}
