//! Notification rows as the `notifications` topic's Avro record (`schemas/notification.avsc`,
//! encoded by [`tradestream_codec::records`]).

use tradestream_codec::avro::{AvroError, Framing};
use tradestream_codec::records::{NotificationRecord, decode_notification, encode_notification};
use tradestream_store::model::NotificationRow;

/// The record of a notification row.
pub fn to_record(row: &NotificationRow) -> NotificationRecord {
    NotificationRecord {
        account: row.account.clone(),
        source_partition: row.source_partition,
        seq: row.seq,
        ts_ms: row.ts_ms,
        kind: row.kind.clone(),
        order_id: row.order_id.clone(),
        symbol: row.symbol.clone(),
        text: row.text.clone(),
    }
}

/// The notification row of a record.
pub fn from_record(rec: NotificationRecord) -> NotificationRow {
    NotificationRow {
        account: rec.account,
        source_partition: rec.source_partition,
        seq: rec.seq,
        ts_ms: rec.ts_ms,
        kind: rec.kind,
        order_id: rec.order_id,
        symbol: rec.symbol,
        text: rec.text,
    }
}

/// Encodes a notification for the `notifications` topic.
pub fn encode(row: &NotificationRow, framing: Framing) -> Result<Vec<u8>, AvroError> {
    encode_notification(&to_record(row), framing)
}

/// Reads a notification from the `notifications` topic (either framing).
pub fn decode(bytes: &[u8]) -> Result<NotificationRow, AvroError> {
    decode_notification(bytes).map(from_record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_rows_round_trip_through_the_topic_record() {
        let row = NotificationRow {
            account: "acct-1".into(),
            source_partition: 2,
            seq: 31,
            ts_ms: 1_732_900_000_000,
            kind: "fill".into(),
            order_id: "o-9".into(),
            symbol: "BTC-USD".into(),
            text: "sold 0.50 BTC-USD at 60000.00 (filled)".into(),
        };
        for framing in [Framing::SingleObject, Framing::Confluent { schema_id: 12 }] {
            assert_eq!(decode(&encode(&row, framing).unwrap()).unwrap(), row);
        }
        assert!(decode(b"not avro").is_err());
    }
}
