//! The input rows a session aggregate keeps until their sessions are
//! purged: one entry per input batch, in arrival order, in memory or, with
//! the spilling backend, in a spill file. Each batch is also a checkpoint
//! chunk, written once (its spill file's bytes, if it spilled) and then
//! referenced with a bitmap of its rows still live.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, Weak};

use datafusion::arrow::array::{BooleanBufferBuilder, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::SchemaRef;

use crate::checkpoint::chunk::{ChunkBytes, ChunkId, ChunkWriter, Stored, new_chunk_id};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{Result, ResultExt};
use crate::message::EventTime;
use crate::spill::{SpillTarget, SpilledBytes, StateBudget};

use super::membership::Chosen;

/// Rows of one input batch that joined a session. Which rows are still
/// live, and the time range of those that joined, stay in memory; each
/// row's key id and time only while its rows are in memory. Firing and
/// purging skip a batch whose times cannot be in the sessions at hand,
/// and compute a spilled batch's key ids and times again from its rows
/// when they read it: spilling frees all but a bit a row.
pub(super) struct Buffered {
    data: Rows,
    /// Where checkpoints still being written read the rows from, while one
    /// is: spilling points it at the spill file, so that a checkpoint in
    /// flight does not keep the spilled rows in memory.
    shared: Weak<Mutex<Rows>>,
    /// Group-key id and time of each row; empty once spilled.
    keys: Vec<u32>,
    times: Vec<EventTime>,
    /// The earliest and latest time of its rows that joined a session.
    earliest: EventTime,
    latest: EventTime,
    /// Rows that joined a session (others were late or invalid), a bit a
    /// row: the bitmap a checkpoint lists.
    live: BooleanBufferBuilder,
    pub live_rows: usize,
    /// The batch as a checkpoint chunk.
    chunk: ChunkId,
    stored: Stored,
}

/// A buffered batch as a checkpoint saw it: its rows, shared rather than
/// copied (and read from the spill file once the operator spills them),
/// the bitmap of which were live, and whether its chunk must be written.
pub(super) struct Captured {
    data: Arc<Mutex<Rows>>,
    live: Vec<u8>,
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
        let (earliest, latest) = (EventTime::MAX, EventTime::MIN);
        let mut live = BooleanBufferBuilder::new(n);
        live.append_n(n, false);
        Self {
            data: Rows::Memory(data),
            shared: Weak::new(),
            keys,
            times,
            earliest,
            latest,
            live,
            live_rows: 0,
            chunk,
            stored,
        }
    }

    /// Row `i`, at `ts`, joined a session.
    pub fn joined(&mut self, i: usize, ts: EventTime) {
        self.live.set_bit(i, true);
        self.live_rows += 1;
        self.earliest = self.earliest.min(ts);
        self.latest = self.latest.max(ts);
    }

    /// Whether it may have live rows with times within `[lo, hi]`.
    pub fn may_hold(&self, lo: EventTime, hi: EventTime) -> bool {
        self.live_rows > 0 && self.latest >= lo && self.earliest <= hi
    }

    /// Whether row `i` is live.
    pub fn is_live(&self, i: usize) -> bool {
        self.live.get_bit(i)
    }

    /// Row `i`, live, left its session (purged).
    pub fn purged(&mut self, i: usize) {
        self.live.set_bit(i, false);
        self.live_rows -= 1;
    }

    /// How many rows it has, live or not.
    pub fn rows_count(&self) -> usize {
        self.live.len()
    }

    /// Bytes of the live flags, which stay in memory when it spills.
    pub fn flag_bytes(&self) -> usize {
        self.live.capacity() / 8
    }

    /// Bytes held in memory.
    pub fn memory(&self) -> usize {
        let data = match &self.data {
            Rows::Memory(b) => b.get_array_memory_size(),
            Rows::Disk(_) => 0,
        };
        data + self.keys.len() * 4 + self.times.len() * 8 + self.flag_bytes()
    }

    /// The batch's chunk id.
    #[cfg(test)]
    pub fn chunk(&self) -> ChunkId {
        self.chunk
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
        let file = budget.spill(&Encoder::batch_alone_compressed(batch)?)?;
        let written = file.bytes();
        if let Some(shared) = self.shared.upgrade() {
            *shared.lock().unwrap_or_else(|p| p.into_inner()) = Rows::Disk(file.clone());
        }
        self.data = Rows::Disk(file);
        self.keys = Vec::new();
        self.times = Vec::new();
        Ok(written)
    }

    /// Its rows (read back if spilled) with each row's key id and time;
    /// `resolve` computes those of rows read back.
    pub fn rows(&self, schema: &SchemaRef, resolve: &mut Resolve) -> Result<Loaded<'_>> {
        Ok(match &self.data {
            Rows::Memory(batch) => Loaded {
                batch: Cow::Borrowed(batch),
                keys: Cow::Borrowed(&self.keys),
                times: Cow::Borrowed(&self.times),
            },
            Rows::Disk(file) => {
                let batch = Decoder::batch_alone_of(&file.read()?, schema)?;
                let (keys, times) = resolve(&batch)?;
                Loaded { batch: Cow::Owned(batch), keys: Cow::Owned(keys), times: Cow::Owned(times) }
            }
        })
    }

    /// Its live rows that belong to the `chosen` sessions, whose rows'
    /// times are within `[lo, hi]`, with each row's session start and end;
    /// `None` when there are none (a spilled batch is then not read unless
    /// its times meet `[lo, hi]`).
    pub fn rows_in(
        &self,
        chosen: &Chosen,
        (lo, hi): (EventTime, EventTime),
        schema: &SchemaRef,
        name: &str,
        resolve: &mut Resolve,
    ) -> Result<Option<SessionRows>> {
        if !self.may_hold(lo, hi) {
            return Ok(None);
        }
        let loaded = self.rows(schema, resolve)?;
        let mut rows: Vec<u32> = Vec::new();
        let mut starts: Vec<i64> = Vec::new();
        let mut ends: Vec<i64> = Vec::new();
        for i in 0..self.live.len() {
            if self.live.get_bit(i)
                && let Some((s, e)) = chosen.session_of(loaded.keys[i], loaded.times[i])
            {
                rows.push(i as u32);
                starts.push(s);
                ends.push(e);
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let rows = take_record_batch(&loaded.batch, &UInt32Array::from(rows))
            .context(|| format!("{name}: reading buffered rows"))?;
        Ok(Some((rows, starts, ends)))
    }

    /// Its rows and which are live now, for checkpoint `checkpoint`
    /// written off the task loop: the rows are shared (one place for every
    /// checkpoint in flight), only the live flags are copied; its chunk is
    /// written until a checkpoint that carried it completes
    /// ([`Self::checkpoint_complete`]).
    pub fn capture(&mut self, checkpoint: u64) -> Captured {
        let write = self.stored != Stored::Yes;
        self.stored.sent(checkpoint);
        let data = self.shared.upgrade().unwrap_or_else(|| {
            let data = Arc::new(Mutex::new(self.data.clone()));
            self.shared = Arc::downgrade(&data);
            data
        });
        Captured { data, live: self.live.as_slice().to_vec(), chunk: self.chunk, write }
    }

    /// Checkpoint `checkpoint` completed: the chunk it carried is stored.
    pub fn checkpoint_complete(&mut self, checkpoint: u64) {
        self.stored.completed(checkpoint);
    }
}

impl Captured {
    /// Lists the batch in `e` (its chunk id and live rows) and its chunk in
    /// `chunks`, with the batch's bytes if no completed checkpoint has
    /// them: a spilled batch's file already holds them; one in memory is
    /// encoded as [`ChunkBytes::of_batch`] says for the backend (`target`).
    pub fn write(&self, e: &mut Encoder, chunks: &mut ChunkWriter, target: Option<&SpillTarget>) -> Result<()> {
        e.bytes(&self.chunk.to_le_bytes());
        e.bytes(&self.live);
        if !self.write {
            chunks.reference(self.chunk);
            return Ok(());
        }
        // Taken out of the lock: the operator may spill it meanwhile.
        let data = self.data.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match &data {
            Rows::Memory(batch) => chunks.write(self.chunk, ChunkBytes::of_batch(batch, target)?),
            Rows::Disk(file) => chunks.write_file(self.chunk, file.clone()),
        }
        Ok(())
    }
}

/// Rows of a buffered batch in chosen sessions, with each row's session
/// start and end.
pub(super) type SessionRows = (RecordBatch, Vec<i64>, Vec<i64>);

/// Computes the key ids and times of a batch's rows read back.
pub(super) type Resolve<'a> = dyn FnMut(&RecordBatch) -> Result<(Vec<u32>, Vec<EventTime>)> + 'a;

/// A buffered batch's rows, with each row's key id and time.
pub(super) struct Loaded<'a> {
    pub batch: Cow<'a, RecordBatch>,
    pub keys: Cow<'a, [u32]>,
    pub times: Cow<'a, [EventTime]>,
}
