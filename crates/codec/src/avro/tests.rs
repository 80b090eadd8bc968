//! Tests of the Avro contract: framing, schemas, round trips, agreement with the JSON contract
//! and robustness against bad input.

use std::collections::BTreeSet;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value as AvroValue;
use apache_avro::writer::datum::GenericDatumWriter;
use serde_json::{Value, json};
use tradestream_engine::{
    Account, CancelOrder, Command, Decimal, Engine, Event, EventKind, InstrumentSpec, Instruments,
    InvalidCommand, Name, NewOrder, OrderId, OrderType, RejectReason, ReplaceOrder, Request, Side,
    Symbol, Tif,
};

use super::binary::{put_decimal, put_str};
use super::command::ORDER_FIELDS;
use super::event::{EVENT_FIELDS, Num, put_num};
use super::snapshot::SNAPSHOT_FIELDS;
use super::*;

const FRAMINGS: [Framing; 2] = [
    Framing::SingleObject,
    Framing::Confluent {
        schema_id: 0x0102_0304,
    },
];

fn instruments() -> Instruments {
    Instruments::new(&[InstrumentSpec {
        symbol: "BTC-USD".into(),
        tick_size: "0.01".parse().unwrap(),
        lot_size: "0.001".parse().unwrap(),
        min_qty: None,
        max_qty: None,
        min_price: None,
        max_price: None,
    }])
    .unwrap()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// CRC-64-AVRO as the Avro specification writes it, independent of `apache-avro`.
fn rabin(bytes: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let table: Vec<u64> = (0..256u64)
        .map(|i| (0..8).fold(i, |fp, _| (fp >> 1) ^ (EMPTY & 0u64.wrapping_sub(fp & 1))))
        .collect();
    bytes.iter().fold(EMPTY, |fp, &b| {
        (fp >> 8) ^ table[((fp ^ u64::from(b)) & 0xff) as usize]
    })
}

fn sample_commands() -> Vec<Command> {
    let id = |s| OrderId::new(s).unwrap();
    let sym = Symbol::new("BTC-USD").unwrap();
    vec![
        Command::New(NewOrder {
            order_id: id("o-1"),
            account: Account::new("a-1").unwrap(),
            symbol: sym,
            side: Side::Buy,
            order_type: OrderType::Limit,
            price: Some(d("100.50")),
            qty: d("2"),
            tif: Tif::Gtc,
            post_only: true,
            ts: 1_732_900_000_000,
        }),
        Command::New(NewOrder {
            order_id: id("123e4567-e89b-12d3-a456-426614174000"),
            account: Account::new("a-2").unwrap(),
            symbol: sym,
            side: Side::Sell,
            order_type: OrderType::Market,
            price: None,
            qty: d("0.125"),
            tif: Tif::Fok,
            post_only: false,
            ts: -5,
        }),
        Command::Cancel(CancelOrder {
            order_id: id("o-1"),
            account: Account::new("a-1").unwrap(),
            symbol: sym,
            ts: 7,
        }),
        Command::Replace(ReplaceOrder {
            order_id: id("o-1"),
            account: Account::new("a-1").unwrap(),
            symbol: sym,
            price: Some(d("101.00")),
            qty: None,
            ts: 8,
        }),
        Command::Replace(ReplaceOrder {
            order_id: id("o-1"),
            account: Account::new("a-1").unwrap(),
            symbol: sym,
            price: None,
            qty: Some(d("1.5")),
            ts: 9,
        }),
        Command::Replace(ReplaceOrder {
            order_id: id("o-1"),
            account: Account::new("a-1").unwrap(),
            symbol: sym,
            price: Some(d("99")),
            qty: Some(d("3")),
            ts: i64::MAX,
        }),
    ]
}

fn expect_invalid(bytes: &[u8]) -> InvalidCommand {
    match decode_command(bytes, 42) {
        Command::Invalid(c) => c,
        other => panic!("expected invalid, got {other:?}"),
    }
}

/// A single-object header for the order command schema.
fn order_header() -> Vec<u8> {
    let mut h = SINGLE_OBJECT_MAGIC.to_vec();
    h.extend_from_slice(&RecordType::OrderCommand.fingerprint().to_le_bytes());
    h
}

/// Writes an order command body with `apache-avro`'s generic `Value` writer (not this module's
/// serde path), to check that the two agree and to build records our encoder would not write.
fn generic_order_body(fields: Vec<(&str, AvroValue)>) -> Vec<u8> {
    let schema = RecordType::OrderCommand.schema();
    let record = AvroValue::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    );
    GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(record)
        .unwrap()
}

fn some(v: AvroValue) -> AvroValue {
    AvroValue::Union(1, Box::new(v))
}

fn null() -> AvroValue {
    AvroValue::Union(0, Box::new(AvroValue::Null))
}

fn string(s: &str) -> AvroValue {
    AvroValue::String(s.into())
}

/// A new-order record with every field given, for tests to override.
fn generic_new_order(overrides: &[(&str, AvroValue)]) -> Vec<u8> {
    let mut fields = vec![
        ("type", AvroValue::Enum(0, "new".into())),
        ("order_id", string("o-7")),
        ("account", some(string("a-7"))),
        ("symbol", string("BTC-USD")),
        ("side", some(AvroValue::Enum(1, "sell".into()))),
        ("order_type", some(AvroValue::Enum(0, "limit".into()))),
        ("price", some(string("100.25"))),
        ("qty", some(string("3"))),
        ("tif", some(AvroValue::Enum(1, "ioc".into()))),
        ("post_only", AvroValue::Boolean(false)),
        ("ts", some(AvroValue::TimestampMillis(11))),
    ];
    for (k, v) in overrides {
        let slot = fields.iter_mut().find(|(f, _)| f == k).unwrap();
        slot.1 = v.clone();
    }
    let mut bytes = order_header();
    bytes.extend(generic_order_body(fields));
    bytes
}

