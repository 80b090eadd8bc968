//! Exact sums, comparisons and rounded quotients of [`Decimal`]s, in 128 bits.
//!
//! A [`Decimal`] holds a 64-bit mantissa, so a sum of products of them (a turnover, an order's
//! fill notional) need not fit one. [`Wide`] keeps `mantissa × 10^-scale` in an `i128` with up to
//! [`MAX_WIDE_SCALE`] digits after the point, adds exactly (aligning scales), and divides with
//! half-even rounding to a chosen scale.
//!
//! Every operation is checked: `None` means the exact value does not fit, never a wrong value.
//! Going back to a [`Decimal`] is either exact ([`Wide::to_exact_decimal`]: `None` rather than
//! lose a digit) or explicitly rounded ([`Wide::to_decimal`], [`Wide::div_round`]).
//!
//! The downstream workers share this module: the trade recorder's average fill prices and
//! notionals, the market-data worker's candle volumes, turnovers and VWAPs. Integer arithmetic
//! only, like the rest of the engine.

use std::cmp::Ordering;

use super::{Decimal, MAX_SCALE};

/// Most digits after the point a [`Wide`] keeps (10^38 is the largest power of ten in an
/// `i128`).
pub const MAX_WIDE_SCALE: u8 = 38;

// The widest scale a product of two decimals reaches is 2 × 18 = 36: `Wide::product` never
// leaves the range.
const _: () = assert!(2 * MAX_SCALE <= MAX_WIDE_SCALE);

/// `10^e` as an `i128`, if it fits.
fn pow10(e: u32) -> Option<i128> {
    10_i128.checked_pow(e)
}

/// An exact decimal `mantissa × 10^-scale` with a 128-bit mantissa.
///
/// Equality is structural: `1.50` and `1.5` are different `Wide`s (as they are different
/// [`Decimal`]s), which is what the round-trip checks of exact conversions rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wide {
    mantissa: i128,
    scale: u8,
}

impl Wide {
    /// Zero (at scale 0).
    pub const ZERO: Wide = Wide {
        mantissa: 0,
        scale: 0,
    };

    /// The same value as `d`, at the same scale.
    pub fn of(d: Decimal) -> Wide {
        Wide {
            mantissa: i128::from(d.mantissa()),
            scale: d.scale(),
        }
    }

    /// `a × b`, exactly, at scale `a.scale() + b.scale()`: two 64-bit mantissas multiply within
    /// 127 bits and two scales of at most 18 add to at most 36.
    pub fn product(a: Decimal, b: Decimal) -> Wide {
        Wide {
            mantissa: i128::from(a.mantissa()) * i128::from(b.mantissa()),
            scale: a.scale() + b.scale(),
        }
    }

    /// The digits, as an integer.
    pub const fn mantissa(self) -> i128 {
        self.mantissa
    }

    /// Digits after the decimal point.
    pub const fn scale(self) -> u8 {
        self.scale
    }

    /// True when the value is zero.
    pub const fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    /// The mantissa at a larger (or equal) scale.
    fn at_scale(self, scale: u8) -> Option<i128> {
        let up = scale.checked_sub(self.scale)?;
        self.mantissa.checked_mul(pow10(u32::from(up))?)
    }

    /// `self + other`, exactly, at the larger of the two scales; `None` when it does not fit.
    pub fn checked_add(self, other: Wide) -> Option<Wide> {
        let scale = self.scale.max(other.scale);
        let mantissa = self.at_scale(scale)?.checked_add(other.at_scale(scale)?)?;
        Some(Wide { mantissa, scale })
    }

    /// `self / den` rounded half-even to `scale` digits, as a [`Decimal`]; `None` when `den` is
    /// zero, `scale` is above [`MAX_SCALE`] or the result does not fit.
    pub fn div_round(self, den: Wide, scale: u8) -> Option<Decimal> {
        if den.mantissa == 0 || scale > MAX_SCALE {
            return None;
        }
        // self / den × 10^scale = self.m × 10^(scale + den.s − self.s) / den.m
        let e = i32::from(scale) + i32::from(den.scale) - i32::from(self.scale);
        let (num, div) = if e >= 0 {
            (
                self.mantissa.checked_mul(pow10(e.unsigned_abs())?)?,
                den.mantissa,
            )
        } else {
            (
                self.mantissa,
                den.mantissa.checked_mul(pow10(e.unsigned_abs())?)?,
            )
        };
        let q = div_half_even(num, div)?;
        Some(Decimal::new(i64::try_from(q).ok()?, scale))
    }

    /// The value as a [`Decimal`] at its own scale, or `None` when it does not fit there (a
    /// mantissa beyond 64 bits, or a scale above [`MAX_SCALE`]). Never rounds: for quantities
    /// and sums that must stay exact.
    pub fn to_exact_decimal(self) -> Option<Decimal> {
        if self.scale > MAX_SCALE {
            return None;
        }
        let mantissa = i64::try_from(self.mantissa).ok()?;
        Some(Decimal::new(mantissa, self.scale))
    }

    /// The value as a [`Decimal`] at its own scale when that fits; otherwise rounded half-even
    /// to the most digits that fit (so a sum that outgrows 64 bits loses its last digits rather
    /// than failing). `None` only when even the integer part does not fit.
    pub fn to_decimal(self) -> Option<Decimal> {
        if let Some(d) = self.to_exact_decimal() {
            return Some(d);
        }
        let one = Wide {
            mantissa: 1,
            scale: 0,
        };
        (0..=self.scale.min(MAX_SCALE))
            .rev()
            .find_map(|scale| self.div_round(one, scale))
    }
}

/// Compares two decimals by value (`1.50` equals `1.5`). Exact: a 64-bit mantissa at up to 18
/// more digits of scale fits in 128 bits.
pub fn cmp(a: Decimal, b: Decimal) -> Ordering {
    let scale = a.scale().max(b.scale());
    let at = |d: Decimal| i128::from(d.mantissa()) * 10_i128.pow(u32::from(scale - d.scale()));
    at(a).cmp(&at(b))
}

/// `num / den` rounded to the nearest integer, ties to even; `None` when `den` is zero or the
/// quotient overflows.
pub fn div_half_even(num: i128, den: i128) -> Option<i128> {
    if den == 0 {
        return None;
    }
    let negative = (num < 0) != (den < 0);
    let (a, b) = (num.unsigned_abs(), den.unsigned_abs());
    let (mut q, r) = (a / b, a % b);
    // r < b ≤ 2^127, so 2r fits in a u128.
    match (2 * r).cmp(&b) {
        Ordering::Greater => q += 1,
        Ordering::Equal if q % 2 == 1 => q += 1,
        _ => {}
    }
    let q = i128::try_from(q).ok()?;
    Some(if negative { -q } else { q })
}

/// The scale an average price (an order's average fill price, a candle's VWAP) is rounded to:
/// the price's digits + 4, at most [`MAX_SCALE`]. Monotone, so the scale for a set of prices is
/// the largest of their scales.
pub fn vwap_scale(price_scale: u8) -> u8 {
    price_scale.saturating_add(4).min(MAX_SCALE)
}

#[cfg(test)]
mod tests;
