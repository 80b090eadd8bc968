//! The header in front of every record ([`Framing`], [`Header`]) and telling formats apart
//! ([`sniff`]).

use super::AvroError;

/// The first two bytes of a single-object encoded record.
pub const SINGLE_OBJECT_MAGIC: [u8; 2] = [0xC3, 0x01];
/// The first byte of a Confluent-framed record.
pub const CONFLUENT_MAGIC: u8 = 0;

/// How a record is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Framing {
    /// Avro single-object encoding: `C3 01`, the schema's 8-byte little-endian Rabin
    /// fingerprint, the body. Needs no registry.
    #[default]
    SingleObject,
    /// Confluent wire format: `00`, the 4-byte big-endian registry schema id, the body.
    Confluent {
        /// The id the schema registry gave this record's schema.
        schema_id: u32,
    },
}

/// What a record's header says about the schema that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Header {
    /// Single-object encoding with this schema fingerprint.
    SingleObject {
        /// CRC-64-AVRO of the writer schema's Parsing Canonical Form.
        fingerprint: u64,
    },
    /// Confluent framing with this registry schema id.
    Confluent {
        /// The registry's id of the writer schema.
        schema_id: u32,
    },
}

/// A record format, as told by [`sniff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// A JSON object (first non-blank byte `{`).
    Json,
    /// Avro single-object encoding (`C3 01`).
    AvroSingleObject,
    /// Avro in Confluent framing (`00`).
    AvroConfluent,
    /// None of these.
    Unknown,
}

/// Tells the record format from the first bytes. JSON may start with blanks; Avro headers may
/// not.
pub fn sniff(bytes: &[u8]) -> WireFormat {
    match bytes {
        [0xC3, 0x01, ..] => WireFormat::AvroSingleObject,
        [CONFLUENT_MAGIC, ..] => WireFormat::AvroConfluent,
        _ => match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => WireFormat::Json,
            _ => WireFormat::Unknown,
        },
    }
}

/// True when the record starts with an Avro header (single-object or Confluent).
pub fn is_avro(bytes: &[u8]) -> bool {
    matches!(
        sniff(bytes),
        WireFormat::AvroSingleObject | WireFormat::AvroConfluent
    )
}

/// Reads a record's header and returns it with the body that follows.
pub fn split_header(bytes: &[u8]) -> Result<(Header, &[u8]), AvroError> {
    match bytes {
        [] | [0xC3] => Err(AvroError::Truncated),
        [0xC3, 0x01, rest @ ..] => {
            let (fp, body) = rest.split_first_chunk::<8>().ok_or(AvroError::Truncated)?;
            let fingerprint = u64::from_le_bytes(*fp);
            Ok((Header::SingleObject { fingerprint }, body))
        }
        [CONFLUENT_MAGIC, rest @ ..] => {
            let (id, body) = rest.split_first_chunk::<4>().ok_or(AvroError::Truncated)?;
            let schema_id = u32::from_be_bytes(*id);
            Ok((Header::Confluent { schema_id }, body))
        }
        _ => Err(AvroError::BadMagic(bytes[..bytes.len().min(2)].to_vec())),
    }
}
