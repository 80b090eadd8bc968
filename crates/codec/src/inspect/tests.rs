use super::*;
use crate::avro::Framing;

const CANDLE: &str = include_str!("../../../../schemas/candle.avsc");

#[test]
fn avro_records_decode_into_json_with_either_framing() {
    let c = crate::records::tests::candle();
    let decoder = Decoder::new(CANDLE).unwrap();
    for framing in [Framing::SingleObject, Framing::Confluent { schema_id: 7 }] {
        let bytes = crate::records::encode_candle(&c, framing).unwrap();
        let v = value_to_json(Some(&decoder), &bytes);
        assert_eq!(v["symbol"], c.symbol, "{v}");
        assert!(v.get("undecoded").is_none(), "{v}");
    }
}

#[test]
fn json_passes_through_and_garbage_is_shown_with_its_reason() {
    assert_eq!(
        value_to_json(None, br#"{"a":1}"#),
        serde_json::json!({"a": 1})
    );
    let v = value_to_json(None, b"\x01\x02oops");
    assert_eq!(v["error"], "neither JSON nor Avro");
    let d = Decoder::new(CANDLE).unwrap();
    let v = value_to_json(Some(&d), b"\xC3\x01\x00\x00\x00\x00\x00\x00\x00\x00\x05");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
}
