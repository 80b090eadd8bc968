use std::collections::BTreeMap;
use std::path::Path;

use super::check::check_topic_name;
use super::*;
use crate::ConfigError;

/// The smallest layout without problems.
const VALID: &str = "\
topics:
  - {name: orders, partitions: 2, key: symbol, value: {schema: o.avsc, format: json}, co-partition: matcher}
  - {name: executions, partitions: 2, key: symbol, value: {schema: e.avsc}, co-partition: matcher}
  - {name: trades, partitions: 2, key: symbol, value: {schema: t.avsc}, co-partition: matcher}
  - {name: market-data, partitions: 2, key: symbol, value: {schema: m.avsc}, co-partition: matcher}
  - {name: matcher-snapshots, partitions: 2, cleanup-policy: compact, key: group+partition, value: {schema: s.avsc}, co-partition: matcher}
  - {name: dead-letters, partitions: 1, key: none, value: {schema: d.avsc}}
";

fn parse(yaml: &str) -> TopicLayout {
    parse_topics(yaml, "test.yaml").unwrap()
}

/// The problems of `VALID` with `from` replaced by `to` (which must occur exactly once).
fn check_with(from: &str, to: &str) -> Vec<LayoutProblem> {
    assert_eq!(VALID.matches(from).count(), 1, "{from}");
    parse(&VALID.replacen(from, to, 1)).check()
}

fn parse_error(yaml: &str) -> String {
    parse_topics(yaml, "bad.yaml").unwrap_err().to_string()
}

#[test]
fn shipped_layout_parses_without_problems() {
    let layout = parse(include_str!("../../../../topics.yaml"));
    assert_eq!(layout.check(), [], "the shipped topics.yaml has problems");
    for name in REQUIRED_TOPICS.iter().chain(&["candles", "notifications"]) {
        assert!(layout.get(name).is_some(), "{name} is missing");
    }
    let matcher: Vec<_> = layout.co_partitioned("matcher").map(|t| &t.name).collect();
    assert_eq!(matcher, MATCHER_TOPICS);
    assert!(layout.co_partitioned("matcher").all(|t| t.partitions == 6));

    let orders = layout.get("orders").unwrap();
    assert_eq!(orders.key, "symbol");
    assert_eq!(orders.partitioner, Partitioner::Murmur2);
    assert_eq!(orders.value.format, ValueFormat::Json);
    assert_eq!(orders.writers, ["produce"]);
    assert_eq!(orders.readers, ["matcher"]);
    let snapshots = layout.get("matcher-snapshots").unwrap();
    assert_eq!(snapshots.cleanup_policy, CleanupPolicy::Compact);
    assert_eq!(snapshots.retention_ms, None);
    assert_eq!(layout.get("notifications").unwrap().key, "account");
    assert!(layout.iter().all(|t| t.replication_factor == 1));
    assert_eq!(layout.len(), 8);
    assert_eq!((&layout).into_iter().count(), layout.topics().len());
}

#[test]
fn defaults_apply() {
    let layout =
        parse("topics:\n  - {name: t, partitions: 3, key: none, value: {schema: t.avsc}}\n");
    let topic = layout.get("t").unwrap();
    assert_eq!(topic.replication_factor, 1);
    assert_eq!(topic.cleanup_policy, CleanupPolicy::Delete);
    assert_eq!(topic.retention_ms, None);
    assert_eq!(topic.value.format, ValueFormat::Avro);
    assert!(topic.config.is_empty() && topic.writers.is_empty() && topic.readers.is_empty());
    assert_eq!(topic.co_partition, None);
    assert!(layout.get("u").is_none());
}

