//! The parsed `topics.yaml`: [`TopicLayout`] and the [`TopicSpec`] of each topic, with their
//! serde defaults. A new setting of `topics.yaml` starts here (a field with its `///` and
//! default), then gets its rules in `check.rs` and, if the broker holds it, its comparison in
//! `drift.rs`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::scalar::scalar_map;

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
pub(super) struct TopicsFile {
    /// Every topic of the pipeline, in the order `tradestream topics` reports them.
    pub(super) topics: Vec<TopicSpec>,
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
}
