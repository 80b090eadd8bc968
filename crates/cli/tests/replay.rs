//! `tradestream replay` and `tradestream verify` as operators use them, on the broker
//! `TRADESTREAM_TEST_BROKER` names (the embedded one by default, or Apache Kafka): replays from
//! the beginning, an offset and a time equal the live outputs where they overlap; downstream
//! replays into a shadow SQLite store equal the live store; a what-if replay with other
//! instruments differs and leaves the live side alone; bad arguments and missing shadows exit 2.
//! Each test prints the replay's throughput.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tradestream_runtime::KafkaConfig;
use tradestream_runtime::headers;
use tradestream_runtime::partition::PartitionReader;
use tradestream_store::StoreUri;

mod common;

use common::*;

/// What one `tradestream` run gave: exit code, the last stdout line as JSON (if any), stderr.
struct Ran {
    code: i32,
    json: Value,
    stderr: String,
}

fn tradestream(args: &[&str]) -> Ran {
    let out = bin().args(args).output().expect("tradestream runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Ran {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `tradestream args…` and asserts its exit code.
fn expect(code: i32, args: &[&str]) -> Ran {
    let ran = tradestream(args);
    assert_eq!(
        ran.code, code,
        "tradestream {args:?} exited {} (want {code}); stdout {}; stderr:\n{}",
        ran.code, ran.json, ran.stderr
    );
    ran
}

fn reader(addr: &str) -> PartitionReader {
    PartitionReader::new(&KafkaConfig::new(addr), Duration::from_secs(60)).unwrap()
}

/// Records per partition of every topic in `topics` (to show the live side is untouched).
fn sizes(addr: &str, topics: &[&str]) -> BTreeMap<String, Vec<usize>> {
    let r = reader(addr);
    topics
        .iter()
        .map(|t| {
            let n = (0..PARTITIONS).map(|p| read_all(&r, t, p).len()).collect();
            ((*t).to_owned(), n)
        })
        .collect()
}

/// The live matcher outputs made from input at or after `from[p]` (all when `from` is empty).
fn outputs_from(addr: &str, from: &BTreeMap<i32, i64>) -> u64 {
    let r = reader(addr);
    let mut n = 0;
    for t in ["executions", "trades", "market-data"] {
        for p in 0..PARTITIONS {
            let start = from.get(&p).copied().unwrap_or(0);
            n += read_all(&r, t, p)
                .iter()
                .filter(|(_, _, h)| {
                    h.get(headers::SOURCE_OFFSET)
                        .and_then(|o| o.parse::<i64>().ok())
                        .is_some_and(|o| o >= start)
                })
                .count() as u64;
        }
    }
    n
}

/// The starts a replay printed, by partition.
fn starts(json: &Value) -> BTreeMap<i32, i64> {
    json["starts"]
        .as_object()
        .expect("starts")
        .iter()
        .map(|(p, o)| (p.parse().unwrap(), o.as_i64().unwrap()))
        .collect()
}

/// The live matcher runs until it has consumed every order, then stops cleanly (and snapshots).
fn run_matcher_to_end(addr: &str) {
    let m = start_matcher(addr, 500);
    wait_all_consumed(addr, Duration::from_secs(60));
    stop_matcher(m);
}

fn throughput(what: &str, json: &Value) {
    eprintln!(
        "FIGURE replay {what} ({:?}): {} in {} s = {} {}/s",
        kind(),
        json.get("orders")
            .or(json.get("records"))
            .unwrap_or(&Value::Null),
        json["seconds"],
        json.get("orders_per_sec")
            .or(json.get("records_per_sec"))
            .unwrap_or(&Value::Null),
        if json.get("orders").is_some() {
            "orders"
        } else {
            "records"
        },
    );
}

#[test]
fn matcher_replays_from_the_beginning_an_offset_and_a_time_equal_live() {
    let _serial = serial();
    let started = Instant::now();
    let (_broker, addr) = broker_with_topics();
    // Two batches of orders a moment apart; the matcher stops cleanly after each (so a live
    // snapshot lies at the end of the first).
    produce_orders(&addr, 4_000, 1);
    run_matcher_to_end(&addr);
    std::thread::sleep(Duration::from_millis(1_100));
    let boundary_ms = tradestream_loadgen::wall_clock_ms();
    std::thread::sleep(Duration::from_millis(100));
    produce_orders(&addr, 3_000, 2);
    run_matcher_to_end(&addr);
    let all = outputs_from(&addr, &BTreeMap::new());

    // From the beginning: every output, equal.
    let full = expect(
        0,
        &[
            "replay",
            "matcher",
            "--suffix",
            "full",
            "--bootstrap-servers",
            &addr,
        ],
    );
    assert_eq!(full.json["orders"], 7_000, "{}", full.json);
    throughput("matcher from the beginning", &full.json);
    let v = expect(
        0,
        &["verify", "--suffix", "full", "--bootstrap-servers", &addr],
    );
    assert_eq!(v.json["equal"], true, "{}", v.json);
    assert_eq!(v.json["records_compared"].as_u64(), Some(all), "{}", v.json);
    assert!(v.json["chains_compared"].as_u64() >= Some(1), "{}", v.json);

    // From a time: the second batch, seeded with the snapshot at the end of the first.
    let ts = boundary_ms.to_string();
    let by_time = expect(
        0,
        &[
            "replay",
            "matcher",
            "--suffix",
            "ts",
            "--from-timestamp",
            &ts,
            "--bootstrap-servers",
            &addr,
        ],
    );
    throughput("matcher from a timestamp", &by_time.json);
    let second = starts(&by_time.json);
    let r = reader(&addr);
    let ends: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, read_all(&r, "orders", p).last().map_or(0, |x| x.0 + 1)))
        .collect();
    // Every partition with orders starts after the first batch (only some get orders: the
    // flow trades a few symbols).
    assert!(ends.values().any(|e| *e > 0));
    for (p, end) in &ends {
        assert!(
            *end == 0 || (0 < second[p] && second[p] < *end),
            "{}",
            by_time.json
        );
    }
    assert_eq!(by_time.json["orders"], 3_000, "{}", by_time.json);
    let v = expect(
        0,
        &["verify", "--suffix", "ts", "--bootstrap-servers", &addr],
    );
    let covered = outputs_from(&addr, &second);
    assert!(covered > 0 && covered < all, "{covered} of {all}");
    assert_eq!(
        v.json["records_compared"].as_u64(),
        Some(covered),
        "{}",
        v.json
    );

    // From an offset in the middle of the second batch: seeded with the newest snapshot at or
    // before it (the matcher snapshots every 500 orders here).
    let mid: BTreeMap<i32, i64> = second
        .iter()
        .map(|(p, s)| (*p, s + (ends[p] - s) / 2))
        .collect();
    let spec = mid
        .iter()
        .map(|(p, o)| format!("{p}:{o}"))
        .collect::<Vec<_>>()
        .join(",");
    let by_offset = expect(
        0,
        &[
            "replay",
            "matcher",
            "--suffix",
            "off",
            "--from-offset",
            &spec,
            "--bootstrap-servers",
            &addr,
        ],
    );
    throughput("matcher from an offset", &by_offset.json);
    let third = starts(&by_offset.json);
    for (p, s) in &third {
        assert!(
            second[p] <= *s && *s <= mid[p],
            "partition {p}: start {s}, asked {}",
            mid[p]
        );
    }
    let v = expect(
        0,
        &["verify", "--suffix", "off", "--bootstrap-servers", &addr],
    );
    assert_eq!(
        v.json["records_compared"].as_u64(),
        Some(outputs_from(&addr, &third)),
        "{}",
        v.json
    );

    // A suffix whose shadows hold data is refused; a suffix nobody replayed into is an error.
    let again = expect(
        2,
        &[
            "replay",
            "matcher",
            "--suffix",
            "full",
            "--bootstrap-servers",
            &addr,
        ],
    );
    assert!(
        again.stderr.contains("already hold data"),
        "{}",
        again.stderr
    );
    let missing = expect(
        2,
        &["verify", "--suffix", "nope", "--bootstrap-servers", &addr],
    );
    assert!(
        missing.stderr.contains("no shadow topics"),
        "{}",
        missing.stderr
    );
    let missing = expect(
        2,
        &[
            "verify",
            "--suffix",
            "nope",
            "--topics",
            "trades",
            "--bootstrap-servers",
            &addr,
        ],
    );
    assert!(
        missing.stderr.contains("trades.nope does not exist"),
        "{}",
        missing.stderr
    );
    eprintln!("test took {:?}", started.elapsed());
}

