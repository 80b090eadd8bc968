//! Notification rows as the `notifications` topic's Avro record (`schemas/notification.avsc`,
//! encoded by [`tradestream_codec::records`]), and [`Dedup`], what a reader of the topic needs
//! to see each notification once.

use std::collections::BTreeMap;

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

/// What a reader of the `notifications` topic keeps to drop duplicates. The topic is
/// at-least-once: a crash between the broker's acknowledgement and the notifier's store write
/// sends that batch's notifications again, unchanged.
///
/// The idempotency key is `(account, source_partition, seq)`
/// ([`NotificationRow::idempotency_key`]). `seq` is the *execution's* seq, which the two
/// notifications of a trade between two accounts (maker and taker) share, so
/// `(source_partition, seq)` alone would merge them and drop one; a self-match is one combined
/// notification (see [`crate::notify`]). The topic is keyed by account and the notifier writes
/// each account's notifications from one source partition in seq order, so a record at or below
/// the last seq seen for its account and source partition is a duplicate: the reader keeps one
/// number per (account, source partition), not every key it has seen.
#[derive(Debug, Default)]
pub struct Dedup {
    /// By account, then source partition: the highest seq seen.
    seen: BTreeMap<String, BTreeMap<i32, i64>>,
}

impl Dedup {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// True the first time a notification is seen; false for a duplicate.
    pub fn first_time(&mut self, row: &NotificationRow) -> bool {
        let (account, source_partition, seq) = row.idempotency_key();
        let by_partition = match self.seen.get_mut(account) {
            Some(p) => p,
            None => self.seen.entry(account.to_owned()).or_default(),
        };
        match by_partition.get_mut(&source_partition) {
            Some(last) if seq <= *last => false,
            Some(last) => {
                *last = seq;
                true
            }
            None => {
                by_partition.insert(source_partition, seq);
                true
            }
        }
    }
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

    #[test]
    fn a_reader_keeps_both_sides_of_a_trade_and_drops_only_resent_copies() {
        use tradestream_codec::avro::{DecodedEvent, DecodedKind};
        use tradestream_engine::{Account, OrderId, Side, Symbol};

        let trade = |seq: u64, maker: &str, taker: &str| DecodedEvent {
            seq,
            ts: 1_732_900_000_000 + seq as i64,
            symbol: Symbol::new("BTC-USD").unwrap(),
            source_partition: 2,
            source_offset: seq as i64,
            kind: DecodedKind::Trade {
                price: "100".parse().unwrap(),
                qty: "1".parse().unwrap(),
                maker_order_id: OrderId::new("m").unwrap(),
                maker_account: Account::new(maker).unwrap(),
                maker_leaves: "0".parse().unwrap(),
                taker_order_id: OrderId::new("t").unwrap(),
                taker_account: Account::new(taker).unwrap(),
                taker_side: Side::Buy,
                taker_leaves: "0".parse().unwrap(),
            },
        };
        // What one notifications partition may carry when alice's and bob's keys hash to it:
        // a fill between them (two notifications, one execution seq), a self-match (one), then
        // the first batch again, re-sent after a crash (at-least-once).
        let mut topic: Vec<NotificationRow> = Vec::new();
        for ev in [trade(7, "alice", "bob"), trade(8, "carol", "carol")] {
            topic.extend(crate::notify::notifications(&ev));
        }
        assert_eq!(topic.len(), 3);
        topic.extend(crate::notify::notifications(&trade(7, "alice", "bob")));
        // The same seq from another source partition is another execution.
        let elsewhere = DecodedEvent {
            source_partition: 4,
            ..trade(7, "alice", "dave")
        };
        topic.extend(crate::notify::notifications(&elsewhere));
        // Through the topic record, as a reader gets them.
        let read: Vec<NotificationRow> = topic
            .iter()
            .map(|r| decode(&encode(r, Framing::SingleObject).unwrap()).unwrap())
            .collect();
        let mut dedup = Dedup::new();
        let kept: Vec<(String, i64)> = read
            .iter()
            .filter(|r| dedup.first_time(r))
            .map(|r| (r.account.clone(), r.seq))
            .collect();
        assert_eq!(
            kept,
            [
                ("alice".to_owned(), 7),
                ("bob".to_owned(), 7),
                ("carol".to_owned(), 8),
                ("alice".to_owned(), 7),
                ("dave".to_owned(), 7)
            ],
            "every account's notification once, the re-sent copies dropped"
        );
    }
}
