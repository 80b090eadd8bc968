//! Metrics every worker reports, through the `metrics` facade (docs/design.md §7).
//!
//! [`serve`] installs a Prometheus exporter with an HTTP listener (`GET /metrics`). Without it
//! the calls below are no-ops. Labels are bounded: worker, topic, partition, error class.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `tradestream_records_in_total` | counter | worker, topic, partition |
//! | `tradestream_records_out_total` | counter | worker, topic |
//! | `tradestream_dead_letters_total` | counter | worker, class |
//! | `tradestream_refetches_total` | counter | worker |
//! | `tradestream_commits_total` | counter | worker |
//! | `tradestream_transactions_aborted_total` | counter | worker (`exactly-once`: a transaction aborted and its input replayed) |
//! | `tradestream_latency_seconds` | histogram | worker (record timestamp → the commit that follows its processing) |
//! | `tradestream_consumer_lag` | gauge | worker, topic, partition (from librdkafka statistics) |
//! | `tradestream_bad_timestamps_total` | counter | worker (commands rejected: `ts` too far from the record timestamp) |
//! | `tradestream_watermark_clamped_total` | counter | worker, partition (event times ahead of the record timestamp, held back) |
//! | `tradestream_rebalances_total` | counter | worker, kind (`assigned`, `revoked`, `lost`: one per partition) |
//! | `tradestream_assigned_partitions` | gauge | worker |
//! | `tradestream_restore_seconds` | histogram | worker (one partition: its assignment → processing past the group's committed offset) |
//! | `tradestream_handoff_seconds` | histogram | worker (one partition given up: revocation → outputs flushed, checkpoint and commit done) |
//! | `tradestream_snapshot_bytes` | gauge | worker, partition (engine state of the last snapshot written or loaded) |
//! | `tradestream_snapshot_timestamp_seconds` | gauge | worker, partition (unix time of the newest snapshot written) |
//!
//! The loop counts in plain integers while a batch runs and hands the sums to the facade once
//! per batch, so the per-record cost is an integer add. Rebalance metrics are published as the
//! rebalance happens (rare). The lag of a partition this instance gives up is set to 0, so the
//! lag summed over a group's instances stays right after a rebalance (the new owner reports it).

use std::net::SocketAddr;

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use rdkafka::statistics::Statistics;

/// Records in.
pub const RECORDS_IN: &str = "tradestream_records_in_total";
/// Records out.
pub const RECORDS_OUT: &str = "tradestream_records_out_total";
/// Dead letters.
pub const DEAD_LETTERS: &str = "tradestream_dead_letters_total";
/// Re-fetches after a gap in input offsets.
pub const REFETCHES: &str = "tradestream_refetches_total";
/// Commits.
pub const COMMITS: &str = "tradestream_commits_total";
/// Transactions aborted (`exactly-once`).
pub const TRANSACTIONS_ABORTED: &str = "tradestream_transactions_aborted_total";
/// Latency, record timestamp → committed.
pub const LATENCY: &str = "tradestream_latency_seconds";
/// Consumer lag.
pub const CONSUMER_LAG: &str = "tradestream_consumer_lag";
/// Commands the matcher rejected with `bad_timestamp`.
pub const BAD_TIMESTAMPS: &str = "tradestream_bad_timestamps_total";
/// Trades whose event time was too far ahead of their record timestamp to move a watermark.
pub const WATERMARK_CLAMPED: &str = "tradestream_watermark_clamped_total";

