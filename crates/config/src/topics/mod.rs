//! `topics.yaml`: the pipeline's topic layout.
//!
//! Reading a layout ([`parse_topics`], [`load_topics`]) fails only when the file is not YAML of the right
//! shape; [`TopicLayout::check`] then lists *every* semantic problem at once (co-partitioning, compaction,
//! formats, required topics), so `tradestream topics check` can print them all. [`load_topics`] refuses a layout
//! with problems, which is what workers want. [`TopicLayout::drift`] compares the layout with what a broker
//! reports; it is pure, the CLI fetches the metadata.
//!
//! ## Layout
//! - `model.rs`: the parsed file ([`TopicLayout`], [`TopicSpec`], [`ValueSpec`],
//!   [`CleanupPolicy`], [`ValueFormat`]) and its defaults: where a new `topics.yaml` setting goes.
//! - `scalar.rs`: topic config values written as YAML scalars, kept as text.
//! - `load.rs`: [`parse_topics`] and [`load_topics`].
//! - `check.rs`: the rules ([`TopicLayout::check`], [`TopicLayout::validate`]) and the topics
//!   the pipeline requires ([`REQUIRED_TOPICS`], [`MATCHER_TOPICS`]).
//! - `problem.rs`: what the rules find ([`LayoutProblem`]).
//! - `drift.rs`: the layout against a broker ([`TopicLayout::drift`], [`ActualTopic`], [`Drift`]).
//!
//! Rendering the layout as Strimzi resources is [`strimzi`](crate::strimzi).

mod check;
mod drift;
mod load;
mod model;
mod problem;
mod scalar;

pub use check::{MATCHER_TOPICS, REQUIRED_TOPICS};
pub use drift::{ActualTopic, Drift};
pub use load::{load_topics, parse_topics};
pub use model::{CleanupPolicy, Partitioner, TopicLayout, TopicSpec, ValueFormat, ValueSpec};
pub use problem::LayoutProblem;
pub(crate) use problem::describe_problems;

#[cfg(test)]
mod tests;
