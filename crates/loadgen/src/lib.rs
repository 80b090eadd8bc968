//! # tradestream-loadgen
//!
//! A seeded order flow that looks like a venue's: mostly limit orders near the touch, cancels and
//! replaces of live orders (sent by their owners), some IOC, FOK and market orders, and (optionally) a share of bad
//! records. The same seed always gives the same flow, so runs can be compared.
//!
//! ## Layout
//! - [`OrderFlow`]: the generator; [`OrderFlow::next_line`] gives one JSON command line
//!   (the `orders` topic's JSON contract) and its key (the symbol);
//!   [`OrderFlow::next_line_at`] stamps it with a clock reading (for a live topic).
//! - [`FlowConfig`]: symbols, mix and seed.
//! - [`latency`]: the end-to-end latency a client sees (order timestamp → outcome readable on
//!   the output topic), measured by a reader of its own; the demo and the benches use it.

pub mod latency;

use tradestream_engine::Instrument;

/// A splitmix64 generator: tiny, fast, and the same everywhere.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `per_mille`/1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// What the flow looks like.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Seed: the same seed gives the same flow.
    pub seed: u64,
    /// Bad records per thousand (invalid JSON, wrong types, oversized); 0 for none.
    pub poison_per_mille: u64,
    /// First event time (ms); each command adds one millisecond.
    pub start_ts: i64,
    /// Write `ts` into each command; without it consumers use the record timestamp.
    pub with_ts: bool,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            seed: 42,
            poison_per_mille: 0,
            start_ts: 1_732_900_000_000,
            with_ts: true,
        }
    }
}

/// Per-symbol generator state.
#[derive(Debug, Clone)]
struct SymbolFlow {
    symbol: String,
    /// Mid price, in ticks.
    mid: i64,
    tick: tradestream_engine::Decimal,
    lot: tradestream_engine::Decimal,
    min_lots: i64,
    /// Orders this flow believes may be live (id, owner's account number); cancels and replaces
    /// pick from them and are sent by the owner.
    live: Vec<(u64, u64)>,
}

/// The wall clock in milliseconds since the epoch, for [`OrderFlow::next_line_at`] (0 if the
/// clock is before 1970).
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The generator.
#[derive(Debug, Clone)]
pub struct OrderFlow {
    rng: Rng,
    symbols: Vec<SymbolFlow>,
    next_id: u64,
    ts: i64,
    with_ts: bool,
    poison_per_mille: u64,
}

/// Cap on the ids remembered per symbol; old ones are forgotten (they may have filled anyway).
const LIVE_CAP: usize = 2_000;

