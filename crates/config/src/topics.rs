//! `topics.yaml`: the pipeline's topic layout.
//!
//! Reading a layout ([`parse_topics`], [`load_topics`]) fails only when the file is not YAML of the right
//! shape; [`TopicLayout::check`] then lists *every* semantic problem at once (co-partitioning, compaction,
//! formats, required topics), so `tradestream topics check` can print them all. [`load_topics`] refuses a layout
//! with problems, which is what workers want. [`TopicLayout::drift`] compares the layout with what a broker
//! reports; it is pure, the CLI fetches the metadata.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::ConfigError;

/// Topics every layout must declare: the matcher's input and outputs, and the dead-letter topic.
pub const REQUIRED_TOPICS: [&str; 6] = [
    "orders",
    "executions",
    "trades",
    "market-data",
    "matcher-snapshots",
    "dead-letters",
];

/// The matcher's input followed by its outputs: the matcher writes every output to the partition number of the
/// input record, so these must all be in one co-partition group (docs/design.md §1).
pub const MATCHER_TOPICS: [&str; 5] = [
    "orders",
    "executions",
    "trades",
    "market-data",
    "matcher-snapshots",
];

/// The topic holding matcher snapshots; it must be compacted (docs/design.md §3).
const SNAPSHOT_TOPIC: &str = "matcher-snapshots";

/// Kafka's limit on a topic name's length.
const MAX_TOPIC_NAME_LEN: usize = 249;

/// Topic configs that have typed fields; setting them in `config` as well would be ambiguous.
const TYPED_CONFIGS: [(&str, &str); 2] = [
    ("cleanup.policy", "cleanup-policy"),
    ("retention.ms", "retention-ms"),
];

/// The default replication factor: the embedded broker (tansu) is a single node. Production should use 3.
const fn default_replication_factor() -> i32 {
    1
}

/// The default cleanup policy: Kafka's own default for `cleanup.policy`.
const fn default_cleanup_policy() -> CleanupPolicy {
    CleanupPolicy::Delete
}

/// The default value format: records are Avro (docs/design.md §6); only `orders` is JSON in the shipped layout.
const fn default_format() -> ValueFormat {
    ValueFormat::Avro
}

/// The shape of `topics.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TopicsFile {
    /// Every topic of the pipeline, in the order `tradestream topics` reports them.
    topics: Vec<TopicSpec>,
}

/// The declared topic layout, in file order. Not necessarily free of problems: see [`TopicLayout::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLayout {
    /// The topics, in file order.
    topics: Vec<TopicSpec>,
}

/// One topic of the layout.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TopicSpec {
    /// The topic name on the broker.
    pub name: String,
    /// Number of partitions; equal across a co-partition group.
    pub partitions: i32,
    /// Copies of each partition on the broker.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    /// Kafka `cleanup.policy`.
    #[serde(default = "default_cleanup_policy")]
    pub cleanup_policy: CleanupPolicy,
    /// Kafka `retention.ms` for `delete` topics; `None` keeps the broker default, -1 keeps records forever.
    #[serde(default)]
    pub retention_ms: Option<i64>,
    /// Extra topic configs passed to the broker as they are (e.g. `max.message.bytes`).
    #[serde(default, deserialize_with = "scalar_map")]
    pub config: BTreeMap<String, String>,
    /// What the record key is (`symbol`, `account`, `group+partition`, `none`, …), for people.
    pub key: String,
    /// How producers map a key to a partition. Only `murmur2` (the Java client's hash, which
    /// every producer of the project uses) exists: a topic declared otherwise is refused.
    #[serde(default)]
    pub partitioner: Partitioner,
    /// The record value's schema and format.
    pub value: ValueSpec,
    /// The co-partition group: topics whose partition `p` holds the same keys, so counts must match.
    #[serde(default)]
    pub co_partition: Option<String>,
    /// Workers and commands that write the topic.
    #[serde(default)]
    pub writers: Vec<String>,
    /// Workers and commands that read the topic.
    #[serde(default)]
    pub readers: Vec<String>,
}