// ---------------------------------------------------------------------------------------------
// Schemas and framing
// ---------------------------------------------------------------------------------------------

#[test]
fn schemas_parse_and_fingerprints_are_rabin_of_the_canonical_form() {
    // The reference implementation above agrees with the published value for "hello world".
    assert_eq!(
        rabin(b"hello world").to_le_bytes(),
        [0x60, 0x33, 0x5b, 0xa6, 0xd0, 0x41, 0x55, 0x28]
    );
    let mut seen = BTreeSet::new();
    for rt in RecordType::ALL {
        let canonical = rt.schema().canonical_form();
        assert_eq!(rt.fingerprint(), rabin(canonical.as_bytes()), "{rt:?}");
        assert!(seen.insert(rt.fingerprint()), "fingerprints differ");
        assert!(
            canonical.starts_with(r#"{"name":"io.tradestream."#),
            "{canonical}"
        );
        assert!(!canonical.contains("doc"), "docs are not part of it");
    }
    // Pin one canonical form: changing a schema changes its fingerprint, and old records then
    // no longer decode, so it should never happen by accident.
    assert_eq!(
        RecordType::SnapshotMeta.schema().canonical_form(),
        concat!(
            r#"{"name":"io.tradestream.SnapshotMeta","type":"record","fields":["#,
            r#"{"name":"group","type":"string"},{"name":"partition","type":"int"},"#,
            r#"{"name":"input_offset","type":"long"},{"name":"last_seq","type":"long"},"#,
            r#"{"name":"state_hash","type":"long"},{"name":"output_hash","type":"long"},"#,
            r#"{"name":"chunk","type":"int"},{"name":"chunks","type":"int"},"#,
            r#"{"name":"engine_bytes","type":"bytes"},{"name":"trades_seq","type":"long"},"#,
            r#"{"name":"market_data_seq","type":"long"},{"name":"dead_letter_end","type":"long"}]}"#
        )
    );
}

#[test]
fn headers_carry_the_fingerprint_or_the_schema_id() {
    let cmd = &sample_commands()[0];
    let so = encode_command(cmd, Framing::SingleObject).unwrap();
    assert_eq!(so[..2], [0xC3, 0x01]);
    let fp = rabin(
        RecordType::OrderCommand
            .schema()
            .canonical_form()
            .as_bytes(),
    );
    assert_eq!(so[2..10], fp.to_le_bytes());
    assert_eq!(
        split_header(&so).unwrap().0,
        Header::SingleObject { fingerprint: fp }
    );

    let cf = encode_command(cmd, Framing::Confluent { schema_id: 258 }).unwrap();
    assert_eq!(cf[..5], [0, 0, 0, 1, 2]);
    assert_eq!(
        split_header(&cf).unwrap(),
        (Header::Confluent { schema_id: 258 }, &so[10..])
    );

    // The crate's own single-object header builder writes the same bytes.
    use apache_avro::headers::{HeaderBuilder, RabinFingerprintHeader};
    let theirs =
        RabinFingerprintHeader::from_schema(RecordType::OrderCommand.schema()).build_header();
    assert_eq!(theirs, so[..10]);
}

#[test]
fn the_codec_knows_each_schemas_fields_in_order() {
    for (rt, expected) in [
        (RecordType::OrderCommand, &ORDER_FIELDS[..]),
        (RecordType::EngineEvent, &EVENT_FIELDS[..]),
        (RecordType::SnapshotMeta, &SNAPSHOT_FIELDS[..]),
    ] {
        let Schema::Record(record) = rt.schema() else {
            panic!("{rt:?} is not a record");
        };
        let names: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, expected, "{rt:?}");
    }
}

/// Reads `body` with `apache-avro`'s generic reader and writes the value back with its generic
/// writer: the body must be read whole and come back byte for byte.
fn assert_generic_round_trip(rt: RecordType, framed: &[u8]) {
    let (_, body) = split_header(framed).unwrap();
    let mut rest = body;
    let value = GenericDatumReader::builder(rt.schema())
        .build()
        .unwrap()
        .read_value(&mut rest)
        .unwrap();
    assert!(
        rest.is_empty(),
        "{rt:?}: generic reader left {} bytes",
        rest.len()
    );
    let rewritten = GenericDatumWriter::builder(rt.schema())
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap();
    assert_eq!(rewritten, body, "{rt:?}");
}

#[test]
fn bodies_match_the_generic_avro_codec() {
    for cmd in sample_commands() {
        let bytes = encode_command(&cmd, Framing::SingleObject).unwrap();
        assert_generic_round_trip(RecordType::OrderCommand, &bytes);
    }
    let instruments = instruments();
    for (i, e) in session_events().iter().enumerate() {
        let mut out = Vec::new();
        let p = Provenance {
            source_partition: i as i32 - 3,
            source_offset: i64::MAX - i as i64,
            seq: 1u64 << (i * 3 % 63),
        };
        encode_event(&instruments, e, p, Framing::SingleObject, &mut out);
        assert_generic_round_trip(RecordType::EngineEvent, &out);
    }
    for meta in sample_snapshots() {
        let bytes = encode_snapshot(&meta, Framing::SingleObject);
        assert_generic_round_trip(RecordType::SnapshotMeta, &bytes);
    }
}

