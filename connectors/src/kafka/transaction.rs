//! One producer per job and sink table, shared by the sink's subtasks
//! (they all run in this process). With exactly-once it writes one
//! transaction per completed checkpoint, and that transaction carries the
//! checkpoint id as an offset committed for the consumer group
//! `<prefix>-<job>` (Kafka's `sendOffsetsToTransaction`): the commit of the
//! transaction is the single point at which both the rows and "checkpoint
//! n is committed" become visible, so recovery reads the group's offset to
//! learn which checkpoint's output is in the topic.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use weir_engine::EngineError;
use weir_engine::error::Result;

use super::context::Quiet;
use super::{BROKER_TIMEOUT, Guarantee, kafka_error};

/// Remembers the first message the broker did not take: a commit or flush
/// after it fails, so no row is lost silently.
#[derive(Default)]
pub(crate) struct Deliveries {
    failed: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::context::log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "weir::kafka", %error, reason, "librdkafka");
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, message)) = result {
            let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            if failed.is_none() {
                use rdkafka::Message;
                *failed = Some(format!("a message to '{}' was not delivered: {e}", message.topic()));
            }
        }
    }
}

/// A job's producer for one sink table.
pub(crate) struct Transaction {
    producer: ThreadedProducer<Deliveries>,
    topic: String,
    guarantee: Guarantee,
    /// The consumer group whose committed offset on partition 0 of the
    /// topic is the id of the last committed checkpoint.
    marker: Option<BaseConsumer<Quiet>>,
    /// The checkpoint the last commit covered.
    committed: Mutex<u64>,
    /// Writers that have not finished: the last one commits what is left.
    open_writers: AtomicUsize,
}

