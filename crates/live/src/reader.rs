//! The hub's reader thread: every partition of the four topics, assigned at its end offset (no
//! consumer group, nothing committed), decoded into [`Update`]s and applied in batches of at
//! most [`HubConfig::flush_interval`](crate::HubConfig) (book updates coalesce within a batch).
//!
//! Topics or partitions that do not exist yet are looked for again every few seconds.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use tradestream_codec::avro::{DecimalLevel, DecodedKind, decode_event};
use tradestream_codec::records::{decode_candle, decode_notification};
use tradestream_engine::{Decimal, Side};
use tradestream_runtime::BrokerQuirks;

use crate::hub::Shared;

/// Records applied per batch at most.
const MAX_BATCH: usize = 2000;
/// How often topics are looked up for partitions not assigned yet.
const RECHECK: Duration = Duration::from_secs(5);
/// ... while some topic is still missing.
const RECHECK_MISSING: Duration = Duration::from_secs(1);

/// One decoded record the hub applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A level's new total.
    Delta {
        /// Instrument.
        symbol: String,
        /// Book side.
        side: Side,
        /// Level price.
        price: Decimal,
        /// New total (zero: gone).
        qty: Decimal,
        /// Event time, ms.
        ts: i64,
        /// Output seq.
        seq: u64,
    },
    /// New best bid and ask.
    Top {
        /// Instrument.
        symbol: String,
        /// Best bid.
        bid: Option<DecimalLevel>,
        /// Best ask.
        ask: Option<DecimalLevel>,
        /// Event time, ms.
        ts: i64,
        /// Output seq.
        seq: u64,
    },
    /// A trade, as the `trades:` message data.
    Trade {
        /// Instrument.
        symbol: String,
        /// Message data.
        data: Value,
    },
    /// A candle, as the `candles:` message data.
    Candle {
        /// Instrument.
        symbol: String,
        /// `1s`, `1m`, `1h`.
        interval: String,
        /// Bucket start, ms.
        bucket_start: i64,
        /// Message data.
        data: Value,
    },
    /// A notification for `account`.
    Notification {
        /// The account told.
        account: String,
        /// Message data.
        data: Value,
    },
}

/// Which decoder a topic needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    MarketData,
    Trades,
    Candles,
    Notifications,
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// Decodes one record of a topic of `kind`; `Ok(None)` for records the stream does not show.
fn decode(kind: Kind, bytes: &[u8]) -> Result<Option<Update>, String> {
    match kind {
        Kind::MarketData | Kind::Trades => {
            let e = decode_event(bytes).map_err(|e| e.to_string())?;
            let symbol = e.symbol.as_str().to_owned();
            Ok(match e.kind {
                DecodedKind::BookDelta { side, price, qty } => Some(Update::Delta {
                    symbol,
                    side,
                    price,
                    qty,
                    ts: e.ts,
                    seq: e.seq,
                }),
                DecodedKind::TopOfBook { bid, ask } => Some(Update::Top {
                    symbol,
                    bid,
                    ask,
                    ts: e.ts,
                    seq: e.seq,
                }),
                // Public tape: no accounts, no order ids.
                DecodedKind::Trade {
                    price,
                    qty,
                    taker_side,
                    ..
                } => Some(Update::Trade {
                    data: json!({
                        "symbol": symbol,
                        "seq": e.seq,
                        "ts": e.ts,
                        "price": price.to_string(),
                        "qty": qty.to_string(),
                        "taker_side": side_name(taker_side),
                    }),
                    symbol,
                }),
                _ => None,
            })
        }
        Kind::Candles => {
            let c = decode_candle(bytes).map_err(|e| e.to_string())?;
            Ok(Some(Update::Candle {
                data: json!({
                    "symbol": c.symbol,
                    "interval": c.interval,
                    "bucket_start": c.bucket_start_ms,
                    "open": c.open.to_string(),
                    "high": c.high.to_string(),
                    "low": c.low.to_string(),
                    "close": c.close.to_string(),
                    "volume": c.volume.to_string(),
                    "vwap": c.vwap.to_string(),
                    "trade_count": c.trade_count,
                    "closed": c.closed,
                }),
                symbol: c.symbol,
                interval: c.interval,
                bucket_start: c.bucket_start_ms,
            }))
        }
        Kind::Notifications => {
            let n = decode_notification(bytes).map_err(|e| e.to_string())?;
            Ok(Some(Update::Notification {
                data: json!({
                    "account": n.account,
                    "kind": n.kind,
                    "order_id": n.order_id,
                    "symbol": n.symbol,
                    "text": n.text,
                    "ts": n.ts_ms,
                    "seq": n.seq,
                }),
                account: n.account,
            }))
        }
    }
}

/// The symbol an update is about, if it names one.
fn symbol_of(u: &Update) -> Option<&str> {
    match u {
        Update::Delta { symbol, .. }
        | Update::Top { symbol, .. }
        | Update::Trade { symbol, .. }
        | Update::Candle { symbol, .. } => Some(symbol),
        Update::Notification { .. } => None,
    }
}

