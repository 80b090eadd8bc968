//! The rules a layout must follow ([`TopicLayout::check`]): each topic's own, then those across
//! topics (duplicates, co-partitioning, the snapshot topic, required topics).

use std::collections::{BTreeMap, BTreeSet};

use super::{CleanupPolicy, LayoutProblem, TopicLayout, TopicSpec, ValueFormat};
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

impl TopicLayout {
    /// Every problem of the layout, in a fixed order: each topic's own problems in file order, then duplicate
    /// names, co-partitioning, and required topics. Empty when the layout is usable.
    pub fn check(&self) -> Vec<LayoutProblem> {
        let mut problems = Vec::new();
        for topic in self.iter() {
            topic.check_into(&mut problems);
        }

        let mut seen = BTreeSet::new();
        let mut reported = BTreeSet::new();
        for topic in self.iter() {
            if !seen.insert(topic.name.as_str()) && reported.insert(topic.name.as_str()) {
                problems.push(LayoutProblem::DuplicateTopic {
                    name: topic.name.clone(),
                });
            }
        }

        let mut groups: BTreeMap<&str, Vec<(String, i32)>> = BTreeMap::new();
        for topic in self.iter() {
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
}

impl TopicSpec {
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
pub(super) fn check_topic_name(name: &str) -> Result<(), &'static str> {
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
