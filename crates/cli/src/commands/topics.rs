//! `tradestream topics`: the topic layout of topics.yaml, checked, applied to a cluster, or rendered as
//! Strimzi `KafkaTopic` resources for a Kubernetes deployment (deploy/k8s).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tradestream_config::strimzi::{RenderOptions, StrimziApiVersion, render_strimzi};
use tradestream_config::topics::{TopicLayout, load_topics};

use super::kafka::KafkaArgs;

/// `tradestream topics …`.
#[derive(Debug, clap::Subcommand)]
pub enum TopicsCommand {
    /// Create the topics that are missing and report drift from the declared layout.
    Apply(TopicsArgs),
    /// Check the layout file (co-partitioning, required topics, policies); fails on any problem.
    Check(CheckArgs),
    /// Print the layout as Kubernetes resources (Strimzi `KafkaTopic`s) on standard output.
    Render(RenderArgs),
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

/// What `topics render` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RenderFormat {
    /// Strimzi `KafkaTopic` resources, one YAML document per topic.
    Strimzi,
}

/// Arguments of `topics render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The layout file.
    #[arg(long, default_value = "topics.yaml")]
    pub file: PathBuf,
    /// What to write.
    #[arg(long, value_enum)]
    pub format: RenderFormat,
    /// The Strimzi `Kafka` resource whose Topic Operator manages the topics (label `strimzi.io/cluster`).
    #[arg(long, default_value = "tradestream")]
    pub cluster: String,
    /// `metadata.namespace` of every resource (default: none, left to kubectl or kustomize).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Replicas of every topic, replacing topics.yaml's `replication-factor` (3 in production).
    #[arg(long, value_name = "N")]
    pub replication: Option<i32>,
    /// `min.insync.replicas` of every topic (2 in production, with 3 replicas); at most the replicas.
    #[arg(long, value_name = "N")]
    pub min_insync: Option<i32>,
    /// The `apiVersion`: `kafka.strimzi.io/v1` (Strimzi 0.49 and later; the only one from 1.0) or
    /// `kafka.strimzi.io/v1beta2` (Strimzi before 1.0).
    #[arg(long, default_value = "kafka.strimzi.io/v1", value_parser = parse_api_version)]
    pub api_version: StrimziApiVersion,
}

fn parse_api_version(text: &str) -> Result<StrimziApiVersion, String> {
    StrimziApiVersion::parse(text).ok_or_else(|| {
        let known: Vec<&str> = StrimziApiVersion::ALL.iter().map(|v| v.as_str()).collect();
        format!("expected one of {}", known.join(", "))
    })
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
            let report = tradestream_runtime::topics::apply(&layout, &args.kafka.config()?)?;
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
        TopicsCommand::Render(args) => {
            let layout = checked_layout(&args.file)?;
            let RenderFormat::Strimzi = args.format;
            let options = RenderOptions {
                cluster: args.cluster.clone(),
                namespace: args.namespace.clone(),
                replication: args.replication,
                min_insync: args.min_insync,
                api_version: args.api_version,
            };
            let text = render_strimzi(&layout, &options)
                .with_context(|| format!("cannot render {}", args.file.display()))?;
            print!("{text}");
            Ok(())
        }
    }
}

/// Loads a layout; `load_topics` refuses one with problems, naming every one of them.
pub fn checked_layout(path: &Path) -> anyhow::Result<TopicLayout> {
    Ok(load_topics(path)?)
}
