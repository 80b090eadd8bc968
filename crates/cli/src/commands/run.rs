//! `tradestream run <worker>`: one worker of the pipeline, until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tradestream_cache::{CacheConfig, CacheStats, KeyLayout, RedisUrl};
use tradestream_market_data::{MarketDataConfig, MarketDataStats};
use tradestream_matcher::{MatcherConfig, MatcherStats, OutputFormat};
use tradestream_notifier::{NotifierConfig, NotifierStats};
use tradestream_runtime::{BrokerQuirks, Guarantee, LoopConfig, Stats};
use tradestream_trade_recorder::{TradeRecorderConfig, TradeRecorderStats};

use super::kafka::{KafkaArgs, shutdown_on_signals};
use super::query::StoreArgs;

/// The workers.
#[derive(Debug, clap::Subcommand)]
pub enum Worker {
    /// orders → executions, trades, market-data (+ snapshots, dead letters).
    Matcher(MatcherArgs),
    /// trades + executions → trades and order state in the store.
    TradeRecorder(StoreWorkerArgs),
    /// trades + market-data → candles (store and `candles` topic), top of book (store).
    MarketData(MarketDataArgs),
    /// executions → `notifications` topic (keyed by account) and the store.
    Notifier(StoreWorkerArgs),
    /// The HTTP gateway: signed order entry to `orders`, reads, health, metrics.
    Gateway(super::gateway::GatewayArgs),
    /// executions + trades + market-data + candles → the latest market state in Redis.
    Cache(CacheArgs),
}

/// Arguments of `run cache`.
#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    #[command(flatten)]
    pub run: LoopArgs,
    /// Redis URL (`redis://[:PASSWORD@]HOST:PORT[/DB]`). A URL with a password is accepted only
    /// from the environment or --redis-url-file, never from the command line.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// A file whose first line is the Redis URL (wins over --redis-url / REDIS_URL).
    #[arg(long, env = "REDIS_URL_FILE")]
    pub redis_url_file: Option<PathBuf>,
    /// Prefix of every key the cache writes.
    #[arg(long, default_value = tradestream_cache::keys::DEFAULT_PREFIX)]
    pub key_prefix: String,
    /// Trades kept per symbol.
    #[arg(long, default_value_t = 100)]
    pub trades_kept: usize,
    /// As `run market-data --allowed-lateness-ms` (the cache's open candles must match it).
    #[arg(long, default_value_t = tradestream_market_data::candles::DEFAULT_ALLOWED_LATENESS_MS)]
    pub allowed_lateness_ms: i64,
    /// As `run market-data --max-watermark-lead-ms`.
    #[arg(long, default_value_t = tradestream_market_data::candles::DEFAULT_MAX_WATERMARK_LEAD_MS)]
    pub max_watermark_lead_ms: i64,
}

impl CacheArgs {
    /// The Redis URL (see [`redis_url`]); the cache worker cannot run without one.
    fn redis_url(&self) -> anyhow::Result<RedisUrl> {
        redis_url(self.redis_url.as_deref(), self.redis_url_file.as_deref())?.ok_or_else(|| {
            anyhow::anyhow!("run cache needs Redis: set REDIS_URL or --redis-url-file")
        })
    }

    /// The worker configuration.
    pub fn config(&self) -> anyhow::Result<CacheConfig> {
        let run = self.run.config(CacheConfig::DEFAULT_GROUP)?;
        let mut cfg = CacheConfig::with_loop(run, self.redis_url()?);
        cfg.keys = KeyLayout::new(self.key_prefix.as_str());
        cfg.settings.trades_kept = self.trades_kept;
        cfg.allowed_lateness_ms = self.allowed_lateness_ms;
        cfg.max_watermark_lead_ms = self.max_watermark_lead_ms;
        Ok(cfg)
    }
}

