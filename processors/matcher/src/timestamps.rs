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
mod tests;
