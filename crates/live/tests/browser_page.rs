//! The live page in headless Chromium: a broker, the matcher (so the book and the trades really
//! come from matching), the hub and the router on a free port; crossing orders produced to
//! `orders`; then `node tests/browser/live_page.mjs` (playwright-core, Debian's chromium) loads
//! the page and waits for the ladder, the tape and a notification of the page's own signed
//! stream connection. The screenshot's path is printed (`SCREENSHOT`, default under the target
//! directory).
//!
//! Needs `node`, `/usr/bin/chromium` (or `CHROMIUM`) and playwright-core under
//! `TRADESTREAM_NODE_MODULES` (default `~/.cache/tradestream/node/node_modules`); without them the
//! test says `*** SKIPPED:`, and fails under `CI=true`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use ed25519_dalek::SigningKey;
use tradestream_live::{Hub, HubConfig, router};
use tradestream_matcher::{MatcherConfig, MatcherStats};
use tradestream_runtime::Shutdown;
use tradestream_testkit::{in_ci, skipped};

const NODE_TIMEOUT: Duration = Duration::from_secs(180);

/// node, chromium and the playwright-core modules, or None (after a loud skip; a failure
/// under CI).
fn browser_tools() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let node = tradestream_testkit::service_command("node", "the live page browser test")?;
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let modules = std::env::var_os("TRADESTREAM_NODE_MODULES")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/tradestream/node/node_modules"))
        })
        .unwrap_or_default();
    let missing = if !chromium.is_file() {
        Some(format!("{} is not installed", chromium.display()))
    } else if !modules.join("playwright-core/package.json").is_file() {
        Some(format!(
            "playwright-core is not under {}",
            modules.display()
        ))
    } else {
        None
    };
    if let Some(what) = missing {
        assert!(
            !in_ci(),
            "the live page browser test needs it under CI=true: {what}"
        );
        skipped(
            &format!("the live page browser test ({what})"),
            "apt-get install chromium && npm install --prefix ~/.cache/tradestream/node playwright-core@1",
        );
        return None;
    }
    Some((node, chromium, modules))
}

/// The PKCS#8 v1 DER of an Ed25519 key (what `tradestream keys new` writes, and WebCrypto
/// imports).
fn pkcs8(key: &SigningKey) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&key.to_bytes());
    der
}

fn order(id: &str, account: &str, side: &str, price: &str, qty: &str) -> (String, Vec<u8>) {
    let line = serde_json::json!({
        "type": "new", "order_id": id, "account": account, "symbol": "BTC-USD", "side": side,
        "order_type": "limit", "price": price, "qty": qty, "tif": "gtc", "ts": now_ms(),
    });
    ("BTC-USD".into(), line.to_string().into_bytes())
}

fn produce_orders(orders: Vec<(String, Vec<u8>)>) {
    let records: Vec<(&str, &str, Vec<u8>)> = orders
        .iter()
        .map(|(k, v)| ("orders", k.as_str(), v.clone()))
        .collect();
    produce(&records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_shows_the_book_and_trades_from_matching() {
    let Some((node, chromium, modules)) = browser_tools() else {
        return;
    };
    let _broker = hold_broker();
    tokio::task::block_in_place(|| {
        tradestream_runtime::topics::apply(&layout(), &kafka()).expect("topics");
    });

    // The matcher, on a thread of its own.
    let shutdown = Shutdown::new();
    let matcher = {
        let cfg = MatcherConfig::new(kafka(), instruments());
        let (shutdown, stats) = (shutdown.clone(), Arc::new(MatcherStats::default()));
        std::thread::spawn(move || tradestream_matcher::run(cfg, &shutdown, stats))
    };
    let hub: Arc<Hub> = tokio::task::block_in_place(|| {
        hub(
            tradestream_live::HubTopics::default(),
            |_: &mut HubConfig| {},
        )
    });
    let alice = SigningKey::from_bytes(&[7; 32]);
    let auth = Arc::new(TestOnlyKeyRing::default().with("k-alice", "alice", &alice));
    let addr = serve(router(hub.clone(), auth)).await;

    // A book of five levels a side, then a buy crossing the best ask: a trade at 101.00.
    let mut orders = Vec::new();
    for i in 0..5 {
        orders.push(order(
            &format!("s-{i}"),
            "maker",
            "sell",
            &format!("101.0{i}"),
            "1",
        ));
        orders.push(order(
            &format!("b-{i}"),
            "maker",
            "buy",
            &format!("99.0{i}"),
            "1",
        ));
    }
    orders.push(order("x-0", "taker", "buy", "101.00", "0.5"));
    tokio::task::block_in_place(|| produce_orders(orders));

    // While the browser runs: more crossing pairs, and a notification for the page's account
    // (no notifier runs here: the test writes it).
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 300 {
                n += 1;
                produce_orders(vec![
                    order(&format!("ls-{n}"), "maker", "sell", "101.10", "0.1"),
                    order(&format!("lb-{n}"), "taker", "buy", "101.10", "0.1"),
                ]);
                produce(&[(
                    "notifications",
                    "alice",
                    notification("alice", n, &format!("o-{n}"), "hello alice from the test"),
                )]);
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };

    let screenshot = std::env::var("SCREENSHOT").map_or_else(
        |_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("live_page.png"),
        PathBuf::from,
    );
    let url = format!(
        "http://{addr}/#key=k-alice&secret={}",
        URL_SAFE_NO_PAD.encode(pkcs8(&alice))
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/live_page.mjs");
    let mut child = Command::new(node)
        .arg(&script)
        .env("NODE_PATH", &modules)
        .env("URL", &url)
        .env("SYMBOL", "BTC-USD")
        .env("EXPECT_TRADE_PRICE", "101.00")
        .env("EXPECT_NOTE", "hello alice from the test")
        .env("ORDER_TICKET", "0")
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT", &screenshot)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("node status") {
            break Some(s);
        }
        if started.elapsed() > NODE_TIMEOUT {
            let _ = child.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let out = child.wait_with_output().expect("node output");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{log}");
    eprintln!("live page screenshot: {}", screenshot.display());

    stop.store(true, Ordering::Relaxed);
    let _ = background.join();
    hub.shutdown();
    shutdown.trigger();
    let _ = matcher.join();
    assert!(
        status.is_some(),
        "the browser script did not finish within {NODE_TIMEOUT:?}"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser script failed:\n{log}"
    );
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
}