/// A Redis URL from `--redis-url-file` (first line), else from `--redis-url` / `REDIS_URL`. A
/// URL with a password is taken only from the environment or the file, never from the command
/// line, where other users of the machine can read it.
pub fn redis_url(
    arg: Option<&str>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<Option<RedisUrl>> {
    use anyhow::Context as _;
    if let Some(path) = file {
        return RedisUrl::from_file(path)
            .map(Some)
            .with_context(|| format!("reading the Redis URL from {}", path.display()));
    }
    let Some(url) = arg else {
        return Ok(None);
    };
    let url = RedisUrl::new(url);
    let from_env = std::env::var("REDIS_URL").is_ok_and(|v| RedisUrl::new(v) == url);
    anyhow::ensure!(
        from_env || url.redacted() == url.as_str(),
        "a Redis URL with a password is not taken from the command line (other users can \
         read it there): put it in REDIS_URL or a file given to --redis-url-file"
    );
    Ok(Some(url))
}

/// Arguments of a worker that writes to the results store.
#[derive(Debug, clap::Args)]
pub struct StoreWorkerArgs {
    #[command(flatten)]
    pub run: LoopArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Arguments of `run market-data`.
#[derive(Debug, clap::Args)]
pub struct MarketDataArgs {
    #[command(flatten)]
    pub worker: StoreWorkerArgs,
    /// How far (ms) behind the newest trade a trade may be and still count in its 1s candle.
    #[arg(long, default_value_t = tradestream_market_data::candles::DEFAULT_ALLOWED_LATENESS_MS)]
    pub allowed_lateness_ms: i64,
    /// How far (ms) ahead of its record's broker timestamp a trade's time may move the
    /// watermark; a trade stamped further ahead moves it only that far (keep it well under
    /// --allowed-lateness-ms).
    #[arg(long, default_value_t = tradestream_market_data::candles::DEFAULT_MAX_WATERMARK_LEAD_MS)]
    pub max_watermark_lead_ms: i64,
}

impl StoreWorkerArgs {
    /// Opens the store and starts metrics (once the worker's configuration is known good).
    fn start(&self) -> anyhow::Result<Box<dyn tradestream_store::Store>> {
        let store = self.store.open()?;
        self.run.serve_metrics()?;
        Ok(store)
    }
}

/// Prints a worker's final counters as one JSON line (for scripts and tests).
fn print_stats(worker: &str, stats: &dyn Stats) {
    println!("{}", stats.to_json(worker));
}

/// Options of the consumer loop every worker shares (one [`LoopConfig`] each).
#[derive(Debug, clap::Args)]
pub struct LoopArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Consumer group (default: `tradestream-<worker>`). A store worker's group also names its
    /// offsets in the store; the matcher's prefixes its snapshot keys.
    #[arg(long)]
    pub group: Option<String>,
    /// Dead-letter topic.
    #[arg(long, default_value = LoopConfig::DEFAULT_DEAD_LETTERS)]
    pub dead_letters: String,
    /// Most input records per round of the loop, and between two store checkpoints.
    #[arg(long, default_value_t = LoopConfig::DEFAULT_MAX_BATCH)]
    pub max_batch: usize,
    /// Commit progress every this many milliseconds (under exactly-once: one transaction each).
    #[arg(long, default_value_t = 100)]
    pub commit_interval_ms: u64,
    /// Re-join the group after this many milliseconds without partitions (0: as the broker's
    /// quirks call for: 15 s on the embedded broker, which does not rebalance when a member's
    /// session expires; never on Kafka).
    #[arg(long, default_value_t = 0)]
    pub rejoin_when_idle_ms: u64,
    /// Which broker's quirks to work around: `auto` recognises the embedded broker by its
    /// cluster id; `none` is Apache Kafka's behaviour; `tansu` forces the embedded broker's.
    #[arg(long, value_enum, env = "TRADESTREAM_BROKER_QUIRKS", default_value_t = QuirksArg::Auto)]
    pub broker_quirks: QuirksArg,
    /// `effectively-once` works on any broker (readers deduplicate by seq); `exactly-once`
    /// commits each batch's outputs and input offsets in one Kafka transaction (Apache Kafka
    /// only; readers use read_committed). Only the matcher runs exactly-once: the store workers
    /// refuse it (their store write commits a batch; see docs/operations.md).
    #[arg(
        long,
        value_enum,
        env = "TRADESTREAM_PROCESSING_GUARANTEE",
        default_value_t = GuaranteeArg::EffectivelyOnce
    )]
    pub guarantee: GuaranteeArg,
    /// `transactional.id` under exactly-once (default: `<group>-<host>-<pid>`). Give each
    /// instance a stable one (e.g. its pod name) so that a restart aborts its predecessor's
    /// open transaction at once.
    #[arg(long, env = "TRADESTREAM_TRANSACTIONAL_ID")]
    pub transactional_id: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

