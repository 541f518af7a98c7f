//! Making a partition's events: each makes its share of the event
//! numbers, paced to the event rate unless `'rate-limited' = 'false'`
//! (`crate::paced`).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::error::{Result, ResultExt};

use super::batch::generate;
use super::bid::Channels;
use super::config::Config;
use super::random::Filler;
use crate::paced::{Generate, PacedReader, Progress};

/// Rows of the table's kind a batch holds at most.
const MAX_ROWS: u64 = 8192;

/// A partition's progress, in events of its share: partition `i` of `p`
/// makes events `i`, `i + p`, `i + 2p`, … of the whole sequence.
pub(crate) type Partition = Progress<()>;

/// Partition `index` of `parts`, `position` events into its share of
/// `number_of_events` (all of them when unbounded).
pub(crate) fn partition(index: usize, parts: usize, position: u64, number_of_events: Option<u64>) -> Partition {
    let (i, p) = (index as u64, parts.max(1) as u64);
    Progress::new(index, position, number_of_events.map(|n| n.saturating_sub(i).div_ceil(p)), ())
}

/// Makes the rows of one table's kind from a subtask's partitions.
pub(crate) struct NexmarkEvents {
    config: Arc<Config>,
    channels: Arc<Channels>,
    filler: Arc<Filler>,
    schema: SchemaRef,
    parts: u64,
}

impl Generate for NexmarkEvents {
    type State = ();

    fn generate(&mut self, part: &mut Partition, events: u64) -> Result<RecordBatch> {
        let first = part.index as u64 + part.position * self.parts;
        generate(&self.config, &self.channels, &self.filler, &self.schema, first, self.parts, events)
            .context(|| "nexmark: generating events".into())
    }
}

/// The reader of `parts` subtasks' share `partitions`: batches of at most
/// [`MAX_ROWS`] rows of the table's kind (events of other kinds are
/// skipped, so a batch spans more events), at the configured rate.
pub(crate) fn reader(
    config: Arc<Config>,
    channels: Arc<Channels>,
    filler: Arc<Filler>,
    schema: SchemaRef,
    parts: usize,
    partitions: Vec<Partition>,
) -> PacedReader<NexmarkEvents> {
    let p = &config.proportions;
    let range = config.rows();
    let max_events = (MAX_ROWS * p.total).div_ceil(range.end - range.start);
    let rate = config.rate_limited.then(|| config.events_per_second as f64 / parts.max(1) as f64);
    let events = NexmarkEvents { config, channels, filler, schema, parts: parts.max(1) as u64 };
    PacedReader::new(events, partitions, rate, max_events)
}
