//! The state every step of the loop shares, and what it does with one input record: gate it,
//! let the worker process it, dead-letter it.

use std::time::Instant;

use crate::dead_letter::{self, Poison};
use crate::io::{Clock, GroupConsumer, InputMessage, LogReader, Producer, TopicPartition};
use crate::metrics::{self, BatchMetrics};
use crate::quirks::BrokerQuirks;
use crate::runner::gate::{Fetch, Gate};
use crate::runner::partitions::{Assigned, Partitions};
use crate::runner::producer::Producing;
use crate::worker::{Context, Current, LoopConfig, Outcome, Record, RunError, Worker};

/// Everything the loop's steps share except the consumer.
#[derive(Debug)]
pub(crate) struct Core<W, P, R, K> {
    pub(crate) worker: W,
    pub(crate) out: Producing<P>,
    pub(crate) reader: R,
    pub(crate) clock: K,
    pub(crate) cfg: LoopConfig,
    pub(crate) name: String,
    pub(crate) dlq_partitions: i32,
    /// The quirks in force (resolved: never `Auto`).
    pub(crate) quirks: BrokerQuirks,
    pub(crate) parts: Partitions,
    pub(crate) metrics: BatchMetrics,
}

impl<W, P, R, K> Core<W, P, R, K>
where
    W: Worker,
    P: Producer,
    R: LogReader,
    K: Clock,
{
    /// Splits the core into the worker and the context it may use.
    pub(crate) fn parts(&mut self) -> (&mut W, Context<'_>) {
        self.parts_for(None)
    }

    /// [`Core::parts`] while input record `current` is processed.
    pub(crate) fn parts_for(&mut self, current: Current) -> (&mut W, Context<'_>) {
        let ctx = Context {
            out: &mut self.out,
            reader: &self.reader,
            clock: &self.clock,
            dead_letters: &self.cfg.dead_letters,
            dlq_partitions: self.dlq_partitions,
            worker: &self.name,
            metrics: &mut self.metrics,
            assignment: &self.parts,
            current,
        };
        (&mut self.worker, ctx)
    }

    /// A polled record: processed if it is its partition's next input (see [`Fetch::gate`]),
    /// else skipped or fetched again.
    pub(crate) fn record<C: GroupConsumer>(
        &mut self,
        consumer: &C,
        m: &impl InputMessage,
    ) -> Result<(), RunError> {
        let (topic, p, offset) = (m.topic(), m.partition(), m.offset());
        let now = self.clock.now();
        let refetch_gaps = self.quirks.refetch_gaps();
        let Some(a) = self.parts.get_mut(topic, p) else {
            return Ok(()); // revoked meanwhile
        };
        let next = a.next_offset;
        match a.fetch.gate(offset, next, refetch_gaps, now) {
            Gate::Process => {
                if offset > next && next > 0 {
                    tracing::debug!(
                        topic,
                        partition = p,
                        expected = next,
                        got = offset,
                        "gap in input offsets"
                    );
                }
                self.process(m)
            }
            Gate::Skip => Ok(()),
            Gate::Refetch { from, tries } => {
                if tries == 0 {
                    tracing::error!(
                        topic,
                        partition = p,
                        expected = next,
                        got = offset,
                        "input offsets jumped and re-fetching did not help; taking the gap as it is"
                    );
                } else {
                    self.metrics.refetch();
                    tracing::warn!(
                        topic,
                        partition = p,
                        expected = next,
                        got = offset,
                        tries,
                        "gap in input offsets; fetching again"
                    );
                }
                consumer.seek(&TopicPartition::new(topic, p), from)?;
                Ok(())
            }
        }
    }

    /// Re-fetches due on the timer (see [`Fetch::due`]): seeks there.
    pub(crate) fn refetches_due<C: GroupConsumer>(&mut self, consumer: &C) -> Result<(), RunError> {
        let now = self.clock.now();
        let mut due = Vec::new();
        for (topic, p, a) in self.parts.iter_mut() {
            if let Some(Gate::Refetch { from, tries }) = a.fetch.due(a.next_offset, now) {
                due.push((TopicPartition::new(topic, p), from, tries));
            }
        }
        for (tp, from, tries) in due {
            self.metrics.refetch();
            tracing::warn!(
                topic = tp.topic,
                partition = tp.partition,
                tries,
                "no record since the partition was assigned or re-fetched; fetching again from further back"
            );
            consumer.seek(&tp, from)?;
        }
        Ok(())
    }

    /// Processes one gated record.
    fn process(&mut self, m: &impl InputMessage) -> Result<(), RunError> {
        let (topic, p, offset) = (m.topic(), m.partition(), m.offset());
        let Some(a) = self.parts.get_mut(topic, p) else {
            return Ok(());
        };
        a.next_offset = offset + 1;
        let slot = a.slot;
        if let Some((since, live_at)) = a.restoring
            && a.next_offset >= live_at
        {
            a.restoring = None;
            self.live(topic, p, since);
        }
        let record = Record {
            topic,
            partition: p,
            offset,
            key: m.key(),
            payload: m.payload().unwrap_or_default(),
            timestamp_ms: m.timestamp_ms(),
        };
        self.metrics.received(topic, p, record.timestamp_ms);
        let current = Some((slot, offset));
        let (worker, mut ctx) = self.parts_for(current);
        let outcome = worker
            .process(&mut ctx, &record)
            .map_err(RunError::Worker)?;
        if let Outcome::Poison(poison) = outcome {
            self.dead_letter(&record, &poison, current)?;
        }
        self.out.processed(slot, offset);
        Ok(())
    }

    /// Writes `record` to the dead-letter topic with headers naming `poison` and the source.
    fn dead_letter(
        &mut self,
        record: &Record<'_>,
        poison: &Poison,
        current: Current,
    ) -> Result<(), RunError> {
        tracing::warn!(
            worker = %self.name,
            topic = record.topic,
            partition = record.partition,
            offset = record.offset,
            class = poison.class,
            error = %poison.message,
            "record sent to dead letters"
        );
        let (payload, truncated_from) =
            dead_letter::bounded(record.payload, dead_letter::MAX_PAYLOAD);
        let headers = dead_letter::headers(
            poison,
            record.topic,
            record.partition,
            record.offset,
            &self.name,
            truncated_from,
        );
        let pairs: Vec<(&str, &[u8])> = headers
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let key = record
            .key
            .map(|k| dead_letter::bounded(k, dead_letter::MAX_TEXT).0);
        let (_, mut ctx) = self.parts_for(current);
        let (topic, partition) = (
            ctx.dead_letters,
            ctx.dead_letter_partition(record.partition),
        );
        ctx.send(topic, Some(partition), key, payload, &pairs)
            .map_err(RunError::Worker)?;
        self.metrics.dead_letter(poison.class);
        Ok(())
    }

    /// Lets the worker act on the round (e.g. write snapshots that are due).
    pub(crate) fn after_batch(&mut self, last: bool) -> Result<(), RunError> {
        let (worker, mut ctx) = self.parts();
        worker.after_batch(&mut ctx, last).map_err(RunError::Worker)
    }

    /// The loop's record of a partition that starts (or restarts) at `next`: a fresh
    /// acknowledgement slot, and on the embedded broker the watch for a start inside its last
    /// batch.
    pub(crate) fn open_partition(&self, next: i64) -> Assigned {
        let slot = self.out.open_slot(next);
        let fetch = Fetch::start(next, self.quirks.refetch_gaps(), self.clock.now());
        Assigned::new(next, slot, fetch)
    }

    /// Drops the loop's record of an assigned partition.
    pub(crate) fn forget(&mut self, topic: &str, p: i32) {
        if let Some(a) = self.parts.remove(topic, p) {
            self.out.close_slot(a.slot);
        }
    }

    /// `topic`/`p`, assigned at `since`, is live: its restore is over.
    pub(crate) fn live(&self, topic: &str, p: i32, since: Instant) {
        let took = self.clock.now().saturating_duration_since(since);
        let restore_ms = took.as_secs_f64() * 1000.0;
        tracing::info!(worker = %self.name, topic, partition = p, restore_ms, "partition live");
        metrics::restored(&self.name, took);
    }
}
