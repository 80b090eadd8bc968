//! `tradestream demo`: the pipeline end to end on the embedded broker.
//!
//! Starts tansu in-process on a free loopback port, applies topics.yaml, produces a generated
//! order flow while the matcher and the downstream workers (trade recorder, market data,
//! notifier) run, then reads the output topics back and prints what happened: orders in, events
//! out, trades, dead letters, throughput, end-to-end latency (the order's timestamp → its first
//! outcome readable on `executions`, measured by a reader of its own as the benches do:
//! `tradestream_loadgen::latency`) and what landed in the store. Exits 0 only if every order got its
//! outcome (an execution or a dead letter) and every trade is in the store. The store is left
//! for `tradestream query`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::message::Message;
use tradestream_codec::avro;
use tradestream_loadgen::latency::{LatencyReader, Outcomes};
use tradestream_matcher::MatcherStats;
use tradestream_runtime::partition::PartitionReader;
use tradestream_runtime::{KafkaConfig, Shutdown};

use tradestream_market_data::{MarketDataConfig, MarketDataStats};
use tradestream_notifier::{NotifierConfig, NotifierStats};
use tradestream_runtime::LoopConfig;
use tradestream_store::StoreUri;
use tradestream_trade_recorder::{TradeRecorderConfig, TradeRecorderStats};

use super::produce::{self, Format};
use super::query::StoreArgs;
use super::topics;

/// Arguments of `tradestream demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Order commands to generate.
    #[arg(long, default_value_t = 500_000)]
    pub orders: u64,
    /// Orders produced per second (0: as fast as the broker takes them). The default stays below
    /// what the matcher sustains here, so the latency figures are the pipeline's, not a backlog's.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// Seed of the order flow.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Bad records per thousand (they must all reach dead letters).
    #[arg(long, default_value_t = 0)]
    pub poison_per_mille: u64,
    /// Also print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Instruments file.
    #[arg(long, default_value = "instruments.yaml")]
    pub instruments: PathBuf,
    /// Topic layout.
    #[arg(long, default_value = "topics.yaml")]
    pub topics: PathBuf,
    /// After the run, keep the pipeline running behind the gateway and serve the live market
    /// page (its URL is printed, with a key for the demo account) until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Where `--serve` listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub serve_addr: SocketAddr,
    /// More API keys for `--serve` (a key file as `run gateway` takes, from `tradestream keys
    /// new`): their accounts can place orders with curl beside the page's demo account.
    #[arg(long, env = "TRADESTREAM_API_KEYS_FILE")]
    pub api_keys: Option<PathBuf>,
    /// Orders per second the generated flow sends while serving.
    #[arg(long, default_value_t = 20)]
    pub serve_rate: u64,
    /// Results store. A SQLite file is replaced at the start (the embedded broker starts empty,
    /// so offsets stored by an earlier demo would not match).
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The downstream workers, each on a thread of its own.
pub(super) struct Downstream {
    shutdown: Shutdown,
    recorder: Arc<TradeRecorderStats>,
    market: Arc<MarketDataStats>,
    notifier: Arc<NotifierStats>,
    threads: Vec<std::thread::JoinHandle<Result<(), tradestream_runtime::RunError>>>,
}

