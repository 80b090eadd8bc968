//! The backend test suite: every case runs against every [`Store`] (docs/design.md §5).
//!
//! Each case is a function of a fresh, empty, migrated store; it panics on failure, like any
//! test. A backend's test file supplies the store and gets one `#[test]` per case from
//! [`store_suite!`](crate::store_suite):
//!
//! ```text
//! fn with_store(case: &str, body: &mut dyn FnMut(&mut dyn Store)) {
//!     let mut store = /* a fresh store for `case` */;
//!     body(&mut store);
//! }
//! tradestream_store::store_suite!(with_store);
//! ```
//!
//! Compiled for this crate's tests and with the `test-suite` feature, so another crate (a new
//! backend, a wrapper) can run it too. The row builders are public for the same reason, and for
//! benchmarks.

use tradestream_engine::{Decimal, Side};

use crate::{
    Batch, CandleRow, Interval, NotificationRow, OffsetRow, OrderStateRow, OrderStatus, Store,
    StoreCounts, StoreDump, TopOfBookRow, TradeRow, day_of,
};

/// One `#[test]` per suite case, each calling `$with_store(case_name, body)` where
/// `$with_store: fn(&str, &mut dyn FnMut(&mut dyn Store))` hands `body` a fresh store. A case of
/// two stores (`pairs:`) gets them from two nested calls, named `<case>_a` and `<case>_b`.
#[macro_export]
macro_rules! store_suite {
    ($with_store:path) => {
        $crate::store_suite!(@cases $with_store;
            round_trip_every_row_type,
            empty_store_reads_nothing,
            offsets_round_trip_and_never_move_back,
            rewriting_a_batch_is_idempotent,
            newer_state_wins,
            closing_a_candle_at_the_same_seq_wins,
            trades_by_symbol_newest_first_across_days,
            trades_by_account_covers_maker_taker_and_self_match,
            candles_newest_first_per_interval,
            open_candles_per_partition_in_key_order,
            closing_a_candle_removes_it_from_the_open_ones,
            notifications_newest_first,
            order_ids_are_per_symbol,
            dump_lists_every_row_as_text,
        );
        $crate::store_suite!(@pairs $with_store;
            stores_fed_the_same_batches_dump_equal,
        );
    };
    (@cases $with_store:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $with_store(stringify!($case), &mut |store| $crate::suite::$case(store));
            }
        )*
    };
    (@pairs $with_store:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $with_store(concat!(stringify!($case), "_a"), &mut |a| {
                    $with_store(concat!(stringify!($case), "_b"), &mut |b| {
                        $crate::suite::$case(&mut *a, b)
                    })
                });
            }
        )*
    };
}

/// 2026-01-01T00:00:00Z, ms.
pub const T0: i64 = 1_767_225_600_000;

/// One day, ms.
pub const DAY_MS: i64 = 86_400_000;

/// A decimal from its text.
///
/// # Panics
/// When `s` is not a decimal (a typo in a test).
pub fn d(s: &str) -> Decimal {
    match s.parse() {
        Ok(d) => d,
        Err(e) => panic!("bad test decimal {s:?}: {e}"),
    }
}

/// A trade of `qty` at `price`; order ids are derived from `seq`.
#[allow(clippy::too_many_arguments)]
pub fn trade(
    symbol: &str,
    source_partition: i32,
    seq: i64,
    ts_ms: i64,
    price: &str,
    qty: &str,
    maker_account: &str,
    taker_account: &str,
) -> TradeRow {
    TradeRow {
        symbol: symbol.to_owned(),
        source_partition,
        seq,
        ts_ms,
        price: d(price),
        qty: d(qty),
        maker_order_id: format!("m-{source_partition}-{seq}"),
        maker_account: maker_account.to_owned(),
        taker_order_id: format!("t-{source_partition}-{seq}"),
        taker_account: taker_account.to_owned(),
        taker_side: if seq % 2 == 0 { Side::Buy } else { Side::Sell },
    }
}

/// An order state at `seq`. Its fills (if any) average 60000.2500 and sum to a notional with a
/// trailing zero that must survive.
pub fn order(order_id: &str, seq: i64, status: OrderStatus, filled_qty: &str) -> OrderStateRow {
    let filled = filled_qty != "0";
    OrderStateRow {
        order_id: order_id.to_owned(),
        account: "acct-1".to_owned(),
        symbol: "BTC-USD".to_owned(),
        side: Side::Buy,
        status,
        price: Some(d("60000.50")),
        qty: d("1.250"),
        filled_qty: d(filled_qty),
        avg_price: filled.then(|| d("60000.2500")),
        notional: if filled { d("15000.06250") } else { d("0") },
        updated_ts_ms: T0 + seq,
        source_partition: 3,
        seq,
    }
}