/// The reader thread's body: runs until the hub stops.
pub(crate) fn run(shared: &Arc<Shared>) {
    let hub = HubRef(shared.clone());
    let consumer = loop {
        match create_consumer(shared) {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "live stream: cannot create the topic reader; retrying");
                if sleep_or_stop(shared, RECHECK) {
                    return;
                }
            }
        }
    };
    let topics = {
        let t = &shared.config.topics;
        [
            (t.market_data.clone(), Kind::MarketData),
            (t.trades.clone(), Kind::Trades),
            (t.candles.clone(), Kind::Candles),
            (t.notifications.clone(), Kind::Notifications),
        ]
    };
    let mut assigned = BTreeSet::new();
    let mut next_offsets = HashMap::new();
    let mut next_check = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_check {
            let complete = assign_new(&consumer, &topics, &mut assigned, shared);
            next_check = Instant::now() + if complete { RECHECK } else { RECHECK_MISSING };
        }
        let batch = read_batch(&consumer, &topics, shared, &mut next_offsets);
        hub.apply(batch);
    }
}

/// [`Hub::apply`] on the shared state (the thread holds no `Hub`, so dropping the last `Hub`
/// stops it).
struct HubRef(Arc<Shared>);

impl HubRef {
    fn apply(&self, batch: Vec<Update>) {
        crate::hub::apply_shared(&self.0, batch);
    }
}

fn create_consumer(shared: &Shared) -> Result<BaseConsumer, rdkafka::error::KafkaError> {
    let kafka = &shared.config.kafka;
    let mut config = kafka.reader();
    config.set("enable.partition.eof", "false");
    BrokerQuirks::Auto
        .resolve(kafka)
        .tune_consumer(kafka, &mut config);
    config.create()
}

/// Sleeps up to `d` in small steps; true when the hub stopped meanwhile.
fn sleep_or_stop(shared: &Shared, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if shared.stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    shared.stop.load(Ordering::Relaxed)
}

/// Assigns partitions not assigned yet at their current end (high watermark, so a record
/// produced after this returns is read). Returns whether every topic was found.
fn assign_new(
    consumer: &BaseConsumer,
    topics: &[(String, Kind)],
    assigned: &mut BTreeSet<(String, i32)>,
    shared: &Shared,
) -> bool {
    let timeout = Duration::from_secs(5);
    let mut complete = true;
    let mut tpl = TopicPartitionList::new();
    for (topic, _) in topics {
        let partitions: Vec<i32> = match consumer.fetch_metadata(Some(topic), timeout) {
            Ok(md) => md
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect(),
            Err(e) => {
                tracing::debug!(topic, error = %e, "live stream: no metadata yet");
                Vec::new()
            }
        };
        if partitions.is_empty() {
            complete = false;
        }
        for p in partitions {
            if assigned.contains(&(topic.clone(), p)) {
                continue;
            }
            let Some(offset) = start_offset(consumer.fetch_watermarks(topic, p, timeout)) else {
                complete = false;
                continue;
            };
            if tpl.add_partition_offset(topic, p, offset).is_ok() {
                assigned.insert((topic.clone(), p));
            }
        }
    }
    if tpl.count() > 0 {
        match consumer.incremental_assign(&tpl) {
            Ok(()) => {
                shared
                    .stats
                    .partitions
                    .store(assigned.len() as u64, Ordering::Relaxed);
                tracing::info!(
                    partitions = assigned.len(),
                    "live stream: reading topics from their end"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "live stream: cannot assign partitions; retrying");
                for e in tpl.elements() {
                    assigned.remove(&(e.topic().to_owned(), e.partition()));
                }
            }
        }
    }
    complete
}

/// Where a partition is first read: its high watermark, as read now. Without a watermark (no
/// leader yet, a timeout) the partition is not assigned yet and is looked at again shortly.
fn start_offset(watermarks: rdkafka::error::KafkaResult<(i64, i64)>) -> Option<Offset> {
    match watermarks {
        Ok((_, high)) => Some(Offset::Offset(high)),
        Err(_) => None,
    }
}

/// Reads for up to one flush interval. A record at an offset already read on its partition is
/// skipped: a broker may deliver part of a batch again (the embedded broker answers a fetch
/// from inside a batch with the whole batch), and a client must not see a trade twice.
fn read_batch(
    consumer: &BaseConsumer,
    topics: &[(String, Kind)],
    shared: &Shared,
    next_offsets: &mut HashMap<(usize, i32), i64>,
) -> Vec<Update> {
    let deadline = Instant::now() + shared.config.flush_interval;
    let mut batch = Vec::new();
    while batch.len() < MAX_BATCH {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let Some(result) = consumer.poll(deadline - now) else {
            break;
        };
        let msg = match result {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "live stream: read error");
                continue;
            }
        };
        let Some(index) = topics.iter().position(|(t, _)| t == msg.topic()) else {
            continue;
        };
        let kind = topics[index].1;
        let next = next_offsets.entry((index, msg.partition())).or_insert(0);
        if msg.offset() < *next {
            continue;
        }
        *next = msg.offset() + 1;
        shared.stats.records.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tradestream_live_records_total").increment(1);
        match decode(kind, msg.payload().unwrap_or_default()) {
            Ok(Some(u)) if symbol_of(&u).is_none_or(|s| shared.knows(s)) => batch.push(u),
            Ok(_) => {}
            Err(e) => {
                shared.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("tradestream_live_undecodable_total").increment(1);
                tracing::debug!(topic = msg.topic(), offset = msg.offset(), error = %e, "live stream: record skipped");
            }
        }
    }
    batch
}

#[cfg(test)]
mod tests;
