//! The downstream workers' output records: candles (`schemas/candle.avsc`) and notifications
//! (`schemas/notification.avsc`), framed like every other Avro record of the pipeline (see
//! [`avro`](crate::avro): Avro single-object encoding by default, Confluent framing with a
//! registry).
//!
//! These records are low-volume (a candle per bucket change, a notification per execution), so
//! they go through `apache-avro`'s generic [`Value`] writer and reader rather than the hand-written
//! codec the matcher's events use: the writer checks every value against the schema, and the code
//! reads as the schema does.
//!
//! The records are plain structs of this crate ([`CandleRecord`], [`NotificationRecord`]) rather
//! than the store's rows: the codec sits below the store in the dependency graph and must not
//! pull a database driver into every worker. The workers convert their rows field by field.
//!
//! Decoding never panics: a record that is truncated, has another schema's fingerprint, has
//! bytes left over or holds an unusable value is an [`AvroError`].

use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::rabin::Rabin;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use tradestream_engine::Decimal;

use crate::avro::{AvroError, CONFLUENT_MAGIC, Framing, Header, SINGLE_OBJECT_MAGIC, split_header};

/// The output record types of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputRecord {
    /// `io.tradestream.Candle` (`schemas/candle.avsc`).
    Candle,
    /// `io.tradestream.Notification` (`schemas/notification.avsc`).
    Notification,
}

impl OutputRecord {
    /// Both record types.
    pub const ALL: [OutputRecord; 2] = [OutputRecord::Candle, OutputRecord::Notification];

    /// The schema text as written in `schemas/` (e.g. to register it with a schema registry).
    pub const fn avsc(self) -> &'static str {
        match self {
            OutputRecord::Candle => include_str!("../../../schemas/candle.avsc"),
            OutputRecord::Notification => include_str!("../../../schemas/notification.avsc"),
        }
    }

    /// The file name of the schema, for messages.
    const fn file(self) -> &'static str {
        match self {
            OutputRecord::Candle => "candle.avsc",
            OutputRecord::Notification => "notification.avsc",
        }
    }

    /// The parsed schema. Fails only if the `.avsc` file does not parse, which the tests rule
    /// out.
    pub fn schema(self) -> Result<&'static Schema, AvroError> {
        self.parsed().map(|p| &p.schema)
    }

    /// CRC-64-AVRO (Rabin) fingerprint of the schema's Parsing Canonical Form, as carried
    /// (little-endian) in single-object headers.
    pub fn fingerprint(self) -> Result<u64, AvroError> {
        self.parsed().map(|p| p.fingerprint)
    }

    fn parsed(self) -> Result<&'static Parsed, AvroError> {
        static CANDLE: LazyLock<Result<Parsed, String>> =
            LazyLock::new(|| Parsed::new(OutputRecord::Candle));
        static NOTIFICATION: LazyLock<Result<Parsed, String>> =
            LazyLock::new(|| Parsed::new(OutputRecord::Notification));
        let parsed = match self {
            OutputRecord::Candle => &*CANDLE,
            OutputRecord::Notification => &*NOTIFICATION,
        };
        parsed
            .as_ref()
            .map_err(|e| field_error("schema", e.clone()))
    }

    /// Frames an Avro body.
    fn frame(self, framing: Framing, body: &[u8]) -> Result<Vec<u8>, AvroError> {
        let mut out = Vec::with_capacity(10 + body.len());
        match framing {
            Framing::SingleObject => {
                out.extend_from_slice(&SINGLE_OBJECT_MAGIC);
                out.extend_from_slice(&self.fingerprint()?.to_le_bytes());
            }
            Framing::Confluent { schema_id } => {
                out.push(CONFLUENT_MAGIC);
                out.extend_from_slice(&schema_id.to_be_bytes());
            }
        }
        out.extend_from_slice(body);
        Ok(out)
    }

    /// Checks the header and reads the body as this schema's record, whole. A Confluent schema
    /// id is not checked (there is no registry client here).
    fn read(self, bytes: &[u8]) -> Result<Fields, AvroError> {
        let (header, body) = split_header(bytes)?;
        if let Header::SingleObject { fingerprint } = header
            && fingerprint != self.fingerprint()?
        {
            return Err(AvroError::UnknownFingerprint(fingerprint));
        }
        let schema = self.schema()?;
        let mut rest = body;
        let value = GenericDatumReader::builder(schema)
            .build()
            .and_then(|r| r.read_value(&mut rest))
            .map_err(|e| AvroError::Decode(format!("{}: {e}", self.file())))?;
        if !rest.is_empty() {
            return Err(AvroError::TrailingBytes(rest.len()));
        }
        match value {
            Value::Record(fields) => Ok(Fields(fields.into_iter())),
            other => Err(AvroError::Decode(format!(
                "{}: expected a record, read {other:?}",
                self.file()
            ))),
        }
    }

    /// Writes a record of this schema: fields in schema order.
    fn write(
        self,
        fields: Vec<(&'static str, Value)>,
        framing: Framing,
    ) -> Result<Vec<u8>, AvroError> {
        let record = Value::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        let body = GenericDatumWriter::builder(self.schema()?)
            .build()
            .and_then(|w| w.write_value_to_vec(record))
            .map_err(|_| match self {
                OutputRecord::Candle => AvroError::Encode("the value does not match candle.avsc"),
                OutputRecord::Notification => {
                    AvroError::Encode("the value does not match notification.avsc")
                }
            })?;
        self.frame(framing, &body)
    }
}