impl Downstream {
    pub(super) fn start(
        kafka: &KafkaConfig,
        store: &StoreArgs,
        run_id: &str,
    ) -> anyhow::Result<Self> {
        let shutdown = Shutdown::new();
        let run = |name: &str| {
            LoopConfig::new(kafka.clone(), format!("tradestream-demo-{name}-{run_id}"))
        };
        let (recorder, market, notifier) = Default::default();
        let threads = vec![
            spawn("trade-recorder", &shutdown, {
                let cfg = TradeRecorderConfig::with_loop(run("trade-recorder"));
                let (store, stats) = (store.open()?, Arc::clone(&recorder));
                move |stop| tradestream_trade_recorder::run(cfg, store, stop, stats)
            })?,
            spawn("market-data", &shutdown, {
                let cfg = MarketDataConfig::with_loop(run("market-data"));
                let (store, stats) = (store.open()?, Arc::clone(&market));
                move |stop| tradestream_market_data::run(cfg, store, stop, stats)
            })?,
            spawn("notifier", &shutdown, {
                let cfg = NotifierConfig::with_loop(run("notifier"));
                let (store, stats) = (store.open()?, Arc::clone(&notifier));
                move |stop| tradestream_notifier::run(cfg, store, stop, stats)
            })?,
        ];
        Ok(Downstream {
            shutdown,
            recorder,
            market,
            notifier,
            threads,
        })
    }

    /// Waits until every worker has read what the matcher wrote, then stops them (each writes
    /// its last batch on the way out).
    fn finish(self, outputs: &Outputs, deadline: Instant) -> anyhow::Result<()> {
        let caught_up = || {
            self.recorder.records_in.load(Ordering::Relaxed) >= outputs.trades + outputs.executions
                && self.market.records_in.load(Ordering::Relaxed)
                    >= outputs.trades + outputs.market_data
                && self.notifier.records_in.load(Ordering::Relaxed) >= outputs.executions
        };
        let mut failed = None;
        while !caught_up() {
            if self
                .threads
                .iter()
                .any(std::thread::JoinHandle::is_finished)
            {
                failed = Some("a downstream worker stopped early");
                break;
            }
            if Instant::now() > deadline {
                failed = Some("timed out waiting for the downstream workers");
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.shutdown.trigger();
        for t in self.threads {
            t.join()
                .map_err(|_| anyhow::anyhow!("a downstream worker panicked"))??;
        }
        match failed {
            Some(why) => bail!("{why}"),
            None => Ok(()),
        }
    }
}

impl Downstream {
    /// Whether every worker has stopped.
    pub(super) fn is_finished(&self) -> bool {
        self.threads
            .iter()
            .all(std::thread::JoinHandle::is_finished)
    }

    /// Stops the workers (each writes its last batch on the way out).
    pub(super) fn stop(self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        for t in self.threads {
            t.join()
                .map_err(|_| anyhow::anyhow!("a downstream worker panicked"))??;
        }
        Ok(())
    }
}

/// Runs a worker on a thread named `name` until `shutdown` is triggered.
fn spawn(
    name: &str,
    shutdown: &Shutdown,
    run: impl FnOnce(&Shutdown) -> Result<(), tradestream_runtime::RunError> + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<Result<(), tradestream_runtime::RunError>>> {
    let shutdown = shutdown.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || run(&shutdown))
}

/// Removes a SQLite store and its WAL files.
fn fresh_store(store: &StoreArgs) -> anyhow::Result<()> {
    if let StoreUri::Sqlite(path) = &store.store {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot remove {p:?}")),
            }
        }
    }
    Ok(())
}

/// What the output topics hold after the run.
#[derive(Debug, Default)]
struct Outputs {
    /// Commands with their first outcome: accepted, rejected, cancelled or replaced.
    outcomes: u64,
    executions: u64,
    trades: u64,
    market_data: u64,
    dead_letters: u64,
    rejected: u64,
}

