//! `tradestream replay matcher` and `tradestream verify` (docs/design.md §4).
//!
//! `replay matcher --suffix S` re-runs the matcher over `orders` from the beginning into shadow
//! topics (`executions.S`, `trades.S`, `market-data.S`, `matcher-snapshots.S`,
//! `dead-letters.S`), in a consumer group of its own, and stops once it has consumed every
//! order that was there when it started. It never writes to the live topics.
//!
//! `verify --suffix S` compares every live output partition with its shadow, record by record
//! (values only: headers name the worker and may differ), and the output hash chain of the
//! newest snapshot of each partition with the shadow's at the same input offset. It exits
//! non-zero on the first difference.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::message::Message;
use tradestream_codec::avro;
use tradestream_config::topics::TopicLayout;
use tradestream_matcher::{MatcherConfig, MatcherStats};
use tradestream_runtime::Shutdown;
use tradestream_runtime::partition::PartitionReader;

use super::kafka::{KafkaArgs, shutdown_on_signals};
use super::topics;

/// The matcher's output topics, compared by `verify`.
const OUTPUTS: [&str; 3] = ["executions", "trades", "market-data"];

/// What `replay` re-runs.
#[derive(Debug, clap::Subcommand)]
pub enum ReplayCommand {
    /// Re-run the matcher over `orders` from the beginning into shadow topics `<topic>.<suffix>`.
    Matcher(ReplayArgs),
}

/// Arguments of `replay matcher`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Shadow topic suffix (e.g. `replay1`): outputs go to `<topic>.<suffix>`.
    #[arg(long)]
    pub suffix: String,
    /// Instruments file (must be the one the live matcher runs with).
    #[arg(long, default_value = "instruments.yaml")]
    pub instruments: PathBuf,
    /// Topic layout (the shadow topics copy the live ones' settings).
    #[arg(long, default_value = "topics.yaml")]
    pub topics: PathBuf,
    /// Must be the live matcher's, like the instruments.
    #[command(flatten)]
    pub clock: super::run::ClockSkewArgs,
}

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Shadow topic suffix of a finished `replay matcher`.
    #[arg(long)]
    pub suffix: String,
    /// The live matcher's consumer group (its snapshots carry the output hash chain).
    #[arg(long, default_value = "tradestream-matcher")]
    pub group: String,
}

fn shadow(topic: &str, suffix: &str) -> String {
    format!("{topic}.{suffix}")
}

fn check_suffix(suffix: &str) -> anyhow::Result<()> {
    let ok = !suffix.is_empty()
        && suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("--suffix {suffix:?}: use letters, digits, - and _ only");
    }
    Ok(())
}