/// Partitions assigned or given up, by kind.
pub const REBALANCES: &str = "tradestream_rebalances_total";
/// Partitions this instance owns.
pub const ASSIGNED_PARTITIONS: &str = "tradestream_assigned_partitions";
/// Time from a partition's assignment until it is live (processing past the committed offset).
pub const RESTORE: &str = "tradestream_restore_seconds";
/// Time from a partition's revocation until its outputs are flushed and its progress committed.
pub const HANDOFF: &str = "tradestream_handoff_seconds";
/// Size of the engine state of the last snapshot written or loaded.
pub const SNAPSHOT_BYTES: &str = "tradestream_snapshot_bytes";
/// Unix time of the newest snapshot written (alert on its age).
pub const SNAPSHOT_TIMESTAMP: &str = "tradestream_snapshot_timestamp_seconds";
/// Counter: client calls tried again after a transient error, by call and error kind.
pub const CLIENT_RETRIES: &str = "tradestream_client_retries_total";

/// The kind label of [`REBALANCES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebalance {
    /// A partition was assigned.
    Assigned,
    /// A partition was revoked and handed over cleanly.
    Revoked,
    /// A partition was lost (session expired, fenced): nothing could be handed over.
    Lost,
}

impl Rebalance {
    fn label(self) -> &'static str {
        match self {
            Rebalance::Assigned => "assigned",
            Rebalance::Revoked => "revoked",
            Rebalance::Lost => "lost",
        }
    }
}

/// Bucket bounds (seconds) of the restore and hand-off histograms: a hand-off is a flush and a
/// commit (milliseconds), a restore a snapshot load plus at most one snapshot interval of replay
/// (well under a second), a lost partition waits for a session timeout (10 s).
const REBALANCE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {reason}")]
pub struct ServeError {
    addr: SocketAddr,
    reason: String,
}

/// Serves Prometheus metrics at `http://addr/metrics` until the process exits.
pub fn serve(addr: SocketAddr) -> Result<(), ServeError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(LATENCY.to_owned()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ],
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(RESTORE.to_owned()),
                REBALANCE_BUCKETS,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(HANDOFF.to_owned()),
                REBALANCE_BUCKETS,
            )
        })
        .and_then(|b| b.install())
        .map_err(|e| ServeError {
            addr,
            reason: e.to_string(),
        })?;
    describe();
    Ok(())
}

/// The `# HELP` line and unit of every metric above.
fn describe() {
    describe_counter!(RECORDS_IN, Unit::Count, "Input records processed.");
    describe_counter!(RECORDS_OUT, Unit::Count, "Output records produced.");
    describe_counter!(
        DEAD_LETTERS,
        Unit::Count,
        "Input records sent to dead letters."
    );
    describe_counter!(
        REFETCHES,
        Unit::Count,
        "Re-fetches after a gap in input offsets."
    );
    describe_counter!(COMMITS, Unit::Count, "Commits of input progress.");
    describe_counter!(
        CLIENT_RETRIES,
        Unit::Count,
        "Client calls tried again after a transient error."
    );
    describe_counter!(
        TRANSACTIONS_ABORTED,
        Unit::Count,
        "Transactions aborted and their input replayed (exactly-once)."
    );
    describe_histogram!(
        LATENCY,
        Unit::Seconds,
        "Record timestamp to the commit that follows its processing."
    );
    describe_gauge!(
        CONSUMER_LAG,
        Unit::Count,
        "Records behind the partition's end."
    );
    describe_counter!(
        BAD_TIMESTAMPS,
        Unit::Count,
        "Commands rejected: ts too far from the record timestamp."
    );
    describe_counter!(
        WATERMARK_CLAMPED,
        Unit::Count,
        "Event times ahead of the record timestamp, held back."
    );
    describe_counter!(
        REBALANCES,
        Unit::Count,
        "Partitions assigned, revoked or lost in rebalances."
    );
    describe_gauge!(
        ASSIGNED_PARTITIONS,
        Unit::Count,
        "Input partitions this instance owns."
    );
    describe_histogram!(
        RESTORE,
        Unit::Seconds,
        "One partition: assignment until processing past the committed offset."
    );
    describe_histogram!(
        HANDOFF,
        Unit::Seconds,
        "One partition given up: revocation until flushed, checkpointed and committed."
    );
    describe_gauge!(
        SNAPSHOT_BYTES,
        Unit::Bytes,
        "Engine state of the last snapshot written or loaded."
    );
    describe_gauge!(
        SNAPSHOT_TIMESTAMP,
        Unit::Seconds,
        "Unix time of the newest snapshot written."
    );
}

