//! # tradestream-broker
//!
//! The embedded broker: [tansu](https://tansu.io) 0.6, a Kafka-compatible broker written in Rust,
//! run in-process with memory storage. It serves produce, fetch, consumer groups, commits and
//! offsets-for-times, which is all tradestream needs; it does not support Kafka transactions
//! (DESIGN.md §2 explains how the pipeline is effectively-once without them).
//!
//! It is for development, tests and the demo. In production, point `--bootstrap-servers` at a
//! Kafka or Redpanda cluster instead.
//!
//! ## Layout
//! - [`BrokerConfig`]: where to listen.
//! - [`run`]: serve until SIGINT/SIGTERM (tansu installs its own signal handlers).

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
        .cluster_id("tradestream")
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
