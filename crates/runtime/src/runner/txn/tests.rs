//! Unit tests of the transaction states.

use super::*;

#[test]
fn only_a_doomed_transaction_gives_up_its_failure() {
    assert!(!Txn::new(false).enabled());
    let mut t = Txn::new(true);
    assert!(t.enabled() && !t.pending());
    assert!(t.take_doom().is_none());
    t = Txn::Open;
    assert!(t.pending());
    assert!(t.take_doom().is_none());
    assert!(matches!(t, Txn::Open), "an open transaction stays open");
    t = Txn::Doomed(ClientError::transient("timed-out", "write failed"));
    assert!(t.pending());
    let e = t.take_doom().expect("the failure");
    assert_eq!(e.to_string(), "write failed");
    assert!(matches!(t, Txn::Idle));
}