#[test]
fn numbers_are_written_as_their_display_text() {
    let mut rng = XorShift(7);
    let check = |d: Decimal| {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        put_decimal(&mut ours, d);
        put_str(&mut theirs, &d.to_string());
        assert_eq!(ours, theirs, "{d}");
    };
    for m in [0, 1, -1, 5, 10050, -10050, i64::MAX, i64::MIN] {
        for scale in 0..=18 {
            check(Decimal::new(m, scale));
        }
    }
    for _ in 0..10_000 {
        let m = (rng.next() as i64) >> (rng.next() % 64);
        check(Decimal::new(m, (rng.next() % 19) as u8));
    }
    for (n, text) in [
        (Num::Ticks(-42), "-42"),
        (Num::Lots(u64::MAX), "18446744073709551615"),
    ] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        put_num(&mut ours, n);
        put_str(&mut theirs, text);
        assert_eq!(ours, theirs);
    }
}

#[test]
fn sniffs_json_and_both_avro_framings() {
    let cmd = &sample_commands()[2];
    let so = encode_command(cmd, Framing::SingleObject).unwrap();
    let cf = encode_command(cmd, Framing::Confluent { schema_id: 1 }).unwrap();
    assert_eq!(sniff(&so), WireFormat::AvroSingleObject);
    assert_eq!(sniff(&cf), WireFormat::AvroConfluent);
    assert_eq!(sniff(b"{\"type\":\"cancel\"}"), WireFormat::Json);
    assert_eq!(sniff(b" \n{}"), WireFormat::Json);
    assert_eq!(sniff(b"[1]"), WireFormat::Unknown);
    assert_eq!(sniff(&[0xC3, 0x02]), WireFormat::Unknown);
    assert_eq!(sniff(b""), WireFormat::Unknown);
    assert!(is_avro(&so) && is_avro(&cf) && !is_avro(b"{}"));

    let json = br#"{"type":"cancel","order_id":"o-1","account":"a-1","symbol":"BTC-USD","ts":7}"#;
    assert_eq!(decode_command_any(json, 0), *cmd);
    assert_eq!(decode_command_any(&so, 0), *cmd);
    assert_eq!(decode_command_any(&cf, 0), *cmd);
    let Command::Invalid(c) = decode_command_any(b"hello", 3) else {
        panic!("garbage decoded");
    };
    assert!(
        c.detail.starts_with("avro: bad magic 68 65"),
        "{}",
        c.detail
    );
    assert_eq!(c.ts, 3);
}

// ---------------------------------------------------------------------------------------------
// Order commands
// ---------------------------------------------------------------------------------------------

#[test]
fn commands_round_trip_in_both_framings() {
    for cmd in sample_commands() {
        for framing in FRAMINGS {
            let bytes = encode_command(&cmd, framing).unwrap();
            assert_eq!(decode_command(&bytes, 0), cmd, "{framing:?}");
        }
    }
}

#[test]
fn invalid_commands_cannot_be_encoded() {
    let cmd = Command::Invalid(InvalidCommand {
        order_id: OrderId::new("o-1").unwrap(),
        account: Account::new("a-1").unwrap(),
        symbol: Symbol::new("BTC-USD").unwrap(),
        request: Request::New,
        detail: "x".into(),
        ts: 0,
    });
    assert!(matches!(
        encode_command(&cmd, Framing::SingleObject),
        Err(AvroError::Encode(_))
    ));
}

#[test]
fn json_and_avro_decode_to_the_same_commands() {
    let lines = [
        r#"{"type":"new","order_id":"o-1","account":"a-1","symbol":"BTC-USD","side":"buy","order_type":"limit","price":"100.50","qty":"2","tif":"gtc","post_only":false,"ts":1732900000000}"#,
        r#"{"type":"new","order_id":"o-2","account":"a","symbol":"BTC-USD","side":"sell","order_type":"market","qty":"1","tif":"ioc","ts":4}"#,
        r#"{"type":"new","order_id":"o-3","account":"a","symbol":"ETH-USD","side":"buy","order_type":"limit","price":"0.0001","qty":"10","tif":"gtc","post_only":true,"ts":5}"#,
        r#"{"type":"cancel","order_id":"o-1","account":"a-1","symbol":"BTC-USD","ts":1732900000001}"#,
        r#"{"type":"replace","order_id":"o-1","account":"a-1","symbol":"BTC-USD","price":"101.00","qty":"1","ts":1732900000002}"#,
        r#"{"type":"replace","order_id":"o-1","account":"a-1","symbol":"BTC-USD","qty":"0.5","ts":3}"#,
    ];
    for line in lines {
        let from_json = crate::json::decode_command(line.as_bytes(), 0);
        assert!(!matches!(from_json, Command::Invalid(_)), "{line}");
        for framing in FRAMINGS {
            let bytes = encode_command(&from_json, framing).unwrap();
            assert_eq!(decode_command(&bytes, 0), from_json, "{line}");
        }
    }
}

