//! # `POST /v1/orders` through the gateway against producing directly with rdkafka
//!
//! `cargo bench -p tradestream-gateway --bench post_orders` measures, in one run:
//!
//! 1. **gateway**: `BENCH_CONCURRENCY` clients (default 32), each on one HTTP/1.1 keep-alive
//!    connection to an in-process gateway (`serve_on`, 127.0.0.1:0), send `BENCH_ORDERS` signed
//!    `POST /v1/orders` in all (default 50 000), one request at a time per connection. For each
//!    the gateway verifies the Ed25519 signature (strict), checks the timestamp and records the
//!    nonce, parses and checks the order with the engine's rules, produces the command
//!    (idempotent, `acks=all`) and answers 202 only after the broker acknowledged it.
//! 2. **direct**: the same orders as the commands the gateway produces
//!    (`tradestream_gateway::orders::encode_new`), sent by a `FutureProducer` from
//!    `KafkaConfig::producer()` with the gateway's two producer overrides (`linger.ms=1`,
//!    `message.timeout.ms=5000`), the same number of concurrent senders, each awaiting its
//!    delivery report.
//!
//! Each path gets a warm-up (a tenth of the orders, at most 1 000, not measured) first. Latency is
//! per request (send → 202 read, send → delivery report). Requests are built and signed before
//! the clock starts (clients run on this machine's cores, a real client's signing does not), so
//! the bench runs the gateway with a 10-minute receive window. The broker is a private Apache
//! Kafka node (`deploy/local/services fetch kafka` first; Java 17) or the cluster named by
//! `BENCH_BOOTSTRAP`; `orders` is created from `topics.yaml` if missing.
//!
//! The last line is one JSON object: `{"gateway_orders_per_s", "gateway_p50_ms",
//! "gateway_p99_ms", "direct_orders_per_s", "direct_p50_ms", "direct_p99_ms", "ratio"}` where
//! `ratio` is gateway orders/s over direct orders/s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ed25519_dalek::{Signer as _, SigningKey};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tradestream_config::topics::TopicLayout;
use tradestream_engine::Instruments;
use tradestream_gateway::auth::{encode_signature, generate_signing_key, key_file_entry, message};
use tradestream_gateway::idempotency::now_ms;
use tradestream_gateway::orders::{NewOrderBody, check_new, encode_new};
use tradestream_gateway::{GatewayConfig, GatewayState};
use tradestream_runtime::KafkaConfig;

const TOPIC: &str = "orders";
const KEY_ID: &str = "k-bench";
const ACCOUNT: &str = "bench";
/// The bench's receive window: requests are signed before the clock starts.
const RECV_WINDOW_MS: i64 = 600_000;
/// The gateway's produce timeout (its default), also the direct producer's.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a single request may take before the bench calls it an error.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

fn env_or(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a positive integer")),
        _ => Ok(default),
    }
}

/// How the bench varies one instrument's orders: prices and quantities in whole ticks and lots,
/// well inside instruments.yaml's bands.
struct Market {
    symbol: &'static str,
    price_decimals: u32,
    base_ticks: u64,
    qty_decimals: u32,
}

const MARKETS: [Market; 3] = [
    // BTC-USD: tick 0.01, lot 0.0001; 20 000.00 … 20 099.99.
    Market {
        symbol: "BTC-USD",
        price_decimals: 2,
        base_ticks: 2_000_000,
        qty_decimals: 4,
    },
    // ETH-USD: tick 0.01, lot 0.001; 1 500.00 … 1 599.99.
    Market {
        symbol: "ETH-USD",
        price_decimals: 2,
        base_ticks: 150_000,
        qty_decimals: 3,
    },
    // SOL-USD: tick 0.001, lot 0.01; 100.000 … 109.999.
    Market {
        symbol: "SOL-USD",
        price_decimals: 3,
        base_ticks: 100_000,
        qty_decimals: 2,
    },
];

/// `units` × 10^-`decimals` as a decimal string.
fn fixed(units: u64, decimals: u32) -> String {
    let scale = 10u64.pow(decimals);
    format!(
        "{}.{:0width$}",
        units / scale,
        units % scale,
        width = decimals as usize
    )
}

/// One order: its symbol (the record key) and its `POST /v1/orders` body.
struct Order {
    symbol: &'static str,
    body: String,
}

