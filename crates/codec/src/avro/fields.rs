//! Fields read as text turned into the engine's names and decimals, errors naming the field.

use tradestream_engine::Decimal;

use super::AvroError;

pub(super) fn name_of<T>(
    field: &'static str,
    v: &str,
    f: fn(&str) -> Result<T, tradestream_engine::NameTooLong>,
) -> Result<T, AvroError> {
    f(v).map_err(|e| AvroError::field(field, e.to_string()))
}

pub(super) fn decimal_of(field: &'static str, v: &str) -> Result<Decimal, AvroError> {
    v.parse()
        .map_err(|e: tradestream_engine::decimal::DecimalError| {
            AvroError::field(field, e.to_string())
        })
}

pub(super) fn opt_decimal(
    field: &'static str,
    v: Option<&str>,
) -> Result<Option<Decimal>, AvroError> {
    v.map(|s| decimal_of(field, s)).transpose()
}
