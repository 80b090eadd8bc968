//! The embedded broker's re-fetch gate (docs/design.md §8): whether a polled record is the next
//! input of its partition, and when to fetch a partition again from further back.
//!
//! Apache Kafka answers a fetch from exactly the offset asked for; a jump in offsets there is a
//! normal gap (transaction markers, aborted records, compaction) and the record is processed.
//! The embedded broker (tansu 0.6) answers a fetch that starts inside a record batch with the
//! *next* batch, so a resumed consumer sees a jump, or nothing at all when the start was inside
//! the partition's last batch. Under its quirks a jump is fetched again from further back (64,
//! 256, 1024, … offsets before the one wanted), and so is a partition resumed at a non-zero
//! offset that sees no record within [`REFETCH_WAIT`].
//!
//! [`Fetch`] is the state of one partition; it decides on explicit instants, so its unit tests
//! need no broker and no clock.

use std::time::{Duration, Instant};

/// How long to wait for a re-fetched offset before asking again.
pub(crate) const REFETCH_WAIT: Duration = Duration::from_secs(1);
/// How often to ask before taking the gap as it is.
pub(crate) const REFETCH_TRIES: u32 = 8;

/// Where fetching one partition stands. The states exclude each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// Records arrive in order (or gaps are accepted as they are: Apache Kafka).
    Steady,
    /// Embedded broker only: (re)started at a non-zero offset at this instant, and no record has
    /// arrived since. A start inside the partition's last batch is answered with nothing at all,
    /// so no jump ever shows; after [`REFETCH_WAIT`] the partition is fetched again from further
    /// back.
    Resumed {
        /// When.
        since: Instant,
    },
    /// A jump in offsets: the partition's next offset was asked for again at `since`, for the
    /// `tries`-th time.
    Refetching {
        /// When it was last asked for.
        since: Instant,
        /// How many times so far.
        tries: u32,
    },
    /// Re-fetching did not help: the next record that arrives is processed whatever its offset.
    AcceptingGap,
}

/// What to do with a polled record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// It is the partition's next input: process it.
    Process,
    /// Already processed (a fetch replayed it), or set aside while a re-fetch is pending: the
    /// seek back puts it in front of the consumer again.
    Skip,
    /// Offsets jumped: fetch again from this (earlier) offset, asking for the `tries`-th time.
    Refetch {
        /// Where to seek.
        from: i64,
        /// The how-manieth time the offset is asked for (0: the last seek, back to the gap
        /// itself, after which the gap is taken as it is).
        tries: u32,
    },
}

impl Fetch {
    /// The state of a partition that starts (or restarts) at `next` at `now`; `refetch_gaps`:
    /// the embedded broker's quirks are in force.
    pub(crate) fn start(next: i64, refetch_gaps: bool, now: Instant) -> Self {
        if refetch_gaps && next > 0 {
            Fetch::Resumed { since: now }
        } else {
            Fetch::Steady
        }
    }

    /// Decides what to do with the record at `offset` of a partition whose next offset is
    /// `next`, at `now`.
    ///
    /// A record below `next` was processed already. A jump forward is processed as it is on
    /// Apache Kafka (`refetch_gaps` false); under the embedded quirks it is fetched again,
    /// records polled meanwhile are skipped (the seek back brings them again), and when the
    /// tries run out the loop seeks back to the gap once more and takes whatever comes first,
    /// so a record that was fetched is never dropped.
    pub(crate) fn gate(
        &mut self,
        offset: i64,
        next: i64,
        refetch_gaps: bool,
        now: Instant,
    ) -> Gate {
        if offset < next {
            // A re-read. If a re-fetch is pending, this answer shows the fetch now starts before
            // the wanted offset: batches are contiguous, so it comes next if it exists.
            if matches!(self, Fetch::Resumed { .. } | Fetch::Refetching { .. }) {
                *self = Fetch::Steady;
            }
            return Gate::Skip;
        }
        if offset == next || next == 0 || !refetch_gaps || *self == Fetch::AcceptingGap {
            *self = Fetch::Steady;
            return Gate::Process;
        }
        match *self {
            Fetch::Refetching { since, .. }
                if now.saturating_duration_since(since) < REFETCH_WAIT =>
            {
                Gate::Skip
            }
            Fetch::Refetching { tries, .. } if tries >= REFETCH_TRIES => {
                *self = Fetch::AcceptingGap;
                Gate::Refetch {
                    from: next,
                    tries: 0,
                }
            }
            Fetch::Refetching { tries, .. } => self.ask(next, tries + 1, now),
            Fetch::Steady | Fetch::Resumed { .. } | Fetch::AcceptingGap => self.ask(next, 1, now),
        }
    }

    /// Whether the partition must be fetched again on the timer at `now`: a re-fetch that got
    /// no answer within [`REFETCH_WAIT`] (e.g. the partition's end was in the skipped batch, so
    /// no later record arrives to show the gap again), or a resumed partition that saw nothing.
    /// Returns where to seek.
    pub(crate) fn due(&mut self, next: i64, now: Instant) -> Option<Gate> {
        match *self {
            Fetch::Refetching { since, tries }
                if tries < REFETCH_TRIES
                    && now.saturating_duration_since(since) >= REFETCH_WAIT =>
            {
                Some(self.ask(next, tries + 1, now))
            }
            Fetch::Resumed { since } if now.saturating_duration_since(since) >= REFETCH_WAIT => {
                Some(self.ask(next, 1, now))
            }
            _ => None,
        }
    }

    /// Notes the `tries`-th request for offset `next` at `now`: fetch from 64, 256, 1024, …
    /// offsets before it.
    fn ask(&mut self, next: i64, tries: u32, now: Instant) -> Gate {
        *self = Fetch::Refetching { since: now, tries };
        let back = 64i64 << (2 * (tries - 1).min(20));
        Gate::Refetch {
            from: (next - back).max(0),
            tries,
        }
    }
}

#[cfg(test)]
mod tests;