/// Order `i` of a run: symbols in turn, both sides, prices over 10 000 ticks, 1–50 lots.
fn order(run: &str, i: usize) -> Order {
    let m = &MARKETS[i % MARKETS.len()];
    let n = i as u64;
    let side = if (i / MARKETS.len()).is_multiple_of(2) {
        "buy"
    } else {
        "sell"
    };
    let price = fixed(m.base_ticks + (n * 7919) % 10_000, m.price_decimals);
    let qty = fixed(1 + n % 50, m.qty_decimals);
    let body = serde_json::json!({
        "order_id": format!("{run}-{i}"),
        "symbol": m.symbol,
        "side": side,
        "order_type": "limit",
        "price": price,
        "qty": qty,
        "tif": "gtc",
    })
    .to_string();
    Order {
        symbol: m.symbol,
        body,
    }
}

/// The orders of one run, each checked as the gateway checks it.
fn orders(instruments: &Instruments, run: &str, n: usize) -> anyhow::Result<Vec<Order>> {
    (0..n)
        .map(|i| {
            let o = order(run, i);
            let body: NewOrderBody = serde_json::from_str(&o.body)?;
            check_new(instruments, ACCOUNT, &body, 0)
                .map_err(|r| anyhow::anyhow!("the bench's order {} is refused: {r:?}", o.body))?;
            Ok(o)
        })
        .collect()
}

/// Full HTTP/1.1 requests, signed now with unique nonces.
fn signed_requests(
    addr: SocketAddr,
    key: &SigningKey,
    run: &str,
    orders: &[Order],
) -> Vec<Vec<u8>> {
    orders
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let ts = now_ms();
            let nonce = format!("{run}-{i}");
            let sig = encode_signature(&key.sign(&message(
                ts,
                &nonce,
                "POST",
                "/v1/orders",
                o.body.as_bytes(),
            )));
            format!(
                "POST /v1/orders HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nX-TS-Key: {KEY_ID}\r\nX-TS-Timestamp: {ts}\r\n\
                 X-TS-Nonce: {nonce}\r\nX-TS-Signature: {sig}\r\n\r\n{}",
                o.body.len(),
                o.body
            )
            .into_bytes()
        })
        .collect()
}

/// The orders as the commands the gateway produces (account = the key's, ts = now).
fn commands(instruments: &Instruments, orders: &[Order]) -> anyhow::Result<Vec<Vec<u8>>> {
    orders
        .iter()
        .map(|o| {
            let body: NewOrderBody = serde_json::from_str(&o.body)?;
            let cmd = check_new(instruments, ACCOUNT, &body, now_ms())
                .map_err(|r| anyhow::anyhow!("refused: {r:?}"))?;
            Ok(encode_new(&cmd))
        })
        .collect()
}

/// What one path measured.
#[derive(Default)]
struct Measured {
    /// Latency of each accepted order.
    latencies: Vec<Duration>,
    /// Answers by status (`202`, `503`, `io: …`, `delivery: …`).
    outcomes: BTreeMap<String, u64>,
    wall: Duration,
}

impl Measured {
    fn merge(&mut self, other: Measured) {
        self.latencies.extend(other.latencies);
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
    }

    fn accepted(&self) -> usize {
        self.latencies.len()
    }

    fn rate(&self) -> f64 {
        self.accepted() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile of the accepted orders' latencies, milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        let mut v = self.latencies.clone();
        v.sort_unstable();
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1].as_secs_f64() * 1e3
    }

    fn line(&self, name: &str, total: usize, concurrency: usize) -> String {
        format!(
            "{name:>7}: {} of {total} accepted with {concurrency} concurrent in {:.2} s: \
             {:.0} orders/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; outcomes {:?}",
            self.accepted(),
            self.wall.as_secs_f64(),
            self.rate(),
            self.quantile_ms(0.50),
            self.quantile_ms(0.99),
            self.quantile_ms(1.0),
            self.outcomes,
        )
    }
}

/// One keep-alive HTTP/1.1 connection to the gateway.
struct Conn {
    stream: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// Sends one request and reads its answer; returns the status and whether the server keeps
    /// the connection open.
    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<(u16, bool)> {
        self.stream.get_mut().write_all(request).await?;
        let mut status = None;
        let mut length = 0usize;
        let mut keep = true;
        loop {
            self.line.clear();
            if self.stream.read_line(&mut self.line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = self.line.trim_end();
            if line.is_empty() {
                break;
            }
            if status.is_none() {
                status = line.split(' ').nth(1).and_then(|c| c.parse().ok());
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().map_err(|_| invalid("content-length"))?;
                } else if k.eq_ignore_ascii_case("connection") {
                    keep = !v.trim().eq_ignore_ascii_case("close");
                }
            }
        }
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body).await?;
        Ok((status.ok_or_else(|| invalid("status line"))?, keep))
    }
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad {what}"))
}

