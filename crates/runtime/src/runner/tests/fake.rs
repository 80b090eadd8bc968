//! A hand-made cluster for the loop's unit tests: scripted group events and commit results, a
//! producer whose deliveries the test acknowledges or fails, a manual clock. Error injection
//! only: the pipeline's behaviour is proven by the real-broker tests and the simulation.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::acks::Token;
use crate::client_error::ClientError;
use crate::headers::HeaderLookup;
use crate::io::{
    Clock, CommitMode, Deliveries, Fetched, GroupConsumer, InputMessage, LogReader, OutRecord,
    Polled, Producer, SendError, StartAt, TopicPartition,
};
use crate::partition::ReadError;

/// What the fake cluster saw and will answer.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Events `poll` returns next, in order.
    pub(crate) events: VecDeque<Event>,
    /// Results the next commits get (then `Ok`).
    pub(crate) commit_results: VecDeque<Result<(), ClientError>>,
    /// Every commit asked for: (offsets, mode).
    pub(crate) commits: Vec<(Vec<(TopicPartition, i64)>, CommitMode)>,
    /// Committed offsets.
    pub(crate) committed: BTreeMap<TopicPartition, i64>,
    /// Seeks asked for.
    pub(crate) seeks: Vec<(TopicPartition, i64)>,
    /// Partitions fetched.
    pub(crate) assigned: Vec<(TopicPartition, StartAt)>,
    /// Records sent and not yet reported: (topic, token).
    pub(crate) in_flight: VecDeque<(String, Token)>,
    /// Records sent, by topic.
    pub(crate) sent: Vec<String>,
    /// Transactional calls, in order (`begin`, `offsets …`, `commit`, `abort`).
    pub(crate) txn_calls: Vec<String>,
    /// Reports `wait_settled` gives the records in flight (then `Ok`).
    pub(crate) delivery_results: VecDeque<Result<(), ClientError>>,
}

/// A scripted poll result.
#[derive(Debug)]
pub(crate) enum Event {
    Record(String, i32, i64),
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>, bool),
    Committed(Vec<(TopicPartition, i64)>, Result<(), ClientError>),
}

/// The fake cluster, shared by its consumer, producer and reader.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fake(pub(crate) Rc<RefCell<State>>);

impl Fake {
    pub(crate) fn push(&self, e: Event) {
        self.0.borrow_mut().events.push_back(e);
    }

    pub(crate) fn state(&self) -> std::cell::RefMut<'_, State> {
        self.0.borrow_mut()
    }

    /// Reports every record in flight with the scripted results (`Ok` when none is left).
    pub(crate) fn deliver_all(&self, deliveries: &Deliveries) {
        loop {
            let next = {
                let mut s = self.0.borrow_mut();
                s.in_flight.pop_front().map(|(_, token)| {
                    let result = s.delivery_results.pop_front().unwrap_or(Ok(()));
                    (token, result)
                })
            };
            let Some((token, result)) = next else { break };
            deliveries.report(token, result);
        }
    }
}

/// A polled record.
#[derive(Debug)]
pub(crate) struct Msg {
    topic: String,
    partition: i32,
    offset: i64,
}

impl InputMessage for Msg {
    fn topic(&self) -> &str {
        &self.topic
    }
    fn partition(&self) -> i32 {
        self.partition
    }
    fn offset(&self) -> i64 {
        self.offset
    }
    fn key(&self) -> Option<&[u8]> {
        None
    }
    fn payload(&self) -> Option<&[u8]> {
        Some(b"x")
    }
    fn timestamp_ms(&self) -> Option<i64> {
        None
    }
    fn headers(&self) -> Option<&dyn HeaderLookup> {
        None
    }
}

/// Group metadata: the fake has one group, one generation.
#[derive(Debug)]
pub(crate) struct Group;

impl GroupConsumer for Fake {
    type Message<'a> = Msg;
    type Group = Group;

    fn subscribe(&self, _topics: &[String]) -> Result<(), ClientError> {
        Ok(())
    }

    fn unsubscribe(&self) {}

    fn poll(&self, _timeout: Duration) -> Polled<Msg> {
        match self.0.borrow_mut().events.pop_front() {
            None => Polled::Nothing,
            Some(Event::Record(topic, partition, offset)) => Polled::Record(Msg {
                topic,
                partition,
                offset,
            }),
            Some(Event::Assigned(p)) => Polled::Assigned(p),
            Some(Event::Revoked(partitions, lost)) => Polled::Revoked { partitions, lost },
            Some(Event::Committed(offsets, result)) => Polled::Committed { offsets, result },
        }
    }

