//! The gateway as its users meet it: the `tradestream` binary's `run gateway` on a real broker,
//! checked against its own OpenAPI document by schemathesis (PyPI), which signs every request
//! with a key made by `tradestream keys new` (tests/schemathesis/tradestream_hooks.py).
//!
//! schemathesis comes from `TRADESTREAM_SCHEMATHESIS` (set by .ci/run) or the PATH; without it the
//! test is skipped, and fails under CI=true.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, bin, broker_with_topics, free_addr, root, serial};

/// A directory of this test's own under the target's temporary directory.
fn scratch(name: &str) -> PathBuf {
    static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `tradestream keys new` for `account`: the key file (YAML) and the private key's path.
fn new_key(dir: &Path, account: &str, key_id: &str) -> (PathBuf, PathBuf) {
    let out = bin()
        .args([
            "keys",
            "new",
            "--account",
            account,
            "--key-id",
            key_id,
            "--out",
        ])
        .arg(dir)
        .output()
        .expect("tradestream keys new runs");
    assert!(
        out.status.success(),
        "keys new failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entry = String::from_utf8(out.stdout).expect("utf-8 entry");
    let keys = dir.join("keys.yaml");
    std::fs::write(&keys, format!("keys:\n{entry}")).expect("key file");
    (keys, dir.join(format!("{key_id}.pem")))
}

/// Starts `run gateway` and waits until `/readyz` answers 200.
fn start_gateway(broker: &str, keys: &Path, store: &str, listen: &str) -> Proc {
    let log = scratch("gateway-log").join("gateway.log");
    let child = bin()
        .current_dir(root())
        .args([
            "run",
            "gateway",
            "--bootstrap-servers",
            broker,
            "--listen",
            listen,
        ])
        .arg("--api-keys")
        .arg(keys)
        .args(["--store", store])
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("gateway log"))
        .spawn()
        .expect("start the gateway");
    let gateway = Proc(child, Some(log.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http_status(listen, "/readyz") == Some(200) {
            return gateway;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway was not ready within 60 s: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The status of a plain GET (none if the connection fails).
fn http_status(addr: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// schemathesis: `TRADESTREAM_SCHEMATHESIS`, else the PATH (skipped without it, failing under
/// CI=true).
fn schemathesis() -> Option<PathBuf> {
    match std::env::var_os("TRADESTREAM_SCHEMATHESIS") {
        Some(path) => Some(PathBuf::from(path)),
        None => tradestream_testkit::service_command("schemathesis", "the gateway's OpenAPI check"),
    }
}

#[test]
fn the_gateway_keeps_to_its_openapi_document() {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    let _serial = serial();
    let (_broker, addr) = broker_with_topics();
    let dir = scratch("gateway-api");
    let (keys, pem) = new_key(&dir, "alice", "k-alice");
    let store = format!("sqlite:{}", dir.join("store.db").display());
    let listen = free_addr();
    let _gateway = start_gateway(&addr, &keys, &store, &listen);

    let hooks = root().join("crates/cli/tests/schemathesis");
    let report = dir.join("schemathesis.xml");
    let out = Command::new(&schemathesis)
        .current_dir(&dir)
        .arg("--config-file")
        .arg(hooks.join("schemathesis.toml"))
        .args(["run", &format!("http://{listen}/openapi.json")])
        // Every check: no 5xx, responses as documented (status, headers, body schema), negative
        // data refused, and so on.
        .args([
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--request-timeout",
            "10",
        ])
        // The hook signs every request, so the requests this check sends "without
        // credentials" arrive signed and are accepted. Missing, bad, stale and replayed
        // signatures are tested in crates/gateway instead.
        .args(["--exclude-checks", "ignored_auth"])
        .args(["--seed", "7", "--no-color", "--workers", "1"])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", "tradestream_hooks")
        .env("PYTHONPATH", &hooks)
        .env("TS_KEY_ID", "k-alice")
        .env("TS_KEY_PEM", &pem)
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found the gateway off its document:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
