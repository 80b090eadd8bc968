//! # tradestream-runtime
//!
//! The pieces every worker shares (docs/design.md §7).
//!
//! ## Layout
//! - [`worker`]: the [`Worker`] trait and what the loop hands it ([`Context`], [`Record`], …).
//! - [`runner`]: the consumer loop that drives a worker ([`run`], [`Runner`]).
//! - [`io`]: the narrow interface between the loop and a cluster (consumer, producer, reader,
//!   clock), and its librdkafka implementation ([`io::kafka`]).
//! - [`acks`]: which input offsets may be committed while outputs are in flight.
//! - [`client`]: librdkafka settings: bootstrap servers, typed settings, pass-through overrides.
//! - [`client_error`]: why a client call failed, and whether to try again.
//! - [`retry`]: trying a call again after a transient error, with backoff.
//! - [`guarantee`]: effectively-once (any broker) or exactly-once (Kafka transactions).
//! - [`headers`]: provenance headers (source partition, source offset, seq, worker) and their parsing.
//! - [`dead_letter`]: dead-letter records with headers naming the error and its source.
//! - [`partitioner`]: the Java client's murmur2 key partitioner, which every producer uses.
//! - [`partition`]: reading one partition between two offsets (restore, dedup, verification).
//! - [`quirks`]: what the embedded broker needs worked around, detected by its cluster id.
//! - [`shutdown`]: a cloneable stop flag set by SIGINT/SIGTERM or by the caller.
//! - [`topics`]: creating the topics of topics.yaml and reporting drift.
//! - [`metrics`]: what the loop reports, and the Prometheus endpoint.
//! - [`stats`]: workers' counters that list themselves ([`stats!`]).
//! - [`registry`]: a Confluent-compatible schema registry client (register, look up by id).

pub mod acks;
pub mod client;
pub mod client_error;
pub mod dead_letter;
pub mod guarantee;
pub mod headers;
pub mod io;
mod loop_settings;
pub mod metrics;
pub mod partition;
pub mod partitioner;
pub mod quirks;
pub mod registry;
pub mod retry;
pub mod runner;
pub mod shutdown;
pub mod stats;
pub mod topics;
pub mod worker;

pub use client::KafkaConfig;
pub use client_error::ClientError;
pub use guarantee::Guarantee;
pub use quirks::BrokerQuirks;
pub use runner::{Runner, run};
pub use shutdown::Shutdown;
pub use stats::Stats;
pub use worker::{
    Checkpoints, Context, LoopConfig, Outcome, Position, Record, RunError, SetupError, Worker,
    WorkerError,
};

#[cfg(test)]
mod tests;
