//! Exact decimal numbers at the edges, converted to integer ticks and lots inside.
//!
//! Prices and quantities travel as decimal strings (`"100.50"`). A [`Decimal`] keeps the digits
//! exactly (a 64-bit mantissa and a base-10 scale); it never passes through a float. Conversion to
//! an instrument's integer units fails when the value is not a whole number of units.
//!
//! [`exact`] holds the 128-bit arithmetic the downstream workers need for sums of products
//! (turnover, fill notional) and rounded averages.

pub mod exact;

use std::fmt;
use std::str::FromStr;

/// Most digits after the decimal point.
pub const MAX_SCALE: u8 = 18;

const POW10: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// An exact decimal: `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    mantissa: i64,
    scale: u8,
}

/// Why a string is not a decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Nothing to parse.
    #[error("empty decimal")]
    Empty,
    /// A character other than digits, one leading `-` and one `.`.
    #[error("invalid character in decimal")]
    InvalidCharacter,
    /// More than [`MAX_SCALE`] fractional digits, or more digits than 64 bits hold.
    #[error("decimal has too many digits")]
    TooManyDigits,
}

impl Decimal {
    /// `mantissa × 10^-scale`; `scale` is capped at [`MAX_SCALE`].
    pub const fn new(mantissa: i64, scale: u8) -> Self {
        let scale = if scale > MAX_SCALE { MAX_SCALE } else { scale };
        Decimal { mantissa, scale }
    }

    /// A whole number.
    pub const fn from_int(v: i64) -> Self {
        Decimal {
            mantissa: v,
            scale: 0,
        }
    }

    /// The digits, as an integer.
    pub const fn mantissa(self) -> i64 {
        self.mantissa
    }

    /// Digits after the decimal point.
    pub const fn scale(self) -> u8 {
        self.scale
    }

    /// True when the value is above zero.
    pub const fn is_positive(self) -> bool {
        self.mantissa > 0
    }

    /// How many whole `unit`s make this value, or `None` when it is not a whole number of
    /// units (or the count does not fit in 64 bits). `unit` must be positive.
    #[inline]
    pub fn units_of(self, unit: Decimal) -> Option<i64> {
        // Fast path: both at the same scale (the common case: prices written with the tick's
        // digits) needs only 64-bit arithmetic.
        if self.scale == unit.scale {
            return (self.mantissa % unit.mantissa == 0).then(|| self.mantissa / unit.mantissa);
        }
        let (num, den) = if self.scale > unit.scale {
            let k = POW10[usize::from(self.scale - unit.scale)] as i128;
            (self.mantissa as i128, unit.mantissa as i128 * k)
        } else {
            let k = POW10[usize::from(unit.scale - self.scale)] as i128;
            (self.mantissa as i128 * k, unit.mantissa as i128)
        };
        if num % den != 0 {
            return None;
        }
        i64::try_from(num / den).ok()
    }

    /// `units × unit`, exactly; `None` on overflow.
    pub fn from_units(units: i64, unit: Decimal) -> Option<Decimal> {
        units
            .checked_mul(unit.mantissa)
            .map(|m| Decimal::new(m, unit.scale))
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if digits.is_empty() {
            return Err(DecimalError::Empty);
        }
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(DecimalError::InvalidCharacter);
        }
        if frac_part.len() > usize::from(MAX_SCALE) {
            return Err(DecimalError::TooManyDigits);
        }
        let mut mantissa: i64 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            if !b.is_ascii_digit() {
                return Err(DecimalError::InvalidCharacter);
            }
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(b - b'0')))
                .ok_or(DecimalError::TooManyDigits)?;
        }
        if negative {
            mantissa = -mantissa;
        }
        Ok(Decimal {
            mantissa,
            scale: frac_part.len() as u8,
        })
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.mantissa);
        }
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let abs = self.mantissa.unsigned_abs();
        let p = POW10[usize::from(self.scale)] as u64;
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / p,
            abs % p,
            width = usize::from(self.scale)
        )
    }
}

impl<'de> serde::Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Accept the plain scalar as text so an unquoted YAML `0.01` never becomes a float.
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests;
