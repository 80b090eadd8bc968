//! End-to-end latency as a client sees it: **order timestamp → outcome readable**.
//!
//! The generator stamps every command with the wall clock as it is sent
//! ([`crate::OrderFlow::next_line_at`] with [`crate::wall_clock_ms`]). A [`LatencyReader`] — a
//! consumer of its own, outside any group, assigned to every partition of an output topic,
//! `read_committed` — takes the wall clock the moment a record is returned to it, and records
//! `now − ts` for each order's first outcome (or, for a relay's output, each record). The
//! demo and the benches all measure with it, so their figures mean the same thing.
//!
//! The stamp has millisecond resolution and the reading microsecond resolution: each sample
//! errs by less than 1 ms, on the high side. Writer and reader share one machine's clock.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tradestream_codec::avro;
use tradestream_runtime::KafkaConfig;

/// An exact latency distribution: every sample, in microseconds.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    micros: Vec<u32>,
    sorted: bool,
}

/// Percentiles of a [`Histogram`], in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p99_9_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms ({} samples)",
            self.p50_ms, self.p99_ms, self.p99_9_ms, self.max_ms, self.count
        )
    }
}

impl Histogram {
    /// Records one sample of `micros` microseconds (a negative one, a clock step, counts as 0).
    pub fn record_micros(&mut self, micros: i64) {
        self.micros
            .push(u32::try_from(micros.max(0)).unwrap_or(u32::MAX));
        self.sorted = false;
    }

    /// Samples recorded.
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// The sample at quantile `q` (0..=1) by nearest rank, in milliseconds (0 when empty).
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.micros.is_empty() {
            return 0.0;
        }
        if !self.sorted {
            self.micros.sort_unstable();
            self.sorted = true;
        }
        let n = self.micros.len();
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
        f64::from(self.micros[rank - 1]) / 1000.0
    }

    /// p50, p99, p99.9 and max, rounded to 0.1 ms (the stamps have 1 ms resolution).
    pub fn percentiles(&mut self) -> Percentiles {
        let count = self.micros.len() as u64;
        let mut at = |q| (self.quantile_ms(q) * 10.0).round() / 10.0;
        Percentiles {
            count,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p99_9_ms: at(0.999),
            max_ms: at(1.0),
        }
    }
}

/// What the records of the measured topic are, and so where an order's timestamp is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcomes {
    /// The matcher's `executions` (Avro engine events): each command's first outcome is its one
    /// `accepted`, `rejected`, `cancelled` or `replaced` event, whose `ts` is the command's.
    /// Counted once per source record (a replayed duplicate is passed over).
    EngineEvents,
    /// The order commands themselves (JSON lines with a `ts`), as a relay copies them: every
    /// record is a sample, once.
    OrderLines,
}

impl Outcomes {
    /// The order's timestamp (ms) and the identity of its order, when `payload` is a first
    /// outcome.
    fn order_ts(self, payload: &[u8]) -> Option<(i64, Option<(i32, i64)>)> {
        match self {
            Outcomes::EngineEvents => {
                let event = avro::decode_event(payload).ok()?;
                matches!(
                    event.kind.name(),
                    "accepted" | "rejected" | "cancelled" | "replaced"
                )
                .then_some((
                    event.ts,
                    Some((event.source_partition, event.source_offset)),
                ))
            }
            Outcomes::OrderLines => json_ts(payload).map(|ts| (ts, None)),
        }
    }
}

/// The integer after `"ts":` in a JSON command line.
fn json_ts(line: &[u8]) -> Option<i64> {
    const FIELD: &[u8] = b"\"ts\":";
    let at = line.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let digits: Vec<u8> = line[at..]
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// The wall clock in microseconds since the epoch.
fn wall_clock_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// What the reader thread and its owner share.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    samples: AtomicU64,
    records: AtomicU64,
    histogram: Mutex<Histogram>,
}

/// A reader on a thread of its own that measures order timestamp → outcome readable on one
/// topic, from its beginning.
#[derive(Debug)]
pub struct LatencyReader {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), KafkaError>>>,
}

impl LatencyReader {
    /// Starts reading every partition of `topic` (which must exist) from its beginning, with
    /// the project's reader settings (`read_committed`, short fetch waits, no group commits).
    pub fn start(
        kafka: &KafkaConfig,
        topic: &str,
        outcomes: Outcomes,
    ) -> Result<LatencyReader, KafkaError> {
        let consumer: BaseConsumer = kafka
            .reader()
            .set("enable.partition.eof", "false")
            // The instrument must not add a delay of its own: the embedded broker holds every
            // fetch for its whole wait, and Kafka answers as soon as records arrive either way.
            .set("fetch.wait.max.ms", "1")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len() as i32);
        if partitions == 0 {
            return Err(KafkaError::MetadataFetch(
                rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
            ));
        }
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("latency-reader".into())
                .spawn(move || read(&consumer, outcomes, &shared))
                .map_err(|e| {
                    KafkaError::ClientCreation(format!("cannot start the reader thread: {e}"))
                })?
        };
        Ok(LatencyReader {
            shared,
            thread: Some(thread),
        })
    }

    /// Samples taken so far (first outcomes seen).
    pub fn samples(&self) -> u64 {
        self.shared.samples.load(Ordering::Relaxed)
    }

    /// Records read so far, outcomes or not.
    pub fn records(&self) -> u64 {
        self.shared.records.load(Ordering::Relaxed)
    }

    /// Waits (at most `timeout`) until `n` samples were taken; whether they were.
    pub fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.samples() < n {
            if Instant::now() >= deadline || self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return self.samples() >= n;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// The samples taken so far, leaving the reader with none (e.g. after a warm-up).
    pub fn take(&self) -> Histogram {
        std::mem::take(
            &mut *self
                .shared
                .histogram
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Stops the reader; returns every sample not taken yet.
    pub fn stop(mut self) -> Result<Histogram, KafkaError> {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| KafkaError::ClientCreation("the reader thread panicked".into()))??;
        }
        Ok(self.take())
    }
}

impl Drop for LatencyReader {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read(consumer: &BaseConsumer, outcomes: Outcomes, shared: &Shared) -> Result<(), KafkaError> {
    let mut seen: HashSet<(i32, i64)> = HashSet::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let Some(m) = consumer.poll(Duration::from_millis(20)) else {
            continue;
        };
        let now = wall_clock_us();
        let m = m?;
        shared.records.fetch_add(1, Ordering::Relaxed);
        let Some((ts, order)) = m.payload().and_then(|p| outcomes.order_ts(p)) else {
            continue;
        };
        // One sample per order: an order line is known by its record, and a record a broker
        // delivers again (the embedded one re-sends parts of batches) is not a second sample.
        if !seen.insert(order.unwrap_or((m.partition(), m.offset()))) {
            continue;
        }
        shared
            .histogram
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record_micros(now - ts * 1000);
        shared.samples.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
