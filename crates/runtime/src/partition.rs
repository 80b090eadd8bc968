//! Reading one partition between two offsets, outside any consumer group.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::KafkaConfig;
use crate::client_error::ClientError;
use crate::headers::HeaderLookup;
use crate::io::{Fetched, LogReader};

/// Why a partition could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The client failed.
    #[error("kafka: {0}")]
    Client(#[from] ClientError),
    /// The end of the partition was not reached in time.
    #[error("timed out reading {topic}/{partition} at offset {at}")]
    Timeout {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Next offset that was awaited.
        at: i64,
    },
}

impl From<rdkafka::error::KafkaError> for ReadError {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        ReadError::Client(e.into())
    }
}

impl ReadError {
    /// Whether reading again later may succeed (a broker away, a leader moving, a read that
    /// timed out).
    pub fn is_transient(&self) -> bool {
        match self {
            ReadError::Client(e) => e.is_transient(),
            ReadError::Timeout { .. } => true,
        }
    }
}

/// Past the known end, this long without a record ends a read.
const QUIET: Duration = Duration::from_millis(300);

/// Keeps partition-end notices out of the error log: for a reader they are the expected end.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReaderContext;

impl rdkafka::ClientContext for ReaderContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode};
        let end = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !end {
            tracing::warn!(error = %error, reason, "partition reader error");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ReaderContext {}

/// Reads partitions by offset range.
pub struct PartitionReader {
    consumer: BaseConsumer<ReaderContext>,
    timeout: Duration,
}

impl std::fmt::Debug for PartitionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReader")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PartitionReader {
    /// A reader; `timeout` bounds each call.
    pub fn new(config: &KafkaConfig, timeout: Duration) -> Result<Self, ReadError> {
        Ok(PartitionReader {
            consumer: config.reader().create_with_context(ReaderContext)?,
            timeout,
        })
    }

    /// Low and high watermarks of a partition. The high watermark may lag on some brokers (see
    /// [`PartitionReader::read_to_end`]); use it as a lower bound of the end.
    ///
    /// Errors a broker gives while leadership settles (e.g. right after it was paused or
    /// restarted: `NotLeaderForPartition`) are retried until the reader's timeout; a restore
    /// that met one used to stop the worker.
    pub fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), ReadError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self
                .consumer
                .fetch_watermarks(topic, partition, self.timeout)
            {
                Ok(w) => return Ok(w),
                Err(e) if leadership_settling(&e) && Instant::now() < deadline => {
                    tracing::debug!(topic, partition, error = %e, "watermarks not available yet; asking again");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Calls `f` on every record of `topic`/`partition` from offset `from` to the end of the
    /// partition as a fetch sees it (librdkafka's partition EOF).
    ///
    /// The end is taken from the fetch, not from [`PartitionReader::watermarks`]: a broker may
    /// answer offset queries with a high watermark that lags what fetches already return (the
    /// embedded tansu 0.6 does), and a read bounded by it would miss the newest records.
    ///
    /// Start at a record batch boundary (e.g. offset 0) or well before the records wanted:
    /// tansu 0.6 answers a fetch that starts inside a batch with the batches after it.
    pub fn read_to_end(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        mut f: impl FnMut(&BorrowedMessage<'_>),
    ) -> Result<(), ReadError> {
        // A lower bound of the end (see above); with it, a quiet partition also ends the read
        // should the end-of-partition notice not come.
        let (_, high) = self.watermarks(topic, partition)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(from.max(0)))?;
        self.consumer.assign(&tpl)?;
        let deadline = Instant::now() + self.timeout;
        let mut at = from;
        let mut last_record = Instant::now();
        loop {
            if Instant::now() > deadline {
                return Err(ReadError::Timeout {
                    topic: topic.to_owned(),
                    partition,
                    at,
                });
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) if m.topic() == topic && m.partition() == partition => {
                    last_record = Instant::now();
                    if m.offset() >= at {
                        at = m.offset() + 1;
                        f(&m);
                    }
                }
                Some(Ok(_)) => {}
                None if at >= high && last_record.elapsed() >= QUIET => break,
                None => {}
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) if p == partition => break,
                Some(Err(e)) if leadership_settling(&e) => {
                    tracing::debug!(topic, partition, error = %e, "read interrupted; going on");
                }
                Some(Err(e)) => return Err(e.into()),
            }
        }
        self.consumer.assign(&TopicPartitionList::new())?;
        Ok(())
    }
}

/// Whether an error only says that a partition's leadership is moving or not known yet, or that
/// the cluster is out of reach for a moment (right after a broker was paused or restarted: all
/// connections down, metadata that does not list the partition yet). Reads retry these until
/// their timeout.
fn leadership_settling(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::NotLeaderForPartition
                | C::LeaderNotAvailable
                | C::FencedLeaderEpoch
                | C::UnknownLeaderEpoch
                | C::BrokerNotAvailable
                | C::RequestTimedOut
                | C::AllBrokersDown
                | C::BrokerTransportFailure
                | C::UnknownPartition
        )
    )
}

impl PartitionReader {
    /// How many partitions `topic` has (0 when it does not exist).
    pub fn partition_count(&self, topic: &str) -> Result<i32, ReadError> {
        let md = self.consumer.fetch_metadata(Some(topic), self.timeout)?;
        Ok(md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len() as i32))
    }
}

impl LogReader for PartitionReader {
    fn log_bounds(&self, topic: &str, partition: i32) -> Result<(i64, i64), ReadError> {
        self.watermarks(topic, partition)
    }

    fn scan(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        f: &mut dyn FnMut(&Fetched<'_>),
    ) -> Result<(), ReadError> {
        self.read_to_end(topic, partition, from, |m| {
            f(&Fetched {
                offset: m.offset(),
                key: m.key(),
                payload: m.payload(),
                headers: m.headers().map(|h| h as &dyn HeaderLookup),
            });
        })
    }

    fn partition_count(&self, topic: &str) -> Result<i32, ReadError> {
        PartitionReader::partition_count(self, topic)
    }
}
