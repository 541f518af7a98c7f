//! The Kafka sink. Rows become messages (the table's format; the key from
//! `'key.fields'`, so that a compacted topic keeps a re-fired window's
//! latest row). With exactly-once, rows a writer receives after a
//! checkpoint's barrier wait in memory until that checkpoint's transaction
//! commits (or turns out abandoned): a transaction then holds exactly the
//! rows between two completed checkpoints.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use rdkafka::ClientConfig;
use weir_engine::changelog::{self, RowKind};
use weir_engine::EngineError;
use weir_engine::error::Result;
use weir_engine::sink::{Committed, SinkConnector, SinkWriter};

use super::transaction::Transaction;
use super::Guarantee;
use super::layout::RecordLayout;
use crate::filesystem::encode::BatchEncoder;

/// A job's transaction, and whether subtask 0 of the current run has
/// taken it (a later run of the same job needs a new one).
struct Slot {
    transaction: Arc<Transaction>,
    taken: bool,
}

pub(crate) struct KafkaSink {
    config: ClientConfig,
    topic: String,
    layout: RecordLayout,
    schema: SchemaRef,
    guarantee: Guarantee,
    prefix: String,
    transactions: Mutex<BTreeMap<String, Slot>>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl KafkaSink {
    pub(crate) fn new(
        config: ClientConfig,
        topic: String,
        layout: RecordLayout,
        schema: SchemaRef,
        guarantee: Guarantee,
        prefix: String,
    ) -> Self {
        Self { config, topic, layout, schema, guarantee, prefix, transactions: Mutex::new(BTreeMap::new()) }
    }

    fn start(&self, job_id: &str) -> Result<Arc<Transaction>> {
        let id = format!("{}-{job_id}", self.prefix);
        Ok(Arc::new(Transaction::start(&self.config, &self.topic, self.guarantee, &id)?))
    }
}

impl SinkConnector for KafkaSink {
    fn describe(&self) -> String {
        format!("kafka topic={} format={} delivery={:?}", self.topic, self.layout.value_format.name(), self.guarantee)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// With `'key.fields'` the topic is an upsert topic (Flink's
    /// upsert-kafka): a row's latest value is its key's message, `-D` a
    /// tombstone; `-U` is not written when its `+U` follows in the batch,
    /// and is a tombstone when a filter dropped that.
    fn accepts_changes(&self) -> bool {
        self.layout.key.is_some()
    }

    fn committed_checkpoint(&self, job_id: &str) -> Result<Committed> {
        if self.guarantee != Guarantee::ExactlyOnce {
            return Ok(Committed::Untracked);
        }
        let transaction = self.start(job_id)?;
        let committed = transaction.committed_checkpoint()?;
        self.transactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job_id.to_string(), Slot { transaction, taken: false });
        Ok(Committed::Through(committed))
    }

