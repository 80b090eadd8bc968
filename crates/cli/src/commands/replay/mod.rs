//! `tradestream replay <worker>` and `tradestream verify` (docs/design.md §4, docs/replay.md).
//!
//! A replay re-runs one worker over its input, from the beginning, from given offsets or from a
//! time, in a consumer group of its own (`tradestream-replay-<worker>-<suffix>`), into shadow
//! outputs: topics `<topic>.<suffix>` and, for the store workers, a shadow store. It stops once
//! it has consumed everything that was there when it started. It never writes to a live topic
//! or the live store: the suffix is required, shadow topics must be empty and the shadow store
//! empty and not the live one (unless `--force`).
//!
//! `verify --suffix S` compares live and shadow topics record by record (values; headers name
//! the worker and may differ) and, given `--store` and `--shadow-store`, the stores table by
//! table. It prints the differences it finds (stderr) and one JSON summary line (stdout), and
//! exits 0 when equal, 1 when they differ, 2 on an error.
//!
//! ## Layout
//! - `start.rs`: `--from-offset` / `--from-timestamp` and the offsets they resolve to.
//! - `guards.rs`: shadow names and the checks that keep a replay off the live side.
//! - `cluster.rs`: metadata, watermarks, `offsets_for_times`, committed offsets.
//! - `progress.rs`: running a worker until its group has caught up, then stopping it cleanly.
//! - `matcher.rs`: `replay matcher`, seeded from a live snapshot when it starts mid-stream.
//! - `downstream.rs`: `replay trade-recorder | market-data | notifier` into a shadow store.
//! - `verify.rs`: `verify`'s arguments, topics compared record by record, the verdict.
//! - `tables.rs`: stores compared table by table ([`Store::dump`](tradestream_store::Store)).
//! - `diff.rs`: collecting and printing differences.

mod cluster;
mod diff;
mod downstream;
mod guards;
mod matcher;
mod progress;
mod start;
mod tables;
mod verify;

use std::path::PathBuf;
use std::time::Duration;

pub use downstream::{MarketDataReplayArgs, StoreReplayArgs};
pub use matcher::MatcherReplayArgs;
pub use verify::{Verdict, VerifyArgs, verify};

use super::kafka::KafkaArgs;
use start::StartArgs;

/// What `replay` re-runs.
#[derive(Debug, clap::Subcommand)]
pub enum ReplayCommand {
    /// The matcher: orders → executions.S, trades.S, market-data.S (+ snapshots, dead letters).
    Matcher(MatcherReplayArgs),
    /// The trade recorder: trades + executions → a shadow store (+ dead-letters.S).
    TradeRecorder(StoreReplayArgs),
    /// Market data: trades + market-data → a shadow store and candles.S (+ dead-letters.S).
    MarketData(MarketDataReplayArgs),
    /// The notifier: executions → a shadow store and notifications.S (+ dead-letters.S).
    Notifier(StoreReplayArgs),
}

/// What every replay takes.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Shadow suffix (e.g. `r1`): outputs go to `<topic>.<suffix>`, never to a live topic.
    #[arg(long)]
    pub suffix: String,
    #[command(flatten)]
    pub start: StartArgs,
    /// Write into shadow topics (and a shadow store) that already hold data.
    #[arg(long)]
    pub force: bool,
    /// Topic layout: the shadow topics copy the live ones' settings.
    #[arg(long, default_value = "topics.yaml")]
    pub topics: PathBuf,
    /// Bound of each request to the cluster, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Give up when the replay's group has not moved for this many seconds.
    #[arg(long, default_value_t = 120)]
    pub stall_secs: u64,
    /// Most input records per round of the worker's loop.
    #[arg(long, default_value_t = tradestream_runtime::LoopConfig::DEFAULT_MAX_BATCH)]
    pub max_batch: usize,
}

impl ReplayArgs {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    fn stall(&self) -> Duration {
        Duration::from_secs(self.stall_secs.max(1))
    }
}

/// Runs `replay …`.
pub fn run(cmd: &ReplayCommand) -> anyhow::Result<()> {
    match cmd {
        ReplayCommand::Matcher(args) => matcher::replay(args),
        ReplayCommand::TradeRecorder(args) => downstream::trade_recorder(args),
        ReplayCommand::MarketData(args) => downstream::market_data(args),
        ReplayCommand::Notifier(args) => downstream::notifier(args),
    }
}

/// Records (or orders) per second, rounded.
fn per_second(records: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0;
    }
    (records as f64 / secs).round() as u64
}

/// Seconds with one decimal.
fn seconds(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 10.0).round() / 10.0
}
