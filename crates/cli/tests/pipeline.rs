//! The pipeline on a real broker: `tradestream broker` as a child process on a free loopback
//! port, the matcher as a child process (so it can be killed), and every output compared with
//! the engine run offline over what the orders topic holds.

use std::time::{Duration, Instant};

use serde_json::Value;
use tradestream_codec::avro;
use tradestream_runtime::KafkaConfig;
use tradestream_runtime::headers;
use tradestream_runtime::partition::PartitionReader;
use tradestream_runtime::partitioner::partition_for;

mod common;

use common::offline::*;
use common::*;

#[test]
fn matcher_outputs_equal_the_offline_engine() {
    let _serial = serial();
    let (_broker, addr) = broker_with_orders(20_000, 1, &["--poison-per-mille", "10"]);
    // Two orders stamped in the wrong unit: rejected with `bad_timestamp`, in sequence.
    let micros = tradestream_loadgen::wall_clock_ms() * 1_000;
    let seconds = tradestream_loadgen::wall_clock_ms() / 1_000;
    let bad = |id: &str, ts: i64| {
        format!(
            r#"{{"type":"new","order_id":"{id}","account":"skewed","symbol":"BTC-USD","side":"buy","order_type":"limit","price":"100","qty":"1","tif":"gtc","ts":{ts}}}"#
        )
    };
    let (micros, seconds) = (bad("us", micros), bad("s", seconds));
    // In BTC-USD's own partition: anywhere else they would be misrouted, not badly stamped.
    let home = partition_for(b"BTC-USD", PARTITIONS);
    produce_raw(
        &addr,
        Some(b"BTC-USD"),
        &[
            ("orders", home, micros.as_bytes()),
            ("orders", home, seconds.as_bytes()),
        ],
    );
    let metrics = free_addr();
    let matcher = start_matcher_with(&addr, 2_000, &["--metrics-listen", &metrics]);
    wait_committed(&addr, 20_002, Duration::from_secs(300));
    let body = scrape(&metrics);
    let stats = stop_matcher(matcher);
    // The broker stamps records (the check is on), and exactly the two were refused.
    assert_eq!(stats["bad_timestamps"].as_u64(), Some(2), "{stats}");
    assert_eq!(stats["unchecked_timestamps"].as_u64(), Some(0), "{stats}");
    let bad_timestamps = metric_sum(&body, "tradestream_bad_timestamps_total", "");
    assert_eq!(bad_timestamps, 2.0, "{body}");
    // The Prometheus endpoint counts what the matcher did, by partition and by error class:
    // every record of `orders`, and the flow's bad records by what is wrong with them.
    let reader = PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(60)).unwrap();
    let orders: usize = (0..PARTITIONS)
        .map(|p| read_all(&reader, "orders", p).len())
        .sum();
    assert_eq!(orders, 20_002, "the flow and the two badly stamped orders");
    let records_in = metric_sum(&body, "tradestream_records_in_total", r#"worker="matcher""#);
    assert_eq!(records_in, orders as f64, "records_in\n{body}");
    let (undecodable, oversized) = flow_poison(20_000, 1, 10);
    let dead_letters = |class: &str| {
        metric_sum(
            &body,
            "tradestream_dead_letters_total",
            &format!(r#"class="{class}""#),
        )
    };
    assert_eq!(
        (dead_letters("decode"), dead_letters("oversized")),
        (undecodable as f64, oversized as f64),
        "dead letters by class\n{body}"
    );
    assert!(
        body.contains("tradestream_latency_seconds_bucket")
            || body.contains("tradestream_latency_seconds{"),
        "latency histogram\n{body}"
    );
    let (checked, dead) = verify(&addr);
    assert!(checked > 20_000, "{checked}");
    assert_eq!(
        dead,
        undecodable + oversized,
        "every bad record of the flow is a dead letter"
    );
    assert_eq!(stats["dead_letters"].as_u64(), Some(dead as u64));

    // `tail` prints an output topic as JSON lines, Avro decoded with the topic's schema.
    let busiest = (0..PARTITIONS)
        .max_by_key(|p| read_all(&reader, "trades", *p).len())
        .unwrap()
        .to_string();
    let out = bin()
        .args(["tail", "trades", "--partition", &busiest, "--count", "3"])
        .args(["--bootstrap-servers", &addr])
        .output()
        .expect("tail runs");
    assert!(
        out.status.success(),
        "tail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("tail prints JSON lines"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["value"]["event"], "trade", "{line}");
        assert_eq!(line["value"]["seq"], i as u64 + 1, "{line}");
        assert_eq!(line["headers"][headers::SEQ], (i + 1).to_string(), "{line}");
    }

    // A replay into shadow topics reproduces every output and the output hash chain…
    let replay = bin()
        .args([
            "replay",
            "matcher",
            "--suffix",
            "r1",
            "--bootstrap-servers",
            &addr,
        ])
        .output()
        .expect("replay runs");
    assert!(
        replay.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let out = bin()
        .args(["verify", "--suffix", "r1", "--bootstrap-servers", &addr])
        .output()
        .expect("verify runs");
    assert!(
        out.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("verify prints JSON");
    assert_eq!(report["records_compared"].as_u64(), Some(checked as u64));
    assert!(report["chains_compared"].as_u64() >= Some(1), "{report}");
    // … and verify notices a shadow that differs.
    produce_raw(&addr, None, &[("trades.r1", 0, b"stray")]);
    let out = bin()
        .args(["verify", "--suffix", "r1", "--bootstrap-servers", &addr])
        .output()
        .expect("verify runs");
    assert!(
        !out.status.success(),
        "verify must fail on a differing shadow"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("trades/0"), "{err}");
}

#[test]
fn crashes_lose_nothing_and_duplicate_nothing() {
    let _serial = serial();
    const ORDERS: u64 = 100_000;
    const SNAPSHOT_EVERY: u64 = 3_000;
    let (_broker, addr) = broker_with_topics();
    // Orders arrive while the matcher is killed and restarted.
    let producer = spawn_producer(&addr, ORDERS, 2, 1_500, &["--poison-per-mille", "5"]);
    // A graceful stop and restart first, once the matcher has made progress.
    let matcher = start_matcher(&addr, SNAPSHOT_EVERY);
    wait_committed(&addr, 1, Duration::from_secs(120));
    stop_matcher(matcher);
    let mut done = committed(&addr);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for kill in 0..3 {
        // A new member gets the partitions once the killed one's session expires; kill it at
        // a random moment after it has made progress of its own.
        let matcher = start_matcher(&addr, SNAPSHOT_EVERY);
        wait_committed(&addr, done + 1, Duration::from_secs(120));
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(200 + rng % 2_000));
        signal(&matcher.0, "-KILL");
        drop(matcher);
        done = committed(&addr);
        eprintln!("killed matcher ({}) at {done} committed", kill + 1);
    }
    // The run after the last kill recovers and finishes the flow.
    let matcher = start_matcher(&addr, SNAPSHOT_EVERY);
    let mut producer = producer;
    producer_finished(&mut producer);
    wait_committed(&addr, ORDERS, Duration::from_secs(600));
    let stats = stop_matcher(matcher);
    verify(&addr);
    // Recovery is bounded by the snapshot interval plus one batch per partition, not history.
    let replayed = stats["replayed"].as_u64().unwrap();
    assert!(
        replayed <= PARTITIONS as u64 * (SNAPSHOT_EVERY + 500),
        "replayed {replayed}"
    );
}

#[test]
fn a_paused_broker_delays_but_loses_nothing() {
    let _serial = serial();
    let (broker, addr) = broker_with_topics();
    let producer = spawn_producer(&addr, 20_000, 3, 2_000, &[]);
    let matcher = start_matcher(&addr, 2_000);
    let before = wait_committed(&addr, 1, Duration::from_secs(120));
    // The broker stops answering while both clients are mid-flight. On Apache Kafka the pause
    // outlasts the session timeout (10 s), so the group evicts the matcher and it re-joins; the
    // embedded broker evicts nobody on session expiry, so there 5 s suffice.
    let pause = match kind() {
        tradestream_testkit::TestBroker::Kafka => Duration::from_secs(15),
        tradestream_testkit::TestBroker::Embedded => Duration::from_secs(5),
    };
    signal_pid(broker.pid(), "-STOP");
    std::thread::sleep(pause);
    signal_pid(broker.pid(), "-CONT");
    let mut producer = producer;
    producer_finished(&mut producer);
    let after = wait_committed(&addr, 20_000, Duration::from_secs(300));
    assert!(after > before);
    let stats = stop_matcher(matcher);
    assert_eq!(stats["dead_letters"].as_u64(), Some(0));
    verify(&addr);
}

#[test]
fn a_chunked_snapshot_is_restored_after_a_kill() {
    let _serial = serial();
    const SNAPSHOT_EVERY: u64 = 2_000;
    let (_broker, addr) = broker_with_orders(15_000, 6, &[]);
    // Chunks of 2 KiB: every snapshot of a non-trivial book takes several records.
    let chunked = ["--snapshot-chunk-bytes", "2048"];
    let matcher = start_matcher_with(&addr, SNAPSHOT_EVERY, &chunked);
    wait_committed(&addr, 15_000, Duration::from_secs(300));
    signal(&matcher.0, "-KILL");
    drop(matcher);
    let reader = PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(60)).unwrap();
    let most_chunks = (0..PARTITIONS)
        .flat_map(|p| read_all(&reader, "matcher-snapshots", p))
        .filter_map(|(_, payload, _)| avro::decode_snapshot(&payload).ok())
        .map(|meta| meta.chunks)
        .max()
        .unwrap_or(0);
    assert!(most_chunks > 1, "snapshots were not chunked: {most_chunks}");
    // More orders, and a new matcher restores from the chunked snapshots.
    produce_orders(&addr, 15_000, 7);
    let matcher = start_matcher_with(&addr, SNAPSHOT_EVERY, &chunked);
    wait_committed(&addr, 30_000, Duration::from_secs(300));
    let stats = stop_matcher(matcher);
    // Restored from a snapshot: at most one snapshot interval plus a batch replayed per partition.
    let replayed = stats["replayed"].as_u64().unwrap();
    assert!(
        replayed <= PARTITIONS as u64 * (SNAPSHOT_EVERY + 500),
        "replayed {replayed}: the chunked snapshot was not used"
    );
    verify(&addr);
}

/// Orders written in transactions, every other one aborted: the matcher (reading
/// `read_committed`) matches the committed orders only, exactly as the engine does offline over
/// what a `read_committed` reader sees, and the offset gaps (control records, aborted records)
/// cost no re-fetch and no stall.
#[test]
fn transactional_orders_only_committed_ones_are_matched() {
    if !kafka_only("transactional_orders_only_committed_ones_are_matched") {
        return;
    }
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let _serial = serial();
    let (_broker, addr) = broker_with_topics();
    let mut flow = order_lines(40 * 250, 9).into_iter();
    // Threaded: delivery reports are served in the background, as abort_transaction needs.
    let producer: ThreadedProducer<DefaultProducerContext> = KafkaConfig::new(&addr)
        .producer()
        .set("transactional.id", "tradestream-test-orders")
        .create()
        .unwrap();
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();
    let (mut kept, mut dropped) = (0usize, 0usize);
    for round in 0..40 {
        producer.begin_transaction().unwrap();
        for _ in 0..250 {
            let (key, line) = flow.next().unwrap();
            producer
                .send(BaseRecord::to("orders").key(&key).payload(&line))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        // The last round commits, so every partition ends with committed orders.
        if round % 2 == 0 || round == 39 {
            producer.commit_transaction(timeout).unwrap();
            kept += 250;
        } else {
            // Written first, so the aborted records really are in the log for readers to skip.
            producer.flush(timeout).unwrap();
            producer.abort_transaction(timeout).unwrap();
            dropped += 250;
        }
    }
    let reader = PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(60)).unwrap();
    let visible: usize = (0..PARTITIONS)
        .map(|p| read_all(&reader, "orders", p).len())
        .sum();
    assert_eq!(
        visible, kept,
        "read_committed sees the committed orders only"
    );
    let (_, high) = reader.watermarks("orders", 0).unwrap();
    assert!(
        (0..PARTITIONS)
            .map(|p| reader.watermarks("orders", p).unwrap().1)
            .sum::<i64>()
            > (kept + dropped) as i64,
        "control records take offsets too (partition 0 ends at {high})"
    );

    let metrics = free_addr();
    let started = Instant::now();
    // Exactly-once: the matcher's own outputs are transactional too.
    let matcher = start_matcher_with(
        &addr,
        1_000,
        &["--metrics-listen", &metrics, "--guarantee", "exactly-once"],
    );
    wait_all_consumed(&addr, Duration::from_secs(90));
    let took = started.elapsed();
    let body = scrape(&metrics);
    let stats = stop_matcher(matcher);
    assert_eq!(stats["records_in"].as_u64(), Some(kept as u64), "{stats}");
    assert_eq!(
        metric_sum(&body, "tradestream_refetches_total", "matcher"),
        0.0,
        "no re-fetch on Apache Kafka\n{body}"
    );
    eprintln!("{kept} committed orders (and {dropped} aborted) matched in {took:?}");
    verify(&addr);
}

/// Two matchers from the start, a third joining, one of the first two SIGKILLed: its partitions
/// move on when the group coordinator expires its session (no re-join workaround), and the
/// outputs are exactly the offline engine's.
#[test]
fn members_join_and_die_and_the_group_moves_their_partitions() {
    if !kafka_only("members_join_and_die_and_the_group_moves_their_partitions") {
        return;
    }
    let _serial = serial();
    let (_broker, addr) = broker_with_topics();
    let producer = spawn_producer(&addr, 60_000, 4, 3_000, &[]);
    let kafka_semantics = ["--broker-quirks", "none"];
    let first = start_matcher_with(&addr, 3_000, &kafka_semantics);
    let second = start_matcher_with(&addr, 3_000, &kafka_semantics);
    wait_committed(&addr, 1, Duration::from_secs(120));
    let third = start_matcher_with(&addr, 3_000, &kafka_semantics);
    std::thread::sleep(Duration::from_secs(3));
    let before = committed(&addr);
    wait_committed(&addr, before + 1, Duration::from_secs(60));
    signal(&first.0, "-KILL");
    drop(first);
    let killed_at = committed(&addr);
    eprintln!("killed one of three matchers at {killed_at} committed");
    let mut producer = producer;
    producer_finished(&mut producer);
    wait_all_consumed(&addr, Duration::from_secs(180));
    let (a, b) = (stop_matcher(second), stop_matcher(third));
    // Every order not yet committed when the member died was processed by a survivor. (Which
    // survivor is up to the assignor: with few symbols some partitions stay empty, so one
    // member may legitimately hold only those.)
    let survivors = a["records_in"].as_u64().unwrap() + b["records_in"].as_u64().unwrap();
    assert!(
        survivors >= 60_000 - killed_at,
        "survivors processed {survivors} orders, {} were left at the kill: {a} {b}",
        60_000 - killed_at
    );
    verify(&addr);
}

/// `topics apply` reports a topic whose configs differ from topics.yaml (DescribeConfigs) and
/// fails, and leaves the topic as it is.
#[test]
fn topics_apply_reports_config_drift() {
    if !kafka_only("topics_apply_reports_config_drift") {
        return;
    }
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let _serial = serial();
    let (_broker, addr) = start_broker();
    let admin: AdminClient<DefaultClientContext> =
        KafkaConfig::new(&addr).admin().create().unwrap();
    let orders = NewTopic::new("orders", PARTITIONS, TopicReplication::Fixed(1))
        .set("retention.ms", "86400000")
        .set("cleanup.policy", "delete");
    let created = block_on(admin.create_topics([&orders], &AdminOptions::new())).unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let out = bin()
        .args(["topics", "apply", "--bootstrap-servers", &addr])
        .output()
        .expect("tradestream runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "drift must fail apply: {stdout}");
    assert!(
        stdout.contains("drift: topic orders: retention.ms is 86400000, declared 604800000"),
        "{stdout}"
    );
    // Every other topic was created and matches.
    assert_eq!(stdout.matches("drift:").count(), 1, "{stdout}");
}

/// Input that used to stop or corrupt a partition, on either broker:
/// - a record near the broker's 1 MB limit: its dead-letter copy was larger than the producer's
///   own `message.max.bytes`, the send failed and the worker exited (a crash loop);
/// - an order in a partition its symbol does not hash to (murmur2): it was matched in a second
///   book of that symbol;
/// - foreign records at the tail of the output partitions, one with a huge `seq` header: a
///   restore believed it and suppressed every later output as "already written".
#[test]
fn bad_input_never_stops_or_splits_a_partition() {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let _serial = serial();
    let (_broker, addr) = broker_with_orders(4_000, 12, &[]);
    let (symbol, line) = order_lines(1, 12).remove(0);
    let home = partition_for(symbol.as_bytes(), PARTITIONS);
    let elsewhere = (home + 1) % PARTITIONS;
    // Another client's limits: 1 040 000 bytes is under Kafka's 1 MiB request limit but over
    // what our producers send.
    let mut roomy = KafkaConfig::new(&addr);
    roomy
        .passthrough
        .insert("message.max.bytes".into(), "2000000".into());
    let producer: BaseProducer = roomy.producer().create().unwrap();
    let mut huge = br#"{"type":"new","pad":""#.to_vec();
    huge.resize(1_040_000 - 2, b'x');
    huge.extend_from_slice(br#""}"#);
    for (p, value) in [(home, huge.as_slice()), (elsewhere, line.as_bytes())] {
        let record = BaseRecord::<[u8], [u8]>::to("orders")
            .partition(p)
            .key(symbol.as_bytes())
            .payload(value);
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let matcher = start_matcher(&addr, 1_000);
    wait_all_consumed(&addr, Duration::from_secs(120));
    stop_matcher(matcher);
    let reader = PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(60)).unwrap();
    let first_batch: Vec<i64> = (0..PARTITIONS)
        .map(|p| read_all(&reader, "orders", p).len() as i64)
        .collect();

    // Foreign records at the end of every output partition with outputs: one without
    // headers, then one claiming seq 1 000 000 from another worker.
    for topic in ["executions", "trades", "market-data"] {
        for p in 0..PARTITIONS {
            if reader.watermarks(topic, p).unwrap().1 == 0 {
                continue;
            }
            let source = p.to_string();
            let headers = [
                ("seq", "1000000"),
                ("worker", "intruder"),
                ("source-topic", "orders"),
                ("source-partition", source.as_str()),
                ("source-offset", "0"),
            ]
            .into_iter()
            .fold(OwnedHeaders::new(), |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(value),
                })
            });
            let bare = BaseRecord::<[u8], [u8]>::to(topic)
                .partition(p)
                .payload(b"no headers");
            producer.send(bare).map_err(|(e, _)| e).unwrap();
            let claim = BaseRecord::<[u8], [u8]>::to(topic)
                .partition(p)
                .payload(b"claims a seq")
                .headers(headers);
            producer.send(claim).map_err(|(e, _)| e).unwrap();
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    produce_orders(&addr, 4_000, 13);
    let matcher = start_matcher(&addr, 1_000);
    wait_all_consumed(&addr, Duration::from_secs(120));
    let stats = stop_matcher(matcher);
    let v = verify_with(
        &addr,
        Check {
            foreign_ok: true,
            ..Check::default()
        },
    );
    assert_eq!(v.dead, 2, "the huge record and the misrouted order");
    // The restarted matcher wrote the outputs of the second batch's orders, each once, past
    // the foreign records (the outputs, checked above, are the offline run's).
    let second_batch: usize = ["executions", "trades", "market-data"]
        .iter()
        .flat_map(|t| (0..PARTITIONS).map(move |p| (t, p)))
        .map(|(t, p)| {
            read_all(&reader, t, p)
                .iter()
                .filter(|(_, _, h)| {
                    h.get(headers::WORKER).map(String::as_str) == Some("matcher")
                        && h[headers::SOURCE_OFFSET].parse::<i64>().unwrap()
                            >= first_batch[p as usize]
                })
                .count()
        })
        .sum();
    assert!(second_batch > 0, "the second batch made outputs");
    assert_eq!(
        stats["records_out"].as_u64(),
        Some(second_batch as u64),
        "{stats}"
    );

    let letters: Vec<Rec> = (0..PARTITIONS)
        .flat_map(|p| read_all(&reader, "dead-letters", p))
        .collect();
    let oversized = letters
        .iter()
        .find(|(_, _, h)| h["error-class"] == "oversized")
        .expect("the huge record is a dead letter");
    assert_eq!(oversized.1.len(), 64 * 1024, "a bounded prefix is kept");
    assert_eq!(oversized.2["payload-truncated-from"], "1040000");
    assert_eq!(oversized.2["source-partition"], home.to_string());
    let misrouted = letters
        .iter()
        .find(|(_, _, h)| h["error-class"] == "misrouted")
        .expect("the misrouted order is a dead letter");
    assert_eq!(misrouted.2["source-partition"], elsewhere.to_string());
    assert!(
        misrouted.2["error-message"].contains(&format!("belongs in partition {home}")),
        "{:?}",
        misrouted.2
    );

    // The embedded broker has no transactions: exactly-once is refused, by name.
    if kind() == tradestream_testkit::TestBroker::Embedded {
        let out = bin()
            .args(["run", "matcher", "--bootstrap-servers", &addr])
            .args(["--guarantee", "exactly-once"])
            .output()
            .expect("tradestream runs");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("the embedded broker has no transactions"),
            "{stderr}"
        );
    }
}

/// Retention removed the oldest orders of a partition (DeleteRecords does what retention
/// does) and no snapshot covers them: the matcher refuses to start, naming the partition and
/// the fix, instead of rebuilding a book from part of its history and writing outputs whose
/// seqs collide with the ones already there.
#[test]
fn a_matcher_without_the_history_it_needs_refuses_to_start() {
    if !kafka_only("a_matcher_without_the_history_it_needs_refuses_to_start") {
        return;
    }
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let _serial = serial();
    let (_broker, addr) = broker_with_orders(3_000, 14, &[]);
    let reader = PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(60)).unwrap();
    let p = (0..PARTITIONS)
        .max_by_key(|p| reader.watermarks("orders", *p).unwrap().1)
        .unwrap();
    let admin: AdminClient<DefaultClientContext> =
        KafkaConfig::new(&addr).admin().create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("orders", p, rdkafka::Offset::Offset(100))
        .unwrap();
    let deleted = block_on(admin.delete_records(&tpl, &AdminOptions::new())).unwrap();
    assert_eq!(
        deleted.find_partition("orders", p).unwrap().offset(),
        rdkafka::Offset::Offset(100)
    );

    let mut matcher = start_matcher(&addr, 1_000);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = matcher.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the matcher did not refuse to start"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!status.success(), "{status}");
    let log = matcher_log(&matcher);
    assert!(
        log.contains(&format!(
            "partition {p}: there is no snapshot of group tradestream-matcher, but orders \
             partition {p} now starts at offset 100"
        )) && log.contains("refusing to start"),
        "{log}"
    );
    assert!(
        committed_by_partition(&addr).values().all(|c| *c < 0),
        "nothing was committed"
    );
}

