//! Building [`LoopConfig`]: one constructor, documented defaults.
//!
//! Every worker's configuration embeds one `LoopConfig` (`run`), made here, so a setting added to
//! the loop is defaulted in one place.

use std::time::Duration;

use crate::worker::{LoopConfig, RunError};
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
        }
    }

    /// Refuses [`Guarantee::ExactlyOnce`] for `worker`, which cannot give it; `why` says why.
    pub fn refuse_exactly_once(&self, worker: &str, why: &str) -> Result<(), RunError> {
        if self.guarantee == Guarantee::ExactlyOnce {
            return Err(RunError::Setup(format!(
                "the {worker} cannot run with --guarantee exactly-once: {why}. Run it with \
                 --guarantee effectively-once (the default; TRADESTREAM_PROCESSING_GUARANTEE)"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_takes_the_documented_defaults() {
        let run = LoopConfig::new(KafkaConfig::new("127.0.0.1:1"), "g");
        assert_eq!(run.group, "g");
        assert_eq!(run.dead_letters, "dead-letters");
        assert_eq!(run.max_batch, 10_000);
        assert_eq!(run.commit_interval, Duration::from_millis(100));
        assert_eq!(run.rejoin_when_idle, None);
        assert_eq!(run.quirks, BrokerQuirks::Auto);
        assert_eq!(run.guarantee, Guarantee::EffectivelyOnce);
        assert_eq!(run.transactional_id, None);
    }

    #[test]
    fn exactly_once_is_refused_by_name_when_asked_to() {
        let mut run = LoopConfig::new(KafkaConfig::new("127.0.0.1:1"), "g");
        assert!(run.refuse_exactly_once("notifier", "because").is_ok());
        run.guarantee = Guarantee::ExactlyOnce;
        let err = run.refuse_exactly_once("notifier", "because").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("notifier") && text.contains("because"),
            "{text}"
        );
    }
}
