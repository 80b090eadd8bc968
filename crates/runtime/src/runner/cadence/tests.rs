//! Unit tests of the checkpoint cadence, on explicit instants.

use super::*;
use crate::KafkaConfig;

fn cadence(now: Instant) -> Cadence {
    let mut cfg = LoopConfig::new(KafkaConfig::new("127.0.0.1:1"), "g");
    cfg.commit_interval = Duration::from_millis(100);
    cfg.max_batch = 1_000;
    Cadence::new(&cfg, now)
}

#[test]
fn checkpoints_come_every_interval_however_many_records_arrive() {
    let t0 = Instant::now();
    let mut c = cadence(t0);
    let ms = Duration::from_millis;
    assert!(!c.due(t0, false));
    // Far more than a batch, but the matcher's offsets-only checkpoints wait for the clock.
    c.took(50_000);
    assert!(!c.due(t0 + ms(99), false));
    assert!(c.due(t0 + ms(100), false));
    c.checkpointed(t0 + ms(103));
    assert!(
        !c.due(t0 + ms(150), false),
        "the interval restarts at the checkpoint"
    );
    assert!(c.due(t0 + ms(203), false));
    // A quiet loop still checkpoints on time: nothing taken, the clock alone.
    c.checkpointed(t0 + ms(203));
    assert!(c.due(t0 + ms(303), false));
}

#[test]
fn store_checkpoints_also_come_after_a_batch_of_records() {
    let t0 = Instant::now();
    let mut c = cadence(t0);
    c.took(999);
    assert!(!c.due(t0, true));
    c.took(1);
    assert!(
        c.due(t0, true),
        "max_batch records: a store transaction is due"
    );
    assert!(!c.due(t0, false), "but not an offsets-only checkpoint");
    c.checkpointed(t0);
    assert!(!c.due(t0, true), "the count restarts at the checkpoint");
}

#[test]
fn the_wait_for_input_ends_when_the_next_checkpoint_is_due() {
    let t0 = Instant::now();
    let c = cadence(t0);
    assert_eq!(c.wait(t0), Duration::from_millis(100));
    assert_eq!(
        c.wait(t0 + Duration::from_millis(70)),
        Duration::from_millis(30)
    );
    assert_eq!(c.wait(t0 + Duration::from_millis(500)), Duration::ZERO);
    let mut slow = LoopConfig::new(KafkaConfig::new("127.0.0.1:1"), "g");
    slow.commit_interval = Duration::from_secs(5);
    let c = Cadence::new(&slow, t0);
    assert_eq!(
        c.wait(t0),
        Cadence::MAX_WAIT,
        "a quiet loop looks around often"
    );
}
