//! `replay matcher`: orders → shadow executions, trades, market data, snapshots, dead letters.
//!
//! From the beginning the matcher needs no state. From an offset (or a time) it needs the
//! engine state at that point: the replay copies the newest live snapshot at or before the
//! start of each partition into `matcher-snapshots.<suffix>`, renamed to the replay's group and
//! marked with the header [`SEED_HEADER`], and the matcher restores from it as after a restart.
//! So each partition starts right after the snapshot it was seeded with, at or before the
//! offset asked for; without such a snapshot it starts at the beginning of the partition.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tradestream_codec::avro::{self, SnapshotMeta};
use tradestream_config::topics::TopicLayout;
use tradestream_matcher::{MatcherConfig, MatcherStats, OutputFormat};
use tradestream_runtime::{KafkaConfig, headers};

use super::cluster::Cluster;
use super::guards::{check_suffix, replay_group, shadow, shadows_empty};
use super::progress::{Targets, run_until_caught_up, targets_for};
use super::{ReplayArgs, per_second, seconds};
use crate::commands::run::{ClockSkewArgs, OutputFormatArg};
use crate::commands::topics;

/// Header on the snapshot chunks a replay was seeded with: `<live group>@<input offset>`.
pub const SEED_HEADER: &str = "replay-seed";

/// Arguments of `replay matcher`.
#[derive(Debug, clap::Args)]
pub struct MatcherReplayArgs {
    #[command(flatten)]
    pub replay: ReplayArgs,
    /// Instruments file: the live matcher's for a faithful replay, another for a what-if.
    #[arg(long, default_value = "instruments.yaml")]
    pub instruments: PathBuf,
    /// The live matcher's consumer group, whose snapshots seed a replay from an offset.
    #[arg(long, default_value = MatcherConfig::DEFAULT_GROUP)]
    pub group: String,
    /// Encoding of the output records (the live matcher's, for outputs to compare).
    #[arg(long, value_enum, default_value_t = OutputFormatArg::Avro)]
    pub output_format: OutputFormatArg,
    /// Snapshot a shadow partition after this many input records.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// Must be the live matcher's, like the instruments.
    #[command(flatten)]
    pub clock: ClockSkewArgs,
}

/// The matcher's topics that get a shadow, as (field of the config, live name).
fn shadow_topics(cfg: &MatcherConfig) -> [&str; 5] {
    [
        &cfg.executions,
        &cfg.trades,
        &cfg.market_data,
        &cfg.snapshots,
        &cfg.run.dead_letters,
    ]
}

/// Runs `replay matcher`.
pub fn replay(args: &MatcherReplayArgs) -> anyhow::Result<()> {
    let r = &args.replay;
    check_suffix("--suffix", &r.suffix)?;
    let kafka = r.kafka.config()?;
    let layout = topics::checked_layout(&r.topics)?;
    let instruments = tradestream_config::load_instruments(&args.instruments)?;
    let cluster = Cluster::connect(&kafka, r.timeout())?;

    let mut cfg = MatcherConfig::new(kafka.clone(), instruments);
    cfg.max_clock_skew = args.clock.max_clock_skew();
    cfg.snapshot_every_records = args.snapshot_every.max(1);
    cfg.format = match args.output_format {
        OutputFormatArg::Avro => OutputFormat::Avro,
        OutputFormatArg::Json => OutputFormat::Json,
    };
    let shadows: Vec<String> = shadow_topics(&cfg)
        .iter()
        .map(|t| shadow(t, &r.suffix))
        .collect();
    shadows_empty(&cluster, &shadows, r.force)?;
    let asked = r.start.resolve(&cluster, &cfg.orders)?;

    // Shadow topics with the live topics' settings.
    let specs = shadow_topics(&cfg)
        .into_iter()
        .map(|t| {
            let mut spec = layout
                .get(t)
                .with_context(|| format!("topic {t} is not in {}", r.topics.display()))?
                .clone();
            spec.name = shadow(t, &r.suffix);
            Ok(spec)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    tradestream_runtime::topics::apply(&TopicLayout::new(specs), &kafka)?;

    let group = replay_group("matcher", &r.suffix);
    let shadow_snapshots = shadow(&cfg.snapshots, &r.suffix);
    let mut starts = BTreeMap::new();
    let mut seeds = BTreeMap::new();
    for (p, at) in &asked {
        let seeded = if *at == 0 {
            None
        } else if r.force && has_snapshot(&cluster, &shadow_snapshots, *p, &group)? {
            // An earlier replay with this suffix left a snapshot: the matcher resumes from it.
            None
        } else {
            let seed = newest_snapshot_before(&cluster, &cfg.snapshots, *p, &args.group, *at)?;
            if let Some(chunks) = &seed {
                write_seed(
                    &kafka,
                    &shadow_snapshots,
                    *p,
                    &group,
                    &args.group,
                    chunks,
                    r.timeout(),
                )?;
            } else {
                tracing::warn!(
                    partition = p,
                    offset = at,
                    live_group = %args.group,
                    "no live snapshot at or before the start offset: the partition is replayed from its beginning"
                );
            }
            seed.and_then(|c| c.first().map(|m| m.input_offset))
        };
        if let Some(offset) = seeded {
            seeds.insert(*p, offset);
        }
        starts.insert(*p, seeded.map_or(0, |o| o + 1));
    }
    let mut targets = Targets::new();
    targets_for(&cluster, &cfg.orders, &starts, &mut targets)?;

    cfg.run.group.clone_from(&group);
    cfg.run.max_batch = r.max_batch.max(1);
    cfg.worker = format!("matcher-replay-{}", r.suffix);
    cfg.executions = shadow(&cfg.executions, &r.suffix);
    cfg.trades = shadow(&cfg.trades, &r.suffix);
    cfg.market_data = shadow(&cfg.market_data, &r.suffix);
    cfg.snapshots = shadow_snapshots;
    cfg.run.dead_letters = shadow(&cfg.run.dead_letters, &r.suffix);
    eprintln!(
        "replaying orders from {starts:?} (asked {asked:?}; seeded from live snapshots at {seeds:?}) \
         into *.{} in group {group}",
        r.suffix
    );
    let stats = Arc::new(MatcherStats::default());
    let elapsed = if targets.is_empty() {
        Duration::ZERO
    } else {
        let stats = stats.clone();
        run_until_caught_up(&cluster, &group, &targets, r.stall(), move |shutdown| {
            Ok(tradestream_matcher::run(cfg, &shutdown, stats)?)
        })?
    };
    let orders = stats.records_in.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "worker": "matcher",
            "suffix": r.suffix,
            "group": group,
            "starts": starts,
            "seeded_from": seeds,
            "orders": orders,
            "records_out": stats.records_out.load(Ordering::Relaxed),
            "dead_letters": stats.dead_letters.load(Ordering::Relaxed),
            "seconds": seconds(elapsed),
            "orders_per_sec": per_second(orders, elapsed),
        })
    );
    Ok(())
}

