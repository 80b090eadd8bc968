//! Client timestamps checked against the broker's clock.
//!
//! A command's `ts` is its event time: the engine copies it onto every event the command causes,
//! and downstream the market-data worker closes candles by it. A client that stamps one order in
//! microseconds (or seconds) would move that watermark years ahead (or make its trades late), so
//! the matcher refuses a command whose `ts` is more than [`MatcherConfig::max_clock_skew`] away
//! from its record's broker timestamp (create or log-append time, [`Record::timestamp_ms`]),
//! either way, with a `rejected` event of reason `bad_timestamp` ([`RejectReason::BadTimestamp`]).
//!
//! - The decision reads the record, never the wall clock, so a restore or a `replay matcher` over
//!   the same log decides the same (with the same window).
//! - The rejection goes through the engine ([`Engine::reject`]): it takes the next `seq`, is
//!   addressed to the sender (the account the command carries), and is stamped with the broker timestamp, not the refused `ts`. Cancels and replaces
//!   are checked like new orders: whatever a command causes carries its `ts`.
//! - A command without a `ts` takes the broker timestamp (in the codec), so it always passes.
//! - A record without a broker timestamp (message format v0, before Kafka 0.10) cannot be checked:
//!   its command is applied as it is and counted ([`MatcherStats::unchecked_timestamps`]).
//!   Refusing every order on such a cluster would stop the venue over a setting.
//! - Commands that failed to decode are not checked: they are dead letters before this.
//!
//! [`MatcherConfig::max_clock_skew`]: crate::MatcherConfig::max_clock_skew
//! [`Record::timestamp_ms`]: tradestream_runtime::Record::timestamp_ms
//! [`MatcherStats::unchecked_timestamps`]: crate::MatcherStats::unchecked_timestamps

use std::sync::atomic::Ordering;
use std::time::Duration;

use tradestream_engine::{Book, Command, Engine, Event, RejectReason};
use tradestream_runtime::Record;

use crate::config::MatcherConfig;
use crate::stats::MatcherStats;

pub use crate::config::DEFAULT_MAX_CLOCK_SKEW;

/// What became of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Within the window, or no window configured: applied.
    Applied,
    /// Applied without a check: the record carried no broker timestamp.
    Unchecked,
    /// Outside the window: rejected with `bad_timestamp`.
    Rejected,
}

/// Why `ts` is outside `max_skew_ms` of the broker timestamp `record_ts`, if it is.
pub fn outside_window(ts: i64, record_ts: i64, max_skew_ms: u64) -> Option<String> {
    let off = ts.abs_diff(record_ts);
    (off > max_skew_ms).then(|| {
        let way = if ts > record_ts { "ahead of" } else { "behind" };
        format!(
            "ts {ts} is {off} ms {way} the record timestamp {record_ts}; \
             at most {max_skew_ms} ms either way is accepted (is it in milliseconds?)"
        )
    })
}

/// Applies `cmd` to `engine`, or rejects it with `bad_timestamp` when its `ts` is outside
/// `max_skew` of `record_ts` (the record's broker timestamp). `None` for `max_skew` turns the
/// check off. Events go to `out`, as [`Engine::apply`] would put them.
pub fn apply<B: Book>(
    engine: &mut Engine<B>,
    cmd: &Command,
    record_ts: Option<i64>,
    max_skew: Option<Duration>,
    out: &mut Vec<Event>,
) -> Checked {
    let (Some(max_skew), Command::New(_) | Command::Cancel(_) | Command::Replace(_)) =
        (max_skew, cmd)
    else {
        engine.apply(cmd, out);
        return Checked::Applied;
    };
    let Some(record_ts) = record_ts else {
        engine.apply(cmd, out);
        return Checked::Unchecked;
    };
    let max_skew_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
    match outside_window(cmd.ts(), record_ts, max_skew_ms) {
        None => {
            engine.apply(cmd, out);
            Checked::Applied
        }
        Some(detail) => {
            let reason = RejectReason::BadTimestamp(detail.into_boxed_str());
            engine.reject(cmd, reason, record_ts, out);
            Checked::Rejected
        }
    }
}

