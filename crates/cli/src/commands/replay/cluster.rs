//! What replay and verify ask the cluster: which topics exist, where partitions end, which
//! offset a time maps to, how far a consumer group has committed.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tradestream_runtime::KafkaConfig;
use tradestream_runtime::partition::{PartitionReader, ReaderContext};

/// A connection for looking things up, outside any consumer group.
pub struct Cluster {
    kafka: KafkaConfig,
    consumer: BaseConsumer<ReaderContext>,
    /// Reads partitions (each call bounded by the cluster's timeout).
    pub reader: PartitionReader,
    timeout: Duration,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap_servers", &self.kafka.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects; every call is bounded by `timeout`.
    pub fn connect(kafka: &KafkaConfig, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Cluster {
            kafka: kafka.clone(),
            consumer: kafka
                .reader()
                .create_with_context(ReaderContext)
                .context("cannot create a Kafka client")?,
            reader: PartitionReader::new(kafka, timeout)?,
            timeout,
        })
    }

    /// Every topic and its partition count. Asks for all topics, never one by name: a metadata
    /// request naming a missing topic may create it on a broker that auto-creates topics.
    pub fn topics(&self) -> anyhow::Result<BTreeMap<String, i32>> {
        let md = self
            .consumer
            .fetch_metadata(None, self.timeout)
            .with_context(|| {
                format!(
                    "the cluster at {} does not answer",
                    self.kafka.bootstrap_servers
                )
            })?;
        Ok(md
            .topics()
            .iter()
            .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
            .collect())
    }

    /// `topic`'s partition count; an error when it does not exist.
    pub fn partitions(&self, topic: &str) -> anyhow::Result<i32> {
        match self.topics()?.get(topic) {
            Some(n) if *n > 0 => Ok(*n),
            _ => anyhow::bail!("topic {topic} does not exist"),
        }
    }

    /// Low and high watermark of a partition.
    pub fn watermarks(&self, topic: &str, partition: i32) -> anyhow::Result<(i64, i64)> {
        Ok(self.reader.watermarks(topic, partition)?)
    }

    /// The offset of the last record a `read_committed` reader sees in the partition (none:
    /// empty). Under transactions the high watermark lies past it (the commit markers), so the
    /// watermark is no target for a consumer. Reads from just before the end, further back when
    /// that yields nothing (a fetch starting inside a batch may skip it on the embedded broker).
    pub fn last_offset(&self, topic: &str, partition: i32) -> anyhow::Result<Option<i64>> {
        let (low, high) = self.watermarks(topic, partition)?;
        for back in [1, 1_000, 100_000, i64::MAX] {
            let from = high.saturating_sub(back).max(low);
            let mut last = None;
            self.reader.read_to_end(topic, partition, from, |m| {
                last = Some(m.offset());
            })?;
            if last.is_some() || from == low {
                return Ok(last);
            }
        }
        Ok(None)
    }

    /// The earliest offset of each partition whose record's timestamp is at or after `ts_ms`;
    /// a partition without such a record maps to its end (high watermark).
    pub fn offsets_for_time(
        &self,
        topic: &str,
        partitions: i32,
        ts_ms: i64,
    ) -> anyhow::Result<BTreeMap<i32, i64>> {
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Offset(ts_ms))?;
        }
        let found = self
            .consumer
            .offsets_for_times(tpl, self.timeout)
            .with_context(|| format!("offsets_for_times on {topic}"))?;
        let mut out = BTreeMap::new();
        for p in 0..partitions {
            let at = match found
                .find_partition(topic, p)
                .map(|e| (e.offset(), e.error()))
            {
                Some((Offset::Offset(o), Ok(()))) if o >= 0 => o,
                Some((_, Err(e))) => anyhow::bail!("offsets_for_times {topic}/{p}: {e}"),
                // No record at or after the time: the partition starts at its end.
                _ => self.watermarks(topic, p)?.1,
            };
            out.insert(p, at);
        }
        Ok(out)
    }

    /// What `group` has committed on each of `topic`'s partitions (-1: nothing).
    pub fn committed(
        &self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> anyhow::Result<BTreeMap<i32, i64>> {
        let probe: BaseConsumer = self
            .kafka
            .group_consumer(group)
            .create()
            .context("cannot create a Kafka client")?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let committed = probe
            .committed_offsets(tpl, self.timeout)
            .with_context(|| format!("committed offsets of group {group}"))?;
        Ok((0..partitions)
            .map(|p| {
                let at = committed
                    .find_partition(topic, p)
                    .and_then(|e| e.offset().to_raw())
                    .unwrap_or(-1);
                (p, at)
            })
            .collect())
    }
}
