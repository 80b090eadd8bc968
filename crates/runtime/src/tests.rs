//! Unit tests of the pieces that need no broker.

use rdkafka::message::Headers;

use crate::KafkaConfig;
use crate::dead_letter::{self, Poison};
use crate::headers::{self, Provenance};

#[test]
fn typed_settings_win_over_passthrough() {
    let mut cfg = KafkaConfig::new("127.0.0.1:9092");
    cfg.passthrough.insert("acks".into(), "0".into());
    cfg.passthrough
        .insert("enable.auto.commit".into(), "true".into());
    cfg.passthrough.insert("client.id".into(), "mine".into());
    cfg.passthrough
        .insert("bootstrap.servers".into(), "elsewhere:9092".into());
    let producer = cfg.producer();
    assert_eq!(producer.get("acks"), Some("all"));
    assert_eq!(producer.get("enable.idempotence"), Some("true"));
    assert_eq!(
        producer.get("client.id"),
        Some("mine"),
        "others pass through"
    );
    assert_eq!(producer.get("bootstrap.servers"), Some("127.0.0.1:9092"));
    let consumer = cfg.group_consumer("g");
    assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
    assert_eq!(
        consumer.get("partition.assignment.strategy"),
        Some("cooperative-sticky")
    );
    assert_eq!(consumer.get("group.id"), Some("g"));
    assert_eq!(cfg.reader().get("enable.partition.eof"), Some("true"));
}

#[test]
fn provenance_headers_read_back() {
    let h = Provenance {
        source_topic: "orders",
        source_partition: 3,
        source_offset: 1234,
        seq: 99,
        worker: "matcher",
    }
    .headers();
    assert_eq!(h.count(), 5);
    assert_eq!(headers::text(&h, headers::SOURCE_TOPIC), Some("orders"));
    assert_eq!(headers::number(&h, headers::SOURCE_PARTITION), Some(3));
    assert_eq!(headers::number(&h, headers::SOURCE_OFFSET), Some(1234));
    assert_eq!(headers::number(&h, headers::SEQ), Some(99));
    assert_eq!(headers::text(&h, headers::WORKER), Some("matcher"));
    assert_eq!(headers::text(&h, "missing"), None);
    assert_eq!(headers::number(&h, headers::WORKER), None, "not a number");
}

#[test]
fn dead_letter_headers_name_the_error_and_the_source() {
    let poison = Poison {
        class: "decode",
        message: "qty: invalid character in decimal".into(),
    };
    let h = dead_letter::headers(&poison, "orders", 2, 77, "matcher");
    assert_eq!(headers::text(&h, dead_letter::ERROR_CLASS), Some("decode"));
    assert_eq!(
        headers::text(&h, dead_letter::ERROR_MESSAGE),
        Some("qty: invalid character in decimal")
    );
    assert_eq!(headers::text(&h, headers::SOURCE_TOPIC), Some("orders"));
    assert_eq!(headers::number(&h, headers::SOURCE_PARTITION), Some(2));
    assert_eq!(headers::number(&h, headers::SOURCE_OFFSET), Some(77));
    assert_eq!(headers::text(&h, headers::WORKER), Some("matcher"));
}

#[test]
fn shutdown_is_shared_by_clones() {
    let a = crate::Shutdown::new();
    let b = a.clone();
    assert!(!b.is_triggered());
    a.trigger();
    assert!(b.is_triggered());
}