impl Transaction {
    /// Connects; with exactly-once, fences the job's earlier producer
    /// (aborting its open transaction) and begins a transaction.
    /// Blocking: call off the async runtime.
    pub(crate) fn start(config: &ClientConfig, topic: &str, guarantee: Guarantee, id: &str) -> Result<Self> {
        let mut config = config.clone();
        if guarantee == Guarantee::ExactlyOnce {
            config.set("transactional.id", id);
        } else {
            config.set("enable.idempotence", "true");
        }
        let producer: ThreadedProducer<Deliveries> = config
            .create_with_context(Deliveries::default())
            .map_err(|e| kafka_error(format!("creating a producer for topic '{topic}'"), e))?;
        // The topic must exist before the first commit: the commit marker
        // is an offset on its partition 0 (and a broker that creates topics
        // on demand creates it now).
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), BROKER_TIMEOUT)
            .map_err(|e| kafka_error(format!("reading the metadata of topic '{topic}'"), e))?;
        match metadata.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {}
            _ => {
                return Err(EngineError::Connector(format!(
                    "kafka: topic '{topic}' does not exist (create it, or let the broker create topics)"
                )));
            }
        }
        let marker = if guarantee == Guarantee::ExactlyOnce {
            producer
                .init_transactions(BROKER_TIMEOUT)
                .map_err(|e| kafka_error(format!("initialising transactions as '{id}'"), e))?;
            producer
                .begin_transaction()
                .map_err(|e| kafka_error("beginning a transaction", e))?;
            let mut group = config.clone();
            group.set("group.id", id).set("enable.auto.commit", "false");
            Some(
                group
                    .create_with_context::<_, BaseConsumer<Quiet>>(Quiet)
                    .map_err(|e| kafka_error(format!("creating the commit marker consumer of '{id}'"), e))?,
            )
        } else {
            None
        };
        Ok(Self {
            producer,
            topic: topic.to_string(),
            guarantee,
            marker,
            committed: Mutex::new(0),
            open_writers: AtomicUsize::new(0),
        })
    }

    /// The checkpoint whose output the last committed transaction carried
    /// (0: none). Read after `start` fenced the previous producer, so no
    /// transaction of the job is open. Blocking.
    pub(crate) fn committed_checkpoint(&self) -> Result<u64> {
        let Some(marker) = &self.marker else { return Ok(0) };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, 0);
        let offsets = marker
            .committed_offsets(tpl, BROKER_TIMEOUT)
            .map_err(|e| kafka_error("reading the last committed checkpoint", e))?;
        tracing::debug!(topic = %self.topic, offsets = ?offsets, "commit marker read");
        let committed = match offsets.elements().first().map(|e| e.offset()) {
            Some(Offset::Offset(n)) if n > 0 => n as u64,
            _ => 0,
        };
        *self.committed.lock().unwrap_or_else(|p| p.into_inner()) = committed;
        Ok(committed)
    }

    pub(crate) fn guarantee(&self) -> Guarantee {
        self.guarantee
    }

    pub(crate) fn writer_opened(&self) {
        self.open_writers.fetch_add(1, Ordering::SeqCst);
    }

    /// Sends one record (without a value: a tombstone); waits while
    /// librdkafka's queue is full.
    pub(crate) async fn send(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<()> {
        loop {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic);
            if let Some(value) = value {
                record = record.payload(value);
            }
            if let Some(key) = key {
                record = record.key(key);
            }
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                    // The same row is too large on every attempt.
                    return Err(EngineError::Refused(format!(
                        "kafka: a row of {} bytes is larger than the producer's 'message.max.bytes' \
                         (set 'properties.message.max.bytes' and the topic's 'max.message.bytes'): {}",
                        value.map_or(0, <[u8]>::len),
                        String::from_utf8_lossy(&value.unwrap_or_default()[..value.map_or(0, |v| v.len().min(200))])
                    )));
                }
                Err((e, _)) => return Err(kafka_error(format!("sending to topic '{}'", self.topic), e)),
            }
        }
    }

    /// Fails if a message was not delivered.
    fn check_deliveries(&self) -> Result<()> {
        match self.deliveries_failed() {
            Some(why) => Err(EngineError::Connector(format!("kafka: {why}"))),
            None => Ok(()),
        }
    }

    fn deliveries_failed(&self) -> Option<String> {
        self.producer.context().failed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// At least once: everything sent so far is acknowledged. Blocking.
    pub(crate) fn flush(&self) -> Result<()> {
        self.producer
            .flush(BROKER_TIMEOUT)
            .map_err(|e| kafka_error(format!("flushing to topic '{}'", self.topic), e))?;
        self.check_deliveries()
    }

    /// Exactly once: commits the open transaction, marked as carrying the
    /// output up to `checkpoint`, and begins the next. Commits once however
    /// many writers ask. Blocking.
    pub(crate) fn commit_through(&self, checkpoint: u64) -> Result<()> {
        let Some(marker) = &self.marker else { return self.flush() };
        let mut committed = self.committed.lock().unwrap_or_else(|p| p.into_inner());
        if *committed >= checkpoint {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&self.topic, 0, Offset::Offset(checkpoint as i64))
            .map_err(|e| kafka_error("marking the transaction", e))?;
        let group = marker
            .group_metadata()
            .ok_or_else(|| EngineError::Connector("kafka: the commit marker consumer has no group metadata".into()))?;
        self.producer
            .send_offsets_to_transaction(&offsets, &group, BROKER_TIMEOUT)
            .map_err(|e| kafka_error(format!("marking the transaction of checkpoint {checkpoint}"), e))?;
        self.producer
            .commit_transaction(BROKER_TIMEOUT)
            .map_err(|e| kafka_error(format!("committing the transaction of checkpoint {checkpoint}"), e))?;
        self.check_deliveries()?;
        tracing::debug!(topic = %self.topic, checkpoint, ms = started.elapsed().as_millis() as u64, "transaction committed");
        *committed = checkpoint;
        self.producer
            .begin_transaction()
            .map_err(|e| kafka_error("beginning a transaction", e))
    }

    /// A writer's input ended; the last one commits what is left (no
    /// checkpoint covers it: the job is finishing). Blocking.
    pub(crate) fn writer_finished(&self) -> Result<()> {
        if self.open_writers.fetch_sub(1, Ordering::SeqCst) != 1 {
            return Ok(());
        }
        match self.guarantee {
            Guarantee::ExactlyOnce => {
                self.producer
                    .commit_transaction(BROKER_TIMEOUT)
                    .map_err(|e| kafka_error("committing the last transaction", e))?;
                self.check_deliveries()
            }
            _ => self.flush(),
        }
    }
}
