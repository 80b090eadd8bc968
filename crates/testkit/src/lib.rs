//! # tradestream-testkit
//!
//! What the test suites and benches share about the servers they run on.
//!
//! ## Layout
//! - [`TestBroker`]: which broker a suite runs on, from `TRADESTREAM_TEST_BROKER` (`embedded`, the
//!   default, or `kafka`).
//! - [`KafkaNode`]: one private Apache Kafka broker (KRaft, one node) started as a child process
//!   on free loopback ports through `deploy/local/services kafka-node`, stopped and deleted on drop.
//!   Every test that runs on Apache Kafka starts its own, so tests never share topics or groups.
//! - [`service`]: a service named by an environment variable (`SCYLLA_URI`,
//!   `TRADESTREAM_TEST_REGISTRY`): under `CI=true` a missing one fails the suite; elsewhere the
//!   suite says loudly that it was skipped and how to run it.
//! - [`RedisServer`]: one private `redis-server` child on a free loopback port (in memory, killed
//!   on drop; a test can stop and restart it, and read every key under a prefix with
//!   [`RedisServer::keys`]). Missing `redis-server`: skipped, or a failure under `CI=true`.
//! - [`kstreams`]: the Kafka Streams relay the benches compare the matcher with on Apache Kafka
//!   (a child JVM from `deploy/local/kstreams-relay`, killed on drop).

pub mod kstreams;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// The broker a suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBroker {
    /// The embedded broker (tansu, in memory): needs nothing installed.
    Embedded,
    /// Apache Kafka from the services script's jars (Java 17 and Maven).
    Kafka,
}

impl TestBroker {
    /// `TRADESTREAM_TEST_BROKER`: unset or `embedded`, or `kafka`.
    ///
    /// # Panics
    /// On any other value: a typo must not quietly test the wrong broker.
    pub fn from_env() -> TestBroker {
        match std::env::var("TRADESTREAM_TEST_BROKER").as_deref() {
            Err(_) | Ok("" | "embedded") => TestBroker::Embedded,
            Ok("kafka") => TestBroker::Kafka,
            Ok(other) => {
                panic!("TRADESTREAM_TEST_BROKER={other:?}: expected `embedded` or `kafka`")
            }
        }
    }

    /// Whether `TRADESTREAM_TEST_BROKER` chose a broker explicitly.
    pub fn chosen() -> bool {
        std::env::var("TRADESTREAM_TEST_BROKER").is_ok_and(|v| !v.is_empty())
    }
}

/// Whether the suite runs under CI (`CI=true`), where a missing service is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The repository's root: two levels above the package under test.
///
/// Read at run time: `cargo test` sets `CARGO_MANIFEST_DIR` for the test process. The
/// compile-time value can name another clone, because cargo shares the artifacts of unchanged
/// workspace crates between clones that use one `CARGO_TARGET_DIR` (CI does).
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..")
}

/// Says past the test harness's output capture that `what` was skipped.
///
/// Call it exactly once in a test that returns early because it cannot run here: `.ci/run`
/// counts each `*** SKIPPED:` line as one skipped test (and not as the pass cargo reports).
pub fn skipped(what: &str, how: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: {what}.\n*** To run it: {how}\n"
    );
}

/// The value of the environment variable `var` naming a service the suite needs.
///
/// Returns `None` (after saying loudly that the suite was skipped) when it is unset outside CI.
///
/// # Panics
/// Under `CI=true` when it is unset: there a suite never passes by skipping.
pub fn service(var: &str, suite: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                !in_ci(),
                "{suite} needs {var} under CI=true (start the services: deploy/local/services up)"
            );
            skipped(
                &format!("{suite} ({var} is not set)"),
                "deploy/local/services up && . ~/.cache/tradestream/run/env && cargo test --workspace",
            );
            None
        }
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; a race with other processes is possible but
/// harmless in practice on a test machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One private Apache Kafka broker (KRaft, broker and controller in one JVM) on loopback.
#[derive(Debug)]
pub struct KafkaNode {
    child: Child,
    dir: PathBuf,
    addr: String,
}

/// How long a cold node may take to be ready (JVM start, storage format, controller election;
/// slow on a busy 2-core machine).
const KAFKA_READY: Duration = Duration::from_secs(180);

