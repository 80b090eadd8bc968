//! CQL `decimal` ⇄ [`Decimal`]: a [`Decimal`]'s i64 mantissa is sent as the big-endian
//! two's-complement unscaled value (minimal length) with its scale, and read back exactly, so
//! `100.50` stays `100.50`, not `100.5`. Values that do not fit a [`Decimal`] (more than 64 bits,
//! a scale above 18) read back as [`StoreError::Corrupt`].

use scylla::frame::response::result::ColumnType;
use scylla::serialize::SerializationError;
use scylla::serialize::value::SerializeValue;
use scylla::serialize::writers::{CellWriter, WrittenCellProof};
use scylla::value::{CqlDecimal, CqlDecimalBorrowed};
use tradestream_engine::Decimal;
use tradestream_engine::decimal::MAX_SCALE;

use crate::{Result, StoreError};

/// A [`Decimal`] bound as a CQL `decimal`, without allocating.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CqlDec(pub(crate) Decimal);

impl SerializeValue for CqlDec {
    fn serialize<'b>(
        &self,
        typ: &ColumnType,
        writer: CellWriter<'b>,
    ) -> Result<WrittenCellProof<'b>, SerializationError> {
        let bytes = self.0.mantissa().to_be_bytes();
        CqlDecimalBorrowed::from_signed_be_bytes_slice_and_exponent(
            minimal_twos_complement(&bytes),
            i32::from(self.0.scale()),
        )
        .serialize(typ, writer)
    }
}

/// `bytes` without the leading bytes that only repeat the sign (at least one byte stays).
fn minimal_twos_complement(mut bytes: &[u8]) -> &[u8] {
    while let [first, second, ..] = bytes {
        let redundant =
            (*first == 0x00 && second & 0x80 == 0) || (*first == 0xff && second & 0x80 != 0);
        if !redundant {
            break;
        }
        bytes = &bytes[1..];
    }
    bytes
}

/// A stored `decimal` back as a [`Decimal`], or why it does not fit one.
pub(crate) fn decimal_from_cql(d: &CqlDecimal) -> std::result::Result<Decimal, String> {
    let (bytes, scale) = d.as_signed_be_bytes_slice_and_exponent();
    let bytes = minimal_twos_complement(bytes);
    let Some(&first) = bytes.first() else {
        return Err("empty decimal".to_owned());
    };
    if bytes.len() > 8 {
        return Err(format!(
            "unscaled value of {} bytes exceeds 64 bits",
            bytes.len()
        ));
    }
    let fill = if first & 0x80 != 0 { 0xff } else { 0x00 };
    let mut be = [fill; 8];
    be[8 - bytes.len()..].copy_from_slice(bytes);
    let mantissa = i64::from_be_bytes(be);
    if scale < 0 {
        // 12E+3: a whole number, written with scale 0.
        let mantissa = 10i64
            .checked_pow(scale.unsigned_abs())
            .and_then(|p| mantissa.checked_mul(p))
            .ok_or_else(|| format!("{mantissa}E+{} exceeds 64 bits", scale.unsigned_abs()))?;
        return Ok(Decimal::new(mantissa, 0));
    }
    match u8::try_from(scale) {
        Ok(scale) if scale <= MAX_SCALE => Ok(Decimal::new(mantissa, scale)),
        _ => Err(format!("scale {scale} exceeds {MAX_SCALE}")),
    }
}

pub(crate) fn dec(d: &CqlDecimal, table: &'static str, column: &str) -> Result<Decimal> {
    decimal_from_cql(d).map_err(|detail| StoreError::Corrupt {
        table,
        detail: format!("{column}: {detail}"),
    })
}

pub(crate) fn opt_dec(
    d: &Option<CqlDecimal>,
    table: &'static str,
    column: &str,
) -> Result<Option<Decimal>> {
    d.as_ref().map(|d| dec(d, table, column)).transpose()
}

#[cfg(test)]
mod tests;