/// `concurrency` clients on their own connections send `requests` to the gateway.
async fn through_gateway(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> anyhow::Result<Measured> {
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(
            Conn::connect(addr)
                .await
                .context("connect to the gateway")?,
        );
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let (requests, next) = (Arc::clone(&requests), Arc::clone(&next));
            tokio::spawn(gateway_client(addr, conn, requests, next))
        })
        .collect();
    let mut all = Measured::default();
    for c in clients {
        all.merge(c.await?);
    }
    all.wall = started.elapsed();
    Ok(all)
}

async fn gateway_client(
    addr: SocketAddr,
    conn: Conn,
    requests: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicUsize>,
) -> Measured {
    let mut out = Measured::default();
    let mut conn = Some(conn);
    while let Some(request) = requests.get(next.fetch_add(1, Ordering::Relaxed)) {
        let t = Instant::now();
        let answer = match conn.take() {
            Some(c) => Ok(c),
            None => Conn::connect(addr).await,
        };
        let outcome = match answer {
            Ok(mut c) => match tokio::time::timeout(EXCHANGE_TIMEOUT, c.exchange(request)).await {
                Ok(Ok((status, keep))) => {
                    if keep {
                        conn = Some(c);
                    }
                    status.to_string()
                }
                Ok(Err(e)) => format!("io: {}", e.kind()),
                Err(_) => "timeout".to_owned(),
            },
            Err(e) => format!("connect: {}", e.kind()),
        };
        if outcome == "202" {
            out.latencies.push(t.elapsed());
        }
        *out.outcomes.entry(outcome).or_default() += 1;
    }
    out
}

/// `concurrency` senders produce `commands` (keyed by symbol) and await each delivery.
async fn direct(
    producer: &FutureProducer,
    commands: Arc<Vec<(&'static str, Vec<u8>)>>,
    concurrency: usize,
) -> anyhow::Result<Measured> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let senders: Vec<_> = (0..concurrency)
        .map(|_| {
            let (producer, commands, next) =
                (producer.clone(), Arc::clone(&commands), Arc::clone(&next));
            tokio::spawn(async move {
                let mut out = Measured::default();
                while let Some((key, payload)) = commands.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    let t = Instant::now();
                    let record = FutureRecord::to(TOPIC).key(*key).payload(payload);
                    let outcome = match producer.send(record, Timeout::After(Duration::ZERO)).await
                    {
                        Ok(_) => {
                            out.latencies.push(t.elapsed());
                            "acked".to_owned()
                        }
                        Err((e, _)) => format!("delivery: {e}"),
                    };
                    *out.outcomes.entry(outcome).or_default() += 1;
                }
                out
            })
        })
        .collect();
    let mut all = Measured::default();
    for s in senders {
        all.merge(s.await?);
    }
    all.wall = started.elapsed();
    Ok(all)
}

/// The broker: `BENCH_BOOTSTRAP`, or a private Apache Kafka node kept alive by the caller.
fn broker() -> (Option<tradestream_testkit::KafkaNode>, String) {
    match std::env::var("BENCH_BOOTSTRAP") {
        Ok(b) if !b.is_empty() => (None, b),
        _ => {
            eprintln!("starting a private Apache Kafka node (deploy/local/services kafka-node)…");
            let node = tradestream_testkit::KafkaNode::start();
            let addr = node.addr().to_owned();
            (Some(node), addr)
        }
    }
}

/// Creates `orders` as topics.yaml describes it, if missing.
fn create_orders_topic(root: &Path, kafka: &KafkaConfig) -> anyhow::Result<i32> {
    let layout = tradestream_config::load_topics(&root.join("topics.yaml"))?;
    let spec = layout
        .get(TOPIC)
        .context("topics.yaml has no `orders` topic")?
        .clone();
    let partitions = spec.partitions;
    tradestream_runtime::topics::apply(&TopicLayout::new(vec![spec]), kafka)?;
    Ok(partitions)
}

fn write_key_file(dir: &Path, key: &SigningKey) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("keys.yaml");
    let yaml = format!(
        "keys:\n{}",
        key_file_entry(KEY_ID, ACCOUNT, &key.verifying_key())
    );
    std::fs::write(&path, yaml).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

