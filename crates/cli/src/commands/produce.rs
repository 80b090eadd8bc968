//! `tradestream produce orders`: a realistic order flow (or a file) onto the `orders` topic.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use tradestream_codec::{avro, json};
use tradestream_engine::{Instruments, Symbol};
use tradestream_loadgen::{FlowConfig, OrderFlow};
use tradestream_runtime::KafkaConfig;

use super::kafka::KafkaArgs;

/// `tradestream produce …`.
#[derive(Debug, clap::Subcommand)]
pub enum ProduceCommand {
    /// Order commands onto the orders topic.
    Orders(OrdersArgs),
}

/// Record encoding on the orders topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The JSON command contract.
    Json,
    /// Avro single-object encoding (schemas/order_command.avsc).
    Avro,
}

/// Arguments of `produce orders`.
#[derive(Debug, clap::Args)]
pub struct OrdersArgs {
    /// How many commands to generate (ignored with --from-file).
    #[arg(long, default_value_t = 10_000)]
    pub count: u64,
    /// Commands per second; 0 for as fast as the broker takes them.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Symbols to trade (comma-separated); all configured instruments by default.
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Seed of the generated flow: the same seed gives the same commands.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Bad records per thousand, to exercise dead letters.
    #[arg(long, default_value_t = 0)]
    pub poison_per_mille: u64,
    /// Produce the JSON lines of this file instead of generating.
    #[arg(long)]
    pub from_file: Option<PathBuf>,
    /// Record encoding.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Target topic.
    #[arg(long, default_value = "orders")]
    pub topic: String,
    /// Instruments file.
    #[arg(long, default_value = "instruments.yaml")]
    pub instruments: PathBuf,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Runs a `produce` subcommand.
pub fn run(cmd: &ProduceCommand) -> anyhow::Result<()> {
    let ProduceCommand::Orders(args) = cmd;
    let instruments = tradestream_config::load_instruments(&args.instruments)?;
    let selected = select(&instruments, &args.symbols)?;
    let lines: Box<dyn Iterator<Item = anyhow::Result<(String, String)>>> = match &args.from_file {
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            Box::new(
                std::io::BufReader::new(file)
                    .lines()
                    .filter_map(|l| match l {
                        Ok(l) if l.trim().is_empty() => None,
                        Ok(l) => Some(Ok((key_of(&l), l))),
                        Err(e) => Some(Err(e.into())),
                    }),
            )
        }
        None => {
            let flow = flow(&selected, args.seed, args.poison_per_mille, true);
            Box::new(generate(flow, args.count).map(Ok))
        }
    };
    let sent = AtomicU64::new(0);
    let start = Instant::now();
    produce(
        &args.kafka.config()?,
        &args.topic,
        args.format,
        args.rate,
        lines,
        &sent,
    )?;
    let n = sent.load(Ordering::Relaxed);
    println!(
        "produced {n} records to {} in {:.1}s",
        args.topic,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The instruments named by `symbols` (all when empty).
pub fn select(instruments: &Instruments, symbols: &[String]) -> anyhow::Result<Instruments> {
    if symbols.is_empty() {
        return Ok(instruments.clone());
    }
    let mut specs = Vec::new();
    for s in symbols {
        let sym = Symbol::new(s).map_err(|e| anyhow::anyhow!("symbol {s}: {e}"))?;
        let Some(i) = instruments.get(&sym) else {
            bail!("symbol {s} is not in the instruments file");
        };
        specs.push(tradestream_engine::InstrumentSpec {
            symbol: s.clone(),
            tick_size: i.tick_size,
            lot_size: i.lot_size,
            min_qty: Some(
                tradestream_engine::Decimal::from_units(i.min_qty.0 as i64, i.lot_size)
                    .unwrap_or(i.lot_size),
            ),
            max_qty: None,
            min_price: tradestream_engine::Decimal::from_units(i.min_price.0, i.tick_size),
            max_price: tradestream_engine::Decimal::from_units(i.max_price.0, i.tick_size),
        });
    }
    Ok(Instruments::new(&specs)?)
}

/// A generated flow over `instruments`; without `with_ts` commands carry no `ts` and the record
/// timestamp stands for event time (so latency is measured from the produce).
pub fn flow(
    instruments: &Instruments,
    seed: u64,
    poison_per_mille: u64,
    with_ts: bool,
) -> OrderFlow {
    OrderFlow::new(
        instruments.iter(),
        &FlowConfig {
            seed,
            poison_per_mille,
            with_ts,
            ..FlowConfig::default()
        },
    )
}

/// `count` generated (key, line) pairs, each stamped with the wall clock as it is generated
/// (lazily, so just before it is sent): the matcher rejects a `ts` far from the broker's
/// timestamp.
pub fn generate(mut flow: OrderFlow, count: u64) -> impl Iterator<Item = (String, String)> {
    (0..count).map(move |_| {
        let (line, key, _) = flow.next_line_at(tradestream_loadgen::wall_clock_ms());
        (key, line)
    })
}

/// The symbol of a JSON command line, as its key ("" when it has none).
fn key_of(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("symbol").and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// Produces `(key, JSON line)` records, idempotently, paced to `rate` per second (0: unpaced).
/// `sent` counts acknowledged-or-queued records as they go, for progress displays.
pub fn produce(
    kafka: &KafkaConfig,
    topic: &str,
    format: Format,
    rate: u64,
    records: impl Iterator<Item = anyhow::Result<(String, String)>>,
    sent: &AtomicU64,
) -> anyhow::Result<()> {
    let producer: ThreadedProducer<Deliveries> = kafka
        .producer()
        .create_with_context(Deliveries::default())
        .context("cannot create the producer")?;
    let start = Instant::now();
    for (i, record) in records.enumerate() {
        let (key, line) = record?;
        let payload = match format {
            Format::Json => line.into_bytes(),
            Format::Avro => {
                let cmd = json::decode_command(line.as_bytes(), 0);
                avro::encode_command(&cmd, avro::Framing::SingleObject)
                    .map_err(|e| anyhow::anyhow!("cannot encode {line}: {e}"))?
            }
        };
        let mut rec = BaseRecord::to(topic).payload(payload.as_slice());
        if !key.is_empty() {
            rec = rec.key(key.as_bytes());
        }
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => return Err(e).context("cannot produce"),
            }
        }
        sent.fetch_add(1, Ordering::Relaxed);
        if rate > 0 && i as u64 % 100 == 99 {
            let due = Duration::from_secs_f64((i + 1) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .context("orders were not all acknowledged")?;
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        let last = producer
            .context()
            .last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        bail!("{failed} records were not acknowledged by the broker (last error: {last})");
    }
    Ok(())
}

/// Counts records the broker did not acknowledge: a producer that exits 0 wrote everything.
#[derive(Debug, Default)]
struct Deliveries {
    failed: AtomicU64,
    last_error: std::sync::Mutex<String>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut last) = self.last_error.lock() {
                *last = e.to_string();
            }
        }
    }
}
