//! Tests of the candle builder: values, closing, late trades, replays and restores.

use std::collections::BTreeMap;

use tradestream_codec::avro::{DecimalLevel, DecodedEvent, DecodedKind};
use tradestream_engine::{Account, Decimal, OrderId, Side, Symbol};
use tradestream_store::model::{CandleRow, Interval, TopOfBookRow};

use super::*;

const P: i32 = 4;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn trade_on(symbol: &str, seq: u64, ts: i64, price: &str, qty: &str) -> DecodedEvent {
    DecodedEvent {
        seq,
        ts,
        symbol: Symbol::new(symbol).unwrap(),
        source_partition: P,
        source_offset: seq as i64,
        kind: DecodedKind::Trade {
            price: d(price),
            qty: d(qty),
            maker_order_id: OrderId::new("m").unwrap(),
            maker_account: Account::new("a").unwrap(),
            maker_leaves: d("0"),
            taker_order_id: OrderId::new("t").unwrap(),
            taker_account: Account::new("b").unwrap(),
            taker_side: Side::Buy,
            taker_leaves: d("0"),
        },
    }
}

fn trade(seq: u64, ts: i64, price: &str, qty: &str) -> DecodedEvent {
    trade_on("BTC-USD", seq, ts, price, qty)
}

fn no_store(_: &str, _: Interval, _: i64) -> Option<CandleRow> {
    None
}

fn builder() -> CandleBuilder {
    CandleBuilder::new(P, DEFAULT_ALLOWED_LATENESS_MS)
}

/// Applies a trade recorded at its own event time (the broker's clock agrees with the client's).
fn apply(b: &mut CandleBuilder, e: &DecodedEvent) -> CandleOutput {
    b.apply(e, Some(e.ts), no_store).unwrap()
}

/// (interval, bucket start) of each row.
fn keys(rows: &[CandleRow]) -> Vec<(Interval, i64)> {
    rows.iter()
        .map(|r| (r.interval, r.bucket_start_ms))
        .collect()
}

#[test]
fn the_first_trade_opens_a_candle_per_interval() {
    let mut b = builder();
    let out = apply(&mut b, &trade(1, 3_723_456, "60000.00", "0.500"));
    assert!(out.closed.is_empty());
    assert_eq!(
        keys(&out.updated),
        [
            (Interval::S1, 3_723_000),
            (Interval::M1, 3_720_000),
            (Interval::H1, 3_600_000)
        ]
    );
    assert_eq!(
        out.updated[0],
        CandleRow {
            symbol: "BTC-USD".into(),
            interval: Interval::S1,
            bucket_start_ms: 3_723_000,
            open: d("60000.00"),
            high: d("60000.00"),
            low: d("60000.00"),
            close: d("60000.00"),
            volume: d("0.500"),
            turnover: d("30000.00000"),
            vwap: d("60000.000000"),
            trade_count: 1,
            closed: false,
            source_partition: P,
            seq: 1,
        }
    );
    assert_eq!(b.watermark(), Some(3_723_456 - 5_000));
    assert_eq!(b.open_len(), 3);
}

#[test]
fn ohlc_volume_turnover_and_vwap() {
    let mut b = builder();
    apply(&mut b, &trade(1, 1_100, "100.00", "0.001"));
    apply(&mut b, &trade(2, 1_200, "100.50", "0.010"));
    // Earlier event time, later trade: it is still the close (trade order is seq order).
    apply(&mut b, &trade(3, 1_050, "99.50", "0.020"));
    let out = apply(&mut b, &trade(4, 1_900, "100.00", "0.001"));
    let c = &out.updated[0];
    assert_eq!(c.interval, Interval::S1);
    assert_eq!(
        (c.open, c.high, c.low, c.close),
        (d("100.00"), d("100.50"), d("99.50"), d("100.00"))
    );
    assert_eq!(c.volume, d("0.032"));
    // 0.10000 + 1.00500 + 1.99000 + 0.10000
    assert_eq!(c.turnover, d("3.19500"));
    // 3.195 / 0.032 = 99.84375 exactly.
    assert_eq!(c.vwap, d("99.843750"));
    assert_eq!(c.trade_count, 4);
    assert_eq!(c.seq, 4);
}