#[test]
fn records_written_by_a_generic_avro_writer_decode() {
    // Every field present.
    let Command::New(n) = decode_command(&generic_new_order(&[]), 0) else {
        panic!("not a new order");
    };
    assert_eq!(
        (n.order_id.as_str(), n.side, n.tif, n.price, n.qty, n.ts),
        ("o-7", Side::Sell, Tif::Ioc, Some(d("100.25")), d("3"), 11)
    );
    // No ts: the caller's default applies, as in the JSON contract.
    let Command::New(n) = decode_command(&generic_new_order(&[("ts", null())]), 99) else {
        panic!("not a new order");
    };
    assert_eq!(n.ts, 99);
    // A cancel that also carries fields it does not use: they are ignored.
    let mut bytes = order_header();
    bytes.extend(generic_order_body(vec![
        ("type", AvroValue::Enum(1, "cancel".into())),
        ("order_id", string("o-7")),
        ("account", some(string("a-7"))),
        ("symbol", string("BTC-USD")),
        ("side", null()),
        ("order_type", null()),
        ("price", some(string("not a number"))),
        ("qty", null()),
        ("tif", null()),
        ("post_only", AvroValue::Boolean(true)),
        ("ts", null()),
    ]));
    assert_eq!(
        decode_command(&bytes, 5),
        Command::Cancel(CancelOrder {
            order_id: OrderId::new("o-7").unwrap(),
            account: Account::new("a-7").unwrap(),
            symbol: Symbol::new("BTC-USD").unwrap(),
            ts: 5,
        })
    );
}

#[test]
fn bad_field_values_are_invalid_with_what_could_be_read() {
    let cases: [(&str, AvroValue, &str); 5] = [
        (
            "price",
            some(string("1e5")),
            "avro: price: invalid character in decimal",
        ),
        ("qty", null(), "avro: qty: required on a new order"),
        ("side", null(), "avro: side: required on a new order"),
        ("account", null(), "avro: account: required on a new order"),
        (
            "account",
            some(string(&"x".repeat(41))),
            "avro: account: identifier is 41 bytes long; at most 40 are allowed",
        ),
    ];
    for (field, value, detail) in cases {
        let c = expect_invalid(&generic_new_order(&[(field, value)]));
        assert_eq!(&*c.detail, detail);
        assert_eq!(
            (c.order_id.as_str(), c.symbol.as_str(), c.request, c.ts),
            ("o-7", "BTC-USD", Request::New, 11),
            "{field}"
        );
        // The account is kept when it is readable, so the rejection reaches its owner.
        let account = if field == "account" { "" } else { "a-7" };
        assert_eq!(c.account.as_str(), account, "{field}");
    }
    let c = expect_invalid(&generic_new_order(&[("order_id", string(&"y".repeat(50)))]));
    assert!(c.detail.starts_with("avro: order_id: identifier is 50"));
    assert_eq!((c.order_id.as_str(), c.symbol.as_str()), ("", "BTC-USD"));
}

