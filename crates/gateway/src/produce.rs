//! Producing commands to `orders`: idempotent, `acks=all`, murmur2 (the pinned settings of
//! [`KafkaConfig::producer`]), answered only once the broker acknowledged.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use tradestream_runtime::KafkaConfig;

/// Where an acknowledged command landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// Why a command was not acknowledged (→ 503).
#[derive(Debug, thiserror::Error)]
#[error("the broker did not acknowledge the command: {0}")]
pub struct NotAcked(pub String);

/// The gateway's producer.
#[derive(Clone)]
pub struct OrderProducer {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for OrderProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl OrderProducer {
    /// A producer to `topic`; a record not acknowledged within `timeout` (librdkafka's
    /// `message.timeout.ms`, unless the user set it) fails.
    pub fn new(kafka: &KafkaConfig, topic: &str, timeout: Duration) -> anyhow::Result<Self> {
        let mut cfg = kafka.producer();
        if !kafka.passthrough.contains_key("message.timeout.ms") {
            cfg.set("message.timeout.ms", timeout.as_millis().max(1).to_string());
        }
        // A request waits briefly for company: the client waits for the broker anyway.
        if !kafka.passthrough.contains_key("linger.ms") {
            cfg.set("linger.ms", "1");
        }
        let producer: FutureProducer = cfg.create()?;
        Ok(OrderProducer {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Produces `payload` keyed by `key` and waits for the broker's acknowledgement.
    pub async fn send(&self, key: &str, payload: &[u8]) -> Result<Acked, NotAcked> {
        let record = FutureRecord::to(&self.topic).key(key).payload(payload);
        // Queue full → fail at once rather than hold the request.
        match self
            .producer
            .send(record, Timeout::After(Duration::ZERO))
            .await
        {
            Ok(d) => Ok(Acked {
                partition: d.partition,
                offset: d.offset,
            }),
            Err((e, _)) => Err(NotAcked(e.to_string())),
        }
    }

    /// Asks the brokers for the topic's metadata (readiness).
    pub async fn ready(&self, timeout: Duration) -> Result<(), String> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let md = producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| e.to_string())?;
            match md.topics().first() {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
                Some(t) => Err(format!("topic {topic}: {:?}", t.error())),
                None => Err(format!("topic {topic} not found")),
            }
        })
        .await
        .map_err(|e| e.to_string())?
    }
}