/// A parsed schema and its fingerprint, computed once.
struct Parsed {
    schema: Schema,
    fingerprint: u64,
}

impl Parsed {
    fn new(rt: OutputRecord) -> Result<Self, String> {
        let schema = Schema::parse_str(rt.avsc()).map_err(|e| format!("{}: {e}", rt.file()))?;
        let bytes: [u8; 8] = schema
            .fingerprint::<Rabin>()
            .bytes
            .try_into()
            .map_err(|_| format!("{}: a Rabin fingerprint is 8 bytes", rt.file()))?;
        Ok(Parsed {
            schema,
            fingerprint: u64::from_le_bytes(bytes),
        })
    }
}

/// The fields of a decoded record, taken in schema order.
struct Fields(std::vec::IntoIter<(String, Value)>);

impl Fields {
    fn take(&mut self, field: &'static str) -> Result<Value, AvroError> {
        match self.0.next() {
            Some((name, value)) if name == field => Ok(value),
            Some((name, _)) => Err(field_error(field, format!("found field {name}"))),
            None => Err(field_error(field, "missing")),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<String, AvroError> {
        match self.take(field)? {
            Value::String(s) => Ok(s),
            other => Err(unexpected(field, "a string", &other)),
        }
    }

    fn decimal(&mut self, field: &'static str) -> Result<Decimal, AvroError> {
        let s = self.string(field)?;
        s.parse()
            .map_err(|e| field_error(field, format!("{s:?}: {e}")))
    }

    fn long(&mut self, field: &'static str) -> Result<i64, AvroError> {
        match self.take(field)? {
            Value::Long(v) | Value::TimestampMillis(v) => Ok(v),
            other => Err(unexpected(field, "a long", &other)),
        }
    }

    fn int(&mut self, field: &'static str) -> Result<i32, AvroError> {
        match self.take(field)? {
            Value::Int(v) => Ok(v),
            other => Err(unexpected(field, "an int", &other)),
        }
    }

    fn boolean(&mut self, field: &'static str) -> Result<bool, AvroError> {
        match self.take(field)? {
            Value::Boolean(v) => Ok(v),
            other => Err(unexpected(field, "a boolean", &other)),
        }
    }
}

fn field_error(field: &'static str, reason: impl Into<String>) -> AvroError {
    AvroError::Field {
        field,
        reason: reason.into(),
    }
}

fn unexpected(field: &'static str, expected: &str, found: &Value) -> AvroError {
    field_error(field, format!("expected {expected}, read {found:?}"))
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn decimal(d: Decimal) -> Value {
    Value::String(d.to_string())
}

// ---------------------------------------------------------------------------------------------
// Candles
// ---------------------------------------------------------------------------------------------

/// One OHLC bucket (`candle.avsc`): the store's candle row in wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandleRecord {
    /// Instrument.
    pub symbol: String,
    /// Bucket length by name: `1s`, `1m` or `1h` (not checked here).
    pub interval: String,
    /// Bucket start, ms since the epoch.
    pub bucket_start_ms: i64,
    /// First trade's price.
    pub open: Decimal,
    /// Highest price.
    pub high: Decimal,
    /// Lowest price.
    pub low: Decimal,
    /// Last trade's price.
    pub close: Decimal,
    /// Sum of quantities.
    pub volume: Decimal,
    /// Sum of price × quantity.
    pub turnover: Decimal,
    /// turnover / volume.
    pub vwap: Decimal,
    /// Trades in the bucket.
    pub trade_count: i64,
    /// Whether this is the bucket's final version.
    pub closed: bool,
    /// Source (orders) partition.
    pub source_partition: i32,
    /// `trades` seq of the last trade in the bucket.
    pub seq: i64,
}

/// Encodes a candle.
pub fn encode_candle(c: &CandleRecord, framing: Framing) -> Result<Vec<u8>, AvroError> {
    OutputRecord::Candle.write(
        vec![
            ("symbol", string(&c.symbol)),
            ("interval", string(&c.interval)),
            ("bucket_start", Value::TimestampMillis(c.bucket_start_ms)),
            ("open", decimal(c.open)),
            ("high", decimal(c.high)),
            ("low", decimal(c.low)),
            ("close", decimal(c.close)),
            ("volume", decimal(c.volume)),
            ("turnover", decimal(c.turnover)),
            ("vwap", decimal(c.vwap)),
            ("trade_count", Value::Long(c.trade_count)),
            ("closed", Value::Boolean(c.closed)),
            ("source_partition", Value::Int(c.source_partition)),
            ("seq", Value::Long(c.seq)),
        ],
        framing,
    )
}

/// Reads a candle (either framing).
pub fn decode_candle(bytes: &[u8]) -> Result<CandleRecord, AvroError> {
    let mut f = OutputRecord::Candle.read(bytes)?;
    Ok(CandleRecord {
        symbol: f.string("symbol")?,
        interval: f.string("interval")?,
        bucket_start_ms: f.long("bucket_start")?,
        open: f.decimal("open")?,
        high: f.decimal("high")?,
        low: f.decimal("low")?,
        close: f.decimal("close")?,
        volume: f.decimal("volume")?,
        turnover: f.decimal("turnover")?,
        vwap: f.decimal("vwap")?,
        trade_count: f.long("trade_count")?,
        closed: f.boolean("closed")?,
        source_partition: f.int("source_partition")?,
        seq: f.long("seq")?,
    })
}

// ---------------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------------

/// What happened to an account's order (`notification.avsc`): the store's notification row in
/// wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// The account told.
    pub account: String,
    /// Source partition of the execution.
    pub source_partition: i32,
    /// `executions` seq of the execution.
    pub seq: i64,
    /// Event time, ms.
    pub ts_ms: i64,
    /// `accepted`, `fill`, `cancelled`, `replaced`, `expired` or `rejected`.
    pub kind: String,
    /// The order.
    pub order_id: String,
    /// Instrument.
    pub symbol: String,
    /// Human-readable text.
    pub text: String,
}

/// Encodes a notification.
pub fn encode_notification(n: &NotificationRecord, framing: Framing) -> Result<Vec<u8>, AvroError> {
    OutputRecord::Notification.write(
        vec![
            ("account", string(&n.account)),
            ("source_partition", Value::Int(n.source_partition)),
            ("seq", Value::Long(n.seq)),
            ("ts", Value::TimestampMillis(n.ts_ms)),
            ("kind", string(&n.kind)),
            ("order_id", string(&n.order_id)),
            ("symbol", string(&n.symbol)),
            ("text", string(&n.text)),
        ],
        framing,
    )
}

/// Reads a notification (either framing).
pub fn decode_notification(bytes: &[u8]) -> Result<NotificationRecord, AvroError> {
    let mut f = OutputRecord::Notification.read(bytes)?;
    Ok(NotificationRecord {
        account: f.string("account")?,
        source_partition: f.int("source_partition")?,
        seq: f.long("seq")?,
        ts_ms: f.long("ts")?,
        kind: f.string("kind")?,
        order_id: f.string("order_id")?,
        symbol: f.string("symbol")?,
        text: f.string("text")?,
    })
}

#[cfg(test)]
pub(crate) mod tests;
