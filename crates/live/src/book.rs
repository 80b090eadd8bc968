//! One symbol's L2 book as the stream shows it: every level seen in `book_delta` events (each
//! carries the level's new total, so the latest delta of a level is its exact quantity), and the
//! best bid and ask of the latest `top_of_book` event.
//!
//! The hub reads `market-data` from its end, so a level that has not changed since the hub started
//! is not known yet: the ladder fills in as the book moves. Top of book is exact from the first
//! `top_of_book` event on.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tradestream_codec::avro::DecimalLevel;
use tradestream_engine::{Decimal, Side};

/// A decimal as an integer at scale 18, so decimals of any scale compare exactly (an `i64`
/// mantissa times 10^18 fits in an `i128`).
fn sort_key(d: Decimal) -> i128 {
    let shift = u32::from(18 - d.scale().min(18));
    i128::from(d.mantissa()) * 10i128.pow(shift)
}

/// The levels of one symbol.
#[derive(Debug, Default, Clone)]
pub struct Book {
    bids: BTreeMap<i128, (Decimal, Decimal)>,
    asks: BTreeMap<i128, (Decimal, Decimal)>,
    bid: Option<DecimalLevel>,
    ask: Option<DecimalLevel>,
    /// Time of the latest event applied, ms.
    ts: i64,
    /// `seq` of the latest event applied.
    seq: u64,
}

impl Book {
    /// Applies a `book_delta`: the level's new total (zero or less removes it).
    pub fn delta(&mut self, side: Side, price: Decimal, qty: Decimal, ts: i64, seq: u64) {
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if qty.is_positive() {
            levels.insert(sort_key(price), (price, qty));
        } else {
            levels.remove(&sort_key(price));
        }
        self.touch(ts, seq);
    }

    /// Applies a `top_of_book` event. Levels better than the new best are gone (the engine
    /// sends their deltas too; this only keeps a ladder started mid-stream consistent).
    pub fn top(&mut self, bid: Option<DecimalLevel>, ask: Option<DecimalLevel>, ts: i64, seq: u64) {
        match bid {
            Some(b) => {
                let key = sort_key(b.price);
                self.bids.retain(|k, _| *k <= key);
                self.bids.insert(key, (b.price, b.qty));
            }
            None => self.bids.clear(),
        }
        match ask {
            Some(a) => {
                let key = sort_key(a.price);
                self.asks.retain(|k, _| *k >= key);
                self.asks.insert(key, (a.price, a.qty));
            }
            None => self.asks.clear(),
        }
        self.bid = bid;
        self.ask = ask;
        self.touch(ts, seq);
    }

    fn touch(&mut self, ts: i64, seq: u64) {
        self.ts = self.ts.max(ts);
        self.seq = seq;
    }

    /// Levels kept on each side (bids, asks).
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// The message data: top of book and the best `depth` levels of each side, best first.
    pub fn to_json(&self, symbol: &str, depth: usize) -> Value {
        let level =
            |(p, q): &(Decimal, Decimal)| json!({"price": p.to_string(), "qty": q.to_string()});
        let top = |l: &Option<DecimalLevel>| {
            l.map(|l| json!({"price": l.price.to_string(), "qty": l.qty.to_string()}))
        };
        json!({
            "symbol": symbol,
            "ts": self.ts,
            "seq": self.seq,
            "bid": top(&self.bid),
            "ask": top(&self.ask),
            "bids": self.bids.values().rev().take(depth).map(level).collect::<Vec<_>>(),
            "asks": self.asks.values().take(depth).map(level).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn levels_sort_by_value_across_scales_and_zero_removes() {
        let mut b = Book::default();
        b.delta(Side::Buy, d("100.5"), d("1"), 1, 1);
        b.delta(Side::Buy, d("100.25"), d("2"), 2, 2);
        b.delta(Side::Buy, d("99"), d("3"), 3, 3);
        b.delta(Side::Sell, d("101"), d("4"), 4, 4);
        b.delta(Side::Sell, d("100.75"), d("5"), 5, 5);
        let j = b.to_json("X", 2);
        assert_eq!(j["bids"][0]["price"], "100.5");
        assert_eq!(j["bids"][1]["price"], "100.25");
        assert_eq!(j["bids"].as_array().map(Vec::len), Some(2));
        assert_eq!(j["asks"][0]["price"], "100.75");
        b.delta(Side::Buy, d("100.50"), d("0"), 6, 6);
        assert_eq!(b.to_json("X", 10)["bids"][0]["price"], "100.25");
        assert_eq!(b.depth(), (2, 2));
    }

    #[test]
    fn top_of_book_drops_levels_through_the_best() {
        let mut b = Book::default();
        b.delta(Side::Buy, d("10"), d("1"), 1, 1);
        b.delta(Side::Buy, d("11"), d("1"), 1, 2);
        b.top(
            Some(DecimalLevel {
                price: d("10"),
                qty: d("1"),
            }),
            None,
            2,
            3,
        );
        let j = b.to_json("X", 10);
        assert_eq!(j["bids"].as_array().map(Vec::len), Some(1));
        assert_eq!(j["bid"]["price"], "10");
        assert!(j["ask"].is_null());
    }
}
