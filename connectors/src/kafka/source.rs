//! The Kafka source: a topic's partitions are the source's partitions;
//! a reader is assigned its partitions at explicit offsets (from the
//! checkpoint when there is one, else from `'scan.startup.mode'`), so the
//! checkpoint, not the consumer group, decides where reading resumes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use weir_engine::EngineError;
use weir_engine::error::Result;
use weir_engine::source::{Assignment, BrokerOffsets, PARTITION_ENDED, Positions, SourceConnector, SourceEvent, SourceReader};

use super::context::Quiet;
use super::metadata::{Collector, Fields};
use super::{BROKER_TIMEOUT, StartupMode, kafka_error};
use super::key_columns::KeyColumns;
use super::layout::RecordLayout;
use super::upsert::{Normalizer, Upsert};
use crate::filesystem::decode::RecordDecoder;
use crate::filesystem::lines::LineChunk;

/// Messages per batch at most.
const BATCH_ROWS: usize = 4096;
/// How long a batch that has rows waits for more.
const LINGER: Duration = Duration::from_millis(5);

/// Where reading starts, where it ends, and whether it grows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading {
    pub startup: StartupMode,
    /// `'scan.bounded.mode' = 'latest-offset'`: stop at the offsets that
    /// were the latest when the job started.
    pub bounded: bool,
    /// `'scan.topic-partition-discovery.interval'`, unless turned off (or
    /// the read is bounded).
    pub discovery: Option<Duration>,
}

pub(crate) struct KafkaSource {
    config: ClientConfig,
    topic: String,
    layout: RecordLayout,
    /// The table's connector schema: the record's columns and the
    /// metadata ones.
    schema: SchemaRef,
    metadata: Fields,
    reading: Reading,
    /// `upsert-kafka`: messages are upserts and tombstones of their keys,
    /// read as a changelog (`upsert.rs`).
    upsert: bool,
    /// Commits completed checkpoints' offsets to `properties.group.id`.
    committer: Mutex<Option<BaseConsumer<Quiet>>>,
    /// Asks the broker for offsets (`weir.kafka_lag`), kept between queries
    /// so that a Prometheus scrape does not connect anew.
    inspector: Mutex<Option<BaseConsumer<Quiet>>>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl KafkaSource {
    pub(crate) fn new(
        config: ClientConfig,
        topic: String,
        layout: RecordLayout,
        schema: SchemaRef,
        metadata: Fields,
        reading: Reading,
        upsert: bool,
    ) -> Self {
        Self {
            config,
            topic,
            layout,
            schema,
            metadata,
            reading,
            upsert,
            committer: Mutex::new(None),
            inspector: Mutex::new(None),
        }
    }

    fn consumer(&self) -> Result<StreamConsumer<Quiet>> {
        let mut config = self.config.clone();
        if config.get("group.id").is_none() {
            // librdkafka wants a group even for assigned partitions; offsets
            // are never committed to it.
            config.set("group.id", "weir");
        }
        // A bounded read ends a partition at its end-of-partition event too:
        // a topic written in transactions ends in a commit marker, an offset
        // no message has, so the last message is before the startup end.
        config
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", if self.reading.bounded { "true" } else { "false" });
        config
            .create_with_context(Quiet)
            .map_err(|e| kafka_error(format!("connecting to read topic '{}'", self.topic), e))
    }

    /// The offset reading starts at in `partition` without a checkpoint.
    fn start_offset(&self, consumer: &StreamConsumer<Quiet>, partition: i32, low: i64, high: i64) -> Result<i64> {
        Ok(match self.reading.startup {
            StartupMode::Earliest => low,
            StartupMode::Latest => high,
            StartupMode::GroupOffsets => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(&self.topic, partition);
                let committed = consumer
                    .committed_offsets(tpl, BROKER_TIMEOUT)
                    .map_err(|e| kafka_error("reading the group's committed offsets", e))?;
                match committed.elements().first().map(|e| e.offset()) {
                    Some(Offset::Offset(n)) => n,
                    _ => low,
                }
            }
            StartupMode::Timestamp(ms) => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&self.topic, partition, Offset::Offset(ms))
                    .map_err(|e| kafka_error("looking up offsets by time", e))?;
                let found = consumer
                    .offsets_for_times(tpl, BROKER_TIMEOUT)
                    .map_err(|e| kafka_error("looking up offsets by time", e))?;
                match found.elements().first().map(|e| e.offset()) {
                    Some(Offset::Offset(n)) => n,
                    _ => high,
                }
            }
        })
    }
}

