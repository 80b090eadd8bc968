//! Counters that describe themselves.
//!
//! Every worker keeps a struct of `AtomicU64` counters that the demo, the tests and
//! `tradestream run` read. [`stats!`](crate::stats!) declares one — each counter with its doc
//! line — and implements [`Stats`] for it, so printing a worker's counters iterates over
//! [`Stats::counters`] instead of naming each field, and a counter added to the declaration is
//! printed everywhere.

use std::fmt::Write as _;

/// A worker's counters, by name, in declaration order.
pub trait Stats {
    /// Each counter's name (its field name) and current value.
    fn counters(&self) -> Vec<(&'static str, u64)>;

    /// `name=value` pairs separated by spaces, for a log line.
    fn summary(&self) -> String {
        let mut out = String::new();
        for (name, value) in self.counters() {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{name}={value}");
        }
        out
    }

    /// One JSON object: `{"worker": worker, <counter>: <value>, …}` (for scripts and tests).
    fn to_json(&self, worker: &str) -> serde_json::Value {
        let mut line = serde_json::Map::new();
        line.insert("worker".into(), worker.into());
        for (name, value) in self.counters() {
            line.insert(name.into(), value.into());
        }
        serde_json::Value::Object(line)
    }
}

/// Declares a struct of `pub` `AtomicU64` counters (with `Debug` and `Default`) and implements
/// [`Stats`] for it; each counter takes its doc comment with it.
///
/// ```
/// tradestream_runtime::stats! {
///     /// What the worker did.
///     pub struct ExampleStats {
///         /// Input records.
///         records_in,
///         /// Records sent to dead letters.
///         dead_letters,
///     }
/// }
/// use tradestream_runtime::stats::Stats;
/// let stats = ExampleStats::default();
/// stats.records_in.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
/// assert_eq!(stats.counters(), [("records_in", 2), ("dead_letters", 0)]);
/// assert_eq!(stats.summary(), "records_in=2 dead_letters=0");
/// ```
#[macro_export]
macro_rules! stats {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$counter_meta:meta])* $counter:ident ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        $vis struct $name {
            $( $(#[$counter_meta])* pub $counter: ::std::sync::atomic::AtomicU64, )*
        }

        impl $crate::stats::Stats for $name {
            fn counters(&self) -> ::std::vec::Vec<(&'static str, u64)> {
                ::std::vec![$(
                    (
                        ::std::stringify!($counter),
                        self.$counter.load(::std::sync::atomic::Ordering::Relaxed),
                    ),
                )*]
            }
        }
    };
}