/// How a keyed record's partition is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Partitioner {
    /// `(murmur2(key) & 0x7fffffff) % partitions`: the Java client's default and librdkafka's
    /// `murmur2_random` for keyed records.
    #[default]
    #[serde(rename = "murmur2")]
    Murmur2,
}

/// A topic's record value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValueSpec {
    /// The Avro schema, a file name in `schemas/` (e.g. `engine_event.avsc`).
    pub schema: String,
    /// The encoding writers produce.
    #[serde(default = "default_format")]
    pub format: ValueFormat,
}

/// Kafka `cleanup.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CleanupPolicy {
    /// Delete segments older than `retention.ms`.
    #[serde(rename = "delete")]
    Delete,
    /// Keep the latest record of every key.
    #[serde(rename = "compact")]
    Compact,
    /// Compact, and also delete segments older than `retention.ms`.
    #[serde(rename = "compact,delete")]
    CompactDelete,
}

impl CleanupPolicy {
    /// The value of Kafka's `cleanup.policy`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Compact => "compact",
            Self::CompactDelete => "compact,delete",
        }
    }

    /// Whether the broker keeps only the latest record of each key.
    pub const fn is_compacted(self) -> bool {
        matches!(self, Self::Compact | Self::CompactDelete)
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a topic's values are encoded. Any text parses, so that [`TopicLayout::check`] can report an unknown
/// format together with every other problem.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum ValueFormat {
    /// Avro: Confluent framing with a schema registry, else single-object encoding (docs/design.md §6).
    Avro,
    /// One JSON document per record.
    Json,
    /// Anything else; a layout problem.
    Unknown(String),
}

impl ValueFormat {
    /// The name used in `topics.yaml`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Avro => "avro",
            Self::Json => "json",
            Self::Unknown(other) => other,
        }
    }
}

impl From<String> for ValueFormat {
    fn from(text: String) -> Self {
        match text.as_str() {
            "avro" => Self::Avro,
            "json" => Self::Json,
            _ => Self::Unknown(text),
        }
    }
}

impl fmt::Display for ValueFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a topic layout from YAML text; `origin` names the source in errors. Fails only when the text is not
/// YAML of the expected shape: call [`TopicLayout::check`] for semantic problems.
pub fn parse_topics(yaml: &str, origin: &str) -> Result<TopicLayout, ConfigError> {
    let file: TopicsFile = serde_norway::from_str(yaml).map_err(|source| ConfigError::Parse {
        path: origin.to_owned(),
        source,
    })?;
    Ok(TopicLayout::new(file.topics))
}

/// Reads a topic layout file and refuses it if [`TopicLayout::check`] finds problems
/// ([`ConfigError::Layout`] lists them all).
pub fn load_topics(path: &Path) -> Result<TopicLayout, ConfigError> {
    let origin = path.display().to_string();
    let yaml = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: origin.clone(),
        source,
    })?;
    let layout = parse_topics(&yaml, &origin)?;
    layout.validate(&origin)?;
    Ok(layout)
}

impl TopicLayout {
    /// A layout of these topics, unchecked.
    pub fn new(topics: Vec<TopicSpec>) -> Self {
        Self { topics }
    }

    /// The topic named `name` (the first one, if the layout declares it twice).
    pub fn get(&self, name: &str) -> Option<&TopicSpec> {
        self.topics.iter().find(|topic| topic.name == name)
    }

    /// The topics, in file order.
    pub fn topics(&self) -> &[TopicSpec] {
        &self.topics
    }

