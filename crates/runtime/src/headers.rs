//! Provenance headers on every output record (docs/design.md §1): where it came from and its `seq`.

use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Header: input partition the record derives from.
pub const SOURCE_PARTITION: &str = "source-partition";
/// Header: input offset the record derives from.
pub const SOURCE_OFFSET: &str = "source-offset";
/// Header: input topic the record derives from.
pub const SOURCE_TOPIC: &str = "source-topic";
/// Header: the record's sequence number. On the matcher's outputs it counts per input partition
/// and output topic, contiguous from 1; the downstream workers put the `seq` of the record they
/// derive from (a candle's last trade, a notification's execution), which several of their
/// records can share (the two notifications of a trade between two accounts do).
pub const SEQ: &str = "seq";
/// Header: the worker that wrote the record.
pub const WORKER: &str = "worker";

/// Where an output record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance<'a> {
    /// Input topic.
    pub source_topic: &'a str,
    /// Input partition.
    pub source_partition: i32,
    /// Input offset.
    pub source_offset: i64,
    /// Output sequence number.
    pub seq: u64,
    /// Writing worker.
    pub worker: &'a str,
}

impl Provenance<'_> {
    /// The provenance as record headers (values as decimal text, readable with any tool).
    pub fn headers(&self) -> OwnedHeaders {
        let partition = self.source_partition.to_string();
        let offset = self.source_offset.to_string();
        let seq = self.seq.to_string();
        with_text(&[
            (SOURCE_TOPIC, self.source_topic),
            (SOURCE_PARTITION, &partition),
            (SOURCE_OFFSET, &offset),
            (SEQ, &seq),
            (WORKER, self.worker),
        ])
    }
}

/// Record headers with these text values, in this order.
pub fn with_text(pairs: &[(&str, &str)]) -> OwnedHeaders {
    pairs.iter().fold(
        OwnedHeaders::new_with_capacity(pairs.len()),
        |h, &(key, value)| {
            h.insert(Header {
                key,
                value: Some(value),
            })
        },
    )
}

/// The text value of header `key`, if present and UTF-8.
pub fn text<'a, H: Headers>(headers: &'a H, key: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The integer value of header `key`, if present and numeric.
pub fn number<H: Headers>(headers: &H, key: &str) -> Option<i64> {
    text(headers, key).and_then(|v| v.parse().ok())
}
