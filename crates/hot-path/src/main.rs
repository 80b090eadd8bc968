//! The matcher's per-record cost outside the Kafka client: decode → engine → event encoding (with
//! the output hash chain) → provenance headers, over a generated order flow, without a broker.
//!
//! ```sh
//! cargo run --release -p tradestream-hot-path                  # BENCH_ORDERS=200000, JSON orders
//! HOT_PATH_FORMAT=avro cargo run --release -p tradestream-hot-path
//! perf record -g target/release/tradestream-hot-path           # where the time goes
//! ```
//!
//! Each stage runs the whole flow from a fresh engine and includes the stages before it, so the
//! cost of a stage is the difference to the line above. Allocations are counted by a counting
//! global allocator (Rust allocations only: the headers' librdkafka allocations happen in C and
//! are not seen). Times are the best of `HOT_PATH_REPEAT` (default 5) runs.

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tradestream_codec::avro::{self, Framing};
use tradestream_engine::{Command, Engine, Event, EventKind, Instruments};
use tradestream_loadgen::{FlowConfig, OrderFlow};
use tradestream_matcher::{output_chain, timestamps};
use tradestream_runtime::headers::Provenance;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Decode,
    Engine,
    Encode,
    Headers,
}

impl Stage {
    const ALL: [Stage; 4] = [Stage::Decode, Stage::Engine, Stage::Encode, Stage::Headers];

    fn label(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Engine => "+ engine",
            Stage::Encode => "+ encode_event + hash chain",
            Stage::Headers => "+ provenance headers",
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
struct Figures {
    elapsed: Duration,
    allocations: usize,
    bytes: usize,
    outputs: u64,
}

/// The output topics of an event (the matcher's `routes`): fills are executions and trades.
fn routes(kind: &EventKind) -> &'static [usize] {
    match kind {
        EventKind::Trade { .. } => &[0, 1],
        EventKind::BookDelta { .. } | EventKind::TopOfBook { .. } => &[2],
        _ => &[0],
    }
}

fn run(stage: Stage, records: &[Vec<u8>], instruments: &Instruments) -> Figures {
    let mut engine: Engine = Engine::new(instruments.clone());
    let mut events: Vec<Event> = Vec::with_capacity(64);
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut seq = [0u64; 3];
    let mut hash = 0u64;
    let mut outputs = 0u64;
    let skew = Some(timestamps::DEFAULT_MAX_CLOCK_SKEW);
    let region = Region::new(GLOBAL);
    let start = Instant::now();
    for (offset, record) in records.iter().enumerate() {
        let cmd = avro::decode_command_any(record, 0);
        if stage == Stage::Decode {
            black_box(&cmd);
            continue;
        }
        events.clear();
        // The record's broker timestamp: the command's own stamp (always within the window).
        let record_ts = Some(cmd.ts());
        timestamps::apply(&mut engine, &cmd, record_ts, skew, &mut events);
        if stage == Stage::Engine {
            outputs += events.len() as u64;
            continue;
        }
        for event in &events {
            for &t in routes(&event.kind) {
                seq[t] += 1;
                outputs += 1;
                buf.clear();
                let provenance = avro::Provenance {
                    source_partition: 0,
                    source_offset: offset as i64,
                    seq: seq[t],
                };
                avro::encode_event(
                    instruments,
                    event,
                    provenance,
                    Framing::SingleObject,
                    &mut buf,
                );
                hash = output_chain(hash, t, seq[t], &buf);
                black_box(event.symbol.as_bytes());
                if stage == Stage::Headers {
                    let headers = Provenance {
                        source_topic: "orders",
                        source_partition: 0,
                        source_offset: offset as i64,
                        seq: seq[t],
                        worker: "matcher",
                    }
                    .headers();
                    black_box(headers);
                }
            }
        }
    }
    let elapsed = start.elapsed();
    black_box(hash);
    let change = region.change();
    Figures {
        elapsed,
        allocations: change.allocations + change.reallocations,
        bytes: change.bytes_allocated,
        outputs,
    }
}

fn main() {
    let n: usize = std::env::var("BENCH_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let repeat: usize = std::env::var("HOT_PATH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let avro_orders = std::env::var("HOT_PATH_FORMAT").is_ok_and(|f| f == "avro");
    let root = tradestream_testkit::repo_root();
    let instruments =
        tradestream_config::load_instruments(&root.join("instruments.yaml")).expect("instruments");
    let mut flow = OrderFlow::new(instruments.iter(), &FlowConfig::default());
    let records: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let line = flow.next_line().0.into_bytes();
            if avro_orders {
                let cmd: Command = avro::decode_command_any(&line, 0);
                avro::encode_command(&cmd, Framing::SingleObject).expect("encodable")
            } else {
                line
            }
        })
        .collect();
    println!(
        "hot_path: {n} orders ({}), best of {repeat}; size_of Event {} B, EventKind {} B, Command {} B",
        if avro_orders { "Avro" } else { "JSON" },
        size_of::<Event>(),
        size_of::<EventKind>(),
        size_of::<Command>(),
    );
    println!(
        "{:<30} {:>10} {:>14} {:>14} {:>12}",
        "stage", "ns/order", "allocs/order", "bytes/order", "outputs"
    );
    for stage in Stage::ALL {
        let mut best: Option<Figures> = None;
        for _ in 0..repeat {
            let f = run(stage, &records, &instruments);
            if best.is_none_or(|b| f.elapsed < b.elapsed) {
                best = Some(f);
            }
        }
        let f = best.expect("at least one run");
        let per = |x: f64| x / n as f64;
        println!(
            "{:<30} {:>10.0} {:>14.2} {:>14.1} {:>12}",
            stage.label(),
            per(f.elapsed.as_nanos() as f64),
            per(f.allocations as f64),
            per(f.bytes as f64),
            f.outputs
        );
    }
}
