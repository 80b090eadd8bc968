//! Dead letters: records a worker could not decode or process, kept with what went wrong.

use rdkafka::message::OwnedHeaders;

use crate::headers::{self, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC, WORKER};

/// Header: the error class (`decode`, `oversized`, `process`).
pub const ERROR_CLASS: &str = "error-class";
/// Header: the error message.
pub const ERROR_MESSAGE: &str = "error-message";

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

/// Headers of a dead letter for the record at `topic`/`partition`/`offset`.
pub fn headers(
    poison: &Poison,
    topic: &str,
    partition: i32,
    offset: i64,
    worker: &str,
) -> OwnedHeaders {
    let partition = partition.to_string();
    let offset = offset.to_string();
    headers::with_text(&[
        (ERROR_CLASS, poison.class),
        (ERROR_MESSAGE, &poison.message),
        (SOURCE_TOPIC, topic),
        (SOURCE_PARTITION, &partition),
        (SOURCE_OFFSET, &offset),
        (WORKER, worker),
    ])
}
