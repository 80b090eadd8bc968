//! Instruments: what can be traded, and in which units.

use rustc_hash::FxHashMap;

use crate::decimal::Decimal;
use crate::event::RejectReason;
use crate::name::Symbol;
use crate::types::{Price, Qty};

/// One instrument as configured (e.g. an entry of `instruments.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InstrumentSpec {
    /// The symbol orders name, e.g. `BTC-USD`.
    pub symbol: String,
    /// Smallest price increment; every price is a whole number of ticks.
    pub tick_size: Decimal,
    /// Smallest quantity increment; every quantity is a whole number of lots.
    pub lot_size: Decimal,
    /// Smallest quantity of one order (a multiple of the lot), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_qty: Option<Decimal>,
    /// Largest quantity of one order, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_qty: Option<Decimal>,
    /// Lowest accepted limit price (price band), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_price: Option<Decimal>,
    /// Highest accepted limit price (price band), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<Decimal>,
}

/// Why an instrument configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    /// The symbol is empty or too long.
    #[error("instrument symbol {0:?} is empty or longer than 40 bytes")]
    BadSymbol(String),
    /// Two instruments share a symbol.
    #[error("instrument {0} is configured twice")]
    Duplicate(String),
    /// A tick or lot size that is zero or negative.
    #[error("instrument {symbol}: {field} must be positive")]
    NotPositive {
        /// The instrument.
        symbol: String,
        /// The offending field.
        field: &'static str,
    },
    /// A limit that is not a whole number of ticks or lots.
    #[error("instrument {symbol}: {field} is not a whole number of {unit}")]
    OffGrid {
        /// The instrument.
        symbol: String,
        /// The offending field.
        field: &'static str,
        /// `ticks` or `lots`.
        unit: &'static str,
    },
    /// A minimum above its maximum.
    #[error("instrument {symbol}: {field} minimum is above its maximum")]
    EmptyRange {
        /// The instrument.
        symbol: String,
        /// `qty` or `price`.
        field: &'static str,
    },
}

/// A validated instrument with its limits in integer units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// The symbol.
    pub symbol: Symbol,
    /// Price unit.
    pub tick_size: Decimal,
    /// Quantity unit.
    pub lot_size: Decimal,
    /// Smallest order quantity, in lots (at least 1).
    pub min_qty: Qty,
    /// Largest order quantity, in lots.
    pub max_qty: Qty,
    /// Lowest limit price, in ticks (at least 1).
    pub min_price: Price,
    /// Highest limit price, in ticks.
    pub max_price: Price,
}

