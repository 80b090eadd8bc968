//! librdkafka client settings.
//!
//! Three layers, later ones winning (docs/design.md §7):
//! 1. the project's defaults (batching, timeouts, fetch sizes): a user setting replaces them;
//! 2. the user's settings: a properties file, secrets from the environment, `--kafka key=value`;
//! 3. **pinned** settings the pipeline's guarantees rest on (idempotence, `acks=all`, the
//!    Java-compatible partitioner, manual commits, `read_committed`). A user setting that
//!    contradicts one is an error ([`KafkaConfig::validate`]), never silently overwritten.
//!
//! Secrets ([`SECRET_KEYS`]) come from the properties file or the environment
//! ([`secret_env_var`]); on the command line every user of the machine could read them (`ps`),
//! so the CLI refuses them there.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rdkafka::ClientConfig;

/// Connection settings shared by every client a worker creates.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// The user's librdkafka settings (properties file, environment, `--kafka key=value`); they
    /// replace the project's defaults and must agree with the pinned settings.
    pub passthrough: BTreeMap<String, String>,
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A user setting contradicts one the pipeline's guarantees rest on.
    #[error(
        "the Kafka setting {key}={value} conflicts with {key}={required}, which tradestream needs ({why})"
    )]
    Pinned {
        /// The key.
        key: String,
        /// What the user asked for.
        value: String,
        /// What the pipeline needs.
        required: &'static str,
        /// Why.
        why: &'static str,
    },
    /// The properties file could not be read or parsed.
    #[error("{path}: {message}")]
    Properties {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// librdkafka settings that carry secrets: accepted from a properties file or the environment
/// only.
pub const SECRET_KEYS: &[&str] = &[
    "sasl.password",
    "sasl.oauthbearer.client.secret",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.key.pem",
];

/// The environment variable a secret setting may come from: `sasl.password` is
/// `TRADESTREAM_KAFKA_SASL_PASSWORD`.
pub fn secret_env_var(key: &str) -> String {
    format!(
        "TRADESTREAM_KAFKA_{}",
        key.to_ascii_uppercase().replace('.', "_")
    )
}

/// A setting the pipeline cannot work without, and which clients it applies to.
struct Pinned {
    key: &'static str,
    /// Accepted spellings; the first is the one set.
    values: &'static [&'static str],
    why: &'static str,
    producer: bool,
    consumer: bool,
}

const PINNED: &[Pinned] = &[
    Pinned {
        key: "enable.idempotence",
        values: &["true"],
        why: "outputs are written at most once per producer session",
        producer: true,
        consumer: false,
    },
    Pinned {
        key: "acks",
        values: &["all", "-1"],
        why: "an acknowledged output survives a broker failure",
        producer: true,
        consumer: false,
    },
    Pinned {
        key: "partitioner",
        values: &["murmur2_random"],
        why: "keys are hashed like the Java client does, so one symbol lives in one partition",
        producer: true,
        consumer: false,
    },
    Pinned {
        key: "enable.auto.commit",
        values: &["false"],
        why: "input offsets are committed only after their outputs",
        producer: false,
        consumer: true,
    },
    Pinned {
        key: "enable.auto.offset.store",
        values: &["false"],
        why: "input offsets are committed only after their outputs",
        producer: false,
        consumer: true,
    },
    Pinned {
        key: "isolation.level",
        values: &["read_committed"],
        why: "aborted transactions must never be processed",
        producer: false,
        consumer: true,
    },
];

/// How long a transaction may stay open before the broker aborts it. Kafka Streams uses 10 s
/// under `exactly_once_v2`: a paused or partitioned member's open transaction blocks
/// `read_committed` readers of its output partitions until then.
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

