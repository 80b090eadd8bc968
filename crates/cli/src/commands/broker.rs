//! `tradestream broker`: the embedded Kafka-compatible broker.

use std::net::SocketAddr;

/// Arguments of `tradestream broker`.
#[derive(Debug, clap::Args)]
pub struct BrokerArgs {
    /// Listen address. Loopback by default; memory storage, so data lives as long as the process.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
}

/// Serves until SIGINT or SIGTERM.
pub fn run(args: &BrokerArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(tradestream_broker::run(&tradestream_broker::BrokerConfig {
        listen: args.listen,
        advertised: None,
    }))
}
