//! Unit tests of the pieces that need no broker.

use rdkafka::message::Headers;

use crate::KafkaConfig;
use crate::dead_letter::{self, Poison};
use crate::headers::{self, Provenance};

#[test]
fn user_settings_replace_defaults_and_pinned_settings_are_enforced() {
    let mut cfg = KafkaConfig::new("127.0.0.1:9092");
    cfg.passthrough
        .insert("max.poll.interval.ms".into(), "600000".into());
    cfg.passthrough
        .insert("message.max.bytes".into(), "4000000".into());
    cfg.passthrough.insert("client.id".into(), "mine".into());
    cfg.passthrough
        .insert("bootstrap.servers".into(), "elsewhere:9092".into());
    cfg.validate().expect("nothing pinned is contradicted");
    let producer = cfg.producer();
    assert_eq!(
        producer.get("message.max.bytes"),
        Some("4000000"),
        "user wins"
    );
    assert_eq!(producer.get("acks"), Some("all"));
    assert_eq!(producer.get("enable.idempotence"), Some("true"));
    assert_eq!(producer.get("partitioner"), Some("murmur2_random"));
    assert_eq!(producer.get("client.id"), Some("mine"));
    assert_eq!(producer.get("bootstrap.servers"), Some("127.0.0.1:9092"));
    let consumer = cfg.group_consumer("g");
    assert_eq!(
        consumer.get("max.poll.interval.ms"),
        Some("600000"),
        "user wins"
    );
    assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
    assert_eq!(consumer.get("isolation.level"), Some("read_committed"));
    assert_eq!(
        consumer.get("partition.assignment.strategy"),
        Some("cooperative-sticky")
    );
    assert_eq!(consumer.get("group.id"), Some("g"));
    assert_eq!(cfg.reader().get("enable.partition.eof"), Some("true"));
    let txn = cfg.transactional_producer("t-1");
    assert_eq!(txn.get("transactional.id"), Some("t-1"));
    assert_eq!(txn.get("transaction.timeout.ms"), Some("10000"));

    // `-1` is another spelling of `all`; `0` contradicts it.
    cfg.passthrough.insert("acks".into(), "-1".into());
    cfg.validate().expect("acks=-1 is acks=all");
    cfg.passthrough.insert("acks".into(), "0".into());
    let err = cfg.validate().expect_err("acks=0 weakens durability");
    assert!(
        err.to_string().contains("acks=0 conflicts with acks=all"),
        "{err}"
    );
    cfg.passthrough.remove("acks");
    for (key, value) in [
        ("enable.auto.commit", "true"),
        ("partitioner", "consistent_random"),
        ("isolation.level", "read_uncommitted"),
    ] {
        cfg.passthrough.insert(key.into(), value.into());
        let err = cfg.validate().expect_err(key);
        assert!(err.to_string().contains(key), "{err}");
        cfg.passthrough.remove(key);
    }
}

