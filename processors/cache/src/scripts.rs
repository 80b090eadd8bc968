//! The Lua scripts every write goes through (`EVALSHA`): each compares versions and writes in
//! one atomic step, so a replayed or older row never overwrites a newer one, whatever order the
//! writes of several workers (or a replay) land in.
//!
//! A row's version is its `seq` (the store's rule, `tradestream_store` crate docs: the highest
//! seq wins) and, for candles, `closed`: a candle closed at a seq beats its open state at that
//! seq. A write at the stored version is refused too (it is the same row again). Lua compares
//! numbers as doubles: seqs are exact up to 2^53, far beyond any partition's count.

use redis::Script;

/// The version rule every row write starts with, stated once: `KEYS[1]` is the row's hash,
/// `ARGV[1..=4]` its seq, closed (0/1), row text and TTL ms. Returns 0 (refused) when the
/// stored version is the same or newer; else writes the row and leaves `ttl` set for the rest
/// of the script.
macro_rules! versioned_write {
    () => {
        r"
local cur = redis.call('HMGET', KEYS[1], 's', 'c')
local seq, closed = tonumber(ARGV[1]), tonumber(ARGV[2])
if cur[1] then
  local s, c = tonumber(cur[1]), tonumber(cur[2] or '0')
  if s > seq or (s == seq and c >= closed) then return 0 end
end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'c', ARGV[2], 'row', ARGV[3])
local ttl = tonumber(ARGV[4])
"
    };
}

/// `KEYS[1]` a row's hash; `ARGV`: seq, closed (0/1), row text, TTL ms (0: none).
/// Returns 1 when written, 0 when refused (the stored version is the same or newer).
pub const UPSERT: &str = concat!(
    versioned_write!(),
    r"if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
return 1
",
);

/// [`UPSERT`] of a candle (`KEYS[1]`) that also indexes it in its series (`KEYS[2]`, a sorted
/// set of bucket starts): `ARGV` as [`UPSERT`], then bucket start, how many buckets the series
/// keeps, the series' TTL ms. Returns 1 when written, 0 when refused.
pub const CANDLE: &str = concat!(
    versioned_write!(),
    r"if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[5])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[6]) + 1))
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
",
);

/// One trade into a symbol's sorted set (`KEYS[1]`): `ARGV` seq (the score), row text, how many
/// trades the set keeps. The same trade again is the same member (its text is deterministic), and
/// a trade older than the kept ones is trimmed at once. Returns 1 when the trade is in the set
/// afterwards and was not before, else 0.
pub const TRADE: &str = r"
local added = redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
if added == 1 and redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 1 end
return 0
";

/// The worker's progress, written last in a checkpoint: `KEYS[1]` the progress hash, `KEYS[2]`
/// the worker's session marker; `ARGV[1]` the marker's TTL ms, then pairs of field and value.
/// Fails (`TSLOST`) when the marker is gone (Redis lost its data since the worker started, so
/// offsets past it would claim rows Redis no longer holds); values only move forward.
pub const PROGRESS: &str = r"
if redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.error_reply('TSLOST the cache session marker is gone: Redis lost its data')
end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
for i = 2, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if (not cur) or tonumber(ARGV[i + 1]) > tonumber(cur) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
";

/// The scripts, compiled once (their SHA1s).
#[derive(Debug)]
pub struct Scripts {
    /// [`UPSERT`].
    pub upsert: Script,
    /// [`CANDLE`].
    pub candle: Script,
    /// [`TRADE`].
    pub trade: Script,
    /// [`PROGRESS`].
    pub progress: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            upsert: Script::new(UPSERT),
            candle: Script::new(CANDLE),
            trade: Script::new(TRADE),
            progress: Script::new(PROGRESS),
        }
    }
}

impl Scripts {
    /// Every script, to load them.
    pub fn all(&self) -> [&Script; 4] {
        [&self.upsert, &self.candle, &self.trade, &self.progress]
    }
}