    /// Iterates over the topics in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, TopicSpec> {
        self.topics.iter()
    }

    /// The number of topics.
    pub fn len(&self) -> usize {
        self.topics.len()
    }

    /// Whether the layout declares no topic.
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// The topics of co-partition group `group`, in file order.
    pub fn co_partitioned(&self, group: &str) -> impl Iterator<Item = &TopicSpec> {
        self.topics
            .iter()
            .filter(move |topic| topic.co_partition.as_deref() == Some(group))
    }

    /// Every problem of the layout, in a fixed order: each topic's own problems in file order, then duplicate
    /// names, co-partitioning, and required topics. Empty when the layout is usable.
    pub fn check(&self) -> Vec<LayoutProblem> {
        let mut problems = Vec::new();
        for topic in &self.topics {
            topic.check_into(&mut problems);
        }

        let mut seen = BTreeSet::new();
        let mut reported = BTreeSet::new();
        for topic in &self.topics {
            if !seen.insert(topic.name.as_str()) && reported.insert(topic.name.as_str()) {
                problems.push(LayoutProblem::DuplicateTopic {
                    name: topic.name.clone(),
                });
            }
        }

        let mut groups: BTreeMap<&str, Vec<(String, i32)>> = BTreeMap::new();
        for topic in &self.topics {
            if let Some(group) = &topic.co_partition {
                groups
                    .entry(group)
                    .or_default()
                    .push((topic.name.clone(), topic.partitions));
            }
        }
        for (group, counts) in groups {
            if counts.iter().any(|(_, count)| *count != counts[0].1) {
                problems.push(LayoutProblem::CoPartitionMismatch {
                    group: group.to_owned(),
                    counts,
                });
            }
        }

        if let Some(orders) = self.get(MATCHER_TOPICS[0]) {
            match &orders.co_partition {
                None => problems.push(LayoutProblem::NotInMatcherGroup {
                    topic: orders.name.clone(),
                    expected: None,
                    actual: None,
                }),
                Some(expected) => {
                    let outputs = MATCHER_TOPICS[1..].iter().filter_map(|name| self.get(name));
                    for topic in outputs {
                        if topic.co_partition.as_ref() != Some(expected) {
                            problems.push(LayoutProblem::NotInMatcherGroup {
                                topic: topic.name.clone(),
                                expected: Some(expected.clone()),
                                actual: topic.co_partition.clone(),
                            });
                        }
                    }
                }
            }
        }

        let snapshots = self.get(SNAPSHOT_TOPIC);
        if let Some(snapshots) = snapshots.filter(|t| t.cleanup_policy != CleanupPolicy::Compact) {
            problems.push(LayoutProblem::SnapshotsNotCompacted {
                topic: snapshots.name.clone(),
                policy: snapshots.cleanup_policy,
            });
        }

        for name in REQUIRED_TOPICS {
            if self.get(name).is_none() {
                problems.push(LayoutProblem::MissingTopic {
                    name: name.to_owned(),
                });
            }
        }
        problems
    }

    /// Refuses a layout with problems: [`ConfigError::Layout`] lists every one; `origin` names the source.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let problems = self.check();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Layout {
                path: origin.to_owned(),
                problems,
            })
        }
    }

    /// How the topics a broker reports differ from the layout, in layout order: declared topics that are
    /// missing, partition counts that differ, and declared configs ([`TopicSpec::broker_config`]) whose value
    /// differs from the one the broker reports. A config the broker does not report is not compared, and topics
    /// the layout does not declare (internal, shadow) are ignored.
    pub fn drift(&self, actual: &[ActualTopic]) -> Vec<Drift> {
        let mut drift = Vec::new();
        let mut seen = BTreeSet::new();
        for declared in &self.topics {
            if !seen.insert(declared.name.as_str()) {
                continue;
            }
            let Some(found) = actual.iter().find(|topic| topic.name == declared.name) else {
                drift.push(Drift::Missing(declared.name.clone()));
                continue;
            };
            if found.partitions != declared.partitions {
                drift.push(Drift::PartitionCount {
                    name: declared.name.clone(),
                    declared: declared.partitions,
                    actual: found.partitions,
                });
            }
            for (key, value) in declared.broker_config() {
                let actual = found.configs.get(&key);
                if let Some(actual) = actual.filter(|actual| **actual != value) {
                    drift.push(Drift::ConfigMismatch {
                        name: declared.name.clone(),
                        key,
                        declared: value,
                        actual: actual.clone(),
                    });
                }
            }
        }
        drift
    }
}

impl<'a> IntoIterator for &'a TopicLayout {
    type Item = &'a TopicSpec;
    type IntoIter = std::slice::Iter<'a, TopicSpec>;

    fn into_iter(self) -> Self::IntoIter {
        self.topics.iter()
    }
}

