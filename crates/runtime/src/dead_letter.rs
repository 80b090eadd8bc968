//! Dead letters: records a worker could not decode or process, kept with what went wrong.

use crate::headers::{HeaderList, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC, WORKER};

/// Header: the error class (`decode`, `oversized`, `process`).
pub const ERROR_CLASS: &str = "error-class";
/// Header: the error message.
pub const ERROR_MESSAGE: &str = "error-message";
/// Header, present when the payload was cut to [`MAX_PAYLOAD`] bytes: the original size.
pub const PAYLOAD_TRUNCATED: &str = "payload-truncated-from";

/// The largest payload a dead letter keeps. A record near the broker's message limit could not
/// be written again with headers added (and the producer refuses anything over its own
/// `message.max.bytes`), so an oversized record keeps a prefix: enough to tell what it was.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// The largest key and error message a dead letter keeps, for the same reason.
pub const MAX_TEXT: usize = 4 * 1024;

/// The part of `bytes` a dead letter keeps (at most `limit` bytes), and the original size when
/// it was cut.
pub fn bounded(bytes: &[u8], limit: usize) -> (&[u8], Option<usize>) {
    if bytes.len() <= limit {
        (bytes, None)
    } else {
        (&bytes[..limit], Some(bytes.len()))
    }
}

/// `message` cut to at most [`MAX_TEXT`] bytes, at a character boundary.
fn bounded_text(message: &str) -> &str {
    let mut end = message.len().min(MAX_TEXT);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// Why a record is a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poison {
    /// Bounded class, usable as a metric label.
    pub class: &'static str,
    /// The message, for people.
    pub message: String,
}

impl Poison {
    /// A dead letter of `class` (bounded: a metric label) saying `message`.
    pub fn new(class: &'static str, message: impl Into<String>) -> Self {
        Poison {
            class,
            message: message.into(),
        }
    }

    /// A record that could not be decoded.
    pub fn decode(error: impl std::fmt::Display) -> Self {
        Poison::new("decode", error.to_string())
    }
}

/// Headers of a dead letter for the record at `topic`/`partition`/`offset`; `truncated_from`
/// is the payload's original size when the dead letter keeps only a prefix of it.
pub fn headers(
    poison: &Poison,
    topic: &str,
    partition: i32,
    offset: i64,
    worker: &str,
    truncated_from: Option<usize>,
) -> HeaderList {
    let partition = partition.to_string();
    let offset = offset.to_string();
    let mut fields = vec![
        (ERROR_CLASS, poison.class),
        (ERROR_MESSAGE, bounded_text(&poison.message)),
        (SOURCE_TOPIC, topic),
        (SOURCE_PARTITION, &partition),
        (SOURCE_OFFSET, &offset),
        (WORKER, worker),
    ];
    let size = truncated_from.map(|n| n.to_string());
    if let Some(size) = &size {
        fields.push((PAYLOAD_TRUNCATED, size));
    }
    HeaderList(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
            .collect(),
    )
}