impl KafkaConfig {
    /// Settings for a cluster at `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            passthrough: BTreeMap::new(),
        }
    }

    /// Checks the user's settings against the pinned ones.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for pin in PINNED {
            if let Some(value) = self.passthrough.get(pin.key)
                && !pin.values.contains(&value.as_str())
            {
                return Err(ConfigError::Pinned {
                    key: pin.key.to_owned(),
                    value: value.clone(),
                    required: pin.values[0],
                    why: pin.why,
                });
            }
        }
        Ok(())
    }

    /// Adds the settings of a Java-style properties file (`key=value` or `key: value` lines,
    /// `#` and `!` comments); they replace settings already there.
    pub fn load_properties(&mut self, path: &Path) -> Result<(), ConfigError> {
        let error = |message: String| ConfigError::Properties {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (k, v) = line
                .split_once(['=', ':'])
                .map(|(k, v)| (k.trim(), v.trim()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| error(format!("line {}: expected key=value", n + 1)))?;
            self.passthrough.insert(k.to_owned(), v.to_owned());
        }
        Ok(())
    }

    /// Adds the secrets found in the environment ([`secret_env_var`]).
    pub fn load_secrets_from_env(&mut self) {
        for key in SECRET_KEYS {
            if let Ok(value) = std::env::var(secret_env_var(key)) {
                self.passthrough.insert((*key).to_owned(), value);
            }
        }
    }

    /// Defaults, then the user's settings, then the pinned settings of this kind of client.
    fn build(&self, defaults: &[(&str, &str)], producer: bool, consumer: bool) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.passthrough {
            c.set(k, v);
        }
        c.set("bootstrap.servers", &self.bootstrap_servers);
        for pin in PINNED {
            if (pin.producer && producer) || (pin.consumer && consumer) {
                c.set(pin.key, pin.values[0]);
            }
        }
        c
    }

    /// An idempotent producer that waits for all in-sync replicas (docs/design.md §2.1) and
    /// partitions keys like the Java client (murmur2).
    pub fn producer(&self) -> ClientConfig {
        self.build(
            &[
                // The loop never waits for a batch to fill (it produces and goes on), so
                // lingering costs latency only: 5 ms bounds what each hop adds, and under load
                // batches fill by size before that. Measured on the embedded broker
                // (the pipeline bench of the time, 200 000 orders): linger 1 ms and 5 ms run the matcher at
                // the same rate, 20 ms 30 % slower.
                ("linger.ms", "5"),
                ("batch.num.messages", "10000"),
                // lz4: fewer bytes on the wire and on the brokers' disks (orders and events repeat
                // symbols, accounts and field names) for little CPU: the matcher ran as fast
                // with it on loopback, where bytes cost nothing (2–3 % faster, within noise).
                // zstd compresses better but costs more CPU, and this librdkafka is built
                // without it.
                ("compression.type", "lz4"),
                // Backpressure: a full queue blocks the loop until delivery reports free it, so
                // a slow broker holds at most this much in memory (64 MiB, 100 000 records)
                // instead of librdkafka's 1 GiB.
                ("queue.buffering.max.messages", "100000"),
                ("queue.buffering.max.kbytes", "65536"),
                // What the broker accepts by default; the dead-letter path never sends more
                // (see `dead_letter::MAX_PAYLOAD`).
                ("message.max.bytes", "1000000"),
            ],
            true,
            false,
        )
    }

    /// A transactional producer (`exactly-once`): [`KafkaConfig::producer`] with
    /// `transactional.id` and a [`TRANSACTION_TIMEOUT`].
    pub fn transactional_producer(&self, transactional_id: &str) -> ClientConfig {
        let ms = TRANSACTION_TIMEOUT.as_millis().to_string();
        let mut c = self.producer();
        c.set("transactional.id", transactional_id);
        if !self.passthrough.contains_key("transaction.timeout.ms") {
            c.set("transaction.timeout.ms", &ms);
        }
        // librdkafka wants requests to time out before the transaction does.
        if !self.passthrough.contains_key("socket.timeout.ms") {
            c.set("socket.timeout.ms", &ms);
        }
        c
    }

    /// A consumer in `group` that commits only explicitly, with cooperative-sticky assignment,
    /// reading only committed transactions.
    pub fn group_consumer(&self, group: &str) -> ClientConfig {
        let mut c = self.build(
            &[
                ("auto.offset.reset", "earliest"),
                ("partition.assignment.strategy", "cooperative-sticky"),
                ("session.timeout.ms", "10000"),
                ("heartbeat.interval.ms", "1000"),
                // Also the rebalance timeout: how long a rebalance waits for a member that does
                // not rejoin (e.g. one killed mid-rebalance). Workers poll every batch, and
                // restoring a partition takes well under a second, so 30 s is generous and
                // keeps failover short.
                ("max.poll.interval.ms", "30000"),
                // Backpressure on the input side: librdkafka prefetches at most this much per
                // consumer (64 MiB, its default, made explicit), and stops fetching while the
                // loop is behind.
                ("queued.max.messages.kbytes", "65536"),
                // Kafka answers a fetch as soon as records arrive, so the wait is only the idle
                // long-poll (the embedded broker differs: see `BrokerQuirks::tune_consumer`).
                ("fetch.wait.max.ms", "500"),
                // Statistics feed the consumer-lag gauge.
                ("statistics.interval.ms", "5000"),
            ],
            false,
            true,
        );
        c.set("group.id", group);
        c
    }

    /// A consumer outside any group, for reading partitions by offset (committed records only).
    pub fn reader(&self) -> ClientConfig {
        // Short fetch waits: a reader stops at the partition's end, and a restore reads several
        // partitions one after another, so the broker's long poll must not hold each one.
        let mut c = self.build(
            &[
                ("fetch.wait.max.ms", "10"),
                ("fetch.error.backoff.ms", "10"),
                ("fetch.queue.backoff.ms", "10"),
                ("auto.offset.reset", "earliest"),
            ],
            false,
            true,
        );
        c.set("group.id", "tradestream-reader")
            .set("enable.partition.eof", "true");
        c
    }

    /// An admin client.
    pub fn admin(&self) -> ClientConfig {
        self.build(&[], false, false)
    }
}
