//! Building [`LoopConfig`]: one constructor, documented defaults.
//!
//! Every worker's configuration embeds one `LoopConfig` (`run`), made here, so a setting added to
//! the loop is defaulted in one place.

use std::time::Duration;

use crate::worker::{LoopConfig, RunError, SetupError};
use crate::{BrokerQuirks, Guarantee, KafkaConfig};

impl LoopConfig {
    /// The default dead-letter topic (topics.yaml).
    pub const DEFAULT_DEAD_LETTERS: &'static str = "dead-letters";
    /// The default round: 10 000 records. A store worker writes a transaction at least this
    /// often; measured (recorder_vs_matcher, SQLite, two runs each) the trade recorder took
    /// 61 000–68 000 records/s with 2 000 and 98 000 with 10 000, above the matcher's output.
    /// At these rates a round is still well under the 100 ms commit interval.
    pub const DEFAULT_MAX_BATCH: usize = 10_000;
    /// Kafka Streams commits every 100 ms under exactly-once: a crash replays at most that much,
    /// and `read_committed` readers see outputs within it.
    pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(100);

    /// The loop of consumer group `group` on `kafka`, with the defaults: dead letters to
    /// [`DEFAULT_DEAD_LETTERS`](Self::DEFAULT_DEAD_LETTERS), batches of at most
    /// [`DEFAULT_MAX_BATCH`](Self::DEFAULT_MAX_BATCH), commits every
    /// [`DEFAULT_COMMIT_INTERVAL`](Self::DEFAULT_COMMIT_INTERVAL), re-joining when idle and broker quirks
    /// as the broker calls for (`None`, [`BrokerQuirks::Auto`]), effectively-once, and the
    /// default `transactional.id`.
    pub fn new(kafka: KafkaConfig, group: impl Into<String>) -> Self {
        LoopConfig {
            kafka,
            group: group.into(),
            dead_letters: Self::DEFAULT_DEAD_LETTERS.into(),
            max_batch: Self::DEFAULT_MAX_BATCH,
            commit_interval: Self::DEFAULT_COMMIT_INTERVAL,
            rejoin_when_idle: None,
            quirks: BrokerQuirks::Auto,
            guarantee: Guarantee::EffectivelyOnce,
            transactional_id: None,
            retry: crate::retry::Retry::default(),
        }
    }

    /// Refuses [`Guarantee::ExactlyOnce`] for `worker`, which cannot give it; `why` says why.
    pub fn refuse_exactly_once(&self, worker: &str, why: &str) -> Result<(), RunError> {
        if self.guarantee == Guarantee::ExactlyOnce {
            return Err(SetupError::GuaranteeRefused {
                worker: worker.to_owned(),
                why: why.to_owned(),
            }
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
