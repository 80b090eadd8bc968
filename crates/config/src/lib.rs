//! # tradestream-config
//!
//! Configuration files shared by every command.
//!
//! ## Layout
//! - [`load_instruments`]: `instruments.yaml`, the instruments an engine trades.
//! - [`topics`]: `topics.yaml`, the pipeline's Kafka topics ([`load_topics`], [`TopicLayout::check`],
//!   [`TopicLayout::drift`]).
//! - [`strimzi`]: the layout as Strimzi `KafkaTopic` resources (`tradestream topics render`).

use std::path::Path;

use serde::Deserialize;
use tradestream_engine::{InstrumentError, InstrumentSpec, Instruments};

pub mod strimzi;
pub mod topics;

pub use topics::{
    ActualTopic, CleanupPolicy, Drift, LayoutProblem, TopicLayout, TopicSpec, ValueFormat,
    ValueSpec, load_topics, parse_topics,
};

/// Why a configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The YAML error, with its location.
        source: serde_norway::Error,
    },
    /// An instrument is inconsistent.
    #[error("{path}: {source}")]
    Instrument {
        /// The file.
        path: String,
        /// What is wrong.
        source: InstrumentError,
    },
    /// The topic layout has problems; every one is listed.
    #[error("{path}: {}", topics::describe_problems(.problems))]
    Layout {
        /// The file.
        path: String,
        /// What is wrong, in [`TopicLayout::check`] order.
        problems: Vec<LayoutProblem>,
    },
}

/// The shape of `instruments.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct InstrumentsFile {
    /// Every instrument the engine trades, in a fixed order (snapshots record it).
    instruments: Vec<InstrumentSpec>,
}

/// Parses instruments from YAML text; `origin` names the source in errors.
pub fn parse_instruments(yaml: &str, origin: &str) -> Result<Instruments, ConfigError> {
    let file: InstrumentsFile =
        serde_norway::from_str(yaml).map_err(|source| ConfigError::Parse {
            path: origin.to_owned(),
            source,
        })?;
    Instruments::new(&file.instruments).map_err(|source| ConfigError::Instrument {
        path: origin.to_owned(),
        source,
    })
}

/// Reads and validates an instruments file.
pub fn load_instruments(path: &Path) -> Result<Instruments, ConfigError> {
    let origin = path.display().to_string();
    let yaml = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: origin.clone(),
        source,
    })?;
    parse_instruments(&yaml, &origin)
}

#[cfg(test)]
mod tests;
