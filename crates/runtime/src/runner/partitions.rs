//! The loop's view of its assigned input partitions: where each stands (processed, committed,
//! acknowledgement slot, fetch state, restore timing).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::acks::Slot;
use crate::io::TopicPartition;
use crate::runner::gate::Fetch;
use crate::worker::{Assignment, Position};

/// The loop's view of one assigned input partition.
#[derive(Debug)]
pub(crate) struct Assigned {
    /// Next offset to process.
    pub(crate) next_offset: i64,
    /// The offset this loop last committed (or is committing): positions are taken when
    /// processing moves past it.
    pub(crate) committed: i64,
    /// The offset the group last accepted from this loop. A refused commit moves
    /// [`Assigned::committed`] back here, so the next checkpoint commits again even when the
    /// partition stays idle (the group's lag, which autoscaling reads, stays true).
    pub(crate) accepted: i64,
    /// Its acknowledgement slot.
    pub(crate) slot: Slot,
    /// Fetching (the embedded broker's re-fetch gate).
    pub(crate) fetch: Fetch,
    /// Restoring since the assignment at this moment: live once processing reaches this offset
    /// (the group's committed offset), timed as `tradestream_restore_seconds`.
    pub(crate) restoring: Option<(Instant, i64)>,
}

impl Assigned {
    /// A partition that starts at `next` with acknowledgement slot `slot`.
    pub(crate) fn new(next: i64, slot: Slot, fetch: Fetch) -> Self {
        Assigned {
            next_offset: next,
            committed: next,
            accepted: next,
            slot,
            fetch,
            restoring: None,
        }
    }
}

/// Assigned partitions by topic, then partition: looked up per record by `&str`, without
/// allocating a key. A topic without partitions is removed.
#[derive(Debug, Default)]
pub(crate) struct Partitions {
    by_topic: BTreeMap<String, BTreeMap<i32, Assigned>>,
}

impl Partitions {
    /// The state of an assigned partition.
    pub(crate) fn get(&self, topic: &str, p: i32) -> Option<&Assigned> {
        self.by_topic.get(topic)?.get(&p)
    }

    /// The state of an assigned partition, to change.
    pub(crate) fn get_mut(&mut self, topic: &str, p: i32) -> Option<&mut Assigned> {
        self.by_topic.get_mut(topic)?.get_mut(&p)
    }

    /// Notes a partition as assigned (replacing what was there).
    pub(crate) fn insert(&mut self, topic: &str, p: i32, a: Assigned) -> Option<Assigned> {
        self.by_topic
            .entry(topic.to_owned())
            .or_default()
            .insert(p, a)
    }

    /// Forgets an assigned partition; returns its state.
    pub(crate) fn remove(&mut self, topic: &str, p: i32) -> Option<Assigned> {
        let partitions = self.by_topic.get_mut(topic)?;
        let a = partitions.remove(&p);
        if partitions.is_empty() {
            self.by_topic.remove(topic);
        }
        a
    }

    /// Every assigned partition, in (topic, partition) order.
    pub(crate) fn list(&self) -> Vec<TopicPartition> {
        self.iter()
            .map(|(topic, p, _)| TopicPartition::new(topic, p))
            .collect()
    }

    /// Every assigned partition and its state, in (topic, partition) order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, i32, &Assigned)> {
        self.by_topic
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, a)| (t.as_str(), *p, a)))
    }

    /// Every assigned partition and its state, to change.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&str, i32, &mut Assigned)> {
        self.by_topic
            .iter_mut()
            .flat_map(|(t, ps)| ps.iter_mut().map(move |(p, a)| (t.as_str(), *p, a)))
    }

    /// How many partitions are assigned.
    pub(crate) fn len(&self) -> usize {
        self.by_topic.values().map(BTreeMap::len).sum()
    }

    /// Whether none is.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }

    /// The partitions whose position (`at`: processed or acknowledged) moved past what was
    /// committed; notes them as committed.
    pub(crate) fn take_positions(
        &mut self,
        at: impl Fn(&Assigned) -> Option<i64>,
    ) -> Vec<Position> {
        let mut positions = Vec::new();
        for (topic, p, a) in self.iter_mut() {
            let Some(next) = at(a).filter(|n| *n > a.committed) else {
                continue;
            };
            a.committed = next;
            positions.push(Position {
                topic: topic.to_owned(),
                partition: p,
                next_offset: next,
            });
        }
        positions
    }
}

impl Partitions {
    /// The group accepted `offsets`.
    pub(crate) fn commit_accepted(&mut self, offsets: &[(TopicPartition, i64)]) {
        for (tp, o) in offsets {
            if let Some(a) = self.get_mut(&tp.topic, tp.partition) {
                a.accepted = a.accepted.max(*o);
            }
        }
    }

    /// The group refused `offsets`: each partition whose commit it was is committed again at the
    /// next checkpoint.
    pub(crate) fn commit_refused(&mut self, offsets: &[(TopicPartition, i64)]) {
        for (tp, o) in offsets {
            if let Some(a) = self.get_mut(&tp.topic, tp.partition)
                && a.committed == *o
            {
                a.committed = a.accepted;
            }
        }
    }

    /// Every assigned partition at its next offset to process: what a transaction commits for
    /// the group, moved or not, so every transaction is fenced by the group's generation.
    pub(crate) fn all_offsets(&self) -> Vec<(TopicPartition, i64)> {
        self.iter()
            .map(|(topic, p, a)| (TopicPartition::new(topic, p), a.next_offset))
            .collect()
    }
}

impl Assignment for Partitions {
    fn slot(&self, topic: &str, partition: i32) -> Option<(Slot, i64)> {
        self.get(topic, partition).map(|a| (a.slot, a.next_offset))
    }
}