#[test]
fn malformed_bodies_name_the_field() {
    let body = |b: &[u8]| [order_header(), b.to_vec()].concat();
    let cases: [(Vec<u8>, &str); 5] = [
        (
            body(&[0xFF; 11]),
            "avro: bad record: type: long overflows 64 bits",
        ),
        (
            body(&[8]),
            "avro: bad record: type: index 4 out of range 0..3",
        ),
        (
            body(&[2, 1]),
            "avro: bad record: order_id: negative length -1",
        ),
        (
            body(&[2, 2, 0xFF]),
            "avro: bad record: order_id: string is not UTF-8",
        ),
        (
            body(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
            "avro: bad record: post_only: boolean byte 0x02",
        ),
    ];
    for (bytes, detail) in cases {
        assert_eq!(&*expect_invalid(&bytes).detail, detail);
    }
}

#[test]
fn truncated_commands_are_invalid_and_keep_the_leading_fields() {
    let bytes = encode_command(&sample_commands()[0], Framing::SingleObject).unwrap();
    for len in 0..bytes.len() {
        let c = expect_invalid(&bytes[..len]);
        assert_eq!(&*c.detail, "avro: truncated record", "len {len}");
        assert_eq!(c.ts, 42);
        // Header (10) + type (1) + order_id "o-1" (1 + 3): the id is readable from here on.
        if len >= 15 {
            assert_eq!((c.request, c.order_id.as_str()), (Request::New, "o-1"));
        }
        // ... + account "a-1" (1 + 1 + 3) + symbol "BTC-USD" (1 + 7).
        if len >= 20 {
            assert_eq!(c.account.as_str(), "a-1", "len {len}");
        }
        if len >= 28 {
            assert_eq!(c.symbol.as_str(), "BTC-USD", "len {len}");
        }
    }
    // The same in Confluent framing (5-byte header).
    let bytes = encode_command(&sample_commands()[2], Framing::Confluent { schema_id: 9 }).unwrap();
    let c = expect_invalid(&bytes[..bytes.len() - 1]);
    assert_eq!(
        (c.request, c.order_id.as_str(), c.symbol.as_str()),
        (Request::Cancel, "o-1", "BTC-USD")
    );
}

#[test]
fn unknown_fingerprints_bad_magic_and_trailing_bytes_are_invalid() {
    let mut bytes = encode_command(&sample_commands()[2], Framing::SingleObject).unwrap();
    bytes[2..10].copy_from_slice(&0x0123_4567_89ab_cdef_u64.to_le_bytes());
    let c = expect_invalid(&bytes);
    assert_eq!(
        &*c.detail,
        "avro: unknown schema fingerprint 0x0123456789abcdef"
    );
    assert_eq!((c.order_id.as_str(), c.request), ("", Request::Unknown));

    // An engine event is not a command.
    let event = encode_snapshot(&SnapshotMeta::default(), Framing::SingleObject);
    let c = expect_invalid(&event);
    assert_eq!(
        &*c.detail,
        format!(
            "avro: unknown schema fingerprint {:#018x}",
            RecordType::SnapshotMeta.fingerprint()
        )
    );

    for (bytes, detail) in [
        (
            &[0xC3, 0x02, 1, 2][..],
            "avro: bad magic C3 02: expected C3 01 (Avro single-object) or 00 (Confluent)",
        ),
        (
            &[0x01][..],
            "avro: bad magic 01: expected C3 01 (Avro single-object) or 00 (Confluent)",
        ),
        (
            &b"{\"type\":\"new\"}"[..],
            "avro: bad magic 7B 22: expected C3 01 (Avro single-object) or 00 (Confluent)",
        ),
        (&[0xC3][..], "avro: truncated record"),
        (&[0x00, 0, 0][..], "avro: truncated record"),
    ] {
        assert_eq!(&*expect_invalid(bytes).detail, detail);
    }

    let mut bytes = encode_command(&sample_commands()[2], Framing::SingleObject).unwrap();
    bytes.extend_from_slice(&[0, 0, 0]);
    let c = expect_invalid(&bytes);
    assert_eq!(&*c.detail, "avro: 3 bytes after the end of the record");
    assert_eq!(
        (c.request, c.order_id.as_str(), c.symbol.as_str()),
        (Request::Cancel, "o-1", "BTC-USD")
    );
}

/// A small deterministic generator, so garbage tests are repeatable.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let valid = encode_command(&sample_commands()[0], Framing::SingleObject).unwrap();
    for i in 0..20_000 {
        let len = (rng.next() % 64) as usize;
        let mut bytes = match i % 4 {
            // Pure noise.
            0 => rng.bytes(len),
            // A valid header, then noise.
            1 => [order_header(), rng.bytes(len)].concat(),
            2 => [vec![0, 0, 0, 0, 1], rng.bytes(len)].concat(),
            // A valid record with a few bytes flipped.
            _ => {
                let mut v = valid.clone();
                for _ in 0..1 + rng.next() % 3 {
                    let at = 10 + (rng.next() as usize) % (v.len() - 10);
                    v[at] ^= rng.next() as u8 | 1;
                }
                v
            }
        };
        if i % 4 == 0 && !bytes.is_empty() && rng.next().is_multiple_of(2) {
            bytes[0] = 0xC3;
        }
        // Anything may come back, as long as nothing panics; noise must not decode.
        let cmd = decode_command(&bytes, 0);
        if i % 4 == 0 && !bytes.starts_with(&[0xC3, 0x01]) && bytes.first() != Some(&0) {
            assert!(matches!(cmd, Command::Invalid(_)), "{bytes:?}");
        }
        let _ = decode_event(&bytes);
        let _ = decode_snapshot(&bytes);
    }
}

// ---------------------------------------------------------------------------------------------
// Engine events
// ---------------------------------------------------------------------------------------------

/// Runs a session that produces every event kind.
fn session_events() -> Vec<Event> {
    let lines = [
        r#"{"type":"new","order_id":"o-1","account":"a-1","symbol":"BTC-USD","side":"buy","order_type":"limit","price":"100.50","qty":"2","tif":"gtc","ts":1}"#,
        r#"{"type":"new","order_id":"o-2","account":"a-2","symbol":"BTC-USD","side":"sell","order_type":"limit","price":"101.00","qty":"1","tif":"gtc","post_only":true,"ts":2}"#,
        r#"{"type":"replace","order_id":"o-1","account":"a-1","symbol":"BTC-USD","price":"100.40","ts":3}"#,
        r#"{"type":"new","order_id":"o-3","account":"a-3","symbol":"BTC-USD","side":"sell","order_type":"market","qty":"0.5","tif":"ioc","ts":4}"#,
        r#"{"type":"new","order_id":"o-4","account":"a-4","symbol":"BTC-USD","side":"sell","order_type":"limit","price":"100.40","qty":"5","tif":"ioc","ts":5}"#,
        r#"{"type":"cancel","order_id":"o-2","account":"a-2","symbol":"BTC-USD","ts":6}"#,
        r#"{"type":"new","order_id":"o-5","account":"a-5","symbol":"ETH-USD","side":"buy","order_type":"limit","price":"1","qty":"1","tif":"gtc","ts":7}"#,
        r#"{"type":"new","order_id":"o-6","symbol":"BTC-USD","ts":8}"#,
        r#"{"type":"new","order_id":"o-7","account":"a-7","symbol":"BTC-USD","side":"buy","order_type":"limit","price":"100.001","qty":"1","tif":"gtc","ts":9}"#,
    ];
    let mut engine: Engine = Engine::new(instruments());
    let mut out = Vec::new();
    for line in lines {
        engine.apply(&crate::json::decode_command(line.as_bytes(), 0), &mut out);
    }
    out
}

