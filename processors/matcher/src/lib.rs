//! # tradestream-matcher
//!
//! `tradestream run matcher`: consumes `orders`, runs one matching engine per input partition,
//! and writes executions, trades and market data to the same partition number of their topics
//! (co-partitioning, docs/design.md §1), each record with provenance headers and a contiguous `seq`
//! per input partition and output topic.
//!
//! ## Effectively-once (docs/design.md §2–3)
//! 1. Outputs are produced idempotently (`acks=all`); input offsets are committed only after
//!    every output of those inputs is acknowledged.
//! 2. Every `snapshot-every` records per partition, once the outputs up to there are
//!    acknowledged, the engine state, the input offset it covers and the output counters go to
//!    the compacted `matcher-snapshots` topic (`schemas/snapshot_meta.avsc`, chunked when large,
//!    one key per chunk).
//! 3. On assignment of partition p the worker loads p's latest snapshot, reads what each output
//!    topic already holds since that snapshot (the last `seq`, the dead-lettered offsets), and
//!    resumes input right after the snapshot's offset. The deterministic engine regenerates the
//!    same outputs; those already present are not produced again.
//! 4. Every snapshot also carries the partition's output hash chain ([`output_chain`]) after
//!    the input it covers. The chain folds in every output, written or found already present,
//!    so a restored matcher continues exactly the chain of an uninterrupted run: the pipeline
//!    tests check every snapshot's chain against the engine run offline.
//!
//! ## Layout
//! From the bottom up; a module imports only those above it, and `worker.rs`, which drives
//! them all, is imported by nothing but this file's re-exports.
//! - `config.rs`: settings and their defaults.
//! - `stats.rs`: the counters ([`MatcherStats`]).
//! - `state.rs`: per-partition state, the newest output found per topic (`Tail`) and the
//!   snapshot form.
//! - [`timestamps`]: a command's `ts` checked against its record's broker timestamp
//!   (`bad_timestamp`).
//! - `restore.rs`: rebuilding a partition's state from the snapshot topic and the outputs.
//! - `worker.rs`: the [`Worker`](tradestream_runtime::Worker) the shared consumer loop drives:
//!   restore on assignment, matching, deduplicated outputs, snapshots.

mod config;
mod restore;
mod state;
mod stats;
pub mod timestamps;
mod worker;

pub use config::{MatcherConfig, OutputFormat};
pub use state::chain as output_chain;
pub use stats::MatcherStats;
pub use worker::{Matcher, run};
