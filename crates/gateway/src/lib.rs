//! # tradestream-gateway
//!
//! The venue's front door (`tradestream run gateway`): a stateless HTTP service, any number of
//! instances behind a load balancer. docs/gateway.md describes the API for its users.
//!
//! - Order entry: `POST /v1/orders`, `DELETE`/`PATCH /v1/orders/{symbol}/{order_id}`, signed
//!   with Ed25519 ([`auth`]), checked with the engine's own stateless checks ([`orders`]),
//!   produced to `orders` (key = symbol, idempotent, `acks=all`, murmur2) and answered 202 only
//!   after the broker acknowledged ([`produce`]); 503 + `Retry-After` otherwise.
//!   `Idempotency-Key` ([`idempotency`]) returns the first answer to a repeated request.
//! - Reads: order state (owner only), trades, candles, top of book, from the cache first and the
//!   store on a miss or error ([`reads`]).
//! - `/healthz`, `/readyz`, `/metrics` (Prometheus, same listener), `/openapi.json`
//!   (`crates/gateway/openapi.json`, compiled in).
//!
//! ## Extension point
//! [`serve`] merges an `extra` [`axum::Router`] into the app: the live page and the `/v1/stream`
//! WebSocket (`tradestream_live::router(...)`) are merged there, and verify private channels
//! with [`auth::KeyRing::verify_stream`] ([`GatewayState::keys`]).
//!
//! ## State
//! Nothing an instance holds matters to another: with `REDIS_URL` the idempotency keys and
//! nonces are shared in Redis (`SET NX PX`); without it they are per instance (a client that
//! retries through another instance may then get a second record: configure Redis when running
//! more than one).

pub mod auth;
mod cache;
pub mod http;
pub mod idempotency;
pub mod orders;
pub mod produce;
pub mod reads;
pub mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use tradestream_engine::Instruments;
use tradestream_runtime::KafkaConfig;
use tradestream_store::StoreUri;

pub use auth::KeyRing;
pub use http::{OPENAPI, ROUTES};
pub use idempotency::Idempotency;
pub use produce::OrderProducer;
pub use reads::{MarketCache, Reads};

/// Routes merged into the gateway's ([`router`], [`serve`]): the live page and WebSocket.
pub type ExtraRoutes = axum::Router;

/// Everything `tradestream run gateway` is configured with.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Listen address (loopback by default).
    pub listen: SocketAddr,
    /// The cluster.
    pub kafka: KafkaConfig,
    /// The topic commands go to.
    pub orders_topic: String,
    /// instruments.yaml.
    pub instruments: PathBuf,
    /// The API key file (public keys).
    pub api_keys: PathBuf,
    /// The store reads fall back to.
    pub store: Option<StoreUri>,
    /// The cache reads try first.
    pub cache: Option<Arc<dyn MarketCache>>,
    /// Redis for shared idempotency keys and nonces, and the cache reads try first (the one
    /// `tradestream run cache` keeps) unless [`GatewayConfig::cache`] names another.
    pub redis_url: Option<String>,
    /// The prefix of the cache's keys (`run cache --key-prefix`).
    pub cache_key_prefix: String,
    /// How far a request's timestamp may be from the server's clock.
    pub recv_window_ms: i64,
    /// How long an idempotency key's answer is kept.
    pub idempotency_window: Duration,
    /// Most idempotency keys one instance holds in memory.
    pub max_idempotency_keys: usize,
    /// Largest body (413 beyond).
    pub max_body_bytes: usize,
    /// How long a command may wait for the broker's acknowledgement (then 503).
    pub produce_timeout: Duration,
    /// `Retry-After` of a 503, seconds.
    pub retry_after_secs: u64,
}

impl GatewayConfig {
    /// The defaults, for a cluster and the key file.
    pub fn new(kafka: KafkaConfig, api_keys: PathBuf) -> Self {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            kafka,
            orders_topic: "orders".to_owned(),
            instruments: PathBuf::from("instruments.yaml"),
            api_keys,
            store: None,
            cache: None,
            redis_url: None,
            cache_key_prefix: tradestream_cache::keys::DEFAULT_PREFIX.to_owned(),
            recv_window_ms: auth::DEFAULT_RECV_WINDOW_MS,
            idempotency_window: Duration::from_secs(24 * 3600),
            max_idempotency_keys: 1_000_000,
            max_body_bytes: 16 * 1024,
            produce_timeout: Duration::from_secs(5),
            retry_after_secs: 1,
        }
    }
}

/// How long a cache read may take before the read goes to the store instead.
const CACHE_TIMEOUT: Duration = Duration::from_millis(250);

