//! Broker quirks: behaviour that exists for one broker only (docs/design.md §8).
//!
//! Apache Kafka is the reference. The embedded broker (tansu 0.6, memory storage) differs in two
//! ways the consumer loop must work around, and only there:
//!
//! - a fetch that starts inside a record batch is answered from the *next* batch, so a consumer
//!   that resumes mid-batch sees a jump in offsets and must fetch again from further back;
//! - a member whose session expires is not evicted by a rebalance; only a joining member
//!   triggers one, so a worker left without partitions re-joins after a while;
//! - a fetch is answered only after the broker has slept through its wait (`fetch.wait.max.ms`,
//!   half of it when that is 250 ms or more), even when records are there: with librdkafka's
//!   500 ms default every hop of the pipeline would add a quarter of a second, so consumers
//!   there ask for [`EMBEDDED_FETCH_WAIT_MS`] ([`BrokerQuirks::tune_consumer`]).
//!
//! On Apache Kafka an offset gap is normal (transaction control records, aborted transactions
//! under `read_committed`, compaction) and is never re-fetched; the group coordinator evicts
//! expired members by itself.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::KafkaConfig;

/// The cluster id the embedded broker announces; [`BrokerQuirks::Auto`] recognises it.
pub const EMBEDDED_CLUSTER_ID: &str = "tradestream-embedded-tansu";

/// How long a worker of the embedded broker waits without partitions before it re-joins.
pub const EMBEDDED_REJOIN_WHEN_IDLE: Duration = Duration::from_secs(15);

/// The fetch wait consumers of the embedded broker ask for: every fetch there takes this long,
/// so it bounds the latency each consuming hop adds; 5 ms keeps it small at the cost of at
/// most 200 fetch requests a second per idle consumer.
pub const EMBEDDED_FETCH_WAIT_MS: &str = "5";

/// Which broker's quirks the loop works around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BrokerQuirks {
    /// Ask the cluster for its id: the embedded broker's id switches the tansu workarounds on,
    /// any other id (or no answer) leaves them off.
    #[default]
    Auto,
    /// None: Apache Kafka semantics (the reference).
    None,
    /// The embedded broker (tansu 0.6): re-fetch on offset gaps, re-join when idle.
    Tansu,
}

impl BrokerQuirks {
    /// Resolves [`BrokerQuirks::Auto`] by asking the cluster at `kafka` for its id.
    pub fn resolve(self, kafka: &KafkaConfig) -> BrokerQuirks {
        match self {
            BrokerQuirks::Auto => match cluster_id(kafka, Duration::from_secs(10)) {
                Some(id) if id == EMBEDDED_CLUSTER_ID => BrokerQuirks::Tansu,
                _ => BrokerQuirks::None,
            },
            other => other,
        }
    }

    /// Whether an offset jump is fetched again (tansu) or accepted as a normal gap (Kafka).
    pub fn refetch_gaps(self) -> bool {
        self == BrokerQuirks::Tansu
    }

    /// Consumer settings these quirks call for, unless the user chose them.
    pub fn tune_consumer(self, kafka: &KafkaConfig, consumer: &mut ClientConfig) {
        if self == BrokerQuirks::Tansu && !kafka.passthrough.contains_key("fetch.wait.max.ms") {
            consumer.set("fetch.wait.max.ms", EMBEDDED_FETCH_WAIT_MS);
        }
    }

    /// The re-join period these quirks call for when none is configured.
    pub fn default_rejoin_when_idle(self) -> Option<Duration> {
        (self == BrokerQuirks::Tansu).then_some(EMBEDDED_REJOIN_WHEN_IDLE)
    }
}

/// The cluster id the brokers at `kafka` report, if any answers within `timeout`.
pub fn cluster_id(kafka: &KafkaConfig, timeout: Duration) -> Option<String> {
    let consumer: BaseConsumer = kafka.reader().create().ok()?;
    consumer.client().fetch_cluster_id(timeout)
}