#[test]
fn vwap_rounds_half_to_even() {
    // 0.001 @ 100.01 + 0.031 @ 100.00 = 3.20001 / 0.032 = 100.0003125: the tie keeps …312.
    let mut b = builder();
    apply(&mut b, &trade(1, 0, "100.01", "0.001"));
    let out = apply(&mut b, &trade(2, 1, "100.00", "0.031"));
    assert_eq!(out.updated[0].vwap, d("100.000312"));
    // …and 100.0009375 rounds up to the even …938.
    let mut b = builder();
    apply(&mut b, &trade(1, 0, "100.03", "0.001"));
    let out = apply(&mut b, &trade(2, 1, "100.00", "0.031"));
    assert_eq!(out.updated[0].vwap, d("100.000938"));
    // Prices with different digits: the VWAP keeps the longest + 4.
    let mut b = builder();
    apply(&mut b, &trade(1, 0, "100", "1"));
    let out = apply(&mut b, &trade(2, 1, "100.5", "2"));
    assert_eq!(out.updated[0].vwap, d("100.33333"));
    assert_eq!(out.updated[0].high, d("100.5"));
}

#[test]
fn a_candle_closes_exactly_when_the_watermark_reaches_its_end() {
    let mut b = builder();
    apply(&mut b, &trade(1, 1_000, "10", "1"));
    // Watermark 6_999 − 5_000 = 1_999 < 2_000: the [1_000, 2_000) candle stays open.
    let out = apply(&mut b, &trade(2, 6_999, "11", "1"));
    assert!(out.closed.is_empty());
    assert_eq!(b.watermark(), Some(1_999));
    // Watermark 2_000 = the bucket's end: it closes, once.
    let out = apply(&mut b, &trade(3, 7_000, "12", "1"));
    assert_eq!(keys(&out.closed), [(Interval::S1, 1_000)]);
    let closed = &out.closed[0];
    assert!(closed.closed);
    assert_eq!(
        (closed.trade_count, closed.close, closed.seq),
        (1, d("10"), 1)
    );
    assert_eq!(
        keys(&out.updated),
        [(Interval::S1, 7_000), (Interval::M1, 0), (Interval::H1, 0)]
    );
    let out = apply(&mut b, &trade(4, 7_001, "12", "1"));
    assert!(out.closed.is_empty());
}

#[test]
fn a_late_trade_skips_its_closed_candle_but_counts_in_the_open_ones() {
    let mut b = builder();
    apply(&mut b, &trade(1, 1_500, "10", "1"));
    apply(&mut b, &trade(2, 7_000, "20", "1")); // closes [1_000, 2_000)
    assert_eq!(b.late(Interval::S1), 0);

    let out = apply(&mut b, &trade(3, 1_999, "30", "2"));
    assert_eq!(b.late(Interval::S1), 1);
    assert_eq!(b.late(Interval::M1), 0);
    assert_eq!(b.late(Interval::H1), 0);
    assert_eq!(keys(&out.updated), [(Interval::M1, 0), (Interval::H1, 0)]);
    let m1 = &out.updated[0];
    assert_eq!(m1.trade_count, 3);
    assert_eq!(m1.volume, d("4"));
    assert_eq!(
        (m1.open, m1.high, m1.low, m1.close),
        (d("10"), d("30"), d("10"), d("30"))
    );
    assert!(
        out.closed.is_empty(),
        "a late trade does not move the watermark back or on"
    );
    assert_eq!(b.watermark(), Some(2_000));
}

#[test]
fn late_for_the_minute_too() {
    let mut b = builder();
    apply(&mut b, &trade(1, 59_000, "10", "1"));
    let out = apply(&mut b, &trade(2, 65_000, "10", "1")); // watermark 60_000: [0, 60_000) closes
    assert_eq!(
        keys(&out.closed),
        [(Interval::S1, 59_000), (Interval::M1, 0)]
    );
    let out = apply(&mut b, &trade(3, 59_500, "10", "1"));
    assert_eq!(keys(&out.updated), [(Interval::H1, 0)]);
    assert_eq!((b.late(Interval::S1), b.late(Interval::M1)), (1, 1));
}

