//! Applying the declared topic layout (topics.yaml) to a cluster.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use tradestream_config::topics::{ActualTopic, TopicLayout};

use crate::client::KafkaConfig;

/// Why the layout could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// The client failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The broker refused to create a topic.
    #[error("cannot create topic {name}: {code}")]
    Create {
        /// The topic.
        name: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
}

/// What [`apply`] did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Topics created.
    pub created: Vec<String>,
    /// Differences that remain between the layout and existing topics.
    pub drift: Vec<String>,
}

/// Creates the missing topics of `layout` (partitions, replication, configs) and reports how the
/// existing ones differ from it: partition counts, replication factors and the declared topic
/// configs (DescribeConfigs). Existing topics are never changed.
pub fn apply(layout: &TopicLayout, kafka: &KafkaConfig) -> Result<ApplyReport, TopicsError> {
    let admin: AdminClient<DefaultClientContext> = kafka.admin().create()?;
    let existing = actual_topics(&admin)?;
    let missing: Vec<_> = layout
        .iter()
        .filter(|t| !existing.iter().any(|a| a.name == t.name))
        .collect();
    let configs: Vec<Vec<(String, String)>> = missing.iter().map(|t| t.broker_config()).collect();
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .zip(&configs)
        .map(|(t, cfg)| {
            let replication = TopicReplication::Fixed(t.replication_factor);
            cfg.iter().fold(
                NewTopic::new(&t.name, t.partitions, replication),
                |nt, (k, v)| nt.set(k, v),
            )
        })
        .collect();
    let mut report = ApplyReport::default();
    if !new_topics.is_empty() {
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        // The admin futures complete on librdkafka's own thread; no async runtime is needed.
        let results = futures::executor::block_on(admin.create_topics(&new_topics, &opts))?;
        for result in results {
            match result {
                Ok(name) => report.created.push(name),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    tracing::info!(topic = %name, "created concurrently by someone else");
                }
                Err((name, code)) => return Err(TopicsError::Create { name, code }),
            }
        }
    }
    let now = wait_for_topics(&admin, layout)?;
    report.drift = layout.drift(&now).iter().map(ToString::to_string).collect();
    report.drift.extend(replication_drift(&admin, layout)?);
    report.drift.extend(config_drift(&admin, layout)?);
    Ok(report)
}

/// Declared topics whose partitions have another number of replicas.
fn replication_drift(
    admin: &AdminClient<DefaultClientContext>,
    layout: &TopicLayout,
) -> Result<Vec<String>, TopicsError> {
    let md = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))?;
    let mut drift = Vec::new();
    for t in layout.iter() {
        let Some(actual) = md.topics().iter().find(|a| a.name() == t.name) else {
            continue;
        };
        if let Some(r) = actual
            .partitions()
            .iter()
            .map(|p| p.replicas().len())
            .find(|r| i32::try_from(*r).ok() != Some(t.replication_factor))
        {
            drift.push(format!(
                "topic {}: replication factor is {r}, declared {}",
                t.name, t.replication_factor
            ));
        }
    }
    Ok(drift)
}

/// Declared topic configs (`cleanup.policy`, `retention.ms`, `config:`) whose value on the
/// cluster differs. A broker that cannot describe configs is reported once, not as drift.
fn config_drift(
    admin: &AdminClient<DefaultClientContext>,
    layout: &TopicLayout,
) -> Result<Vec<String>, TopicsError> {
    let names: Vec<String> = layout.iter().map(|t| t.name.clone()).collect();
    let specifiers: Vec<ResourceSpecifier<'_>> = names
        .iter()
        .map(|n| ResourceSpecifier::Topic(n.as_str()))
        .collect();
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let results = match futures::executor::block_on(admin.describe_configs(&specifiers, &opts)) {
        Ok(results) => results,
        Err(e) => {
            tracing::warn!(error = %e, "the cluster cannot describe topic configs; configs not compared");
            return Ok(Vec::new());
        }
    };
    let mut drift = Vec::new();
    for (t, result) in layout.iter().zip(results) {
        let Ok(resource) = result else {
            continue; // a topic that does not exist is reported by the partition check
        };
        for (key, declared) in t.broker_config() {
            let actual = resource.get(&key).and_then(|e| e.value.clone());
            if !same_config(&key, actual.as_deref(), &declared) {
                drift.push(format!(
                    "topic {}: {key} is {}, declared {declared}",
                    t.name,
                    actual.as_deref().unwrap_or("unset")
                ));
            }
        }
    }
    Ok(drift)
}

/// Whether a config value on the cluster is the declared one (`cleanup.policy` is a set).
pub(crate) fn same_config(key: &str, actual: Option<&str>, declared: &str) -> bool {
    let Some(actual) = actual else {
        return false;
    };
    if key == "cleanup.policy" {
        let set = |s: &str| {
            let mut v: Vec<String> = s.split(',').map(|x| x.trim().to_owned()).collect();
            v.sort();
            v
        };
        return set(actual) == set(declared);
    }
    actual.trim() == declared.trim()
}

fn actual_topics(
    admin: &AdminClient<DefaultClientContext>,
) -> Result<Vec<ActualTopic>, TopicsError> {
    let md = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| !t.partitions().is_empty())
        .map(|t| ActualTopic::new(t.name(), t.partitions().len() as i32))
        .collect())
}

/// Metadata can lag topic creation: wait (at most 5 s) until every declared topic shows up.
fn wait_for_topics(
    admin: &AdminClient<DefaultClientContext>,
    layout: &TopicLayout,
) -> Result<Vec<ActualTopic>, TopicsError> {
    let mut now = actual_topics(admin)?;
    for _ in 0..50 {
        if layout.iter().all(|t| now.iter().any(|a| a.name == t.name)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        now = actual_topics(admin)?;
    }
    Ok(now)
}
