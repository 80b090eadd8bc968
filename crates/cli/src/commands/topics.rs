//! `tradestream topics`: the topic layout of topics.yaml, checked and applied to a cluster.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use tradestream_config::topics::{ActualTopic, TopicLayout, load_topics};
use tradestream_runtime::KafkaConfig;

use super::kafka::KafkaArgs;

/// `tradestream topics …`.
#[derive(Debug, clap::Subcommand)]
pub enum TopicsCommand {
    /// Create the topics that are missing and report drift from the declared layout.
    Apply(TopicsArgs),
    /// Check the layout file (co-partitioning, required topics, policies); fails on any problem.
    Check(CheckArgs),
}

/// Arguments of `topics apply`.
#[derive(Debug, clap::Args)]
pub struct TopicsArgs {
    /// The layout file.
    #[arg(long, default_value = "topics.yaml")]
    pub file: PathBuf,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Arguments of `topics check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The layout file.
    #[arg(long, default_value = "topics.yaml")]
    pub file: PathBuf,
}

/// Runs a `topics` subcommand.
pub fn run(cmd: &TopicsCommand) -> anyhow::Result<()> {
    match cmd {
        TopicsCommand::Check(args) => {
            let layout = checked_layout(&args.file)?;
            println!(
                "{}: {} topics, no problems",
                args.file.display(),
                layout.len()
            );
            Ok(())
        }
        TopicsCommand::Apply(args) => {
            let layout = checked_layout(&args.file)?;
            let rt = tokio::runtime::Runtime::new()?;
            let report = rt.block_on(apply(&layout, &args.kafka.config()))?;
            for name in &report.created {
                println!("created {name}");
            }
            for d in &report.drift {
                println!("drift: {d}");
            }
            if !report.drift.is_empty() {
                bail!(
                    "{} topics differ from {}",
                    report.drift.len(),
                    args.file.display()
                );
            }
            println!("{} topics in place", layout.len());
            Ok(())
        }
    }
}

/// Loads a layout; `load_topics` refuses one with problems, naming every one of them.
pub fn checked_layout(path: &Path) -> anyhow::Result<TopicLayout> {
    Ok(load_topics(path)?)
}

/// What `apply` did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Topics created.
    pub created: Vec<String>,
    /// Differences that remain (existing topics that do not match the file).
    pub drift: Vec<String>,
}

/// Creates the missing topics of `layout` and reports drift of the existing ones.
pub async fn apply(layout: &TopicLayout, kafka: &KafkaConfig) -> anyhow::Result<ApplyReport> {
    let admin: AdminClient<DefaultClientContext> = kafka
        .admin()
        .create()
        .context("cannot create the Kafka admin client")?;
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
            cfg.iter().fold(
                NewTopic::new(
                    &t.name,
                    t.partitions,
                    TopicReplication::Fixed(t.replication_factor),
                ),
                |nt, (k, v)| nt.set(k, v),
            )
        })
        .collect();
    let mut report = ApplyReport::default();
    if !new_topics.is_empty() {
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin.create_topics(&new_topics, &opts).await? {
            match result {
                Ok(name) => report.created.push(name),
                Err((name, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                    tracing::info!(topic = %name, "created concurrently by someone else");
                }
                Err((name, code)) => bail!("cannot create topic {name}: {code}"),
            }
        }
    }
    let now = wait_for_topics(&admin, layout)?;
    report.drift = layout.drift(&now).iter().map(ToString::to_string).collect();
    Ok(report)
}

fn actual_topics(admin: &AdminClient<DefaultClientContext>) -> anyhow::Result<Vec<ActualTopic>> {
    let md = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))
        .context("cannot read cluster metadata")?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| !t.partitions().is_empty())
        .map(|t| ActualTopic::new(t.name(), t.partitions().len() as i32))
        .collect())
}

/// Metadata can lag topic creation: wait (bounded) until every declared topic shows up.
fn wait_for_topics(
    admin: &AdminClient<DefaultClientContext>,
    layout: &TopicLayout,
) -> anyhow::Result<Vec<ActualTopic>> {
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