    fn assign(&self, partitions: &[(TopicPartition, StartAt)]) -> Result<(), ClientError> {
        self.0.borrow_mut().assigned.extend_from_slice(partitions);
        Ok(())
    }

    fn unassign(&self, _partitions: &[TopicPartition]) -> Result<(), ClientError> {
        Ok(())
    }

    fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<(), ClientError> {
        self.0.borrow_mut().seeks.push((tp.clone(), offset));
        Ok(())
    }

    fn committed(&self, tp: &TopicPartition) -> Result<Option<i64>, ClientError> {
        Ok(self.0.borrow().committed.get(tp).copied())
    }

    fn commit(
        &self,
        offsets: &[(TopicPartition, i64)],
        mode: CommitMode,
    ) -> Result<(), ClientError> {
        let mut s = self.0.borrow_mut();
        s.commits.push((offsets.to_vec(), mode));
        let result = s.commit_results.pop_front().unwrap_or(Ok(()));
        if result.is_ok() && mode == CommitMode::Sync {
            for (tp, o) in offsets {
                s.committed.insert(tp.clone(), *o);
            }
        }
        result
    }

    fn group_metadata(&self) -> Option<Group> {
        Some(Group)
    }
}

/// The fake's producer: records what is sent; `wait_settled` delivers everything in flight.
#[derive(Debug)]
pub(crate) struct FakeProducer {
    pub(crate) fake: Fake,
    pub(crate) deliveries: Arc<Deliveries>,
}

impl Producer for FakeProducer {
    type Group = Group;

    fn send(&self, record: &OutRecord<'_>, token: Token) -> Result<(), SendError> {
        let mut s = self.fake.0.borrow_mut();
        s.sent.push(record.topic.to_owned());
        s.in_flight.push_back((record.topic.to_owned(), token));
        Ok(())
    }

    fn wait_settled(&self, _timeout: Duration) -> bool {
        self.fake.deliver_all(&self.deliveries);
        true
    }

    fn wait_for_room(&self) {}

    fn begin_transaction(&self) -> Result<(), ClientError> {
        self.fake.0.borrow_mut().txn_calls.push("begin".into());
        Ok(())
    }

    fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, i64)],
        _group: &Group,
        _timeout: Duration,
    ) -> Result<(), ClientError> {
        let listed: Vec<String> = offsets.iter().map(|(tp, o)| format!("{tp}@{o}")).collect();
        self.fake
            .0
            .borrow_mut()
            .txn_calls
            .push(format!("offsets {}", listed.join(",")));
        Ok(())
    }

    fn commit_transaction(&self, _timeout: Duration) -> Result<(), ClientError> {
        self.fake.deliver_all(&self.deliveries);
        self.fake.0.borrow_mut().txn_calls.push("commit".into());
        Ok(())
    }

    fn abort_transaction(&self, _timeout: Duration) -> Result<(), ClientError> {
        self.fake.0.borrow_mut().txn_calls.push("abort".into());
        Ok(())
    }

    fn renew(&mut self) -> Result<(), ClientError> {
        Ok(())
    }
}

/// Every partition of every topic is empty; the dead-letter topic has one partition.
#[derive(Debug)]
pub(crate) struct EmptyLog {
    /// The high watermark offset queries answer.
    pub(crate) watermark: Rc<Cell<i64>>,
    /// Where a read ends: beyond the watermark on a broker whose watermark lags.
    pub(crate) fetch_end: Rc<Cell<i64>>,
}

impl LogReader for EmptyLog {
    /// The records the loop consumes are in [`Fake`]; a read here sees only their offsets.
    fn log_bounds(&self, _topic: &str, _partition: i32) -> Result<(i64, i64), ReadError> {
        Ok((0, self.watermark.get()))
    }

    fn scan(
        &self,
        _topic: &str,
        _partition: i32,
        from: i64,
        f: &mut dyn FnMut(&Fetched<'_>),
    ) -> Result<(), ReadError> {
        for offset in from..self.fetch_end.get().max(self.watermark.get()) {
            f(&Fetched {
                offset,
                key: None,
                payload: None,
                headers: None,
            });
        }
        Ok(())
    }

    fn partition_count(&self, _topic: &str) -> Result<i32, ReadError> {
        Ok(1)
    }
}

/// A clock the test moves.
#[derive(Debug, Clone)]
pub(crate) struct ManualClock(pub(crate) Rc<Cell<Instant>>);

impl ManualClock {
    pub(crate) fn advance(&self, by: Duration) {
        self.0.set(self.0.get() + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.0.get()
    }

    fn unix_ms(&self) -> i64 {
        0
    }

    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}
