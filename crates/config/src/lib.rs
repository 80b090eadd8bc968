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
mod tests {
    use super::*;
    use tradestream_engine::{Decimal, Price, Qty, Symbol};

    #[test]
    fn reads_quoted_and_unquoted_decimals_exactly() {
        let yaml = r#"
instruments:
  - symbol: BTC-USD
    tick-size: 0.01
    lot-size: "0.0001"
    min-qty: "0.001"
    max-price: 1000000
  - symbol: ETH-USD
    tick-size: "0.05"
    lot-size: 0.001
"#;
        let inst = parse_instruments(yaml, "test").unwrap();
        assert_eq!(inst.len(), 2);
        let btc = inst.get(&Symbol::new("BTC-USD").unwrap()).unwrap();
        assert_eq!(btc.tick_size, Decimal::new(1, 2));
        assert_eq!(btc.lot_size, Decimal::new(1, 4));
        assert_eq!(btc.min_qty, Qty(10));
        assert_eq!(btc.max_price, Price(100_000_000));
        let eth = inst.get(&Symbol::new("ETH-USD").unwrap()).unwrap();
        assert_eq!(eth.tick_size, Decimal::new(5, 2));
    }

    #[test]
    fn refuses_unknown_fields_and_bad_instruments() {
        let unknown =
            "instruments:\n  - symbol: X\n    tick-size: 1\n    lot-size: 1\n    tick: 2\n";
        let err = parse_instruments(unknown, "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
        let dup = "instruments:\n  - {symbol: X, tick-size: 1, lot-size: 1}\n  - {symbol: X, tick-size: 1, lot-size: 1}\n";
        let err = parse_instruments(dup, "f.yaml").unwrap_err().to_string();
        assert!(err.contains("configured twice"), "{err}");
        let off = "instruments:\n  - {symbol: X, tick-size: 0.5, lot-size: 1, max-price: 0.75}\n";
        let err = parse_instruments(off, "f.yaml").unwrap_err().to_string();
        assert!(err.contains("not a whole number of ticks"), "{err}");
        let zero = "instruments:\n  - {symbol: X, tick-size: 0, lot-size: 1}\n";
        let err = parse_instruments(zero, "f.yaml").unwrap_err().to_string();
        assert!(err.contains("must be positive"), "{err}");
    }

    #[test]
    fn reports_unreadable_files() {
        let err = load_instruments(Path::new("/nonexistent/instruments.yaml")).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot read /nonexistent/instruments.yaml")
        );
    }
}
