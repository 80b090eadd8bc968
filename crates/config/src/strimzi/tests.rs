use super::*;
use crate::topics::parse_topics;

const LAYOUT: &str = r#"
topics:
  - name: orders
    partitions: 6
    cleanup-policy: delete
    retention-ms: 604800000
    key: symbol
    value: { schema: order_command.avsc, format: json }
  - name: matcher-snapshots
    partitions: 6
    cleanup-policy: compact
    key: group+partition
    value: { schema: snapshot_meta.avsc }
  - name: dead-letters
    partitions: 6
    replication-factor: 2
    retention-ms: 2592000000
    key: source key
    value: { schema: dead_letter.avsc }
    config:
      max.message.bytes: "2097152"
      min.insync.replicas: "2"
"#;

fn layout() -> TopicLayout {
    parse_topics(LAYOUT, "test").expect("test layout parses")
}

fn production() -> RenderOptions {
    RenderOptions {
        replication: Some(3),
        min_insync: Some(2),
        ..RenderOptions::new("tradestream")
    }
}

#[test]
fn renders_partitions_replicas_and_configs_per_topic() {
    let topics = kafka_topics(&layout(), &production()).expect("renders");
    let names: Vec<&str> = topics.iter().map(|t| t.metadata.name.as_str()).collect();
    assert_eq!(names, ["orders", "matcher-snapshots", "dead-letters"]);

    let orders = &topics[0];
    assert_eq!(orders.api_version, "kafka.strimzi.io/v1");
    assert_eq!(orders.kind, "KafkaTopic");
    assert_eq!(orders.spec.partitions, 6);
    assert_eq!(orders.spec.replicas, 3);
    assert_eq!(orders.spec.topic_name, None);
    assert_eq!(
        orders
            .metadata
            .labels
            .get("strimzi.io/cluster")
            .map(String::as_str),
        Some("tradestream")
    );
    let config: Vec<(&str, &str)> = orders
        .spec
        .config
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        config,
        [
            ("cleanup.policy", "delete"),
            ("min.insync.replicas", "2"),
            ("retention.ms", "604800000"),
        ]
    );

    let snapshots = &topics[1].spec.config;
    assert_eq!(
        snapshots.get("cleanup.policy").map(String::as_str),
        Some("compact")
    );
    assert!(
        !snapshots.contains_key("retention.ms"),
        "compacted: no retention"
    );

    let dead = &topics[2].spec.config;
    assert_eq!(
        dead.get("max.message.bytes").map(String::as_str),
        Some("2097152")
    );
}

#[test]
fn without_overrides_keeps_the_layouts_replication_and_configs() {
    let topics = kafka_topics(&layout(), &RenderOptions::new("c")).expect("renders");
    assert_eq!(topics[0].spec.replicas, 1);
    assert!(!topics[0].spec.config.contains_key("min.insync.replicas"));
    assert_eq!(topics[2].spec.replicas, 2);
    assert_eq!(
        topics[2]
            .spec
            .config
            .get("min.insync.replicas")
            .map(String::as_str),
        Some("2")
    );
    assert_eq!(topics[0].metadata.namespace, None);
}

#[test]
fn refuses_min_insync_above_replicas() {
    let options = RenderOptions {
        replication: Some(2),
        min_insync: Some(3),
        ..RenderOptions::new("c")
    };
    let err = kafka_topics(&layout(), &options).expect_err("refused");
    assert_eq!(
        err,
        RenderError::MinInsyncAboveReplicas {
            topic: "orders".into(),
            min_insync: 3,
            replicas: 2
        }
    );
    assert!(
        err.to_string()
            .contains("lower --min-insync or raise --replication")
    );

    // The layout's own min.insync.replicas (2 on dead-letters) against a lowered replication.
    let options = RenderOptions {
        replication: Some(1),
        ..RenderOptions::new("c")
    };
    let err = kafka_topics(&layout(), &options).expect_err("refused");
    assert!(
        matches!(err, RenderError::MinInsyncAboveReplicas { ref topic, min_insync: 2, replicas: 1 } if topic == "dead-letters"),
        "{err}"
    );
}