/// The JSON contract's rendering of a decoded event, to compare with `json::encode_event`.
fn to_json(e: &DecodedEvent) -> Value {
    let s = |d: &Decimal| Value::String(d.to_string());
    let mut v = json!({
        "event": e.kind.name(),
        "seq": e.seq,
        "ts": e.ts,
        "symbol": e.symbol.as_str(),
    });
    let body = match &e.kind {
        DecodedKind::Accepted {
            order_id,
            account,
            side,
            order_type,
            tif,
            price,
            qty,
            post_only,
        } => {
            let mut b = json!({
                "order_id": order_id.as_str(), "account": account.as_str(),
                "side": side.as_str(), "order_type": order_type.as_str(), "tif": tif.as_str(),
                "qty": s(qty), "post_only": post_only,
            });
            if let Some(p) = price {
                b["price"] = s(p);
            }
            b
        }
        DecodedKind::Rejected {
            order_id,
            account,
            request,
            reason,
            detail,
        } => {
            let mut b = json!({
                "order_id": order_id.as_str(), "account": account.as_str(),
                "request": request.as_str(), "reason": reason,
            });
            if let Some(d) = detail {
                b["detail"] = json!(d);
            }
            b
        }
        DecodedKind::Trade {
            price,
            qty,
            maker_order_id,
            maker_account,
            maker_leaves,
            taker_order_id,
            taker_account,
            taker_side,
            taker_leaves,
        } => json!({
            "price": s(price), "qty": s(qty),
            "maker_order_id": maker_order_id.as_str(), "maker_account": maker_account.as_str(),
            "maker_leaves": s(maker_leaves),
            "taker_order_id": taker_order_id.as_str(), "taker_account": taker_account.as_str(),
            "taker_side": taker_side.as_str(), "taker_leaves": s(taker_leaves),
        }),
        DecodedKind::Cancelled {
            order_id,
            account,
            qty,
        }
        | DecodedKind::Expired {
            order_id,
            account,
            qty,
        } => json!({"order_id": order_id.as_str(), "account": account.as_str(), "qty": s(qty)}),
        DecodedKind::Replaced {
            order_id,
            account,
            side,
            old_price,
            price,
            old_qty,
            qty,
            priority_kept,
        } => json!({
            "order_id": order_id.as_str(), "account": account.as_str(), "side": side.as_str(),
            "old_price": s(old_price), "price": s(price), "old_qty": s(old_qty), "qty": s(qty),
            "priority_kept": priority_kept,
        }),
        DecodedKind::BookDelta { side, price, qty } => {
            json!({"side": side.as_str(), "price": s(price), "qty": s(qty)})
        }
        DecodedKind::TopOfBook { bid, ask } => json!({
            "bid_price": bid.map(|l| s(&l.price)), "bid_qty": bid.map(|l| s(&l.qty)),
            "ask_price": ask.map(|l| s(&l.price)), "ask_qty": ask.map(|l| s(&l.qty)),
        }),
    };
    for (k, x) in body.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

#[test]
fn every_event_kind_round_trips_and_agrees_with_json() {
    let instruments = instruments();
    let events = session_events();
    let kinds: BTreeSet<_> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds.len(), 8, "the session covers every kind: {kinds:?}");

    for framing in FRAMINGS {
        let mut out = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let provenance = Provenance {
                source_partition: 3,
                source_offset: 1000 + i as i64,
                seq: e.seq.0,
            };
            out.clear();
            encode_event(&instruments, e, provenance, framing, &mut out);
            let decoded = decode_event(&out).unwrap();
            assert_eq!(decoded.provenance(), provenance);
            assert_eq!(decoded.kind.name(), e.kind.name());

            let mut json = Vec::new();
            crate::json::encode_event(&instruments, e, &mut json);
            let json: Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(to_json(&decoded), json, "{framing:?}");
        }
    }
}

#[test]
fn events_take_seq_from_the_provenance_and_append() {
    let instruments = instruments();
    let events = session_events();
    let mut out = b"prefix".to_vec();
    let p = Provenance {
        source_partition: 0,
        source_offset: 77,
        seq: 123_456_789_012,
    };
    encode_event(&instruments, &events[0], p, Framing::SingleObject, &mut out);
    assert_eq!(&out[..6], b"prefix");
    let decoded = decode_event(&out[6..]).unwrap();
    assert_eq!(decoded.seq, 123_456_789_012);
    assert_eq!(decoded.ts, events[0].ts);
    let EventKind::Accepted { order_id, .. } = events[0].kind else {
        panic!("first event is the acceptance");
    };
    assert_eq!(
        decoded.kind,
        DecodedKind::Accepted {
            order_id,
            account: Account::new("a-1").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: Tif::Gtc,
            price: Some(d("100.50")),
            qty: d("2.000"),
            post_only: false,
        }
    );
}

#[test]
fn events_are_plain_avro_for_generic_readers() {
    let instruments = instruments();
    let trade = session_events()
        .into_iter()
        .find(|e| e.kind.name() == "trade")
        .unwrap();
    let mut out = Vec::new();
    let p = Provenance {
        source_partition: 1,
        source_offset: 2,
        seq: 3,
    };
    encode_event(&instruments, &trade, p, Framing::SingleObject, &mut out);
    let (_, mut body) = split_header(&out).unwrap();
    let value = GenericDatumReader::builder(RecordType::EngineEvent.schema())
        .build()
        .unwrap()
        .read_value(&mut body)
        .unwrap();
    assert!(body.is_empty());
    let AvroValue::Record(fields) = value else {
        panic!("not a record");
    };
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).unwrap().1.clone();
    assert_eq!(field("event"), AvroValue::Enum(2, "trade".into()));
    assert_eq!(field("seq"), AvroValue::Long(3));
    assert_eq!(field("price"), some(string("100.40")));
    assert_eq!(field("taker_side"), some(AvroValue::Enum(1, "sell".into())));
    assert_eq!(field("order_id"), null());
}

