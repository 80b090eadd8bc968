//! The layout against what a broker reports ([`TopicLayout::drift`]): pure; the CLI fetches the
//! metadata.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::TopicLayout;

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

impl TopicLayout {
    /// How the topics a broker reports differ from the layout, in layout order: declared topics that are
    /// missing, partition counts that differ, and declared configs ([`TopicSpec::broker_config`]) whose value
    /// differs from the one the broker reports. A config the broker does not report is not compared, and topics
    /// the layout does not declare (internal, shadow) are ignored.
    pub fn drift(&self, actual: &[ActualTopic]) -> Vec<Drift> {
        let mut drift = Vec::new();
        let mut seen = BTreeSet::new();
        for declared in self.iter() {
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
