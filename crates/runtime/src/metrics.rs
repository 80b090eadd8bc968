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
//!
//! The loop counts in plain integers while a batch runs and hands the sums to the facade once
//! per batch, so the per-record cost is an integer add.

use std::net::SocketAddr;

use metrics::{counter, gauge, histogram};
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
        .and_then(|b| b.install())
        .map_err(|e| ServeError {
            addr,
            reason: e.to_string(),
        })
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

/// Publishes the consumer lag of every partition in a librdkafka statistics report.
pub(crate) fn consumer_lag(worker: &str, statistics: &Statistics) {
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