fn main() -> anyhow::Result<()> {
    let n = env_or("BENCH_ORDERS", 50_000)?.max(1);
    let concurrency = env_or("BENCH_CONCURRENCY", 32)?.max(1);
    let warmup = (n / 10).clamp(1, 1_000);
    let root = tradestream_testkit::repo_root();
    let (node, bootstrap) = broker();
    let kafka = KafkaConfig::new(bootstrap.clone());
    let partitions = create_orders_topic(&root, &kafka)?;
    let dir =
        std::env::temp_dir().join(format!("tradestream-bench-gateway-{}", std::process::id()));
    let key = generate_signing_key()?;
    let mut cfg = GatewayConfig::new(kafka.clone(), write_key_file(&dir, &key)?);
    cfg.instruments = root.join("instruments.yaml");
    cfg.recv_window_ms = RECV_WINDOW_MS;
    cfg.produce_timeout = PRODUCE_TIMEOUT;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let broker_name = if node.is_some() {
        "private Apache Kafka node"
    } else {
        "BENCH_BOOTSTRAP"
    };
    println!(
        "broker {bootstrap} ({broker_name}), topic {TOPIC} ({partitions} partitions), {n} orders, \
         {concurrency} concurrent, warm-up {warmup} per path"
    );
    let result = runtime.block_on(bench(cfg, &key, &kafka, n, warmup, concurrency));
    let _ = std::fs::remove_dir_all(&dir);
    let (gateway, direct) = result?;
    let ratio = gateway.rate() / direct.rate().max(1e-9);
    println!(
        "gateway/direct: {ratio:.3} (the gateway verifies an Ed25519 signature per request, \
         parses and checks the order, and answers 202 only after the broker's acknowledgement)"
    );
    // Fields in the documented order (a json! object would sort them).
    println!(
        "{{\"gateway_orders_per_s\":{:.1},\"gateway_p50_ms\":{:.3},\"gateway_p99_ms\":{:.3},\
         \"direct_orders_per_s\":{:.1},\"direct_p50_ms\":{:.3},\"direct_p99_ms\":{:.3},\
         \"ratio\":{ratio:.3}}}",
        gateway.rate(),
        gateway.quantile_ms(0.50),
        gateway.quantile_ms(0.99),
        direct.rate(),
        direct.quantile_ms(0.50),
        direct.quantile_ms(0.99),
    );
    drop(node);
    if gateway.accepted() < n || direct.accepted() < n {
        bail!("not every order was accepted: see the outcomes above");
    }
    Ok(())
}

/// Starts the gateway, warms both paths up, then measures the gateway and then the direct path.
async fn bench(
    cfg: GatewayConfig,
    key: &SigningKey,
    kafka: &KafkaConfig,
    n: usize,
    warmup: usize,
    concurrency: usize,
) -> anyhow::Result<(Measured, Measured)> {
    let state = Arc::new(GatewayState::from_config(&cfg).await?);
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(why) = state.producer.ready(Duration::from_secs(2)).await {
        if Instant::now() > deadline {
            bail!("the broker has no usable `{TOPIC}` after 60 s: {why}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tradestream_gateway::serve_on(
        listener,
        Arc::clone(&state),
        axum::Router::new(),
        async {
            let _ = stopped.await;
        },
    ));

    let mut producer_cfg = kafka.producer();
    producer_cfg.set("linger.ms", "1");
    producer_cfg.set(
        "message.timeout.ms",
        PRODUCE_TIMEOUT.as_millis().to_string(),
    );
    let producer: FutureProducer = producer_cfg.create()?;

    let run = format!("b{}", now_ms());
    let instruments = &state.instruments;
    let keyed = |orders: &[Order], cmds: Vec<Vec<u8>>| -> Arc<Vec<(&'static str, Vec<u8>)>> {
        Arc::new(orders.iter().map(|o| o.symbol).zip(cmds).collect())
    };

    // Warm-up: connections, metadata, batches; not measured.
    let warm = orders(instruments, &format!("{run}w"), warmup)?;
    let warm_requests = Arc::new(signed_requests(addr, key, &format!("{run}w"), &warm));
    through_gateway(addr, warm_requests, concurrency).await?;
    let warm_direct = keyed(&warm, commands(instruments, &warm)?);
    direct(&producer, warm_direct, concurrency).await?;

    let gateway_orders = orders(instruments, &format!("{run}g"), n)?;
    let requests = Arc::new(signed_requests(
        addr,
        key,
        &format!("{run}g"),
        &gateway_orders,
    ));
    let gateway = through_gateway(addr, requests, concurrency).await?;
    println!("{}", gateway.line("gateway", n, concurrency));

    let direct_orders = orders(instruments, &format!("{run}d"), n)?;
    let direct_commands = keyed(&direct_orders, commands(instruments, &direct_orders)?);
    let direct_run = direct(&producer, direct_commands, concurrency).await?;
    println!("{}", direct_run.line("direct", n, concurrency));

    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(served) => served??,
        Err(_) => eprintln!("the gateway did not stop within 10 s"),
    }
    Ok((gateway, direct_run))
}
