//! The downstream rule for the matcher's outputs (docs/design.md §2.4): `(source partition,
//! seq)` is an output's idempotency key, and a consumer applies each at most once, in seq order.
//!
//! Per input partition, [`Applied`] keeps the last `seq` applied, which a worker stores with its
//! offsets (so the rule holds across restarts and rebalances, from what is stored, not from
//! memory) and restores on assignment. A record is then:
//! - the next one (`seq` = last + 1, or the first ever seen): applied;
//! - a **duplicate** (`seq` at or below the last): a zombie's late write, a record written again
//!   after a restore, a producer's retry. Skipped;
//! - **ahead of a gap** (`seq` beyond last + 1): outputs before it were lost (a delivery timed
//!   out and the idempotent producer went on with later ones). Skipped too: the matcher's
//!   restore writes everything from the gap on again, in order, so it comes back after the
//!   missing ones. Applying it now would fold a fill before the acceptance it follows.
//!
//! Records whose source partition is not their input partition are not the matcher's outputs
//! of this co-partition group (§1) and are not judged.

use std::collections::BTreeMap;

/// What to do with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The next record of its source partition (or not a matcher output): apply it.
    Apply,
    /// Applied already: skip it.
    Duplicate,
    /// Outputs before it are missing: skip it; it is written again after them.
    AheadOfGap {
        /// The seq expected next.
        expected: i64,
    },
}

/// The last seq applied per input partition.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    last: BTreeMap<(String, i32), i64>,
}

impl Applied {
    /// Restores `topic`/`partition`'s last applied seq (`None`: nothing applied yet).
    pub fn restore(&mut self, topic: &str, partition: i32, last: Option<i64>) {
        match last {
            Some(seq) => {
                self.last.insert((topic.to_owned(), partition), seq);
            }
            None => {
                self.last.remove(&(topic.to_owned(), partition));
            }
        }
    }

    /// Forgets a partition (revoked).
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.last.remove(&(topic.to_owned(), partition));
    }

    /// The last seq applied from `topic`/`partition`.
    pub fn last(&self, topic: &str, partition: i32) -> Option<i64> {
        self.last.get(&(topic.to_owned(), partition)).copied()
    }

    /// Judges a record of `topic`/`partition` made from `source_partition` with `seq`, and
    /// notes it applied when it is to be applied.
    pub fn judge(&mut self, topic: &str, partition: i32, source_partition: i32, seq: i64) -> Verdict {
        if source_partition != partition {
            return Verdict::Apply;
        }
        let key = (topic.to_owned(), partition);
        match self.last.get(&key).copied() {
            Some(last) if seq <= last => Verdict::Duplicate,
            Some(last) if seq > last + 1 => Verdict::AheadOfGap { expected: last + 1 },
            _ => {
                self.last.insert(key, seq);
                Verdict::Apply
            }
        }
    }
}

#[cfg(test)]
mod tests;