/// Runs `replay …`.
pub fn run(cmd: &ReplayCommand) -> anyhow::Result<()> {
    let ReplayCommand::Matcher(args) = cmd;
    check_suffix(&args.suffix)?;
    let kafka = args.kafka.config()?;
    let layout = topics::checked_layout(&args.topics)?;
    let instruments = tradestream_config::load_instruments(&args.instruments)?;

    // Shadow topics with the live topics' settings.
    let mut cfg = MatcherConfig::new(kafka.clone(), instruments);
    cfg.max_clock_skew = args.clock.max_clock_skew();
    let specs = [
        &cfg.executions,
        &cfg.trades,
        &cfg.market_data,
        &cfg.snapshots,
        &cfg.run.dead_letters,
    ]
    .into_iter()
    .map(|t| {
        let mut spec = layout
            .get(t)
            .with_context(|| format!("topic {t} is not in {}", args.topics.display()))?
            .clone();
        spec.name = shadow(t, &args.suffix);
        Ok(spec)
    })
    .collect::<anyhow::Result<Vec<_>>>()?;
    tradestream_runtime::topics::apply(&TopicLayout::new(specs), &kafka)?;

    // What the replay must consume: every order there now.
    let reader = PartitionReader::new(&kafka, Duration::from_secs(60))?;
    let partitions = reader.partition_count(&cfg.orders)?;
    let mut orders = 0u64;
    for p in 0..partitions {
        reader.read_to_end(&cfg.orders, p, 0, |_| orders += 1)?;
    }

    cfg.run.group = format!("tradestream-replay-{}", args.suffix);
    cfg.worker = format!("matcher-replay-{}", args.suffix);
    for topic in [
        &mut cfg.executions,
        &mut cfg.trades,
        &mut cfg.market_data,
        &mut cfg.snapshots,
        &mut cfg.run.dead_letters,
    ] {
        *topic = shadow(topic, &args.suffix);
    }
    eprintln!(
        "replaying {orders} orders into *.{} (group {})",
        args.suffix, cfg.run.group
    );
    let stop = shutdown_on_signals()?;
    let shutdown = Shutdown::new();
    let stats = Arc::new(MatcherStats::default());
    let started = Instant::now();
    let matcher = {
        let (shutdown, stats) = (shutdown.clone(), stats.clone());
        std::thread::Builder::new()
            .name("replay".into())
            .spawn(move || tradestream_matcher::run(cfg, &shutdown, stats))?
    };
    while stats.records_in.load(Ordering::Relaxed) < orders
        && !matcher.is_finished()
        && !stop.is_triggered()
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    shutdown.trigger();
    matcher
        .join()
        .map_err(|_| anyhow::anyhow!("the replay panicked"))??;
    let done = stats.records_in.load(Ordering::Relaxed);
    if done < orders {
        bail!("the replay stopped after {done} of {orders} orders");
    }
    println!(
        "{}",
        serde_json::json!({
            "suffix": args.suffix,
            "orders": done,
            "records_out": stats.records_out.load(Ordering::Relaxed),
            "dead_letters": stats.dead_letters.load(Ordering::Relaxed),
            "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        })
    );
    Ok(())
}

/// The values of one partition, in offset order.
fn values(reader: &PartitionReader, topic: &str, p: i32) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    reader.read_to_end(topic, p, 0, |m| {
        out.push(m.payload().unwrap_or_default().to_vec());
    })?;
    Ok(out)
}

/// Every snapshot's output hash by input offset (chunk 0 of `group`'s snapshots).
fn chains(
    reader: &PartitionReader,
    topic: &str,
    p: i32,
    group: &str,
) -> anyhow::Result<BTreeMap<i64, u64>> {
    let mut out = BTreeMap::new();
    reader.read_to_end(topic, p, 0, |m| {
        if let Some(meta) = m.payload().and_then(|b| avro::decode_snapshot(b).ok())
            && meta.group == group
            && meta.chunk == 0
        {
            out.insert(meta.input_offset, meta.output_hash);
        }
    })?;
    Ok(out)
}

/// Runs `verify`.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    check_suffix(&args.suffix)?;
    let kafka = args.kafka.config()?;
    let reader = PartitionReader::new(&kafka, Duration::from_secs(60))?;
    let partitions = reader.partition_count("orders")?;
    let replay_group = format!("tradestream-replay-{}", args.suffix);
    let (mut records, mut chains_compared) = (0usize, 0usize);
    for p in 0..partitions {
        for topic in OUTPUTS {
            let live = values(&reader, topic, p)?;
            let replayed = values(&reader, &shadow(topic, &args.suffix), p)?;
            if let Some(i) = live.iter().zip(&replayed).position(|(a, b)| a != b) {
                bail!("{topic}/{p}: record {i} differs from the replay");
            }
            if live.len() != replayed.len() {
                bail!(
                    "{topic}/{p}: {} records live, {} in the replay",
                    live.len(),
                    replayed.len()
                );
            }
            records += live.len();
        }
        let live = chains(&reader, "matcher-snapshots", p, &args.group)?;
        let replayed = chains(
            &reader,
            &shadow("matcher-snapshots", &args.suffix),
            p,
            &replay_group,
        )?;
        for (offset, hash) in &live {
            if let Some(other) = replayed.get(offset) {
                if other != hash {
                    bail!("partition {p}: output hash chains differ after input offset {offset}");
                }
                chains_compared += 1;
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "suffix": args.suffix,
            "records_compared": records,
            "chains_compared": chains_compared,
            "equal": true,
        })
    );
    Ok(())
}
