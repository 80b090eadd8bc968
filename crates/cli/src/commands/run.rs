//! `tradestream run <worker>`: one worker of the pipeline, until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tradestream_matcher::{MatcherConfig, MatcherStats, OutputFormat};

use tradestream_runtime::LoopConfig;

use super::kafka::{KafkaArgs, shutdown_on_signals};

/// The workers.
#[derive(Debug, clap::Subcommand)]
pub enum Worker {
    /// orders → executions, trades, market-data (+ snapshots, dead letters).
    Matcher(MatcherArgs),
}

/// Options of the consumer loop every worker shares.
#[derive(Debug, clap::Args)]
pub struct LoopArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Most input records between two flush-and-commit points.
    #[arg(long, default_value_t = 2_000)]
    pub max_batch: usize,
    /// Re-join the group after this many milliseconds without partitions (0: never). For the
    /// embedded broker, which does not rebalance when a member's session expires.
    #[arg(long, default_value_t = 0)]
    pub rejoin_when_idle_ms: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

impl LoopArgs {
    /// The loop settings for consumer group `group`.
    pub fn config(&self, group: &str, dead_letters: &str) -> LoopConfig {
        LoopConfig {
            kafka: self.kafka.config(),
            group: group.to_owned(),
            dead_letters: dead_letters.to_owned(),
            max_batch: self.max_batch,
            rejoin_when_idle: (self.rejoin_when_idle_ms > 0)
                .then(|| Duration::from_millis(self.rejoin_when_idle_ms)),
        }
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

/// Arguments of `run matcher`.
#[derive(Debug, clap::Args)]
pub struct MatcherArgs {
    #[command(flatten)]
    pub run: LoopArgs,
    /// Instruments file.
    #[arg(long, default_value = "instruments.yaml")]
    pub instruments: PathBuf,
    /// Consumer group (also the snapshot key prefix).
    #[arg(long, default_value = "tradestream-matcher")]
    pub group: String,
    /// Snapshot a partition after this many input records.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// ... or after this many milliseconds with input.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_interval_ms: u64,
    /// Encoding of the output records.
    #[arg(long, value_enum, default_value_t = OutputFormatArg::Avro)]
    pub output_format: OutputFormatArg,
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
        let mut cfg = MatcherConfig::new(self.run.kafka.config(), instruments);
        cfg.group = self.group.clone();
        cfg.snapshot_every_records = self.snapshot_every;
        cfg.snapshot_every = Duration::from_millis(self.snapshot_interval_ms);
        let run = self.run.config(&self.group, &cfg.dead_letters);
        cfg.max_batch = run.max_batch;
        cfg.rejoin_when_idle = run.rejoin_when_idle;
        cfg.format = match self.output_format {
            OutputFormatArg::Avro => OutputFormat::Avro,
            OutputFormatArg::Json => OutputFormat::Json,
        };
        Ok(cfg)
    }
}

/// Runs a worker until stopped.
pub fn run(worker: &Worker) -> anyhow::Result<()> {
    match worker {
        Worker::Matcher(args) => {
            let cfg = args.config()?;
            args.run.serve_metrics()?;
            let shutdown = shutdown_on_signals()?;
            let stats = Arc::new(MatcherStats::default());
            tradestream_matcher::run(cfg, shutdown, stats.clone())?;
            // One machine-readable line for scripts and tests.
            println!(
                "{}",
                serde_json::json!({
                    "worker": "matcher",
                    "records_in": stats.records_in.load(Ordering::Relaxed),
                    "records_out": stats.records_out.load(Ordering::Relaxed),
                    "dead_letters": stats.dead_letters.load(Ordering::Relaxed),
                    "replayed": stats.replayed.load(Ordering::Relaxed),
                    "deduplicated": stats.deduplicated.load(Ordering::Relaxed),
                    "snapshots": stats.snapshots.load(Ordering::Relaxed),
                })
            );
            Ok(())
        }
    }
}
