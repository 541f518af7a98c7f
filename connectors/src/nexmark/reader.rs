//! Reading a subtask's partitions: each makes its share of the event
//! numbers, paced to the event rate unless `'rate-limited' = 'false'`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use tokio::time::Instant;
use weir_engine::error::{Result, ResultExt};
use weir_engine::source::{SourceEvent, SourceReader};

use super::batch::generate;
use super::bid::Channels;
use super::config::Config;
use super::random::Filler;

/// Rows of the table's kind a batch holds at most.
const MAX_ROWS: u64 = 8192;

/// Batches per second when paced: rows are released about every 20 ms,
/// which keeps latency low without tiny batches.
const BATCHES_PER_SECOND: f64 = 50.0;

/// Partition `index` of `parts`: event numbers `index + k * parts`.
pub(crate) struct Partition {
    index: usize,
    /// Events of the share made so far, before a restart included: the
    /// checkpoint position.
    position: u64,
    /// Events in the share; `u64::MAX` when unbounded.
    limit: u64,
    /// Events made since this reader started, and when it started: the
    /// pace counts from there.
    produced: u64,
    started: Option<Instant>,
}

impl Partition {
    /// Partition `index` of `parts`, having made the first `position`
    /// events of its share of `number_of_events`.
    pub(crate) fn new(index: usize, parts: usize, position: u64, number_of_events: Option<u64>) -> Self {
        let (i, p) = (index as u64, parts.max(1) as u64);
        let limit = number_of_events.map_or(u64::MAX, |n| n.saturating_sub(i).div_ceil(p));
        Self {
            index,
            position,
            limit,
            produced: 0,
            started: None,
        }
    }

    fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.position)
    }
}

/// Makes the partitions of one subtask in turn.
pub(crate) struct NexmarkReader {
    config: Arc<Config>,
    channels: Arc<Channels>,
    filler: Arc<Filler>,
    schema: SchemaRef,
    parts: u64,
    /// Round robin: the front partition makes the next batch.
    partitions: VecDeque<Partition>,
    /// Events per second of each partition.
    rate: f64,
    /// Events a paced batch waits for, and the most a batch spans (about
    /// `MAX_ROWS` rows of the table's kind).
    batch_events: u64,
    max_events: u64,
}

impl NexmarkReader {
    pub(crate) fn new(
        config: Arc<Config>,
        channels: Arc<Channels>,
        filler: Arc<Filler>,
        schema: SchemaRef,
        parts: usize,
        partitions: Vec<Partition>,
    ) -> Self {
        let p = &config.proportions;
        let range = p.range(config.kind);
        let max_events = (MAX_ROWS * p.total).div_ceil(range.end - range.start);
        let rate = config.events_per_second as f64 / parts.max(1) as f64;
        let batch_events = if config.rate_limited {
            ((rate / BATCHES_PER_SECOND).ceil() as u64).clamp(1, max_events)
        } else {
            max_events
        };
        Self {
            config,
            channels,
            filler,
            schema,
            parts: parts.max(1) as u64,
            partitions: partitions.into(),
            rate,
            batch_events,
            max_events,
        }
    }

    /// Waits until the front partition's next batch is due. Its state
    /// changes only after the wait, so a dropped `next()` loses nothing.
    async fn wait_for_front(&mut self, remaining: u64) {
        if !self.config.rate_limited {
            return;
        }
        let Some(part) = self.partitions.front_mut() else {
            return;
        };
        let started = *part.started.get_or_insert_with(Instant::now);
        let wanted = self.batch_events.min(remaining);
        let due_in = Duration::try_from_secs_f64((part.produced + wanted) as f64 / self.rate).ok();
        if let Some(due) = due_in.and_then(|d| started.checked_add(d))
            && due > Instant::now()
        {
            tokio::time::sleep_until(due).await;
        }
    }

    /// Events of the next batch of `part`: more than `batch_events` when
    /// behind the pace, so that a high rate is kept without sleeping.
    fn batch_size(&self, part: &Partition, remaining: u64) -> u64 {
        if !self.config.rate_limited {
            return self.max_events.min(remaining);
        }
        let elapsed = part.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let due = (elapsed * self.rate) as u64;
        due.saturating_sub(part.produced)
            .clamp(self.batch_events.min(remaining), self.max_events.min(remaining))
    }

    fn generate(&self, part: &mut Partition, events: u64) -> Result<RecordBatch> {
        let first = part.index as u64 + part.position * self.parts;
        let batch = generate(&self.config, &self.channels, &self.filler, &self.schema, first, self.parts, events)
            .context(|| "nexmark: generating events".into())?;
        part.position += events;
        part.produced += events;
        Ok(batch)
    }
}

#[async_trait::async_trait]
impl SourceReader for NexmarkReader {
    async fn next(&mut self) -> Result<Option<SourceEvent>> {
        let Some(front) = self.partitions.front() else {
            return Ok(None);
        };
        let remaining = front.remaining();
        if remaining == 0 {
            let partition = front.index;
            self.partitions.pop_front();
            return Ok(Some(SourceEvent::PartitionEnd(partition)));
        }
        self.wait_for_front(remaining).await;
        let Some(mut part) = self.partitions.pop_front() else {
            return Ok(None);
        };
        let events = self.batch_size(&part, remaining);
        let batch = self.generate(&mut part, events);
        let (partition, position) = (part.index, part.position);
        self.partitions.push_back(part);
        Ok(Some(SourceEvent::Batch {
            partition,
            batch: batch?,
            // Generated events always decode.
            bad_records: Vec::new(),
            position,
        }))
    }
}