fn read_outputs(kafka: &KafkaConfig, partitions: i32) -> anyhow::Result<Outputs> {
    let reader = PartitionReader::new(kafka, Duration::from_secs(60))?;
    let mut out = Outputs::default();
    for p in 0..partitions {
        for (topic, count) in [
            ("trades", &mut out.trades),
            ("market-data", &mut out.market_data),
        ] {
            reader.read_to_end(topic, p, 0, |_| *count += 1)?;
        }
        reader.read_to_end("executions", p, 0, |m| {
            out.executions += 1;
            let Some(event) = m.payload().and_then(|b| avro::decode_event(b).ok()) else {
                return;
            };
            let kind = event.kind.name();
            if matches!(kind, "accepted" | "rejected" | "cancelled" | "replaced") {
                out.outcomes += 1;
                out.rejected += u64::from(kind == "rejected");
            }
        })?;
    }
    let dlq_partitions = reader.partition_count("dead-letters")?;
    for p in 0..dlq_partitions {
        reader.read_to_end("dead-letters", p, 0, |_| out.dead_letters += 1)?;
    }
    Ok(out)
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let instruments = tradestream_config::load_instruments(&args.instruments)?;
    let layout = topics::checked_layout(&args.topics)?;
    let partitions = layout.get("orders").map_or(1, |t| t.partitions);

    eprintln!("starting the embedded broker (tansu, memory storage)…");
    let addr = tradestream_broker::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let kafka = KafkaConfig::new(addr.to_string());
    let report = tradestream_runtime::topics::apply(&layout, &kafka)?;
    eprintln!(
        "broker on {addr}; {} topics created from {}",
        report.created.len(),
        args.topics.display()
    );

    fresh_store(&args.store)?;
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string();
    let downstream = Downstream::start(&kafka, &args.store, &run_id)?;

    let shutdown = Shutdown::new();
    let stats = Arc::new(MatcherStats::default());
    let cfg = tradestream_matcher::MatcherConfig::with_loop(
        LoopConfig::new(kafka.clone(), "tradestream-demo-matcher"),
        instruments.clone(),
    );
    let matcher = {
        let (shutdown, stats) = (shutdown.clone(), stats.clone());
        std::thread::Builder::new()
            .name("matcher".into())
            .spawn(move || tradestream_matcher::run(cfg, &shutdown, stats))?
    };

    // Orders start once the matcher holds every partition: the figures are then the
    // pipeline's, not its group join's.
    let ready_by = Instant::now() + Duration::from_secs(60);
    while stats.restores.load(Ordering::Relaxed) < u64::try_from(partitions).unwrap_or(1) {
        anyhow::ensure!(!matcher.is_finished(), "the matcher stopped while starting");
        anyhow::ensure!(
            Instant::now() < ready_by,
            "the matcher did not get its partitions within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Order timestamp → first outcome readable, by a reader of its own (read_committed), and
    // the floor: the same reader's time to the order itself readable on `orders`, which is what
    // the producer and the broker alone cost before the pipeline does anything.
    let latency = LatencyReader::start(&kafka, "executions", Outcomes::EngineEvents)
        .context("cannot start the latency reader")?;
    let floor = LatencyReader::start(&kafka, "orders", Outcomes::OrderLines)
        .context("cannot start the floor's latency reader")?;

    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let producer = {
        let (kafka, sent) = (kafka.clone(), sent.clone());
        // Stamped (`ts`): the outcome and the floor are measured from the same stamp.
        let flow = produce::flow(&instruments, args.seed, args.poison_per_mille, true);
        let (count, rate) = (args.orders, args.rate);
        std::thread::Builder::new()
            .name("producer".into())
            .spawn(move || {
                let records = produce::generate(flow, count).map(Ok);
                produce::produce(&kafka, "orders", Format::Json, rate, records, &sent)
            })?
    };

    let bar = indicatif::ProgressBar::new(args.orders);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} orders matched {msg}",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    // Generous bound: a healthy run takes a small fraction of it.
    let deadline = started + Duration::from_secs(120 + args.orders / 500);
    let mut failed = None;
    loop {
        let done = stats.records_in.load(Ordering::Relaxed);
        bar.set_position(done.min(args.orders));
        bar.set_message(format!(
            "(produced {}, trades {}, dead letters {})",
            sent.load(Ordering::Relaxed),
            stats.trades.load(Ordering::Relaxed),
            stats.dead_letters.load(Ordering::Relaxed)
        ));
        if done >= args.orders {
            break;
        }
        if matcher.is_finished() {
            failed = Some("the matcher stopped early");
            break;
        }
        if Instant::now() > deadline {
            failed = Some("timed out waiting for the matcher");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let matched_in = started.elapsed();
    bar.finish();
    shutdown.trigger();
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("the producer panicked"))??;
    matcher
        .join()
        .map_err(|_| anyhow::anyhow!("the matcher panicked"))??;
    if let Some(why) = failed {
        bail!("{why}");
    }

    let outputs = read_outputs(&kafka, partitions)?;
    // Every outcome is on the topic by now; the reader may still be a moment behind.
    latency.wait_for(outputs.outcomes, Duration::from_secs(30));
    let mut lat = latency.stop().context("the latency reader failed")?;
    let lat = lat.percentiles();
    // Every order is on `orders` by now (a bad record too: it counts as read, not as a sample).
    let floor_by = Instant::now() + Duration::from_secs(30);
    while floor.records() < args.orders && Instant::now() < floor_by {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut floor = floor.stop().context("the floor's latency reader failed")?;
    let floor = floor.percentiles();
    eprintln!("waiting for the trade recorder, market data and notifier to catch up…");
    downstream.finish(&outputs, deadline + Duration::from_secs(120))?;
    let counts = args.store.open()?.counts()?;
    let secs = matched_in.as_secs_f64().max(1e-9);
    let summary = serde_json::json!({
        "orders_in": args.orders,
        "events_out": outputs.executions + outputs.trades + outputs.market_data,
        "executions": outputs.executions,
        "trades": outputs.trades,
        "market_data": outputs.market_data,
        "rejected": outputs.rejected,
        "dead_letters": outputs.dead_letters,
        "outcomes": outputs.outcomes,
        "orders_per_s": (args.orders as f64 / secs).round(),
        "p50_ms": lat.p50_ms,
        "p99_ms": lat.p99_ms,
        "p99_9_ms": lat.p99_9_ms,
        "max_ms": lat.max_ms,
        "latency_samples": lat.count,
        "input_p50_ms": floor.p50_ms,
        "input_p99_ms": floor.p99_ms,
        "input_p99_9_ms": floor.p99_9_ms,
        "input_max_ms": floor.max_ms,
        "input_samples": floor.count,
        "snapshots": stats.snapshots.load(Ordering::Relaxed),
        "trades_stored": counts.trades,
        "orders_stored": counts.orders,
        "candles_stored": counts.candles,
        "tops_stored": counts.tops,
        "notifications_stored": counts.notifications,
        "store": args.store.store.to_string(),
        "seconds": (secs * 10.0).round() / 10.0,
    });
    println!("orders in       {}", args.orders);
    println!(
        "events out      {} (executions {}, trades {}, market data {})",
        summary["events_out"], outputs.executions, outputs.trades, outputs.market_data
    );
    println!("rejected        {}", outputs.rejected);
    println!("dead letters    {}", outputs.dead_letters);
    println!("throughput      {} orders/s", summary["orders_per_s"]);
    println!("latency         {lat}, order timestamp → outcome readable");
    println!("floor           {floor}, order timestamp → the order itself readable on orders");
    println!(
        "store           {} trades, {} orders, {} candles, {} tops of book, {} notifications in {}",
        counts.trades,
        counts.orders,
        counts.candles,
        counts.tops,
        counts.notifications,
        args.store.store
    );
    if args.json {
        println!("{summary}");
    }
    if counts.trades != outputs.trades {
        bail!(
            "{} trades on the topic but {} in the store",
            outputs.trades,
            counts.trades
        );
    }
    let accounted = outputs.outcomes + outputs.dead_letters;
    if accounted != args.orders {
        bail!(
            "{} orders in, but {} outcomes and {} dead letters",
            args.orders,
            outputs.outcomes,
            outputs.dead_letters
        );
    }
    if args.serve {
        super::demo_serve::serve(args, &kafka, &instruments, &run_id)?;
    }
    Ok(())
}