impl LoopArgs {
    /// The loop settings, in consumer group `--group` or else `default_group`.
    pub fn config(&self, default_group: &str) -> anyhow::Result<LoopConfig> {
        let group = self.group.as_deref().unwrap_or(default_group);
        let mut run = LoopConfig::new(self.kafka.config()?, group);
        run.dead_letters.clone_from(&self.dead_letters);
        run.max_batch = self.max_batch;
        run.commit_interval = Duration::from_millis(self.commit_interval_ms.max(1));
        run.rejoin_when_idle =
            (self.rejoin_when_idle_ms > 0).then(|| Duration::from_millis(self.rejoin_when_idle_ms));
        run.quirks = self.broker_quirks.into();
        run.guarantee = self.guarantee.into();
        run.transactional_id.clone_from(&self.transactional_id);
        Ok(run)
    }

    /// Starts the metrics endpoint if one was asked for.
    pub fn serve_metrics(&self) -> anyhow::Result<()> {
        if let Some(addr) = self.metrics_listen {
            tradestream_runtime::metrics::serve(addr)?;
            tracing::info!(%addr, "serving metrics at /metrics");
        }
        Ok(())
    }
}

/// `--broker-quirks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuirksArg {
    /// Detect the embedded broker by its cluster id.
    Auto,
    /// Apache Kafka semantics: offset gaps are normal, expired members are evicted.
    None,
    /// The embedded broker's (tansu 0.6) workarounds: re-fetch on offset gaps, re-join when idle.
    Tansu,
}

impl From<QuirksArg> for BrokerQuirks {
    fn from(q: QuirksArg) -> Self {
        match q {
            QuirksArg::Auto => BrokerQuirks::Auto,
            QuirksArg::None => BrokerQuirks::None,
            QuirksArg::Tansu => BrokerQuirks::Tansu,
        }
    }
}

/// Arguments of `run matcher`.
#[derive(Debug, clap::Args)]
pub struct MatcherArgs {
    #[command(flatten)]
    pub run: LoopArgs,
    /// Instruments file.
    #[arg(long, default_value = "instruments.yaml")]
    pub instruments: PathBuf,
    /// Snapshot a partition after this many input records.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// ... or after this many milliseconds with input.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_interval_ms: u64,
    /// Largest chunk of engine state in one snapshot record (default 512 KiB: well under the
    /// broker's message limit).
    #[arg(long)]
    pub snapshot_chunk_bytes: Option<usize>,
    /// Schema registry (`http://host:port`): Avro outputs then use Confluent framing with the ids
    /// it gives, and Confluent-framed orders are checked against it.
    #[arg(long, env = "TRADESTREAM_SCHEMA_REGISTRY_URL")]
    pub schema_registry_url: Option<String>,
    /// Encoding of the output records.
    #[arg(long, value_enum, default_value_t = OutputFormatArg::Avro)]
    pub output_format: OutputFormatArg,
    #[command(flatten)]
    pub clock: ClockSkewArgs,
    /// Discard a snapshot that lies beyond the end of its `orders` partition (the topic was
    /// re-created or lost data) and rebuild the book from the partition's start. Without it
    /// the matcher refuses to start on such a snapshot rather than skip the new orders.
    #[arg(long)]
    pub start_afresh: bool,
}

/// `--guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GuaranteeArg {
    /// Idempotent outputs numbered by seq, written before the input is committed.
    EffectivelyOnce,
    /// Kafka transactions with the consumer group's metadata (fences zombies).
    ExactlyOnce,
}

impl From<GuaranteeArg> for Guarantee {
    fn from(g: GuaranteeArg) -> Self {
        match g {
            GuaranteeArg::EffectivelyOnce => Guarantee::EffectivelyOnce,
            GuaranteeArg::ExactlyOnce => Guarantee::ExactlyOnce,
        }
    }
}

/// `--max-clock-skew-ms`, shared by `run matcher` and `replay matcher` (a replay must decide as
/// the live matcher did).
#[derive(Debug, clap::Args)]
pub struct ClockSkewArgs {
    /// Reject (`bad_timestamp`) a command whose `ts` is more than this many milliseconds from
    /// its record's broker timestamp, either way; 0 turns the check off.
    #[arg(long, default_value_t = default_max_clock_skew_ms())]
    pub max_clock_skew_ms: u64,
}

impl ClockSkewArgs {
    /// The matcher's `max_clock_skew`.
    pub fn max_clock_skew(&self) -> Option<Duration> {
        (self.max_clock_skew_ms > 0).then(|| Duration::from_millis(self.max_clock_skew_ms))
    }
}