/// instruments.yaml with BTC-USD's tick ten times coarser: most of its limit prices are off-tick.
fn coarser_instruments() -> PathBuf {
    let text = std::fs::read_to_string(root().join("instruments.yaml")).unwrap();
    let changed = text.replacen("tick-size: \"0.01\"", "tick-size: \"0.10\"", 1);
    assert_ne!(text, changed);
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("what-if-{}.yaml", std::process::id()));
    std::fs::write(&path, changed).unwrap();
    path
}

#[test]
fn a_what_if_replay_differs_and_leaves_the_live_side_alone() {
    let _serial = serial();
    let started = Instant::now();
    let (_broker, addr) = broker_with_orders(3_000, 3, &[]);
    run_matcher_to_end(&addr);
    let live_topics = [
        "orders",
        "executions",
        "trades",
        "market-data",
        "matcher-snapshots",
        "dead-letters",
    ];
    let before = sizes(&addr, &live_topics);
    let committed_before = committed_by_partition(&addr);

    let other = coarser_instruments();
    let other = other.to_str().unwrap();
    let what_if = expect(
        0,
        &[
            "replay",
            "matcher",
            "--instruments",
            other,
            "--suffix",
            "whatif",
            "--bootstrap-servers",
            &addr,
        ],
    );
    throughput("matcher what-if", &what_if.json);
    let v = expect(
        1,
        &["verify", "--suffix", "whatif", "--bootstrap-servers", &addr],
    );
    assert_eq!(v.json["equal"], false, "{}", v.json);
    assert!(v.json["differences"].as_u64() > Some(0), "{}", v.json);
    assert!(v.stderr.contains("differs: executions/"), "{}", v.stderr);
    assert!(v.stderr.contains("live offset"), "{}", v.stderr);

    // Nothing live moved: the topics hold what they held, the live group stands where it stood.
    assert_eq!(sizes(&addr, &live_topics), before);
    assert_eq!(committed_by_partition(&addr), committed_before);
    eprintln!("test took {:?}", started.elapsed());
}

