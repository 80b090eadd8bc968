//! # tradestream-notifier
//!
//! Tells accounts what happened to their orders: one notification per account per execution.
//!
//! ## Layout
//! - [`notify`]: the pure part — [`notifications`](notify::notifications) maps an `executions`
//!   event to notification rows (the rules for self-matches and rejections are in its
//!   documentation).
//! - [`record`]: notification rows to and from the `notifications` topic's Avro record, and
//!   [`Dedup`](record::Dedup), a reader's dedup by `(account, source_partition, seq)`.
//!
//! - [`worker`]: the [`Worker`](tradestream_runtime::Worker) the shared consumer loop drives:
//!   decode, notify, produce, one store write per batch with the input offsets.

pub mod notify;
pub mod record;
pub mod worker;

pub use worker::{Notifier, NotifierConfig, NotifierStats, run};
