use rdkafka::Offset;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::start_offset;

#[test]
fn a_partition_starts_at_the_watermark_read_when_it_is_assigned() {
    assert_eq!(start_offset(Ok((3, 17))), Some(Offset::Offset(17)));
}

/// `Offset::End` is resolved when the first fetch starts, not when the hub reports the partition
/// assigned: a record written in between (a test's, or a client's who subscribed at once) would
/// never be read. On Apache Kafka a topic created a moment ago often has no leader yet.
#[test]
fn a_partition_without_a_watermark_is_not_assigned_yet() {
    let no_leader = KafkaError::MetadataFetch(RDKafkaErrorCode::LeaderNotAvailable);
    assert_eq!(start_offset(Err(no_leader)), None);
    let timeout = KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut);
    assert_eq!(start_offset(Err(timeout)), None);
}