#[test]
fn closed_candles_come_by_bucket_end_then_symbol_then_interval() {
    let mut b = builder();
    apply(&mut b, &trade_on("ETH-USD", 1, 500, "1", "1"));
    apply(&mut b, &trade_on("BTC-USD", 2, 900, "1", "1"));
    apply(&mut b, &trade_on("BTC-USD", 3, 1_500, "1", "1"));
    // Watermark 60_000: both symbols' 1 s candles and 1 m candles close.
    let out = apply(&mut b, &trade_on("ETH-USD", 4, 65_000, "1", "1"));
    let got: Vec<(&str, Interval, i64)> = out
        .closed
        .iter()
        .map(|r| (r.symbol.as_str(), r.interval, r.bucket_start_ms))
        .collect();
    assert_eq!(
        got,
        [
            ("BTC-USD", Interval::S1, 0),
            ("ETH-USD", Interval::S1, 0),
            ("BTC-USD", Interval::S1, 1_000),
            ("BTC-USD", Interval::M1, 0),
            ("ETH-USD", Interval::M1, 0),
        ]
    );
}

#[test]
fn replayed_trades_are_skipped() {
    let mut b = builder();
    let t1 = trade(1, 1_000, "10", "1");
    apply(&mut b, &t1);
    let out = apply(&mut b, &t1);
    assert!(out.is_empty());
    assert_eq!(b.duplicates(), 1);
    assert_eq!(b.open_candles().map(|c| c.trade_count).sum::<i64>(), 3);

    // The store holds the 1 m candle up to seq 9: trade 8 is in it already, but not in the
    // 1 s candle, which the store does not have.
    let mut b = builder();
    let stored = CandleRow {
        symbol: "BTC-USD".into(),
        interval: Interval::M1,
        bucket_start_ms: 0,
        open: d("10"),
        high: d("10"),
        low: d("10"),
        close: d("10"),
        volume: d("2"),
        turnover: d("20"),
        vwap: d("10.0000"),
        trade_count: 2,
        closed: false,
        source_partition: P,
        seq: 9,
    };
    let out = b
        .apply(&trade(8, 1_000, "10", "1"), None, |_, interval, start| {
            (interval == Interval::M1 && start == 0).then(|| stored.clone())
        })
        .unwrap();
    assert_eq!(
        keys(&out.updated),
        [(Interval::S1, 1_000), (Interval::H1, 0)]
    );
    assert_eq!(b.duplicates(), 1);
}

#[test]
fn stored_open_candles_continue() {
    let mut b = builder();
    let stored = CandleRow {
        symbol: "BTC-USD".into(),
        interval: Interval::H1,
        bucket_start_ms: 0,
        open: d("10.00"),
        high: d("12.00"),
        low: d("9.00"),
        close: d("11.00"),
        volume: d("3.0"),
        turnover: d("31.000"),
        vwap: d("10.333333"),
        trade_count: 3,
        closed: false,
        source_partition: P,
        seq: 5,
    };
    let mut lookups = Vec::new();
    let out = b
        .apply(&trade(6, 120_000, "13.00", "1.0"), None, |s, i, start| {
            lookups.push((s.to_owned(), i, start));
            (i == Interval::H1).then(|| stored.clone())
        })
        .unwrap();
    assert_eq!(lookups.len(), 3);
    let h1 = &out.updated[2];
    assert_eq!(
        (h1.open, h1.high, h1.low, h1.close),
        (d("10.00"), d("13.00"), d("9.00"), d("13.00"))
    );
    assert_eq!(
        (h1.volume, h1.turnover, h1.trade_count),
        (d("4.0"), d("44.000"), 4)
    );
    assert_eq!(h1.vwap, d("11.000000"));

    // Held now: no more lookups.
    b.apply(&trade(7, 120_001, "13.00", "1.0"), None, |s, i, start| {
        panic!("looked up {s} {i:?} {start}")
    })
    .unwrap();
}

