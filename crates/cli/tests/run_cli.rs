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

/// Runs `tradestream run cache <args>` (nothing listens on its broker); returns (success, stderr).
fn run_cache(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tradestream"))
        .args(["run", "cache", "--bootstrap-servers", "127.0.0.1:1"])
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL")
        .env_remove("REDIS_URL_FILE")
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
fn the_cache_needs_redis_and_takes_a_password_only_from_the_environment_or_a_file() {
    let (ok, stderr) = run_cache(&[], &[]);
    assert!(!ok && stderr.contains("REDIS_URL"), "{stderr}");
    let (ok, stderr) = run_cache(&["--redis-url", "redis://:hunter2@127.0.0.1:1"], &[]);
    assert!(
        !ok && stderr.contains("not taken from the command line"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let (ok, stderr) = run_cache(
        &[
            "--redis-url",
            "redis://127.0.0.1:1",
            "--guarantee",
            "exactly-once",
        ],
        &[],
    );
    assert!(
        !ok && stderr.contains("the cache cannot run with --guarantee exactly-once"),
        "{stderr}"
    );
    // From the environment (or a file) a password is fine: the next refusal is exactly-once's.
    let file = std::env::temp_dir().join(format!("tradestream-redis-url-{}", std::process::id()));
    std::fs::write(&file, "redis://:hunter2@127.0.0.1:1\n").expect("url file");
    for (args, env) in [
        (
            vec!["--guarantee", "exactly-once"],
            vec![("REDIS_URL", "redis://:hunter2@127.0.0.1:1")],
        ),
        (
            vec![
                "--guarantee",
                "exactly-once",
                "--redis-url-file",
                file.to_str().unwrap(),
            ],
            vec![],
        ),
    ] {
        let (ok, stderr) = run_cache(&args, &env);
        assert!(!ok && stderr.contains("exactly-once"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    let _ = std::fs::remove_file(file);
}
