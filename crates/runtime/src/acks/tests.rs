//! Unit tests of the acknowledgement bookkeeping.

use super::*;

const OK: Result<(), ClientError> = Ok(());

fn lost(why: &str) -> Result<(), ClientError> {
    Err(ClientError::transient("timed-out", why.to_owned()))
}

#[test]
fn a_record_without_outputs_is_acknowledged_once_processed() {
    let mut acks = Acks::default();
    let s = acks.open(10);
    assert_eq!(acks.acknowledged(s), Some(10));
    acks.processed(s, 10);
    acks.processed(s, 11);
    assert_eq!(acks.acknowledged(s), Some(12));
}

#[test]
fn out_of_order_reports_advance_only_past_fully_acknowledged_records() {
    let mut acks = Acks::default();
    let s = acks.open(0);
    // Record 0 makes two outputs, 1 none, 2 one, 3 two.
    let a0 = acks.output(s, 0);
    let b0 = acks.output(s, 0);
    acks.processed(s, 0);
    acks.processed(s, 1);
    let a2 = acks.output(s, 2);
    acks.processed(s, 2);
    let a3 = acks.output(s, 3);
    let b3 = acks.output(s, 3);
    acks.processed(s, 3);
    assert_eq!(acks.acknowledged(s), Some(0));
    assert_eq!(acks.in_flight(), 5);

    // Reports arrive newest first: nothing may be committed until record 0 is complete.
    acks.delivered(b3, OK);
    acks.delivered(a2, OK);
    acks.delivered(a0, OK);
    assert_eq!(
        acks.acknowledged(s),
        Some(0),
        "record 0 still has an output out"
    );
    acks.delivered(b0, OK);
    // 0, 1 and 2 are complete; 3 waits for a3.
    assert_eq!(acks.acknowledged(s), Some(3));
    acks.delivered(a3, OK);
    assert_eq!(acks.acknowledged(s), Some(4));
    assert_eq!(acks.in_flight(), 0);
    assert!(acks.losses().is_empty());
}

#[test]
fn a_record_still_being_processed_is_never_acknowledged() {
    let mut acks = Acks::default();
    let s = acks.open(5);
    let t = acks.output(s, 5);
    acks.delivered(t, OK);
    // Its first output is acknowledged, but the record may still make more.
    assert_eq!(acks.acknowledged(s), Some(5));
    let u = acks.output(s, 5);
    acks.processed(s, 5);
    assert_eq!(acks.acknowledged(s), Some(5));
    acks.delivered(u, OK);
    assert_eq!(acks.acknowledged(s), Some(6));
}

#[test]
fn partitions_are_independent() {
    let mut acks = Acks::default();
    let a = acks.open(0);
    let b = acks.open(100);
    let ta = acks.output(a, 0);
    acks.processed(a, 0);
    let tb = acks.output(b, 100);
    acks.processed(b, 100);
    acks.delivered(tb, OK);
    assert_eq!(acks.acknowledged(a), Some(0));
    assert_eq!(acks.acknowledged(b), Some(101));
    acks.delivered(ta, OK);
    assert_eq!(acks.acknowledged(a), Some(1));
}

#[test]
fn a_failure_is_kept_and_does_not_acknowledge_the_record() {
    let mut acks = Acks::default();
    let s = acks.open(0);
    let t0 = acks.output(s, 0);
    let t1 = acks.output(s, 1);
    acks.processed(s, 1);
    acks.delivered(t1, lost("Message timed out"));
    acks.delivered(t0, lost("later failure"));
    let losses = acks.losses();
    assert_eq!(losses.len(), 1);
    assert_eq!(losses[0].0, s);
    assert_eq!(losses[0].1, 0, "the lowest offset with a lost output");
    assert_eq!(losses[0].2.to_string(), "later failure");
    // Lost outputs are counted down (they are not coming), and nothing is acknowledged.
    assert_eq!(acks.in_flight(), 0);
    assert_eq!(acks.acknowledged(s), Some(0));
}

#[test]
fn reports_for_a_revoked_partition_cannot_touch_its_next_assignment() {
    let mut acks = Acks::default();
    let old = acks.open(0);
    let stale = acks.output(old, 0);
    acks.processed(old, 0);
    acks.close(old);
    assert_eq!(acks.acknowledged(old), None);
    // Assigned again, from where the group committed.
    let new = acks.open(0);
    assert_ne!(old, new);
    let fresh = acks.output(new, 0);
    acks.processed(new, 0);
    acks.delivered(stale, OK);
    assert_eq!(
        acks.acknowledged(new),
        Some(0),
        "the old report was ignored"
    );
    acks.delivered(fresh, OK);
    assert_eq!(acks.acknowledged(new), Some(1));
}

#[test]
fn untracked_outputs_count_in_flight_and_their_failures_count() {
    let mut acks = Acks::default();
    let t = acks.untracked();
    assert_eq!(t, UNTRACKED);
    assert_eq!(acks.in_flight(), 1);
    acks.delivered(t, lost("snapshot lost"));
    assert_eq!(acks.in_flight(), 0);
    assert!(acks.losses().is_empty(), "no partition is held back");
    let e = acks.take_untracked_loss().expect("the loss");
    assert_eq!(e.to_string(), "snapshot lost");
    assert!(acks.take_untracked_loss().is_none());
}

#[test]
fn tokens_round_trip_and_memory_is_only_for_records_with_outputs() {
    let mut acks = Acks::default();
    let s = acks.open(0);
    let mut tokens = Vec::new();
    for offset in 0..10_000 {
        if offset % 100 == 0 {
            tokens.push(acks.output(s, offset));
        }
        acks.processed(s, offset);
    }
    assert_eq!(acks.partitions[&s].waiting.len(), 100);
    for t in tokens.into_iter().rev() {
        acks.delivered(t, OK);
    }
    assert_eq!(acks.acknowledged(s), Some(10_000));
    assert!(acks.partitions[&s].waiting.is_empty());
    assert_eq!(untoken(token(Slot(7), 123)), (Slot(7), 123));
}

/// Issue 21: a failed delivery report used to count as settled, so "acknowledged up to" moved
/// past the lost output and a commit or a waiting snapshot could cover it; the idempotent
/// producer goes on writing later outputs after one times out, so the next restore took the
/// partition for unbroken and the lost output was never written again.
#[test]
fn a_lost_output_holds_its_partition_below_its_record() {
    let mut acks = Acks::default();
    let s = acks.open(0);
    let other = acks.open(100);
    let lost_output = acks.output(s, 0);
    acks.processed(s, 0);
    let later = acks.output(s, 1);
    acks.processed(s, 1);
    acks.processed(s, 2);
    let fine = acks.output(other, 100);
    acks.processed(other, 100);
    // The later output lands; the earlier one times out.
    acks.delivered(later, OK);
    acks.delivered(lost_output, lost("Local: Message timed out"));
    acks.delivered(fine, OK);
    assert_eq!(
        acks.acknowledged(s),
        Some(0),
        "record 0's output is lost: nothing from record 0 on may be committed or snapshotted"
    );
    assert_eq!(
        acks.acknowledged(other),
        Some(101),
        "other partitions go on"
    );
}
