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

/// Room for the three numbers of a [`Provenance`] as decimal text, on the stack.
#[derive(Debug, Default)]
pub struct ProvenanceBuf {
    partition: [u8; 20],
    offset: [u8; 20],
    seq: [u8; 20],
}

impl<'a> Provenance<'a> {
    /// The provenance as (key, value) header pairs, the numbers written into `buf`: building
    /// them allocates nothing.
    pub fn pairs<'b>(&self, buf: &'b mut ProvenanceBuf) -> [(&'static str, &'b [u8]); 5]
    where
        'a: 'b,
    {
        let p = self.source_partition;
        let partition = decimal(&mut buf.partition, p < 0, p.unsigned_abs().into());
        let o = self.source_offset;
        let offset = decimal(&mut buf.offset, o < 0, o.unsigned_abs());
        let seq = decimal(&mut buf.seq, false, self.seq);
        [
            (SOURCE_TOPIC, self.source_topic.as_bytes()),
            (SOURCE_PARTITION, partition),
            (SOURCE_OFFSET, offset),
            (SEQ, seq),
            (WORKER, self.worker.as_bytes()),
        ]
    }

    /// The provenance as record headers (values as decimal text, readable with any tool). The
    /// numbers are written into stack buffers: building the headers allocates nothing on the
    /// Rust side (librdkafka copies each header into its own list).
    pub fn headers(&self) -> OwnedHeaders {
        let mut buf = ProvenanceBuf::default();
        owned(&self.pairs(&mut buf))
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

/// librdkafka headers holding these (key, value) pairs, in this order.
pub fn owned(pairs: &[(&str, &[u8])]) -> OwnedHeaders {
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

/// Record headers looked up by key: librdkafka's, or a simulated record's.
pub trait HeaderLookup {
    /// The value of the first header named `key` (`None`: absent, or a null value).
    fn header(&self, key: &str) -> Option<&[u8]>;
}

impl<H: Headers> HeaderLookup for H {
    fn header(&self, key: &str) -> Option<&[u8]> {
        self.iter().find(|h| h.key == key).and_then(|h| h.value)
    }
}

/// Headers as owned (key, value) pairs, in order (e.g. a simulated record's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList(pub Vec<(String, Vec<u8>)>);

impl HeaderList {
    /// A copy of `pairs`.
    pub fn of(pairs: &[(&str, &[u8])]) -> Self {
        HeaderList(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                .collect(),
        )
    }
}

impl HeaderLookup for HeaderList {
    fn header(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

/// The text value of header `key`, if present and UTF-8.
pub fn text<'a, H: HeaderLookup + ?Sized>(headers: &'a H, key: &str) -> Option<&'a str> {
    headers
        .header(key)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The integer value of header `key`, if present and numeric.
pub fn number<H: HeaderLookup + ?Sized>(headers: &H, key: &str) -> Option<i64> {
    text(headers, key).and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests;