impl KafkaNode {
    /// Starts a node under a fresh directory in the system temp dir and waits (bounded) until it
    /// answers metadata requests.
    ///
    /// # Panics
    /// If it does not start: the message names its log.
    pub fn start() -> KafkaNode {
        let (port, controller) = (free_port(), free_port());
        let dir =
            std::env::temp_dir().join(format!("tradestream-kafka-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("kafka node directory");
        let log = std::fs::File::create(dir.join("console.log")).expect("kafka console log");
        let child = Command::new("bash")
            .arg(repo_root().join("deploy/local/services"))
            .args(["kafka-node", &dir.display().to_string()])
            .args([port.to_string(), controller.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("run deploy/local/services kafka-node (bash)");
        let mut node = KafkaNode {
            child,
            dir,
            addr: format!("127.0.0.1:{port}"),
        };
        node.wait_ready();
        node
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + KAFKA_READY;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "Apache Kafka exited at start ({status}):\n{}",
                    self.log_tail()
                );
            }
            if TcpStream::connect(&self.addr).is_ok() && answers_metadata(&self.addr) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Apache Kafka was not ready within {KAFKA_READY:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `host:port` of the broker.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The JVM's process id (the script execs java), e.g. to SIGSTOP the broker.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the node's console log and of its server log.
    pub fn log_tail(&self) -> String {
        ["console.log", "logs/server.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!(
                    "--- {name}\n{}",
                    lines[lines.len().saturating_sub(30)..].join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for KafkaNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "Apache Kafka node kept for inspection at {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether a broker at `addr` answers a metadata request with at least one broker.
fn answers_metadata(addr: &str) -> bool {
    let Ok(consumer) = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("log_level", "0")
        .create::<BaseConsumer>()
    else {
        return false;
    };
    consumer
        .fetch_metadata(None, Duration::from_secs(2))
        .is_ok_and(|m| !m.brokers().is_empty())
}

/// The broker a bench runs on: the embedded one (started by `embedded`, which returns its
/// address) or, with `TRADESTREAM_TEST_BROKER=kafka`, a private Apache Kafka node. Returns the
/// node to keep alive, the address, and the broker's name for the bench's report.
pub fn bench_broker(
    embedded: impl FnOnce() -> String,
) -> (Option<KafkaNode>, String, &'static str) {
    match TestBroker::from_env() {
        TestBroker::Embedded => (None, embedded(), "embedded"),
        TestBroker::Kafka => {
            let node = KafkaNode::start();
            let addr = node.addr().to_owned();
            (Some(node), addr, "apache-kafka")
        }
    }
}

/// The path of `program` on `PATH` if it is there; else as [`service`] does for a variable:
/// `None` with a loud skip outside CI, a failure under `CI=true`.
pub fn service_command(program: &str, suite: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(!in_ci(), "{suite} needs `{program}` on PATH under CI=true");
        skipped(
            &format!("{suite} (`{program}` is not installed)"),
            &format!("install {program} and run cargo test again"),
        );
    }
    found
}

/// One private `redis-server` on 127.0.0.1 and a free port: in memory only (no RDB, no AOF),
/// its directory under the system temp dir, killed on drop. [`RedisServer::stop`] and
/// [`RedisServer::restart`] let a test take it away and bring it back (empty, as a real restart
/// without persistence) on the same port.
#[derive(Debug)]
pub struct RedisServer {
    program: PathBuf,
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

/// How long a `redis-server` may take to answer.
const REDIS_READY: Duration = Duration::from_secs(20);

impl RedisServer {
    /// Starts one, or returns `None` (after a loud skip) when `redis-server` is not installed
    /// outside CI.
    ///
    /// # Panics
    /// Under `CI=true` when `redis-server` is missing, or if it does not start.
    pub fn start(suite: &str) -> Option<RedisServer> {
        let program = service_command("redis-server", suite)?;
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("tradestream-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis directory");
        let mut server = RedisServer {
            program,
            child: None,
            dir,
            port,
        };
        server.restart();
        Some(server)
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (its data is gone: it keeps nothing on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again (empty) on the same port, and waits until it answers `PING`.
    ///
    /// # Panics
    /// If it does not start: the message has its log.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::File::create(self.dir.join("redis.log")).expect("redis log");
        let child = Command::new(&self.program)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--protected-mode", "yes"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + REDIS_READY;
        while !self.answers_ping() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server exited at start ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer within {REDIS_READY:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server answers `PING` with `+PONG`.
    fn answers_ping(&self) -> bool {
        use std::io::Read as _;
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Every key starting with `prefix` (the prefix cut off) and what it holds, in key order:
    /// what a test compares between two caches (TTLs left out).
    ///
    /// # Panics
    /// If the server does not answer, or a key holds a type other than a string, hash or
    /// sorted set.
    pub fn keys(&self, prefix: &str) -> BTreeMap<String, RedisValue> {
        let mut conn = redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(REDIS_READY))
            .expect("a connection to redis-server");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query(&mut conn)
            .expect("KEYS");
        let mut types = redis::pipe();
        for key in &keys {
            types.cmd("TYPE").arg(key);
        }
        let types: Vec<String> = types.query(&mut conn).expect("TYPE");
        let mut reads = redis::pipe();
        for (key, kind) in keys.iter().zip(&types) {
            match kind.as_str() {
                "string" => reads.cmd("GET").arg(key),
                "hash" => reads.cmd("HGETALL").arg(key),
                "zset" => reads
                    .cmd("ZRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES"),
                other => panic!("{key} holds a {other}"),
            };
        }
        let values: Vec<redis::Value> = reads.query(&mut conn).expect("key contents");
        keys.iter()
            .zip(&types)
            .zip(values)
            .map(|((key, kind), value)| {
                let held = match kind.as_str() {
                    "string" => RedisValue::String(redis::from_redis_value(value).expect("string")),
                    "hash" => RedisValue::Hash(redis::from_redis_value(value).expect("hash")),
                    _ => RedisValue::SortedSet(redis::from_redis_value(value).expect("sorted set")),
                };
                (key[prefix.len()..].to_owned(), held)
            })
            .collect()
    }
}

/// What one Redis key holds (see [`RedisServer::keys`]).
#[derive(Debug, Clone, PartialEq)]
pub enum RedisValue {
    /// A string.
    String(String),
    /// A hash: field → value.
    Hash(BTreeMap<String, String>),
    /// A sorted set: (member, score), lowest score first.
    SortedSet(Vec<(String, f64)>),
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
