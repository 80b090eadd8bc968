//! `replay trade-recorder | market-data | notifier`: a store worker re-run into a shadow store.
//!
//! The worker reads the live topics (or, with `--input-suffix`, the shadow outputs of a matcher
//! replay), writes its rows to `--shadow-store` and its topic outputs to `<topic>.<suffix>`.
//! A store worker resumes from the offsets in its store, so a replay from given offsets writes
//! them into the fresh shadow store for the replay's group before it starts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use tradestream_config::topics::TopicLayout;
use tradestream_market_data::{MarketDataConfig, MarketDataStats};
use tradestream_notifier::{NotifierConfig, NotifierStats};
use tradestream_runtime::{KafkaConfig, LoopConfig, Shutdown};
use tradestream_store::{Batch, OffsetRow, Store, StoreUri};
use tradestream_trade_recorder::{TradeRecorderConfig, TradeRecorderStats};

use super::cluster::Cluster;
use super::guards::{check_suffix, not_live, replay_group, shadow, shadows_empty, store_fresh};
use super::progress::{Targets, run_until_caught_up, targets_for};
use super::{ReplayArgs, per_second, seconds};
use crate::commands::query::StoreArgs;
use crate::commands::topics;

/// Arguments of `replay trade-recorder` and `replay notifier`.
#[derive(Debug, clap::Args)]
pub struct StoreReplayArgs {
    #[command(flatten)]
    pub replay: ReplayArgs,
    /// The store the replay writes: another SQLite file (`sqlite:PATH`) or keyspace
    /// (`scylla://host:port/keyspace`, created beforehand with `store migrate`). Never the live
    /// one (`--store`).
    #[arg(long, value_name = "URI")]
    pub shadow_store: StoreUri,
    /// The live store, named only so that the replay can refuse to write into it.
    #[command(flatten)]
    pub live: StoreArgs,
    /// Read the inputs from `<topic>.<input-suffix>` (the shadow outputs of a matcher replay)
    /// instead of the live topics.
    #[arg(long)]
    pub input_suffix: Option<String>,
}

/// Arguments of `replay market-data`.
#[derive(Debug, clap::Args)]
pub struct MarketDataReplayArgs {
    #[command(flatten)]
    pub worker: StoreReplayArgs,
    /// As `run market-data --allowed-lateness-ms` (the live worker's, to compare).
    #[arg(long, default_value_t = tradestream_market_data::candles::DEFAULT_ALLOWED_LATENESS_MS)]
    pub allowed_lateness_ms: i64,
    /// As `run market-data --max-watermark-lead-ms`.
    #[arg(long, default_value_t = tradestream_market_data::candles::DEFAULT_MAX_WATERMARK_LEAD_MS)]
    pub max_watermark_lead_ms: i64,
}

/// Everything a store worker's replay has checked and set up before the worker starts.
struct Prepared {
    cluster: Cluster,
    group: String,
    run: LoopConfig,
    store: Box<dyn Store>,
    targets: Targets,
    starts: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// The input topic `live` as this replay reads it.
fn input(args: &StoreReplayArgs, live: &str) -> String {
    match &args.input_suffix {
        Some(s) => shadow(live, s),
        None => live.to_owned(),
    }
}

/// Checks the arguments and the shadows, creates the shadow topics, opens the shadow store and
/// seeds its offsets. `inputs` and `outputs` are live topic names (dead letters included).
fn prepare(
    args: &StoreReplayArgs,
    worker: &str,
    inputs: &[&str],
    outputs: &[&str],
) -> anyhow::Result<Prepared> {
    let r = &args.replay;
    check_suffix("--suffix", &r.suffix)?;
    if let Some(s) = &args.input_suffix {
        check_suffix("--input-suffix", s)?;
    }
    not_live(&args.live.store, &args.shadow_store)?;
    let kafka: KafkaConfig = r.kafka.config()?;
    let layout = topics::checked_layout(&r.topics)?;
    let cluster = Cluster::connect(&kafka, r.timeout())?;
    let shadows: Vec<String> = outputs.iter().map(|t| shadow(t, &r.suffix)).collect();
    shadows_empty(&cluster, &shadows, r.force)?;

    let mut store = tradestream_store::open(&args.shadow_store)
        .with_context(|| format!("opening the shadow store {}", args.shadow_store))?;
    store_fresh(store.as_mut(), &args.shadow_store, worker, r.force)?;

    let specs = outputs
        .iter()
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

    let group = replay_group(worker, &r.suffix);
    let (mut targets, mut starts) = (Targets::new(), BTreeMap::new());
    let mut seed = Batch::default();
    for live in inputs {
        let topic = input(args, live);
        let at = r.start.resolve(&cluster, &topic)?;
        targets_for(&cluster, &topic, &at, &mut targets)?;
        seed.offsets.extend(
            at.iter()
                .filter(|(_, o)| **o > 0)
                .map(|(p, o)| OffsetRow::at(&group, &topic, *p, *o)),
        );
        starts.insert(topic, at);
    }
    if !seed.offsets.is_empty() {
        store
            .write(&seed)
            .context("writing the start offsets into the shadow store")?;
    }

    let mut run = LoopConfig::new(kafka, &group);
    run.dead_letters = shadow(LoopConfig::DEFAULT_DEAD_LETTERS, &r.suffix);
    run.max_batch = r.max_batch.max(1);
    eprintln!(
        "replaying {worker} from {starts:?} into {} and *.{} in group {group}",
        args.shadow_store, r.suffix
    );
    Ok(Prepared {
        cluster,
        group,
        run,
        store,
        targets,
        starts,
    })
}

/// Runs the prepared worker (`work` gets the store and the shutdown flag) and prints the
/// summary line with `records_in`.
fn execute(
    args: &StoreReplayArgs,
    worker: &str,
    prepared: Prepared,
    records_in: Arc<AtomicU64>,
    work: impl FnOnce(Box<dyn Store>, Shutdown) -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<()> {
    let Prepared {
        cluster,
        group,
        store,
        targets,
        starts,
        ..
    } = prepared;
    let elapsed = if targets.is_empty() {
        Duration::ZERO
    } else {
        run_until_caught_up(
            &cluster,
            &group,
            &targets,
            args.replay.stall(),
            move |shutdown| work(store, shutdown),
        )?
    };
    let records = records_in.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "worker": worker,
            "suffix": args.replay.suffix,
            "group": group,
            "shadow_store": args.shadow_store.to_string(),
            "starts": starts,
            "records": records,
            "seconds": seconds(elapsed),
            "records_per_sec": per_second(records, elapsed),
        })
    );
    Ok(())
}

