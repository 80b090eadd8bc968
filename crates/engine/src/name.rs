//! Inline, fixed-capacity identifiers: order ids, accounts and symbols.
//!
//! Identifiers arrive as strings (`"o-1"`, a UUID, `"BTC-USD"`). Storing them inline keeps every
//! order node and event `Copy`-sized with no heap allocation per command, and lets the id index
//! hash a short byte slice. The capacity (40 bytes) fits a UUID (36) with room to spare; longer
//! identifiers are refused at the edge with a clear error rather than truncated.

use std::fmt;
use std::hash::{Hash, Hasher};

/// Most bytes an identifier may have.
pub const NAME_CAPACITY: usize = 40;

/// An identifier longer than [`NAME_CAPACITY`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("identifier is {len} bytes long; at most {NAME_CAPACITY} are allowed")]
pub struct NameTooLong {
    /// Length of the refused identifier, in bytes.
    pub len: usize,
}

/// A UTF-8 string of at most [`NAME_CAPACITY`] bytes, stored inline.
///
/// Every constructor zero-fills the bytes past `len`, so two names are equal exactly when their
/// lengths and all their bytes are: [`PartialEq`] compares whole words, without a `memcmp` call
/// (the id index compares an id on every lookup).
#[derive(Clone, Copy)]
pub struct Name {
    len: u8,
    bytes: [u8; NAME_CAPACITY],
}

/// Words of 8 bytes in a name's storage.
const NAME_WORDS: usize = NAME_CAPACITY / 8;
const _: () = assert!(
    NAME_CAPACITY.is_multiple_of(8),
    "a name's storage is whole words"
);

impl Name {
    /// The empty name, used where a malformed command carried no identifier.
    pub const EMPTY: Name = Name {
        len: 0,
        bytes: [0; NAME_CAPACITY],
    };

    /// Copies `s` inline, or refuses it when it is too long.
    pub fn new(s: &str) -> Result<Self, NameTooLong> {
        let src = s.as_bytes();
        if src.len() > NAME_CAPACITY {
            return Err(NameTooLong { len: src.len() });
        }
        let mut bytes = [0; NAME_CAPACITY];
        bytes[..src.len()].copy_from_slice(src);
        Ok(Name {
            len: src.len() as u8,
            bytes,
        })
    }

    /// The identifier as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ever built from a `&str` (or decoded and checked in `from_utf8`), so the bytes
        // are valid UTF-8 cut on a character boundary.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The identifier's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Builds a name from bytes that must be UTF-8 (used when decoding snapshots).
    pub(crate) fn from_utf8(bytes: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(bytes).ok()?;
        Name::new(s).ok()
    }

    /// True for the empty name.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole storage as words (the tail past `len` is zero).
    #[inline]
    fn words(&self) -> [u64; NAME_WORDS] {
        std::array::from_fn(|i| {
            let word = &self.bytes[i * 8..i * 8 + 8];
            u64::from_ne_bytes(word.try_into().unwrap_or_default())
        })
    }
}

impl PartialEq for Name {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.words(), other.words());
        let differ = a.iter().zip(&b).fold(0, |acc, (x, y)| acc | (x ^ y));
        self.len == other.len && differ == 0
    }
}

impl Eq for Name {}

impl Hash for Name {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Only the used bytes: the tail is always zero and hashing it would cost time.
        state.write(self.as_bytes());
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! name_newtype {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(pub Name);

        impl $ty {
            /// Copies `s` inline, or refuses it when it is too long.
            pub fn new(s: &str) -> Result<Self, NameTooLong> {
                Name::new(s).map(Self)
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// The identifier's bytes (no UTF-8 check, unlike [`Self::as_str`]).
            pub fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }

            /// True for the empty identifier.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

name_newtype!(
    /// A client-chosen order identifier, unique among the live orders of one book.
    OrderId
);
name_newtype!(
    /// The account an order belongs to.
    Account
);
name_newtype!(
    /// An instrument's symbol, e.g. `BTC-USD`.
    Symbol
);

#[cfg(test)]
mod tests;
