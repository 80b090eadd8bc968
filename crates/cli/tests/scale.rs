//! Scaling out and in under load, on Apache Kafka (docs/design.md §2–3, §7).
//!
//! A paced flow of orders over 12 symbols spread across the `orders` partitions runs while the
//! matcher group goes 1 → 3 → 2 (one member leaves cleanly with SIGTERM) and one of the two is
//! then SIGKILLed and replaced, and while the downstream workers (trade recorder, market data,
//! notifier) go 1 → 2. Afterwards every output topic of the matcher equals the engine run offline
//! over the same orders, and the store, `notifications` and `candles` equal an uninterrupted run
//! of the downstream workers over the same topics (duplicates only as the design's dedup keys
//! allow). The test prints what each move cost: p99 order → outcome latency in the window of the
//! move against the steady state, and per partition the giver's hand-off time, the snapshot
//! size, the records replayed and the restore time on the taking side (from the workers' logs
//! and metrics).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use tradestream_codec::avro;
use tradestream_loadgen::latency::{Histogram, Percentiles};
use tradestream_runtime::partition::PartitionReader;
use tradestream_runtime::partitioner::partition_for;
use tradestream_runtime::{KafkaConfig, Shutdown};
use tradestream_store::StoreUri;

mod common;

use common::offline::*;
use common::store::*;
use common::*;

/// Orders in the flow, and how fast they are sent: a minute of steady load.
const ORDERS: u64 = 60_000;
const RATE: u64 = 1_000;
/// Symbols of the flow, two per `orders` partition.
const SYMBOLS_PER_PARTITION: usize = 2;
/// The children's log filter: the loop's rebalance lines (restore and hand-off times) too.
const LOG: &str = "warn,tradestream=info,tradestream_matcher=info,tradestream_runtime=info";
/// The downstream workers, their default groups and the topics each consumes.
const DOWNSTREAM: [(&str, &str, &[&str]); 3] = [
    (
        "trade-recorder",
        "tradestream-trade-recorder",
        &["trades", "executions"],
    ),
    (
        "market-data",
        "tradestream-market-data",
        &["trades", "market-data"],
    ),
    ("notifier", "tradestream-notifier", &["executions"]),
];