fn default_max_clock_skew_ms() -> u64 {
    u64::try_from(tradestream_matcher::timestamps::DEFAULT_MAX_CLOCK_SKEW.as_millis())
        .unwrap_or(u64::MAX)
}

/// `--output-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormatArg {
    /// Avro single-object encoding (schemas/engine_event.avsc).
    Avro,
    /// The JSON event contract.
    Json,
}

impl MatcherArgs {
    /// The worker configuration.
    pub fn config(&self) -> anyhow::Result<MatcherConfig> {
        let instruments = tradestream_config::load_instruments(&self.instruments)?;
        let run = self.run.config(MatcherConfig::DEFAULT_GROUP)?;
        let mut cfg = MatcherConfig::with_loop(run, instruments);
        cfg.snapshot_every_records = self.snapshot_every;
        cfg.snapshot_every = Duration::from_millis(self.snapshot_interval_ms);
        if let Some(bytes) = self.snapshot_chunk_bytes {
            anyhow::ensure!(bytes > 0, "--snapshot-chunk-bytes must be positive");
            cfg.snapshot_chunk_bytes = bytes;
        }
        cfg.schema_registry.clone_from(&self.schema_registry_url);
        cfg.max_clock_skew = self.clock.max_clock_skew();
        cfg.start_afresh = self.start_afresh;
        cfg.format = match self.output_format {
            OutputFormatArg::Avro => OutputFormat::Avro,
            OutputFormatArg::Json => OutputFormat::Json,
        };
        Ok(cfg)
    }
}

impl MarketDataArgs {
    /// The worker configuration.
    pub fn config(&self) -> anyhow::Result<MarketDataConfig> {
        let run = self.worker.run.config(MarketDataConfig::DEFAULT_GROUP)?;
        let mut cfg = MarketDataConfig::with_loop(run);
        cfg.allowed_lateness_ms = self.allowed_lateness_ms;
        cfg.max_watermark_lead_ms = self.max_watermark_lead_ms;
        Ok(cfg)
    }
}

/// Runs a worker until stopped.
pub fn run(worker: &Worker) -> anyhow::Result<()> {
    match worker {
        Worker::Matcher(args) => {
            let cfg = args.config()?;
            args.run.serve_metrics()?;
            let (name, stats) = (cfg.worker.clone(), Arc::new(MatcherStats::default()));
            tradestream_matcher::run(cfg, &shutdown_on_signals()?, stats.clone())?;
            print_stats(&name, &*stats);
        }
        Worker::TradeRecorder(args) => {
            let run = args.run.config(TradeRecorderConfig::DEFAULT_GROUP)?;
            let cfg = TradeRecorderConfig::with_loop(run);
            cfg.check()?;
            let store = args.start()?;
            let (name, stats) = (cfg.worker.clone(), Arc::new(TradeRecorderStats::default()));
            tradestream_trade_recorder::run(cfg, store, &shutdown_on_signals()?, stats.clone())?;
            print_stats(&name, &*stats);
        }
        Worker::MarketData(args) => {
            let cfg = args.config()?;
            cfg.check()?;
            let store = args.worker.start()?;
            let (name, stats) = (cfg.worker.clone(), Arc::new(MarketDataStats::default()));
            tradestream_market_data::run(cfg, store, &shutdown_on_signals()?, stats.clone())?;
            print_stats(&name, &*stats);
        }
        Worker::Notifier(args) => {
            let run = args.run.config(NotifierConfig::DEFAULT_GROUP)?;
            let cfg = NotifierConfig::with_loop(run);
            cfg.check()?;
            let store = args.start()?;
            let (name, stats) = (cfg.worker.clone(), Arc::new(NotifierStats::default()));
            tradestream_notifier::run(cfg, store, &shutdown_on_signals()?, stats.clone())?;
            print_stats(&name, &*stats);
        }
        Worker::Gateway(args) => super::gateway::run(args)?,
        Worker::Cache(args) => {
            let cfg = args.config()?;
            cfg.check()?;
            args.run.serve_metrics()?;
            tracing::info!(redis = %cfg.redis, prefix = cfg.keys.prefix(), "cache worker");
            let (name, stats) = (cfg.worker.clone(), Arc::new(CacheStats::default()));
            tradestream_cache::run(cfg, &shutdown_on_signals()?, stats.clone())?;
            print_stats(&name, &*stats);
        }
    }
    Ok(())
}