/// Counts of one batch, handed to the facade at each commit.
#[derive(Debug)]
pub(crate) struct BatchMetrics {
    worker: String,
    /// Records in per (topic, partition).
    received: Vec<(String, i32, u64)>,
    /// Record timestamps of the batch (ms).
    timestamps: Vec<i64>,
    sent: Vec<(String, u64)>,
    dead_letters: Vec<(&'static str, u64)>,
    refetches: u64,
}

impl BatchMetrics {
    pub(crate) fn new(worker: &str) -> Self {
        BatchMetrics {
            worker: worker.to_owned(),
            received: Vec::new(),
            timestamps: Vec::new(),
            sent: Vec::new(),
            dead_letters: Vec::new(),
            refetches: 0,
        }
    }

    pub(crate) fn received(&mut self, topic: &str, partition: i32, timestamp_ms: Option<i64>) {
        match self
            .received
            .iter_mut()
            .find(|(t, p, _)| *p == partition && t == topic)
        {
            Some((.., n)) => *n += 1,
            None => self.received.push((topic.to_owned(), partition, 1)),
        }
        if let Some(ts) = timestamp_ms {
            self.timestamps.push(ts);
        }
    }

    pub(crate) fn sent(&mut self, topic: &str) {
        match self.sent.iter_mut().find(|(t, _)| t == topic) {
            Some((_, n)) => *n += 1,
            None => self.sent.push((topic.to_owned(), 1)),
        }
    }

    pub(crate) fn dead_letter(&mut self, class: &'static str) {
        match self.dead_letters.iter_mut().find(|(c, _)| *c == class) {
            Some((_, n)) => *n += 1,
            None => self.dead_letters.push((class, 1)),
        }
    }

    /// The batch's transaction was aborted: its counts are dropped (its input is processed
    /// again) and the abort is counted.
    pub(crate) fn aborted(&mut self) {
        self.received.clear();
        self.timestamps.clear();
        self.sent.clear();
        self.dead_letters.clear();
        counter!(TRANSACTIONS_ABORTED, "worker" => self.worker.clone()).increment(1);
    }

    pub(crate) fn refetch(&mut self) {
        self.refetches += 1;
    }

