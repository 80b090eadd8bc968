//! Running a replay's worker until its group has committed everything that was there when the
//! replay started, then stopping it cleanly (the matcher snapshots on a clean stop).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use tradestream_runtime::Shutdown;

use super::cluster::Cluster;
use crate::commands::kafka::shutdown_on_signals;

/// Where the replay's group must get: per input topic, per partition, the offset after the
/// last record present at the start (partitions with nothing to replay are left out).
pub type Targets = BTreeMap<String, BTreeMap<i32, i64>>;

/// The targets for input `topic` from `starts`: the offset after the partition's last record,
/// where that record is at or after the start.
pub fn targets_for(
    cluster: &Cluster,
    topic: &str,
    starts: &BTreeMap<i32, i64>,
    targets: &mut Targets,
) -> anyhow::Result<()> {
    for (p, start) in starts {
        if let Some(last) = cluster.last_offset(topic, *p)?
            && last >= *start
        {
            targets
                .entry(topic.to_owned())
                .or_default()
                .insert(*p, last + 1);
        }
    }
    Ok(())
}

/// Runs `work` on a thread of its own (it must return once `shutdown` is triggered) until
/// `group` has committed every target, then stops it and waits for its clean stop. Fails when
/// the worker fails, on SIGINT/SIGTERM, or when the group makes no progress for `stall`.
/// Returns how long the worker ran.
pub fn run_until_caught_up(
    cluster: &Cluster,
    group: &str,
    targets: &Targets,
    stall: Duration,
    work: impl FnOnce(Shutdown) -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let signals = shutdown_on_signals()?;
    let shutdown = Shutdown::new();
    let worker = {
        let shutdown = shutdown.clone();
        std::thread::Builder::new()
            .name("replay".into())
            .spawn(move || work(shutdown))?
    };
    let (mut best, mut moved_at) = (-1i64, Instant::now());
    let outcome = loop {
        if worker.is_finished() {
            break Some("the replay's worker stopped before it had consumed its input".to_owned());
        }
        if signals.is_triggered() {
            break Some("interrupted (SIGINT/SIGTERM)".to_owned());
        }
        let (behind, total) = match behind(cluster, group, targets) {
            Ok(b) => b,
            Err(e) => break Some(format!("{e:#}")),
        };
        if behind.is_empty() {
            break None;
        }
        if total > best {
            (best, moved_at) = (total, Instant::now());
        } else if moved_at.elapsed() > stall {
            break Some(format!(
                "the replay made no progress for {stall:?}: {}",
                behind.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let elapsed = started.elapsed();
    shutdown.trigger();
    let joined = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the replay's worker panicked"))?;
    joined?;
    if let Some(reason) = outcome {
        bail!(reason);
    }
    Ok(elapsed)
}

/// The partitions `group` has not committed to their target yet, and the sum of its committed
/// offsets (to see progress).
fn behind(cluster: &Cluster, group: &str, targets: &Targets) -> anyhow::Result<(Vec<String>, i64)> {
    let (mut behind, mut total) = (Vec::new(), 0i64);
    for (topic, ends) in targets {
        let partitions = ends.keys().max().map_or(0, |p| p + 1);
        let committed = cluster.committed(group, topic, partitions)?;
        for (p, end) in ends {
            let at = committed.get(p).copied().unwrap_or(-1);
            total += at.max(0);
            if at < *end {
                behind.push(format!("{topic}/{p} at {at} of {end}"));
            }
        }
    }
    Ok((behind, total))
}
