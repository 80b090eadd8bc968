//! `tradestream demo --serve`: once the demo's run is summed up, the pipeline keeps running
//! behind the gateway and its live market page until Ctrl-C.
//!
//! The matcher and the downstream workers start again in the demo's consumer groups (they resume
//! where the run stopped), a slow order flow keeps the page moving, and a key pair is made for
//! the demo account `demo`: its public key goes into a key file in a private temporary
//! directory, its private key only into the page's URL fragment, which a browser never sends to
//! the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::Context as _;
use tradestream_engine::Instruments;
use tradestream_gateway::auth;
use tradestream_runtime::{KafkaConfig, LoopConfig, Shutdown};

use super::demo::{DemoArgs, Downstream};
use super::produce::{self, Format};

/// The demo account's key id and account.
const DEMO_KEY: &str = "k-demo";
const DEMO_ACCOUNT: &str = "demo";

/// Serves until SIGINT or SIGTERM.
pub fn serve(
    args: &DemoArgs,
    kafka: &KafkaConfig,
    instruments: &Instruments,
    run_id: &str,
) -> anyhow::Result<()> {
    let dir = private_dir(run_id)?;
    let signing = auth::generate_signing_key()
        .map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    let keys_file = dir.join("keys.yaml");
    let mut keys = format!(
        "keys:\n{}",
        auth::key_file_entry(DEMO_KEY, DEMO_ACCOUNT, &signing.verifying_key())
    );
    if let Some(path) = &args.api_keys {
        keys.push_str(&user_keys(path)?);
    }
    std::fs::write(&keys_file, keys)
        .with_context(|| format!("cannot write {}", keys_file.display()))?;
    let secret = auth::signing_key_for_page(&signing).map_err(anyhow::Error::msg)?;

    let stop = Shutdown::new();
    let downstream = Downstream::start(kafka, &args.store, run_id)?;
    let matcher = {
        let cfg = tradestream_matcher::MatcherConfig::with_loop(
            LoopConfig::new(kafka.clone(), "tradestream-demo-matcher"),
            instruments.clone(),
        );
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("matcher".into())
            .spawn(move || tradestream_matcher::run(cfg, &stop, Arc::default()))?
    };
    let flow = {
        let (kafka, stop) = (kafka.clone(), stop.clone());
        let flow = produce::flow(instruments, args.seed.wrapping_add(1), 0, false);
        let rate = args.serve_rate.max(1);
        std::thread::Builder::new()
            .name("order-flow".into())
            .spawn(move || {
                let records = produce::generate(flow, u64::MAX)
                    .take_while(move |_| !stop.is_triggered())
                    .map(Ok);
                produce::produce(
                    &kafka,
                    "orders",
                    Format::Json,
                    rate,
                    records,
                    &AtomicU64::new(0),
                )
            })?
    };

    let mut cfg = tradestream_gateway::GatewayConfig::new(kafka.clone(), keys_file);
    cfg.listen = args.serve_addr;
    cfg.instruments.clone_from(&args.instruments);
    cfg.store = Some(args.store.store.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        println!("live market page: http://{addr}/#key={DEMO_KEY}&secret={secret}");
        println!(
            "  (the page signs orders as account `{DEMO_ACCOUNT}`; API: docs/gateway.md; Ctrl-C stops)"
        );
        tradestream_gateway::serve_with_live(listener, &cfg, signalled()).await
    });
    stop.trigger();
    std::fs::remove_dir_all(&dir).ok();
    served?;
    // The embedded broker stops at the same signal (tansu handles it too) and its memory storage
    // goes with it, so the workers cannot finish cleanly: give them a moment, then leave (the
    // store's batches are transactions; nothing half-written stays).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !(flow.is_finished() && matcher.is_finished() && downstream.is_finished()) {
        if std::time::Instant::now() > deadline {
            eprintln!("the embedded broker stopped with the signal; leaving the workers");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let flowed = flow
        .join()
        .map_err(|_| anyhow::anyhow!("the order flow panicked"))?;
    let matched = matcher
        .join()
        .map_err(|_| anyhow::anyhow!("the matcher panicked"))?;
    let stopped = downstream.stop();
    // A worker that lost the broker under it says so; the signal was the cause.
    for result in [flowed, matched.map_err(anyhow::Error::from), stopped] {
        if let Err(e) = result {
            tracing::debug!(error = %e, "a worker stopped with the broker");
        }
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn signalled() {
    if super::kafka::signalled().await {
        eprintln!("stopping…");
    }
}

/// The entries of a user's key file, re-written as items of the demo's `keys:` list (checked
/// as the gateway will check them).
fn user_keys(path: &std::path::Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let ring = tradestream_gateway::KeyRing::parse(&text, auth::DEFAULT_RECV_WINDOW_MS)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    anyhow::ensure!(!ring.is_empty(), "{} holds no keys", path.display());
    let file: serde_norway::Value =
        serde_norway::from_str(&text).with_context(|| format!("{} is not YAML", path.display()))?;
    let items = file
        .get("keys")
        .and_then(serde_norway::Value::as_sequence)
        .with_context(|| format!("{} has no `keys:` list", path.display()))?;
    let mut out = String::new();
    for item in items {
        let field = |name: &str| item.get(name).and_then(serde_norway::Value::as_str);
        let (Some(key), Some(account), Some(public)) =
            (field("key"), field("account"), field("public-key"))
        else {
            anyhow::bail!(
                "{}: an entry lacks key, account or public-key",
                path.display()
            );
        };
        anyhow::ensure!(
            key != DEMO_KEY,
            "{}: key id {DEMO_KEY} is the demo's",
            path.display()
        );
        out.push_str(&format!(
            "  - key: {key:?}\n    account: {account:?}\n    public-key: {public:?}\n"
        ));
    }
    Ok(out)
}

/// A directory only this user can enter, for the demo's key file.
fn private_dir(run_id: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = std::env::temp_dir().join(format!("tradestream-demo-{run_id}"));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
