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
mod tests;