/// `order_command.avsc`'s fingerprint. Pinned: cancels and replaces now require `account`, but
/// the field kept its nullable type (it was there for new orders), so only the schema's docs
/// changed, which are not part of the canonical form; records written before still decode.
const ORDER_COMMAND_FINGERPRINT: u64 = 0xce4a_b528_a1b1_8c66;

#[test]
fn requiring_the_account_on_cancels_kept_the_order_command_fingerprint() {
    assert_eq!(
        RecordType::OrderCommand.fingerprint(),
        ORDER_COMMAND_FINGERPRINT
    );
    // A cancel written the old way (no account) still reads: into a rejection naming the field.
    let old = encode_command(&sample_commands()[2], Framing::SingleObject).unwrap();
    let mut without = old[..15].to_vec(); // header, type, order_id "o-1"
    without.push(0); // account: null
    let account_len = 1 + 1 + "a-1".len();
    without.extend_from_slice(&old[15 + account_len..]);
    let c = expect_invalid(&without);
    assert_eq!(&*c.detail, "avro: account: required on a cancel");
    assert_eq!((c.request, c.order_id.as_str()), (Request::Cancel, "o-1"));
}

/// `engine_event.avsc`'s fingerprint. Pinned: a change to the schema's canonical form makes
/// records written before it undecodable (see the canonical-form test above).
const ENGINE_EVENT_FINGERPRINT: u64 = 0x4ea3_68d8_3dee_25aa;

/// A rejection as a generic Avro writer writes it, with `account` as given.
fn generic_rejection(account: AvroValue) -> Vec<u8> {
    let fields = EVENT_FIELDS
        .iter()
        .map(|&f| {
            let v = match f {
                "event" => AvroValue::Enum(1, "rejected".into()),
                "seq" => AvroValue::Long(9),
                "ts" => AvroValue::TimestampMillis(5),
                "symbol" => string("BTC-USD"),
                "source_partition" => AvroValue::Int(2),
                "source_offset" => AvroValue::Long(40),
                "order_id" => some(string("o-1")),
                "account" => account.clone(),
                "request" => some(AvroValue::Enum(1, "cancel".into())),
                "reason" => some(string("unknown_order")),
                _ => null(),
            };
            (f.to_string(), v)
        })
        .collect();
    let mut bytes = SINGLE_OBJECT_MAGIC.to_vec();
    bytes.extend_from_slice(&RecordType::EngineEvent.fingerprint().to_le_bytes());
    bytes.extend(
        GenericDatumWriter::builder(RecordType::EngineEvent.schema())
            .build()
            .unwrap()
            .write_value_to_vec(AvroValue::Record(fields))
            .unwrap(),
    );
    bytes
}

#[test]
fn rejections_carry_the_account_to_tell_in_the_existing_field() {
    // The account travels in the schema's existing nullable `account` field: the schema's
    // canonical form, and so its fingerprint, is what it was before rejections carried one.
    assert_eq!(
        RecordType::EngineEvent.fingerprint(),
        ENGINE_EVENT_FINGERPRINT
    );
    let instruments = instruments();
    let mut told = Vec::new();
    for e in session_events()
        .iter()
        .filter(|e| e.kind.name() == "rejected")
    {
        let mut out = Vec::new();
        encode_event(
            &instruments,
            e,
            Provenance::default(),
            Framing::SingleObject,
            &mut out,
        );
        let DecodedKind::Rejected {
            order_id, account, ..
        } = decode_event(&out).unwrap().kind
        else {
            panic!("not a rejection");
        };
        told.push((order_id.to_string(), account.to_string()));
        // Written as a string even when empty, as `order_id` is.
        let (_, mut body) = split_header(&out).unwrap();
        let AvroValue::Record(fields) =
            GenericDatumReader::builder(RecordType::EngineEvent.schema())
                .build()
                .unwrap()
                .read_value(&mut body)
                .unwrap()
        else {
            panic!("not a record");
        };
        let field = fields.iter().find(|(k, _)| k == "account").unwrap();
        assert_eq!(field.1, some(string(account.as_str())));
    }
    // Unknown symbol (a new order: its account), malformed without an account, off tick.
    let told: Vec<(&str, &str)> = told.iter().map(|(o, a)| (o.as_str(), a.as_str())).collect();
    assert_eq!(told, [("o-5", "a-5"), ("o-6", ""), ("o-7", "a-7")]);

    // Records written before rejections carried an account have null there: nobody to tell.
    let decoded = decode_event(&generic_rejection(null())).unwrap();
    assert_eq!(
        decoded.kind,
        DecodedKind::Rejected {
            order_id: OrderId::new("o-1").unwrap(),
            account: Account(Name::EMPTY),
            request: Request::Cancel,
            reason: "unknown_order".into(),
            detail: None,
        }
    );
    let decoded = decode_event(&generic_rejection(some(string("a-1")))).unwrap();
    assert!(matches!(
        decoded.kind,
        DecodedKind::Rejected { account, .. } if account.as_str() == "a-1"
    ));
    let long = some(string(&"x".repeat(41)));
    assert!(matches!(
        decode_event(&generic_rejection(long)),
        Err(AvroError::Field {
            field: "account",
            ..
        })
    ));
}

