//! [`ClientError`]: why a call to the Kafka client (or the simulated cluster) failed, and
//! whether trying again may help.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Why a client call failed: a transient error (the loop backs off and tries again) or a fatal
/// one (the worker stops). The cause is kept.
#[derive(Debug, thiserror::Error)]
#[error("{cause}")]
pub struct ClientError {
    transient: bool,
    /// A short, bounded name for metrics (`broker-transport`, `timed-out`, …).
    kind: &'static str,
    #[source]
    cause: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl ClientError {
    /// A transient error of `kind` (bounded: a metric label).
    pub fn transient(
        kind: &'static str,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        ClientError {
            transient: true,
            kind,
            cause: cause.into(),
        }
    }

    /// A fatal error of `kind`.
    pub fn fatal(
        kind: &'static str,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        ClientError {
            transient: false,
            kind,
            cause: cause.into(),
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// The error's kind (a bounded metric label).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The cause.
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.cause
    }
}

impl From<KafkaError> for ClientError {
    fn from(e: KafkaError) -> Self {
        let (transient, kind) = classify(&e);
        ClientError {
            transient,
            kind,
            cause: Box::new(e),
        }
    }
}

/// Whether a librdkafka error is worth trying again, and its kind.
///
/// Transient: the cluster is (partly) out of reach or reorganising — a broker down or being
/// replaced (`DestroyBroker` in a metadata fetch), a request or operation timing out, a leader
/// or coordinator moving, this member's group membership changing. These end by themselves
/// when the broker comes back or the cluster settles; a worker that stopped for one of them
/// would stop whenever one broker of several did. Fatal: everything else (configuration,
/// authorisation, a fenced or broken producer, a record the broker refuses).
fn classify(e: &KafkaError) -> (bool, &'static str) {
    use RDKafkaErrorCode as C;
    if let KafkaError::Transaction(t) = e {
        return if t.is_fatal() {
            (false, "transaction-fatal")
        } else {
            (true, "transaction")
        };
    }
    if matches!(e, KafkaError::MessageConsumptionFatal(_)) {
        return (false, "consumer-fatal");
    }
    let Some(code) = e.rdkafka_error_code() else {
        return (false, "other");
    };
    match code {
        C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::Resolve
        | C::BrokerDestroy
        | C::DestroyBroker
        | C::BrokerNotAvailable
        | C::NetworkException
        | C::UnknownBroker => (true, "broker-unavailable"),
        C::MessageTimedOut
        | C::OperationTimedOut
        | C::RequestTimedOut
        | C::TimedOutQueue
        | C::Retry
        | C::WaitCache
        | C::InProgress
        | C::PreviousInProgress => (true, "timed-out"),
        C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::ReplicaNotAvailable
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::KafkaStorageError
        | C::UnknownTopicOrPartition
        | C::UnknownPartition
        | C::UnknownTopic
        | C::OffsetNotAvailable
        | C::PreferredLeaderNotAvailable => (true, "leadership"),
        C::CoordinatorLoadInProgress
        | C::CoordinatorNotAvailable
        | C::NotCoordinator
        | C::WaitingForCoordinator
        | C::ConcurrentTransactions
        | C::UnstableOffsetCommit => (true, "coordinator"),
        C::UnknownMemberId
        | C::IllegalGeneration
        | C::RebalanceInProgress
        | C::FencedInstanceId
        | C::StaleMemberEpoch
        | C::AssignmentLost
        | C::State => (true, "membership"),
        C::ThrottlingQuotaExceeded | C::QueueFull => (true, "throttled"),
        _ => (false, "other"),
    }
}

impl ClientError {
    /// Whether a commit was refused because this member no longer owns its partitions: normal
    /// on Apache Kafka when a session expires (e.g. a long pause) or a rebalance is under way.
    pub fn lost_membership(&self) -> bool {
        self.kind == "membership"
    }

    /// Whether a transactional producer hit a fatal error (e.g. a bumped epoch): only a new
    /// producer can write again.
    pub fn is_fatal_transaction(&self) -> bool {
        self.kind == "transaction-fatal"
    }
}
