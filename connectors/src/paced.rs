//! The reader of a generated source (datagen, nexmark): a subtask's
//! partitions make batches in turn, each at its share of the rate (or as
//! fast as they can), and report how far they got for checkpoints.

use std::collections::VecDeque;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use tokio::time::Instant;
use weir_engine::error::Result;
use weir_engine::source::{SourceEvent, SourceReader};

/// Batches per second at moderate rates: rows are released in batches of
/// about 20 ms worth, which keeps latency low without tiny batches.
const BATCHES_PER_SECOND: f64 = 50.0;

/// What a generated source makes.
pub(crate) trait Generate: Send {
    /// What a partition carries besides its position (datagen: the next
    /// value of each sequence).
    type State: Send;

    /// The next `units` of `part` (rows, or nexmark events), starting at
    /// `part.position`; the reader moves the position on afterwards.
    fn generate(&mut self, part: &mut Progress<Self::State>, units: u64) -> Result<RecordBatch>;
}

/// How far one partition got.
pub(crate) struct Progress<S> {
    pub(crate) index: usize,
    /// Units made in all, before a restart included: the partition's
    /// checkpoint position.
    pub(crate) position: u64,
    /// Units this partition makes in all; `u64::MAX` when unbounded.
    limit: u64,
    /// Units made since this reader started: the rate schedule counts from
    /// `started`, so units made before a restart must not count.
    produced: u64,
    /// When the partition made its first batch: its schedule starts there.
    started: Option<Instant>,
    pub(crate) state: S,
}

impl<S> Progress<S> {
    /// A partition that has already made `position` units (0 on a fresh
    /// start) of its `limit` (`None`: unbounded).
    pub(crate) fn new(index: usize, position: u64, limit: Option<u64>, state: S) -> Self {
        Self {
            index,
            position,
            limit: limit.unwrap_or(u64::MAX),
            produced: 0,
            started: None,
            state,
        }
    }

    fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.position)
    }
}

/// Makes the partitions of one subtask in turn (round robin: the front
/// one makes the next batch).
pub(crate) struct PacedReader<G: Generate> {
    generator: G,
    partitions: VecDeque<Progress<G::State>>,
    /// Units per second per partition; `None`: as fast as they can be made.
    rate: Option<f64>,
    /// Units a batch waits for before it is released.
    batch_units: u64,
    /// Largest batch, reached when the rate is high or a partition is behind.
    max_units: u64,
}

impl<G: Generate> PacedReader<G> {
    pub(crate) fn new(generator: G, partitions: Vec<Progress<G::State>>, rate: Option<f64>, max_units: u64) -> Self {
        let batch_units = rate.map_or(max_units, |r| ((r / BATCHES_PER_SECOND).ceil() as u64).clamp(1, max_units));
        Self {
            generator,
            partitions: partitions.into(),
            rate,
            batch_units,
            max_units,
        }
    }

    /// Waits until the next batch of the front partition is due. Its state
    /// changes only after the wait, so a dropped `next()` loses nothing.
    async fn wait_for_front(&mut self, remaining: u64) {
        let (Some(rate), Some(part)) = (self.rate, self.partitions.front_mut()) else {
            return;
        };
        let started = *part.started.get_or_insert_with(Instant::now);
        let wanted = self.batch_units.min(remaining);
        let due_in = Duration::try_from_secs_f64((part.produced + wanted) as f64 / rate).ok();
        if let Some(due) = due_in.and_then(|d| started.checked_add(d))
            && due > Instant::now()
        {
            tokio::time::sleep_until(due).await;
        }
    }

    /// Units of the next batch of `part`: more than `batch_units` when
    /// behind schedule, so that a high rate is kept without sleeping.
    fn batch_size(&self, part: &Progress<G::State>, remaining: u64) -> u64 {
        let Some(rate) = self.rate else {
            return self.max_units.min(remaining);
        };
        let elapsed = part.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let due = (elapsed * rate) as u64;
        due.saturating_sub(part.produced)
            .clamp(self.batch_units.min(remaining), self.max_units.min(remaining))
    }
}

#[async_trait::async_trait]
impl<G: Generate> SourceReader for PacedReader<G> {
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
        let units = self.batch_size(&part, remaining);
        let batch = self.generator.generate(&mut part, units)?;
        part.position += units;
        part.produced += units;
        let (partition, position) = (part.index, part.position);
        self.partitions.push_back(part);
        Ok(Some(SourceEvent::Batch {
            partition,
            batch,
            // Generated rows always decode.
            bad_records: Vec::new(),
            position,
        }))
    }
}