/// Issue 21: `orders` and the output topics re-created (or lost with one replica) while
/// `matcher-snapshots` survived. The restarted matcher used to restore the old snapshot, find
/// the consumer reset to the start and skip every new order below the snapshot's offset with a
/// warning: 600 new orders, 0 processed. It refuses to start and names `--start-afresh`; with
/// it, the book is rebuilt from the new history and every output equals the offline run.
#[test]
fn a_snapshot_beyond_the_end_of_recreated_topics_is_refused_and_start_afresh_rebuilds() {
    if !kafka_only(
        "a_snapshot_beyond_the_end_of_recreated_topics_is_refused_and_start_afresh_rebuilds",
    ) {
        return;
    }
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let _serial = serial();
    let (_broker, addr) = broker_with_orders(4_000, 16, &[]);
    let matcher = start_matcher(&addr, 200);
    wait_all_consumed(&addr, Duration::from_secs(120));
    stop_matcher(matcher);

    let recreated = ["orders", "executions", "trades", "market-data"];
    let admin: AdminClient<DefaultClientContext> =
        KafkaConfig::new(&addr).admin().create().unwrap();
    for r in block_on(admin.delete_topics(&recreated, &AdminOptions::new())).unwrap() {
        r.unwrap();
    }
    // Deletion finishes in the background: `topics apply` is tried until it can create them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = bin()
            .args(["topics", "apply", "--bootstrap-servers", &addr])
            .output()
            .unwrap();
        let reader =
            PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(60)).unwrap();
        let fresh = out.status.success()
            && recreated
                .iter()
                .all(|t| (0..PARTITIONS).all(|p| reader.watermarks(t, p).is_ok_and(|w| w.1 == 0)));
        if fresh {
            break;
        }
        assert!(Instant::now() < deadline, "topics not re-created: {out:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    produce_orders(&addr, 600, 17);

    let mut matcher = start_matcher(&addr, 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = matcher.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the matcher did not refuse to start"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!status.success(), "{status}");
    let log = matcher_log(&matcher);
    assert!(
        log.contains("beyond the partition's end")
            && log.contains("--start-afresh")
            && log.contains("refusing to start"),
        "{log}"
    );

    let matcher = start_matcher_with(&addr, 200, &["--start-afresh"]);
    wait_all_consumed(&addr, Duration::from_secs(120));
    let stats = stop_matcher(matcher);
    assert_eq!(stats["records_in"].as_u64(), Some(600), "{stats}");
    let v = verify_with(
        &addr,
        Check {
            old_snapshots_ok: true,
            ..Check::default()
        },
    );
    assert_eq!(v.dead, 0);
    assert!(v.by_topic["executions"] >= 600, "{v:?}");
}

/// What [`zombie`] leaves behind: the outputs compared with the offline run, the zombie's
/// metrics before the pause and at the end, and the broker (still up) with its address.
struct Zombie {
    verified: Verified,
    metrics: [String; 2],
    _broker: Broker,
    addr: String,
}

/// A matcher paused (SIGSTOP) past its session timeout while a second takes its partitions
/// over and makes progress, then resumed with a batch in hand: the zombie. `zombie_extra` are
/// arguments of the zombie's alone.
fn zombie(guarantee: &str, check: Check, zombie_extra: &[&str]) -> Zombie {
    const ORDERS: u64 = 50_000;
    let (broker, addr) = broker_with_topics();
    let producer = spawn_producer(&addr, ORDERS, 15, 2_000, &[]);
    let metrics = free_addr();
    let common = ["--broker-quirks", "none", "--guarantee", guarantee];
    let mut zombie_args = common.to_vec();
    zombie_args.extend(["--metrics-listen", metrics.as_str()]);
    zombie_args.extend(zombie_extra);
    let zombie = start_matcher_with(&addr, 3_000, &zombie_args);
    wait_committed(&addr, 1, Duration::from_secs(120));
    let survivor = start_matcher_with(&addr, 3_000, &common);
    // Let the survivor join and the two share the partitions and make progress.
    std::thread::sleep(Duration::from_secs(6));
    let before = scrape(&metrics);
    signal(&zombie.0, "-STOP");
    // Under exactly-once an offset fetch waits while the paused member's transaction holds
    // offsets for its partitions (until the broker aborts it): ask until the broker answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    let paused_at = loop {
        let now = committed_by_partition(&addr);
        if !now.is_empty() {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "no committed offsets after the pause"
        );
    };
    // Every partition with orders moves on: the survivor holds them all now.
    let reader = PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(30)).unwrap();
    let books: Vec<i32> = (0..PARTITIONS)
        .filter(|p| reader.watermarks("orders", *p).unwrap().1 > 0)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = committed_by_partition(&addr);
        if books.iter().all(|p| now.get(p) > paused_at.get(p)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the survivor did not take the paused member's partitions over: {paused_at:?} → {now:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "survivor took over: {paused_at:?} → {:?}",
        committed_by_partition(&addr)
    );
    signal(&zombie.0, "-CONT");
    let mut producer = producer;
    producer_finished(&mut producer);
    wait_all_consumed(&addr, Duration::from_secs(180));
    let body = scrape(&metrics);
    let (z, s) = (stop_matcher(zombie), stop_matcher(survivor));
    eprintln!("zombie {z}\nsurvivor {s}");
    Zombie {
        verified: verify_with(&addr, check),
        metrics: [before, body],
        _broker: broker,
        addr,
    }
}