#[test]
fn refuses_nonpositive_overrides_and_bad_names() {
    let with = |f: fn(&mut RenderOptions)| {
        let mut options = RenderOptions::new("c");
        f(&mut options);
        kafka_topics(&layout(), &options).expect_err("refused")
    };
    assert_eq!(
        with(|o| o.replication = Some(0)),
        RenderError::Replication(0)
    );
    assert_eq!(
        with(|o| o.min_insync = Some(-1)),
        RenderError::MinInsync(-1)
    );
    assert!(matches!(
        with(|o| o.cluster = "my cluster".into()),
        RenderError::BadName {
            what: "--cluster",
            ..
        }
    ));
    assert!(matches!(
        with(|o| o.cluster = String::new()),
        RenderError::BadName { .. }
    ));
    assert!(matches!(
        with(|o| o.namespace = Some("Prod".into())),
        RenderError::BadName {
            what: "--namespace",
            ..
        }
    ));
}

#[test]
fn kafka_names_that_kubernetes_refuses_keep_their_topic_name() {
    let yaml = LAYOUT.replace("name: orders", "name: Orders_v2");
    let layout = parse_topics(&yaml, "test").expect("parses");
    let topics = kafka_topics(&layout, &RenderOptions::new("c")).expect("renders");
    assert_eq!(topics[0].metadata.name, "orders-v2");
    assert_eq!(topics[0].spec.topic_name.as_deref(), Some("Orders_v2"));

    let yaml = LAYOUT.replace("name: dead-letters", "name: ORDERS");
    let layout = parse_topics(&yaml, "test").expect("parses");
    let err = kafka_topics(&layout, &RenderOptions::new("c")).expect_err("clash");
    assert_eq!(
        err,
        RenderError::NameClash {
            first: "orders".into(),
            second: "ORDERS".into(),
            resource: "orders".into()
        }
    );
}

#[test]
fn renders_a_yaml_stream_with_its_command_and_namespace() {
    let options = RenderOptions {
        namespace: Some("trading".into()),
        api_version: StrimziApiVersion::V1beta2,
        ..production()
    };
    let text = render_strimzi(&layout(), &options).expect("renders");
    let first_line = text.lines().next().unwrap_or_default();
    assert_eq!(
        first_line,
        "# Generated from topics.yaml by `tradestream topics render --format strimzi --cluster tradestream \
             --namespace trading --replication 3 --min-insync 2 --api-version kafka.strimzi.io/v1beta2`."
    );
    assert_eq!(text.matches("\n---\n").count(), 3);
    assert!(text.contains("apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\n"));
    assert!(text.contains("  namespace: trading\n"));
    assert!(text.contains("    strimzi.io/cluster: tradestream\n"));

    // Every document reads back as the resource it was written from.
    let docs: Vec<serde_norway::Value> = text
        .split("\n---\n")
        .skip(1)
        .map(|doc| serde_norway::from_str(doc).expect("a document parses"))
        .collect();
    assert_eq!(docs.len(), 3);
    let orders = &docs[0];
    assert_eq!(orders["spec"]["partitions"].as_i64(), Some(6));
    assert_eq!(orders["spec"]["replicas"].as_i64(), Some(3));
    assert_eq!(
        orders["spec"]["config"]["retention.ms"].as_str(),
        Some("604800000")
    );
    assert_eq!(orders["metadata"]["name"].as_str(), Some("orders"));

    // Same input, same text: a committed rendering can be compared byte for byte.
    assert_eq!(render_strimzi(&layout(), &options).expect("renders"), text);
}

#[test]
fn api_versions_parse_in_full_or_short() {
    assert_eq!(
        StrimziApiVersion::parse("kafka.strimzi.io/v1"),
        Some(StrimziApiVersion::V1)
    );
    assert_eq!(
        StrimziApiVersion::parse("v1beta2"),
        Some(StrimziApiVersion::V1beta2)
    );
    assert_eq!(StrimziApiVersion::parse("kafka.strimzi.io/v1alpha1"), None);
    assert_eq!(StrimziApiVersion::default().as_str(), "kafka.strimzi.io/v1");
}
