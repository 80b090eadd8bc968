//! librdkafka client settings.
//!
//! Typed settings come first; raw `key=value` pass-through settings are applied before them, so
//! a typed setting wins where both name the same key (docs/design.md §7).

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// Connection settings shared by every client a worker creates.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// Raw librdkafka settings (`--kafka key=value`), applied under the typed ones.
    pub passthrough: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Settings for a cluster at `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            passthrough: BTreeMap::new(),
        }
    }

    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in &self.passthrough {
            c.set(k, v);
        }
        c.set("bootstrap.servers", &self.bootstrap_servers);
        c
    }

    /// An idempotent producer that waits for all in-sync replicas (docs/design.md §2.1).
    pub fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .set("message.max.bytes", "1000000");
        c
    }

    /// A consumer in `group` that commits only explicitly, with cooperative-sticky assignment.
    pub fn group_consumer(&self, group: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            // Also the rebalance timeout: how long a rebalance waits for a member that does not
            // rejoin (e.g. one killed mid-rebalance). Workers poll every batch, and restoring a
            // partition takes well under a second, so 30 s is generous and keeps failover short.
            .set("max.poll.interval.ms", "30000")
            // Statistics feed the consumer-lag gauge.
            .set("statistics.interval.ms", "5000");
        c
    }

    /// A consumer outside any group, for reading partitions by offset.
    pub fn reader(&self) -> ClientConfig {
        let mut c = self.base();
        // Short fetch waits: a reader stops at the partition's end, and a restore reads several
        // partitions one after another, so the broker's long poll must not hold each one.
        c.set("group.id", "tradestream-reader")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "10")
            .set("fetch.error.backoff.ms", "10")
            .set("fetch.queue.backoff.ms", "10")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        c
    }

    /// An admin client.
    pub fn admin(&self) -> ClientConfig {
        self.base()
    }
}
