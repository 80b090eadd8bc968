//! Unit tests of the loop settings.

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