/// The chunks of the newest complete snapshot of `group` in partition `p` of `topic` that
/// covers input before `before` (its input offset is below it), in chunk order.
fn newest_snapshot_before(
    cluster: &Cluster,
    topic: &str,
    p: i32,
    group: &str,
    before: i64,
) -> anyhow::Result<Option<Vec<SnapshotMeta>>> {
    if !cluster.topics()?.contains_key(topic) {
        return Ok(None);
    }
    let mut best: Option<Vec<SnapshotMeta>> = None;
    let mut assembling: Vec<SnapshotMeta> = Vec::new();
    cluster.reader.read_to_end(topic, p, 0, |m| {
        let Some(c) = m.payload().and_then(|b| avro::decode_snapshot(b).ok()) else {
            return;
        };
        if c.group != group || c.partition != p || c.chunk >= c.chunks {
            return;
        }
        let continues = assembling
            .last()
            .is_some_and(|prev| prev.input_offset == c.input_offset && prev.chunk + 1 == c.chunk);
        if c.chunk == 0 {
            assembling = vec![c];
        } else if continues {
            assembling.push(c);
        } else {
            assembling.clear();
        }
        if let Some(last) = assembling.last()
            && last.chunk + 1 == last.chunks
        {
            let complete = std::mem::take(&mut assembling);
            let offset = complete[0].input_offset;
            let newer = best.as_ref().is_none_or(|b| b[0].input_offset <= offset);
            if offset < before && newer {
                best = Some(complete);
            }
        }
    })?;
    Ok(best)
}

/// Whether partition `p` of `topic` holds a snapshot chunk of `group`.
fn has_snapshot(cluster: &Cluster, topic: &str, p: i32, group: &str) -> anyhow::Result<bool> {
    let mut found = false;
    cluster.reader.read_to_end(topic, p, 0, |m| {
        found |= m
            .payload()
            .and_then(|b| avro::decode_snapshot(b).ok())
            .is_some_and(|c| c.group == group);
    })?;
    Ok(found)
}

/// Writes `chunks` (a live snapshot) to partition `p` of the shadow snapshot topic as a
/// snapshot of the replay's `group`, keyed like the matcher's own, marked [`SEED_HEADER`].
/// Its dead-letter end is 0: the shadow dead-letter topic starts empty.
fn write_seed(
    kafka: &KafkaConfig,
    topic: &str,
    p: i32,
    group: &str,
    live_group: &str,
    chunks: &[SnapshotMeta],
    timeout: Duration,
) -> anyhow::Result<()> {
    let producer: BaseProducer = kafka.producer().create()?;
    for chunk in chunks {
        let meta = SnapshotMeta {
            group: group.to_owned(),
            dead_letter_end: 0,
            ..chunk.clone()
        };
        let value = avro::encode_snapshot(&meta, avro::Framing::SingleObject);
        let key = format!("{group}/{p}/{}/{}", meta.input_offset, meta.chunk);
        let seed = format!("{live_group}@{}", meta.input_offset);
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(p)
                    .key(key.as_bytes())
                    .payload(&value)
                    .headers(headers::with_text(&[(SEED_HEADER, &seed)])),
            )
            .map_err(|(e, _)| e)
            .with_context(|| format!("writing the seed snapshot to {topic}/{p}"))?;
    }
    producer
        .flush(timeout)
        .with_context(|| format!("writing the seed snapshot to {topic}/{p}"))?;
    Ok(())
}