#[test]
fn bad_timestamp_rejections_round_trip_without_a_schema_change() {
    // Reason codes and details travel as strings (`reason`, `detail`), so a new reason is no
    // change to the schema's canonical form: records written before it still decode, and readers
    // on the old schema read the new code as text.
    assert_eq!(
        RecordType::EngineEvent.fingerprint(),
        ENGINE_EVENT_FINGERPRINT
    );
    let instruments = instruments();
    let order = br#"{"type":"new","order_id":"o-1","account":"a-1","symbol":"BTC-USD","side":"buy","order_type":"limit","price":"100.50","qty":"2","tif":"gtc","ts":1732900000000000}"#;
    let detail = "ts 1732900000000000 is 1731167099999999 ms ahead of the record timestamp";
    let mut engine: Engine = Engine::new(instruments.clone());
    let mut events = Vec::new();
    engine.reject(
        &crate::json::decode_command(order, 0),
        RejectReason::BadTimestamp(detail.into()),
        1_732_900_000_001,
        &mut events,
    );
    let [e] = events.as_slice() else {
        panic!("one rejection: {events:?}");
    };
    let want = DecodedKind::Rejected {
        order_id: OrderId::new("o-1").unwrap(),
        account: Account::new("a-1").unwrap(),
        request: Request::New,
        reason: "bad_timestamp".into(),
        detail: Some(detail.into()),
    };
    for framing in FRAMINGS {
        let mut out = Vec::new();
        let provenance = Provenance {
            seq: e.seq.0,
            ..Provenance::default()
        };
        encode_event(&instruments, e, provenance, framing, &mut out);
        let decoded = decode_event(&out).unwrap();
        assert_eq!(decoded.kind, want, "{framing:?}");
        assert_eq!(decoded.ts, 1_732_900_000_001, "stamped with the time given");
        let mut json = Vec::new();
        crate::json::encode_event(&instruments, e, &mut json);
        let json: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(to_json(&decoded), json, "{framing:?}");
        assert_eq!(json["reason"], "bad_timestamp");
        assert_eq!(json["detail"], detail);
        assert_eq!(json["account"], "a-1");
    }
}

#[test]
fn bad_event_records_are_errors() {
    let instruments = instruments();
    let events = session_events();
    let mut out = Vec::new();
    encode_event(
        &instruments,
        &events[0],
        Provenance::default(),
        Framing::Confluent { schema_id: 5 },
        &mut out,
    );
    for len in 0..out.len() {
        assert_eq!(
            decode_event(&out[..len]),
            Err(AvroError::Truncated),
            "{len}"
        );
    }
    let cmd = encode_command(&sample_commands()[0], Framing::SingleObject).unwrap();
    assert_eq!(
        decode_event(&cmd),
        Err(AvroError::UnknownFingerprint(
            RecordType::OrderCommand.fingerprint()
        ))
    );
    assert!(matches!(
        decode_event(b"{}"),
        Err(AvroError::BadMagic(m)) if m == b"{}"
    ));
    // A command body under a Confluent header: the registry id is trusted, the body is not.
    let mut confused = vec![0, 0, 0, 0, 1];
    confused.extend_from_slice(&cmd[10..]);
    assert!(decode_event(&confused).is_err());
}

// ---------------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------------

fn sample_snapshots() -> Vec<SnapshotMeta> {
    vec![
        SnapshotMeta::default(),
        SnapshotMeta {
            group: "matcher".into(),
            partition: 7,
            input_offset: 123_456,
            last_seq: 99,
            state_hash: u64::MAX,
            output_hash: 0x8000_0000_0000_0001,
            chunk: 2,
            chunks: u32::MAX,
            engine_bytes: (0..=255).cycle().take(100_000).collect(),
            trades_seq: 41,
            market_data_seq: u64::MAX,
            dead_letter_end: -1,
        },
    ]
}

#[test]
fn snapshots_round_trip_every_value() {
    for meta in sample_snapshots() {
        for framing in FRAMINGS {
            let bytes = encode_snapshot(&meta, framing);
            assert_eq!(decode_snapshot(&bytes).unwrap(), meta);
            assert_eq!(
                decode_snapshot(&bytes[..bytes.len() - 1]),
                Err(AvroError::Truncated)
            );
        }
    }
    let mut bytes = encode_snapshot(&SnapshotMeta::default(), Framing::SingleObject);
    bytes.push(0);
    assert_eq!(decode_snapshot(&bytes), Err(AvroError::TrailingBytes(1)));
}

#[test]
fn cancel_and_replace_records_without_an_account_are_invalid() {
    for (tag, what) in [(1, "cancel"), (2, "replace")] {
        let mut bytes = order_header();
        bytes.extend(generic_order_body(vec![
            ("type", AvroValue::Enum(tag, what.into())),
            ("order_id", string("o-7")),
            ("account", null()),
            ("symbol", string("BTC-USD")),
            ("side", null()),
            ("order_type", null()),
            ("price", null()),
            ("qty", some(string("1"))),
            ("tif", null()),
            ("post_only", AvroValue::Boolean(false)),
            ("ts", some(AvroValue::TimestampMillis(11))),
        ]));
        let c = expect_invalid(&bytes);
        assert_eq!(
            (c.order_id.as_str(), c.symbol.as_str(), c.ts),
            ("o-7", "BTC-USD", 11),
            "{what}"
        );
        assert_eq!(&*c.detail, format!("avro: account: required on a {what}"));
    }
}