/// A fresh SQLite store path under the test's temporary directory.
fn store_path(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "replay-{name}-{}-{}.db",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// Waits (bounded) until `group` has stored, in the store at `path`, every offset of `topics`.
fn wait_stored(addr: &str, path: &Path, group: &str, topics: &[&str]) {
    let r = reader(addr);
    let want: Vec<(&str, i32, i64)> = topics
        .iter()
        .flat_map(|t| {
            let r = &r;
            (0..PARTITIONS).filter_map(move |p| read_all(r, t, p).last().map(|x| (*t, p, x.0 + 1)))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut store = tradestream_store::open(&StoreUri::Sqlite(path.to_owned())).unwrap();
    loop {
        let behind: Vec<_> = want
            .iter()
            .filter(|(t, p, end)| store.resume_at(group, t, *p).unwrap() < *end)
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group} did not catch up: {behind:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn downstream_replays_into_a_shadow_store_equal_the_live_store() {
    let _serial = serial();
    let started = Instant::now();
    let (_broker, addr) = broker_with_orders(3_000, 5, &[]);
    let live = store_path("live");
    let live_uri = format!("sqlite:{}", live.display());
    let matcher = start_matcher(&addr, 1_000);
    let workers = [
        ("trade-recorder", vec!["trades", "executions"]),
        ("market-data", vec!["trades", "market-data"]),
        ("notifier", vec!["executions"]),
    ];
    let running: Vec<Proc> = workers
        .iter()
        .map(|(w, _)| start_worker(w, &addr, &["--store", &live_uri]))
        .collect();
    wait_all_consumed(&addr, Duration::from_secs(60));
    stop_matcher(matcher);
    for (w, inputs) in &workers {
        wait_stored(&addr, &live, &format!("tradestream-{w}"), inputs);
    }
    for w in running {
        stop_worker(w);
    }

    let shadow = store_path("shadow");
    let shadow_uri = format!("sqlite:{}", shadow.display());
    let input_sizes = sizes(&addr, &["trades", "executions", "market-data"]);
    for (w, inputs) in &workers {
        let ran = expect(
            0,
            &[
                "replay",
                *w,
                "--suffix",
                "d1",
                "--shadow-store",
                &shadow_uri,
                "--store",
                &live_uri,
                "--bootstrap-servers",
                &addr,
            ],
        );
        // Every record of its inputs, once.
        let records: usize = inputs.iter().flat_map(|t| &input_sizes[*t]).sum();
        assert!(records > 0, "{w} has input");
        assert_eq!(
            ran.json["records"].as_u64(),
            Some(records as u64),
            "{}",
            ran.json
        );
        throughput(w, &ran.json);
    }
    let v = expect(
        0,
        &[
            "verify",
            "--suffix",
            "d1",
            "--store",
            &live_uri,
            "--shadow-store",
            &shadow_uri,
            "--bootstrap-servers",
            &addr,
        ],
    );
    let tables: Vec<&str> = v.json["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in [
        "trades_by_symbol",
        "orders_by_symbol",
        "candles",
        "top_of_book",
        "notifications_by_account",
    ] {
        assert!(tables.contains(&t), "{t} not compared: {}", v.json);
    }
    // Every row of the tables compared, as the live store holds them.
    let live_rows = tradestream_store::open(&StoreUri::Sqlite(live.clone()))
        .and_then(|mut store| store.dump())
        .expect("dump the live store");
    let rows: usize = tables.iter().map(|t| live_rows.tables[*t].len()).sum();
    assert!(rows > 0, "the live store holds rows");
    assert_eq!(
        v.json["rows_compared"].as_u64(),
        Some(rows as u64),
        "{}",
        v.json
    );
    let topics = v.json["topics"].as_array().expect("topics");
    assert!(topics.iter().any(|t| t == "notifications"), "{}", v.json);

    // A second replay into the same tables is refused; so is the live store as a shadow.
    let again = expect(
        2,
        &[
            "replay",
            "notifier",
            "--suffix",
            "d2",
            "--shadow-store",
            &shadow_uri,
            "--store",
            &live_uri,
            "--bootstrap-servers",
            &addr,
        ],
    );
    assert!(again.stderr.contains("already holds"), "{}", again.stderr);
    let live_again = expect(
        2,
        &[
            "replay",
            "notifier",
            "--suffix",
            "d3",
            "--shadow-store",
            &live_uri,
            "--store",
            &live_uri,
            "--bootstrap-servers",
            &addr,
        ],
    );
    assert!(
        live_again.stderr.contains("is the live store"),
        "{}",
        live_again.stderr
    );

    // A tampered shadow: one order's status changed, one trade gone.
    let db = rusqlite::Connection::open(&shadow).unwrap();
    let changed = db
        .execute(
            "UPDATE orders_by_symbol SET status = 'expired' WHERE (symbol, order_id) IN \
             (SELECT symbol, order_id FROM orders_by_symbol WHERE status <> 'expired' LIMIT 1)",
            [],
        )
        .unwrap();
    let gone = db
        .execute(
            "DELETE FROM trades_by_symbol WHERE (symbol, day, seq, source_partition) IN \
             (SELECT symbol, day, seq, source_partition FROM trades_by_symbol LIMIT 1)",
            [],
        )
        .unwrap();
    assert_eq!((changed, gone), (1, 1));
    drop(db);
    let v = expect(
        1,
        &[
            "verify",
            "--store",
            &live_uri,
            "--shadow-store",
            &shadow_uri,
        ],
    );
    assert_eq!(v.json["equal"], false, "{}", v.json);
    assert_eq!(v.json["differences"], 2, "{}", v.json);
    assert!(
        v.stderr.contains("differs: orders_by_symbol [symbol="),
        "{}",
        v.stderr
    );
    assert!(
        v.stderr.contains("status: expired") || v.stderr.contains("→ expired"),
        "{}",
        v.stderr
    );
    assert!(
        v.stderr.contains("differs: trades_by_symbol [symbol=")
            && v.stderr.contains("not in the shadow"),
        "{}",
        v.stderr
    );
    eprintln!("test took {:?}", started.elapsed());
}

#[test]
fn bad_arguments_and_an_unreachable_broker_exit_2() {
    // None of these reaches a broker that answers.
    let down = free_addr();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["replay", "matcher"], "--suffix"),
        (
            vec!["replay", "matcher", "--suffix", "a.b"],
            "letters, digits",
        ),
        (
            vec!["replay", "matcher", "--suffix", "x", "--from-offset", "x"],
            "not a number",
        ),
        (
            vec![
                "replay",
                "matcher",
                "--suffix",
                "x",
                "--from-timestamp",
                "yesterday",
            ],
            "RFC 3339",
        ),
        (
            vec![
                "replay",
                "matcher",
                "--suffix",
                "x",
                "--from-offset",
                "1",
                "--from-timestamp",
                "5",
            ],
            "cannot be used with",
        ),
        (
            vec![
                "replay",
                "trade-recorder",
                "--suffix",
                "x",
                "--store",
                "sqlite:data/live.db",
                "--shadow-store",
                "sqlite:data/live.db",
            ],
            "is the live store",
        ),
        (
            vec!["replay", "notifier", "--suffix", "x"],
            "--shadow-store",
        ),
        (vec!["verify"], "nothing to compare"),
        (
            vec!["verify", "--shadow-store", "sqlite:/nonexistent/x.db"],
            "--store",
        ),
        (
            vec![
                "verify",
                "--store",
                "sqlite:/nonexistent/a.db",
                "--shadow-store",
                "sqlite:/nonexistent/b.db",
            ],
            "does not exist",
        ),
        (
            vec![
                "verify",
                "--suffix",
                "x",
                "--timeout-secs",
                "2",
                "--bootstrap-servers",
                down.as_str(),
            ],
            "does not answer",
        ),
    ];
    for (args, says) in cases {
        let ran = expect(2, &args);
        assert!(
            ran.stderr.contains(says),
            "{args:?}: want {says:?} in\n{}",
            ran.stderr
        );
    }
}