#[test]
fn broker_config_is_sorted_with_scalars_as_text() {
    let yaml = "\
topics:
  - name: t
    partitions: 1
    cleanup-policy: compact,delete
    retention-ms: 86400000
    key: symbol
    value: {schema: t.avsc}
    config:
      segment.ms: 3600000
      min.cleanable.dirty.ratio: 0.5
      unclean.leader.election.enable: false
      max.message.bytes: \"2097152\"
";
    let layout = parse(yaml);
    let topic = layout.get("t").unwrap();
    assert_eq!(
        topic.broker_config(),
        [
            ("cleanup.policy", "compact,delete"),
            ("max.message.bytes", "2097152"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("retention.ms", "86400000"),
            ("segment.ms", "3600000"),
            ("unclean.leader.election.enable", "false"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    // `compact,delete` takes a retention; only the required topics are missing.
    let problems = layout.check();
    assert!(
        problems
            .iter()
            .all(|p| matches!(p, LayoutProblem::MissingTopic { .. })),
        "{problems:?}"
    );
    // Without retention-ms the broker default applies: nothing to set.
    let plain = parse(VALID);
    assert_eq!(
        plain.get("orders").unwrap().broker_config(),
        [("cleanup.policy".to_owned(), "delete".to_owned())]
    );
}

#[test]
fn refuses_unknown_fields_and_bad_shapes() {
    let err = parse_error(&VALID.replacen("key: symbol,", "key: symbol, partition: 2,", 1));
    assert!(err.contains("unknown field `partition`"), "{err}");
    let err = parse_error(&VALID.replacen("{schema: o.avsc,", "{schema: o.avsc, codec: x,", 1));
    assert!(err.contains("unknown field `codec`"), "{err}");
    let err = parse_error(&format!("{VALID}defaults: {{partitions: 6}}\n"));
    assert!(err.contains("unknown field `defaults`"), "{err}");
    let err = parse_error(&VALID.replacen("cleanup-policy: compact", "cleanup-policy: compcat", 1));
    assert!(err.contains("unknown variant `compcat`"), "{err}");
    let err = parse_error(&VALID.replacen("key: symbol,", "key: symbol, partitioner: crc32,", 1));
    assert!(
        err.contains("unknown variant `crc32`, expected `murmur2`"),
        "{err}"
    );
    let err = parse_error("topics:\n  - {name: t, partitions: 1, value: {schema: t.avsc}}\n");
    assert!(err.contains("missing field `key`"), "{err}");
    let err = parse_error(
        "topics:\n  - {name: t, partitions: 1, key: k, value: {schema: t.avsc}, config: {a: {b: c}}}\n",
    );
    assert!(err.contains("a string, number or boolean"), "{err}");
    assert!(err.starts_with("bad.yaml: "), "{err}");
}

#[test]
fn valid_layout_has_no_problems() {
    assert_eq!(parse(VALID).check(), []);
    parse(VALID).validate("test.yaml").unwrap();
}

#[test]
fn detects_duplicate_and_invalid_names() {
    let problems = check_with(
        "  - {name: dead-letters,",
        "  - {name: dead-letters, partitions: 1, key: none, value: {schema: d.avsc}}\n  - {name: dead-letters,",
    );
    assert_eq!(
        problems,
        [LayoutProblem::DuplicateTopic {
            name: "dead-letters".into()
        }]
    );
    let problems = check_with(
        "  - {name: dead-letters,",
        "  - {name: \"dead letters\", partitions: 1, key: none, value: {schema: d.avsc}}\n  - {name: dead-letters,",
    );
    assert_eq!(
        problems,
        [LayoutProblem::InvalidTopicName {
            name: "dead letters".into(),
            reason: "only ASCII letters, digits, `.`, `_` and `-` are allowed",
        }]
    );
    assert!(check_topic_name("..").is_err());
    assert!(check_topic_name("").is_err());
    assert!(check_topic_name(&"x".repeat(250)).is_err());
    assert!(check_topic_name("orders.shadow-1_a").is_ok());
}

#[test]
fn detects_partitions_and_replicas_below_one() {
    assert_eq!(
        check_with("dead-letters, partitions: 1", "dead-letters, partitions: 0"),
        [LayoutProblem::TooFewPartitions {
            topic: "dead-letters".into(),
            partitions: 0
        }]
    );
    assert_eq!(
        check_with("dead-letters,", "dead-letters, replication-factor: -1,"),
        [LayoutProblem::TooFewReplicas {
            topic: "dead-letters".into(),
            replication_factor: -1
        }]
    );
}

#[test]
fn detects_co_partition_mismatch_naming_every_topic() {
    let problems = check_with("trades, partitions: 2", "trades, partitions: 3");
    let expected = LayoutProblem::CoPartitionMismatch {
        group: "matcher".into(),
        counts: [
            ("orders", 2),
            ("executions", 2),
            ("trades", 3),
            ("market-data", 2),
            ("matcher-snapshots", 2),
        ]
        .map(|(t, n)| (t.to_owned(), n))
        .to_vec(),
    };
    assert_eq!(problems, std::slice::from_ref(&expected));
    assert_eq!(
        expected.to_string(),
        "co-partition group `matcher`: partition counts differ (orders: 2, executions: 2, trades: 3, \
             market-data: 2, matcher-snapshots: 2), they must be equal"
    );
}

#[test]
fn detects_matcher_topics_outside_the_group_of_orders() {
    assert_eq!(
        check_with(
            "m.avsc}, co-partition: matcher}",
            "m.avsc}, co-partition: md}"
        ),
        [LayoutProblem::NotInMatcherGroup {
            topic: "market-data".into(),
            expected: Some("matcher".into()),
            actual: Some("md".into()),
        }]
    );
    assert_eq!(
        check_with("e.avsc}, co-partition: matcher}", "e.avsc}}"),
        [LayoutProblem::NotInMatcherGroup {
            topic: "executions".into(),
            expected: Some("matcher".into()),
            actual: None,
        }]
    );
    let problems = check_with("format: json}, co-partition: matcher}", "format: json}}");
    assert_eq!(
        problems,
        [LayoutProblem::NotInMatcherGroup {
            topic: "orders".into(),
            expected: None,
            actual: None
        }]
    );
    assert!(
        problems[0]
            .to_string()
            .contains("`orders` has no co-partition group")
    );
}

#[test]
fn detects_retention_problems() {
    assert_eq!(
        check_with(
            "cleanup-policy: compact,",
            "cleanup-policy: compact, retention-ms: 1000,"
        ),
        [LayoutProblem::RetentionOnCompacted {
            topic: "matcher-snapshots".into(),
            retention_ms: 1000,
        }]
    );
    assert_eq!(
        check_with("dead-letters,", "dead-letters, retention-ms: -2,"),
        [LayoutProblem::InvalidRetention {
            topic: "dead-letters".into(),
            retention_ms: -2
        }]
    );
    assert_eq!(
        check_with("dead-letters,", "dead-letters, retention-ms: -1,"),
        []
    );
}

#[test]
fn detects_compacted_topics_without_key() {
    assert_eq!(
        check_with("dead-letters,", "dead-letters, cleanup-policy: compact,"),
        [LayoutProblem::CompactedWithoutKey {
            topic: "dead-letters".into()
        }]
    );
}

#[test]
fn detects_config_problems() {
    assert_eq!(
        check_with(
            "dead-letters,",
            "dead-letters, config: {retention.ms: 5, min.insync.replicas: 2},"
        ),
        [
            LayoutProblem::TypedConfigInExtra {
                topic: "dead-letters".into(),
                key: "retention.ms".into(),
                field: "retention-ms".into(),
            },
            LayoutProblem::MinInsyncAboveReplicas {
                topic: "dead-letters".into(),
                min_insync: 2,
                replication_factor: 1,
            },
        ]
    );
    assert_eq!(
        check_with(
            "dead-letters,",
            "dead-letters, replication-factor: 3, config: {min.insync.replicas: 2},"
        ),
        []
    );
}

#[test]
fn detects_value_problems() {
    assert_eq!(
        check_with("format: json", "format: protobuf"),
        [LayoutProblem::UnknownFormat {
            topic: "orders".into(),
            format: "protobuf".into()
        }]
    );
    assert_eq!(
        check_with("schema: t.avsc", "schema: trade.json"),
        [LayoutProblem::BadSchemaName {
            topic: "trades".into(),
            schema: "trade.json".into(),
            reason: "must be an Avro schema file name ending in .avsc",
        }]
    );
    assert_eq!(
        check_with("schema: t.avsc", "schema: schemas/t.avsc"),
        [LayoutProblem::BadSchemaName {
            topic: "trades".into(),
            schema: "schemas/t.avsc".into(),
            reason: "must be a file name in schemas/, not a path",
        }]
    );
}

#[test]
fn detects_snapshots_not_compacted() {
    for policy in [CleanupPolicy::Delete, CleanupPolicy::CompactDelete] {
        let to = format!("cleanup-policy: \"{policy}\"");
        assert_eq!(
            check_with("cleanup-policy: compact", &to),
            [LayoutProblem::SnapshotsNotCompacted {
                topic: "matcher-snapshots".into(),
                policy
            }]
        );
    }
}

#[test]
fn detects_missing_required_topics() {
    let yaml: String = VALID
        .lines()
        .filter(|l| !l.contains("trades") && !l.contains("dead-"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        parse(&yaml).check(),
        [
            LayoutProblem::MissingTopic {
                name: "trades".into()
            },
            LayoutProblem::MissingTopic {
                name: "dead-letters".into()
            },
        ]
    );
    let problems = parse("topics: []").check();
    assert_eq!(problems.len(), REQUIRED_TOPICS.len());
}

#[test]
fn reports_every_problem_at_once() {
    let yaml = VALID
        .replacen("trades, partitions: 2", "trades, partitions: 4", 1)
        .replacen("format: json", "format: xml", 1)
        .replacen("cleanup-policy: compact", "cleanup-policy: delete", 1);
    let problems = parse(&yaml).check();
    assert_eq!(problems.len(), 3, "{problems:?}");
    let path = std::env::temp_dir().join(format!("tradestream-topics-{}.yaml", std::process::id()));
    std::fs::write(&path, &yaml).unwrap();
    let err = load_topics(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    match &err {
        ConfigError::Layout {
            problems: listed, ..
        } => assert_eq!(*listed, problems),
        other => panic!("unexpected error {other}"),
    }
    let text = err.to_string();
    assert!(text.contains("3 problems in the topic layout:"), "{text}");
    for problem in &problems {
        assert!(text.contains(&format!("\n  - {problem}")), "{text}");
    }
}

#[test]
fn loads_files_and_reports_unreadable_ones() {
    // At run time: the compile-time value may name another clone sharing the target dir.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let path = Path::new(&dir).join("../../topics.yaml");
    assert_eq!(load_topics(&path).unwrap().len(), 8);
    let err = load_topics(Path::new("/nonexistent/topics.yaml")).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot read /nonexistent/topics.yaml"),
        "{err}"
    );
}

#[test]
fn detects_drift_against_the_broker() {
    let yaml = VALID.replacen(
        "trades,",
        "trades, retention-ms: 1000, config: {segment.ms: 60000},",
        1,
    );
    let layout = parse(&yaml);
    let configs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let actual = [
        ActualTopic {
            configs: configs(&[("cleanup.policy", "delete")]),
            ..ActualTopic::new("orders", 2)
        },
        ActualTopic::new("executions", 3),
        ActualTopic {
            // segment.ms not reported: not compared.
            configs: configs(&[("cleanup.policy", "delete"), ("retention.ms", "604800000")]),
            ..ActualTopic::new("trades", 2)
        },
        ActualTopic::new("market-data", 2),
        ActualTopic {
            configs: configs(&[("cleanup.policy", "delete")]),
            ..ActualTopic::new("matcher-snapshots", 1)
        },
        ActualTopic::new("__consumer_offsets", 50),
    ];
    let drift = layout.drift(&actual);
    assert_eq!(
        drift,
        [
            Drift::PartitionCount {
                name: "executions".into(),
                declared: 2,
                actual: 3
            },
            Drift::ConfigMismatch {
                name: "trades".into(),
                key: "retention.ms".into(),
                declared: "1000".into(),
                actual: "604800000".into(),
            },
            Drift::PartitionCount {
                name: "matcher-snapshots".into(),
                declared: 2,
                actual: 1
            },
            Drift::ConfigMismatch {
                name: "matcher-snapshots".into(),
                key: "cleanup.policy".into(),
                declared: "compact".into(),
                actual: "delete".into(),
            },
            Drift::Missing("dead-letters".into()),
        ]
    );
    assert_eq!(
        drift[0].to_string(),
        "topic `executions` has 3 partitions on the broker, 2 declared"
    );
    assert_eq!(
        drift[1].to_string(),
        "topic `trades`: retention.ms is `604800000` on the broker, `1000` declared"
    );
    assert_eq!(
        drift[4].to_string(),
        "topic `dead-letters` does not exist on the broker"
    );

    let all: Vec<_> = layout
        .iter()
        .map(|t| ActualTopic {
            configs: t.broker_config().into_iter().collect(),
            ..ActualTopic::new(t.name.clone(), t.partitions)
        })
        .collect();
    assert_eq!(layout.drift(&all), []);
}

#[test]
fn problems_read_as_sentences() {
    let cases = [
        (
            LayoutProblem::RetentionOnCompacted {
                topic: "s".into(),
                retention_ms: 5,
            },
            "topic `s`: retention-ms 5 has no effect on a `compact` topic; remove it, or use cleanup-policy \
                 `compact,delete`",
        ),
        (
            LayoutProblem::NotInMatcherGroup {
                topic: "trades".into(),
                expected: Some("matcher".into()),
                actual: None,
            },
            "topic `trades` must be in co-partition group `matcher` like `orders`, it is in none: the matcher \
                 writes it to the partition number of the input record",
        ),
        (
            LayoutProblem::MissingTopic {
                name: "orders".into(),
            },
            "required topic `orders` is not declared",
        ),
        (
            LayoutProblem::SnapshotsNotCompacted {
                topic: "matcher-snapshots".into(),
                policy: CleanupPolicy::Delete,
            },
            "topic `matcher-snapshots` has cleanup-policy `delete`, must be `compact`: the latest snapshot of \
                 every partition must survive, older ones need not",
        ),
    ];
    for (problem, text) in cases {
        assert_eq!(problem.to_string(), text);
    }
}