/// A candle of `symbol` at `interval` starting at `bucket_start_ms`, last trade `seq`.
pub fn candle(
    symbol: &str,
    interval: Interval,
    bucket_start_ms: i64,
    seq: i64,
    closed: bool,
) -> CandleRow {
    CandleRow {
        symbol: symbol.to_owned(),
        interval,
        bucket_start_ms,
        open: d("100.10"),
        high: d("101.00"),
        low: d("99.95"),
        close: d("100.50"),
        volume: d("3.000"),
        turnover: d("301.5000"),
        vwap: d("100.500000"),
        trade_count: seq,
        closed,
        source_partition: 1,
        seq,
    }
}

/// A top of book at `seq`.
pub fn top(
    symbol: &str,
    seq: i64,
    bid: Option<(&str, &str)>,
    ask: Option<(&str, &str)>,
) -> TopOfBookRow {
    TopOfBookRow {
        symbol: symbol.to_owned(),
        bid: bid.map(|(p, q)| (d(p), d(q))),
        ask: ask.map(|(p, q)| (d(p), d(q))),
        ts_ms: T0 + seq,
        source_partition: 2,
        seq,
    }
}

/// A notification for `account` at `seq`.
pub fn notification(account: &str, seq: i64, ts_ms: i64) -> NotificationRow {
    NotificationRow {
        account: account.to_owned(),
        source_partition: 4,
        seq,
        ts_ms,
        kind: "fill".to_owned(),
        order_id: format!("o-{seq}"),
        symbol: "BTC-USD".to_owned(),
        text: format!("bought 0.5 BTC-USD at 60000.00 (#{seq})"),
    }
}