#[test]
fn workers_scale_out_and_in_under_load_and_results_equal_an_uninterrupted_run() {
    if !kafka_only_in(
        "workers_scale_out_and_in_under_load_and_results_equal_an_uninterrupted_run",
        "scale",
    ) {
        return;
    }
    let _serial = serial();
    let started = Instant::now();
    let (_broker, addr) = broker_with_topics();
    let instruments = instruments_file();
    let instruments_arg = instruments.display().to_string();
    let store = store_path("scale");
    let store_uri = format!("sqlite:{}", store.display());
    let executions = Outcomes::start(&addr, "executions", first_outcome);
    let notifications = Outcomes::start(&addr, "notifications", notification);

    // One matcher and one of each downstream worker own everything before the flow starts.
    let matcher_args = [
        "--instruments",
        instruments_arg.as_str(),
        "--snapshot-every",
        "3000",
        "--snapshot-interval-ms",
        "5000",
    ];
    let mut members: Vec<Member> = vec![Member::start("matcher", "A", &addr, &matcher_args)];
    for (worker, ..) in DOWNSTREAM {
        members.push(Member::start(worker, "1", &addr, &["--store", &store_uri]));
    }
    settle_all(&members, &addr);
    let mut producer = spawn_producer(
        &addr,
        ORDERS,
        21,
        RATE,
        &["--instruments", instruments_arg.as_str()],
    );
    let flow_start = wall_ms();
    let mut moves: Vec<Move> = Vec::new();

    // 1 → 3 matchers.
    pause_until(flow_start + 10_000);
    let at = wall_ms();
    members.push(Member::start("matcher", "B", &addr, &matcher_args));
    members.push(Member::start("matcher", "C", &addr, &matcher_args));
    let settled = settle_all(&members, &addr);
    for name in ["B", "C"] {
        assert!(
            owned(member(&members, "matcher", name)) > 0.0,
            "matcher {name} joined but was given no partition"
        );
    }
    moves.push(Move::new("matchers 1 → 3 (two join)", at, settled));

    // 3 → 2: B leaves cleanly.
    pause_until(settled + 4_000);
    let at = wall_ms();
    let b = take(&mut members, "matcher", "B");
    let b_log = b.log();
    let b_stats = stop_worker(b.proc);
    let settled = settle_all(&members, &addr);
    moves.push(Move::new("matchers 3 → 2 (B leaves, SIGTERM)", at, settled));
    assert!(
        b_log().contains("partition revoked") && !b_log().contains("lost=true"),
        "B handed its partitions over cleanly\n{}",
        b_log()
    );
    eprintln!("matcher B stopped: {b_stats}");

    // C dies (SIGKILL) and D replaces it: its partitions move once its session expires.
    pause_until(settled + 4_000);
    let at = wall_ms();
    let c = take(&mut members, "matcher", "C");
    signal(&c.proc.0, "-KILL");
    let c_log = c.log();
    drop(c);
    members.push(Member::start("matcher", "D", &addr, &matcher_args));
    let settled = settle_all(&members, &addr);
    moves.push(Move::new(
        "matchers 2 → 2 (C SIGKILLed, D replaces it)",
        at,
        settled,
    ));

    // Downstream 1 → 2.
    pause_until(settled + 3_000);
    let at = wall_ms();
    for (worker, ..) in DOWNSTREAM {
        members.push(Member::start(worker, "2", &addr, &["--store", &store_uri]));
    }
    let settled = settle_all(&members, &addr);
    for (worker, ..) in DOWNSTREAM {
        assert!(
            owned(member(&members, worker, "2")) > 0.0,
            "a second {worker} joined but was given no partition"
        );
    }
    moves.push(Move::new(
        "downstream 1 → 2 (each joined by a second)",
        at,
        settled,
    ));
    assert!(
        producer.0.try_wait().unwrap().is_none(),
        "every move happened under load: the flow ended before the last one settled"
    );

    producer_finished(&mut producer);
    wait_all_consumed(&addr, Duration::from_secs(120));
    let reader = PartitionReader::new(&KafkaConfig::new(&addr), Duration::from_secs(60)).unwrap();
    let ends_of = |t: &str| ends(&topic(&reader, t));
    for (worker, group, inputs) in DOWNSTREAM {
        let want: Vec<(&str, BTreeMap<i32, i64>)> =
            inputs.iter().map(|t| (*t, ends_of(t))).collect();
        wait_stored(&store, group, &want, Duration::from_secs(120));
        eprintln!("{worker}: stored every input");
    }
    assert_lag_is_zero(&members);
    let bodies: Vec<(String, String)> = members
        .iter()
        .filter_map(|m| Some((m.label(), try_scrape(&m.metrics)?)))
        .collect();
    let mut logs: Vec<(String, String)> = members.iter().map(|m| (m.label(), m.log()())).collect();
    logs.push(("matcher B".into(), b_log()));
    logs.push(("matcher C".into(), c_log()));
    for m in members {
        let label = m.label();
        eprintln!("{label} stopped: {}", stop_worker(m.proc));
    }
    let outcomes = executions.stop();
    let told = notifications.stop();

    // The matcher's outputs are the offline engine's, whatever the moves.
    let v = verify_against(
        &addr,
        Check {
            duplicates_ok: true,
            ..Check::default()
        },
        &instruments,
    );
    assert!(v.checked > ORDERS as usize, "{} outputs checked", v.checked);
    // The store and the downstream topics are an uninterrupted run's.
    let clean = clean_downstream_run(&addr, &reader);
    let (scaled_rows, clean_rows) = (dump(&store), dump(&clean));
    for (table, rows) in &clean_rows {
        assert_eq!(
            scaled_rows[table].len(),
            rows.len(),
            "{table}: rows after scaling vs uninterrupted"
        );
        assert!(scaled_rows[table] == *rows, "{table} differs after scaling");
    }
    assert!(clean_rows["trades_by_symbol"].len() > 5_000);
    let notified = same_records(&reader, "notifications", "notifications-clean", |b| {
        let n = tradestream_notifier::record::decode(b).expect("notification decodes");
        format!("{}/{}/{}", n.account, n.source_partition, n.seq)
    });
    let candles = same_records(&reader, "candles", "candles-clean", |b| {
        let c = tradestream_market_data::record::decode(b).expect("candle decodes");
        format!("{}/{}/{}", c.symbol, c.interval.as_str(), c.bucket_start_ms)
    });

    // The figures.
    eprintln!("\n=== scale-out on Apache Kafka: {ORDERS} orders at {RATE}/s ===");
    eprintln!(
        "matcher outputs equal the offline engine: {} records ({} identical duplicates); store \
         tables equal an uninterrupted run: {}; notifications {} and candles {} equal it \
         (deduplicated by their keys)",
        v.checked,
        v.duplicates,
        clean_rows.len(),
        notified,
        candles
    );
    // Steady state: every order stamped after the first 3 s of the flow and outside the moves.
    let windows: Vec<(i64, i64)> = moves.iter().map(|m| (m.at, m.settled + 1_000)).collect();
    let steady = |samples: &[(i64, i64)]| {
        let calm: Vec<(i64, i64)> = samples
            .iter()
            .copied()
            .filter(|(ts, _)| {
                *ts >= flow_start + 3_000 && !windows.iter().any(|(a, b)| (*a..*b).contains(ts))
            })
            .collect();
        window(&calm, (i64::MIN, i64::MAX))
    };
    eprintln!(
        "steady state (outside the moves): order → execution {}; → notification {}",
        steady(&outcomes),
        steady(&told)
    );
    for m in &moves {
        let w = (m.at, m.settled + 1_000);
        eprintln!(
            "{} — settled in {:.1} s; order → execution {}; → notification {}",
            m.what,
            (m.settled - m.at) as f64 / 1000.0,
            window(&outcomes, w),
            window(&told, w)
        );
        for line in partition_moves(&logs, w) {
            eprintln!("    {line}");
        }
    }
    eprintln!("per member, from its metrics endpoint at the end:");
    for (label, body) in &bodies {
        eprintln!("    {label}: {}", metric_summary(body));
    }
    eprintln!("took {:.0} s in all", started.elapsed().as_secs_f64());
}