#[test]
fn a_stored_closed_candle_is_final() {
    let mut b = builder();
    let stored = CandleRow {
        symbol: "BTC-USD".into(),
        interval: Interval::S1,
        bucket_start_ms: 1_000,
        open: d("1"),
        high: d("1"),
        low: d("1"),
        close: d("1"),
        volume: d("1"),
        turnover: d("1"),
        vwap: d("1.0000"),
        trade_count: 1,
        closed: true,
        source_partition: P,
        seq: 3,
    };
    let out = b
        .apply(&trade(4, 1_200, "2", "1"), None, |_, i, _| {
            (i == Interval::S1).then(|| stored.clone())
        })
        .unwrap();
    assert_eq!(keys(&out.updated), [(Interval::M1, 0), (Interval::H1, 0)]);
    assert_eq!(b.late(Interval::S1), 1);
}

#[test]
fn restore_then_close_what_the_watermark_passed() {
    let mut b = builder();
    let row = |interval: Interval, start: i64, closed: bool| CandleRow {
        symbol: "BTC-USD".into(),
        interval,
        bucket_start_ms: start,
        open: d("1"),
        high: d("1"),
        low: d("1"),
        close: d("1"),
        volume: d("1"),
        turnover: d("1"),
        vwap: d("1.0000"),
        trade_count: 1,
        closed,
        source_partition: P,
        seq: 1,
    };
    b.restore_watermark(61_000);
    b.restore_open([
        row(Interval::S1, 60_000, false), // ends at 61_000: passed
        row(Interval::S1, 61_000, false), // ends at 62_000: open
        row(Interval::M1, 0, false),      // ends at 60_000: passed
        row(Interval::H1, 0, false),
        row(Interval::S1, 1_000, true), // closed already: ignored
        CandleRow {
            source_partition: P + 1,
            ..row(Interval::S1, 2_000, false)
        }, // another partition's: ignored
    ]);
    assert_eq!(b.open_len(), 4);
    let closed = b.close_passed();
    assert_eq!(keys(&closed), [(Interval::M1, 0), (Interval::S1, 60_000)]);
    assert!(closed.iter().all(|c| c.closed));
    assert_eq!(b.open_len(), 2);
    assert!(b.close_passed().is_empty());
    // A trade in a closed bucket is late right away; its next minute was never restored (no
    // trade in it yet), so it opens.
    let out = apply(&mut b, &trade(2, 60_500, "1", "1"));
    assert_eq!(
        keys(&out.updated),
        [(Interval::M1, 60_000), (Interval::H1, 0)]
    );
    assert_eq!(b.late(Interval::S1), 1);
    assert_eq!(out.updated[1].trade_count, 2);
}

/// A broker timestamp on a round second: 2024-11-29T17:06:40Z.
const R: i64 = 1_732_900_000_000;

#[test]
fn a_microsecond_trade_cannot_close_the_candles_of_later_trades() {
    let mut b = builder();
    apply(&mut b, &trade(1, R - 10, "10", "1"));
    // Stamped in microseconds, recorded by the broker 20 ms later.
    let out = b
        .apply(
            &trade(2, (R + 20) * 1_000, "11", "1"),
            Some(R + 20),
            no_store,
        )
        .unwrap();
    assert!(out.closed.is_empty(), "{:?}", keys(&out.closed));
    assert_eq!(b.clamped(), 1);
    assert_eq!(
        b.watermark(),
        Some(R + 20 + DEFAULT_MAX_WATERMARK_LEAD_MS - DEFAULT_ALLOWED_LATENESS_MS),
        "held to the broker's clock plus the lead"
    );
    // Later trades, stamped right, land in their candles: none is late, nothing closed early.
    for (seq, ts) in [(3, R + 30), (4, R - 900), (5, R + 1_500), (6, R + 4_000)] {
        let out = b
            .apply(&trade(seq, ts, "12", "1"), Some(ts + 40), no_store)
            .unwrap();
        assert_eq!(out.updated.len(), 3, "trade {seq}: 1s, 1m and 1h candles");
    }
    assert_eq!(
        Interval::ALL.map(|i| b.late(i)),
        [0, 0, 0],
        "no trade was late"
    );
    assert_eq!(b.clamped(), 1);
    // Without a broker timestamp there is nothing to hold it to: the old behaviour.
    let mut b = builder();
    b.apply(&trade(1, R * 1_000, "11", "1"), None, no_store)
        .unwrap();
    apply(&mut b, &trade(2, R, "10", "1"));
    assert_eq!(b.late(Interval::S1), 1);
    assert_eq!(b.clamped(), 0);
}

