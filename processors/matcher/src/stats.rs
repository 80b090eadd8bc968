//! The matcher's counters.

tradestream_runtime::stats! {
    /// Counters the worker exposes (the demo and the tests read them; they also go to the log).
    pub struct MatcherStats {
        /// Input records consumed (including replays).
        records_in,
        /// Output records produced (after dedup).
        records_out,
        /// Trades produced.
        trades,
        /// Records sent to dead letters.
        dead_letters,
        /// Input records processed again after a restore (already processed before the restart).
        replayed,
        /// Outputs regenerated during replay and not produced again because the topic had them.
        deduplicated,
        /// Snapshots written.
        snapshots,
        /// Partitions restored.
        restores,
        /// Commands rejected because their `ts` was outside the window around the broker
        /// timestamp.
        bad_timestamps,
        /// Commands applied unchecked because their record had no broker timestamp.
        unchecked_timestamps,
    }
}