/// Exactly-once: nothing the zombie writes after it lost its partitions becomes visible to a
/// `read_committed` reader; the outputs are the offline engine's, each exactly once.
#[test]
fn a_zombie_matcher_is_fenced_under_exactly_once() {
    if !kafka_only("a_zombie_matcher_is_fenced_under_exactly_once") {
        return;
    }
    let _serial = serial();
    let Zombie {
        verified: v,
        metrics: [before, after],
        ..
    } = zombie("exactly-once", Check::default(), &[]);
    assert_eq!(v.duplicates, 0);
    // Rebalances abort transactions too (their offsets carry the old generation): count only
    // what happened from the pause on.
    let aborted = metric_sum(&after, "tradestream_transactions_aborted_total", "matcher")
        - metric_sum(&before, "tradestream_transactions_aborted_total", "matcher");
    assert!(
        aborted >= 1.0,
        "no transaction of the zombie was aborted after the pause: it wrote nothing after \
         losing its partitions\n{after}"
    );
    eprintln!(
        "exactly-once: {} outputs, {aborted} zombie transactions aborted",
        v.checked
    );
}

/// Effectively-once (no transactions): nothing fences the zombie, so what it had in hand when it
/// was paused lands after the survivor rewrote it (docs/design.md §2, item 5; its outputs wait
/// in its producer, held back by `linger.ms`, so it has some in hand when paused). In the raw
/// topics every
/// record, each late duplicate too, is byte for byte the offline engine's output with its seq;
/// a reader keeping the first record of each seq gets exactly the offline engine's outputs; and
/// the trade recorder, reading the raw topics, stores each trade and order state once.
#[test]
fn a_zombie_matcher_writes_only_identical_duplicates_under_effectively_once() {
    if !kafka_only("a_zombie_matcher_writes_only_identical_duplicates_under_effectively_once") {
        return;
    }
    let _serial = serial();
    let Zombie {
        verified: v,
        addr,
        _broker,
        ..
    } = zombie(
        "effectively-once",
        Check {
            duplicates_ok: true,
            ..Check::default()
        },
        &["--kafka", "linger.ms=500"],
    );
    eprintln!(
        "effectively-once: {} outputs, {} identical duplicates",
        v.checked, v.duplicates
    );
    assert!(
        v.duplicates > 0,
        "the zombie wrote no late output: the test did not make the case it is about"
    );

    // Downstream, deduplicating by (source partition, seq): one row per trade of the offline
    // run, and every order as the executions deduplicated by seq fold it.
    let reader = PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(60)).unwrap();
    let path = store::store_path("zombie");
    let recorder = start_worker(
        "trade-recorder",
        &addr,
        &["--store", &format!("sqlite:{}", path.display())],
    );
    let want: Vec<(&str, std::collections::BTreeMap<i32, i64>)> = ["trades", "executions"]
        .into_iter()
        .map(|t| (t, store::ends(&store::topic(&reader, t))))
        .collect();
    store::wait_stored(
        &path,
        "tradestream-trade-recorder",
        &want,
        Duration::from_secs(300),
    );
    stop_worker(recorder);
    let mut store =
        tradestream_store::open(&tradestream_store::StoreUri::Sqlite(path)).expect("store");
    assert_eq!(
        store.counts().unwrap().trades as usize,
        v.by_topic["trades"],
        "one stored trade per trade of the offline run"
    );
    let mut fold = tradestream_trade_recorder::fold::OrderFold::new();
    let mut orders = std::collections::BTreeMap::new();
    for p in 0..PARTITIONS {
        let mut seen = std::collections::BTreeSet::new();
        for (_, payload, h) in read_all(&reader, "executions", p) {
            if seen.insert(h[headers::SEQ].clone()) {
                let ev = avro::decode_event(&payload).expect("execution decodes");
                for row in fold.apply(&ev, |_, _| None).expect("folds") {
                    orders.insert((row.symbol.clone(), row.order_id.clone()), row);
                }
            }
        }
    }
    assert_eq!(store.counts().unwrap().orders as usize, orders.len());
    for ((symbol, id), row) in &orders {
        assert_eq!(
            store.order(symbol, id).unwrap().as_ref(),
            Some(row),
            "order {symbol}/{id}"
        );
    }
}

/// Runs an admin future to completion (they complete on librdkafka's thread).
fn block_on<F: Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(Instant::now() < deadline, "admin request timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}