impl SourceConnector for KafkaSource {
    fn describe(&self) -> String {
        let connector = if self.upsert { "upsert-kafka" } else { "kafka" };
        format!("{connector} topic={} format={}", self.topic, self.layout.value_format.name())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Offsets go to the group only once a checkpoint holds them, so the
    /// group's lag is what a restart would read again; asynchronously, as
    /// recovery never depends on them.
    fn checkpoint_committed(&self, positions: &Positions) {
        if self.config.get("group.id").is_none() {
            return;
        }
        let mut committer = self.committer.lock().unwrap_or_else(|p| p.into_inner());
        if committer.is_none() {
            let mut config = self.config.clone();
            config.set("enable.auto.commit", "false");
            match config.create_with_context::<_, BaseConsumer<Quiet>>(Quiet) {
                Ok(c) => *committer = Some(c),
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "cannot commit offsets to the consumer group");
                    return;
                }
            }
        }
        let mut tpl = TopicPartitionList::new();
        for (&p, &position) in positions.iter().filter(|(_, pos)| **pos != PARTITION_ENDED) {
            let _ = tpl.add_partition_offset(&self.topic, p as i32, Offset::Offset(position as i64));
        }
        if let Some(c) = committer.as_ref()
            && tpl.count() > 0
            && let Err(e) = c.commit(&tpl, CommitMode::Async)
        {
            tracing::warn!(topic = %self.topic, error = %e, "committing offsets to the consumer group failed");
        }
    }

    fn changelog(&self) -> bool {
        self.upsert || self.layout.value_format.is_changelog()
    }

    fn reads_partitions_together(&self) -> bool {
        true
    }

    fn broker_offsets(&self) -> Result<Vec<BrokerOffsets>> {
        let mut inspector = self.inspector.lock().unwrap_or_else(|p| p.into_inner());
        if inspector.is_none() {
            let mut config = self.config.clone();
            config.set("enable.auto.commit", "false");
            if config.get("group.id").is_none() {
                config.set("group.id", "weir");
            }
            let c: BaseConsumer<Quiet> = config
                .create_with_context(Quiet)
                .map_err(|e| kafka_error(format!("connecting to read the offsets of '{}'", self.topic), e))?;
            *inspector = Some(c);
        }
        let Some(consumer) = inspector.as_ref() else {
            return Ok(Vec::new());
        };
        let partitions = partition_count(consumer, &self.topic)?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&self.topic, p as i32);
        }
        // Without a group of its own the job commits nowhere.
        let committed = match self.config.get("group.id") {
            Some(_) => Some(
                consumer
                    .committed_offsets(tpl, BROKER_TIMEOUT)
                    .map_err(|e| kafka_error("reading the group's committed offsets", e))?,
            ),
            None => None,
        };
        (0..partitions)
            .map(|p| {
                let (_, high) = consumer
                    .fetch_watermarks(&self.topic, p as i32, BROKER_TIMEOUT)
                    .map_err(|e| kafka_error(format!("reading the offsets of '{}' partition {p}", self.topic), e))?;
                let committed = committed.as_ref().and_then(|c| {
                    c.find_partition(&self.topic, p as i32).and_then(|e| match e.offset() {
                        Offset::Offset(n) => u64::try_from(n).ok(),
                        _ => None,
                    })
                });
                Ok(BrokerOffsets { topic: self.topic.clone(), partition: p, high_watermark: u64::try_from(high).unwrap_or(0), committed })
            })
            .collect()
    }

    fn discovers_partitions(&self) -> bool {
        self.reading.discovery.is_some()
    }

    fn partitions(&self, _parallelism: usize) -> Result<usize> {
        partition_count(&self.consumer()?, &self.topic)
    }

    fn open(
        &self,
        assignment: Assignment,
        report_bad_records: bool,
        resume: &Positions,
    ) -> Result<Box<dyn SourceReader>> {
        let consumer = self.consumer()?;
        let mut tpl = TopicPartitionList::new();
        let mut open = BTreeSet::new();
        let mut ends = BTreeMap::new();
        let mut ended = VecDeque::new();
        let mut replay = BTreeMap::new();
        for &p in &assignment.partitions {
            let partition = p as i32;
            let (low, high) = consumer
                .fetch_watermarks(&self.topic, partition, BROKER_TIMEOUT)
                .map_err(|e| kafka_error(format!("reading the offsets of '{}' partition {p}", self.topic), e))?;
            let start = match resume.get(&p) {
                Some(&PARTITION_ENDED) => {
                    continue;
                }
                Some(&position) => position as i64,
                None => self.start_offset(&consumer, partition, low, high)?,
            };
            if self.reading.bounded && start >= high {
                ended.push_back(p);
                continue;
            }
            // An upsert topic's rows are rebuilt from its beginning.
            let start = match resume.get(&p) {
                Some(_) if self.upsert && start > low => {
                    replay.insert(p, start);
                    low
                }
                _ => start,
            };
            if self.reading.bounded {
                ends.insert(p, high);
            }
            open.insert(p);
            tpl
                .add_partition_offset(&self.topic, partition, Offset::Offset(start))
                .map_err(|e| kafka_error("assigning partitions", e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| kafka_error(format!("assigning partitions of '{}'", self.topic), e))?;
        let discovery = match self.reading.discovery {
            Some(every) => Some(Discovery {
                ticker: tokio::time::interval_at(tokio::time::Instant::now() + every, every),
                subtask: assignment.subtask,
                parallelism: assignment.parallelism,
                known: assignment.total,
            }),
            None => None,
        };
        let record = self.metadata.values(&self.schema);
        let value_schema = Arc::new(
            record
                .project(&self.layout.value_columns)
                .map_err(|e| EngineError::Connector(format!("kafka: the value's columns: {e}")))?,
        );
        Ok(Box::new(KafkaReader {
            consumer: Arc::new(consumer),
            topic: self.topic.clone(),
            bounded: self.reading.bounded,
            discovery,
            added: VecDeque::new(),
            ends,
            open,
            ended,
            decoder: RecordDecoder::new(self.layout.value_format.clone(), value_schema),
            keys: KeyColumns::new(&self.layout, record, report_bad_records),
            schema: self.schema.clone(),
            metadata: self.metadata.clone(),
            tolerant: report_bad_records || self.layout.value_format.ignore_parse_errors(),
            held: None,
            normalizer: match self.upsert {
                true => Some(Normalizer::new(&self.schema, replay)?),
                false => None,
            },
        }))
    }
}

/// The number of partitions `topic` has now.
fn partition_count<C: Consumer<Quiet>>(consumer: &C, topic: &str) -> Result<usize> {
    let metadata = consumer
        .fetch_metadata(Some(topic), BROKER_TIMEOUT)
        .map_err(|e| kafka_error(format!("reading the partitions of topic '{topic}'"), e))?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| EngineError::Connector(format!("kafka: topic '{topic}' does not exist")))?;
    if let Some(e) = found.error() {
        return Err(EngineError::Connector(format!(
            "kafka: topic '{topic}': {}",
            rdkafka::types::RDKafkaErrorCode::from(e)
        )));
    }
    if found.partitions().is_empty() {
        return Err(EngineError::Connector(format!("kafka: topic '{topic}' has no partitions")));
    }
    Ok(found.partitions().len())
}

