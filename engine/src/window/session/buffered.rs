//! The input rows a session aggregate keeps until their sessions are
//! purged: one entry per input batch, in arrival order, in memory or, with
//! the spilling backend, in a spill file. Each batch is also a checkpoint
//! chunk, written once (its spill file's bytes, if it spilled) and then
//! referenced with a bitmap of its rows still live.

use std::collections::HashMap;

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::SchemaRef;

use crate::checkpoint::chunk::{ChunkId, ChunkWriter, Stored, new_chunk_id};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::live_rows;
use crate::error::{Result, ResultExt};
use crate::message::EventTime;
use crate::spill::{SpilledBytes, StateBudget};

/// Rows of one input batch that joined a session. Its key ids, times and
/// which rows are still live stay in memory, so that firing and purging
/// find a batch's rows without reading a spilled batch back.
pub(super) struct Buffered {
    data: Rows,
    /// Group-key id of each row.
    pub keys: Vec<u32>,
    pub times: Vec<EventTime>,
    /// Rows that joined a session (others were late or invalid).
    pub live: Vec<bool>,
    pub live_rows: usize,
    /// The batch as a checkpoint chunk.
    chunk: ChunkId,
    stored: Stored,
}

/// A buffered batch as a checkpoint saw it: its rows, shared rather than
/// copied, which of them were live, and whether its chunk must be written.
pub(super) struct Captured {
    data: Rows,
    live: Vec<bool>,
    chunk: ChunkId,
    write: bool,
}

/// Where a batch's rows are.
#[derive(Clone)]
enum Rows {
    Memory(RecordBatch),
    /// Spilled: the batch as [`Encoder::batch`] writes it.
    Disk(SpilledBytes),
}

impl Buffered {
    /// A batch of `data`'s rows, none live yet.
    pub fn new(data: RecordBatch, keys: Vec<u32>, times: Vec<EventTime>) -> Self {
        let n = data.num_rows();
        let (chunk, stored) = (new_chunk_id(), Stored::No);
        Self { data: Rows::Memory(data), keys, times, live: vec![false; n], live_rows: 0, chunk, stored }
    }

    pub fn num_rows(&self) -> usize {
        self.keys.len()
    }

    /// Bytes held in memory.
    pub fn memory(&self) -> usize {
        let data = match &self.data {
            Rows::Memory(b) => b.get_array_memory_size(),
            Rows::Disk(_) => 0,
        };
        data + self.keys.len() * 4 + self.times.len() * 8 + self.live.len()
    }

    /// Bytes spilled to disk.
    pub fn spilled(&self) -> usize {
        match &self.data {
            Rows::Memory(_) => 0,
            Rows::Disk(file) => file.bytes(),
        }
    }

    /// Writes the rows to a spill file of `budget`, if they are in memory;
    /// returns the bytes written.
    pub fn spill(&mut self, budget: &StateBudget) -> Result<usize> {
        let Rows::Memory(batch) = &self.data else {
            return Ok(0);
        };
        let file = budget.spill(&Encoder::batch_alone(batch)?)?;
        let written = file.bytes();
        self.data = Rows::Disk(file);
        Ok(written)
    }

    /// Its live rows that belong to the sessions `by_key`, with each row's
    /// session start and end; `None` when there are none (a spilled batch
    /// is then not read).
    pub fn rows_in(
        &self,
        by_key: &HashMap<u32, Vec<(EventTime, EventTime)>>,
        schema: &SchemaRef,
        name: &str,
    ) -> Result<Option<(RecordBatch, Vec<i64>, Vec<i64>)>> {
        let mut rows: Vec<u32> = Vec::new();
        let mut starts: Vec<i64> = Vec::new();
        let mut ends: Vec<i64> = Vec::new();
        for i in 0..self.num_rows() {
            if self.live[i]
                && let Some((s, e)) = super::in_session(by_key, self.keys[i], self.times[i])
            {
                rows.push(i as u32);
                starts.push(s);
                ends.push(e);
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some((self.data.take(rows, schema, name)?, starts, ends)))
    }

    /// Its rows and which are live now, for checkpoint `checkpoint`
    /// written off the task loop: the rows are shared, only the live flags
    /// are copied; its chunk is written until a checkpoint that carried it
    /// completes ([`Self::checkpoint_complete`]).
    pub fn capture(&mut self, checkpoint: u64) -> Captured {
        let write = self.stored != Stored::Yes;
        self.stored.sent(checkpoint);
        Captured { data: self.data.clone(), live: self.live.clone(), chunk: self.chunk, write }
    }

    /// Checkpoint `checkpoint` completed: the chunk it carried is stored.
    pub fn checkpoint_complete(&mut self, checkpoint: u64) {
        self.stored.completed(checkpoint);
    }
}

impl Captured {
    /// Lists the batch in `e` (its chunk id and live rows) and its chunk in
    /// `chunks`, with the batch's bytes if no completed checkpoint has
    /// them: a spilled batch's file already holds them.
    pub fn write(&self, e: &mut Encoder, chunks: &mut ChunkWriter) -> Result<()> {
        e.bytes(&self.chunk.to_le_bytes());
        e.bytes(&live_rows::bitmap(&self.live));
        if !self.write {
            chunks.reference(self.chunk);
            return Ok(());
        }
        match &self.data {
            Rows::Memory(batch) => chunks.write(self.chunk, Encoder::batch_alone(batch)?),
            Rows::Disk(file) => chunks.write_file(self.chunk, file.clone()),
        }
        Ok(())
    }
}

impl Rows {
    /// The rows at `rows`, read back if spilled.
    fn take(&self, rows: Vec<u32>, schema: &SchemaRef, name: &str) -> Result<RecordBatch> {
        let rows = UInt32Array::from(rows);
        match self {
            Self::Memory(b) => take_record_batch(b, &rows),
            Self::Disk(file) => take_record_batch(&Decoder::batch_alone_of(&file.read()?, schema)?, &rows),
        }
        .context(|| format!("{name}: reading buffered rows"))
    }
}
