//! The Kafka Streams relay of the benchmarks (`deploy/local/kstreams-relay`): a child JVM that
//! copies one topic to another under `exactly_once_v2`, killed on drop.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::repo_root;

/// Builds the relay if its sources changed (`deploy/local/kstreams-relay/build`: Maven, into
/// `~/.cache/tradestream/kstreams-relay`) and returns the classpath to run it with.
///
/// # Panics
/// If the build fails (its output is on stderr).
pub fn build() -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("deploy/local/kstreams-relay/build"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run deploy/local/kstreams-relay/build (bash)");
    assert!(
        out.status.success(),
        "deploy/local/kstreams-relay/build failed ({})",
        out.status
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("the relay's classpath")
        .to_owned()
}

/// One running relay.
#[derive(Debug)]
pub struct KStreamsRelay {
    child: Child,
    dir: PathBuf,
    states: Receiver<(Instant, String)>,
}

impl KStreamsRelay {
    /// Starts the relay (`classpath` from [`build`]) from `input` to `output` on the broker at
    /// `bootstrap`, as application `app_id` (its consumer group and transactional ids).
    pub fn start(
        classpath: &str,
        bootstrap: &str,
        input: &str,
        output: &str,
        app_id: &str,
    ) -> KStreamsRelay {
        let dir = std::env::temp_dir().join(format!(
            "tradestream-kstreams-{}-{app_id}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("relay state directory");
        let log = std::fs::File::create(dir.join("stderr.log")).expect("relay log");
        let mut child = Command::new("java")
            .args(["-Xms256m", "-Xmx512m", "-cp", classpath])
            .arg("tradestream.bench.KStreamsRelay")
            .args([bootstrap, input, output, app_id])
            .arg(dir.join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("run java (Java 17)");
        let stdout = child.stdout.take().expect("relay stdout");
        let (tx, states) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(state) = line.strip_prefix("state ") {
                    let _ = tx.send((Instant::now(), state.to_owned()));
                }
            }
        });
        KStreamsRelay { child, dir, states }
    }

    /// Waits (at most `timeout`) for the relay's first `RUNNING` state; when it came.
    ///
    /// # Panics
    /// If it fails or exits first, or does not get there in time (the message has its log).
    pub fn wait_running(&mut self, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .states
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok((at, state)) if state == "RUNNING" => return at,
                Ok((_, state)) if state == "ERROR" || state == "NOT_RUNNING" => {
                    panic!(
                        "the Kafka Streams relay stopped ({state}):\n{}",
                        self.log_tail()
                    )
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "the Kafka Streams relay was not running within {timeout:?}:\n{}",
                    self.log_tail()
                ),
            }
        }
    }

    /// The last lines of its stderr.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for KStreamsRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