/// Partition discovery of one reader: every `ticker` period it asks for
/// the topic's partitions and reads the new ones that are its own.
struct Discovery {
    ticker: tokio::time::Interval,
    subtask: usize,
    parallelism: usize,
    /// Partitions the topic had when last looked at.
    known: usize,
}

/// The next discovery round; never, without discovery.
async fn discovery_due(discovery: &mut Option<Discovery>) {
    match discovery {
        Some(d) => {
            d.ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// A message read while a batch of another partition was being built.
struct Held {
    partition: usize,
    offset: i64,
    payload: Option<Vec<u8>>,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
}

struct KafkaReader {
    /// Shared with discovery's metadata requests, which block and so run
    /// on tokio's blocking threads.
    consumer: Arc<StreamConsumer<Quiet>>,
    topic: String,
    bounded: bool,
    discovery: Option<Discovery>,
    /// Discovered partitions still to be announced.
    added: VecDeque<usize>,
    /// Bounded: per partition still read, the offset it ends before.
    ends: BTreeMap<usize, i64>,
    /// The partitions still read.
    open: BTreeSet<usize>,
    /// Partitions whose end is still to be reported.
    ended: VecDeque<usize>,
    decoder: RecordDecoder,
    /// With `EXCEPT_KEY`: the key's columns, read from the records' keys.
    keys: Option<KeyColumns>,
    schema: SchemaRef,
    metadata: Fields,
    tolerant: bool,
    held: Option<Held>,
    /// `upsert-kafka`: the latest row of each key.
    normalizer: Option<Normalizer>,
}

impl KafkaReader {
    /// Takes one message; false if it is past its partition's end (bounded).
    fn take(
        &mut self,
        held: Held,
        chunk: &mut LineChunk,
        keys: &mut LineChunk,
        collected: &mut Collector,
        messages: &mut Vec<Upsert>,
    ) -> bool {
        if let Some(end) = self.ends.get(&held.partition)
            && held.offset >= *end
        {
            return false;
        }
        if self.normalizer.is_some() {
            let line = held.payload.is_some().then(|| chunk.len());
            messages.push(Upsert { offset: held.offset, key: held.key.clone(), line });
        }
        // A tombstone (no value) has no row, as in Flink's formats.
        if let Some(payload) = &held.payload {
            chunk.push(payload, held.offset as u64);
            if let Some(k) = &self.keys {
                k.push(keys, held.key.as_deref(), held.offset as u64);
            }
            collected.push(held.offset, held.timestamp, held.key.as_deref());
        }
        if self.ends.get(&held.partition).is_some_and(|end| held.offset + 1 >= *end) {
            self.end(held.partition);
        }
        true
    }

    /// Bounded: `partition` has nothing more to read.
    fn end(&mut self, partition: usize) {
        if self.open.remove(&partition) {
            self.ends.remove(&partition);
            self.ended.push_back(partition);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&self.topic, partition as i32);
            let _ = self.consumer.pause(&tpl);
        }
    }

    /// Looks for new partitions of the topic; those of this subtask are
    /// read from their beginning (as Flink reads discovered partitions).
    /// A failed look is retried at the next round: the partitions already
    /// read are not affected.
    async fn discover(&mut self) -> Result<()> {
        let Some(d) = &mut self.discovery else {
            return Ok(());
        };
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topic.clone();
        let count = match tokio::task::spawn_blocking(move || partition_count(consumer.as_ref(), &topic)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::warn!(topic = %self.topic, error = %e, "partition discovery failed; retrying at the next interval");
                return Ok(());
            }
            Err(e) => return Err(EngineError::Connector(format!("kafka: partition discovery of '{}' stopped: {e}", self.topic))),
        };
        if count <= d.known {
            return Ok(());
        }
        let mut assignment = TopicPartitionList::new();
        for p in (d.known..count).filter(|p| p % d.parallelism == d.subtask) {
            assignment
                .add_partition_offset(&self.topic, p as i32, Offset::Beginning)
                .map_err(|e| kafka_error("assigning new partitions", e))?;
            self.open.insert(p);
            self.added.push_back(p);
        }
        d.known = count;
        if assignment.count() > 0 {
            self.consumer
                .incremental_assign(&assignment)
                .map_err(|e| kafka_error(format!("assigning new partitions of '{}'", self.topic), e))?;
        }
        Ok(())
    }

    fn held_of(&self, message: &BorrowedMessage<'_>) -> Held {
        let metadata = !self.metadata.is_empty();
        let key = metadata || self.keys.is_some() || self.normalizer.is_some();
        Held {
            partition: message.partition() as usize,
            offset: message.offset(),
            payload: message.payload().map(<[u8]>::to_vec),
            timestamp: if metadata { message.timestamp().to_millis() } else { None },
            key: if key { message.key().map(<[u8]>::to_vec) } else { None },
        }
    }
}

#[async_trait::async_trait]
impl SourceReader for KafkaReader {
    async fn next(&mut self) -> Result<Option<SourceEvent>> {
        if let Some(p) = self.ended.pop_front() {
            return Ok(Some(SourceEvent::PartitionEnd(p)));
        }
        if self.open.is_empty() && self.bounded {
            return Ok(None);
        }
        let mut chunk = LineChunk::default();
        let mut keys = LineChunk::default();
        let mut collected = self.metadata.collector();
        let mut messages = Vec::new();
        let first = match self.held.take() {
            Some(h) => h,
            None => loop {
                if let Some(p) = self.added.pop_front() {
                    return Ok(Some(SourceEvent::PartitionAdded(p)));
                }
                // Without partitions (yet), an unbounded source waits for
                // discovery, or forever.
                let received = tokio::select! {
                    m = self.consumer.recv(), if !self.open.is_empty() => m.map(|m| self.held_of(&m)),
                    () = discovery_due(&mut self.discovery) => {
                        self.discover().await?;
                        continue;
                    }
                };
                match received {
                    Ok(h) if self.open.contains(&h.partition) => break h,
                    Ok(_) => {}
                    Err(KafkaError::PartitionEOF(p)) => {
                        self.end(p as usize);
                        if let Some(p) = self.ended.pop_front() {
                            return Ok(Some(SourceEvent::PartitionEnd(p)));
                        }
                    }
                    Err(e) => return Err(kafka_error(format!("reading topic '{}'", self.topic), e)),
                }
            },
        };
        let partition = first.partition;
        let mut position = first.offset + 1;
        self.take(first, &mut chunk, &mut keys, &mut collected, &mut messages);
        while chunk.len() < BATCH_ROWS && self.open.contains(&partition) {
            let Ok(received) = tokio::time::timeout(LINGER, self.consumer.recv()).await else { break };
            let received = received.map(|m| self.held_of(&m));
            let h = match received {
                Ok(h) => h,
                Err(KafkaError::PartitionEOF(p)) => {
                    self.end(p as usize);
                    continue;
                }
                Err(e) => return Err(kafka_error(format!("reading topic '{}'", self.topic), e)),
            };
            if h.partition != partition {
                if self.open.contains(&h.partition) {
                    self.held = Some(h);
                }
                break;
            }
            let offset = h.offset;
            if self.take(h, &mut chunk, &mut keys, &mut collected, &mut messages) {
                position = offset + 1;
            }
        }
        let path = PathBuf::from(format!("{}/{partition}", self.topic));
        let mut decoded = self.decoder.decode(&chunk, &path, partition, self.tolerant)?;
        if let Some(k) = &self.keys {
            decoded = k.merge(decoded, &keys, &path, partition)?;
        }
        let kept = decoded.kept.unwrap_or_else(|| (0..chunk.len()).collect());
        let mut batch = if self.metadata.is_empty() {
            decoded.batch
        } else {
            self.metadata.assemble(&self.schema, decoded.batch, &self.topic, partition, collected, &kept)?
        };
        if let Some(normalizer) = &mut self.normalizer {
            // Replayed messages were emitted before the checkpoint: the
            // position stays at the checkpoint's until they are passed.
            position = position.max(normalizer.replays_until(partition).unwrap_or(0));
            batch = normalizer.changes(partition, &batch, &kept, &messages)?;
        }
        Ok(Some(SourceEvent::Batch {
            partition,
            batch,
            bad_records: decoded.bad,
            position: position as u64,
        }))
    }
}
