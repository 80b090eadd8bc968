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
//!
//! A failed report is a **lost output**: it never counts as acknowledged. Its partition's
//! acknowledged offset stays below the record it came from for as long as the slot lives, so
//! nothing at or after that record can be committed or snapshotted; the loop restores the
//! partition from its last checkpoint ([`Acks::losses`]). The idempotent producer goes on
//! writing later outputs after one times out, so the output partition may already hold a gap:
//! the restore finds it and writes everything from the gap on again (docs/design.md §2).

use std::collections::{BTreeMap, VecDeque};

use std::sync::Arc;

use crate::client_error::ClientError;

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
    /// The first lost output: the lowest input offset with an output lost, and why.
    lost: Option<(i64, Arc<ClientError>)>,
}

impl Partition {
    fn acknowledged(&self) -> i64 {
        let acked = self
            .waiting
            .front()
            .map_or(self.processed, |(offset, _)| *offset);
        match &self.lost {
            Some((offset, _)) => acked.min(*offset),
            None => acked,
        }
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
    /// The first lost output that belongs to no input record (e.g. a snapshot chunk), until the
    /// loop takes it.
    untracked_loss: Option<ClientError>,
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
                lost: None,
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
    pub fn delivered(&mut self, token: Token, result: Result<(), ClientError>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if token == UNTRACKED {
            if let Err(e) = result {
                self.untracked_loss.get_or_insert(e);
            }
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
        let Some((offset, n)) = p.waiting.get_mut(index) else {
            return;
        };
        if let Err(e) = result {
            let offset = *offset;
            match &mut p.lost {
                Some((first, _)) if *first <= offset => {}
                lost => *lost = Some((offset, Arc::new(e))),
            }
        }
        *n = n.saturating_sub(1);
        p.settle();
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

    /// The partitions with a lost output, and the first loss of each: the input offset of the
    /// record it came from, and why.
    pub fn losses(&self) -> Vec<(Slot, i64, Arc<ClientError>)> {
        self.partitions
            .iter()
            .filter_map(|(slot, p)| p.lost.as_ref().map(|(o, e)| (*slot, *o, e.clone())))
            .collect()
    }

    /// The first lost output that belonged to no input record, taken out.
    pub fn take_untracked_loss(&mut self) -> Option<ClientError> {
        self.untracked_loss.take()
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
mod tests;
