//! Strimzi `KafkaTopic` resources rendered from a topic layout (`tradestream topics render --format strimzi`).
//!
//! One resource per topic of `topics.yaml`: partitions, replicas and the topic configs the layout declares
//! ([`TopicSpec::broker_config`]: `cleanup.policy`, `retention.ms`, the extra `config` entries), plus the
//! cluster-wide overrides a deployment needs ([`RenderOptions::replication`], [`RenderOptions::min_insync`]),
//! labelled `strimzi.io/cluster` so that the Topic Operator of that Kafka cluster takes them. The output is
//! deterministic (file order, sorted configs) so that a committed rendering can be compared with a fresh one.
//!
//! The shipped layout declares replication factor 1 for the single-node embedded broker; production renders
//! with `--replication 3 --min-insync 2` (producers write with `acks=all`, so one broker may be down).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::topics::{TopicLayout, TopicSpec};

/// Strimzi's label naming the Kafka cluster whose Topic Operator manages a `KafkaTopic`.
const CLUSTER_LABEL: &str = "strimzi.io/cluster";

/// The topic config that [`RenderOptions::min_insync`] sets.
const MIN_INSYNC: &str = "min.insync.replicas";

/// Kubernetes' limit on a resource name (RFC 1123 subdomain).
const MAX_RESOURCE_NAME_LEN: usize = 253;

/// The `apiVersion` of a rendered `KafkaTopic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StrimziApiVersion {
    /// `kafka.strimzi.io/v1`: introduced in Strimzi 0.49 and the only one Strimzi 1.0 and later serve.
    #[default]
    V1,
    /// `kafka.strimzi.io/v1beta2`: Strimzi 0.22 to 0.51 (deprecated from 0.49, removed in 1.0).
    V1beta2,
}

impl StrimziApiVersion {
    /// Every version, for argument parsers.
    pub const ALL: [Self; 2] = [Self::V1, Self::V1beta2];

    /// The `apiVersion` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "kafka.strimzi.io/v1",
            Self::V1beta2 => "kafka.strimzi.io/v1beta2",
        }
    }

    /// The version named `text` (the full `apiVersion`, or just `v1` / `v1beta2`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|version| {
            let full = version.as_str();
            text == full || full.strip_prefix("kafka.strimzi.io/") == Some(text)
        })
    }
}

impl fmt::Display for StrimziApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to render a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// The Strimzi `Kafka` resource the topics belong to (the `strimzi.io/cluster` label).
    pub cluster: String,
    /// `metadata.namespace` of every resource; `None` leaves it to `kubectl` or kustomize.
    pub namespace: Option<String>,
    /// Replicas of every topic, replacing the layout's `replication-factor`.
    pub replication: Option<i32>,
    /// `min.insync.replicas` of every topic, replacing any value in the layout's `config`.
    pub min_insync: Option<i32>,
    /// The `apiVersion` written.
    pub api_version: StrimziApiVersion,
}

impl RenderOptions {
    /// Options for Kafka cluster `cluster`, everything else as the layout says.
    pub fn new(cluster: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            namespace: None,
            replication: None,
            min_insync: None,
            api_version: StrimziApiVersion::default(),
        }
    }

    /// The `tradestream topics render` arguments that give these options, as the header of a rendering shows
    /// them (so that a reader can render it again).
    pub fn command_line(&self) -> String {
        let mut line = format!(
            "tradestream topics render --format strimzi --cluster {}",
            self.cluster
        );
        if let Some(namespace) = &self.namespace {
            line.push_str(&format!(" --namespace {namespace}"));
        }
        if let Some(replication) = self.replication {
            line.push_str(&format!(" --replication {replication}"));
        }
        if let Some(min_insync) = self.min_insync {
            line.push_str(&format!(" --min-insync {min_insync}"));
        }
        line.push_str(&format!(" --api-version {}", self.api_version));
        line
    }
}

/// Why a layout cannot be rendered with the options given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// `--replication` below 1.
    #[error("--replication {0} must be at least 1")]
    Replication(i32),
    /// `--min-insync` below 1.
    #[error("--min-insync {0} must be at least 1")]
    MinInsync(i32),
    /// A topic would have `min.insync.replicas` above its replicas: every `acks=all` write would fail.
    #[error(
        "topic `{topic}`: min.insync.replicas {min_insync} is above its {replicas} replicas, so every \
         acks=all write (all the pipeline's producers) would fail; lower --min-insync or raise --replication"
    )]
    MinInsyncAboveReplicas {
        /// The topic.
        topic: String,
        /// Its `min.insync.replicas`, from `--min-insync` or the layout.
        min_insync: i32,
        /// Its replicas, from `--replication` or the layout.
        replicas: i32,
    },
    /// The layout's `min.insync.replicas` is not a number.
    #[error("topic `{topic}`: min.insync.replicas `{value}` is not a whole number")]
    MinInsyncNotANumber {
        /// The topic.
        topic: String,
        /// The declared value.
        value: String,
    },
    /// A name that cannot be a Kubernetes label value or resource name.
    #[error("{what} `{value}` is not valid: {reason}")]
    BadName {
        /// Which option or field.
        what: &'static str,
        /// The value.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Two topics map to the same resource name.
    #[error(
        "topics `{first}` and `{second}` would both be KafkaTopic `{resource}`; rename one of them"
    )]
    NameClash {
        /// The first topic, in file order.
        first: String,
        /// The second.
        second: String,
        /// The shared resource name.
        resource: String,
    },
    /// The YAML writer failed (not expected for these plain structures).
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}

/// A `KafkaTopic` resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopic {
    /// `kafka.strimzi.io/v1` or `v1beta2`.
    pub api_version: &'static str,
    /// Always `KafkaTopic`.
    pub kind: &'static str,
    /// Name, namespace, labels.
    pub metadata: Metadata,
    /// Partitions, replicas, configs.
    pub spec: KafkaTopicSpec,
}

