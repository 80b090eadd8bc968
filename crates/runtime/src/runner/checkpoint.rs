//! Making progress durable: the worker's checkpoint, then the input offsets committed to the
//! group (asynchronously in the steady state), or under exactly-once one transaction holding
//! the round's outputs and its input offsets.

use crate::client_error::ClientError;
use crate::io::{Clock, CommitMode, GroupConsumer, LogReader, Producer, TopicPartition};
use crate::runner::core::Core;
use crate::worker::{Checkpoints, Position, RunError, Worker};

/// Which progress a checkpoint makes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// The commit interval elapsed: commit without stopping the flow where the worker allows.
    Interval,
    /// A partition is given up or the loop stops: wait for every output, commit synchronously.
    Final,
}

impl<W, P, R, K> Core<W, P, R, K>
where
    W: Worker,
    P: Producer,
    R: LogReader,
    K: Clock,
{
    /// Where processing stands, on every partition that moved.
    fn processed_positions(&mut self) -> Vec<Position> {
        self.parts.take_positions(|a| Some(a.next_offset))
    }

    /// Makes progress durable (see [`Checkpoints`](crate::Checkpoints)). At [`Moment::Final`]
    /// everything processed is acknowledged, checkpointed and committed before it returns.
    pub(crate) fn checkpoint<C: GroupConsumer<Group = P::Group>>(
        &mut self,
        consumer: &C,
        moment: Moment,
    ) -> Result<(), RunError> {
        if self.out.txn().enabled() {
            let positions = self.processed_positions();
            return self.commit_transaction(consumer, &positions);
        }
        let positions =
            if moment == Moment::Interval && self.worker.checkpoints() == Checkpoints::Offsets {
                // Acknowledged positions never pass a lost output (see `crate::acks`).
                let deliveries = self.out.deliveries();
                let acks = deliveries.acks();
                self.parts.take_positions(|a| acks.acknowledged(a.slot))
            } else {
                self.out.settle()?;
                if self.recover_losses(consumer)? {
                    // Restored from the last checkpoint: nothing new to make durable.
                    return Ok(());
                }
                let positions = self.processed_positions();
                if positions.is_empty() {
                    return Ok(());
                }
                positions
            };
        if positions.is_empty() {
            return Ok(());
        }
        let (worker, mut ctx) = self.parts();
        worker
            .checkpoint(&mut ctx, &positions)
            .map_err(RunError::Worker)?;
        let offsets = offsets(&positions);
        match moment {
            // In the steady state the commit goes out without waiting; its result comes back
            // from `poll` (`commit_result`), and a refused one is made again.
            Moment::Interval => match consumer.commit(&offsets, CommitMode::Async) {
                Ok(()) => {}
                Err(e) => self.commit_failed(&offsets, e)?,
            },
            // At a hand-over or a stop: synchronously, trying transient errors again.
            Moment::Final => {
                let retry = self.cfg.retry;
                match retry.run(&self.clock, &self.name, "commit", || {
                    consumer.commit(&offsets, CommitMode::Sync)
                }) {
                    Ok(()) => self.parts.commit_accepted(&offsets),
                    Err(e) => self.commit_failed(&offsets, e)?,
                }
            }
        }
        self.metrics.committed(self.clock.unix_ms());
        Ok(())
    }

    /// A commit of `offsets` that failed with `e`. Not fatal unless `e` is: the next commit
    /// covers it, and at worst the next owner replays a little more (outputs are deduplicated
    /// by seq). Lost membership (the session expired, a rebalance began): everything up to
    /// here is acknowledged and checkpointed; the revocation takes the partitions away.
    fn commit_failed(
        &mut self,
        offsets: &[(TopicPartition, i64)],
        e: ClientError,
    ) -> Result<(), RunError> {
        self.parts.commit_refused(offsets);
        if e.kind() == "membership" {
            tracing::warn!(worker = %self.name, error = %e, "commit refused: this member lost its partitions in a rebalance");
        } else if e.is_transient() {
            tracing::warn!(worker = %self.name, error = %e, "commit failed; the next one covers it");
        } else {
            return Err(RunError::Client(e));
        }
        Ok(())
    }

    /// The result of an asynchronous commit. A refused one is made again at the next
    /// checkpoint, even if the partition stays idle.
    pub(crate) fn commit_result(
        &mut self,
        offsets: &[(TopicPartition, i64)],
        result: Result<(), ClientError>,
    ) {
        match result {
            Ok(()) => self.parts.commit_accepted(offsets),
            Err(e) => {
                self.parts.commit_refused(offsets);
                tracing::warn!(worker = %self.name, error = %e, "asynchronous commit refused; committing again at the next checkpoint");
            }
        }
    }

    /// Exactly-once checkpoint: the worker's checkpoint, then the input offsets with the group's
    /// metadata and the commit, in the open transaction. A transaction that cannot commit (this
    /// member was fenced by a newer generation, the broker aborted it on timeout, a write
    /// failed) is aborted, and every assigned partition is restored from the last commit.
    fn commit_transaction<C: GroupConsumer<Group = P::Group>>(
        &mut self,
        consumer: &C,
        positions: &[Position],
    ) -> Result<(), RunError> {
        if positions.is_empty() && !self.out.txn().pending() {
            return Ok(());
        }
        if !matches!(self.out.txn(), crate::runner::txn::Txn::Doomed(_)) {
            let (worker, mut ctx) = self.parts();
            worker
                .checkpoint(&mut ctx, positions)
                .map_err(RunError::Worker)?;
        }
        // Every transaction carries the group's offsets, moved or not: the coordinator checks
        // the member's generation when they are added, which fences a resumed zombie's commit.
        let offsets = self.parts.all_offsets();
        let group = if offsets.is_empty() {
            None
        } else {
            consumer.group_metadata()
        };
        match self.out.commit_transaction(&offsets, group.as_ref()) {
            Ok(()) => {
                self.parts.commit_accepted(&offsets);
                self.metrics.committed(self.clock.unix_ms());
                Ok(())
            }
            Err(e) => self.abort_and_rewind(consumer, &e),
        }
    }

    /// Aborts the open transaction (re-creating the producer when the error is fatal, e.g. a
    /// fenced epoch), then restores every assigned partition from the group's committed offset.
    pub(crate) fn abort_and_rewind<C: GroupConsumer<Group = P::Group>>(
        &mut self,
        consumer: &C,
        error: &ClientError,
    ) -> Result<(), RunError> {
        tracing::warn!(
            worker = %self.name,
            error = %error,
            "transaction not committed; aborting it and processing its input again from the last commit"
        );
        self.out.abort(error, &self.name)?;
        self.metrics.aborted();
        self.rewind(consumer)
    }
}

/// The offsets to commit for `positions`.
fn offsets(positions: &[Position]) -> Vec<(TopicPartition, i64)> {
    positions
        .iter()
        .map(|p| (TopicPartition::new(&p.topic, p.partition), p.next_offset))
        .collect()
}
