//! Processing guarantees (docs/design.md §2).

/// What a worker promises about its outputs when it crashes, restarts or is fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Guarantee {
    /// Effectively-once without broker transactions (any broker, including the embedded one):
    /// outputs are idempotent, numbered per input partition (`seq`) and written before their
    /// input offsets are committed, so a crash or a revoked member can write an output again,
    /// always byte for byte the same with the same `seq`. Readers deduplicate by
    /// (topic, partition, seq); restores skip what the topics already hold.
    #[default]
    EffectivelyOnce,
    /// Kafka transactions (`exactly_once_v2`): a batch's outputs, its snapshots and dead letters
    /// and its input offsets are committed in one transaction, with the consumer group's
    /// metadata, so a member that lost its partitions (a newer group generation) cannot commit.
    /// A `read_committed` reader sees every output exactly once. Needs a broker with
    /// transactions (Apache Kafka); the embedded broker has none.
    ExactlyOnce,
}

impl Guarantee {
    /// The spelling in flags and docs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Guarantee::EffectivelyOnce => "effectively-once",
            Guarantee::ExactlyOnce => "exactly-once",
        }
    }
}