/// The wall clock, ms since the epoch.
fn wall_ms() -> i64 {
    tradestream_loadgen::wall_clock_ms()
}

/// Sleeps until the wall clock reads `ms` (at most a minute).
fn pause_until(ms: i64) {
    let wait = (ms - wall_ms()).clamp(0, 60_000);
    std::thread::sleep(Duration::from_millis(wait as u64));
}

/// instruments.yaml plus symbols of our own, so that every `orders` partition holds
/// [`SYMBOLS_PER_PARTITION`] books (murmur2 of the symbol, as the producer partitions).
fn instruments_file() -> PathBuf {
    let base = std::fs::read_to_string(root().join("instruments.yaml")).unwrap();
    let mut held = [0usize; PARTITIONS as usize];
    for s in ["BTC-USD", "ETH-USD", "SOL-USD"] {
        held[partition_for(s.as_bytes(), PARTITIONS) as usize] += 1;
    }
    let mut text = base;
    let mut symbols = Vec::new();
    for n in 1..10_000 {
        if held.iter().all(|h| *h >= SYMBOLS_PER_PARTITION) {
            break;
        }
        let symbol = format!("SYM{n}-USD");
        let p = partition_for(symbol.as_bytes(), PARTITIONS) as usize;
        if held[p] < SYMBOLS_PER_PARTITION {
            held[p] += 1;
            text.push_str(&format!(
                "  - symbol: {symbol}\n    tick-size: \"0.001\"\n    lot-size: \"0.01\"\n    \
                 min-price: \"0.010\"\n    max-price: \"10000.000\"\n"
            ));
            symbols.push(symbol);
        }
    }
    assert!(held.iter().all(|h| *h >= SYMBOLS_PER_PARTITION), "{held:?}");
    eprintln!(
        "{} symbols, per orders partition {held:?}",
        3 + symbols.len()
    );
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scale-{}.yaml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// One worker process of the test, with its own metrics endpoint.
struct Member {
    worker: &'static str,
    name: &'static str,
    metrics: String,
    proc: Proc,
}

impl Member {
    fn start(worker: &'static str, name: &'static str, addr: &str, extra: &[&str]) -> Member {
        let metrics = free_addr();
        let mut args = vec!["--metrics-listen", metrics.as_str()];
        args.extend_from_slice(extra);
        let proc = start_worker_logging(worker, addr, &args, Some(LOG));
        eprintln!("started {worker} {name} (pid {})", proc.0.id());
        Member {
            worker,
            name,
            metrics,
            proc,
        }
    }

    fn label(&self) -> String {
        format!("{} {}", self.worker, self.name)
    }

    /// Reads the member's log (also after it is gone).
    fn log(&self) -> impl Fn() -> String + use<> {
        let path = self.proc.1.clone();
        move || {
            path.as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default()
        }
    }
}

fn member<'a>(members: &'a [Member], worker: &str, name: &str) -> &'a Member {
    members
        .iter()
        .find(|m| m.worker == worker && m.name == name)
        .unwrap()
}

