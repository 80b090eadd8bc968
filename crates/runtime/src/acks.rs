//! Which input offsets may be committed while outputs are still in flight.
//!
//! The loop produces without waiting. Every output is tagged with a [`Token`] naming the input
//! record it came from; delivery reports come back in any order across output partitions (and
//! on the producer's own thread). Per assigned input partition, [`Acks`] keeps the records whose
//! outputs are not all acknowledged yet, oldest first, and answers "everything below this
//! offset is processed and every output of it acknowledged" ([`Acks::acknowledged`]): the
//! offset the loop may commit.
//!
//! Only records that produced something are kept, so memory is bounded by the producer's queue,
//! not by the input rate. A partition that is revoked is closed: late reports for it are
//! ignored, and a partition assigned again gets a new slot, so reports from its previous
//! assignment cannot touch the new one.

use std::collections::{BTreeMap, VecDeque};

/// Tags one output: the input partition's slot and its record's ticket, packed in a `usize`
/// (librdkafka's per-message opaque).
pub type Token = usize;

/// An output that belongs to no input record (e.g. a snapshot written between records). Its
/// failure still counts.
pub const UNTRACKED: Token = usize::MAX;

/// Bits of a token holding the ticket; the rest hold the slot.
const TICKET_BITS: u32 = 40;
const TICKET_MASK: u64 = (1 << TICKET_BITS) - 1;

/// Names one assigned input partition for the life of its assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot(u32);

/// One assigned input partition.
#[derive(Debug)]
struct Partition {
    /// Every record below this offset is processed.
    processed: i64,
    /// Records processed (or in processing) with outputs not all acknowledged, oldest first:
    /// (offset, outputs outstanding).
    waiting: VecDeque<(i64, u32)>,
    /// The ticket of `waiting[0]`; `waiting[i]` has ticket `first + i`.
    first: u64,
}

impl Partition {
    fn acknowledged(&self) -> i64 {
        self.waiting
            .front()
            .map_or(self.processed, |(offset, _)| *offset)
    }

    /// Drops the acknowledged records at the front.
    fn settle(&mut self) {
        while let Some((_, 0)) = self.waiting.front() {
            self.waiting.pop_front();
            self.first += 1;
        }
    }
}

/// Acknowledgement state of every assigned input partition.
#[derive(Debug, Default)]
pub struct Acks {
    partitions: BTreeMap<Slot, Partition>,
    next_slot: u32,
    /// Outputs sent and not yet reported (tracked or not).
    in_flight: u64,
    /// The first delivery failure, if any: outputs were lost, so nothing after it may be
    /// committed (the loop stops; a restart resumes from the last commit).
    failure: Option<String>,
}

impl Acks {
    /// A partition is assigned; `next_offset` is the first offset it will process.
    pub fn open(&mut self, next_offset: i64) -> Slot {
        let slot = Slot(self.next_slot);
        // 2^24 assignments before a slot number comes back; by then the old one is long closed.
        self.next_slot = (self.next_slot + 1) & ((1 << (usize::BITS - TICKET_BITS)) - 1);
        self.partitions.insert(
            slot,
            Partition {
                processed: next_offset,
                waiting: VecDeque::new(),
                first: 0,
            },
        );
        slot
    }

    /// The partition was revoked (or is restored again): forget it; its late reports are
    /// ignored.
    pub fn close(&mut self, slot: Slot) {
        self.partitions.remove(&slot);
    }

    /// Record `offset` of `slot` produces an output: returns the output's token.
    pub fn output(&mut self, slot: Slot, offset: i64) -> Token {
        self.in_flight += 1;
        let Some(p) = self.partitions.get_mut(&slot) else {
            return UNTRACKED;
        };
        let ticket = match p.waiting.back_mut() {
            Some((o, n)) if *o == offset => {
                *n += 1;
                p.first + p.waiting.len() as u64 - 1
            }
            _ => {
                p.waiting.push_back((offset, 1));
                p.first + p.waiting.len() as u64 - 1
            }
        };
        token(slot, ticket)
    }

    /// An output without an input record (e.g. a snapshot).
    pub fn untracked(&mut self) -> Token {
        self.in_flight += 1;
        UNTRACKED
    }

    /// Record `offset` of `slot` is processed: every output it makes has been sent.
    pub fn processed(&mut self, slot: Slot, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&slot) {
            p.processed = p.processed.max(offset + 1);
        }
    }

    /// A delivery report: `Ok` when the broker acknowledged the output, `Err` with the reason
    /// when it is lost.
    pub fn delivered(&mut self, token: Token, result: Result<(), String>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Err(e) = result {
            self.failure.get_or_insert(e);
        }
        if token == UNTRACKED {
            return;
        }
        let (slot, ticket) = untoken(token);
        let Some(p) = self.partitions.get_mut(&slot) else {
            return; // revoked since
        };
        let Some(index) = ticket
            .checked_sub(p.first)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        if let Some((_, n)) = p.waiting.get_mut(index) {
            *n = n.saturating_sub(1);
            p.settle();
        }
    }

    /// Every offset of `slot` below the answer is processed and all its outputs acknowledged
    /// (`None`: not assigned).
    pub fn acknowledged(&self, slot: Slot) -> Option<i64> {
        self.partitions.get(&slot).map(Partition::acknowledged)
    }

    /// Outputs sent and not yet reported.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// The first delivery failure.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }
}

fn token(slot: Slot, ticket: u64) -> Token {
    let packed = (u64::from(slot.0) << TICKET_BITS) | (ticket & TICKET_MASK);
    // A usize holds 64 bits on every target librdkafka runs on.
    usize::try_from(packed).unwrap_or(UNTRACKED)
}

