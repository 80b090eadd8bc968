//! Tests of the candle and notification records.

use apache_avro::GenericSingleObjectReader;
use apache_avro::schema::Schema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use tradestream_engine::Decimal;

use super::*;
use crate::avro::RecordType;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub(crate) fn candle() -> CandleRecord {
    CandleRecord {
        symbol: "BTC-USD".into(),
        interval: "1m".into(),
        bucket_start_ms: 1_732_900_020_000,
        open: d("60000.00"),
        high: d("60010.50"),
        low: d("59990.25"),
        close: d("60005.00"),
        volume: d("1.750"),
        turnover: d("105008.68750"),
        vwap: d("60004.964285"),
        trade_count: 3,
        closed: true,
        source_partition: 2,
        seq: 41,
    }
}

fn notification() -> NotificationRecord {
    NotificationRecord {
        account: "acct-7".into(),
        source_partition: 1,
        seq: 9,
        ts_ms: 1_732_900_000_123,
        kind: "fill".into(),
        order_id: "o-1".into(),
        symbol: "BTC-USD".into(),
        text: "bought 0.50 BTC-USD at 60000.00 (0.25 left)".into(),
    }
}

/// A small deterministic generator for garbage inputs.
struct Lcg(u64);

impl Lcg {
    fn byte(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 56) as u8
    }
}

#[test]
fn schemas_parse_with_the_pipeline_namespace_and_distinct_fingerprints() {
    let mut fingerprints = Vec::new();
    for rt in OutputRecord::ALL {
        let schema = rt.schema().unwrap();
        let Schema::Record(record) = schema else {
            panic!("{rt:?} is not a record");
        };
        assert_eq!(record.name.namespace(), Some("io.tradestream"));
        let names: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
        assert!(names.contains(&"source_partition"), "{rt:?}");
        assert!(names.contains(&"seq"), "{rt:?}");
        fingerprints.push(rt.fingerprint().unwrap());
    }
    for rt in RecordType::ALL {
        fingerprints.push(rt.fingerprint());
    }
    let mut unique = fingerprints.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), fingerprints.len());
}

#[test]
fn candle_field_order_is_the_schemas() {
    let Schema::Record(record) = OutputRecord::Candle.schema().unwrap() else {
        panic!("not a record");
    };
    let names: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "symbol",
            "interval",
            "bucket_start",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "turnover",
            "vwap",
            "trade_count",
            "closed",
            "source_partition",
            "seq"
        ]
    );
}

#[test]
fn candles_round_trip_in_both_framings() {
    let c = candle();
    let bytes = encode_candle(&c, Framing::SingleObject).unwrap();
    assert_eq!(bytes[..2], [0xC3, 0x01]);
    assert_eq!(
        bytes[2..10],
        OutputRecord::Candle.fingerprint().unwrap().to_le_bytes()
    );
    assert_eq!(decode_candle(&bytes).unwrap(), c);

    let confluent = encode_candle(&c, Framing::Confluent { schema_id: 77 }).unwrap();
    assert_eq!(confluent[..5], [0, 0, 0, 0, 77]);
    assert_eq!(confluent[5..], bytes[10..]);
    assert_eq!(decode_candle(&confluent).unwrap(), c);
}

#[test]
fn candle_decimals_keep_their_digits() {
    let c = CandleRecord {
        open: d("-0.005"),
        high: d("0.000000000000000001"),
        low: d("100"),
        close: d("100.10"),
        volume: d("0"),
        turnover: d("9223372036854775807"),
        vwap: d("-922337203.6854775807"),
        closed: false,
        ..candle()
    };
    let back = decode_candle(&encode_candle(&c, Framing::SingleObject).unwrap()).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.close.to_string(), "100.10");
    assert_eq!(back.close.scale(), 2);
}

#[test]
fn notifications_round_trip_in_both_framings() {
    let n = notification();
    let bytes = encode_notification(&n, Framing::SingleObject).unwrap();
    assert_eq!(bytes[..2], [0xC3, 0x01]);
    assert_eq!(decode_notification(&bytes).unwrap(), n);
    let confluent = encode_notification(&n, Framing::Confluent { schema_id: 3 }).unwrap();
    assert_eq!(decode_notification(&confluent).unwrap(), n);

    let odd = NotificationRecord {
        account: String::new(),
        text: "rejected: malformed — “qty” is not a number".into(),
        ts_ms: -1,
        ..n
    };
    let back = decode_notification(&encode_notification(&odd, Framing::SingleObject).unwrap());
    assert_eq!(back.unwrap(), odd);
}

