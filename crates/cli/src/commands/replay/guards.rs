//! What keeps a replay off the live side: shadow names, shadow topics that must be empty, a
//! shadow store that must be another store than the live one, and fresh.

use std::path::{Path, PathBuf};

use anyhow::bail;
use tradestream_store::{Store, StoreUri};

use super::cluster::Cluster;

/// The shadow of `topic` for `suffix`: `<topic>.<suffix>`.
pub fn shadow(topic: &str, suffix: &str) -> String {
    format!("{topic}.{suffix}")
}

/// A suffix is a short name: letters, digits, `-` and `_`, so `<topic>.<suffix>` is a valid
/// topic name and never a live one (live names have no dot).
pub fn check_suffix(flag: &str, suffix: &str) -> anyhow::Result<()> {
    let ok = !suffix.is_empty()
        && suffix.len() <= 64
        && suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("{flag} {suffix:?}: use 1 to 64 letters, digits, - and _");
    }
    Ok(())
}

/// The consumer group of a replay: its own, so it never moves a live group's offsets.
pub fn replay_group(worker: &str, suffix: &str) -> String {
    format!("tradestream-replay-{worker}-{suffix}")
}

/// Refuses shadow topics that already hold records (another replay wrote there), unless
/// `force`: a replay must start from empty shadows or its outputs mix with older ones.
pub fn shadows_empty(cluster: &Cluster, shadows: &[String], force: bool) -> anyhow::Result<()> {
    let topics = cluster.topics()?;
    let mut used = Vec::new();
    for t in shadows {
        let Some(partitions) = topics.get(t) else {
            continue;
        };
        let mut records = 0;
        for p in 0..*partitions {
            let (low, high) = cluster.watermarks(t, p)?;
            records += high - low;
        }
        if records > 0 {
            used.push(format!("{t} ({records} records)"));
        }
    }
    if !used.is_empty() && !force {
        bail!(
            "the shadow topics already hold data: {}. Pick a fresh --suffix, delete those topics, \
             or pass --force to write after what is there",
            used.join(", ")
        );
    }
    Ok(())
}

/// Refuses a shadow store that is the live one (`--store`).
pub fn not_live(live: &StoreUri, shadow: &StoreUri) -> anyhow::Result<()> {
    let same = match (live, shadow) {
        (StoreUri::Sqlite(a), StoreUri::Sqlite(b)) => canonical(a) == canonical(b),
        (
            StoreUri::Scylla {
                keyspace: a,
                nodes: na,
                ..
            },
            StoreUri::Scylla {
                keyspace: b,
                nodes: nb,
                ..
            },
        ) => a == b && na.iter().any(|n| nb.contains(n)),
        _ => false,
    };
    if same {
        bail!(
            "--shadow-store {shadow} is the live store (--store {live}): a replay never writes to \
             the live store; give it another SQLite file or keyspace"
        );
    }
    Ok(())
}

/// A path made absolute with its directory resolved (the file itself may not exist yet).
fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

/// Refuses a shadow store that already holds rows of `worker`'s tables, unless `force`: a
/// replay compared with the live store must start from empty tables. The other workers'
/// tables may hold rows (their replays may share the shadow store).
pub fn store_fresh(
    store: &mut dyn Store,
    uri: &StoreUri,
    worker: &str,
    force: bool,
) -> anyhow::Result<()> {
    let c = store.counts()?;
    let rows: Vec<(&str, u64)> = match worker {
        "trade-recorder" => vec![("trades", c.trades), ("orders", c.orders)],
        "market-data" => vec![("candles", c.candles), ("tops of book", c.tops)],
        "notifier" => vec![("notifications", c.notifications)],
        _ => Vec::new(),
    };
    let held: Vec<String> = rows
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{n} {what}"))
        .collect();
    if !held.is_empty() && !force {
        bail!(
            "the shadow store {uri} already holds {}: use a fresh store, or pass --force to \
             write into it",
            held.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