#[test]
fn a_trade_up_to_the_lead_ahead_of_its_record_moves_the_watermark_as_it_is() {
    let mut b = builder().with_max_lead(1_000);
    b.apply(&trade(1, R + 1_000, "1", "1"), Some(R), no_store)
        .unwrap();
    assert_eq!((b.watermark(), b.clamped()), (Some(R - 4_000), 0));
    b.apply(&trade(2, R + 1_001, "1", "1"), Some(R), no_store)
        .unwrap();
    assert_eq!((b.watermark(), b.clamped()), (Some(R - 4_000), 1));
    // Behind its record (a matcher catching up): as it is, the watermark never goes back.
    b.apply(&trade(3, R - 60_000, "1", "1"), Some(R + 9_000), no_store)
        .unwrap();
    assert_eq!((b.watermark(), b.clamped()), (Some(R - 4_000), 1));
    // A negative lead counts as 0: the watermark follows the broker's clock at most.
    let mut b = builder().with_max_lead(-5);
    b.apply(&trade(1, R + 1, "1", "1"), Some(R), no_store)
        .unwrap();
    assert_eq!((b.watermark(), b.clamped()), (Some(R - 5_000), 1));
}

#[test]
fn advance_to_closes_quiet_candles_and_never_goes_back() {
    let mut b = builder();
    apply(&mut b, &trade(1, 1_000, "1", "1"));
    assert!(b.advance_to(6_999).is_empty());
    assert_eq!(keys(&b.advance_to(7_000)), [(Interval::S1, 1_000)]);
    assert!(b.advance_to(0).is_empty());
    assert_eq!(b.watermark(), Some(2_000));
}

#[test]
fn bad_trades_are_errors_and_change_nothing() {
    let mut b = builder();
    let mut other = trade(1, 1_000, "1", "1");
    other.source_partition = P + 1;
    assert_eq!(
        b.apply(&other, None, no_store),
        Err(CandleError::WrongPartition {
            expected: P,
            got: P + 1
        })
    );
    assert!(matches!(
        b.apply(&trade(2, 1_000, "1", "0"), None, no_store),
        Err(CandleError::InvalidQuantity { .. })
    ));
    // A turnover beyond 64 bits even with no fraction digits is caught, not wrapped.
    let huge = "9223372036854775807";
    assert_eq!(
        b.apply(&trade(3, 1_000, huge, huge), None, no_store),
        Err(CandleError::Overflow {
            symbol: "BTC-USD".into(),
            interval: "1s",
            what: "turnover"
        })
    );
    assert_eq!(b.open_len(), 0);
    assert_eq!(b.watermark(), None);
    assert_eq!(b.late(Interval::S1), 0);
}

