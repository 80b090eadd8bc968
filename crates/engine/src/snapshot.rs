//! Snapshot, restore and state hash.
//!
//! A snapshot is the engine's logical state in a canonical binary form: the next sequence number,
//! and per instrument (configuration order) its units and its resting orders, bids best to worst
//! then asks best to worst, queue order within a level. Internal layout (slab slots, free lists,
//! hash-map order) never reaches it, so two engines in the same logical state give the same bytes
//! and the same [`Engine::state_hash`] whatever book they use.
//!
//! Layout (little-endian): `b"TSE1"`, `u16` version, `u64` next seq, `u32` instruments, then per
//! instrument: symbol (`u8` length + bytes), tick and lot (`i64` mantissa + `u8` scale each),
//! `u64` order count, and per order: id, account (`u8` length + bytes each), `u8` side,
//! `i64` price, `u64` open quantity, `u8` post-only.

use crate::book::{Book, Resting};
use crate::decimal::Decimal;
use crate::engine::Engine;
use crate::instrument::Instruments;
use crate::name::{Account, Name, OrderId};
use crate::types::{Price, Qty, Side};

const MAGIC: &[u8; 4] = b"TSE1";
const VERSION: u16 = 1;

/// Why a snapshot cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Not a snapshot of this engine.
    #[error("not an engine snapshot (bad magic)")]
    BadMagic,
    /// Written by a version this build cannot read.
    #[error("snapshot version {0} is not supported (this build reads {VERSION})")]
    UnsupportedVersion(u16),
    /// Ends early.
    #[error("snapshot is truncated")]
    Truncated,
    /// Bytes after the last instrument.
    #[error("snapshot has {0} trailing bytes")]
    TrailingBytes(usize),
    /// The configured instruments differ from the snapshot's (symbols, order, tick or lot).
    #[error("snapshot instrument {index} is {found}, but the configuration has {expected}")]
    InstrumentMismatch {
        /// Position in configuration order.
        index: usize,
        /// What the snapshot holds.
        found: String,
        /// What the configuration holds.
        expected: String,
    },
    /// A value that cannot occur in a valid state.
    #[error("corrupt snapshot: {0}")]
    Corrupt(&'static str),
}

/// 64-bit FNV-1a: small, stable across platforms and releases (it is part of the state hash's
/// definition), not cryptographic.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn put_name(out: &mut Vec<u8>, n: &Name) {
    out.push(n.as_bytes().len() as u8);
    out.extend_from_slice(n.as_bytes());
}

fn put_decimal(out: &mut Vec<u8>, d: Decimal) {
    out.extend_from_slice(&d.mantissa().to_le_bytes());
    out.push(d.scale());
}

impl<B: Book> Engine<B> {
    /// The engine's state in canonical form (see the module documentation).
    pub fn snapshot(&self) -> Vec<u8> {
        let orders: usize = self.slots.iter().map(|s| s.book.len()).sum();
        let mut out = Vec::with_capacity(32 + orders * 100);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.next_seq.to_le_bytes());
        out.extend_from_slice(&(self.instruments.len() as u32).to_le_bytes());
        for (inst, slot) in self.instruments.iter().zip(&self.slots) {
            put_name(&mut out, &inst.symbol.0);
            put_decimal(&mut out, inst.tick_size);
            put_decimal(&mut out, inst.lot_size);
            out.extend_from_slice(&(slot.book.len() as u64).to_le_bytes());
            slot.book.for_each(|o| {
                put_name(&mut out, &o.id.0);
                put_name(&mut out, &o.account.0);
                out.push(match o.side {
                    Side::Buy => 0,
                    Side::Sell => 1,
                });
                out.extend_from_slice(&o.price.0.to_le_bytes());
                out.extend_from_slice(&o.open.0.to_le_bytes());
                out.push(u8::from(o.post_only));
            });
        }
        out
    }

    /// A hash of the logical state ([`fnv1a64`] of [`Engine::snapshot`]). Equal hashes after
    /// the same commands, whether applied in one run or across a snapshot and restore.
    pub fn state_hash(&self) -> u64 {
        fnv1a64(&self.snapshot())
    }

    /// Rebuilds an engine from a snapshot. `instruments` must list the same symbols, in the same
    /// order, with the same tick and lot sizes; other limits may differ (they apply to new
    /// commands only).
    pub fn restore(instruments: Instruments, bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = u16::from_le_bytes(r.array()?);
        if version != VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let next_seq = r.u64()?;
        if next_seq == 0 {
            return Err(SnapshotError::Corrupt("sequence number zero"));
        }
        let count = u32::from_le_bytes(r.array()?) as usize;
        let mut engine = Engine::<B>::new(instruments);
        engine.next_seq = next_seq;
        if count != engine.instruments.len() {
            return Err(SnapshotError::InstrumentMismatch {
                index: count.min(engine.instruments.len()),
                found: format!("{count} instruments"),
                expected: format!("{} instruments", engine.instruments.len()),
            });
        }
        for index in 0..count {
            let symbol = r.name()?;
            let tick = r.decimal()?;
            let lot = r.decimal()?;
            let inst = engine.instruments.at(index);
            if symbol != inst.symbol.0 || tick != inst.tick_size || lot != inst.lot_size {
                return Err(SnapshotError::InstrumentMismatch {
                    index,
                    found: format!("{symbol} tick {tick} lot {lot}"),
                    expected: format!(
                        "{} tick {} lot {}",
                        inst.symbol, inst.tick_size, inst.lot_size
                    ),
                });
            }
            let orders = r.u64()?;
            for _ in 0..orders {
                let order = r.order()?;
                if engine.is_live(index, &order.id) {
                    return Err(SnapshotError::Corrupt("order id twice in one book"));
                }
                engine.restore_order(index, order);
            }
            let book = engine.book(index);
            if let (Some(bid), Some(ask)) = (book.best(Side::Buy), book.best(Side::Sell))
                && bid.price >= ask.price
            {
                return Err(SnapshotError::Corrupt("crossed book"));
            }
        }
        if r.pos != bytes.len() {
            return Err(SnapshotError::TrailingBytes(bytes.len() - r.pos));
        }
        Ok(engine)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self.pos.checked_add(n).ok_or(SnapshotError::Truncated)?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or(SnapshotError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn name(&mut self) -> Result<Name, SnapshotError> {
        let len = usize::from(self.u8()?);
        Name::from_utf8(self.take(len)?).ok_or(SnapshotError::Corrupt("identifier"))
    }

    fn decimal(&mut self) -> Result<Decimal, SnapshotError> {
        let mantissa = self.i64()?;
        Ok(Decimal::new(mantissa, self.u8()?))
    }

    fn order(&mut self) -> Result<Resting, SnapshotError> {
        let id = OrderId(self.name()?);
        let account = Account(self.name()?);
        let side = match self.u8()? {
            0 => Side::Buy,
            1 => Side::Sell,
            _ => return Err(SnapshotError::Corrupt("side")),
        };
        let price = Price(self.i64()?);
        let open = Qty(self.u64()?);
        let post_only = match self.u8()? {
            0 => false,
            1 => true,
            _ => return Err(SnapshotError::Corrupt("post-only flag")),
        };
        if price.0 <= 0 || open.is_zero() {
            return Err(SnapshotError::Corrupt("non-positive price or quantity"));
        }
        Ok(Resting {
            id,
            account,
            side,
            price,
            open,
            post_only,
        })
    }
}
