//! `tradestream tail <topic>`: a topic's records as JSON lines, Avro decoded with the schema
//! topics.yaml names for it, so nobody has to hunt for a client that speaks Avro.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tradestream_codec::inspect::{self, Decoder};
use tradestream_config::topics::{ValueFormat, load_topics};
use tradestream_runtime::partition::ReaderContext;

use super::kafka::{KafkaArgs, shutdown_on_signals};

/// Arguments of `tail`.
#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// The topic (any topic of topics.yaml, or a replay's shadow `<topic>.<suffix>`).
    pub topic: String,
    /// Only this partition (default: every partition).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Start at the end: print only records written from now on (implies --follow).
    #[arg(long)]
    pub from_end: bool,
    /// Keep waiting for new records at the end of the partitions (until SIGINT).
    #[arg(long)]
    pub follow: bool,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<u64>,
    /// The topic layout (schemas of each topic).
    #[arg(long, default_value = "topics.yaml")]
    pub topics: PathBuf,
    /// Where the `.avsc` files are.
    #[arg(long, default_value = "schemas")]
    pub schemas: PathBuf,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Prints records until every partition's end (or forever with `--follow`).
pub fn run(args: &TailArgs) -> anyhow::Result<()> {
    let layout = load_topics(&args.topics)?;
    // A shadow topic `<topic>.<suffix>` has its live topic's schema.
    let spec = layout.get(&args.topic).or_else(|| {
        args.topic
            .rsplit_once('.')
            .and_then(|(live, _)| layout.get(live))
    });
    let decoder = match spec {
        Some(s) if s.value.format == ValueFormat::Avro => {
            let path = args.schemas.join(&s.value.schema);
            // Topics whose records are not Avro (dead letters keep the bytes they were given)
            // name a schema that may not exist; they print as JSON or text.
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(
                    Decoder::new(&text).with_context(|| format!("schema {}", path.display()))?,
                ),
                Err(_) => None,
            }
        }
        _ => None,
    };
    let consumer: BaseConsumer<ReaderContext> = args
        .kafka
        .config()?
        .reader()
        .create_with_context(ReaderContext)?;
    let md = consumer.fetch_metadata(Some(&args.topic), Duration::from_secs(30))?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .find(|t| t.name() == args.topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        bail!("topic {} does not exist", args.topic);
    }
    let chosen: Vec<i32> = match args.partition {
        Some(p) if partitions.contains(&p) => vec![p],
        Some(p) => bail!("topic {} has no partition {p}", args.topic),
        None => partitions,
    };
    let start = if args.from_end {
        Offset::End
    } else {
        Offset::Beginning
    };
    let mut tpl = TopicPartitionList::new();
    for p in &chosen {
        tpl.add_partition_offset(&args.topic, *p, start)?;
    }
    consumer.assign(&tpl)?;

    let follow = args.follow || args.from_end;
    let shutdown = shutdown_on_signals()?;
    let mut open: BTreeSet<i32> = chosen.iter().copied().collect();
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    while !shutdown.is_triggered()
        && (follow || !open.is_empty())
        && args.count.is_none_or(|n| printed < n)
    {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                let mut headers = serde_json::Map::new();
                if let Some(hs) = m.headers() {
                    for h in hs.iter() {
                        let v = String::from_utf8_lossy(h.value.unwrap_or_default());
                        headers.insert(h.key.to_owned(), v.into_owned().into());
                    }
                }
                let line = serde_json::json!({
                    "topic": m.topic(),
                    "partition": m.partition(),
                    "offset": m.offset(),
                    "timestamp": m.timestamp().to_millis(),
                    "key": m.key().map(String::from_utf8_lossy),
                    "headers": headers,
                    "value": m.payload().map(|v| inspect::value_to_json(decoder.as_ref(), v)),
                });
                if writeln!(out, "{line}").is_err() {
                    return Ok(()); // the reader went away (e.g. `| head`)
                }
                printed += 1;
            }
        }
    }
    out.flush().ok();
    Ok(())
}
