//! The runtime's interface ([`crate::io`]) on librdkafka.
//!
//! - [`KafkaConsumer`]: a `BaseConsumer` whose rebalance and commit events are queued by its
//!   context and returned by [`GroupConsumer::poll`]; the loop calls `incremental_assign` /
//!   `incremental_unassign` once it has restored or finished the partitions (librdkafka's event
//!   API leaves that call to the application; rust-rdkafka's `poll` returns right after serving
//!   a rebalance event). While the consumer closes (drop), the context hands partitions back by
//!   itself, since no loop is polling any more.
//! - [`KafkaProducer`]: a `ThreadedProducer` whose delivery reports go to [`Deliveries`].
//! - [`PartitionReader`](crate::partition::PartitionReader) implements [`LogReader`](super::LogReader).

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{
    BaseConsumer, CommitMode as RdCommitMode, Consumer, ConsumerContext, ConsumerGroupMetadata,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{
    CommitMode, Deliveries, GroupConsumer, InputMessage, OutRecord, Polled, Producer, SendError,
    StartAt, TopicPartition,
};
use crate::KafkaConfig;
use crate::acks::Token;
use crate::client_error::ClientError;
use crate::headers::{self, HeaderLookup};
use crate::metrics;
use crate::quirks::BrokerQuirks;

/// How long a seek or an offset lookup may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A group event the context queued for the loop.
#[derive(Debug)]
enum GroupEvent {
    Assigned(Vec<TopicPartition>),
    Revoked {
        partitions: Vec<TopicPartition>,
        lost: bool,
    },
    Committed {
        offsets: Vec<(TopicPartition, i64)>,
        result: Result<(), ClientError>,
    },
    Error(ClientError),
}

/// The consumer's context: queues group events; statistics become lag metrics.
struct LoopContext {
    worker: String,
    events: Mutex<VecDeque<GroupEvent>>,
    /// The partitions this instance fetches: lag is reported for these only.
    owned: Mutex<BTreeSet<(String, i32)>>,
    /// The consumer is closing: no loop polls any more, so rebalances are served here.
    closing: AtomicBool,
}

impl LoopContext {
    fn push(&self, event: GroupEvent) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(event);
    }

    fn pop(&self) -> Option<GroupEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, i32)>> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for LoopContext {
    fn stats(&self, statistics: Statistics) {
        let owned = self.owned().clone();
        metrics::consumer_lag(&self.worker, &statistics, |topic, p| {
            owned.contains(&(topic.to_owned(), p))
        });
    }
}

impl ConsumerContext for LoopContext {
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        self.push(GroupEvent::Committed {
            offsets: list(offsets),
            result: result.map_err(ClientError::from),
        });
    }

    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let partitions: Vec<TopicPartition> = list(tpl).into_iter().map(|(tp, _)| tp).collect();
        if self.closing.load(Ordering::Acquire) {
            // Nobody polls any more: hand everything back here.
            if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                let _ = consumer.incremental_unassign(tpl);
                let mut owned = self.owned();
                for tp in &partitions {
                    owned.remove(&(tp.topic.clone(), tp.partition));
                }
            }
            return;
        }
        let event = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                GroupEvent::Assigned(partitions)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => GroupEvent::Revoked {
                partitions,
                lost: consumer.assignment_lost(),
            },
            other => {
                let code: RDKafkaErrorCode = other.into();
                tracing::warn!(error = %code, "rebalance error");
                GroupEvent::Error(KafkaError::Rebalance(code).into())
            }
        };
        self.push(event);
    }
}

/// The entries of a partition list with their offsets (-1 when none).
fn list(tpl: &TopicPartitionList) -> Vec<(TopicPartition, i64)> {
    tpl.elements()
        .iter()
        .map(|e| {
            (
                TopicPartition::new(e.topic(), e.partition()),
                e.offset().to_raw().unwrap_or(-1),
            )
        })
        .collect()
}

/// A group consumer on librdkafka (cooperative-sticky, manual commits, `read_committed`).
pub struct KafkaConsumer {
    consumer: BaseConsumer<LoopContext>,
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumer")
            .field("worker", &self.consumer.context().worker)
            .finish_non_exhaustive()
    }
}

impl KafkaConsumer {
    /// A consumer in `group`, tuned for `quirks`; `worker` labels its metrics.
    pub fn new(
        kafka: &KafkaConfig,
        group: &str,
        quirks: BrokerQuirks,
        worker: &str,
    ) -> Result<Self, ClientError> {
        let mut cfg = kafka.group_consumer(group);
        quirks.tune_consumer(kafka, &mut cfg);
        let consumer = cfg.create_with_context(LoopContext {
            worker: worker.to_owned(),
            events: Mutex::new(VecDeque::new()),
            owned: Mutex::new(BTreeSet::new()),
            closing: AtomicBool::new(false),
        })?;
        Ok(KafkaConsumer { consumer })
    }