/// Runs `replay trade-recorder`.
pub fn trade_recorder(args: &StoreReplayArgs) -> anyhow::Result<()> {
    let live = TradeRecorderConfig::new(KafkaConfig::new(""));
    let p = prepare(
        args,
        "trade-recorder",
        &[&live.trades, &live.executions],
        &[LoopConfig::DEFAULT_DEAD_LETTERS],
    )?;
    let mut cfg = TradeRecorderConfig::with_loop(p.run.clone());
    cfg.worker = format!("trade-recorder-replay-{}", args.replay.suffix);
    cfg.trades = input(args, &live.trades);
    cfg.executions = input(args, &live.executions);
    cfg.check()?;
    let stats = Arc::new(TradeRecorderStats::default());
    let counter = Arc::new(AtomicU64::new(0));
    let (s, c) = (stats.clone(), counter.clone());
    execute(
        args,
        "trade-recorder",
        p,
        counter,
        move |store, shutdown| {
            let result = tradestream_trade_recorder::run(cfg, store, &shutdown, s.clone());
            c.store(s.records_in.load(Ordering::Relaxed), Ordering::Relaxed);
            Ok(result?)
        },
    )
}

/// Runs `replay market-data`.
pub fn market_data(args: &MarketDataReplayArgs) -> anyhow::Result<()> {
    let w = &args.worker;
    let live = MarketDataConfig::new(KafkaConfig::new(""));
    let p = prepare(
        w,
        "market-data",
        &[&live.trades, &live.market_data],
        &[&live.candles, LoopConfig::DEFAULT_DEAD_LETTERS],
    )?;
    let mut cfg = MarketDataConfig::with_loop(p.run.clone());
    cfg.worker = format!("market-data-replay-{}", w.replay.suffix);
    cfg.trades = input(w, &live.trades);
    cfg.market_data = input(w, &live.market_data);
    cfg.candles = shadow(&live.candles, &w.replay.suffix);
    cfg.allowed_lateness_ms = args.allowed_lateness_ms;
    cfg.max_watermark_lead_ms = args.max_watermark_lead_ms;
    cfg.check()?;
    let stats = Arc::new(MarketDataStats::default());
    let counter = Arc::new(AtomicU64::new(0));
    let (s, c) = (stats.clone(), counter.clone());
    execute(w, "market-data", p, counter, move |store, shutdown| {
        let result = tradestream_market_data::run(cfg, store, &shutdown, s.clone());
        c.store(s.records_in.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(result?)
    })
}

/// Runs `replay notifier`.
pub fn notifier(args: &StoreReplayArgs) -> anyhow::Result<()> {
    let live = NotifierConfig::new(KafkaConfig::new(""));
    let p = prepare(
        args,
        "notifier",
        &[&live.executions],
        &[&live.notifications, LoopConfig::DEFAULT_DEAD_LETTERS],
    )?;
    let mut cfg = NotifierConfig::with_loop(p.run.clone());
    cfg.worker = format!("notifier-replay-{}", args.replay.suffix);
    cfg.executions = input(args, &live.executions);
    cfg.notifications = shadow(&live.notifications, &args.replay.suffix);
    cfg.check()?;
    let stats = Arc::new(NotifierStats::default());
    let counter = Arc::new(AtomicU64::new(0));
    let (s, c) = (stats.clone(), counter.clone());
    execute(args, "notifier", p, counter, move |store, shutdown| {
        let result = tradestream_notifier::run(cfg, store, &shutdown, s.clone());
        c.store(s.records_in.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(result?)
    })
}