#[test]
fn other_events_change_nothing() {
    let mut b = builder();
    let e = DecodedEvent {
        kind: DecodedKind::BookDelta {
            side: Side::Buy,
            price: d("1"),
            qty: d("1"),
        },
        ..trade(1, 99_000, "1", "1")
    };
    assert!(
        b.apply(&e, None, |_, _, _| panic!("looked up"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.watermark(), None);
    assert_eq!(top_of_book(&e), None);
}

#[test]
fn top_of_book_rows() {
    let e = DecodedEvent {
        kind: DecodedKind::TopOfBook {
            bid: Some(DecimalLevel {
                price: d("99.50"),
                qty: d("2.000"),
            }),
            ask: None,
        },
        ..trade(17, 4_242, "1", "1")
    };
    assert_eq!(
        top_of_book(&e),
        Some(TopOfBookRow {
            symbol: "BTC-USD".into(),
            bid: Some((d("99.50"), d("2.000"))),
            ask: None,
            ts_ms: 4_242,
            source_partition: P,
            seq: 17,
        })
    );
}

// ---------------------------------------------------------------------------------------------
// A long stream, and a restart in the middle of it
// ---------------------------------------------------------------------------------------------

/// A small deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Trades on two symbols over ~20 minutes, event times jittered up to 8 s back (some late).
fn stream(n: u64) -> Vec<DecodedEvent> {
    let mut rng = Lcg(9);
    let mut clock = 3_590_000_i64;
    (1..=n)
        .map(|seq| {
            clock += rng.next(800) as i64;
            let ts = clock - rng.next(8_000) as i64 * i64::from(rng.next(4) == 0);
            let sym = if rng.next(3) == 0 {
                "ETH-USD"
            } else {
                "BTC-USD"
            };
            let price = format!("{}.{:02}", 100 + rng.next(5), rng.next(100));
            let qty = format!("0.{:03}", 1 + rng.next(999));
            trade_on(sym, seq, ts, &price, &qty)
        })
        .collect()
}

type Store = BTreeMap<(String, Interval, i64), CandleRow>;

/// Runs `events` through `b`, upserting every output row into `store`.
fn run(b: &mut CandleBuilder, events: &[DecodedEvent], store: &mut Store) {
    for e in events {
        let out = b
            .apply(e, None, |s, i, start| {
                store.get(&(s.to_owned(), i, start)).cloned()
            })
            .unwrap();
        for row in out.updated.into_iter().chain(out.closed) {
            store.insert((row.symbol.clone(), row.interval, row.bucket_start_ms), row);
        }
    }
}

#[test]
fn a_long_stream_adds_up() {
    let events = stream(3_000);
    let mut b = builder();
    let mut store = Store::new();
    run(&mut b, &events, &mut store);
    assert!(b.late(Interval::S1) > 0, "the stream has late trades");
    assert!(b.late(Interval::S1) >= b.late(Interval::M1));
    assert!(b.late(Interval::M1) >= b.late(Interval::H1));
    // Every trade is in exactly one candle per interval unless it was late there.
    for interval in Interval::ALL {
        let count: i64 = store
            .values()
            .filter(|c| c.interval == interval)
            .map(|c| c.trade_count)
            .sum();
        assert_eq!(count as u64 + b.late(interval), 3_000, "{interval:?}");
    }
    // Closed candles are the ones the watermark passed; the rest are held open.
    let w = b.watermark().unwrap();
    for c in store.values() {
        let end = c.bucket_start_ms + c.interval.millis();
        assert_eq!(c.closed, end <= w, "{c:?}");
        assert!(exact::cmp(c.low, c.vwap).is_le() && exact::cmp(c.vwap, c.high).is_le());
    }
    assert_eq!(b.open_len(), store.values().filter(|c| !c.closed).count());
}

#[test]
fn a_restart_from_older_offsets_converges_on_the_same_candles() {
    let events = stream(2_000);
    let mut full = Store::new();
    run(&mut builder(), &events, &mut full);

    // The worker wrote the rows of the first 1_300 trades but committed offsets (and the
    // watermark) only after 800, then died.
    let mut store = Store::new();
    let mut first = builder();
    run(&mut first, &events[..800], &mut store);
    let committed_watermark = first.watermark().unwrap();
    run(&mut first, &events[800..1_300], &mut store);

    let mut b = builder();
    b.restore_watermark(committed_watermark);
    b.restore_open(store.values().filter(|c| !c.closed).cloned());
    assert!(b.close_passed().is_empty());
    run(&mut b, &events[800..], &mut store);
    assert!(b.duplicates() > 0);
    assert_eq!(store, full);
}
