use std::io::{Read, Write};

use tradestream_codec::avro::{Framing, RecordType};
use tradestream_runtime::KafkaConfig;

use super::*;

/// A registry on loopback: every registration gets id 3 (`engine_event.avsc`); id 4 is
/// `order_command.avsc`; id 5 is some other schema; anything else is unknown.
fn registry(requests: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for _ in 0..requests {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            let mut len = 0;
            while let Ok(n) = s.read(&mut buf[len..]) {
                len += n;
                let text = String::from_utf8_lossy(&buf[..len]);
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    continue;
                };
                let want: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if body.len() >= want || n == 0 {
                    break;
                }
            }
            let request = String::from_utf8_lossy(&buf[..len]).into_owned();
            let line = request.lines().next().unwrap_or_default();
            let schema = |avsc: &str| serde_json::json!({ "schema": avsc }).to_string();
            let (status, body) = if line.starts_with("POST ") {
                ("200 OK", r#"{"id":3}"#.to_owned())
            } else if line.starts_with("GET /schemas/ids/4 ") {
                ("200 OK", schema(RecordType::OrderCommand.avsc()))
            } else if line.starts_with("GET /schemas/ids/5 ") {
                ("200 OK", schema(RecordType::SnapshotMeta.avsc()))
            } else {
                ("404 Not Found", r#"{"error_code":40403}"#.to_owned())
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn matcher(url: &str) -> Matcher {
    let instruments = tradestream_engine::Instruments::default();
    let mut cfg = MatcherConfig::new(KafkaConfig::new("127.0.0.1:1"), instruments);
    cfg.schema_registry = Some(url.to_owned());
    Matcher::new(cfg, Arc::default()).expect("registry reachable")
}

#[test]
fn with_a_registry_outputs_are_confluent_framed_and_order_ids_are_checked() {
    // 3 registrations, then one lookup each for ids 4, 5 and 6 (4 is asked once: cached).
    let url = registry(6);
    let mut m = matcher(&url);
    assert_eq!(m.framing, [Framing::Confluent { schema_id: 3 }; 3]);
    let order = |id: u32| {
        let mut b = vec![0u8];
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(b"body");
        b
    };
    assert_eq!(m.schema_poison(&order(4)).unwrap(), None);
    assert_eq!(m.schema_poison(&order(4)).unwrap(), None, "cached");
    let other = m.schema_poison(&order(5)).unwrap().expect("another schema");
    assert_eq!(other.class, "schema");
    assert!(other.message.contains("schema id 5"), "{}", other.message);
    let unknown = m.schema_poison(&order(6)).unwrap().expect("an unknown id");
    assert_eq!(unknown.class, "schema");
    // JSON and single-object records are not the registry's business.
    assert_eq!(m.schema_poison(b"{\"type\":\"new\"}").unwrap(), None);
}

#[test]
fn an_unreachable_registry_stops_the_matcher_with_an_error() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let instruments = tradestream_engine::Instruments::default();
    let mut cfg = MatcherConfig::new(KafkaConfig::new("127.0.0.1:1"), instruments);
    cfg.schema_registry = Some(url);
    let err = Matcher::new(cfg, Arc::default()).expect_err("no registry there");
    assert!(err.to_string().contains("schema registry"), "{err}");
}