/// `metadata` of a rendered resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    /// The resource name: the topic name made a valid Kubernetes name.
    pub name: String,
    /// The namespace, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `strimzi.io/cluster` and `app.kubernetes.io/part-of`.
    pub labels: BTreeMap<String, String>,
}

/// `spec` of a `KafkaTopic`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicSpec {
    /// The topic name on the broker, when the resource name differs from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replicas: i32,
    /// Topic configs, values as the broker takes them (strings).
    pub config: BTreeMap<String, String>,
}

/// The `KafkaTopic` resources of `layout`, in file order. Refuses options that would make a topic unusable
/// (see [`RenderError`]).
pub fn kafka_topics(
    layout: &TopicLayout,
    options: &RenderOptions,
) -> Result<Vec<KafkaTopic>, RenderError> {
    if let Some(replication) = options.replication.filter(|r| *r < 1) {
        return Err(RenderError::Replication(replication));
    }
    if let Some(min_insync) = options.min_insync.filter(|m| *m < 1) {
        return Err(RenderError::MinInsync(min_insync));
    }
    check_label_value("--cluster", &options.cluster)?;
    if let Some(namespace) = &options.namespace {
        check_namespace(namespace)?;
    }

    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut resources = Vec::with_capacity(layout.len());
    for topic in layout {
        if !seen.insert(topic.name.as_str()) {
            continue; // `topics check` reports the duplicate; render the first declaration
        }
        let resource = kafka_topic(topic, options)?;
        if let Some(first) = names.insert(resource.metadata.name.clone(), topic.name.clone()) {
            return Err(RenderError::NameClash {
                first,
                second: topic.name.clone(),
                resource: resource.metadata.name,
            });
        }
        resources.push(resource);
    }
    Ok(resources)
}

/// The resource of one topic.
fn kafka_topic(topic: &TopicSpec, options: &RenderOptions) -> Result<KafkaTopic, RenderError> {
    let replicas = options.replication.unwrap_or(topic.replication_factor);
    let mut config: BTreeMap<String, String> = topic.broker_config().into_iter().collect();
    if let Some(min_insync) = options.min_insync {
        config.insert(MIN_INSYNC.to_owned(), min_insync.to_string());
    }
    if let Some(value) = config.get(MIN_INSYNC) {
        let min_insync =
            value
                .trim()
                .parse::<i32>()
                .map_err(|_| RenderError::MinInsyncNotANumber {
                    topic: topic.name.clone(),
                    value: value.clone(),
                })?;
        if min_insync > replicas {
            return Err(RenderError::MinInsyncAboveReplicas {
                topic: topic.name.clone(),
                min_insync,
                replicas,
            });
        }
    }

    let name = resource_name(&topic.name)?;
    let topic_name = (name != topic.name).then(|| topic.name.clone());
    let labels = BTreeMap::from([
        (CLUSTER_LABEL.to_owned(), options.cluster.clone()),
        (
            "app.kubernetes.io/part-of".to_owned(),
            "tradestream".to_owned(),
        ),
    ]);
    Ok(KafkaTopic {
        api_version: options.api_version.as_str(),
        kind: "KafkaTopic",
        metadata: Metadata {
            name,
            namespace: options.namespace.clone(),
            labels,
        },
        spec: KafkaTopicSpec {
            topic_name,
            partitions: topic.partitions,
            replicas,
            config,
        },
    })
}

/// The layout as a multi-document YAML stream of `KafkaTopic` resources, headed by a comment naming the
/// command that renders it.
pub fn render_strimzi(
    layout: &TopicLayout,
    options: &RenderOptions,
) -> Result<String, RenderError> {
    let resources = kafka_topics(layout, options)?;
    let mut out = format!(
        "# Generated from topics.yaml by `{}`.\n# Do not edit: change topics.yaml and render again.\n",
        options.command_line()
    );
    for resource in &resources {
        out.push_str("---\n");
        let yaml =
            serde_norway::to_string(resource).map_err(|e| RenderError::Yaml(e.to_string()))?;
        out.push_str(&yaml);
    }
    Ok(out)
}

/// A topic name made a Kubernetes resource name: lower case, `_` as `-` (Kafka allows `_` and capitals,
/// Kubernetes does not; `spec.topicName` then keeps the real name).
fn resource_name(topic: &str) -> Result<String, RenderError> {
    let name: String = topic
        .chars()
        .map(|c| match c {
            '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let bad = |reason| RenderError::BadName {
        what: "topic name",
        value: topic.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > MAX_RESOURCE_NAME_LEN {
        return Err(bad("a KafkaTopic name has 1 to 253 characters"));
    }
    let alnum_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'));
    if !alnum_ends || !allowed {
        return Err(bad(
            "a KafkaTopic name starts and ends with a letter or digit and has only letters, digits, `-`, `_` \
             and `.`",
        ));
    }
    Ok(name)
}

/// Checks a Kubernetes label value (the cluster name): at most 63 characters of letters, digits, `-`, `_`,
/// `.`, starting and ending with a letter or digit.
fn check_label_value(what: &'static str, value: &str) -> Result<(), RenderError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(RenderError::BadName {
            what,
            value: value.to_owned(),
            reason: "1 to 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit",
        })
    }
}

/// Checks a namespace name (RFC 1123 label: at most 63 lower-case letters, digits and `-`).
fn check_namespace(value: &str) -> Result<(), RenderError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(RenderError::BadName {
            what: "--namespace",
            value: value.to_owned(),
            reason: "1 to 63 lower-case letters, digits or `-`, starting and ending with a letter or digit",
        })
    }
}

#[cfg(test)]
mod tests;
