//! # tradestream-broker
//!
//! The embedded broker: [tansu](https://tansu.io) 0.6, a Kafka-compatible broker written in Rust,
//! run in-process with memory storage. It serves produce, fetch, consumer groups, commits and
//! offsets-for-times, which is all tradestream needs; it does not support Kafka transactions
//! (docs/design.md §2 explains how the pipeline is effectively-once without them).
//!
//! It is for development, tests and the demo. In production, point `--bootstrap-servers` at a
//! Kafka or Redpanda cluster instead.
//!
//! ## Layout
//! - [`BrokerConfig`]: where to listen.
//! - [`run`]: serve until SIGINT/SIGTERM (tansu installs its own signal handlers).
//! - [`spawn`]: serve from a background thread of this process (demo, benchmarks).

use std::net::SocketAddr;

use anyhow::Context;
use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use url::Url;

/// Where the embedded broker listens.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Listen address; loopback unless the operator asks otherwise.
    pub listen: SocketAddr,
    /// Address advertised to clients (defaults to `listen`).
    pub advertised: Option<SocketAddr>,
}

/// Runs the broker until it is interrupted (SIGINT or SIGTERM).
pub async fn run(config: &BrokerConfig) -> anyhow::Result<()> {
    let listener = Url::parse(&format!("tcp://{}", config.listen))?;
    let advertised = Url::parse(&format!(
        "tcp://{}",
        config.advertised.unwrap_or(config.listen)
    ))?;
    let broker = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
        .node_id(111)
        .cluster_id(tradestream_runtime::quirks::EMBEDDED_CLUSTER_ID)
        .incarnation_id(uuid::Uuid::new_v4())
        .advertised_listener(advertised)
        .storage(Url::parse("memory://tansu/")?)
        .listener(listener)
        .silent(true)
        .build()
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("cannot build the embedded broker")?;
    tracing::info!(listen = %config.listen, "embedded broker (tansu, memory storage) serving");
    broker
        .main(tokio::time::Instant::now())
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("embedded broker failed")?;
    Ok(())
}

/// Starts the broker in a background thread on `listen` (port 0: a free loopback port) and
/// returns its address once it accepts connections. It lives as long as the process.
pub fn spawn(listen: SocketAddr) -> anyhow::Result<SocketAddr> {
    let addr = if listen.port() == 0 {
        std::net::TcpListener::bind(listen)?.local_addr()?
    } else {
        listen
    };
    let rt = tokio::runtime::Runtime::new()?;
    std::thread::Builder::new()
        .name("broker".into())
        .spawn(move || {
            let config = BrokerConfig {
                listen: addr,
                advertised: None,
            };
            if let Err(e) = rt.block_on(run(&config)) {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })?;
    for _ in 0..300 {
        let up = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(100));
        if up.is_ok() {
            return Ok(addr);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    anyhow::bail!("the embedded broker did not start listening on {addr}")
}