impl OrderFlow {
    /// A flow over `instruments` (at least one).
    pub fn new<'a>(
        instruments: impl IntoIterator<Item = &'a Instrument>,
        cfg: &FlowConfig,
    ) -> Self {
        let symbols = instruments
            .into_iter()
            .map(|i| {
                // Start mid-band at a round price: 100 units when the band allows it.
                let hundred = tradestream_engine::Decimal::from_int(100)
                    .units_of(i.tick_size)
                    .unwrap_or(i.min_price.0);
                let mid = hundred.clamp(
                    i.min_price.0 + 1_000,
                    (i.max_price.0 - 1_000).max(i.min_price.0 + 1_000),
                );
                SymbolFlow {
                    symbol: i.symbol.to_string(),
                    mid,
                    tick: i.tick_size,
                    lot: i.lot_size,
                    min_lots: i.min_qty.0 as i64,
                    live: Vec::new(),
                }
            })
            .collect();
        OrderFlow {
            rng: Rng(cfg.seed),
            symbols,
            next_id: 1,
            ts: cfg.start_ts,
            with_ts: cfg.with_ts,
            poison_per_mille: cfg.poison_per_mille,
        }
    }

    fn price(s: &SymbolFlow, ticks: i64) -> String {
        tradestream_engine::Decimal::from_units(ticks.max(1), s.tick)
            .map(|d| d.to_string())
            .unwrap_or_else(|| "1".into())
    }

    fn qty(s: &SymbolFlow, lots: i64) -> String {
        tradestream_engine::Decimal::from_units(lots.max(s.min_lots).max(1), s.lot)
            .map(|d| d.to_string())
            .unwrap_or_else(|| "1".into())
    }

    /// [`Self::next_line`] stamped with a clock reading `now_ms` instead of one millisecond after
    /// the previous command (never before the previous stamp: a clock stepped back repeats it).
    /// A producer writing to a live `orders` topic stamps with the wall clock: the matcher
    /// rejects a `ts` too far from the broker's timestamp (`bad_timestamp`), and a stamp ahead
    /// of the broker's holds back the candles' watermark. The rest of the flow depends on the
    /// seed only.
    pub fn next_line_at(&mut self, now_ms: i64) -> (String, String, bool) {
        self.ts = self.ts.max(now_ms);
        self.line()
    }

    /// The next command as one JSON line (no newline), with its key (the symbol), and whether it
    /// is a deliberately bad record.
    pub fn next_line(&mut self) -> (String, String, bool) {
        self.ts += 1;
        self.line()
    }

    /// The next command, stamped `self.ts`.
    fn line(&mut self) -> (String, String, bool) {
        let ts = self.ts;
        let si = self.rng.below(self.symbols.len() as u64) as usize;
        if self.poison_per_mille > 0 && self.rng.chance(self.poison_per_mille) {
            let key = self.symbols[si].symbol.clone();
            return (self.poison(&key, ts), key, true);
        }
        let roll = self.rng.below(100);
        let (r1, r2, r3) = (self.rng.next(), self.rng.next(), self.rng.next());
        let s = &mut self.symbols[si];
        // The mid drifts slowly so the book moves.
        s.mid = (s.mid + (r3 % 3) as i64 - 1).max(1_000);
        let symbol = s.symbol.clone();
        let line = if roll < 15 && !s.live.is_empty() {
            let (id, owner) = s.live.swap_remove((r1 % s.live.len() as u64) as usize);
            format!(
                r#"{{"type":"cancel","order_id":"o-{id}","account":"acct-{owner}","symbol":"{symbol}","ts":{ts}}}"#
            )
        } else if roll < 35 && !s.live.is_empty() {
            let (id, owner) = s.live[(r1 % s.live.len() as u64) as usize];
            let offset = (r2 % 21) as i64 - 10;
            let price = Self::price(s, s.mid + offset);
            if r2 % 4 == 0 {
                let qty = Self::qty(s, 1 + (r3 % 10) as i64);
                format!(
                    r#"{{"type":"replace","order_id":"o-{id}","account":"acct-{owner}","symbol":"{symbol}","price":"{price}","qty":"{qty}","ts":{ts}}}"#
                )
            } else {
                format!(
                    r#"{{"type":"replace","order_id":"o-{id}","account":"acct-{owner}","symbol":"{symbol}","price":"{price}","ts":{ts}}}"#
                )
            }
        } else {
            let id = self.next_id;
            self.next_id += 1;
            let buy = r1 & 1 == 0;
            let side = if buy { "buy" } else { "sell" };
            let owner = r2 % 50;
            let account = format!("acct-{owner}");
            let lots = 1 + (r3 % 20) as i64;
            let qty = Self::qty(s, lots);
            let kind = r2 % 100;
            if kind < 4 {
                let tif = if kind < 2 { "ioc" } else { "fok" };
                format!(
                    r#"{{"type":"new","order_id":"o-{id}","account":"{account}","symbol":"{symbol}","side":"{side}","order_type":"market","qty":"{qty}","tif":"{tif}","ts":{ts}}}"#
                )
            } else {
                // Passive orders rest a few ticks from the mid; aggressive ones cross it.
                let aggressive = kind < 25;
                let depth = (r1 >> 8) % 15;
                let offset = if aggressive {
                    -((depth % 5) as i64)
                } else {
                    depth as i64 + 1
                };
                let ticks = if buy { s.mid - offset } else { s.mid + offset };
                let price = Self::price(s, ticks);
                let tif = match kind {
                    4..=9 => "ioc",
                    10..=11 => "fok",
                    _ => "gtc",
                };
                let post_only = tif == "gtc" && !aggressive && kind % 10 == 0;
                if tif == "gtc" {
                    s.live.push((id, owner));
                    if s.live.len() > LIVE_CAP {
                        s.live.swap_remove(0);
                    }
                }
                format!(
                    r#"{{"type":"new","order_id":"o-{id}","account":"{account}","symbol":"{symbol}","side":"{side}","order_type":"limit","price":"{price}","qty":"{qty}","tif":"{tif}","post_only":{post_only},"ts":{ts}}}"#
                )
            }
        };
        let line = if self.with_ts {
            line
        } else {
            line.replace(&format!(r#","ts":{ts}}}"#), "}")
        };
        (line, symbol, false)
    }

    fn poison(&mut self, symbol: &str, ts: i64) -> String {
        match self.rng.below(4) {
            0 => format!(r#"{{"type":"new","order_id":"bad-{ts}","symbol":"{symbol}""#),
            1 => format!(
                r#"{{"type":"new","order_id":"bad-{ts}","account":"a","symbol":"{symbol}","side":"buy","order_type":"limit","price":100,"qty":"1","tif":"gtc","ts":{ts}}}"#
            ),
            2 => format!("not json at all {ts}"),
            _ => format!(
                r#"{{"type":"cancel","order_id":"bad-{ts}","account":"a","symbol":"{symbol}","ts":{ts},"pad":"{}"}}"#,
                "x".repeat(70 * 1024)
            ),
        }
    }
}

#[cfg(test)]
mod tests;
