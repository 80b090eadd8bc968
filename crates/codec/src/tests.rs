//! Tests of the JSON contract.

use serde_json::{Value, json};
use tradestream_engine::{
    Command, Decimal, Engine, Event, InstrumentSpec, Instruments, OrderType, Request, Side, Tif,
};

use crate::json::{decode_command, decode_command_tagged, encode_event};

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

fn invalid(line: &str) -> (String, String, Request, String, i64) {
    match decode_command(line.as_bytes(), 42) {
        Command::Invalid(c) => (
            c.order_id.to_string(),
            c.symbol.to_string(),
            c.request,
            c.detail.to_string(),
            c.ts,
        ),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn decodes_the_documented_commands() {
    let new = r#"{"type":"new","order_id":"o-1","account":"a-1","symbol":"BTC-USD","side":"buy","order_type":"limit","price":"100.50","qty":"2","tif":"gtc","post_only":false,"ts":1732900000000}"#;
    let Command::New(n) = decode_command(new.as_bytes(), 0) else {
        panic!("not a new order");
    };
    assert_eq!(n.order_id.as_str(), "o-1");
    assert_eq!(n.account.as_str(), "a-1");
    assert_eq!(
        (n.side, n.order_type, n.tif),
        (Side::Buy, OrderType::Limit, Tif::Gtc)
    );
    assert_eq!(n.price, Some(Decimal::new(10050, 2)));
    assert_eq!(n.qty, Decimal::from_int(2));
    assert_eq!(n.ts, 1732900000000);

    let market = r#"{"type":"new","order_id":"o-2","account":"a","symbol":"BTC-USD","side":"sell","order_type":"market","qty":"1","tif":"ioc","extra":"ignored"}"#;
    let Command::New(m) = decode_command(market.as_bytes(), 7) else {
        panic!("not a new order");
    };
    assert_eq!(
        (m.price, m.post_only, m.ts),
        (None, false, 7),
        "defaults and fallback ts"
    );

    let cancel = r#"{"type":"cancel","order_id":"o-1","account":"a-1","symbol":"BTC-USD","ts":5}"#;
    assert!(matches!(
        decode_command(cancel.as_bytes(), 0),
        Command::Cancel(c) if c.ts == 5 && c.account.as_str() == "a-1"
    ));
    let replace = r#"{"type":"replace","order_id":"o-1","account":"a-1","symbol":"BTC-USD","price":"101.00","ts":6}"#;
    let Command::Replace(r) = decode_command(replace.as_bytes(), 0) else {
        panic!("not a replace");
    };
    assert_eq!((r.price, r.qty), (Some(Decimal::new(10100, 2)), None));
    assert_eq!(r.account.as_str(), "a-1");
}

#[test]
fn malformed_commands_keep_what_can_be_read() {
    let (id, sym, req, detail, ts) =
        invalid(r#"{"type":"new","order_id":"o-9","symbol":"BTC-USD","ts":3}"#);
    assert_eq!(
        (id.as_str(), sym.as_str(), req, ts),
        ("o-9", "BTC-USD", Request::New, 3)
    );
    assert!(detail.contains("missing field"), "{detail}");

    let (_, _, _, detail, _) = invalid(
        r#"{"type":"new","order_id":"o","account":"a","symbol":"S","side":"buy","order_type":"limit","price":100,"qty":"1","tif":"gtc"}"#,
    );
    assert!(
        detail.contains("invalid type"),
        "wrong field type: {detail}"
    );

    let (_, _, req, detail, _) =
        invalid(r#"{"type":"replace","order_id":"o","account":"a","symbol":"S","qty":"1.2.3"}"#);
    assert_eq!(req, Request::Replace);
    assert_eq!(detail, "qty: invalid character in decimal");

    let long = "x".repeat(41);
    let (id, _, _, detail, _) = invalid(&format!(
        r#"{{"type":"cancel","order_id":"{long}","account":"a","symbol":"S"}}"#
    ));
    assert_eq!(id, "", "an id too long to keep is left empty");
    assert!(
        detail.starts_with("order_id: identifier is 41 bytes"),
        "{detail}"
    );

    let (_, _, req, detail, ts) = invalid(r#"{"type":"amend","order_id":"o"}"#);
    assert_eq!((req, ts), (Request::Unknown, 42));
    assert!(detail.contains("unknown variant"), "{detail}");

    let (id, sym, req, _, _) = invalid("not json at all");
    assert_eq!((id.as_str(), sym.as_str(), req), ("", "", Request::Unknown));

    // The account is kept when it can be read, so the rejection can be addressed to it.
    let account = |line: &str| match decode_command(line.as_bytes(), 0) {
        Command::Invalid(c) => c.account.to_string(),
        other => panic!("expected invalid, got {other:?}"),
    };
    assert_eq!(
        account(r#"{"type":"new","order_id":"o","account":"a-1","symbol":"S","qty":"x"}"#),
        "a-1"
    );
    assert_eq!(account(r#"{"type":"new","order_id":"o","symbol":"S"}"#), "");
    assert_eq!(account(r#"{"type":"new","account":7}"#), "", "not a string");
    assert_eq!(
        account(&format!(r#"{{"type":"new","account":"{long}"}}"#)),
        "",
        "too long to keep"
    );
    assert_eq!(account(r#"{"type":"new","account":"a-1""#), "", "not JSON");
    let (_, _, _, detail, _) = invalid("\u{fffd}\u{0}");
    assert!(!detail.is_empty());
    assert!(matches!(
        decode_command(&[0xff, 0xfe, b'{'], 0),
        Command::Invalid(_)
    ));
}

fn encode_all(events: &[Event], inst: &Instruments) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut out = Vec::new();
            encode_event(inst, e, &mut out);
            serde_json::from_slice(&out).unwrap()
        })
        .collect()
}

#[test]
fn encodes_every_event_kind_with_decimal_strings() {
    let inst = instruments();
    let mut engine: Engine = Engine::new(inst.clone());
    let lines = [
        r#"{"type":"new","order_id":"s","account":"m","symbol":"BTC-USD","side":"sell","order_type":"limit","price":"100.5","qty":"1.5","tif":"gtc","ts":1}"#,
        r#"{"type":"new","order_id":"b","account":"t","symbol":"BTC-USD","side":"buy","order_type":"limit","price":"101","qty":"2","tif":"ioc","ts":2}"#,
        r#"{"type":"new","order_id":"r","account":"t","symbol":"BTC-USD","side":"buy","order_type":"limit","price":"99","qty":"1","tif":"gtc","ts":3}"#,
        r#"{"type":"replace","order_id":"r","account":"t","symbol":"BTC-USD","price":"98","ts":4}"#,
        r#"{"type":"cancel","order_id":"r","account":"t","symbol":"BTC-USD","ts":5}"#,
        r#"{"type":"cancel","order_id":"r","account":"t","symbol":"BTC-USD","ts":6}"#,
        r#"{"type":"bogus"}"#,
        r#"{"type":"new","order_id":"s2","account":"m","symbol":"BTC-USD","side":"sell","order_type":"limit","price":"105","qty":"1","tif":"gtc","ts":7}"#,
        r#"{"type":"replace","order_id":"s2","account":"m","symbol":"BTC-USD","price":"100.001","ts":7}"#,
        r#"{"type":"new","order_id":"x","account":"t","symbol":"BTC-USD","side":"buy","order_type":"market","qty":"1","tif":"gtc","ts":8}"#,
    ];
    let mut events = Vec::new();
    for l in lines {
        engine.apply(&decode_command(l.as_bytes(), 0), &mut events);
    }
    let v = encode_all(&events, &inst);
    let find = |name: &str| v.iter().find(|e| e["event"] == name).cloned().unwrap();
    assert_eq!(
        find("accepted"),
        json!({"event":"accepted","seq":1,"ts":1,"symbol":"BTC-USD","order_id":"s","account":"m",
               "side":"sell","order_type":"limit","tif":"gtc","price":"100.50","qty":"1.500","post_only":false})
    );
    assert_eq!(
        find("trade"),
        json!({"event":"trade","seq":5,"ts":2,"symbol":"BTC-USD","price":"100.50","qty":"1.500",
               "maker_order_id":"s","maker_account":"m","maker_leaves":"0.000","taker_order_id":"b",
               "taker_account":"t","taker_side":"buy","taker_leaves":"0.500"})
    );
    assert_eq!(find("expired")["qty"], "0.500");
    assert_eq!(find("book_delta")["price"], "100.50");
    assert_eq!(find("top_of_book")["bid_price"], Value::Null);
    let replaced = find("replaced");
    assert_eq!(
        (replaced["old_price"].as_str(), replaced["price"].as_str()),
        (Some("99.00"), Some("98.00"))
    );
    assert_eq!(replaced["priority_kept"], false);
    assert_eq!(find("cancelled")["qty"], "1.000");
    let rejected: Vec<&Value> = v.iter().filter(|e| e["event"] == "rejected").collect();
    assert_eq!(
        rejected[0],
        &json!({"event":"rejected","seq":rejected[0]["seq"],"ts":6,"symbol":"BTC-USD",
                "order_id":"r","account":"t","request":"cancel","reason":"unknown_order"}),
        "an order the engine does not hold: the sender is told"
    );
    assert_eq!(rejected[1]["reason"], "malformed");
    assert_eq!(rejected[1]["account"], "");
    assert!(
        rejected[1]["detail"]
            .as_str()
            .unwrap()
            .contains("unknown variant")
    );
    // A refused replace tells its sender (here the owner); so does a refused new order.
    assert_eq!(
        (
            rejected[2]["order_id"].as_str(),
            rejected[2]["account"].as_str()
        ),
        (Some("s2"), Some("m"))
    );
    assert_eq!(rejected[2]["reason"], "price_off_tick");
    assert_eq!(
        (
            rejected[3]["order_id"].as_str(),
            rejected[3]["account"].as_str()
        ),
        (Some("x"), Some("t"))
    );
    let seqs: Vec<u64> = v.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=v.len() as u64).collect::<Vec<_>>());
}

/// Runs JSON command lines through an engine and returns the events as JSON.
fn run_lines(lines: &[&str]) -> Vec<Value> {
    let inst = instruments();
    let mut engine: Engine = Engine::new(inst.clone());
    let mut events = Vec::new();
    for l in lines {
        engine.apply(&decode_command(l.as_bytes(), 0), &mut events);
    }
    encode_all(&events, &inst)
}

#[test]
fn only_the_owner_may_cancel_or_replace() {
    let v = run_lines(&[
        r#"{"type":"new","order_id":"o-1","account":"alice","symbol":"BTC-USD","side":"buy","order_type":"limit","price":"100","qty":"2","tif":"gtc","ts":1}"#,
        r#"{"type":"cancel","order_id":"o-1","account":"mallory","symbol":"BTC-USD","ts":2}"#,
        r#"{"type":"replace","order_id":"o-1","account":"mallory","symbol":"BTC-USD","qty":"1","ts":3}"#,
        r#"{"type":"replace","order_id":"o-1","account":"alice","symbol":"BTC-USD","qty":"1","ts":4}"#,
        r#"{"type":"cancel","order_id":"o-1","account":"alice","symbol":"BTC-USD","ts":5}"#,
    ]);
    let at = |ts: i64| -> Vec<&Value> { v.iter().filter(|e| e["ts"] == ts).collect() };
    // A non-owner's cancel and replace: refused, told to the sender, nothing about the order.
    for (ts, request) in [(2, "cancel"), (3, "replace")] {
        assert_eq!(
            at(ts),
            [
                &json!({"event":"rejected","seq":at(ts)[0]["seq"],"ts":ts,"symbol":"BTC-USD",
                     "order_id":"o-1","account":"mallory","request":request,"reason":"not_owner"})
            ],
            "{request} by a non-owner"
        );
    }
    // The owner's replace and cancel go through.
    assert_eq!(at(4)[0]["event"], "replaced");
    assert_eq!(at(5)[0]["event"], "cancelled");
    assert_eq!(
        at(5)[0]["qty"],
        "1.000",
        "the non-owner's replace changed nothing"
    );
}

#[test]
fn cancel_and_replace_without_an_account_are_malformed() {
    for line in [
        r#"{"type":"cancel","order_id":"o-1","symbol":"BTC-USD","ts":2}"#,
        r#"{"type":"replace","order_id":"o-1","symbol":"BTC-USD","qty":"1","ts":3}"#,
    ] {
        let (id, sym, _, detail, _) = invalid(line);
        assert_eq!((id.as_str(), sym.as_str()), ("o-1", "BTC-USD"), "{line}");
        assert!(
            detail.contains("missing field `account`"),
            "{line}: {detail}"
        );
    }
}

/// The fast path of `decode_command` (borrowed fields) decodes every line exactly as the tagged
/// enum does, valid or not: the shipped sample, and lines that tempt it to differ.
#[test]
fn the_fast_json_path_decodes_as_the_tagged_enum_does() {
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/orders.jsonl"
    ))
    .unwrap();
    let new = r#""type":"new","order_id":"o-1","account":"a-1","symbol":"BTC-USD","side":"buy","order_type":"limit","price":"100.50","qty":"2","tif":"gtc""#;
    let cancel = r#""type":"cancel","order_id":"o-1","account":"a-1","symbol":"BTC-USD""#;
    let replace = r#""type":"replace","order_id":"o-1","account":"a-1","symbol":"BTC-USD""#;
    let tricky = [
        format!("{{{new}}}"),
        format!("  {{{new},\"ts\":5}}"),
        format!("{{{new},\"ts\":null,\"post_only\":true}}"),
        format!("{{{new},\"post_only\":null}}"),
        format!("{{{new},\"ts\":1.5}}"),
        format!("{{{new},\"ts\":\"5\"}}"),
        format!("{{{new},\"price\":null}}"),
        format!("{{{new},\"extra\":[1,2,{{}}]}}"),
        format!("{{{new},\"order_id\":\"o-2\"}}"),
        r#"{"type":"new","order_id":"o\u002d1","account":"a-1","symbol":"BTC-USD","side":"buy","order_type":"market","qty":"2","tif":"ioc"}"#.into(),
        r#"{"type":"new","order_id":"o-1","account":"a-1","symbol":"BTC-USD","side":"up","order_type":"limit","qty":"2","tif":"gtc"}"#.into(),
        r#"{"type":"new","order_id":"o-1","account":"a-1","symbol":"BTC-USD","side":"buy","order_type":"limit","qty":2,"tif":"gtc"}"#.into(),
        r#"{"type":"new","order_id":"o-1","account":"a-1","symbol":"BTC-USD","side":"buy","order_type":"limit","tif":"gtc"}"#.into(),
        format!("{{{cancel}}}"),
        format!("{{{cancel},\"side\":\"sideways\",\"qty\":7,\"post_only\":\"x\"}}"),
        format!("{{{cancel},\"ts\":12}}"),
        r#"{"type":"cancel","order_id":"o-1","symbol":"BTC-USD"}"#.into(),
        format!("{{{replace},\"price\":\"101\"}}"),
        format!("{{{replace},\"qty\":\"1\",\"price\":null}}"),
        format!("{{{replace},\"qty\":\"x\"}}"),
        format!("{{{replace}}}"),
        format!("{{\"type\":\"amend\",{}}}", &cancel[16..]),
        format!("{{\"type\":7,{}}}", &cancel[18..]),
        format!("{{\"order_id\":\"{}\",{}}}", "o".repeat(41), &new[new.find("\"account\"").unwrap()..]),
        r#"["cancel","o-1","a-1","BTC-USD",null,null,null,null,null,null,false,3]"#.into(),
        "{}".into(),
        "{".into(),
        "null".into(),
        String::new(),
    ];
    for line in sample.lines().map(str::to_owned).chain(tricky) {
        assert_eq!(
            decode_command(line.as_bytes(), 99),
            decode_command_tagged(line.as_bytes(), 99),
            "{line}"
        );
    }
}
