//! When the loop checkpoints: every `commit_interval`, and for a worker whose checkpoints are
//! store transactions also after `max_batch` records, so a transaction stays small under load.

use std::time::{Duration, Instant};

use crate::worker::LoopConfig;

/// The checkpoint cadence, decided on explicit instants.
#[derive(Debug)]
pub(crate) struct Cadence {
    interval: Duration,
    max_batch: usize,
    next: Instant,
    /// Records taken since the last checkpoint.
    taken: usize,
}

impl Cadence {
    /// How long the loop waits for input when there is none, so a quiet loop still looks at
    /// its delivery reports, rebalances and snapshots regularly.
    pub(crate) const MAX_WAIT: Duration = Duration::from_millis(100);

    pub(crate) fn new(cfg: &LoopConfig, now: Instant) -> Self {
        Cadence {
            interval: cfg.commit_interval,
            max_batch: cfg.max_batch,
            next: now + cfg.commit_interval,
            taken: 0,
        }
    }

    /// How long to wait for the first record of a round: no longer than until the next
    /// checkpoint is due.
    pub(crate) fn wait(&self, now: Instant) -> Duration {
        self.next.saturating_duration_since(now).min(Self::MAX_WAIT)
    }

    /// A round took `n` records.
    pub(crate) fn took(&mut self, n: usize) {
        self.taken += n;
    }

    /// Whether to checkpoint now; `per_batch`: the worker's checkpoints are store transactions.
    pub(crate) fn due(&self, now: Instant, per_batch: bool) -> bool {
        now >= self.next || (per_batch && self.taken >= self.max_batch)
    }

    /// A checkpoint was made at `now`.
    pub(crate) fn checkpointed(&mut self, now: Instant) {
        self.next = now + self.interval;
        self.taken = 0;
    }
}

#[cfg(test)]
mod tests;