fn take(members: &mut Vec<Member>, worker: &str, name: &str) -> Member {
    let i = members
        .iter()
        .position(|m| m.worker == worker && m.name == name)
        .unwrap();
    members.remove(i)
}

/// `GET /metrics`, or nothing if the member does not answer.
fn try_scrape(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Partitions the member owns now (0 if it does not answer).
fn owned(m: &Member) -> f64 {
    try_scrape(&m.metrics).map_or(0.0, |b| {
        metric_sum(&b, "tradestream_assigned_partitions", "")
    })
}

/// Waits (bounded) until, for each kind of worker, the live members own every input partition
/// between them, each owns some (there are fewer members than partitions, and the assignor
/// balances) and each went live on every partition it was assigned; returns when (wall ms).
fn settle_all(members: &[Member], addr: &str) -> i64 {
    let reader = PartitionReader::new(&KafkaConfig::new(addr), Duration::from_secs(30)).unwrap();
    let mut wanted: BTreeMap<&str, f64> = BTreeMap::new();
    wanted.insert(
        "matcher",
        f64::from(reader.partition_count("orders").unwrap()),
    );
    for (worker, _, inputs) in DOWNSTREAM {
        let n: i32 = inputs
            .iter()
            .map(|t| reader.partition_count(t).unwrap())
            .sum();
        wanted.insert(worker, f64::from(n));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut state = Vec::new();
        let mut settled = true;
        for (worker, want) in &wanted {
            let (mut owned, mut restoring) = (0.0, 0.0);
            for m in members.iter().filter(|m| m.worker == *worker) {
                let Some(b) = try_scrape(&m.metrics) else {
                    settled = false;
                    continue;
                };
                let own = metric_sum(&b, "tradestream_assigned_partitions", "");
                settled &= own > 0.0;
                owned += own;
                restoring += metric_sum(&b, "tradestream_rebalances_total", r#"kind="assigned""#)
                    - metric_sum(&b, "tradestream_restore_seconds_count", "");
            }
            settled &= owned == *want && restoring <= 0.0;
            state.push(format!(
                "{worker}: {owned}/{want} owned, {restoring} restoring"
            ));
        }
        if settled {
            return wall_ms();
        }
        assert!(
            Instant::now() < deadline,
            "the group did not settle: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The summed consumer lag of every live member is 0 once everything is consumed: a partition a
/// member gave up no longer counts in its lag (statistics come every 5 s: bounded wait).
fn assert_lag_is_zero(members: &[Member]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lag: Vec<(String, f64)> = members
            .iter()
            .filter_map(|m| {
                let b = try_scrape(&m.metrics)?;
                Some((m.label(), metric_sum(&b, "tradestream_consumer_lag", "")))
            })
            .collect();
        if lag.iter().all(|(_, l)| *l == 0.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "summed lag is not 0 with everything consumed: {lag:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One move of the group: when it began and when every partition was live again (wall ms).
struct Move {
    what: &'static str,
    at: i64,
    settled: i64,
}

impl Move {
    fn new(what: &'static str, at: i64, settled: i64) -> Move {
        eprintln!(
            "{what}: settled {:.1} s after it began",
            (settled - at) as f64 / 1000.0
        );
        Move { what, at, settled }
    }
}

/// A record's order timestamp (ms) and its identity, when it is a sample.
type Sample = fn(&[u8]) -> Option<(i64, String)>;

/// The first outcome of an order on `executions`.
fn first_outcome(b: &[u8]) -> Option<(i64, String)> {
    let e = avro::decode_event(b).ok()?;
    matches!(
        e.kind.name(),
        "accepted" | "rejected" | "cancelled" | "replaced"
    )
    .then(|| (e.ts, format!("{}/{}", e.source_partition, e.source_offset)))
}

/// A notification (its `ts` is its execution's, that is the order's).
fn notification(b: &[u8]) -> Option<(i64, String)> {
    let n = tradestream_notifier::record::decode(b).ok()?;
    Some((
        n.ts_ms,
        format!("{}/{}/{}", n.account, n.source_partition, n.seq),
    ))
}

/// Order timestamp → record readable on a topic, for every sample, kept with the order's
/// timestamp so that any window of the run can be cut out afterwards.
struct Outcomes {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(i64, i64)>>>,
    thread: Option<JoinHandle<()>>,
}

impl Outcomes {
    fn start(addr: &str, topic: &str, sample: Sample) -> Outcomes {
        let consumer: BaseConsumer = KafkaConfig::new(addr)
            .reader()
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "10")
            .create()
            .unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, samples) = (stop.clone(), samples.clone());
            std::thread::spawn(move || {
                let mut seen = BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let Some(Ok(m)) = consumer.poll(Duration::from_millis(20)) else {
                        continue;
                    };
                    let now_us = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_micros() as i64;
                    let Some((ts, id)) = m.payload().and_then(sample) else {
                        continue;
                    };
                    if seen.insert(id) {
                        samples.lock().unwrap().push((ts, now_us - ts * 1000));
                    }
                }
            })
        };
        Outcomes {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops reading; every (order timestamp ms, latency µs) sample.
    fn stop(mut self) -> Vec<(i64, i64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

/// Percentiles of the samples of orders stamped within `[from, to)` (wall ms).
fn window(samples: &[(i64, i64)], (from, to): (i64, i64)) -> Percentiles {
    let mut h = Histogram::default();
    for (ts, us) in samples.iter() {
        if (from..to).contains(ts) {
            h.record_micros(*us);
        }
    }
    h.percentiles()
}

/// A tracing line of a worker log: its time (ms of the UTC day), message and fields.
struct LogLine {
    ms_of_day: i64,
    message: String,
    fields: BTreeMap<String, String>,
}

/// The lines of `log` (ANSI colours removed) with one of `messages`.
fn log_lines(log: &str, messages: &[&str]) -> Vec<LogLine> {
    let mut out = Vec::new();
    for raw in log.lines() {
        let mut line = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                line.push(c);
            }
        }
        let Some(message) = messages.iter().find(|m| line.contains(*m)) else {
            continue;
        };
        // 2026-12-03T07:10:11.123456Z
        let Some(clock) = line.get(11..23) else {
            continue;
        };
        let parts: Vec<f64> = clock.split(':').filter_map(|x| x.parse().ok()).collect();
        let [h, m, s] = parts[..] else { continue };
        let fields = line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        out.push(LogLine {
            ms_of_day: ((h * 3600.0 + m * 60.0 + s) * 1000.0) as i64,
            message: (*message).to_owned(),
            fields,
        });
    }
    out
}

/// Per partition that moved within the window `(from, to)` (wall ms): who gave it up and how
/// long its hand-off took, who took it, the snapshot it loaded, the records it replayed and
/// its restore time, from the members' logs.
fn partition_moves(logs: &[(String, String)], (from, to): (i64, i64)) -> Vec<String> {
    const DAY: i64 = 86_400_000;
    let inside = |l: &LogLine| (from % DAY..=to % DAY).contains(&l.ms_of_day);
    // (worker, topic, partition) → who gave it up, how.
    let mut given: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    let mut taken = Vec::new();
    for (label, log) in logs {
        let worker = label.split(' ').next().unwrap_or_default().to_owned();
        let lines = log_lines(
            log,
            &["partition revoked", "partition live", "partition restored"],
        );
        let mut restored: BTreeMap<String, &LogLine> = BTreeMap::new();
        for l in &lines {
            let field = |k: &str| l.fields.get(k).cloned().unwrap_or_default();
            match l.message.as_str() {
                "partition restored" => {
                    restored.insert(field("partition"), l);
                }
                "partition revoked" if inside(l) => {
                    let how = if field("lost") == "true" {
                        "lost".to_owned()
                    } else {
                        format!("handed off in {} ms", short(&field("handoff_ms")))
                    };
                    given
                        .entry((worker.clone(), field("topic"), field("partition")))
                        .or_default()
                        .push(format!("{label} ({how})"));
                }
                "partition live" if inside(l) => {
                    let p = field("partition");
                    let snapshot = restored.get(&p).map_or(String::new(), |r| {
                        let f = |k: &str| r.fields.get(k).cloned().unwrap_or_default();
                        format!(
                            ", snapshot {} B at offset {}, {} records replayed",
                            f("snapshot_bytes"),
                            f("snapshot_offset"),
                            f("replay")
                        )
                    });
                    taken.push((
                        (worker.clone(), field("topic"), p),
                        format!(
                            "→ {label}: live {} ms after its assignment{snapshot}",
                            short(&field("restore_ms"))
                        ),
                    ));
                }
                _ => {}
            }
        }
    }
    taken
        .into_iter()
        .map(|((worker, topic, p), to)| {
            let from = given
                .get(&(worker, topic.clone(), p.clone()))
                .map_or("(killed, or new)".to_owned(), |g| g.join(", "));
            format!("{topic}/{p}: {from} {to}")
        })
        .collect()
}

/// A number of milliseconds to one decimal (three under 1 ms).
fn short(ms: &str) -> String {
    ms.parse::<f64>().map_or(ms.to_owned(), |v| {
        if v < 1.0 {
            format!("{v:.3}")
        } else {
            format!("{v:.1}")
        }
    })
}

/// The rebalance metrics of a member's endpoint, in one line.
fn metric_summary(body: &str) -> String {
    // `+ 0.0`: an empty sum is -0.
    let sum = |m: &str, l: &str| metric_sum(body, m, l) + 0.0;
    let mean_ms = |m: &str| {
        let n = sum(&format!("{m}_count"), "");
        if n > 0.0 {
            format!(
                "{:.1} ms over {n}",
                sum(&format!("{m}_sum"), "") / n * 1000.0
            )
        } else {
            "none".into()
        }
    };
    format!(
        "assigned {} / revoked {} / lost {}; owns {}; restore {}; hand-off {}; snapshot bytes \
         (last, summed over partitions) {}",
        sum("tradestream_rebalances_total", r#"kind="assigned""#),
        sum("tradestream_rebalances_total", r#"kind="revoked""#),
        sum("tradestream_rebalances_total", r#"kind="lost""#),
        sum("tradestream_assigned_partitions", ""),
        mean_ms("tradestream_restore_seconds"),
        mean_ms("tradestream_handoff_seconds"),
        sum("tradestream_snapshot_bytes", ""),
    )
}

/// The downstream workers, uninterrupted, one of each, in groups of their own over the same
/// topics, into a store of their own and `notifications-clean` / `candles-clean`; returns the
/// store once they stored every input.
fn clean_downstream_run(addr: &str, reader: &PartitionReader) -> PathBuf {
    use tradestream_market_data::MarketDataConfig;
    use tradestream_notifier::NotifierConfig;
    use tradestream_trade_recorder::TradeRecorderConfig;
    let kafka = KafkaConfig::new(addr);
    let layout =
        tradestream_config::topics::load_topics(&root().join("topics.yaml")).expect("topics");
    let specs = ["notifications", "candles"]
        .map(|t| {
            let mut spec = layout.get(t).expect("in topics.yaml").clone();
            spec.name = format!("{t}-clean");
            spec.co_partition = None;
            spec
        })
        .to_vec();
    tradestream_runtime::topics::apply(
        &tradestream_config::topics::TopicLayout::new(specs),
        &kafka,
    )
    .expect("clean topics");
    let path = store_path("scale-clean");
    let open = || tradestream_store::open(&StoreUri::Sqlite(path.clone())).expect("store");
    let group = |g: &str| format!("{g}-clean");
    let shutdown = Shutdown::new();
    let mut recorder = TradeRecorderConfig::new(kafka.clone());
    recorder.run.group = group(TradeRecorderConfig::DEFAULT_GROUP);
    let mut market = MarketDataConfig::new(kafka.clone());
    market.run.group = group(MarketDataConfig::DEFAULT_GROUP);
    market.candles = "candles-clean".into();
    let mut notifier = NotifierConfig::new(kafka);
    notifier.run.group = group(NotifierConfig::DEFAULT_GROUP);
    notifier.notifications = "notifications-clean".into();
    let threads = vec![
        {
            let (store, shutdown) = (open(), shutdown.clone());
            std::thread::spawn(move || {
                tradestream_trade_recorder::run(recorder, store, &shutdown, Arc::default())
            })
        },
        {
            let (store, shutdown) = (open(), shutdown.clone());
            std::thread::spawn(move || {
                tradestream_market_data::run(market, store, &shutdown, Arc::default())
            })
        },
        {
            let (store, shutdown) = (open(), shutdown.clone());
            std::thread::spawn(move || {
                tradestream_notifier::run(notifier, store, &shutdown, Arc::default())
            })
        },
    ];
    for (_, g, inputs) in DOWNSTREAM {
        let want: Vec<(&str, BTreeMap<i32, i64>)> = inputs
            .iter()
            .map(|t| (*t, ends(&topic(reader, t))))
            .collect();
        wait_stored(&path, &group(g), &want, Duration::from_secs(120));
    }
    shutdown.trigger();
    for t in threads {
        t.join().expect("worker thread").expect("clean worker ran");
    }
    path
}

/// `scaled` and `clean` hold the same records once each is deduplicated by `key` (a duplicate
/// must be byte for byte the first); returns how many.
fn same_records(
    reader: &PartitionReader,
    scaled: &str,
    clean: &str,
    key: impl Fn(&[u8]) -> String,
) -> usize {
    let dedup = |t: &str| {
        let mut out: BTreeMap<(i32, String), Vec<u8>> = BTreeMap::new();
        for (p, (offset, payload, _)) in topic(reader, t) {
            match out.get(&(p, key(&payload))) {
                Some(first) => assert_eq!(
                    first, &payload,
                    "{t}/{p} offset {offset}: a duplicate differs from the first"
                ),
                None => {
                    out.insert((p, key(&payload)), payload);
                }
            }
        }
        out
    };
    let (a, b) = (dedup(scaled), dedup(clean));
    assert_eq!(a.len(), b.len(), "{scaled} vs {clean}: records");
    assert!(a == b, "{scaled} differs from {clean}");
    assert!(!a.is_empty(), "{scaled} is empty");
    a.len()
}
