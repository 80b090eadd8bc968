//! Unit tests of the interface's plain parts: error classification and delivery bookkeeping.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::*;
use crate::acks::UNTRACKED;

#[test]
fn a_broker_away_or_a_leader_moving_is_transient_and_a_refusal_is_not() {
    for code in [
        RDKafkaErrorCode::DestroyBroker,
        RDKafkaErrorCode::AllBrokersDown,
        RDKafkaErrorCode::BrokerTransportFailure,
        RDKafkaErrorCode::OperationTimedOut,
        RDKafkaErrorCode::MessageTimedOut,
        RDKafkaErrorCode::NotLeaderForPartition,
        RDKafkaErrorCode::CoordinatorNotAvailable,
    ] {
        let e = ClientError::from(KafkaError::MetadataFetch(code));
        assert!(e.is_transient(), "{code:?}");
    }
    let membership = ClientError::from(KafkaError::ConsumerCommit(
        RDKafkaErrorCode::UnknownMemberId,
    ));
    assert!(membership.is_transient());
    assert_eq!(membership.kind(), "membership");
    for code in [
        RDKafkaErrorCode::TopicAuthorizationFailed,
        RDKafkaErrorCode::MessageSizeTooLarge,
        RDKafkaErrorCode::InvalidConfig,
    ] {
        let e = ClientError::from(KafkaError::MessageProduction(code));
        assert!(!e.is_transient(), "{code:?}");
    }
    // The cause is kept.
    let e = ClientError::from(KafkaError::MetadataFetch(RDKafkaErrorCode::DestroyBroker));
    let source = std::error::Error::source(&e).expect("a source");
    assert!(
        source.to_string().contains("Meta data fetch error"),
        "{source}"
    );
}

#[test]
fn a_transient_error_is_found_anywhere_in_a_chain_of_causes() {
    #[derive(Debug, thiserror::Error)]
    #[error("restore failed")]
    struct Restore(#[source] ReadError);
    let deep: Box<dyn std::error::Error + Send + Sync> = Box::new(Restore(ReadError::Timeout {
        topic: "orders".into(),
        partition: 0,
        at: 7,
    }));
    assert!(is_transient(deep.as_ref()));
    let fatal: Box<dyn std::error::Error + Send + Sync> = Box::new(Restore(ReadError::Client(
        ClientError::fatal("other", "refused"),
    )));
    assert!(!is_transient(fatal.as_ref()));
    let plain: Box<dyn std::error::Error + Send + Sync> = "a worker's own error".into();
    assert!(!is_transient(plain.as_ref()));
}

#[test]
fn deliveries_settle_when_the_last_report_comes() {
    let d = Deliveries::default();
    let t = d.acks().untracked();
    assert_eq!(t, UNTRACKED);
    assert!(!d.wait_settled(Duration::from_millis(1)), "one in flight");
    d.report(t, Ok(()));
    assert!(d.wait_settled(Duration::ZERO));
}