    /// The batch is committed at `now_ms`: publish its counts and latencies.
    pub(crate) fn committed(&mut self, now_ms: i64) {
        let w = self.worker.clone();
        for (topic, partition, n) in self.received.drain(..) {
            counter!(RECORDS_IN, "worker" => w.clone(), "topic" => topic, "partition" => partition.to_string())
                .increment(n);
        }
        for (topic, n) in self.sent.drain(..) {
            counter!(RECORDS_OUT, "worker" => w.clone(), "topic" => topic).increment(n);
        }
        for (class, n) in self.dead_letters.drain(..) {
            counter!(DEAD_LETTERS, "worker" => w.clone(), "class" => class).increment(n);
        }
        if self.refetches > 0 {
            counter!(REFETCHES, "worker" => w.clone()).increment(self.refetches);
            self.refetches = 0;
        }
        counter!(COMMITS, "worker" => w.clone()).increment(1);
        let latency = histogram!(LATENCY, "worker" => w);
        for ts in self.timestamps.drain(..) {
            // Milliseconds to seconds; integer milliseconds are exact in an f64.
            #[allow(clippy::cast_precision_loss)]
            latency.record((now_ms - ts).max(0) as f64 / 1000.0);
        }
    }
}

/// Publishes the consumer lag of the partitions in a librdkafka statistics report that this
/// instance `owns` (librdkafka keeps reporting a partition for a while after it is given up; its
/// gauge was set to 0 then, see [`owned`]).
pub(crate) fn consumer_lag(
    worker: &str,
    statistics: &Statistics,
    owns: impl Fn(&str, i32) -> bool,
) {
    let mut partitions: Vec<(&String, i32, i64)> = statistics
        .topics
        .iter()
        .flat_map(|(topic, t)| {
            t.partitions
                .iter()
                // Partition -1 is librdkafka's internal "unassigned" entry; lag -1 is unknown.
                .filter(|(p, s)| **p >= 0 && s.consumer_lag >= 0)
                .map(move |(p, s)| (topic, *p, s.consumer_lag))
        })
        .filter(|(topic, p, _)| owns(topic, *p))
        .collect();
    partitions.sort_unstable();
    for (topic, partition, lag) in partitions {
        #[allow(clippy::cast_precision_loss)]
        gauge!(CONSUMER_LAG, "worker" => worker.to_owned(), "topic" => topic.clone(), "partition" => partition.to_string())
            .set(lag as f64);
    }
}

/// One command rejected with `bad_timestamp` (rare: counted as it happens, not per batch).
pub fn bad_timestamp(worker: &str) {
    counter!(BAD_TIMESTAMPS, "worker" => worker.to_owned()).increment(1);
}

/// One watermark advance held back to a record's broker timestamp plus the allowed lead.
pub fn watermark_clamped(worker: &str, partition: i32) {
    counter!(WATERMARK_CLAMPED, "worker" => worker.to_owned(), "partition" => partition.to_string())
        .increment(1);
}

/// `partitions` partitions were assigned to this instance, or taken from it (counted as the
/// rebalance callback begins).
pub(crate) fn rebalanced(worker: &str, kind: Rebalance, partitions: usize) {
    counter!(REBALANCES, "worker" => worker.to_owned(), "kind" => kind.label())
        .increment(partitions as u64);
}

/// This instance owns `owned` partitions now, and gave `given_up` up: their lag gauges are set
/// to 0 (the new owner reports them).
pub(crate) fn owned(worker: &str, owned: usize, given_up: &[(String, i32)]) {
    #[allow(clippy::cast_precision_loss)] // a partition count
    gauge!(ASSIGNED_PARTITIONS, "worker" => worker.to_owned()).set(owned as f64);
    for (topic, partition) in given_up {
        gauge!(CONSUMER_LAG, "worker" => worker.to_owned(), "topic" => topic.clone(), "partition" => partition.to_string())
            .set(0.0);
    }
}

/// A client call (`what`) is tried again after a transient error of `kind`.
pub(crate) fn client_retry(worker: &str, what: &'static str, kind: &'static str) {
    counter!(CLIENT_RETRIES, "worker" => worker.to_owned(), "call" => what, "kind" => kind)
        .increment(1);
}

/// One partition went live `took` after its assignment.
pub(crate) fn restored(worker: &str, took: Duration) {
    histogram!(RESTORE, "worker" => worker.to_owned()).record(took.as_secs_f64());
}

/// One partition was handed over `took` after its revocation.
pub(crate) fn handed_off(worker: &str, took: Duration) {
    histogram!(HANDOFF, "worker" => worker.to_owned()).record(took.as_secs_f64());
}

/// A snapshot of `bytes` bytes of `partition` was written at `unix_seconds`.
pub fn snapshot_written(worker: &str, partition: i32, bytes: usize, unix_seconds: f64) {
    snapshot_loaded(worker, partition, bytes);
    gauge!(SNAPSHOT_TIMESTAMP, "worker" => worker.to_owned(), "partition" => partition.to_string())
        .set(unix_seconds);
}

/// A snapshot of `bytes` bytes of `partition` was loaded (or written).
pub fn snapshot_loaded(worker: &str, partition: i32, bytes: usize) {
    #[allow(clippy::cast_precision_loss)] // exact below 2^53 bytes
    gauge!(SNAPSHOT_BYTES, "worker" => worker.to_owned(), "partition" => partition.to_string())
        .set(bytes as f64);
}
