//! Unit tests of the re-fetch gate, on explicit instants.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn on_apache_kafka_a_gap_is_processed_and_a_re_read_skipped() {
    let t0 = Instant::now();
    let mut f = Fetch::start(100, false, t0);
    assert_eq!(f, Fetch::Steady, "no watch without the embedded quirks");
    assert_eq!(f.gate(100, 100, false, t0), Gate::Process);
    // Transaction markers took offsets 101 and 102.
    assert_eq!(f.gate(103, 101, false, t0), Gate::Process);
    assert_eq!(f.gate(50, 104, false, t0), Gate::Skip);
    assert_eq!(f.due(104, t0 + ms(60_000)), None, "never re-fetched");
}

#[test]
fn on_the_embedded_broker_a_jump_is_fetched_again_from_further_back_each_time() {
    let t0 = Instant::now();
    let mut f = Fetch::Steady;
    // Expected 1000, got 1010: ask from 64 before.
    assert_eq!(
        f.gate(1010, 1000, true, t0),
        Gate::Refetch {
            from: 936,
            tries: 1
        }
    );
    // More records after the jump while waiting: set aside.
    assert_eq!(f.gate(1011, 1000, true, t0 + ms(10)), Gate::Skip);
    // Still jumping a second later: ask again from 256 before.
    assert_eq!(
        f.gate(1010, 1000, true, t0 + ms(1_000)),
        Gate::Refetch {
            from: 744,
            tries: 2
        }
    );
    // The answer now starts before the wanted offset: the re-fetch worked.
    assert_eq!(f.gate(990, 1000, true, t0 + ms(1_010)), Gate::Skip);
    assert_eq!(f, Fetch::Steady);
    assert_eq!(f.gate(1000, 1000, true, t0 + ms(1_011)), Gate::Process);
}

#[test]
fn when_the_tries_run_out_the_gap_is_taken_after_one_more_seek_to_it() {
    let t0 = Instant::now();
    let mut f = Fetch::Steady;
    let mut now = t0;
    for tries in 1..=REFETCH_TRIES {
        assert!(
            matches!(f.gate(5000, 4000, true, now), Gate::Refetch { tries: t, .. } if t == tries)
        );
        now += REFETCH_WAIT;
    }
    assert_eq!(
        f.gate(5000, 4000, true, now),
        Gate::Refetch {
            from: 4000,
            tries: 0
        },
        "back to the gap itself"
    );
    assert_eq!(f, Fetch::AcceptingGap);
    assert_eq!(
        f.gate(5000, 4000, true, now),
        Gate::Process,
        "whatever comes first"
    );
    assert_eq!(f, Fetch::Steady);
}

#[test]
fn a_partition_resumed_inside_its_last_batch_is_fetched_again_after_a_quiet_second() {
    let t0 = Instant::now();
    let mut f = Fetch::start(700, true, t0);
    assert_eq!(f, Fetch::Resumed { since: t0 });
    assert_eq!(f.due(700, t0 + ms(999)), None);
    assert_eq!(
        f.due(700, t0 + ms(1_000)),
        Some(Gate::Refetch {
            from: 636,
            tries: 1
        })
    );
    // No answer again: further back, on the timer too.
    assert_eq!(
        f.due(700, t0 + ms(2_000)),
        Some(Gate::Refetch {
            from: 444,
            tries: 2
        })
    );
    // Any record ends the watch.
    let mut g = Fetch::start(700, true, t0);
    assert_eq!(g.gate(700, 700, true, t0 + ms(5)), Gate::Process);
    assert_eq!(g.due(700, t0 + ms(5_000)), None);
    // A partition starting at 0 cannot start inside a batch.
    assert_eq!(Fetch::start(0, true, t0), Fetch::Steady);
}