fn untoken(token: Token) -> (Slot, u64) {
    let packed = token as u64;
    let slot = u32::try_from(packed >> TICKET_BITS).unwrap_or(u32::MAX);
    (Slot(slot), packed & TICKET_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Result<(), String> = Ok(());

    #[test]
    fn a_record_without_outputs_is_acknowledged_once_processed() {
        let mut acks = Acks::default();
        let s = acks.open(10);
        assert_eq!(acks.acknowledged(s), Some(10));
        acks.processed(s, 10);
        acks.processed(s, 11);
        assert_eq!(acks.acknowledged(s), Some(12));
    }

    #[test]
    fn out_of_order_reports_advance_only_past_fully_acknowledged_records() {
        let mut acks = Acks::default();
        let s = acks.open(0);
        // Record 0 makes two outputs, 1 none, 2 one, 3 two.
        let a0 = acks.output(s, 0);
        let b0 = acks.output(s, 0);
        acks.processed(s, 0);
        acks.processed(s, 1);
        let a2 = acks.output(s, 2);
        acks.processed(s, 2);
        let a3 = acks.output(s, 3);
        let b3 = acks.output(s, 3);
        acks.processed(s, 3);
        assert_eq!(acks.acknowledged(s), Some(0));
        assert_eq!(acks.in_flight(), 5);

        // Reports arrive newest first: nothing may be committed until record 0 is complete.
        acks.delivered(b3, OK);
        acks.delivered(a2, OK);
        acks.delivered(a0, OK);
        assert_eq!(
            acks.acknowledged(s),
            Some(0),
            "record 0 still has an output out"
        );
        acks.delivered(b0, OK);
        // 0, 1 and 2 are complete; 3 waits for a3.
        assert_eq!(acks.acknowledged(s), Some(3));
        acks.delivered(a3, OK);
        assert_eq!(acks.acknowledged(s), Some(4));
        assert_eq!(acks.in_flight(), 0);
        assert_eq!(acks.failure(), None);
    }

    #[test]
    fn a_record_still_being_processed_is_never_acknowledged() {
        let mut acks = Acks::default();
        let s = acks.open(5);
        let t = acks.output(s, 5);
        acks.delivered(t, OK);
        // Its first output is acknowledged, but the record may still make more.
        assert_eq!(acks.acknowledged(s), Some(5));
        let u = acks.output(s, 5);
        acks.processed(s, 5);
        assert_eq!(acks.acknowledged(s), Some(5));
        acks.delivered(u, OK);
        assert_eq!(acks.acknowledged(s), Some(6));
    }

    #[test]
    fn partitions_are_independent() {
        let mut acks = Acks::default();
        let a = acks.open(0);
        let b = acks.open(100);
        let ta = acks.output(a, 0);
        acks.processed(a, 0);
        let tb = acks.output(b, 100);
        acks.processed(b, 100);
        acks.delivered(tb, OK);
        assert_eq!(acks.acknowledged(a), Some(0));
        assert_eq!(acks.acknowledged(b), Some(101));
        acks.delivered(ta, OK);
        assert_eq!(acks.acknowledged(a), Some(1));
    }

    #[test]
    fn a_failure_is_kept_and_does_not_acknowledge_the_record() {
        let mut acks = Acks::default();
        let s = acks.open(0);
        let t0 = acks.output(s, 0);
        let t1 = acks.output(s, 1);
        acks.processed(s, 1);
        acks.delivered(t1, Err("Message timed out".into()));
        acks.delivered(t0, Err("later failure".into()));
        assert_eq!(acks.failure(), Some("Message timed out"), "the first one");
        // Lost outputs are counted down (they are not coming), but the failure stops commits:
        // the loop checks `failure` before it commits anything.
        assert_eq!(acks.in_flight(), 0);
    }

    #[test]
    fn reports_for_a_revoked_partition_cannot_touch_its_next_assignment() {
        let mut acks = Acks::default();
        let old = acks.open(0);
        let stale = acks.output(old, 0);
        acks.processed(old, 0);
        acks.close(old);
        assert_eq!(acks.acknowledged(old), None);
        // Assigned again, from where the group committed.
        let new = acks.open(0);
        assert_ne!(old, new);
        let fresh = acks.output(new, 0);
        acks.processed(new, 0);
        acks.delivered(stale, OK);
        assert_eq!(
            acks.acknowledged(new),
            Some(0),
            "the old report was ignored"
        );
        acks.delivered(fresh, OK);
        assert_eq!(acks.acknowledged(new), Some(1));
    }

    #[test]
    fn untracked_outputs_count_in_flight_and_their_failures_count() {
        let mut acks = Acks::default();
        let t = acks.untracked();
        assert_eq!(t, UNTRACKED);
        assert_eq!(acks.in_flight(), 1);
        acks.delivered(t, Err("snapshot lost".into()));
        assert_eq!(acks.in_flight(), 0);
        assert_eq!(acks.failure(), Some("snapshot lost"));
    }

    #[test]
    fn tokens_round_trip_and_memory_is_only_for_records_with_outputs() {
        let mut acks = Acks::default();
        let s = acks.open(0);
        let mut tokens = Vec::new();
        for offset in 0..10_000 {
            if offset % 100 == 0 {
                tokens.push(acks.output(s, offset));
            }
            acks.processed(s, offset);
        }
        assert_eq!(acks.partitions[&s].waiting.len(), 100);
        for t in tokens.into_iter().rev() {
            acks.delivered(t, OK);
        }
        assert_eq!(acks.acknowledged(s), Some(10_000));
        assert!(acks.partitions[&s].waiting.is_empty());
        assert_eq!(untoken(token(Slot(7), 123)), (Slot(7), 123));
    }
}
