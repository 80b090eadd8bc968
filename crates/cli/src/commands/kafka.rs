//! Options every Kafka command shares, and signal handling.

use std::collections::BTreeMap;

use anyhow::Context;
use tradestream_runtime::{KafkaConfig, Shutdown};

/// Where the cluster is.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (any Kafka-compatible broker).
    #[arg(
        long,
        env = "TRADESTREAM_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
    /// Extra librdkafka setting, `key=value`, repeatable; typed settings win over these.
    #[arg(long = "kafka", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub kafka: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

impl KafkaArgs {
    /// The client settings.
    pub fn config(&self) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: self.bootstrap_servers.clone(),
            passthrough: self.kafka.iter().cloned().collect::<BTreeMap<_, _>>(),
        }
    }
}

/// A shutdown flag set on SIGINT or SIGTERM (from a background thread with its own runtime).
pub fn shutdown_on_signals() -> anyhow::Result<Shutdown> {
    let shutdown = Shutdown::new();
    let flag = shutdown.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
                tracing::info!("stop requested; finishing the batch in flight");
                flag.trigger();
            });
        })
        .context("cannot start the signal handler")?;
    Ok(shutdown)
}
