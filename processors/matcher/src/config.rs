//! Matcher settings.

use std::time::Duration;

use tradestream_engine::Instruments;
use tradestream_runtime::{KafkaConfig, LoopConfig};

/// The default window, either way: 5 minutes. Clocks synchronised by NTP agree to milliseconds,
/// so a legitimate `ts` is off the broker's by the time from stamping to the broker's stamp:
/// batching, retries and an outage of the producer, which librdkafka bounds by its default
/// `message.timeout.ms` of 5 minutes (the Java client's `delivery.timeout.ms` is 2). A unit slip
/// is off by years (microseconds) or decades (seconds), far outside any sane window.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// How output records are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Avro single-object encoding of `schemas/engine_event.avsc` (the default, per topics.yaml).
    Avro,
    /// The JSON event contract (`tradestream match`'s output, `seq` being the topic's).
    Json,
}

/// Everything the matcher needs to run.
#[derive(Debug, Clone)]
pub struct MatcherConfig {
    /// The consumer loop: cluster, consumer group (also the key prefix of snapshots), dead
    /// letters, batch size, broker quirks, guarantee (both effectively-once and exactly-once are
    /// supported; see [`Guarantee`](tradestream_runtime::Guarantee)).
    pub run: LoopConfig,
    /// Input topic.
    pub orders: String,
    /// Order lifecycle events (and fills).
    pub executions: String,
    /// One record per fill.
    pub trades: String,
    /// L2 deltas and top of book.
    pub market_data: String,
    /// Compacted engine snapshots.
    pub snapshots: String,
    /// The instruments the engines trade.
    pub instruments: Instruments,
    /// Snapshot a partition after this many input records.
    pub snapshot_every_records: u64,
    /// ... or after this long, whichever comes first (if it had input since).
    pub snapshot_every: Duration,
    /// A snapshot is written in chunks of at most this many bytes of engine state.
    pub snapshot_chunk_bytes: usize,
    /// Input records larger than this go to dead letters (class `oversized`).
    pub max_record_bytes: usize,
    /// A command whose `ts` is further than this from its record's broker timestamp, either way,
    /// is rejected with `bad_timestamp` (see `timestamps.rs`). `None`: no check. A replay must
    /// use the live matcher's value to decide the same.
    pub max_clock_skew: Option<Duration>,
    /// Output encoding.
    pub format: OutputFormat,
    /// Worker name in provenance and dead-letter headers.
    pub worker: String,
    /// Schema registry (`http://host:port`). With one, Avro outputs use Confluent framing with
    /// the ids the registry gives `engine_event.avsc` under `<topic>-value`, and a
    /// Confluent-framed order is checked against the registry: an id whose schema is not
    /// `order_command.avsc` makes it a dead letter. Without one, outputs use single-object
    /// encoding (no registry needed).
    pub schema_registry: Option<String>,
    /// Discard a snapshot whose input offset lies beyond the end of its `orders` partition (the
    /// topic was re-created or lost data) and rebuild the book from the partition's start
    /// (`--start-afresh`). Without it the matcher refuses to start on such a snapshot.
    pub start_afresh: bool,
}

impl MatcherConfig {
    /// The matcher's consumer group (`--group`).
    pub const DEFAULT_GROUP: &'static str = "tradestream-matcher";

    /// Defaults for the standard topic names (topics.yaml) and `instruments`, in group
    /// [`DEFAULT_GROUP`](Self::DEFAULT_GROUP) on `kafka`.
    pub fn new(kafka: KafkaConfig, instruments: Instruments) -> Self {
        Self::with_loop(LoopConfig::new(kafka, Self::DEFAULT_GROUP), instruments)
    }

    /// Defaults for the standard topic names (topics.yaml) and `instruments`, in the loop `run`.
    pub fn with_loop(run: LoopConfig, instruments: Instruments) -> Self {
        MatcherConfig {
            run,
            orders: "orders".into(),
            executions: "executions".into(),
            trades: "trades".into(),
            market_data: "market-data".into(),
            snapshots: "matcher-snapshots".into(),
            instruments,
            snapshot_every_records: default_snapshot_every_records(),
            snapshot_every: default_snapshot_every(),
            snapshot_chunk_bytes: default_snapshot_chunk_bytes(),
            max_record_bytes: default_max_record_bytes(),
            max_clock_skew: Some(DEFAULT_MAX_CLOCK_SKEW),
            format: OutputFormat::Avro,
            worker: "matcher".into(),
            schema_registry: None,
            start_afresh: false,
        }
    }
}

/// Recovery replays at most this many records per partition; 10 000 keep restarts well under a
/// second at the engine's speed while snapshots stay rare.
const fn default_snapshot_every_records() -> u64 {
    10_000
}

/// A quiet partition still gets a snapshot within 10 s of its last input.
const fn default_snapshot_every() -> Duration {
    Duration::from_secs(10)
}

/// Chunks stay well under the default 1 MB broker message limit.
const fn default_snapshot_chunk_bytes() -> usize {
    512 * 1024
}

/// Orders are small; anything over 64 KiB is a mistake, not an order.
const fn default_max_record_bytes() -> usize {
    64 * 1024
}