    fn tpl(offsets: &[(TopicPartition, i64)]) -> Result<TopicPartitionList, ClientError> {
        let mut tpl = TopicPartitionList::new();
        for (tp, offset) in offsets {
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset))?;
        }
        Ok(tpl)
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        // The consumer closes after this (its own drop): revocations are served by the context.
        self.consumer
            .context()
            .closing
            .store(true, Ordering::Release);
    }
}

/// A record polled from a [`KafkaConsumer`].
#[derive(Debug)]
pub struct KafkaMessage<'a>(BorrowedMessage<'a>);

impl InputMessage for KafkaMessage<'_> {
    fn topic(&self) -> &str {
        self.0.topic()
    }

    fn partition(&self) -> i32 {
        self.0.partition()
    }

    fn offset(&self) -> i64 {
        self.0.offset()
    }

    fn key(&self) -> Option<&[u8]> {
        self.0.key()
    }

    fn payload(&self) -> Option<&[u8]> {
        self.0.payload()
    }

    fn timestamp_ms(&self) -> Option<i64> {
        self.0.timestamp().to_millis()
    }

    fn headers(&self) -> Option<&dyn HeaderLookup> {
        self.0.headers().map(|h| h as &dyn HeaderLookup)
    }
}

impl From<GroupEvent> for Polled<KafkaMessage<'_>> {
    fn from(event: GroupEvent) -> Self {
        match event {
            GroupEvent::Assigned(partitions) => Polled::Assigned(partitions),
            GroupEvent::Revoked { partitions, lost } => Polled::Revoked { partitions, lost },
            GroupEvent::Committed { offsets, result } => Polled::Committed { offsets, result },
            GroupEvent::Error(e) => Polled::Error(e),
        }
    }
}

impl GroupConsumer for KafkaConsumer {
    type Message<'a> = KafkaMessage<'a>;
    type Group = ConsumerGroupMetadata;

    fn subscribe(&self, topics: &[String]) -> Result<(), ClientError> {
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        Ok(self.consumer.subscribe(&topics)?)
    }

    fn unsubscribe(&self) {
        self.consumer.unsubscribe();
    }

    fn poll(&self, timeout: Duration) -> Polled<KafkaMessage<'_>> {
        if let Some(event) = self.consumer.context().pop() {
            return event.into();
        }
        let mut timeout = timeout;
        loop {
            match self.consumer.poll(timeout) {
                Some(Ok(m)) => return Polled::Record(KafkaMessage(m)),
                Some(Err(KafkaError::PartitionEOF(_))) => timeout = Duration::ZERO,
                Some(Err(e)) => return Polled::Error(e.into()),
                // Nothing, or an event served (a rebalance, a commit result).
                None => {
                    return self
                        .consumer
                        .context()
                        .pop()
                        .map_or(Polled::Nothing, Polled::from);
                }
            }
        }
    }

    fn assign(&self, partitions: &[(TopicPartition, StartAt)]) -> Result<(), ClientError> {
        let mut tpl = TopicPartitionList::new();
        for (tp, at) in partitions {
            let offset = match at {
                StartAt::Beginning => Offset::Beginning,
                StartAt::Offset(n) => Offset::Offset(*n),
            };
            tpl.add_partition_offset(&tp.topic, tp.partition, offset)?;
        }
        self.consumer.incremental_assign(&tpl)?;
        let mut owned = self.consumer.context().owned();
        for (tp, _) in partitions {
            owned.insert((tp.topic.clone(), tp.partition));
        }
        Ok(())
    }

    fn unassign(&self, partitions: &[TopicPartition]) -> Result<(), ClientError> {
        let mut tpl = TopicPartitionList::new();
        for tp in partitions {
            tpl.add_partition(&tp.topic, tp.partition);
        }
        self.consumer.incremental_unassign(&tpl)?;
        let mut owned = self.consumer.context().owned();
        for tp in partitions {
            owned.remove(&(tp.topic.clone(), tp.partition));
        }
        Ok(())
    }

    fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<(), ClientError> {
        let offset = if offset <= 0 {
            Offset::Beginning
        } else {
            Offset::Offset(offset)
        };
        Ok(self
            .consumer
            .seek(&tp.topic, tp.partition, offset, CALL_TIMEOUT)?)
    }

    fn committed(&self, tp: &TopicPartition) -> Result<Option<i64>, ClientError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&tp.topic, tp.partition)
            .set_offset(Offset::Invalid)?;
        let committed = self.consumer.committed_offsets(tpl, CALL_TIMEOUT)?;
        Ok(committed
            .find_partition(&tp.topic, tp.partition)
            .and_then(|e| e.offset().to_raw())
            .filter(|o| *o >= 0))
    }

    fn commit(
        &self,
        offsets: &[(TopicPartition, i64)],
        mode: CommitMode,
    ) -> Result<(), ClientError> {
        let tpl = Self::tpl(offsets)?;
        let mode = match mode {
            CommitMode::Async => RdCommitMode::Async,
            CommitMode::Sync => RdCommitMode::Sync,
        };
        Ok(self.consumer.commit(&tpl, mode)?)
    }

    fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.consumer.group_metadata()
    }
}

