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
    /// The provenance as record headers (values as decimal text, readable with any tool). The
    /// numbers are written into stack buffers: building the headers allocates nothing on the
    /// Rust side (librdkafka copies each header into its own list).
    pub fn headers(&self) -> OwnedHeaders {
        let (mut partition, mut offset, mut seq) = ([0u8; 20], [0u8; 20], [0u8; 20]);
        let p = self.source_partition;
        let partition = decimal(&mut partition, p < 0, p.unsigned_abs().into());
        let o = self.source_offset;
        let offset = decimal(&mut offset, o < 0, o.unsigned_abs());
        let seq = decimal(&mut seq, false, self.seq);
        [
            (SOURCE_TOPIC, self.source_topic.as_bytes()),
            (SOURCE_PARTITION, partition),
            (SOURCE_OFFSET, offset),
            (SEQ, seq),
            (WORKER, self.worker.as_bytes()),
        ]
        .iter()
        .fold(OwnedHeaders::new_with_capacity(5), |h, &(key, value)| {
            h.insert(Header {
                key,
                value: Some(value),
            })
        })
    }
}

/// `n` (negated when `negative`) as decimal text, written at the end of `buf` (20 bytes hold
/// every `i64` and `u64`).
fn decimal(buf: &mut [u8; 20], negative: bool, n: u64) -> &[u8] {
    let mut rest = n;
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 || at == 0 {
            break;
        }
    }
    if negative && at > 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_to_string_writes_them() {
        for n in [
            0,
            7,
            -1,
            10,
            -10,
            1_234_567,
            i128::from(i32::MIN),
            i128::from(i32::MAX),
            i128::from(i64::MIN),
            i128::from(i64::MAX),
            i128::from(u64::MAX),
        ] {
            let mut buf = [0u8; 20];
            let magnitude = u64::try_from(n.unsigned_abs()).unwrap();
            assert_eq!(
                decimal(&mut buf, n < 0, magnitude),
                n.to_string().as_bytes()
            );
        }
    }

    #[test]
    fn provenance_headers_carry_decimal_text() {
        let headers = Provenance {
            source_topic: "orders",
            source_partition: 3,
            source_offset: -1,
            seq: u64::MAX,
            worker: "matcher",
        }
        .headers();
        assert_eq!(text(&headers, SOURCE_TOPIC), Some("orders"));
        assert_eq!(text(&headers, SOURCE_PARTITION), Some("3"));
        assert_eq!(text(&headers, SOURCE_OFFSET), Some("-1"));
        assert_eq!(text(&headers, SEQ), Some("18446744073709551615"));
        assert_eq!(text(&headers, WORKER), Some("matcher"));
    }
}