impl TopicSpec {
    /// The topic configs to set on the broker, sorted by key: the extra `config` entries, then `cleanup.policy`
    /// and `retention.ms` (when declared) from the typed fields, which win over the same keys in `config`.
    pub fn broker_config(&self) -> Vec<(String, String)> {
        let mut config = self.config.clone();
        config.insert(
            "cleanup.policy".to_owned(),
            self.cleanup_policy.as_str().to_owned(),
        );
        if let Some(retention) = self.retention_ms {
            config.insert("retention.ms".to_owned(), retention.to_string());
        }
        config.into_iter().collect()
    }

    /// Appends this topic's own problems (those that need no other topic).
    fn check_into(&self, problems: &mut Vec<LayoutProblem>) {
        let name = &self.name;
        if let Err(reason) = check_topic_name(name) {
            problems.push(LayoutProblem::InvalidTopicName {
                name: name.clone(),
                reason,
            });
        }
        if self.partitions < 1 {
            problems.push(LayoutProblem::TooFewPartitions {
                topic: name.clone(),
                partitions: self.partitions,
            });
        }
        if self.replication_factor < 1 {
            problems.push(LayoutProblem::TooFewReplicas {
                topic: name.clone(),
                replication_factor: self.replication_factor,
            });
        }
        if let Some(retention_ms) = self.retention_ms {
            if self.cleanup_policy == CleanupPolicy::Compact {
                problems.push(LayoutProblem::RetentionOnCompacted {
                    topic: name.clone(),
                    retention_ms,
                });
            } else if retention_ms < -1 {
                problems.push(LayoutProblem::InvalidRetention {
                    topic: name.clone(),
                    retention_ms,
                });
            }
        }
        if self.cleanup_policy.is_compacted() && self.key.trim().eq_ignore_ascii_case("none") {
            problems.push(LayoutProblem::CompactedWithoutKey {
                topic: name.clone(),
            });
        }
        for (key, field) in TYPED_CONFIGS {
            if self.config.contains_key(key) {
                problems.push(LayoutProblem::TypedConfigInExtra {
                    topic: name.clone(),
                    key: key.to_owned(),
                    field: field.to_owned(),
                });
            }
        }
        let min_insync = self
            .config
            .get("min.insync.replicas")
            .and_then(|value| value.parse::<i32>().ok())
            .filter(|min| *min > self.replication_factor && self.replication_factor >= 1);
        if let Some(min_insync) = min_insync {
            problems.push(LayoutProblem::MinInsyncAboveReplicas {
                topic: name.clone(),
                min_insync,
                replication_factor: self.replication_factor,
            });
        }
        if let ValueFormat::Unknown(format) = &self.value.format {
            problems.push(LayoutProblem::UnknownFormat {
                topic: name.clone(),
                format: format.clone(),
            });
        }
        let schema = &self.value.schema;
        let schema_problem = if schema.contains(['/', '\\']) {
            Some("must be a file name in schemas/, not a path")
        } else if !schema.ends_with(".avsc") || schema.len() == ".avsc".len() {
            Some("must be an Avro schema file name ending in .avsc")
        } else {
            None
        };
        if let Some(reason) = schema_problem {
            problems.push(LayoutProblem::BadSchemaName {
                topic: name.clone(),
                schema: schema.clone(),
                reason,
            });
        }
    }
}

/// Checks a topic name against Kafka's rules.
fn check_topic_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name == "." || name == ".." {
        Err("`.` and `..` are reserved")
    } else if name.len() > MAX_TOPIC_NAME_LEN {
        Err("it is longer than 249 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Err("only ASCII letters, digits, `.`, `_` and `-` are allowed")
    } else {
        Ok(())
    }
}

