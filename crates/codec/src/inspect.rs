//! Any record as JSON, for people reading topics (`tradestream tail`): Avro bodies decoded with
//! the writer's schema into plain JSON, JSON values as they are, anything else as text.

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;

use crate::avro::{self, AvroError, WireFormat};

/// A parsed Avro schema to decode records with.
#[derive(Debug, Clone)]
pub struct Decoder {
    schema: Schema,
}

impl Decoder {
    /// A decoder for records written with `schema_json` (an `.avsc` file's text).
    pub fn new(schema_json: &str) -> Result<Self, AvroError> {
        Schema::parse_str(schema_json)
            .map(|schema| Decoder { schema })
            .map_err(|e| AvroError::Decode(format!("schema: {e}")))
    }

    /// One Avro record (single-object or Confluent framing) as JSON.
    pub fn avro_to_json(&self, bytes: &[u8]) -> Result<serde_json::Value, AvroError> {
        let (_, body) = avro::split_header(bytes)?;
        let mut rest = body;
        let value = GenericDatumReader::builder(&self.schema)
            .build()
            .and_then(|r| r.read_value(&mut rest))
            .map_err(|e| AvroError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(AvroError::TrailingBytes(rest.len()));
        }
        serde_json::Value::try_from(value).map_err(|e| AvroError::Decode(e.to_string()))
    }
}

/// A record value as JSON: decoded Avro (with `decoder`), a JSON document, or else a string
/// (lossy UTF-8) beside the reason it could not be decoded.
pub fn value_to_json(decoder: Option<&Decoder>, bytes: &[u8]) -> serde_json::Value {
    let undecoded = |why: String| {
        serde_json::json!({
            "undecoded": String::from_utf8_lossy(bytes),
            "error": why,
        })
    };
    match avro::sniff(bytes) {
        WireFormat::Json => {
            serde_json::from_slice(bytes).unwrap_or_else(|e| undecoded(e.to_string()))
        }
        WireFormat::AvroSingleObject | WireFormat::AvroConfluent => match decoder {
            Some(d) => d
                .avro_to_json(bytes)
                .unwrap_or_else(|e| undecoded(e.to_string())),
            None => undecoded("Avro record on a topic without a schema".into()),
        },
        WireFormat::Unknown => undecoded("neither JSON nor Avro".into()),
    }
}

#[cfg(test)]
mod tests;
