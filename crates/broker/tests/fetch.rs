//! The embedded broker's fetch, as a Kafka client sees it (tansu's memory storage with the fetch
//! fix of `patches/tansu-storage`): a consumer gets every record from the offset it asks for,
//! whether that offset starts a stored batch or falls inside one, and a partition read from its
//! start, a few batches per fetch, gives every record once and in order.
//!
//! Each test starts its own embedded broker on a free loopback port; it stops with the test
//! process.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// Records per produced batch.
const BATCH: i64 = 10;
/// Batches produced to the topic.
const BATCHES: i64 = 30;
/// Records in the topic.
const RECORDS: i64 = BATCH * BATCHES;

/// A fresh embedded broker with one topic of one partition holding [`BATCHES`] batches of
/// [`BATCH`] records; the record at offset `n` has the value `n`. Returns the bootstrap address.
fn broker_with_batches(topic: &str) -> String {
    let addr = tradestream_broker::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("the embedded broker starts");
    let bootstrap = addr.to_string();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin client");
    let created = futures::executor::block_on(admin.create_topics(
        &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .expect("create the topic");
    assert!(
        created.iter().all(Result::is_ok),
        "topic created: {created:?}"
    );

    // The producer never lingers out (a minute) and closes a batch at BATCH records: every batch
    // holds exactly BATCH records, so offsets BATCH·k start batches and the others fall inside.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "60000")
        .set("batch.num.messages", BATCH.to_string())
        .set("acks", "all")
        .create()
        .expect("producer");
    for n in 0..RECORDS {
        let value = n.to_string();
        producer
            .send(BaseRecord::<(), _>::to(topic).payload(&value).partition(0))
            .expect("the record is queued");
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("every record is acknowledged");
    bootstrap
}

/// Reads partition 0 of `topic` from `from` to its end (bounded: 30 s), fetching at most
/// `max_partition_bytes` per fetch; returns each record's offset and value.
fn read(bootstrap: &str, topic: &str, from: i64, max_partition_bytes: usize) -> Vec<(i64, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "fetch-test")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .set("max.partition.fetch.bytes", max_partition_bytes.to_string())
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(from))
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.last().is_none_or(|&(offset, _)| offset < RECORDS - 1) && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.expect("no fetch error");
        let value = message
            .payload_view::<str>()
            .and_then(Result::ok)
            .and_then(|v| v.parse().ok())
            .expect("a numeric value");
        read.push((message.offset(), value));
    }
    read
}

/// `(offset, value)` of every record from `from` to the end, as produced.
fn expected_from(from: i64) -> Vec<(i64, i64)> {
    (from..RECORDS).map(|n| (n, n)).collect()
}

#[test]
fn a_consumer_resuming_inside_a_batch_gets_the_rest_of_that_batch() {
    let bootstrap = broker_with_batches("inside-a-batch");
    // 25 is inside the batch 20..=29: a consumer resuming there (from a committed offset, say)
    // must get 25..=29 before the next batch. tansu 0.6 answered from the next batch, 30.
    let from = 2 * BATCH + 5;
    let got = read(&bootstrap, "inside-a-batch", from, 1_048_576);
    assert_eq!(
        got.first(),
        Some(&(from, from)),
        "the first record read is the one asked for"
    );
    assert_eq!(got, expected_from(from));
}

#[test]
fn a_partition_read_a_few_batches_per_fetch_gives_every_record_once_in_order() {
    let bootstrap = broker_with_batches("batch-by-batch");
    // 256 bytes per fetch: a batch or two per answer, so the reader goes through the whole
    // partition one fetch after another, each starting where a batch starts.
    for from in [0, 2 * BATCH] {
        let got = read(&bootstrap, "batch-by-batch", from, 256);
        assert_eq!(got, expected_from(from), "read from {from}");
    }
}