/// A semantic problem of a topic layout, found by [`TopicLayout::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutProblem {
    /// Two topics have the same name.
    DuplicateTopic {
        /// The name.
        name: String,
    },
    /// A name the broker would refuse.
    InvalidTopicName {
        /// The name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// `partitions` below 1.
    TooFewPartitions {
        /// The topic.
        topic: String,
        /// The declared count.
        partitions: i32,
    },
    /// `replication-factor` below 1.
    TooFewReplicas {
        /// The topic.
        topic: String,
        /// The declared factor.
        replication_factor: i32,
    },
    /// The topics of a co-partition group have different partition counts.
    CoPartitionMismatch {
        /// The group.
        group: String,
        /// Every topic of the group with its count, in file order.
        counts: Vec<(String, i32)>,
    },
    /// A matcher topic is not in the co-partition group of `orders` (or `orders` is in none).
    NotInMatcherGroup {
        /// The topic.
        topic: String,
        /// The group of `orders`; `None` when the topic is `orders` itself.
        expected: Option<String>,
        /// The topic's group.
        actual: Option<String>,
    },
    /// `retention-ms` on a `compact` topic, where the broker ignores it.
    RetentionOnCompacted {
        /// The topic.
        topic: String,
        /// The declared retention.
        retention_ms: i64,
    },
    /// `retention-ms` below -1.
    InvalidRetention {
        /// The topic.
        topic: String,
        /// The declared retention.
        retention_ms: i64,
    },
    /// A compacted topic declared without a key: the broker refuses null keys there.
    CompactedWithoutKey {
        /// The topic.
        topic: String,
    },
    /// `config` sets a key that has a typed field.
    TypedConfigInExtra {
        /// The topic.
        topic: String,
        /// The Kafka config key.
        key: String,
        /// The field to use instead.
        field: String,
    },
    /// `min.insync.replicas` above the replication factor: every `acks=all` write would fail.
    MinInsyncAboveReplicas {
        /// The topic.
        topic: String,
        /// The declared `min.insync.replicas`.
        min_insync: i32,
        /// The declared replication factor.
        replication_factor: i32,
    },
    /// A `format` other than `avro` or `json`.
    UnknownFormat {
        /// The topic.
        topic: String,
        /// The declared format.
        format: String,
    },
    /// A `schema` that is not an `.avsc` file name.
    BadSchemaName {
        /// The topic.
        topic: String,
        /// The declared schema.
        schema: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `matcher-snapshots` is not `compact`: old snapshots would be deleted, or kept forever.
    SnapshotsNotCompacted {
        /// The topic.
        topic: String,
        /// Its policy.
        policy: CleanupPolicy,
    },
    /// A required topic is not declared.
    MissingTopic {
        /// The topic.
        name: String,
    },
}

impl fmt::Display for LayoutProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateTopic { name } => write!(f, "topic `{name}` is declared more than once"),
            Self::InvalidTopicName { name, reason } => {
                write!(f, "topic name `{name}` is not valid: {reason}")
            }
            Self::TooFewPartitions { topic, partitions } => write!(
                f,
                "topic `{topic}`: partitions is {partitions}, must be at least 1"
            ),
            Self::TooFewReplicas {
                topic,
                replication_factor,
            } => write!(
                f,
                "topic `{topic}`: replication-factor is {replication_factor}, must be at least 1"
            ),
            Self::CoPartitionMismatch { group, counts } => {
                write!(f, "co-partition group `{group}`: partition counts differ (")?;
                for (i, (topic, count)) in counts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{topic}: {count}")?;
                }
                f.write_str("), they must be equal")
            }
            Self::NotInMatcherGroup {
                topic,
                expected: None,
                ..
            } => write!(
                f,
                "topic `{topic}` has no co-partition group: the matcher writes its outputs to the partition \
                 number of the input record"
            ),
            Self::NotInMatcherGroup {
                topic,
                expected: Some(expected),
                actual,
            } => {
                write!(
                    f,
                    "topic `{topic}` must be in co-partition group `{expected}` like `orders`, "
                )?;
                match actual {
                    Some(actual) => write!(f, "not `{actual}`")?,
                    None => f.write_str("it is in none")?,
                }
                f.write_str(": the matcher writes it to the partition number of the input record")
            }
            Self::RetentionOnCompacted {
                topic,
                retention_ms,
            } => write!(
                f,
                "topic `{topic}`: retention-ms {retention_ms} has no effect on a `compact` topic; remove it, \
                 or use cleanup-policy `compact,delete`"
            ),
            Self::InvalidRetention {
                topic,
                retention_ms,
            } => write!(
                f,
                "topic `{topic}`: retention-ms is {retention_ms}, must be -1 (forever) or more"
            ),
            Self::CompactedWithoutKey { topic } => write!(
                f,
                "topic `{topic}` is compacted but its key is `none`: the broker refuses null keys on \
                 compacted topics"
            ),
            Self::TypedConfigInExtra { topic, key, field } => write!(
                f,
                "topic `{topic}`: set `{key}` with `{field}`, not in `config`"
            ),
            Self::MinInsyncAboveReplicas {
                topic,
                min_insync,
                replication_factor,
            } => write!(
                f,
                "topic `{topic}`: min.insync.replicas {min_insync} is above replication-factor \
                 {replication_factor}, so every acks=all write would fail"
            ),
            Self::UnknownFormat { topic, format } => write!(
                f,
                "topic `{topic}`: format `{format}` is unknown, expected `avro` or `json`"
            ),
            Self::BadSchemaName {
                topic,
                schema,
                reason,
            } => write!(f, "topic `{topic}`: schema `{schema}` {reason}"),
            Self::SnapshotsNotCompacted { topic, policy } => write!(
                f,
                "topic `{topic}` has cleanup-policy `{policy}`, must be `compact`: the latest snapshot of \
                 every partition must survive, older ones need not"
            ),
            Self::MissingTopic { name } => write!(f, "required topic `{name}` is not declared"),
        }
    }
}

