use super::*;

#[test]
fn keys_follow_the_documented_layout() {
    let k = KeyLayout::default();
    assert_eq!(k.book("BTC-USD"), "ts:book:BTC-USD");
    assert_eq!(k.trades("BTC-USD"), "ts:trades:BTC-USD");
    assert_eq!(
        k.candle("BTC-USD", Interval::M1, 60_000),
        "ts:candle:BTC-USD:1m:60000"
    );
    assert_eq!(
        k.candle_index("BTC-USD", Interval::H1),
        "ts:candles:BTC-USD:1h"
    );
    assert_eq!(k.order("BTC-USD", "o-1"), "ts:order:BTC-USD:o-1");
    assert_eq!(k.progress("g"), "ts:progress:g");
    assert_eq!(k.live("g", "i"), "ts:live:g:i");
    assert_eq!(offset_field("trades", 3), "offset:trades:3");
    assert_eq!(KeyLayout::new("t1:").book("X"), "t1:book:X");
}
