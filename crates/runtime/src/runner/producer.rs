//! The loop's producer and its transaction (Kafka Streams' `StreamsProducer` and
//! `RecordCollectorImpl`): every output is tagged with a token naming its input record, the
//! delivery reports go to the acknowledgement tracker ([`crate::acks`]), and under exactly-once
//! every write goes in the open transaction ([`Txn`]).

use std::sync::Arc;
use std::time::Duration;

use crate::acks::{Slot, Token};
use crate::client::TRANSACTION_TIMEOUT;
use crate::client_error::ClientError;
use crate::io::{Deliveries, OutRecord, Producer, SendError, TopicPartition};
use crate::runner::txn::Txn;
use crate::worker::{Current, Output, RunError, WorkerError};

/// How long a flush waits for the outputs in flight; librdkafka retries within it.
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// The producer, its delivery reports and its transaction.
#[derive(Debug)]
pub(crate) struct Producing<P> {
    producer: P,
    deliveries: Arc<Deliveries>,
    txn: Txn,
    /// Transactions aborted so far.
    aborted: u64,
}

impl<P: Producer> Producing<P> {
    /// `producer`, whose reports go to `deliveries`; transactional when `exactly_once`.
    pub(crate) fn new(producer: P, deliveries: Arc<Deliveries>, exactly_once: bool) -> Self {
        Producing {
            producer,
            deliveries,
            txn: Txn::new(exactly_once),
            aborted: 0,
        }
    }

    /// The delivery reports.
    pub(crate) fn deliveries(&self) -> &Deliveries {
        &self.deliveries
    }

    /// The transaction's state.
    pub(crate) fn txn(&self) -> &Txn {
        &self.txn
    }

    /// Transactions aborted so far.
    pub(crate) fn aborted(&self) -> u64 {
        self.aborted
    }

    /// A new acknowledgement slot for a partition that starts at `next`.
    pub(crate) fn open_slot(&self, next: i64) -> Slot {
        self.deliveries.acks().open(next)
    }

    /// Forgets a slot (its late reports are ignored).
    pub(crate) fn close_slot(&self, slot: Slot) {
        self.deliveries.acks().close(slot);
    }

    /// Input record `offset` of `slot` is processed: every output it makes has been sent.
    pub(crate) fn processed(&self, slot: Slot, offset: i64) {
        self.deliveries.acks().processed(slot, offset);
    }

    /// Sends `record` for input record `current`, inside the transaction under exactly-once.
    /// There a failure dooms the transaction rather than the worker: it is kept for the
    /// checkpoint, which aborts and replays.
    fn send(&mut self, record: &OutRecord<'_>, current: Current) -> Result<(), ClientError> {
        let token = {
            let mut acks = self.deliveries.acks();
            match current {
                Some((slot, offset)) => acks.output(slot, offset),
                None => acks.untracked(),
            }
        };
        match self.txn {
            Txn::Off => self.send_now(record, token),
            Txn::Doomed(_) => {
                // Nothing of this transaction will be kept: the record is not sent, and its
                // token is reported at once so nothing waits for it.
                self.deliveries.report(token, Ok(()));
                Ok(())
            }
            Txn::Idle | Txn::Open => {
                let sent = match self.begin() {
                    Ok(()) => self.send_now(record, token),
                    Err(e) => {
                        self.deliveries.report(token, Ok(()));
                        Err(e)
                    }
                };
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "write failed inside the transaction; it will be aborted");
                    self.txn = Txn::Doomed(e);
                }
                Ok(())
            }
        }
    }

    /// Queues `record`, waiting while the producer's queue is full (it is bounded:
    /// `queue.buffering.max.*`; delivery reports free it).
    fn send_now(&self, record: &OutRecord<'_>, token: Token) -> Result<(), ClientError> {
        loop {
            match self.producer.send(record, token) {
                Ok(()) => return Ok(()),
                Err(SendError::QueueFull) => self.producer.wait_for_room(),
                Err(SendError::Failed(e)) => {
                    self.deliveries.report(token, Ok(()));
                    return Err(e);
                }
            }
        }
    }

    /// Opens a transaction if writes need one and none is open.
    pub(crate) fn begin(&mut self) -> Result<(), ClientError> {
        if matches!(self.txn, Txn::Idle) {
            self.producer.begin_transaction()?;
            self.txn = Txn::Open;
        }
        Ok(())
    }

    /// Waits until every output sent so far is reported (acknowledged or lost). Fails when some
    /// are still out after [`FLUSH_TIMEOUT`] (a broker away that long).
    pub(crate) fn settle(&self) -> Result<(), RunError> {
        if self.producer.wait_settled(FLUSH_TIMEOUT) {
            return Ok(());
        }
        let left = self.deliveries.acks().in_flight();
        Err(RunError::Delivery(Arc::new(ClientError::transient(
            "timed-out",
            format!(
                "{left} outputs not acknowledged within {} s",
                FLUSH_TIMEOUT.as_secs()
            ),
        ))))
    }

    /// Waits until every output sent so far is acknowledged; fails if any is still out or was
    /// lost.
    pub(crate) fn flush(&self) -> Result<(), RunError> {
        self.settle()?;
        match self.deliveries.acks().losses().into_iter().next() {
            Some((_, _, e)) => Err(RunError::Delivery(e)),
            None => Ok(()),
        }
    }

    /// Commits the open transaction with `offsets` (fenced by `group`'s generation); a doomed
    /// transaction fails with the error that doomed it.
    pub(crate) fn commit_transaction(
        &mut self,
        offsets: &[(TopicPartition, i64)],
        group: Option<&P::Group>,
    ) -> Result<(), ClientError> {
        if let Some(e) = self.txn.take_doom() {
            return Err(e);
        }
        self.begin()?;
        if !offsets.is_empty() {
            let group = group.ok_or_else(|| {
                ClientError::transient("membership", "not a member of the group at the moment")
            })?;
            self.producer
                .send_offsets_to_transaction(offsets, group, TRANSACTION_TIMEOUT)?;
        }
        self.producer.commit_transaction(TRANSACTION_TIMEOUT)?;
        self.txn = Txn::Idle;
        Ok(())
    }

    /// Aborts the open transaction; nothing it wrote becomes visible. After a fatal error (e.g.
    /// the broker bumped the producer epoch when it aborted a timed-out transaction) only a new
    /// producer can write again: its initialisation also aborts whatever the old one left open.
    pub(crate) fn abort(&mut self, error: &ClientError, worker: &str) -> Result<(), RunError> {
        let aborted = !error.is_fatal_transaction()
            && self
                .producer
                .abort_transaction(TRANSACTION_TIMEOUT)
                .inspect_err(|e| tracing::warn!(worker, error = %e, "abort failed"))
                .is_ok();
        if !aborted {
            tracing::warn!(worker, "re-creating the transactional producer");
            self.producer.renew()?;
        }
        self.txn = Txn::Idle;
        self.aborted += 1;
        Ok(())
    }
}

impl<P: Producer> Output for Producing<P> {
    fn send(&mut self, record: &OutRecord<'_>, current: Current) -> Result<(), WorkerError> {
        Producing::send(self, record, current).map_err(|e| Box::new(e) as WorkerError)
    }

    fn flush(&mut self) -> Result<(), WorkerError> {
        Producing::flush(self).map_err(|e| Box::new(e) as WorkerError)
    }

    fn acknowledged(&self, slot: Slot, next_offset: i64) -> Option<i64> {
        if self.txn.enabled() {
            // Everything processed commits or aborts with what is written now.
            return Some(next_offset);
        }
        self.deliveries.acks().acknowledged(slot)
    }
}
