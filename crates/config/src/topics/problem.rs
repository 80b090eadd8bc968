//! [`LayoutProblem`]: what [`TopicLayout::check`](super::TopicLayout::check) finds, each
//! written as a sentence.

use std::fmt;

use super::CleanupPolicy;

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