/// What every handler shares.
#[derive(Debug)]
pub struct GatewayState {
    /// The public keys and nonces.
    pub keys: KeyRing,
    /// The instruments orders are checked against.
    pub instruments: Instruments,
    /// The producer to `orders`.
    pub producer: OrderProducer,
    /// Idempotency keys (and shared nonces).
    pub idempotency: Idempotency,
    /// Reads.
    pub reads: Reads,
    /// Largest body.
    pub max_body_bytes: usize,
    /// `Retry-After` of a 503.
    pub retry_after_secs: u64,
}

impl GatewayState {
    /// Loads the key file and instruments, opens the store, connects Redis, creates the
    /// producer.
    pub async fn from_config(cfg: &GatewayConfig) -> anyhow::Result<Self> {
        let keys = KeyRing::load(&cfg.api_keys, cfg.recv_window_ms)?;
        if keys.is_empty() {
            tracing::warn!(file = %cfg.api_keys.display(), "the key file has no keys: every signed request will be refused");
        }
        let instruments = tradestream_config::load_instruments(&cfg.instruments)?;
        let producer = OrderProducer::new(&cfg.kafka, &cfg.orders_topic, cfg.produce_timeout)
            .context("cannot create the producer")?;
        let window_ms = i64::try_from(cfg.idempotency_window.as_millis()).unwrap_or(i64::MAX);
        let wait = cfg.produce_timeout + Duration::from_secs(1);
        let idempotency = match &cfg.redis_url {
            Some(url) => {
                let client = redis::Client::open(url.as_str()).context("invalid REDIS_URL")?;
                let conn = tokio::time::timeout(
                    Duration::from_secs(5),
                    redis::aio::ConnectionManager::new(client),
                )
                .await
                .context("Redis did not answer within 5 s")?
                .context("cannot connect to Redis")?;
                Idempotency::redis(conn, window_ms, wait)
            }
            None => Idempotency::memory(window_ms, cfg.max_idempotency_keys, wait),
        };
        let store = match &cfg.store {
            Some(uri) => {
                let uri = uri.clone();
                Some(
                    tokio::task::spawn_blocking(move || tradestream_store::open(&uri))
                        .await?
                        .context("cannot open the store")?,
                )
            }
            None => None,
        };
        let cache = match (&cfg.cache, &cfg.redis_url) {
            (Some(cache), _) => Some(Arc::clone(cache)),
            (None, Some(url)) => {
                let reader = tradestream_cache::CacheReader::connect(
                    &tradestream_cache::RedisUrl::new(url.as_str()),
                    tradestream_cache::keys::KeyLayout::new(cfg.cache_key_prefix.as_str()),
                    CACHE_TIMEOUT,
                )
                .await
                .context("cannot connect to the Redis cache")?;
                Some(Arc::new(reader) as Arc<dyn MarketCache>)
            }
            (None, None) => None,
        };
        Ok(GatewayState {
            keys,
            instruments,
            producer,
            idempotency,
            reads: Reads::new(cache, store),
            max_body_bytes: cfg.max_body_bytes,
            retry_after_secs: cfg.retry_after_secs,
        })
    }
}

/// The gateway's routes with `extra` merged in (the live page and WebSocket; an empty
/// [`axum::Router::new`] for none).
pub fn router(state: Arc<GatewayState>, extra: axum::Router) -> axum::Router {
    http::routes(state).merge(extra)
}

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The Prometheus handle `/metrics` renders: installs the recorder on first use (none if the
/// process installed another).
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    METRICS
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".to_owned()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ],
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Serves until `shutdown` resolves, on `cfg.listen`.
pub async fn serve(
    cfg: GatewayConfig,
    extra: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let state = Arc::new(GatewayState::from_config(&cfg).await?);
    serve_on(listener, state, extra, shutdown).await
}

/// The whole front door on a bound listener until `shutdown` resolves: the API, and the live
/// page and `/v1/stream` fed by a [`tradestream_live::Hub`] reading the topics from their end.
/// What `tradestream run gateway` and `demo --serve` run.
pub async fn serve_with_live(
    listener: tokio::net::TcpListener,
    cfg: &GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = Arc::new(GatewayState::from_config(cfg).await?);
    let hub = tradestream_live::Hub::start(tradestream_live::HubConfig::new(
        cfg.kafka.clone(),
        state.instruments.clone(),
    ))
    .context("cannot start the live hub")?;
    let live = stream::live_routes(&state, Arc::clone(&hub));
    let served = serve_on(listener, state, live, shutdown).await;
    hub.shutdown();
    served
}

/// Serves on a bound listener until `shutdown` resolves (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: Arc<GatewayState>,
    extra: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let _ = metrics_handle();
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "gateway serving");
    axum::serve(listener, router(state, extra))
        .with_graceful_shutdown(shutdown)
        .await
        .context("gateway stopped")
}

#[cfg(test)]
mod tests;