/// The producer's context: delivery reports go to the acknowledgement tracker.
#[derive(Debug)]
pub struct DeliveryContext {
    deliveries: Arc<Deliveries>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Token;

    fn delivery(&self, result: &DeliveryResult<'_>, token: Token) {
        let result = match result {
            Ok(_) => Ok(()),
            // Records purged by an abort were meant to be dropped: the loop replays their input.
            Err((e, _))
                if matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)
                ) =>
            {
                Ok(())
            }
            Err((e, _)) => Err(ClientError::from(e.clone())),
        };
        self.deliveries.report(token, result);
    }
}

/// An idempotent or transactional producer on librdkafka, reporting to [`Deliveries`].
pub struct KafkaProducer {
    producer: ThreadedProducer<DeliveryContext>,
    deliveries: Arc<Deliveries>,
    kafka: KafkaConfig,
    /// Exactly-once: the `transactional.id`.
    transactional_id: Option<String>,
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("transactional_id", &self.transactional_id)
            .finish_non_exhaustive()
    }
}

impl KafkaProducer {
    /// An idempotent producer (effectively-once).
    pub fn idempotent(
        kafka: &KafkaConfig,
        deliveries: Arc<Deliveries>,
    ) -> Result<Self, ClientError> {
        let producer = kafka.producer().create_with_context(DeliveryContext {
            deliveries: deliveries.clone(),
        })?;
        Ok(KafkaProducer {
            producer,
            deliveries,
            kafka: kafka.clone(),
            transactional_id: None,
        })
    }

    /// A transactional producer (exactly-once), its transactions initialised (which also aborts
    /// any transaction a previous producer with the same id left open).
    pub fn transactional(
        kafka: &KafkaConfig,
        transactional_id: &str,
        deliveries: Arc<Deliveries>,
    ) -> Result<Self, ClientError> {
        let producer = Self::init(kafka, transactional_id, &deliveries)?;
        Ok(KafkaProducer {
            producer,
            deliveries,
            kafka: kafka.clone(),
            transactional_id: Some(transactional_id.to_owned()),
        })
    }

    fn init(
        kafka: &KafkaConfig,
        transactional_id: &str,
        deliveries: &Arc<Deliveries>,
    ) -> Result<ThreadedProducer<DeliveryContext>, ClientError> {
        let producer: ThreadedProducer<DeliveryContext> = kafka
            .transactional_producer(transactional_id)
            .create_with_context(DeliveryContext {
                deliveries: deliveries.clone(),
            })?;
        producer.init_transactions(Duration::from_secs(30))?;
        Ok(producer)
    }
}

impl Producer for KafkaProducer {
    type Group = ConsumerGroupMetadata;

    fn send(&self, record: &OutRecord<'_>, token: Token) -> Result<(), SendError> {
        let mut out = BaseRecord::<[u8], [u8], Token>::with_opaque_to(record.topic, token);
        if let Some(p) = record.payload {
            out = out.payload(p);
        }
        if let Some(p) = record.partition {
            out = out.partition(p);
        }
        if let Some(k) = record.key {
            out = out.key(k);
        }
        if !record.headers.is_empty() {
            out = out.headers(headers::owned(record.headers));
        }
        match self.producer.send(out) {
            Ok(()) => Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                Err(SendError::QueueFull)
            }
            Err((e, _)) => Err(SendError::Failed(e.into())),
        }
    }

    /// Not `Producer::flush`: on a `ThreadedProducer` the reports are served by the producer's
    /// own thread, and rust-rdkafka's flush then sleeps in 100 ms polls that never see them, so
    /// every flush with anything in flight took 100 ms (measured: one send + flush, 100.1 ms on
    /// both brokers).
    fn wait_settled(&self, timeout: Duration) -> bool {
        self.deliveries.wait_settled(timeout)
    }

    fn wait_for_room(&self) {
        std::thread::sleep(Duration::from_millis(1));
    }

    fn begin_transaction(&self) -> Result<(), ClientError> {
        Ok(self.producer.begin_transaction()?)
    }

    fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, i64)],
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let tpl = KafkaConsumer::tpl(offsets)?;
        Ok(self
            .producer
            .send_offsets_to_transaction(&tpl, group, timeout)?)
    }

    fn commit_transaction(&self, timeout: Duration) -> Result<(), ClientError> {
        Ok(self.producer.commit_transaction(timeout)?)
    }

    fn abort_transaction(&self, timeout: Duration) -> Result<(), ClientError> {
        Ok(self.producer.abort_transaction(timeout)?)
    }

    fn renew(&mut self) -> Result<(), ClientError> {
        let Some(id) = &self.transactional_id else {
            return Ok(());
        };
        self.producer = Self::init(&self.kafka, id, &self.deliveries)?;
        Ok(())
    }
}
