//! The record types ([`RecordType`]): their `.avsc` text, parsed schema and fingerprint.

use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::rabin::Rabin;

use super::{AvroError, CONFLUENT_MAGIC, Framing, Header, SINGLE_OBJECT_MAGIC, split_header};

/// The record types of the Avro contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// `io.tradestream.OrderCommand` (`schemas/order_command.avsc`).
    OrderCommand,
    /// `io.tradestream.EngineEvent` (`schemas/engine_event.avsc`).
    EngineEvent,
    /// `io.tradestream.SnapshotMeta` (`schemas/snapshot_meta.avsc`).
    SnapshotMeta,
}

impl RecordType {
    /// All record types.
    pub const ALL: [RecordType; 3] = [
        RecordType::OrderCommand,
        RecordType::EngineEvent,
        RecordType::SnapshotMeta,
    ];

    /// The schema text as written in `schemas/` (e.g. to register it with a schema registry).
    pub const fn avsc(self) -> &'static str {
        match self {
            RecordType::OrderCommand => include_str!("../../../../schemas/order_command.avsc"),
            RecordType::EngineEvent => include_str!("../../../../schemas/engine_event.avsc"),
            RecordType::SnapshotMeta => include_str!("../../../../schemas/snapshot_meta.avsc"),
        }
    }

    /// The parsed schema.
    pub fn schema(self) -> &'static Schema {
        &self.parsed().schema
    }

    /// CRC-64-AVRO (Rabin) fingerprint of the schema's Parsing Canonical Form, as carried
    /// (little-endian) in single-object headers.
    pub fn fingerprint(self) -> u64 {
        self.parsed().fingerprint
    }

    fn parsed(self) -> &'static Parsed {
        static ORDER: LazyLock<Parsed> = LazyLock::new(|| Parsed::new(RecordType::OrderCommand));
        static EVENT: LazyLock<Parsed> = LazyLock::new(|| Parsed::new(RecordType::EngineEvent));
        static SNAPSHOT: LazyLock<Parsed> = LazyLock::new(|| Parsed::new(RecordType::SnapshotMeta));
        match self {
            RecordType::OrderCommand => &ORDER,
            RecordType::EngineEvent => &EVENT,
            RecordType::SnapshotMeta => &SNAPSHOT,
        }
    }

    /// Writes the header for `framing`.
    pub(super) fn header(self, framing: Framing, out: &mut Vec<u8>) {
        match framing {
            Framing::SingleObject => {
                out.extend_from_slice(&SINGLE_OBJECT_MAGIC);
                out.extend_from_slice(&self.fingerprint().to_le_bytes());
            }
            Framing::Confluent { schema_id } => {
                out.push(CONFLUENT_MAGIC);
                out.extend_from_slice(&schema_id.to_be_bytes());
            }
        }
    }

    /// Checks the header and returns the body. A Confluent schema id is not checked.
    pub(super) fn body(self, bytes: &[u8]) -> Result<&[u8], AvroError> {
        let (header, body) = split_header(bytes)?;
        match header {
            Header::SingleObject { fingerprint } if fingerprint != self.fingerprint() => {
                Err(AvroError::UnknownFingerprint(fingerprint))
            }
            _ => Ok(body),
        }
    }
}

/// A parsed schema and its fingerprint, computed once.
struct Parsed {
    schema: Schema,
    fingerprint: u64,
}

/// The Rabin fingerprint of an Avro schema given as JSON text (e.g. one a schema registry
/// returned), comparable with [`RecordType::fingerprint`]: equal fingerprints mean the same
/// Parsing Canonical Form.
pub fn fingerprint_of(schema_json: &str) -> Result<u64, AvroError> {
    let schema = Schema::parse_str(schema_json).map_err(|e| AvroError::Schema(e.to_string()))?;
    let fp = schema.fingerprint::<Rabin>().bytes;
    let bytes: [u8; 8] = fp
        .try_into()
        .map_err(|_| AvroError::Schema("a Rabin fingerprint is 8 bytes".into()))?;
    Ok(u64::from_le_bytes(bytes))
}

impl Parsed {
    fn new(rt: RecordType) -> Self {
        // The schemas are part of this crate's source; the tests parse every one of them.
        let schema = Schema::parse_str(rt.avsc()).expect("schemas/*.avsc is a valid Avro schema");
        let fp = schema.fingerprint::<Rabin>().bytes;
        let fingerprint =
            u64::from_le_bytes(fp.try_into().expect("a Rabin fingerprint is 8 bytes"));
        Parsed {
            schema,
            fingerprint,
        }
    }
}
