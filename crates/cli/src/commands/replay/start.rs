//! Where a replay starts: `--from-offset N`, `--from-offset P:N,P:N`, `--from-timestamp T`, or
//! the beginning of each partition.

use std::collections::BTreeMap;

use anyhow::{Context, bail};

use super::cluster::Cluster;

/// `--from-offset` / `--from-timestamp` (at most one; neither: from the beginning).
#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    /// Start at this offset of every input partition (`N`), or of the partitions listed
    /// (`P:N,P:N`; the others are not replayed: they start at their end). The matcher starts
    /// each partition at the newest live snapshot at or before the offset (see docs/replay.md).
    #[arg(long, value_name = "N | P:N,…", value_parser = parse_offsets, conflicts_with = "from_timestamp")]
    pub from_offset: Option<OffsetSpec>,
    /// Start at the first record at or after this time, per partition (Kafka's
    /// `offsets_for_times`; a partition with no such record starts at its end). RFC 3339
    /// (`2026-12-03T07:00:00Z`, `…+01:00`) or milliseconds since the Unix epoch.
    #[arg(long, value_name = "RFC3339 | EPOCH_MS", value_parser = parse_timestamp)]
    pub from_timestamp: Option<i64>,
}

/// Offsets given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The same offset in every partition.
    All(i64),
    /// Per partition; partitions not listed start at their end.
    Partitions(BTreeMap<i32, i64>),
}

/// Parses `N` or `P:N,P:N`.
pub fn parse_offsets(s: &str) -> Result<OffsetSpec, String> {
    let number = |t: &str, what: &str| -> Result<i64, String> {
        t.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{what} {t:?} is not a number ≥ 0 (expected N or P:N,P:N)"))
    };
    if !s.contains(':') {
        return Ok(OffsetSpec::All(number(s, "offset")?));
    }
    let mut out = BTreeMap::new();
    for part in s.split(',') {
        let Some((p, n)) = part.split_once(':') else {
            return Err(format!("{part:?}: expected P:N (partition:offset)"));
        };
        let p = i32::try_from(number(p, "partition")?).map_err(|e| e.to_string())?;
        if out.insert(p, number(n, "offset")?).is_some() {
            return Err(format!("partition {p} is given twice"));
        }
    }
    Ok(OffsetSpec::Partitions(out))
}

/// Parses milliseconds since the epoch or an RFC 3339 date-time (`Z` or a `±HH:MM` offset,
/// optional fraction of a second).
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|e| format!("{s:?}: {e}"));
    }
    rfc3339_ms(s).ok_or_else(|| {
        format!("{s:?} is neither RFC 3339 (2026-12-03T07:00:00Z) nor milliseconds since the epoch")
    })
}

fn rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let t = s.get(from..from + len)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let frac = &s[i + 1..i + 1 + digits];
        let padded = format!("{:0<3}", &frac[..frac.len().min(3)]);
        millis = padded.parse::<i64>().ok()?;
        i += 1 + digits;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if *sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl StartArgs {
    /// Whether the replay starts anywhere but the beginning.
    pub fn is_partial(&self) -> bool {
        self.from_offset.is_some() || self.from_timestamp.is_some()
    }

    /// The first offset to replay in each of `topic`'s partitions, within the partition's
    /// records (an offset below the log start is raised to it, one past the end lowered to it).
    pub fn resolve(&self, cluster: &Cluster, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
        let partitions = cluster.partitions(topic)?;
        let mut wanted: BTreeMap<i32, Option<i64>> = (0..partitions).map(|p| (p, None)).collect();
        match (&self.from_offset, self.from_timestamp) {
            (Some(OffsetSpec::All(n)), _) => wanted.values_mut().for_each(|w| *w = Some(*n)),
            (Some(OffsetSpec::Partitions(map)), _) => {
                for (p, n) in map {
                    let Some(w) = wanted.get_mut(p) else {
                        bail!("--from-offset names partition {p}, but {topic} has {partitions}");
                    };
                    *w = Some(*n);
                }
            }
            (None, Some(ts)) => {
                let at = cluster.offsets_for_time(topic, partitions, ts)?;
                for (p, o) in at {
                    wanted.insert(p, Some(o));
                }
            }
            (None, None) => wanted.values_mut().for_each(|w| *w = Some(0)),
        }
        let mut out = BTreeMap::new();
        for (p, w) in wanted {
            let (low, high) = cluster
                .watermarks(topic, p)
                .with_context(|| format!("{topic}/{p}"))?;
            // Not listed in `P:N,…`: not replayed.
            let at = w.unwrap_or(high);
            if at < low && self.is_partial() {
                tracing::warn!(
                    topic,
                    partition = p,
                    wanted = at,
                    log_start = low,
                    "the records before the log start are gone; starting at the log start"
                );
            }
            out.insert(p, at.clamp(low, high));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
