//! `tradestream run <worker>` settings that are refused before anything connects.

use std::process::Command;

/// Runs `tradestream run <args>` against an address nothing listens on, with a store in a
/// fresh temporary directory; returns (success, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("tradestream-run-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = format!("sqlite:{}", dir.join("store.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_tradestream"))
        .arg("run")
        .args(args)
        .args(["--bootstrap-servers", "127.0.0.1:1", "--store", &store])
        .env("RUST_LOG", "warn")
        .env_remove("TRADESTREAM_PROCESSING_GUARANTEE")
        .envs(env.iter().copied())
        .output()
        .expect("tradestream runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_store_workers_refuse_exactly_once_by_flag_and_by_environment() {
    for worker in ["trade-recorder", "market-data", "notifier"] {
        let (ok, stderr) = run(&[worker, "--guarantee", "exactly-once"], &[]);
        assert!(!ok, "{worker} accepted exactly-once");
        assert!(
            stderr.contains(&format!(
                "the {worker} cannot run with --guarantee exactly-once"
            )),
            "{worker}: {stderr}"
        );
        assert!(stderr.contains("store write"), "{worker}: {stderr}");
        let (ok, stderr) = run(
            &[worker],
            &[("TRADESTREAM_PROCESSING_GUARANTEE", "exactly-once")],
        );
        assert!(!ok, "{worker} accepted exactly-once from the environment");
        assert!(stderr.contains("exactly-once"), "{worker}: {stderr}");
    }
}
