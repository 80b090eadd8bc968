//! `tradestream topics`: the topic layout of topics.yaml, checked and applied to a cluster.

use std::path::{Path, PathBuf};

use anyhow::bail;
use tradestream_config::topics::{TopicLayout, load_topics};

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
    }
}

/// Loads a layout; `load_topics` refuses one with problems, naming every one of them.
pub fn checked_layout(path: &Path) -> anyhow::Result<TopicLayout> {
    Ok(load_topics(path)?)
}