impl Instrument {
    /// Validates a configured instrument.
    pub fn from_spec(spec: &InstrumentSpec) -> Result<Self, InstrumentError> {
        let name = || spec.symbol.clone();
        let symbol = Symbol::new(&spec.symbol)
            .ok()
            .filter(|s| !s.0.is_empty())
            .ok_or_else(|| InstrumentError::BadSymbol(name()))?;
        for (field, v) in [("tick-size", spec.tick_size), ("lot-size", spec.lot_size)] {
            if !v.is_positive() {
                return Err(InstrumentError::NotPositive {
                    symbol: name(),
                    field,
                });
            }
        }
        let units = |field: &'static str, v: Option<Decimal>, unit: Decimal, unit_name, default| {
            let Some(v) = v else { return Ok(default) };
            match v.units_of(unit) {
                Some(n) if n > 0 => Ok(n),
                Some(_) => Err(InstrumentError::NotPositive {
                    symbol: name(),
                    field,
                }),
                None => Err(InstrumentError::OffGrid {
                    symbol: name(),
                    field,
                    unit: unit_name,
                }),
            }
        };
        let min_qty = units("min-qty", spec.min_qty, spec.lot_size, "lots", 1)?;
        let max_qty = units("max-qty", spec.max_qty, spec.lot_size, "lots", i64::MAX)?;
        let min_price = units("min-price", spec.min_price, spec.tick_size, "ticks", 1)?;
        let max_price = units(
            "max-price",
            spec.max_price,
            spec.tick_size,
            "ticks",
            i64::MAX,
        )?;
        if min_qty > max_qty {
            return Err(InstrumentError::EmptyRange {
                symbol: name(),
                field: "qty",
            });
        }
        if min_price > max_price {
            return Err(InstrumentError::EmptyRange {
                symbol: name(),
                field: "price",
            });
        }
        Ok(Instrument {
            symbol,
            tick_size: spec.tick_size,
            lot_size: spec.lot_size,
            min_qty: Qty(min_qty as u64),
            max_qty: Qty(max_qty as u64),
            min_price: Price(min_price),
            max_price: Price(max_price),
        })
    }

    /// Converts a limit price to ticks, checking sign, tick grid and band.
    #[inline]
    pub fn price(&self, price: Decimal) -> Result<Price, RejectReason> {
        if !price.is_positive() {
            return Err(RejectReason::InvalidPrice);
        }
        let ticks = price
            .units_of(self.tick_size)
            .ok_or(RejectReason::PriceOffTick)?;
        if ticks < self.min_price.0 || ticks > self.max_price.0 {
            return Err(RejectReason::PriceOutOfBand);
        }
        Ok(Price(ticks))
    }

    /// Converts an order quantity to lots, checking sign, lot grid and limits.
    #[inline]
    pub fn qty(&self, qty: Decimal) -> Result<Qty, RejectReason> {
        let lots = self.open_qty(qty)?;
        if lots < self.min_qty {
            return Err(RejectReason::QuantityBelowMin);
        }
        Ok(lots)
    }

    /// Converts a replacement open quantity to lots: positive, on the lot grid, not above the
    /// maximum. The minimum does not apply, since a partly filled order may be below it.
    #[inline]
    pub fn open_qty(&self, qty: Decimal) -> Result<Qty, RejectReason> {
        if !qty.is_positive() {
            return Err(RejectReason::InvalidQuantity);
        }
        let lots = qty
            .units_of(self.lot_size)
            .ok_or(RejectReason::QuantityOffLot)?;
        let lots = Qty(lots as u64);
        if lots > self.max_qty {
            return Err(RejectReason::QuantityAboveMax);
        }
        Ok(lots)
    }

    /// A price in ticks as a decimal.
    pub fn price_decimal(&self, price: Price) -> Decimal {
        // Prices in the engine came from decimals of this instrument, so this cannot overflow;
        // saturate rather than panic should a caller pass something else.
        Decimal::from_units(price.0, self.tick_size).unwrap_or(Decimal::from_int(i64::MAX))
    }

    /// A quantity in lots as a decimal.
    pub fn qty_decimal(&self, qty: Qty) -> Decimal {
        i64::try_from(qty.0)
            .ok()
            .and_then(|q| Decimal::from_units(q, self.lot_size))
            .unwrap_or(Decimal::from_int(i64::MAX))
    }
}

/// The set of instruments one engine trades, looked up by symbol.
#[derive(Debug, Clone, Default)]
pub struct Instruments {
    list: Vec<Instrument>,
    by_symbol: FxHashMap<Symbol, usize>,
}

impl Instruments {
    /// Validates every spec; symbols must be unique.
    pub fn new(specs: &[InstrumentSpec]) -> Result<Self, InstrumentError> {
        let mut out = Instruments::default();
        for spec in specs {
            let inst = Instrument::from_spec(spec)?;
            if out.by_symbol.insert(inst.symbol, out.list.len()).is_some() {
                return Err(InstrumentError::Duplicate(spec.symbol.clone()));
            }
            out.list.push(inst);
        }
        Ok(out)
    }

    /// The instrument's index, if it is configured.
    #[inline]
    pub fn index(&self, symbol: &Symbol) -> Option<usize> {
        self.by_symbol.get(symbol).copied()
    }

    /// The instrument with this symbol, if it is configured.
    pub fn get(&self, symbol: &Symbol) -> Option<&Instrument> {
        self.index(symbol).map(|i| &self.list[i])
    }

    /// Instruments in configuration order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Instrument> {
        self.list.iter()
    }

    /// The instrument at `index` (configuration order).
    #[inline]
    pub fn at(&self, index: usize) -> &Instrument {
        &self.list[index]
    }

    /// How many instruments there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when none are configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}