/// [`apply`] with the matcher's window, counted in `stats` and the metrics.
pub(crate) fn apply_counted<B: Book>(
    engine: &mut Engine<B>,
    cmd: &Command,
    record: &Record<'_>,
    cfg: &MatcherConfig,
    stats: &MatcherStats,
    out: &mut Vec<Event>,
) {
    match apply(engine, cmd, record.timestamp_ms, cfg.max_clock_skew, out) {
        Checked::Applied => {}
        Checked::Unchecked => {
            if stats.unchecked_timestamps.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    partition = record.partition,
                    offset = record.offset,
                    "orders without a broker timestamp: client timestamps are not checked"
                );
            }
        }
        Checked::Rejected => {
            stats.bad_timestamps.fetch_add(1, Ordering::Relaxed);
            tradestream_runtime::metrics::bad_timestamp(&cfg.worker);
            tracing::debug!(
                partition = record.partition,
                offset = record.offset,
                ts = cmd.ts(),
                record_ts = record.timestamp_ms,
                "order rejected: bad_timestamp"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use tradestream_engine::{
        Account, CancelOrder, EventKind, InstrumentSpec, Instruments, NewOrder, OrderId, OrderType,
        ReplaceOrder, Request, Seq, Side, Symbol, Tif,
    };

    use super::*;

    /// A broker timestamp: 2024-11-29T17:06:40Z.
    const NOW: i64 = 1_732_900_000_000;
    const WINDOW: Option<Duration> = Some(DEFAULT_MAX_CLOCK_SKEW);
    const SKEW_MS: i64 = 300_000;

    fn engine() -> Engine {
        Engine::new(
            Instruments::new(&[InstrumentSpec {
                symbol: "BTC-USD".into(),
                tick_size: "0.01".parse().unwrap(),
                lot_size: "0.001".parse().unwrap(),
                min_qty: None,
                max_qty: None,
                min_price: None,
                max_price: None,
            }])
            .unwrap(),
        )
    }

    fn order(id: &str, side: Side, price: &str, ts: i64) -> Command {
        Command::New(NewOrder {
            order_id: OrderId::new(id).unwrap(),
            account: Account::new(&format!("acct-{id}")).unwrap(),
            symbol: Symbol::new("BTC-USD").unwrap(),
            side,
            order_type: OrderType::Limit,
            price: Some(price.parse().unwrap()),
            qty: "1".parse().unwrap(),
            tif: Tif::Gtc,
            post_only: false,
            ts,
        })
    }

    fn cancel(id: &str, ts: i64) -> Command {
        Command::Cancel(CancelOrder {
            order_id: OrderId::new(id).unwrap(),
            account: Account::new(&format!("acct-{id}")).unwrap(),
            symbol: Symbol::new("BTC-USD").unwrap(),
            ts,
        })
    }

    fn run(
        e: &mut Engine,
        cmd: &Command,
        record_ts: Option<i64>,
        window: Option<Duration>,
    ) -> (Checked, Vec<Event>) {
        let mut out = Vec::new();
        let checked = apply(e, cmd, record_ts, window, &mut out);
        (checked, out)
    }

    #[test]
    fn the_window_is_inclusive_either_way() {
        let mut e = engine();
        for (i, ts) in [NOW, NOW - SKEW_MS, NOW + SKEW_MS, NOW + 1, NOW - 1]
            .into_iter()
            .enumerate()
        {
            let (checked, out) = run(
                &mut e,
                &order(&format!("ok{i}"), Side::Buy, "100", ts),
                Some(NOW),
                WINDOW,
            );
            assert_eq!(checked, Checked::Applied, "ts {ts}");
            assert!(matches!(out[0].kind, EventKind::Accepted { .. }), "ts {ts}");
            assert_eq!(out[0].ts, ts, "an accepted command keeps its own ts");
        }
        for (i, ts) in [NOW - SKEW_MS - 1, NOW + SKEW_MS + 1]
            .into_iter()
            .enumerate()
        {
            let (checked, out) = run(
                &mut e,
                &order(&format!("bad{i}"), Side::Buy, "100", ts),
                Some(NOW),
                WINDOW,
            );
            assert_eq!(checked, Checked::Rejected, "ts {ts}");
            assert!(
                matches!(
                    &out[0].kind,
                    EventKind::Rejected { reason, .. } if reason.code() == "bad_timestamp"
                ),
                "ts {ts}: {out:?}"
            );
        }
    }

    #[test]
    fn a_microsecond_order_is_rejected_in_sequence_and_trades_nothing() {
        let mut e = engine();
        run(
            &mut e,
            &order("m", Side::Sell, "100", NOW),
            Some(NOW),
            WINDOW,
        );
        let seq = e.last_seq();
        // Would cross the resting sell, stamped in microseconds.
        let (checked, out) = run(
            &mut e,
            &order("u", Side::Buy, "100", NOW * 1_000),
            Some(NOW + 5),
            WINDOW,
        );
        assert_eq!(checked, Checked::Rejected);
        let [rejected] = out.as_slice() else {
            panic!("one rejection, nothing traded: {out:?}");
        };
        assert_eq!(rejected.seq, Seq(seq + 1));
        assert_eq!(rejected.ts, NOW + 5, "stamped with the broker's time");
        let EventKind::Rejected {
            order_id,
            account,
            request,
            reason,
        } = &rejected.kind
        else {
            panic!("{rejected:?}");
        };
        assert_eq!(
            (order_id.as_str(), account.as_str(), *request),
            ("u", "acct-u", Request::New)
        );
        assert_eq!(reason.code(), "bad_timestamp");
        let detail = reason.detail().unwrap();
        assert!(detail.contains("1732900000000000"), "{detail}");
        assert!(detail.contains("ahead"), "{detail}");
        // Seconds instead of milliseconds: decades behind.
        let (checked, out) = run(
            &mut e,
            &order("s", Side::Buy, "100", NOW / 1_000),
            Some(NOW),
            WINDOW,
        );
        assert_eq!(checked, Checked::Rejected);
        let detail = match &out[0].kind {
            EventKind::Rejected { reason, .. } => reason.detail().unwrap().to_owned(),
            other => panic!("{other:?}"),
        };
        assert!(detail.contains("behind"), "{detail}");
        // The resting sell is still there for a well-stamped buy.
        let (_, out) = run(
            &mut e,
            &order("b", Side::Buy, "100", NOW),
            Some(NOW),
            WINDOW,
        );
        assert!(
            out.iter()
                .any(|e| matches!(e.kind, EventKind::Trade { .. }))
        );
    }

    #[test]
    fn a_badly_stamped_cancel_or_replace_is_refused_to_the_sender_and_changes_nothing() {
        let mut e = engine();
        run(&mut e, &order("o", Side::Buy, "99", NOW), Some(NOW), WINDOW);
        let (checked, out) = run(&mut e, &cancel("o", i64::MAX), Some(NOW), WINDOW);
        assert_eq!(checked, Checked::Rejected);
        assert!(matches!(
            &out[0].kind,
            EventKind::Rejected { account, request: Request::Cancel, .. } if account.as_str() == "acct-o"
        ));
        let replace = Command::Replace(ReplaceOrder {
            order_id: OrderId::new("o").unwrap(),
            account: Account::new("acct-o").unwrap(),
            symbol: Symbol::new("BTC-USD").unwrap(),
            price: Some("100".parse().unwrap()),
            qty: None,
            ts: i64::MIN,
        });
        let (checked, _) = run(&mut e, &replace, Some(NOW), WINDOW);
        assert_eq!(checked, Checked::Rejected);
        assert!(e.is_live(0, &OrderId::new("o").unwrap()));
        let (checked, out) = run(&mut e, &cancel("o", NOW), Some(NOW), WINDOW);
        assert_eq!(checked, Checked::Applied);
        assert!(matches!(out[0].kind, EventKind::Cancelled { .. }));
    }

    #[test]
    fn no_window_or_no_broker_timestamp_applies_unchecked() {
        let mut e = engine();
        let (checked, out) = run(
            &mut e,
            &order("a", Side::Buy, "1", NOW * 1_000),
            None,
            WINDOW,
        );
        assert_eq!(checked, Checked::Unchecked);
        assert!(matches!(out[0].kind, EventKind::Accepted { .. }));
        let (checked, out) = run(
            &mut e,
            &order("b", Side::Buy, "1", NOW * 1_000),
            Some(NOW),
            None,
        );
        assert_eq!(checked, Checked::Applied);
        assert!(matches!(out[0].kind, EventKind::Accepted { .. }));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        assert!(outside_window(i64::MAX, i64::MIN, u64::MAX).is_none());
        assert!(outside_window(i64::MAX, i64::MIN, 0).is_some());
        assert!(outside_window(i64::MIN, i64::MAX, 1).is_some());
        assert!(outside_window(NOW, NOW, 0).is_none());
    }
}
