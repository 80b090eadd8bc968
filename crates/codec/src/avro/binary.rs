//! Avro binary encoding of the types the schemas use: `put_*` write, [`Reader`] reads.

use tradestream_engine::{Decimal, OrderType, Request, Side, Tif};

use super::AvroError;

/// Appends a `long` (or `int`, enum index, union branch): zig-zag, then a base-128 varint.
pub(super) fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push(z as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends a `string` or `bytes`: length, then the bytes.
pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// Appends a decimal as a `string`, exactly as its `Display` writes it (`-`, the integer digits,
/// and with a scale `.` and `scale` fraction digits), without the formatting machinery: this is
/// most of the work of writing an event.
pub(super) fn put_decimal(out: &mut Vec<u8>, d: Decimal) {
    put_number(
        out,
        d.mantissa() < 0,
        d.mantissa().unsigned_abs(),
        d.scale(),
    );
}

/// `[-]abs × 10^-scale` as text; `scale` is at most 18.
pub(super) fn put_number(out: &mut Vec<u8>, negative: bool, abs: u64, scale: u8) {
    let mut buf = [b'0'; 24];
    let mut start = buf.len();
    let mut v = abs;
    loop {
        start -= 1;
        buf[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // At least one integer digit: `0.005`, not `.005` (the buffer is zero-filled).
    let scale = usize::from(scale.min(tradestream_engine::decimal::MAX_SCALE));
    start = start.min(buf.len() - scale - 1);
    let point = buf.len() - scale;
    let len = buf.len() - start + usize::from(scale > 0) + usize::from(negative);
    put_long(out, len as i64);
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[start..point]);
    if scale > 0 {
        out.push(b'.');
        out.extend_from_slice(&buf[point..]);
    }
}

pub(super) fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(u8::from(b));
}

/// Appends a `["null", T]` union: branch 0 for null, else branch 1 and the value.
pub(super) fn put_opt<T>(out: &mut Vec<u8>, v: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(2); // zig-zag 1
            put(out, v);
        }
    }
}

/// Reads the Avro binary types the schemas use, borrowing strings from the input. Every read
/// names its field, so errors say where the record went wrong.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn long(&mut self, field: &'static str) -> Result<i64, AvroError> {
        let mut z: u64 = 0;
        let mut shift = 0;
        loop {
            let (&b, rest) = self.0.split_first().ok_or(AvroError::Truncated)?;
            self.0 = rest;
            if shift == 63 && b & 0x7E != 0 {
                return Err(AvroError::decode(
                    field,
                    format_args!("long overflows 64 bits"),
                ));
            }
            z |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
            shift += 7;
            if shift > 63 {
                return Err(AvroError::decode(
                    field,
                    format_args!("long overflows 64 bits"),
                ));
            }
        }
    }

    pub(super) fn int(&mut self, field: &'static str) -> Result<i32, AvroError> {
        let v = self.long(field)?;
        i32::try_from(v).map_err(|_| AvroError::decode(field, format_args!("{v} overflows an int")))
    }

    pub(super) fn boolean(&mut self, field: &'static str) -> Result<bool, AvroError> {
        let (&b, rest) = self.0.split_first().ok_or(AvroError::Truncated)?;
        self.0 = rest;
        match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(AvroError::decode(
                field,
                format_args!("boolean byte {b:#04x}"),
            )),
        }
    }

    pub(super) fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], AvroError> {
        let len = self.long(field)?;
        let len = usize::try_from(len)
            .map_err(|_| AvroError::decode(field, format_args!("negative length {len}")))?;
        if len > self.0.len() {
            return Err(AvroError::Truncated);
        }
        let (b, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(b)
    }

    pub(super) fn str(&mut self, field: &'static str) -> Result<&'a str, AvroError> {
        std::str::from_utf8(self.bytes(field)?)
            .map_err(|_| AvroError::decode(field, format_args!("string is not UTF-8")))
    }

    /// An enum symbol's index (or a union branch), below `symbols`.
    pub(super) fn index(
        &mut self,
        field: &'static str,
        symbols: usize,
    ) -> Result<usize, AvroError> {
        let i = self.long(field)?;
        usize::try_from(i)
            .ok()
            .filter(|&i| i < symbols)
            .ok_or_else(|| {
                AvroError::decode(field, format_args!("index {i} out of range 0..{symbols}"))
            })
    }

    /// A `["null", T]` union.
    pub(super) fn opt<T>(
        &mut self,
        field: &'static str,
        read: impl FnOnce(&mut Self, &'static str) -> Result<T, AvroError>,
    ) -> Result<Option<T>, AvroError> {
        match self.index(field, 2)? {
            0 => Ok(None),
            _ => read(self, field).map(Some),
        }
    }

    /// Fails unless the whole body was read.
    pub(super) fn finish(&self) -> Result<(), AvroError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(AvroError::TrailingBytes(n)),
        }
    }
}

/// The schemas' enums: each Rust value's index is its position in the schema's `symbols`.
pub(super) trait AvroEnum: Sized + Copy {
    /// The symbols' count.
    const SYMBOLS: usize;
    /// The value's symbol index.
    fn index(self) -> i64;
    /// The value at a symbol index below [`Self::SYMBOLS`].
    fn from_index(i: usize) -> Self;
}

macro_rules! avro_enum {
    ($ty:ty { $($variant:path),+ $(,)? }) => {
        impl AvroEnum for $ty {
            const SYMBOLS: usize = [$(stringify!($variant)),+].len();

            fn index(self) -> i64 {
                let all = [$($variant),+];
                all.iter().position(|v| *v == self).unwrap_or_default() as i64
            }

            fn from_index(i: usize) -> Self {
                [$($variant),+][i]
            }
        }
    };
}

pub(super) use avro_enum;

avro_enum!(Side { Side::Buy, Side::Sell });
avro_enum!(OrderType { OrderType::Limit, OrderType::Market });
avro_enum!(Tif { Tif::Gtc, Tif::Ioc, Tif::Fok });
avro_enum!(Request { Request::New, Request::Cancel, Request::Replace, Request::Unknown });

pub(super) fn put_enum<E: AvroEnum>(out: &mut Vec<u8>, e: E) {
    put_long(out, e.index());
}

pub(super) fn read_enum<E: AvroEnum>(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<E, AvroError> {
    r.index(field, E::SYMBOLS).map(E::from_index)
}