impl std::error::Error for LayoutProblem {}

/// One line per problem, for [`ConfigError::Layout`].
pub(crate) fn describe_problems(problems: &[LayoutProblem]) -> String {
    let mut text = format!(
        "{} problem{} in the topic layout:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        text.push_str("\n  - ");
        text.push_str(&problem.to_string());
    }
    text
}

/// A topic as a broker reports it, for [`TopicLayout::drift`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActualTopic {
    /// The topic name.
    pub name: String,
    /// Its number of partitions.
    pub partitions: i32,
    /// Its configs as the broker reports them; empty when not fetched (then no config is compared).
    pub configs: BTreeMap<String, String>,
}

impl ActualTopic {
    /// A topic with `partitions` partitions and no reported configs.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            configs: BTreeMap::new(),
        }
    }
}

/// A difference between the declared layout and a broker, found by [`TopicLayout::drift`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// A declared topic does not exist on the broker.
    Missing(String),
    /// The broker's partition count differs from the declared one.
    PartitionCount {
        /// The topic.
        name: String,
        /// Declared in the layout.
        declared: i32,
        /// On the broker.
        actual: i32,
    },
    /// A declared config has another value on the broker.
    ConfigMismatch {
        /// The topic.
        name: String,
        /// The Kafka config key.
        key: String,
        /// Declared in the layout.
        declared: String,
        /// On the broker.
        actual: String,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(name) => write!(f, "topic `{name}` does not exist on the broker"),
            Self::PartitionCount {
                name,
                declared,
                actual,
            } => write!(
                f,
                "topic `{name}` has {actual} partitions on the broker, {declared} declared"
            ),
            Self::ConfigMismatch {
                name,
                key,
                declared,
                actual,
            } => write!(
                f,
                "topic `{name}`: {key} is `{actual}` on the broker, `{declared}` declared"
            ),
        }
    }
}

/// Deserializes a map of topic configs whose values may be written as YAML strings, numbers or booleans
/// (`max.message.bytes: 2097152`), keeping each as the text the broker expects.
fn scalar_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = BTreeMap::<String, ScalarText>::deserialize(deserializer)?;
    Ok(map.into_iter().map(|(key, value)| (key, value.0)).collect())
}

/// A scalar kept as text.
struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarTextVisitor)
    }
}

/// Visits a string, number or boolean.
struct ScalarTextVisitor;

impl Visitor<'_> for ScalarTextVisitor {
    type Value = ScalarText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<ScalarText, E> {
        Ok(ScalarText(value))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<ScalarText, E> {
        Ok(ScalarText(value.to_string()))
    }
}

#[cfg(test)]
mod tests;
