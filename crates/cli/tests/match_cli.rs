//! `tradestream match` as users run it: the shipped sample, determinism, bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    tradestream_testkit::repo_root()
}

fn tradestream(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tradestream"))
        .args(args)
        .current_dir(root())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tradestream");
    // Feed stdin from another thread: the child's stdout pipe would fill up and block it
    // while this thread is still writing.
    let mut pipe = child.stdin.take().expect("stdin");
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().expect("tradestream runs");
    writer.join().expect("writer thread").expect("write stdin");
    out
}

fn events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

#[test]
fn sample_runs_with_every_outcome_and_names_bad_lines() {
    let out = tradestream(&["match", "--input", "samples/orders.jsonl"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    let count = |name: &str| ev.iter().filter(|e| e["event"] == name).count();
    assert_eq!(count("trade"), 5);
    assert_eq!(count("rejected"), 9);
    assert_eq!(count("expired"), 1);
    assert_eq!(count("cancelled"), 2);
    assert_eq!(count("replaced"), 2);
    // Each rejection names the account to tell: the sender of the refused command (also of a
    // cancel of an order that is gone, and of another account's cancel: not its owner); nobody
    // for a line whose account could not be read, a replace without one included.
    let told: Vec<(&str, &str)> = ev
        .iter()
        .filter(|e| e["event"] == "rejected")
        .map(|e| {
            (
                e["order_id"].as_str().unwrap(),
                e["account"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        told,
        [
            ("s-4", "alice"),
            ("s-3", "carol"),
            ("x-1", "gina"),
            ("x-2", "gina"),
            ("x-3", "gina"),
            ("", ""),
            ("", ""),
            ("e-1", "mallory"),
            ("e-1", "")
        ]
    );
    let reasons: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "rejected")
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons[7..], ["not_owner", "malformed"]);
    let seqs: Vec<u64> = ev.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=ev.len() as u64).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 16: malformed command"), "{stderr}");
    assert!(stderr.contains("line 17: malformed command"), "{stderr}");
    assert!(stderr.contains("line 21: malformed command"), "{stderr}");
}

/// A deterministic pseudo-random command stream (splitmix64), as JSON lines.
fn generated(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut out = Vec::new();
    for i in 0..n {
        let r = next();
        let id = r % 500;
        let side = if r & 1 == 0 { "buy" } else { "sell" };
        let price = 9_950 + (next() % 100) as i64;
        let qty = 1 + next() % 20;
        let line = match next() % 10 {
            // Every order `o<id>` belongs to account `a<id % 7>`, who sends its cancels and
            // replaces.
            0 => format!(
                r#"{{"type":"cancel","order_id":"o{id}","account":"a{}","symbol":"BTC-USD","ts":{i}}}"#,
                id % 7
            ),
            1 | 2 => format!(
                r#"{{"type":"replace","order_id":"o{id}","account":"a{}","symbol":"BTC-USD","price":"{}.{:02}","ts":{i}}}"#,
                id % 7,
                price / 100,
                price % 100
            ),
            3 => format!(
                r#"{{"type":"new","order_id":"o{id}","account":"a{}","symbol":"BTC-USD","side":"{side}","order_type":"market","qty":"{qty}","tif":"ioc","ts":{i}}}"#,
                id % 7
            ),
            _ => format!(
                r#"{{"type":"new","order_id":"o{id}","account":"a{}","symbol":"BTC-USD","side":"{side}","order_type":"limit","price":"{}.{:02}","qty":"{qty}","tif":"gtc","ts":{i}}}"#,
                id % 7,
                price / 100,
                price % 100
            ),
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

#[test]
fn same_input_gives_byte_identical_output() {
    let input = generated(20_000, 7);
    let a = tradestream(&["match"], &input);
    let b = tradestream(&["match"], &input);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);
    // The events of the engine run in process over the same lines, kind by kind.
    let ev = events(&a);
    let instruments = tradestream_config::load_instruments(&root().join("instruments.yaml"))
        .expect("instruments");
    let mut engine: tradestream_engine::Engine = tradestream_engine::Engine::new(instruments);
    let mut offline = Vec::new();
    for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        engine.apply(
            &tradestream_codec::json::decode_command(line, 0),
            &mut offline,
        );
    }
    let kinds = |names: Vec<&str>| {
        names
            .into_iter()
            .fold(std::collections::BTreeMap::new(), |mut m, n| {
                *m.entry(n.to_owned()).or_insert(0usize) += 1;
                m
            })
    };
    let printed = kinds(ev.iter().map(|e| e["event"].as_str().unwrap()).collect());
    assert_eq!(
        printed,
        kinds(offline.iter().map(|e| e.kind.name()).collect()),
        "events by kind"
    );
    assert!(printed["trade"] > 100, "the flow trades: {printed:?}");
    let other = tradestream(&["match"], &generated(20_000, 8));
    assert_ne!(
        a.stdout, other.stdout,
        "a different input gives a different output"
    );
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let out = tradestream(&["match", "--instruments", "no-such-file.yaml"], b"");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read no-such-file.yaml"), "{stderr}");
    let out = tradestream(&["match", "--input", "no-such-input.jsonl"], b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open no-such-input.jsonl"));
}

#[test]
fn binary_garbage_never_panics() {
    let mut input = vec![0xff, 0x00, b'\n', b'{', b'\n'];
    input.extend_from_slice(&[b'x'; 100_000]);
    input.extend_from_slice(b"\n\n   \n");
    let out = tradestream(&["match"], &input);
    assert!(out.status.success());
    let ev = events(&out);
    assert_eq!(ev.len(), 3, "three non-blank lines, three rejections");
    assert!(ev.iter().all(|e| e["reason"] == "malformed"));
}

#[test]
fn topics_check_accepts_the_shipped_layout_and_names_every_problem() {
    let out = tradestream(&["topics", "check"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no problems"));

    // Break co-partitioning: executions with 3 partitions while orders has 6.
    let shipped = std::fs::read_to_string(root().join("topics.yaml")).unwrap();
    let broken = shipped.replacen(
        "  - name: executions\n    partitions: *matcher-partitions",
        "  - name: executions\n    partitions: 3",
        1,
    );
    assert_ne!(broken, shipped, "the layout changed");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("broken-topics.yaml");
    std::fs::write(&path, broken).unwrap();
    let out = tradestream(&["topics", "check", "--file", path.to_str().unwrap()], b"");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("executions"), "{stderr}");
    assert!(stderr.contains("co-partition"), "{stderr}");
}

/// Kafka settings are checked before anything connects: a secret on the command line (visible
/// to every user through `ps`) and a setting that would undo a guarantee are refused by name.
#[test]
fn unsafe_kafka_settings_are_refused_before_connecting() {
    let closed = "127.0.0.1:1";
    for (setting, says) in [
        ("sasl.password=hunter2", "TRADESTREAM_KAFKA_SASL_PASSWORD"),
        ("acks=1", "acks=1 conflicts with acks=all"),
        (
            "partitioner=consistent_random",
            "partitioner=consistent_random conflicts with partitioner=murmur2_random",
        ),
        (
            "enable.auto.commit=true",
            "enable.auto.commit=true conflicts",
        ),
    ] {
        let out = tradestream(
            &[
                "run",
                "matcher",
                "--bootstrap-servers",
                closed,
                "--kafka",
                setting,
            ],
            b"",
        );
        assert!(!out.status.success(), "{setting} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{setting}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "the secret is echoed: {stderr}"
        );
    }
    // The same secret from a properties file is fine (it fails later, on the closed port, or
    // not at all before the deadline: only the refusal above is checked here).
    let dir = std::env::temp_dir().join(format!("ts-cli-props-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let props = dir.join("client.properties");
    std::fs::write(&props, "sasl.password=hunter2\nacks=all\n").unwrap();
    let out = tradestream(
        &[
            "topics",
            "apply",
            "--bootstrap-servers",
            closed,
            "--kafka-properties",
            props.to_str().unwrap(),
            "--kafka",
            "socket.timeout.ms=1000",
            "--kafka",
            "acks=0",
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("acks=0 conflicts"),
        "argv wins over the file: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
