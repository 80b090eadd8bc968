//! `tradestream verify`: live against shadow, topic by topic and record by record (values;
//! headers name the worker and may differ), and store against store, table by table.
//!
//! For the matcher's outputs the shadow may cover part of the live history: a replay from an
//! offset starts after the snapshot it was seeded with and ends at its last snapshot (taken on
//! its clean stop), both in `matcher-snapshots.<suffix>`. Live records made from input outside
//! that range (their `source-offset` header) are not compared; every shadow record is. The
//! downstream workers' topics are compared source partition by source partition, duplicates
//! counted once (`canonical`).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;

use anyhow::{Context as _, bail};
use rdkafka::message::{Headers as _, Message};
use tradestream_codec::avro;
use tradestream_matcher::MatcherConfig;
use tradestream_runtime::headers;
use tradestream_store::StoreUri;

use super::cluster::Cluster;
use super::diff::{Diffs, show_value};
use super::guards::{check_suffix, replay_group, shadow};
use super::matcher::SEED_HEADER;
use super::tables;
use crate::commands::kafka::KafkaArgs;

/// The matcher's output topics: compared within the range the replay covers.
const MATCHER_OUTPUTS: [&str; 3] = ["executions", "trades", "market-data"];
/// What `verify` compares by default, where the shadow exists (dead letters are left out: the
/// live topic holds every worker's).
const DEFAULT_TOPICS: [&str; 5] = [
    "executions",
    "trades",
    "market-data",
    "candles",
    "notifications",
];

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Shadow suffix of a finished replay: `<topic>.<suffix>` is compared with `<topic>`.
    #[arg(long)]
    pub suffix: Option<String>,
    /// Topics to compare (comma-separated live names; default: executions, trades,
    /// market-data, candles and notifications, those with a shadow).
    #[arg(long, value_delimiter = ',')]
    pub topics: Vec<String>,
    /// The live store, compared with `--shadow-store` table by table.
    #[arg(long, env = "TRADESTREAM_STORE", value_name = "URI")]
    pub store: Option<StoreUri>,
    /// The shadow store of a store worker's replay.
    #[arg(long, value_name = "URI")]
    pub shadow_store: Option<StoreUri>,
    /// Tables to compare (default: those of the workers replayed into the shadow store, as its
    /// consumer offsets name them; else every table but the consumer offsets).
    #[arg(long, value_delimiter = ',')]
    pub tables: Vec<String>,
    /// The live matcher's consumer group (its snapshots carry the output hash chain).
    #[arg(long, default_value = MatcherConfig::DEFAULT_GROUP)]
    pub group: String,
    /// Print at most this many differences (all are counted).
    #[arg(long, default_value_t = 20)]
    pub max_diffs: usize,
    /// Bound of each request to the cluster, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
}

/// What `verify` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Live and shadow are equal where compared (exit 0).
    Equal,
    /// They differ (exit 1).
    Differ,
}