#[test]
fn apache_avro_reads_our_single_object_records() {
    // The library's own single-object reader builds the header from the schema: agreeing with
    // it shows the fingerprint is the schema's Rabin fingerprint.
    let cases = [
        (
            OutputRecord::Candle,
            encode_candle(&candle(), Framing::SingleObject).unwrap(),
        ),
        (
            OutputRecord::Notification,
            encode_notification(&notification(), Framing::SingleObject).unwrap(),
        ),
    ];
    for (rt, bytes) in cases {
        let reader = GenericSingleObjectReader::builder()
            .schema(rt.schema().unwrap().clone())
            .build()
            .unwrap();
        let mut rest = &bytes[..];
        let value = reader.read_value(&mut rest).unwrap();
        assert!(rest.is_empty(), "{rt:?}");
        assert!(matches!(value, Value::Record(_)), "{rt:?}");
    }
}

#[test]
fn decoding_garbage_is_an_error_never_a_panic() {
    assert_eq!(decode_candle(&[]), Err(AvroError::Truncated));
    assert_eq!(decode_notification(&[0xC3]), Err(AvroError::Truncated));
    assert!(matches!(
        decode_candle(b"{\"symbol\":\"BTC-USD\"}"),
        Err(AvroError::BadMagic(_))
    ));

    // Every prefix of a valid record.
    let candle_bytes = encode_candle(&candle(), Framing::SingleObject).unwrap();
    let note_bytes = encode_notification(&notification(), Framing::SingleObject).unwrap();
    for len in 0..candle_bytes.len() {
        assert!(decode_candle(&candle_bytes[..len]).is_err(), "prefix {len}");
    }
    for len in 0..note_bytes.len() {
        assert!(
            decode_notification(&note_bytes[..len]).is_err(),
            "prefix {len}"
        );
    }

    // Bytes left over.
    let mut long = candle_bytes.clone();
    long.push(0);
    assert_eq!(decode_candle(&long), Err(AvroError::TrailingBytes(1)));

    // The other record type, and a record of another schema altogether.
    assert_eq!(
        decode_notification(&candle_bytes),
        Err(AvroError::UnknownFingerprint(
            OutputRecord::Candle.fingerprint().unwrap()
        ))
    );
    let snapshot = crate::avro::encode_snapshot(&Default::default(), Framing::SingleObject);
    assert!(matches!(
        decode_candle(&snapshot),
        Err(AvroError::UnknownFingerprint(_))
    ));

    // Random bodies behind valid headers, and random bytes.
    let mut rng = Lcg(7);
    for round in 0..2_000 {
        let len = usize::from(rng.byte() % 64);
        let body: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        let mut c = candle_bytes[..10].to_vec();
        c.extend_from_slice(&body);
        let mut n = note_bytes[..10].to_vec();
        n.extend_from_slice(&body);
        // Any outcome but a panic; a random body is almost never a whole record.
        let _ = decode_candle(&c);
        let _ = decode_notification(&n);
        let _ = decode_candle(&body);
        let _ = decode_notification(&body);
        if round == 0 {
            assert!(decode_candle(&c).is_err());
        }
    }

    // Flipped bytes in a valid record.
    for i in 10..candle_bytes.len() {
        let mut c = candle_bytes.clone();
        c[i] ^= 0xFF;
        let _ = decode_candle(&c);
    }
}

#[test]
fn a_well_formed_record_with_an_unusable_decimal_is_a_field_error() {
    let schema = OutputRecord::Candle.schema().unwrap();
    let s = |v: &str| Value::String(v.to_owned());
    let record = Value::Record(
        [
            ("symbol", s("BTC-USD")),
            ("interval", s("1s")),
            ("bucket_start", Value::TimestampMillis(0)),
            ("open", s("1.5e3")),
            ("high", s("1")),
            ("low", s("1")),
            ("close", s("1")),
            ("volume", s("1")),
            ("turnover", s("1")),
            ("vwap", s("1")),
            ("trade_count", Value::Long(1)),
            ("closed", Value::Boolean(false)),
            ("source_partition", Value::Int(0)),
            ("seq", Value::Long(1)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    );
    let body = GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(record)
        .unwrap();
    let bytes = OutputRecord::Candle
        .frame(Framing::SingleObject, &body)
        .unwrap();
    match decode_candle(&bytes) {
        Err(AvroError::Field { field, .. }) => assert_eq!(field, "open"),
        other => panic!("expected a field error, got {other:?}"),
    }
}