/// A consumer position.
pub fn offset(
    consumer: &str,
    topic: &str,
    partition: i32,
    next_offset: i64,
    watermark_ms: Option<i64>,
) -> OffsetRow {
    OffsetRow {
        consumer: consumer.to_owned(),
        topic: topic.to_owned(),
        partition,
        next_offset,
        watermark_ms,
    }
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

fn write(store: &mut dyn Store, batch: &Batch) {
    ok(store.write(batch), "write");
}

fn seqs(trades: &[TradeRow]) -> Vec<i64> {
    trades.iter().map(|t| t.seq).collect()
}

/// A batch with one row of every kind, with decimals whose spelling must survive.
fn one_of_each() -> Batch {
    let market_order = OrderStateRow {
        price: None,
        status: OrderStatus::Expired,
        avg_price: Some(d("0.000000000000000001")),
        notional: Decimal::new(i64::MAX, 18),
        ..order("o-market", 8, OrderStatus::Expired, "0.5")
    };
    Batch {
        trades: vec![trade(
            "BTC-USD",
            3,
            7,
            T0 + 1_234,
            "60000.50",
            "0.001000",
            "alice",
            "bob",
        )],
        orders: vec![
            order("o-limit", 9, OrderStatus::PartiallyFilled, "0.250"),
            market_order,
        ],
        candles: vec![CandleRow {
            turnover: Decimal::new(i64::MAX, 4),
            ..candle("BTC-USD", Interval::M1, T0, 7, false)
        }],
        tops: vec![
            top(
                "BTC-USD",
                11,
                Some(("59999.00", "2.50")),
                Some(("60001.00", "0.10")),
            ),
            top("ETH-USD", 12, Some(("3000.1", "1")), None),
        ],
        notifications: vec![notification("alice", 13, T0 + 2_000)],
        offsets: vec![
            offset("recorder", "trades", 3, 8, None),
            offset("market-data", "market-data", 2, 12, Some(T0 + 999)),
        ],
    }
}

/// Every row type reads back exactly as written, decimals digit for digit.
pub fn round_trip_every_row_type(store: &mut dyn Store) {
    let batch = one_of_each();
    write(store, &batch);

    assert_eq!(
        ok(store.trades_by_symbol("BTC-USD", 10), "trades_by_symbol"),
        batch.trades
    );
    assert_eq!(
        ok(store.trades_by_account("alice", 10), "trades_by_account"),
        batch.trades
    );
    assert_eq!(
        ok(store.trades_by_account("bob", 10), "trades_by_account"),
        batch.trades
    );
    let price = ok(store.trades_by_symbol("BTC-USD", 1), "trades_by_symbol")[0].price;
    assert_eq!(
        (price.mantissa(), price.scale()),
        (6_000_050, 2),
        "100.50 stays 100.50"
    );
    for o in &batch.orders {
        assert_eq!(
            ok(store.order(&o.symbol, &o.order_id), "order").as_ref(),
            Some(o)
        );
    }
    assert_eq!(ok(store.order("BTC-USD", "o-missing"), "order"), None);
    let c = &batch.candles[0];
    assert_eq!(
        ok(
            store.candle(&c.symbol, c.interval, c.bucket_start_ms),
            "candle"
        )
        .as_ref(),
        Some(c)
    );
    assert_eq!(
        ok(
            store.candle(&c.symbol, Interval::S1, c.bucket_start_ms),
            "candle"
        ),
        None
    );
    assert_eq!(
        ok(store.candles(&c.symbol, c.interval, 10), "candles"),
        batch.candles
    );
    for t in &batch.tops {
        assert_eq!(
            ok(store.top_of_book(&t.symbol), "top_of_book").as_ref(),
            Some(t)
        );
    }
    assert_eq!(ok(store.top_of_book("SOL-USD"), "top_of_book"), None);
    assert_eq!(
        ok(store.notifications("alice", 10), "notifications"),
        batch.notifications
    );
    for o in &batch.offsets {
        assert_eq!(
            ok(store.offset(&o.consumer, &o.topic, o.partition), "offset").as_ref(),
            Some(o)
        );
    }
    assert_eq!(
        ok(store.counts(), "counts"),
        StoreCounts {
            trades: 1,
            orders: 2,
            candles: 1,
            tops: 2,
            notifications: 1,
        }
    );
}

/// A new store has nothing, says so without errors, and accepts an empty batch.
pub fn empty_store_reads_nothing(store: &mut dyn Store) {
    assert_eq!(ok(store.counts(), "counts"), StoreCounts::default());
    assert_eq!(ok(store.offset("recorder", "trades", 0), "offset"), None);
    assert!(ok(store.trades_by_symbol("BTC-USD", 10), "trades_by_symbol").is_empty());
    assert!(ok(store.trades_by_account("alice", 10), "trades_by_account").is_empty());
    assert!(ok(store.candles("BTC-USD", Interval::S1, 10), "candles").is_empty());
    assert!(ok(store.open_candles(1), "open_candles").is_empty());
    assert!(ok(store.notifications("alice", 10), "notifications").is_empty());
    write(store, &Batch::default());
    assert_eq!(ok(store.counts(), "counts"), StoreCounts::default());
    // Migrating again is harmless.
    ok(store.migrate(), "migrate");
    write(store, &one_of_each());
    ok(store.migrate(), "migrate");
    assert_eq!(ok(store.counts(), "counts").trades, 1);
    // A zero limit reads nothing.
    assert!(ok(store.trades_by_symbol("BTC-USD", 0), "trades_by_symbol").is_empty());
    assert!(ok(store.trades_by_account("alice", 0), "trades_by_account").is_empty());
    assert!(ok(store.candles("BTC-USD", Interval::M1, 0), "candles").is_empty());
    assert!(ok(store.notifications("alice", 0), "notifications").is_empty());
}

/// Offsets are none before the first write, read back per (consumer, topic, partition), advance,
/// and never move backwards (a stray write from a stale worker cannot rewind a consumer).
pub fn offsets_round_trip_and_never_move_back(store: &mut dyn Store) {
    assert_eq!(ok(store.offset("recorder", "trades", 0), "offset"), None);
    let first = offset("recorder", "trades", 0, 100, Some(T0));
    write(
        store,
        &Batch {
            offsets: vec![first.clone(), offset("recorder", "trades", 1, 5, None)],
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.offset("recorder", "trades", 0), "offset"),
        Some(first)
    );
    assert_eq!(
        ok(store.offset("recorder", "trades", 1), "offset"),
        Some(offset("recorder", "trades", 1, 5, None))
    );
    assert_eq!(ok(store.offset("recorder", "trades", 2), "offset"), None);
    assert_eq!(
        ok(store.offset("recorder", "executions", 0), "offset"),
        None
    );
    assert_eq!(ok(store.offset("notifier", "trades", 0), "offset"), None);

    let advanced = offset("recorder", "trades", 0, 250, Some(T0 + 60_000));
    write(
        store,
        &Batch {
            offsets: vec![advanced.clone()],
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.offset("recorder", "trades", 0), "offset"),
        Some(advanced.clone())
    );

    write(
        store,
        &Batch {
            offsets: vec![offset("recorder", "trades", 0, 120, Some(T0))],
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.offset("recorder", "trades", 0), "offset"),
        Some(advanced),
        "an older offset must not overwrite a newer one"
    );
}

/// Writing the same batch twice (a replay) leaves the same rows and counts.
pub fn rewriting_a_batch_is_idempotent(store: &mut dyn Store) {
    let mut batch = one_of_each();
    batch.trades.push(trade(
        "BTC-USD",
        3,
        8,
        T0 + 2_000,
        "60001.00",
        "0.5",
        "carol",
        "carol",
    ));
    batch
        .notifications
        .push(notification("alice", 14, T0 + 3_000));
    write(store, &batch);
    let counts = ok(store.counts(), "counts");
    let by_symbol = ok(store.trades_by_symbol("BTC-USD", 100), "trades_by_symbol");
    let by_account = ok(store.trades_by_account("carol", 100), "trades_by_account");
    let notifications = ok(store.notifications("alice", 100), "notifications");

    write(store, &batch);
    assert_eq!(ok(store.counts(), "counts"), counts);
    assert_eq!(counts.trades, 2);
    assert_eq!(counts.notifications, 2);
    assert_eq!(
        ok(store.trades_by_symbol("BTC-USD", 100), "trades_by_symbol"),
        by_symbol
    );
    assert_eq!(
        ok(store.trades_by_account("carol", 100), "trades_by_account"),
        by_account
    );
    assert_eq!(
        ok(store.notifications("alice", 100), "notifications"),
        notifications
    );
    for o in &batch.orders {
        assert_eq!(
            ok(store.order(&o.symbol, &o.order_id), "order").as_ref(),
            Some(o)
        );
    }
    for o in &batch.offsets {
        assert_eq!(
            ok(store.offset(&o.consumer, &o.topic, o.partition), "offset").as_ref(),
            Some(o)
        );
    }
}

/// A newer state (higher seq) is never overwritten by an older one, whether the older one comes
/// in a later batch or later in the same batch.
pub fn newer_state_wins(store: &mut dyn Store) {
    let filled = order("o-1", 10, OrderStatus::Filled, "1.250");
    let new = order("o-1", 5, OrderStatus::New, "0");
    write(
        store,
        &Batch {
            orders: vec![filled.clone()],
            ..Batch::default()
        },
    );
    write(
        store,
        &Batch {
            orders: vec![new.clone()],
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.order("BTC-USD", "o-1"), "order"),
        Some(filled.clone()),
        "older batch"
    );

    let cancelled = order("o-2", 20, OrderStatus::Cancelled, "0.5");
    let partial = order("o-2", 19, OrderStatus::PartiallyFilled, "0.5");
    write(
        store,
        &Batch {
            orders: vec![cancelled.clone(), partial],
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.order("BTC-USD", "o-2"), "order"),
        Some(cancelled),
        "same batch"
    );

    // And a newer one does replace it.
    let replaced = OrderStateRow {
        qty: d("2.000"),
        ..order("o-1", 11, OrderStatus::Filled, "1.250")
    };
    write(
        store,
        &Batch {
            orders: vec![replaced.clone()],
            ..Batch::default()
        },
    );
    assert_eq!(ok(store.order("BTC-USD", "o-1"), "order"), Some(replaced));

    let newer_top = top("BTC-USD", 30, Some(("100.00", "1")), None);
    let older_top = top("BTC-USD", 29, Some(("99.00", "5")), Some(("101.00", "5")));
    write(
        store,
        &Batch {
            tops: vec![newer_top.clone()],
            ..Batch::default()
        },
    );
    write(
        store,
        &Batch {
            tops: vec![older_top],
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.top_of_book("BTC-USD"), "top_of_book"),
        Some(newer_top)
    );
    // A side that empties is cleared by the newer state.
    let emptied = top("BTC-USD", 31, None, Some(("101.00", "5")));
    write(
        store,
        &Batch {
            tops: vec![emptied.clone()],
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.top_of_book("BTC-USD"), "top_of_book"),
        Some(emptied)
    );

    let newer_candle = CandleRow {
        close: d("105.00"),
        ..candle("BTC-USD", Interval::S1, T0, 41, false)
    };
    let older_candle = candle("BTC-USD", Interval::S1, T0, 40, false);
    write(
        store,
        &Batch {
            candles: vec![newer_candle.clone()],
            ..Batch::default()
        },
    );
    write(
        store,
        &Batch {
            candles: vec![older_candle],
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.candle("BTC-USD", Interval::S1, T0), "candle"),
        Some(newer_candle)
    );
    assert_eq!(ok(store.counts(), "counts").orders, 2);
}

/// The watermark closes a candle with the seq of its last trade: the closed state wins over the
/// open one at the same seq, and a replayed open write does not reopen it.
pub fn closing_a_candle_at_the_same_seq_wins(store: &mut dyn Store) {
    let open = candle("BTC-USD", Interval::M1, T0, 7, false);
    let closed = CandleRow {
        closed: true,
        ..open.clone()
    };
    write(
        store,
        &Batch {
            candles: vec![open.clone()],
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.candle("BTC-USD", Interval::M1, T0), "candle"),
        Some(open.clone())
    );
    write(
        store,
        &Batch {
            candles: vec![closed.clone()],
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.candle("BTC-USD", Interval::M1, T0), "candle"),
        Some(closed.clone())
    );
    write(
        store,
        &Batch {
            candles: vec![open],
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.candle("BTC-USD", Interval::M1, T0), "candle"),
        Some(closed)
    );
}

/// Newest first by (day, seq), across days, with the limit cutting anywhere, and many days.
pub fn trades_by_symbol_newest_first_across_days(store: &mut dyn Store) {
    let day1 = T0 + 10 * DAY_MS;
    let day2 = day1 + DAY_MS;
    let mut trades = vec![
        trade("BTC-USD", 0, 1, day1 + 1_000, "100.00", "1", "a", "b"),
        trade("BTC-USD", 0, 2, day1 + 2_000, "100.01", "1", "a", "b"),
        trade("BTC-USD", 0, 3, day2 - 1, "100.02", "1", "a", "b"),
        trade("BTC-USD", 0, 4, day2, "100.03", "1", "a", "b"),
        trade("BTC-USD", 0, 5, day2 + 5_000, "100.04", "1", "a", "b"),
        trade("ETH-USD", 1, 1, day2 + 6_000, "3000", "2", "a", "b"),
    ];
    assert_eq!(day_of(trades[2].ts_ms) + 1, day_of(trades[3].ts_ms));
    // Written in two batches, the newer first.
    let older = trades.drain(..3).collect::<Vec<_>>();
    write(
        store,
        &Batch {
            trades: trades.clone(),
            ..Batch::default()
        },
    );
    write(
        store,
        &Batch {
            trades: older,
            ..Batch::default()
        },
    );

    let all = ok(store.trades_by_symbol("BTC-USD", 100), "trades_by_symbol");
    assert_eq!(seqs(&all), [5, 4, 3, 2, 1]);
    assert_eq!(
        seqs(&ok(
            store.trades_by_symbol("BTC-USD", 4),
            "trades_by_symbol"
        )),
        [5, 4, 3, 2]
    );
    assert_eq!(
        seqs(&ok(
            store.trades_by_symbol("BTC-USD", 2),
            "trades_by_symbol"
        )),
        [5, 4]
    );
    assert_eq!(
        seqs(&ok(
            store.trades_by_symbol("BTC-USD", 1),
            "trades_by_symbol"
        )),
        [5]
    );
    assert!(all.iter().all(|t| t.symbol == "BTC-USD"));
    assert_eq!(
        seqs(&ok(
            store.trades_by_symbol("ETH-USD", 10),
            "trades_by_symbol"
        )),
        [1]
    );
    assert!(ok(store.trades_by_symbol("SOL-USD", 10), "trades_by_symbol").is_empty());

    // One trade a day for 40 days, oldest first: the walk spans several pages of days.
    let many: Vec<TradeRow> = (0..40)
        .map(|i| {
            trade(
                "SOL-USD",
                2,
                100 + i,
                T0 + i * DAY_MS,
                "150.5",
                "3",
                "a",
                "b",
            )
        })
        .collect();
    write(
        store,
        &Batch {
            trades: many,
            ..Batch::default()
        },
    );
    let newest = ok(store.trades_by_symbol("SOL-USD", 35), "trades_by_symbol");
    assert_eq!(seqs(&newest), (105..140).rev().collect::<Vec<_>>());
    assert_eq!(
        ok(store.trades_by_symbol("SOL-USD", 1000), "trades_by_symbol").len(),
        40
    );
    assert_eq!(ok(store.counts(), "counts").trades, 46);
}

/// Each trade appears under its maker's and its taker's account, a self-match once, newest first.
pub fn trades_by_account_covers_maker_taker_and_self_match(store: &mut dyn Store) {
    let t1 = trade("BTC-USD", 0, 1, T0 + 1_000, "100", "1", "alice", "bob");
    let t2 = trade("BTC-USD", 0, 2, T0 + 2_000, "101", "2", "bob", "carol");
    let t3 = trade("BTC-USD", 0, 3, T0 + 3_000, "102", "3", "alice", "alice");
    let t4 = trade("ETH-USD", 1, 1, T0 + 4_000, "3000", "4", "dave", "alice");
    write(
        store,
        &Batch {
            trades: vec![t1.clone(), t2.clone(), t3.clone(), t4.clone()],
            ..Batch::default()
        },
    );

    assert_eq!(
        ok(store.trades_by_account("alice", 10), "trades_by_account"),
        [t4.clone(), t3.clone(), t1.clone()]
    );
    assert_eq!(
        ok(store.trades_by_account("bob", 10), "trades_by_account"),
        [t2.clone(), t1]
    );
    assert_eq!(
        ok(store.trades_by_account("carol", 10), "trades_by_account"),
        [t2]
    );
    assert_eq!(
        ok(store.trades_by_account("dave", 10), "trades_by_account"),
        std::slice::from_ref(&t4)
    );
    assert_eq!(
        ok(store.trades_by_account("alice", 2), "trades_by_account"),
        [t4, t3]
    );
    assert!(ok(store.trades_by_account("erin", 10), "trades_by_account").is_empty());
    assert_eq!(ok(store.counts(), "counts").trades, 4);
}

/// Candles read back newest bucket first, per symbol and interval.
pub fn candles_newest_first_per_interval(store: &mut dyn Store) {
    let mut candles: Vec<CandleRow> = (0..5)
        .map(|i| candle("BTC-USD", Interval::S1, T0 + i * 1_000, 10 + i, i < 4))
        .collect();
    candles.extend((0..3).map(|i| candle("BTC-USD", Interval::M1, T0 + i * 60_000, 20 + i, i < 2)));
    candles.push(candle("BTC-USD", Interval::H1, T0, 30, false));
    candles.push(candle("ETH-USD", Interval::S1, T0 + 9_000, 5, false));
    write(
        store,
        &Batch {
            candles: candles.clone(),
            ..Batch::default()
        },
    );

    let starts = |v: Vec<CandleRow>| v.into_iter().map(|c| c.bucket_start_ms).collect::<Vec<_>>();
    assert_eq!(
        starts(ok(store.candles("BTC-USD", Interval::S1, 3), "candles")),
        [T0 + 4_000, T0 + 3_000, T0 + 2_000]
    );
    assert_eq!(
        ok(store.candles("BTC-USD", Interval::S1, 100), "candles"),
        candles[..5].iter().rev().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        starts(ok(store.candles("BTC-USD", Interval::M1, 100), "candles")),
        [T0 + 120_000, T0 + 60_000, T0]
    );
    assert_eq!(
        ok(store.candles("BTC-USD", Interval::H1, 100), "candles"),
        [candles[8].clone()]
    );
    assert_eq!(
        ok(store.candles("ETH-USD", Interval::S1, 100), "candles"),
        [candles[9].clone()]
    );
    assert!(ok(store.candles("ETH-USD", Interval::M1, 100), "candles").is_empty());
    assert_eq!(
        ok(store.candle("BTC-USD", Interval::M1, T0 + 60_000), "candle"),
        Some(candles[6].clone())
    );
    assert_eq!(ok(store.counts(), "counts").candles, 10);
}

/// The open candles of a partition, and only those: by symbol, interval (shortest first) and
/// bucket start, whatever the order they were written in; closed ones and other partitions'
/// are left out.
pub fn open_candles_per_partition_in_key_order(store: &mut dyn Store) {
    let on = |partition: i32, c: CandleRow| CandleRow {
        source_partition: partition,
        ..c
    };
    let candles = vec![
        // Partition 1, written out of key order.
        on(1, candle("ETH-USD", Interval::S1, T0, 12, false)),
        on(1, candle("BTC-USD", Interval::H1, T0, 11, false)),
        on(1, candle("BTC-USD", Interval::S1, T0 + 2_000, 10, false)),
        on(1, candle("BTC-USD", Interval::M1, T0, 9, false)),
        on(1, candle("BTC-USD", Interval::S1, T0 + 1_000, 8, true)),
        on(1, candle("BTC-USD", Interval::S1, T0, 7, false)),
        // Partition 2.
        on(2, candle("SOL-USD", Interval::M1, T0, 5, false)),
        on(2, candle("SOL-USD", Interval::S1, T0, 4, true)),
    ];
    write(
        store,
        &Batch {
            candles: candles.clone(),
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.open_candles(1), "open_candles"),
        [
            candles[5].clone(),
            candles[2].clone(),
            candles[3].clone(),
            candles[1].clone(),
            candles[0].clone(),
        ],
        "BTC 1s (two buckets), 1m, 1h, then ETH"
    );
    assert_eq!(
        ok(store.open_candles(2), "open_candles"),
        [candles[6].clone()]
    );
    assert!(ok(store.open_candles(3), "open_candles").is_empty());
    // A newer open state replaces the listed one.
    let updated = CandleRow {
        close: d("102.00"),
        trade_count: 3,
        ..on(2, candle("SOL-USD", Interval::M1, T0, 6, false))
    };
    write(
        store,
        &Batch {
            candles: vec![updated.clone()],
            ..Batch::default()
        },
    );
    assert_eq!(ok(store.open_candles(2), "open_candles"), [updated]);
    assert_eq!(ok(store.counts(), "counts").candles, 8);
}

/// A candle leaves the open ones when it is closed at the seq of its last open write, or later;
/// a replayed or older open write does not bring it back; a newer open one stays listed.
pub fn closing_a_candle_removes_it_from_the_open_ones(store: &mut dyn Store) {
    let open = candle("BTC-USD", Interval::S1, T0, 7, false);
    let other = candle("BTC-USD", Interval::S1, T0 + 1_000, 8, false);
    let closed = CandleRow {
        closed: true,
        ..open.clone()
    };
    let only = |candles: Vec<CandleRow>| Batch {
        candles,
        ..Batch::default()
    };
    write(store, &only(vec![open.clone(), other.clone()]));
    assert_eq!(
        ok(store.open_candles(1), "open_candles"),
        [open.clone(), other.clone()]
    );

    // Closed at the same seq, in the same batch as its open write: the close wins.
    write(store, &only(vec![open.clone(), closed.clone()]));
    assert_eq!(
        ok(store.open_candles(1), "open_candles"),
        std::slice::from_ref(&other)
    );
    // Replays of the open write, at its seq and older, leave it closed.
    let older = candle("BTC-USD", Interval::S1, T0, 6, false);
    write(store, &only(vec![open.clone()]));
    write(store, &only(vec![older]));
    assert_eq!(
        ok(store.open_candles(1), "open_candles"),
        std::slice::from_ref(&other)
    );
    assert_eq!(
        ok(store.candle("BTC-USD", Interval::S1, T0), "candle"),
        Some(closed)
    );

    // Closed at a later seq than its last open write (the candle builder closes at the same seq,
    // but the rule is the seq's): gone too, and an older open write does not bring it back.
    let other_closed = CandleRow {
        closed: true,
        seq: 9,
        ..other.clone()
    };
    write(store, &only(vec![other_closed.clone()]));
    assert!(ok(store.open_candles(1), "open_candles").is_empty());
    write(store, &only(vec![other]));
    assert!(ok(store.open_candles(1), "open_candles").is_empty());
    assert_eq!(
        ok(store.candle("BTC-USD", Interval::S1, T0 + 1_000), "candle"),
        Some(other_closed)
    );
}

/// An account's notifications, newest first, limited, and only its own.
pub fn notifications_newest_first(store: &mut dyn Store) {
    let notes = vec![
        notification("alice", 1, T0 + 1_000),
        notification("alice", 2, T0 + 3_000),
        notification("bob", 3, T0 + 2_000),
        notification("alice", 4, T0 + 2_000),
    ];
    write(
        store,
        &Batch {
            notifications: notes.clone(),
            ..Batch::default()
        },
    );
    assert_eq!(
        ok(store.notifications("alice", 10), "notifications"),
        [notes[1].clone(), notes[3].clone(), notes[0].clone()]
    );
    assert_eq!(
        ok(store.notifications("alice", 2), "notifications"),
        [notes[1].clone(), notes[3].clone()]
    );
    assert_eq!(
        ok(store.notifications("bob", 10), "notifications"),
        [notes[2].clone()]
    );
    assert!(ok(store.notifications("carol", 10), "notifications").is_empty());
    assert_eq!(ok(store.counts(), "counts").notifications, 4);
}

/// Order ids are unique per book only: the same id on two symbols is two orders, each read back
/// by its symbol.
pub fn order_ids_are_per_symbol(store: &mut dyn Store) {
    let btc = order("o-1", 7, OrderStatus::PartiallyFilled, "0.250");
    let eth = OrderStateRow {
        symbol: "ETH-USD".to_owned(),
        account: "acct-2".to_owned(),
        side: Side::Sell,
        ..order("o-1", 8, OrderStatus::New, "0")
    };
    write(
        store,
        &Batch {
            orders: vec![btc.clone(), eth.clone()],
            ..Batch::default()
        },
    );
    assert_eq!(ok(store.counts(), "counts").orders, 2, "two orders");
    assert_eq!(
        ok(store.order("BTC-USD", "o-1"), "order"),
        Some(btc.clone())
    );
    assert_eq!(
        ok(store.order("ETH-USD", "o-1"), "order"),
        Some(eth.clone())
    );
    assert_eq!(ok(store.order("SOL-USD", "o-1"), "order"), None);
    // Each keeps its own version: a newer state of one leaves the other as it was, and an
    // older state of one (a higher seq on the other does not count) changes nothing.
    let filled = order("o-1", 9, OrderStatus::Filled, "1.250");
    let stale_eth = OrderStateRow {
        status: OrderStatus::Cancelled,
        seq: 5,
        ..eth.clone()
    };
    write(
        store,
        &Batch {
            orders: vec![filled.clone(), stale_eth],
            ..Batch::default()
        },
    );
    assert_eq!(ok(store.order("BTC-USD", "o-1"), "order"), Some(filled));
    assert_eq!(ok(store.order("ETH-USD", "o-1"), "order"), Some(eth));
}

/// Batches touching every table, across two days, with a candle closed in a later batch.
fn dump_batches() -> Vec<Batch> {
    let mut first = one_of_each();
    first.trades.push(trade(
        "ETH-USD",
        0,
        2,
        T0 + DAY_MS,
        "3000.10",
        "2",
        "bob",
        "carol",
    ));
    let second = Batch {
        trades: vec![trade(
            "BTC-USD",
            3,
            9,
            T0 + 5_000,
            "60002.00",
            "0.1",
            "carol",
            "alice",
        )],
        orders: vec![order("o-limit", 10, OrderStatus::Filled, "1.250")],
        candles: vec![CandleRow {
            turnover: Decimal::new(i64::MAX, 4),
            ..candle("BTC-USD", Interval::M1, T0, 9, true)
        }],
        tops: vec![top("BTC-USD", 15, None, Some(("60003.00", "0.5")))],
        notifications: vec![notification("carol", 16, T0 + 5_000)],
        offsets: vec![offset("recorder", "trades", 3, 10, None)],
    };
    vec![first, second]
}

fn dump(store: &mut dyn Store) -> StoreDump {
    ok(store.dump(), "dump")
}

/// A dump holds every logical table, each row's values as text in key order, NULL as
/// [`StoreDump::NULL`], consumer offsets included.
pub fn dump_lists_every_row_as_text(store: &mut dyn Store) {
    let empty = dump(store);
    assert_eq!(
        empty.tables.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "candles",
            "consumer_offsets",
            "notifications_by_account",
            "orders_by_symbol",
            "top_of_book",
            "trade_days",
            "trades_by_account",
            "trades_by_symbol",
        ]
    );
    assert_eq!(empty.row_count(), 0);
    for batch in dump_batches() {
        write(store, &batch);
    }
    let dump = dump(store);
    let column = |table: &str, column: &str| -> Vec<String> {
        dump.tables[table]
            .iter()
            .map(|row| row[column].clone())
            .collect()
    };
    // Key order, numbers compared as numbers (day 20454 < 20455; "BTC" < "ETH").
    assert_eq!(
        column("trades_by_symbol", "symbol"),
        ["BTC-USD", "BTC-USD", "ETH-USD"]
    );
    assert_eq!(column("trades_by_symbol", "seq"), ["7", "9", "2"]);
    assert_eq!(
        column("trades_by_symbol", "price"),
        ["60000.50", "60002.00", "3000.10"]
    );
    assert_eq!(
        column("trade_days", "day"),
        [day_of(T0), day_of(T0 + DAY_MS)].map(|d| d.to_string())
    );
    assert_eq!(
        column("trades_by_account", "account"),
        ["alice", "alice", "bob", "bob", "carol", "carol"]
    );
    assert_eq!(
        column("orders_by_symbol", "order_id"),
        ["o-limit", "o-market"]
    );
    assert_eq!(column("orders_by_symbol", "status"), ["filled", "expired"]);
    assert_eq!(
        column("orders_by_symbol", "price"),
        ["60000.50", StoreDump::NULL]
    );
    assert_eq!(
        column("orders_by_symbol", "notional"),
        ["15000.06250", "9.223372036854775807"]
    );
    assert_eq!(column("candles", "closed"), ["true"]);
    assert_eq!(column("candles", "turnover"), ["922337203685477.5807"]);
    assert_eq!(
        column("top_of_book", "bid_price"),
        [StoreDump::NULL, "3000.1"]
    );
    assert_eq!(column("top_of_book", "ask_qty"), ["0.5", StoreDump::NULL]);
    assert_eq!(column("notifications_by_account", "seq"), ["13", "16"]);
    let watermark = (T0 + 999).to_string();
    assert_eq!(
        dump.tables["consumer_offsets"],
        [
            [
                ("consumer", "market-data"),
                ("topic", "market-data"),
                ("partition", "2"),
                ("next_offset", "12"),
                ("watermark_ms", watermark.as_str()),
            ],
            [
                ("consumer", "recorder"),
                ("topic", "trades"),
                ("partition", "3"),
                ("next_offset", "10"),
                ("watermark_ms", StoreDump::NULL),
            ],
        ]
        .map(|row| {
            row.iter()
                .map(|(c, v)| ((*c).to_owned(), (*v).to_owned()))
                .collect::<std::collections::BTreeMap<_, _>>()
        })
    );
    assert_eq!(dump.row_count(), 3 + 2 + 6 + 2 + 1 + 2 + 2 + 2);
}

/// Two stores fed the same batches, one of them in another order and twice, dump equal; one
/// more row in one of them is a difference in exactly that table.
pub fn stores_fed_the_same_batches_dump_equal(a: &mut dyn Store, b: &mut dyn Store) {
    let batches = dump_batches();
    for batch in &batches {
        write(a, batch);
    }
    for batch in batches.iter().rev().chain(&batches) {
        write(b, batch);
    }
    let dump_a = dump(a);
    assert!(dump_a.row_count() > 0);
    assert_eq!(dump_a, dump(b));

    write(
        b,
        &Batch {
            notifications: vec![notification("dave", 17, T0 + 6_000)],
            ..Batch::default()
        },
    );
    let dump_b = dump(b);
    assert_ne!(dump_a, dump_b);
    let differing: Vec<&str> = dump_a
        .tables
        .iter()
        .filter(|(table, rows)| dump_b.tables.get(*table) != Some(rows))
        .map(|(table, _)| table.as_str())
        .collect();
    assert_eq!(differing, ["notifications_by_account"]);
    assert_eq!(
        dump_b.tables["notifications_by_account"].len(),
        dump_a.tables["notifications_by_account"].len() + 1
    );
}
