//! Unit tests of the downstream dedup rule.

use super::*;

#[test]
fn each_seq_is_applied_once_in_order_across_a_restore() {
    let mut a = Applied::default();
    assert_eq!(a.judge("executions", 2, 2, 1), Verdict::Apply);
    assert_eq!(a.judge("executions", 2, 2, 2), Verdict::Apply);
    assert_eq!(a.judge("executions", 2, 2, 2), Verdict::Duplicate, "a retry");
    assert_eq!(a.judge("executions", 2, 2, 1), Verdict::Duplicate, "a zombie's late write");
    assert_eq!(a.last("executions", 2), Some(2));
    // A restart: the worker restores what its store holds; memory is gone.
    let mut b = Applied::default();
    b.restore("executions", 2, a.last("executions", 2));
    assert_eq!(b.judge("executions", 2, 2, 1), Verdict::Duplicate);
    assert_eq!(b.judge("executions", 2, 2, 3), Verdict::Apply);
}

#[test]
fn a_record_ahead_of_a_gap_waits_for_the_missing_ones() {
    let mut a = Applied::default();
    a.restore("trades", 0, Some(10));
    // 11 was lost; the producer went on with 12 and 13.
    assert_eq!(a.judge("trades", 0, 0, 12), Verdict::AheadOfGap { expected: 11 });
    assert_eq!(a.judge("trades", 0, 0, 13), Verdict::AheadOfGap { expected: 11 });
    // The matcher's restore writes 11, 12, 13 again, in order.
    for seq in 11..=13 {
        assert_eq!(a.judge("trades", 0, 0, seq), Verdict::Apply);
    }
    assert_eq!(a.last("trades", 0), Some(13));
}

#[test]
fn partitions_and_topics_are_independent_and_foreign_sources_are_not_judged() {
    let mut a = Applied::default();
    assert_eq!(a.judge("trades", 0, 0, 5), Verdict::Apply, "the first seen");
    assert_eq!(a.judge("executions", 0, 0, 1), Verdict::Apply);
    assert_eq!(a.judge("trades", 1, 1, 1), Verdict::Apply);
    assert_eq!(a.judge("trades", 1, 0, 1), Verdict::Apply, "not this co-partition");
    assert_eq!(a.last("trades", 1), Some(1));
    a.forget("trades", 0);
    assert_eq!(a.last("trades", 0), None);
}
