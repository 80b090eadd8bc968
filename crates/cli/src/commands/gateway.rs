//! `tradestream run gateway`: the HTTP front door (crate `tradestream-gateway`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tradestream_gateway::GatewayConfig;
use tradestream_store::StoreUri;

use super::kafka::KafkaArgs;

/// Arguments of `run gateway`. Paths and secrets may come from the environment.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Listen address.
    #[arg(
        long,
        env = "TRADESTREAM_GATEWAY_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,
    /// The API key file (YAML: key id, account, Ed25519 public key).
    #[arg(long, env = "TRADESTREAM_API_KEYS_FILE")]
    pub api_keys: PathBuf,
    /// Instruments file.
    #[arg(long, default_value = "instruments.yaml")]
    pub instruments: PathBuf,
    /// The store reads fall back to (`sqlite:PATH` or `scylla://…`); none: reads answer 501.
    #[arg(long, env = "TRADESTREAM_STORE")]
    pub store: Option<StoreUri>,
    /// Redis (`redis://host:port`; a password only through the environment): idempotency keys
    /// and nonces shared by every instance, and the cache (`run cache`) reads try first.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// A file whose first line is the Redis URL (wins over --redis-url / REDIS_URL).
    #[arg(long, env = "REDIS_URL_FILE")]
    pub redis_url_file: Option<PathBuf>,
    /// Prefix of the cache's keys in Redis (as `run cache --key-prefix`).
    #[arg(long, default_value = tradestream_cache::keys::DEFAULT_PREFIX)]
    pub cache_key_prefix: String,
    /// The topic commands go to.
    #[arg(long, default_value = "orders")]
    pub orders_topic: String,
    /// How far (ms) a request's timestamp may be from the server's clock.
    #[arg(long, default_value_t = tradestream_gateway::auth::DEFAULT_RECV_WINDOW_MS)]
    pub recv_window_ms: i64,
    /// How long (s) an Idempotency-Key's first answer is kept.
    #[arg(long, default_value_t = 86_400)]
    pub idempotency_window_secs: u64,
    /// Largest request body (bytes); larger is 413.
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    /// How long (ms) a command waits for the broker's acknowledgement before 503.
    #[arg(long, default_value_t = 5_000)]
    pub produce_timeout_ms: u64,
}

impl GatewayArgs {
    /// The gateway's configuration.
    pub fn config(&self) -> anyhow::Result<GatewayConfig> {
        anyhow::ensure!(self.recv_window_ms > 0, "--recv-window-ms must be positive");
        anyhow::ensure!(
            self.produce_timeout_ms > 0,
            "--produce-timeout-ms must be positive"
        );
        let mut cfg = GatewayConfig::new(self.kafka.config()?, self.api_keys.clone());
        cfg.listen = self.listen;
        cfg.instruments.clone_from(&self.instruments);
        cfg.store.clone_from(&self.store);
        cfg.redis_url =
            super::run::redis_url(self.redis_url.as_deref(), self.redis_url_file.as_deref())?
                .map(|url| url.as_str().to_owned());
        cfg.cache_key_prefix.clone_from(&self.cache_key_prefix);
        cfg.orders_topic.clone_from(&self.orders_topic);
        cfg.recv_window_ms = self.recv_window_ms;
        cfg.idempotency_window = Duration::from_secs(self.idempotency_window_secs.max(1));
        cfg.max_body_bytes = self.max_body_bytes;
        cfg.produce_timeout = Duration::from_millis(self.produce_timeout_ms);
        Ok(cfg)
    }
}

/// Serves until SIGINT or SIGTERM.
pub fn run(args: &GatewayArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let shutdown = async {
            if super::kafka::signalled().await {
                tracing::info!("stop requested; finishing requests in flight");
            }
        };
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        tradestream_gateway::serve_with_live(listener, &cfg, shutdown).await
    })
}
