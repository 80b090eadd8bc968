use super::*;

#[test]
fn notification_rows_round_trip_through_the_topic_record() {
    let row = NotificationRow {
        account: "acct-1".into(),
        source_partition: 2,
        seq: 31,
        ts_ms: 1_732_900_000_000,
        kind: "fill".into(),
        order_id: "o-9".into(),
        symbol: "BTC-USD".into(),
        text: "sold 0.50 BTC-USD at 60000.00 (filled)".into(),
    };
    for framing in [Framing::SingleObject, Framing::Confluent { schema_id: 12 }] {
        assert_eq!(decode(&encode(&row, framing).unwrap()).unwrap(), row);
    }
    assert!(decode(b"not avro").is_err());
}

#[test]
fn a_reader_keeps_both_sides_of_a_trade_and_drops_only_resent_copies() {
    use tradestream_codec::avro::{DecodedEvent, DecodedKind};
    use tradestream_engine::{Account, OrderId, Side, Symbol};

    let trade = |seq: u64, maker: &str, taker: &str| DecodedEvent {
        seq,
        ts: 1_732_900_000_000 + seq as i64,
        symbol: Symbol::new("BTC-USD").unwrap(),
        source_partition: 2,
        source_offset: seq as i64,
        kind: DecodedKind::Trade {
            price: "100".parse().unwrap(),
            qty: "1".parse().unwrap(),
            maker_order_id: OrderId::new("m").unwrap(),
            maker_account: Account::new(maker).unwrap(),
            maker_leaves: "0".parse().unwrap(),
            taker_order_id: OrderId::new("t").unwrap(),
            taker_account: Account::new(taker).unwrap(),
            taker_side: Side::Buy,
            taker_leaves: "0".parse().unwrap(),
        },
    };
    // What one notifications partition may carry when alice's and bob's keys hash to it:
    // a fill between them (two notifications, one execution seq), a self-match (one), then
    // the first batch again, re-sent after a crash (at-least-once).
    let mut topic: Vec<NotificationRow> = Vec::new();
    for ev in [trade(7, "alice", "bob"), trade(8, "carol", "carol")] {
        topic.extend(crate::notify::notifications(&ev));
    }
    assert_eq!(topic.len(), 3);
    topic.extend(crate::notify::notifications(&trade(7, "alice", "bob")));
    // The same seq from another source partition is another execution.
    let elsewhere = DecodedEvent {
        source_partition: 4,
        ..trade(7, "alice", "dave")
    };
    topic.extend(crate::notify::notifications(&elsewhere));
    // Through the topic record, as a reader gets them.
    let read: Vec<NotificationRow> = topic
        .iter()
        .map(|r| decode(&encode(r, Framing::SingleObject).unwrap()).unwrap())
        .collect();
    let mut dedup = Dedup::new();
    let kept: Vec<(String, i64)> = read
        .iter()
        .filter(|r| dedup.first_time(r))
        .map(|r| (r.account.clone(), r.seq))
        .collect();
    assert_eq!(
        kept,
        [
            ("alice".to_owned(), 7),
            ("bob".to_owned(), 7),
            ("carol".to_owned(), 8),
            ("alice".to_owned(), 7),
            ("dave".to_owned(), 7)
        ],
        "every account's notification once, the re-sent copies dropped"
    );
}
