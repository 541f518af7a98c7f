//! Generating a subtask's partitions at their share of the rate.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;
use weir_engine::error::{Result, ResultExt};
use weir_engine::source::{SourceEvent, SourceReader};

use super::field::FieldGen;

/// Largest batch, reached when the rate is high or the reader is behind.
const MAX_BATCH: u64 = 8192;

/// Batches per second at moderate rates: rows are released in batches of
/// about 20 ms worth, which keeps latency low without tiny batches.
const BATCHES_PER_SECOND: f64 = 50.0;

/// The progress of one partition.
pub(crate) struct PartitionGen {
    partition: usize,
    /// Per column, the sequence value of the next row (unused for random columns).
    next: Vec<i64>,
    /// Rows made in all, before a restart included: the partition's
    /// checkpoint position.
    position: u64,
    /// Rows made since this reader started: the rate schedule counts from
    /// `started`, so rows made before a restart must not count.
    produced: u64,
    /// Rows this partition makes in all, before a restart included; `None`
    /// when unbounded.
    limit: Option<u64>,
    /// When the partition made its first row: its schedule starts there.
    started: Option<Instant>,
}

impl PartitionGen {
    /// A partition that has already made `position` rows (0 on a fresh
    /// start), whose sequences continue at `next`.
    pub(crate) fn new(partition: usize, next: Vec<i64>, position: u64, limit: Option<u64>) -> Self {
        Self {
            partition,
            next,
            position,
            produced: 0,
            limit,
            started: None,
        }
    }

    /// Rows still to make; `u64::MAX` when unbounded.
    fn remaining(&self) -> u64 {
        self.limit
            .map_or(u64::MAX, |limit| limit.saturating_sub(self.position))
    }
}

/// Generates the partitions of one subtask in turn, each at `rate` rows per
/// second.
pub(crate) struct DatagenReader {
    schema: SchemaRef,
    fields: Arc<[FieldGen]>,
    /// Round robin: the front partition makes the next batch.
    partitions: VecDeque<PartitionGen>,
    rng: SmallRng,
    rate: f64,
    /// Rows a batch waits for before it is released.
    batch_rows: u64,
}

impl DatagenReader {
    pub(crate) fn new(
        schema: SchemaRef,
        fields: Arc<[FieldGen]>,
        partitions: Vec<PartitionGen>,
        rate: f64,
    ) -> Self {
        let batch_rows = ((rate / BATCHES_PER_SECOND).ceil() as u64).clamp(1, MAX_BATCH);
        Self {
            schema,
            fields,
            partitions: partitions.into(),
            rng: SmallRng::from_os_rng(),
            rate,
            batch_rows,
        }
    }

    /// Waits until the next batch of the front partition is due. Its
    /// state changes only after the wait, so a dropped `next()` loses
    /// nothing.
    async fn wait_for_front(&mut self, remaining: u64) {
        let Some(part) = self.partitions.front_mut() else {
            return;
        };
        let started = *part.started.get_or_insert_with(Instant::now);
        let wanted = self.batch_rows.min(remaining);
        let due_in = Duration::try_from_secs_f64((part.produced + wanted) as f64 / self.rate).ok();
        if let Some(due) = due_in.and_then(|d| started.checked_add(d))
            && due > Instant::now()
        {
            tokio::time::sleep_until(due).await;
        }
    }

    /// Rows of the next batch of `part`: more than `batch_rows` when behind
    /// schedule, so that a high rate is kept without sleeping.
    fn batch_size(&self, part: &PartitionGen, remaining: u64) -> u64 {
        let elapsed = part.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let due_rows = (elapsed * self.rate) as u64;
        due_rows
            .saturating_sub(part.produced)
            .clamp(self.batch_rows.min(remaining), MAX_BATCH.min(remaining))
    }

    fn generate(&mut self, part: &mut PartitionGen, rows: u64) -> Result<RecordBatch> {
        let now_ms = weir_engine::message::now_ms();
        let rows_usize = rows as usize;
        let columns = self
            .fields
            .iter()
            .zip(&mut part.next)
            .map(|(field, next)| {
                let column = field.generate(&mut self.rng, rows_usize, *next, now_ms);
                *next = next.saturating_add(rows as i64);
                column
            })
            .collect::<Result<Vec<_>, _>>()
            .context(|| "datagen: generating rows".into())?;
        part.produced += rows;
        part.position += rows;
        let options = RecordBatchOptions::new().with_row_count(Some(rows_usize));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .context(|| "datagen: building a batch".into())
    }
}

#[async_trait::async_trait]
impl SourceReader for DatagenReader {
    async fn next(&mut self) -> Result<Option<SourceEvent>> {
        let Some(front) = self.partitions.front() else {
            return Ok(None);
        };
        let remaining = front.remaining();
        if remaining == 0 {
            let partition = front.partition;
            self.partitions.pop_front();
            return Ok(Some(SourceEvent::PartitionEnd(partition)));
        }
        self.wait_for_front(remaining).await;
        let Some(mut part) = self.partitions.pop_front() else {
            return Ok(None);
        };
        let rows = self.batch_size(&part, remaining);
        let batch = self.generate(&mut part, rows);
        let (partition, position) = (part.partition, part.position);
        self.partitions.push_back(part);
        Ok(Some(SourceEvent::Batch {
            partition,
            batch: batch?,
            // Generated rows always decode.
            bad_records: Vec::new(),
            position,
        }))
    }
}
