//! [`AvroError`]: why a record could not be read or written.

use std::fmt;

/// Why an Avro record could not be read (or written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvroError {
    /// The record is empty or ends inside its header or body.
    #[error("truncated record")]
    Truncated,
    /// The first bytes are neither `C3 01` (single-object) nor `00` (Confluent).
    #[error(
        "bad magic {}: expected C3 01 (Avro single-object) or 00 (Confluent)",
        hex(.0)
    )]
    BadMagic(Vec<u8>),
    /// A single-object header names a schema this reader does not know.
    #[error("unknown schema fingerprint {0:#018x}")]
    UnknownFingerprint(u64),
    /// The body is not a valid record of the schema.
    #[error("bad record: {0}")]
    Decode(String),
    /// Bytes left over after the record: it was written with another schema.
    #[error("{0} bytes after the end of the record")]
    TrailingBytes(usize),
    /// The record is well-formed Avro but a field's value is missing or unusable.
    #[error("{field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The value has no Avro form (an invalid command).
    #[error("cannot encode: {0}")]
    Encode(&'static str),
    /// A schema text (e.g. from a schema registry) is not a valid Avro schema.
    #[error("invalid schema: {0}")]
    Schema(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl AvroError {
    pub(super) fn field(field: &'static str, reason: impl Into<String>) -> Self {
        AvroError::Field {
            field,
            reason: reason.into(),
        }
    }

    pub(super) fn decode(field: &'static str, reason: fmt::Arguments<'_>) -> Self {
        AvroError::Decode(format!("{field}: {reason}"))
    }
}