/// Runs `verify`; errors (bad arguments, a broker or store out of reach, a missing shadow)
/// are not a verdict.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<Verdict> {
    if let Some(s) = &args.suffix {
        check_suffix("--suffix", s)?;
    }
    if args.suffix.is_none() && args.shadow_store.is_none() {
        bail!("nothing to compare: give --suffix (topics) and/or --shadow-store (tables)");
    }
    if !args.topics.is_empty() && args.suffix.is_none() {
        bail!("--topics needs --suffix");
    }
    let mut diffs = Diffs::new(args.max_diffs);
    let mut summary = serde_json::Map::new();
    if let Some(suffix) = &args.suffix {
        summary.insert("suffix".into(), suffix.clone().into());
        let kafka = args.kafka.config()?;
        let cluster = Cluster::connect(&kafka, Duration::from_secs(args.timeout_secs.max(1)))?;
        let report = compare_topics(&cluster, args, suffix, &mut diffs)?;
        summary.extend(report);
    }
    if let Some(shadow_store) = &args.shadow_store {
        let Some(live) = &args.store else {
            bail!("--shadow-store needs the live store to compare with: --store URI");
        };
        let report = tables::compare(live, shadow_store, &args.tables, &mut diffs)?;
        summary.extend(report);
    }
    let verdict = if diffs.total() == 0 {
        Verdict::Equal
    } else {
        Verdict::Differ
    };
    summary.insert("equal".into(), (verdict == Verdict::Equal).into());
    summary.insert("differences".into(), diffs.total().into());
    summary.insert("differences_by".into(), serde_json::json!(diffs.counts()));
    println!("{}", serde_json::Value::Object(summary));
    if verdict == Verdict::Differ {
        eprintln!(
            "live and shadow differ: {} difference(s) ({})",
            diffs.total(),
            diffs
                .counts()
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(verdict)
}

/// One record as compared: where it is, its value, and its provenance.
struct Rec {
    offset: i64,
    value: Vec<u8>,
    source_partition: Option<i64>,
    source_offset: Option<i64>,
    seq: Option<i64>,
}

fn read(cluster: &Cluster, topic: &str, p: i32) -> anyhow::Result<Vec<Rec>> {
    let mut out = Vec::new();
    cluster
        .reader
        .read_to_end(topic, p, 0, |m| {
            let h = m.headers();
            out.push(Rec {
                offset: m.offset(),
                value: m.payload().unwrap_or_default().to_vec(),
                source_partition: h.and_then(|h| headers::number(h, headers::SOURCE_PARTITION)),
                source_offset: h.and_then(|h| headers::number(h, headers::SOURCE_OFFSET)),
                seq: h.and_then(|h| headers::number(h, headers::SEQ)),
            });
        })
        .with_context(|| format!("reading {topic}/{p}"))?;
    Ok(out)
}

/// What the shadow snapshots of a matcher replay say about one partition.
#[derive(Debug, Default)]
struct Coverage {
    /// First input offset replayed (after the seed snapshot; 0 without one).
    from: i64,
    /// Last input offset replayed (the replay's newest snapshot), if known.
    to: Option<i64>,
    /// The output hash chain of the replay's own snapshots, by input offset.
    chains: BTreeMap<i64, u64>,
}

impl Coverage {
    fn covers(&self, source_offset: Option<i64>) -> bool {
        match source_offset {
            Some(o) => o >= self.from && self.to.is_none_or(|to| o <= to),
            None => self.from == 0 && self.to.is_none(),
        }
    }
}

/// The coverage of a matcher replay in partition `p`, from `snapshots` (its shadow snapshot
/// topic), for the replay's `group`.
fn coverage(cluster: &Cluster, snapshots: &str, p: i32, group: &str) -> anyhow::Result<Coverage> {
    let mut c = Coverage::default();
    cluster.reader.read_to_end(snapshots, p, 0, |m| {
        let Some(meta) = m.payload().and_then(|b| avro::decode_snapshot(b).ok()) else {
            return;
        };
        if meta.group != group || meta.partition != p {
            return;
        }
        let seed = m
            .headers()
            .is_some_and(|h| h.iter().any(|x| x.key == SEED_HEADER));
        if seed {
            c.from = c.from.max(meta.input_offset + 1);
        } else {
            c.to = Some(c.to.map_or(meta.input_offset, |t| t.max(meta.input_offset)));
            if meta.chunk == 0 {
                c.chains.insert(meta.input_offset, meta.output_hash);
            }
        }
    })?;
    if c.to.is_none() && c.from > 0 {
        // Seeded, and nothing replayed after the seed.
        c.to = Some(c.from - 1);
    }
    Ok(c)
}

/// Every live snapshot's chain of `group` in partition `p`, by input offset.
fn live_chains(
    cluster: &Cluster,
    topic: &str,
    p: i32,
    group: &str,
) -> anyhow::Result<BTreeMap<i64, u64>> {
    let mut out = BTreeMap::new();
    cluster.reader.read_to_end(topic, p, 0, |m| {
        if let Some(meta) = m.payload().and_then(|b| avro::decode_snapshot(b).ok())
            && meta.group == group
            && meta.chunk == 0
        {
            out.insert(meta.input_offset, meta.output_hash);
        }
    })?;
    Ok(out)
}

/// Compares the topics; returns the summary's fields.
fn compare_topics(
    cluster: &Cluster,
    args: &VerifyArgs,
    suffix: &str,
    diffs: &mut Diffs,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let existing = cluster.topics()?;
    let topics: Vec<String> = if args.topics.is_empty() {
        DEFAULT_TOPICS
            .iter()
            .filter(|t| existing.contains_key(&shadow(t, suffix)))
            .map(|t| (*t).to_owned())
            .collect()
    } else {
        args.topics.clone()
    };
    for t in &topics {
        if !existing.contains_key(t) {
            bail!("topic {t} does not exist");
        }
        if !existing.contains_key(&shadow(t, suffix)) {
            bail!(
                "shadow topic {} does not exist: no replay with --suffix {suffix} wrote {t}",
                shadow(t, suffix)
            );
        }
    }
    if topics.is_empty() && args.shadow_store.is_none() {
        bail!("no shadow topics with --suffix {suffix} (none of {DEFAULT_TOPICS:?} has a shadow)");
    }
    let group = replay_group("matcher", suffix);
    let snapshots = shadow("matcher-snapshots", suffix);
    let has_snapshots = existing.contains_key(&snapshots);
    let mut coverages: BTreeMap<i32, Coverage> = BTreeMap::new();
    let (mut records, mut chains_compared) = (0u64, 0u64);
    for t in &topics {
        let shadow_t = shadow(t, suffix);
        let (live_n, shadow_n) = (existing[t], existing[&shadow_t]);
        if live_n != shadow_n {
            diffs.add(&format!("topic {t}"), || {
                format!("{t}: {live_n} partitions live, {shadow_n} in {shadow_t}")
            });
        }
        let matcher_output = MATCHER_OUTPUTS.contains(&t.as_str());
        for p in 0..live_n.min(shadow_n) {
            let live = read(cluster, t, p)?;
            let replayed = read(cluster, &shadow_t, p)?;
            let (live, replayed) = if matcher_output {
                (live, replayed)
            } else {
                (canonical(live), canonical(replayed))
            };
            let live: Vec<Rec> = if matcher_output && has_snapshots {
                if let Entry::Vacant(e) = coverages.entry(p) {
                    e.insert(coverage(cluster, &snapshots, p, &group)?);
                }
                let c = &coverages[&p];
                live.into_iter()
                    .filter(|r| c.covers(r.source_offset))
                    .collect()
            } else {
                live
            };
            records += live.len() as u64;
            compare_partition(t, &shadow_t, p, &live, &replayed, diffs);
        }
    }
    // The output hash chains at the input offsets both sides snapshotted.
    if has_snapshots && existing.contains_key("matcher-snapshots") {
        let partitions = existing[&snapshots].min(existing["matcher-snapshots"]);
        for p in 0..partitions {
            if let Entry::Vacant(e) = coverages.entry(p) {
                e.insert(coverage(cluster, &snapshots, p, &group)?);
            }
            let live = live_chains(cluster, "matcher-snapshots", p, &args.group)?;
            for (offset, hash) in &coverages[&p].chains {
                if let Some(l) = live.get(offset) {
                    chains_compared += 1;
                    if l != hash {
                        diffs.add("output hash chain", || {
                            format!("partition {p}: the output hash chain after input offset {offset} is {l:#x} live, {hash:#x} in the replay")
                        });
                    }
                }
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("topics".into(), serde_json::json!(topics));
    out.insert("records_compared".into(), records.into());
    out.insert("chains_compared".into(), chains_compared.into());
    Ok(out)
}

/// A downstream worker's topic in a comparable order. `candles` (keyed by symbol) and
/// `notifications` (keyed by account) are at-least-once, and a notifications partition
/// interleaves records of several source partitions as they happened to be processed: so the
/// same record sent again (the same bytes) counts once, and records are compared source
/// partition by source partition, each in its order.
fn canonical(records: Vec<Rec>) -> Vec<Rec> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<Rec> = records
        .into_iter()
        .filter(|r| seen.insert(r.value.clone()))
        .collect();
    out.sort_by_key(|r| r.source_partition);
    out
}

/// Compares one partition record by record, in order.
fn compare_partition(
    topic: &str,
    shadow_topic: &str,
    p: i32,
    live: &[Rec],
    replayed: &[Rec],
    diffs: &mut Diffs,
) {
    let place = format!("topic {topic}");
    let seq = |r: &Rec| r.seq.map_or(String::new(), |s| format!(" (seq {s})"));
    for i in 0..live.len().max(replayed.len()) {
        match (live.get(i), replayed.get(i)) {
            (Some(l), Some(s)) if l.value != s.value => diffs.add(&place, || {
                format!(
                    "{topic}/{p}: live offset {}{} ≠ {shadow_topic} offset {}{}\n  live:   {}\n  shadow: {}",
                    l.offset,
                    seq(l),
                    s.offset,
                    seq(s),
                    show_value(&l.value),
                    show_value(&s.value)
                )
            }),
            (Some(l), None) => diffs.add(&place, || {
                format!(
                    "{topic}/{p}: live offset {}{} is missing from {shadow_topic}: {}",
                    l.offset,
                    seq(l),
                    show_value(&l.value)
                )
            }),
            (None, Some(s)) => diffs.add(&place, || {
                format!(
                    "{topic}/{p}: {shadow_topic} offset {}{} has no live counterpart: {}",
                    s.offset,
                    seq(s),
                    show_value(&s.value)
                )
            }),
            _ => {}
        }
    }
}