    fn open(&self, job_id: &str, subtask: usize, _parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        let mut slots = self.transactions.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = match slots.get(job_id) {
            Some(slot) => subtask == 0 && slot.taken,
            None => true,
        };
        if fresh {
            slots.insert(job_id.to_string(), Slot { transaction: self.start(job_id)?, taken: false });
        }
        let slot = slots
            .get_mut(job_id)
            .ok_or_else(|| EngineError::Connector("kafka: sink transaction missing".into()))?;
        if subtask == 0 {
            slot.taken = true;
        }
        slot.transaction.writer_opened();
        Ok(Box::new(KafkaWriter {
            transaction: Arc::clone(&slot.transaction),
            encoder: BatchEncoder::new(self.layout.value_format.clone()),
            value_columns: (!self.layout.value_is_whole(&self.schema)).then(|| self.layout.value_columns.clone()),
            key: self.layout.key.as_ref().map(|k| {
                (k.columns.clone(), Arc::new(k.schema.clone()), BatchEncoder::new(k.format.clone()))
            }),
            frozen_at: None,
            held: Vec::new(),
        }))
    }
}

/// One subtask's writer.
struct KafkaWriter {
    transaction: Arc<Transaction>,
    encoder: BatchEncoder,
    /// The columns the value holds, when not all (`EXCEPT_KEY`).
    value_columns: Option<Vec<usize>>,
    /// The key's columns, its schema (named without `'key.fields-prefix'`)
    /// and encoder.
    key: Option<(Vec<usize>, SchemaRef, BatchEncoder)>,
    /// Exactly once: the checkpoint whose barrier this writer passed and
    /// whose transaction has not committed yet; rows wait in `held`.
    frozen_at: Option<u64>,
    held: Vec<RecordBatch>,
}

impl KafkaWriter {
    /// Sends a batch's rows, one message per row: the encoded lines; of a
    /// changelog, `-D` as a tombstone of its key, `-U` only as a tombstone
    /// when no `+U` of its key follows.
    async fn send(&self, batch: &RecordBatch) -> Result<()> {
        let (visible, kinds) = changelog::split(batch);
        let batch = &visible;
        let encode = |encoder: &BatchEncoder, batch: &RecordBatch| {
            encoder
                .encode(batch)
                .map_err(|e| EngineError::Connector(format!("kafka: encoding rows: {e}")))
        };
        let values = match &self.value_columns {
            None => encode(&self.encoder, batch)?,
            Some(cols) => {
                let projected =
                    batch.project(cols).map_err(|e| EngineError::Connector(format!("kafka: value columns: {e}")))?;
                encode(&self.encoder, &projected)?
            }
        };
        let keys = match &self.key {
            Some((cols, schema, encoder)) => {
                let projected = batch
                    .project(cols)
                    .and_then(|b| RecordBatch::try_new(Arc::clone(schema), b.columns().to_vec()))
                    .map_err(|e| EngineError::Connector(format!("kafka: key columns: {e}")))?;
                Some(encode(encoder, &projected)?)
            }
            None => None,
        };
        let key_list: Vec<&[u8]> = keys.as_deref().map(|k| k.split(|b| *b == b'\n').collect()).unwrap_or_default();
        let updated: std::collections::HashSet<&[u8]> = match &kinds {
            Some(k) => (0..batch.num_rows())
                .filter(|r| k.get(*r) == RowKind::UpdateAfter)
                .filter_map(|r| key_list.get(r).copied())
                .collect(),
            None => Default::default(),
        };
        for (row, value) in values.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let key = key_list.get(row).copied();
            match kinds.as_ref().map(|k| k.get(row)) {
                Some(RowKind::UpdateBefore) if key.is_some_and(|k| updated.contains(k)) => {}
                Some(RowKind::UpdateBefore | RowKind::Delete) => self.transaction.send(key, None).await?,
                _ => self.transaction.send(key, Some(value)).await?,
            }
        }
        Ok(())
    }

    async fn release_held(&mut self) -> Result<()> {
        for batch in std::mem::take(&mut self.held) {
            self.send(&batch).await?;
        }
        Ok(())
    }

    async fn blocking(&self, f: impl FnOnce(&Transaction) -> Result<()> + Send + 'static) -> Result<()> {
        let transaction = Arc::clone(&self.transaction);
        tokio::task::spawn_blocking(move || f(&transaction))
            .await
            .map_err(|e| EngineError::Connector(format!("kafka: {e}")))?
    }
}

#[async_trait::async_trait]
impl SinkWriter for KafkaWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if self.frozen_at.is_some() {
            self.held.push(batch);
            return Ok(());
        }
        self.send(&batch).await
    }

    async fn prepare(&mut self, checkpoint: u64) -> Result<Vec<u8>> {
        match self.transaction.guarantee() {
            Guarantee::ExactlyOnce => {
                // Still frozen: that checkpoint was abandoned (a completed
                // one is committed before the next barrier), so the held
                // rows belong to the open transaction after all.
                if self.frozen_at.is_some() {
                    self.frozen_at = None;
                    self.release_held().await?;
                }
                self.frozen_at = Some(checkpoint);
            }
            Guarantee::AtLeastOnce => self.blocking(|t| t.flush()).await?,
            Guarantee::None => {}
        }
        Ok(Vec::new())
    }

    async fn commit(&mut self, checkpoint: u64) -> Result<()> {
        if self.transaction.guarantee() != Guarantee::ExactlyOnce {
            return Ok(());
        }
        self.blocking(move |t| t.commit_through(checkpoint)).await?;
        if self.frozen_at.is_some_and(|f| f <= checkpoint) {
            self.frozen_at = None;
            self.release_held().await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        self.frozen_at = None;
        self.release_held().await?;
        self.blocking(|t| t.writer_finished()).await
    }
}
