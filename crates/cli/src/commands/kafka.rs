//! Options every Kafka command shares, and signal handling.

use anyhow::Context;
use tradestream_runtime::client::{SECRET_KEYS, secret_env_var};
use tradestream_runtime::{KafkaConfig, Shutdown};

/// Where the cluster is, and how to talk to it.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (any Kafka-compatible broker).
    #[arg(
        long,
        env = "TRADESTREAM_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
    /// A librdkafka properties file (`key=value` lines): TLS, SASL and their secrets. Secrets
    /// may also come from the environment, e.g. `TRADESTREAM_KAFKA_SASL_PASSWORD`.
    #[arg(long, value_name = "FILE", env = "TRADESTREAM_KAFKA_PROPERTIES")]
    pub kafka_properties: Option<std::path::PathBuf>,
    /// Extra librdkafka setting, `key=value`, repeatable; replaces the project's default for
    /// that key. Settings the pipeline's guarantees rest on (acks, idempotence, partitioner,
    /// manual commits, read_committed) cannot be contradicted, and secrets are refused here:
    /// use `--kafka-properties` or the environment.
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
    /// The client settings: properties file, then secrets from the environment, then `--kafka`.
    pub fn config(&self) -> anyhow::Result<KafkaConfig> {
        let mut cfg = KafkaConfig::new(self.bootstrap_servers.clone());
        if let Some(file) = &self.kafka_properties {
            cfg.load_properties(file)?;
        }
        cfg.load_secrets_from_env();
        for (k, v) in &self.kafka {
            anyhow::ensure!(
                !SECRET_KEYS.contains(&k.as_str()),
                "--kafka {k}=… would show the secret to every user of this machine (ps); put it \
                 in --kafka-properties FILE or in the environment as {}",
                secret_env_var(k)
            );
            cfg.passthrough.insert(k.clone(), v.clone());
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Resolves on the first SIGINT or SIGTERM with `true`; at once with `false` when the handlers
/// cannot be installed.
pub async fn signalled() -> bool {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return false;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    true
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
                if signalled().await {
                    tracing::info!("stop requested; finishing the batch in flight");
                    flag.trigger();
                }
            });
        })
        .context("cannot start the signal handler")?;
    Ok(shutdown)
}
