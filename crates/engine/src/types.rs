//! Integer domain types: prices in ticks, quantities in lots, sequence numbers.

use std::fmt;

/// A price in whole ticks of its instrument. Always positive on a resting order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(pub i64);

/// A quantity in whole lots of its instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Qty(pub u64);

/// A per-engine event sequence number: contiguous, starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl Qty {
    /// No quantity.
    pub const ZERO: Qty = Qty(0);

    /// True when nothing is left.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Bid.
    Buy,
    /// Ask.
    Sell,
}

impl Side {
    /// The other side: the one this side's orders trade against.
    pub const fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// True when an order on this side at `price` would trade with a resting order at `resting`.
    pub fn crosses(self, price: Price, resting: Price) -> bool {
        match self {
            Side::Buy => price >= resting,
            Side::Sell => price <= resting,
        }
    }

    /// The contract's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limit or market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// Trades at its price or better; may rest.
    Limit,
    /// Trades at any price; never rests.
    Market,
}

impl OrderType {
    /// The contract's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderType::Limit => "limit",
            OrderType::Market => "market",
        }
    }
}

/// Time in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tif {
    /// Good till cancelled: the remainder rests.
    Gtc,
    /// Immediate or cancel: the remainder expires.
    Ioc,
    /// Fill or kill: fills completely at once, or expires whole without trading.
    Fok,
}

impl Tif {
    /// The contract's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tif::Gtc => "gtc",
            Tif::Ioc => "ioc",
            Tif::Fok => "fok",
        }
    }
}
