//! Partitions coming and going: restoring a partition when it is assigned (or after a
//! failure), finishing it before it is handed over.

use crate::io::{Clock, GroupConsumer, LogReader, Producer, StartAt, TopicPartition};
use crate::metrics::{self, Rebalance};
use crate::runner::checkpoint::Moment;
use crate::runner::core::Core;
use crate::worker::{Checkpoints, RunError, SetupError, Worker};

impl<W, P, R, K> Core<W, P, R, K>
where
    W: Worker,
    P: Producer,
    R: LogReader,
    K: Clock,
{
    /// The group gave this member `partitions`: the worker restores each and says where it
    /// starts; then the consumer starts fetching them there.
    pub(crate) fn assign<C: GroupConsumer<Group = P::Group>>(
        &mut self,
        consumer: &C,
        partitions: &[TopicPartition],
    ) -> Result<(), RunError> {
        // Every partition of the assignment waits for the restores before it: its restore time
        // runs from here.
        let since = self.clock.now();
        metrics::rebalanced(&self.name, Rebalance::Assigned, partitions.len());
        let mut start = Vec::with_capacity(partitions.len());
        for tp in partitions {
            let committed = consumer.committed(tp).ok().flatten().unwrap_or(-1);
            let (worker, mut ctx) = self.parts();
            let next = match worker.assign(&mut ctx, &tp.topic, tp.partition, committed) {
                Ok(next) => next.max(0),
                Err(e) => {
                    tracing::error!(topic = tp.topic, partition = tp.partition, error = %e, "cannot restore partition");
                    return Err(RunError::Worker(e));
                }
            };
            self.check_position(tp, next)?;
            tracing::info!(worker = %self.name, topic = tp.topic, partition = tp.partition, next, "partition assigned");
            start.push((tp.clone(), StartAt::from_next(next)));
            let mut assigned = self.open_partition(next);
            if next >= committed {
                // Nothing processed before is ahead of the restored state: live now.
                self.live(&tp.topic, tp.partition, since);
            } else {
                assigned.restoring = Some((since, committed));
            }
            self.parts.insert(&tp.topic, tp.partition, assigned);
        }
        consumer.assign(&start)?;
        metrics::owned(&self.name, self.parts.len(), &[]);
        Ok(())
    }

    /// The group takes `partitions` away. Handed over (`lost` false): everything processed is
    /// acknowledged, checkpointed and committed first. Lost under exactly-once: another member
    /// may own them already, so the open transaction is aborted and the partitions kept are
    /// restored.
    pub(crate) fn revoke<C: GroupConsumer<Group = P::Group>>(
        &mut self,
        consumer: &C,
        partitions: &[TopicPartition],
        lost: bool,
    ) -> Result<(), RunError> {
        let since = self.clock.now();
        let mut failure = None;
        if self.out.txn().enabled() && lost {
            if self.out.txn().pending() {
                for tp in partitions {
                    self.forget(&tp.topic, tp.partition);
                }
                let lost =
                    crate::ClientError::transient("membership", "the group's assignment was lost");
                failure = self.abort_and_rewind(consumer, &lost).err();
            }
        } else {
            // Finish the batch in flight before giving the partitions up.
            failure = self.checkpoint(consumer, Moment::Final).err();
        }
        let took = self.clock.now().saturating_duration_since(since);
        let mut given_up = Vec::with_capacity(partitions.len());
        for tp in partitions {
            self.forget(&tp.topic, tp.partition);
            self.worker.revoke(&tp.topic, tp.partition);
            let handoff_ms = took.as_secs_f64() * 1000.0;
            tracing::info!(worker = %self.name, topic = tp.topic, partition = tp.partition, lost, handoff_ms, "partition revoked");
            if !lost {
                metrics::handed_off(&self.name, took);
            }
            given_up.push((tp.topic.clone(), tp.partition));
        }
        consumer.unassign(partitions)?;
        let kind = if lost {
            Rebalance::Lost
        } else {
            Rebalance::Revoked
        };
        metrics::rebalanced(&self.name, kind, partitions.len());
        metrics::owned(&self.name, self.parts.len(), &given_up);
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Restores every assigned partition from the group's committed offset, as on assignment,
    /// and moves the consumer there: the worker's state must not keep anything an aborted
    /// transaction did.
    pub(crate) fn rewind<C: GroupConsumer<Group = P::Group>>(
        &mut self,
        consumer: &C,
    ) -> Result<(), RunError> {
        let all = self.parts.list();
        self.restore(consumer, &all)
    }

    /// Outputs were lost (a delivery timed out, a leader was away longer than
    /// `message.timeout.ms`): restores the partitions they came from from their last
    /// checkpoint, all of them for a worker whose checkpoint covers every partition at once
    /// ([`Checkpoints::State`]). Nothing at or after a lost output was committed or
    /// snapshotted (see [`crate::acks`]), so the restore writes it again, and the outputs the
    /// producer wrote after it are found again or written again. Returns whether anything was
    /// restored. Under exactly-once the transaction fails instead, and its abort restores.
    pub(crate) fn recover_losses<C: GroupConsumer<Group = P::Group>>(
        &mut self,
        consumer: &C,
    ) -> Result<bool, RunError> {
        let (losses, untracked) = {
            let mut acks = self.out.deliveries().acks();
            (acks.losses(), acks.take_untracked_loss())
        };
        if let Some(e) = untracked {
            tracing::warn!(
                worker = %self.name,
                error = %e,
                "an output of no input record (a snapshot chunk) was lost; the next one replaces it"
            );
        }
        if losses.is_empty() || self.out.txn().enabled() {
            return Ok(false);
        }
        let mut lost = Vec::new();
        for (topic, p, a) in self.parts.iter() {
            if let Some((_, offset, e)) = losses.iter().find(|(slot, ..)| *slot == a.slot) {
                tracing::warn!(
                    worker = %self.name,
                    topic,
                    partition = p,
                    offset,
                    error = %e,
                    "output lost; restoring the partition from its last checkpoint"
                );
                lost.push(TopicPartition::new(topic, p));
            }
        }
        let partitions = if self.worker.checkpoints() == Checkpoints::State {
            self.parts.list()
        } else {
            lost
        };
        self.restore(consumer, &partitions)?;
        Ok(true)
    }

    /// Refuses a restored position beyond the end of its input partition (the topic was
    /// re-created or lost data): the consumer would reset to the start, and the gate skip
    /// every record below the position.
    fn check_position(&self, tp: &TopicPartition, next: i64) -> Result<(), RunError> {
        if next == 0 {
            return Ok(());
        }
        let (_, mut end) = self
            .reader
            .log_bounds(&tp.topic, tp.partition)
            .map_err(SetupError::Cluster)?;
        if next > end {
            // A broker may answer offset queries with a high watermark that lags what a fetch
            // returns (the embedded broker does): the end is what a read finds.
            (_, end) = self
                .reader
                .fetched_bounds(&tp.topic, tp.partition)
                .map_err(SetupError::Cluster)?;
        }
        if next > end {
            tracing::error!(worker = %self.name, topic = tp.topic, partition = tp.partition, next, end, "saved position beyond the end of the input");
            return Err(SetupError::PositionBeyondLog {
                worker: self.name.clone(),
                topic: tp.topic.clone(),
                partition: tp.partition,
                next,
                end,
                way_out: self.worker.start_afresh(),
            }
            .into());
        }
        Ok(())
    }

    /// Restores `partitions` from the group's committed offset, as on assignment (the worker
    /// forgets them first), and moves the consumer to where each restarts.
    fn restore<C: GroupConsumer<Group = P::Group>>(
        &mut self,
        consumer: &C,
        partitions: &[TopicPartition],
    ) -> Result<(), RunError> {
        for tp in partitions {
            let committed = consumer.committed(tp).ok().flatten().unwrap_or(-1);
            self.worker.revoke(&tp.topic, tp.partition);
            let (worker, mut ctx) = self.parts();
            let next = worker
                .assign(&mut ctx, &tp.topic, tp.partition, committed)
                .map_err(RunError::Worker)?
                .max(0);
            self.check_position(tp, next)?;
            if let Some(old) = self.parts.remove(&tp.topic, tp.partition) {
                self.out.close_slot(old.slot);
                let fresh = self.open_partition(next);
                self.parts.insert(&tp.topic, tp.partition, fresh);
            }
            // A failed seek would let the fetch position run ahead of the restored state, and
            // the records in between be taken for a gap: stop instead (a restart is safe).
            consumer.seek(tp, next)?;
            tracing::info!(worker = %self.name, topic = tp.topic, partition = tp.partition, next, "partition restored");
        }
        Ok(())
    }
}