#[test]
fn settings_come_from_a_properties_file_and_secrets_from_the_environment() {
    let dir = std::env::temp_dir().join(format!("ts-props-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("client.properties");
    std::fs::write(
        &file,
        "# SASL\nsecurity.protocol=SASL_SSL\n! also a comment\nsasl.username : alice\nsasl.password=s3cret=yes\n\n",
    )
    .unwrap();
    let mut cfg = KafkaConfig::new("127.0.0.1:9092");
    cfg.load_properties(&file).unwrap();
    assert_eq!(cfg.passthrough["security.protocol"], "SASL_SSL");
    assert_eq!(cfg.passthrough["sasl.username"], "alice");
    assert_eq!(
        cfg.passthrough["sasl.password"], "s3cret=yes",
        "split at the first ="
    );
    std::fs::write(&file, "no separator here\n").unwrap();
    let err = cfg.load_properties(&file).expect_err("malformed line");
    assert!(err.to_string().contains("line 1"), "{err}");
    let missing = cfg
        .load_properties(&dir.join("absent"))
        .expect_err("no file");
    assert!(missing.to_string().contains("absent"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        crate::client::secret_env_var("sasl.password"),
        "TRADESTREAM_KAFKA_SASL_PASSWORD"
    );
    assert_eq!(
        crate::client::secret_env_var("ssl.key.password"),
        "TRADESTREAM_KAFKA_SSL_KEY_PASSWORD"
    );
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
    let h = dead_letter::headers(&poison, "orders", 2, 77, "matcher", None);
    assert_eq!(headers::text(&h, dead_letter::ERROR_CLASS), Some("decode"));
    assert_eq!(
        headers::text(&h, dead_letter::ERROR_MESSAGE),
        Some("qty: invalid character in decimal")
    );
    assert_eq!(headers::text(&h, headers::SOURCE_TOPIC), Some("orders"));
    assert_eq!(headers::number(&h, headers::SOURCE_PARTITION), Some(2));
    assert_eq!(headers::number(&h, headers::SOURCE_OFFSET), Some(77));
    assert_eq!(headers::text(&h, headers::WORKER), Some("matcher"));
    assert_eq!(headers::text(&h, dead_letter::PAYLOAD_TRUNCATED), None);
}

#[test]
fn a_dead_letter_keeps_a_bounded_prefix_of_an_oversized_record() {
    let big = vec![b'x'; 999_000];
    let (kept, from) = dead_letter::bounded(&big, dead_letter::MAX_PAYLOAD);
    assert_eq!(kept.len(), dead_letter::MAX_PAYLOAD);
    assert_eq!(from, Some(999_000));
    let (kept, from) = dead_letter::bounded(b"small", dead_letter::MAX_PAYLOAD);
    assert_eq!((kept, from), (&b"small"[..], None));
    // A long message is cut at a character boundary.
    let poison = Poison::new("oversized", "é".repeat(dead_letter::MAX_TEXT));
    let h = dead_letter::headers(&poison, "orders", 0, 1, "matcher", Some(999_000));
    let message = headers::text(&h, dead_letter::ERROR_MESSAGE).expect("utf-8 message");
    assert!(message.len() <= dead_letter::MAX_TEXT && !message.is_empty());
    assert_eq!(
        headers::number(&h, dead_letter::PAYLOAD_TRUNCATED),
        Some(999_000)
    );
}

#[test]
fn shutdown_is_shared_by_clones() {
    let a = crate::Shutdown::new();
    let b = a.clone();
    assert!(!b.is_triggered());
    a.trigger();
    assert!(b.is_triggered());
}

/// A registry on loopback that knows one schema (id 7) and records what it was asked.
fn fake_registry(requests: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/registry", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..requests {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let mut len = 0;
            // Read the head, then as much body as Content-Length says.
            loop {
                let n = s.read(&mut buf[len..]).unwrap();
                len += n;
                let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let want: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if body.len() >= want || n == 0 {
                        break;
                    }
                }
            }
            let request = String::from_utf8_lossy(&buf[..len]).into_owned();
            let line = request.lines().next().unwrap_or_default().to_owned();
            let (status, body) = if line
                .starts_with("POST /registry/subjects/orders-value/versions")
                && request.contains(r#"{"schema":"{\"type\":\"string\"}"}"#)
            {
                ("200 OK", r#"{"id":7}"#.to_owned())
            } else if line.starts_with("GET /registry/schemas/ids/7 ") {
                ("200 OK", r#"{"schema":"{\"type\":\"string\"}"}"#.to_owned())
            } else {
                (
                    "404 Not Found",
                    r#"{"error_code":40403,"message":"Schema not found"}"#.to_owned(),
                )
            };
            write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            seen.push(line);
        }
        seen
    });
    (url, handle)
}

#[test]
fn schema_registry_registers_looks_up_and_reports_unknown_ids() {
    use crate::registry::{RegistryError, SchemaRegistry};
    let (url, server) = fake_registry(3);
    let mut registry = SchemaRegistry::new(&url).unwrap();
    assert_eq!(
        registry
            .register("orders-value", r#"{"type":"string"}"#)
            .unwrap(),
        7
    );
    // Registered ids are cached: no request.
    assert_eq!(registry.schema(7).unwrap(), r#"{"type":"string"}"#);
    let mut fresh = SchemaRegistry::new(&url).unwrap();
    assert_eq!(fresh.schema(7).unwrap(), r#"{"type":"string"}"#);
    match fresh.schema(8) {
        Err(RegistryError::Status {
            status: 404, body, ..
        }) => {
            assert!(body.contains("Schema not found"), "{body}");
        }
        other => panic!("expected 404, got {other:?}"),
    }
    let seen = server.join().unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen[1].starts_with("GET /registry/schemas/ids/7 "),
        "{seen:?}"
    );
}

#[test]
fn schema_registry_urls_must_be_plain_http() {
    use crate::registry::SchemaRegistry;
    for bad in ["https://r:8081", "r:8081", "http://", "http://r:port"] {
        assert!(SchemaRegistry::new(bad).is_err(), "{bad}");
    }
    assert!(SchemaRegistry::new("http://registry:8081").is_ok());
    assert!(SchemaRegistry::new("http://registry").is_ok());
}

#[test]
fn cleanup_policies_compare_as_sets_and_other_configs_as_values() {
    use crate::topics::same_config;
    assert!(same_config(
        "cleanup.policy",
        Some("delete,compact"),
        "compact,delete"
    ));
    assert!(!same_config(
        "cleanup.policy",
        Some("delete"),
        "compact,delete"
    ));
    assert!(same_config("retention.ms", Some("604800000"), "604800000"));
    assert!(!same_config("retention.ms", Some("86400000"), "604800000"));
    assert!(!same_config("retention.ms", None, "604800000"));
}

#[test]
fn commits_refused_for_lost_membership_are_not_fatal_and_others_are() {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    let lost_membership = |e: &KafkaError| crate::ClientError::from(e.clone()).lost_membership();
    for code in [
        RDKafkaErrorCode::UnknownMemberId,
        RDKafkaErrorCode::IllegalGeneration,
        RDKafkaErrorCode::RebalanceInProgress,
    ] {
        assert!(lost_membership(&KafkaError::ConsumerCommit(code)), "{code}");
    }
    for code in [
        RDKafkaErrorCode::OffsetOutOfRange,
        RDKafkaErrorCode::TopicAuthorizationFailed,
    ] {
        assert!(
            !lost_membership(&KafkaError::ConsumerCommit(code)),
            "{code}"
        );
    }
    assert!(!lost_membership(&KafkaError::Canceled));
}
