//! The operator contract: small structs that turn input messages into output
//! messages, chained inside a task.

use std::task::{Context, Poll};

use datafusion::arrow::array::RecordBatch;

use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::checkpoint::snapshot::{SnapshotJob, SnapshotOutput};
use crate::error::Result;
use crate::message::{EventTime, StreamBatch};

/// The state one operator holds, as `weir.memory` shows it: what makes a
/// job's memory predictable is knowing which operator holds how much, for
/// how many keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateSize {
    /// Bytes in memory.
    pub bytes: usize,
    /// Keys it holds state for: an aggregate's groups (a window's, summed
    /// over its open slices), the partitions of Top-N, OVER or
    /// MATCH_RECOGNIZE, the distinct keys a join side holds, a lookup
    /// cache's entries. `None` where state is not kept per key (a sort's
    /// waiting rows, a window join's rows per window).
    pub keys: Option<usize>,
    /// Bytes spilled to local disk (the spilling state backend,
    /// `crate::spill`), besides `bytes` in memory.
    pub spilled: usize,
}

/// Where an operator puts what it produces; the task hands it to the next
/// operator of the chain or to the task's output.
#[derive(Default)]
pub struct Collector {
    pub(crate) out: Vec<Emitted>,
}

/// One thing an operator produced.
pub(crate) enum Emitted {
    Data(StreamBatch),
    Watermark(EventTime),
    /// Rows for the late-data side table; they skip the rest of the chain.
    Late(RecordBatch),
}

impl Collector {
    /// Emits rows (empty batches are dropped here, once for all operators).
    pub fn batch(&mut self, batch: StreamBatch) {
        if batch.num_rows() > 0 {
            self.out.push(Emitted::Data(batch));
        }
    }

    /// Sets rows aside for the query's late-data side table.
    pub fn late(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.out.push(Emitted::Late(batch));
        }
    }

    /// Forwards a watermark.
    pub fn watermark(&mut self, wm: EventTime) {
        self.out.push(Emitted::Watermark(wm));
    }
}

/// The error of an operator that reads two inputs (a join) handed a
/// batch without saying which input it came from.
pub fn side_required(name: &str) -> crate::error::EngineError {
    crate::error::EngineError::Plan(format!("{name}: a join's rows must come with their side"))
}

/// A streaming operator: one instance per parallel subtask, owned by the task
/// that runs it, so it needs no locking.
///
/// Operators see a single, already merged input: the task computes the
/// watermark over all of its input channels before calling
/// [`Operator::on_watermark`].
pub trait Operator: Send {
    /// Name used in errors, metrics and EXPLAIN.
    fn name(&self) -> &str;

    /// Handles a batch of rows.
    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()>;

    /// Handles a batch from input `input` of an operator that reads two
    /// streams (a join: 0 is the left side, 1 the right). Other operators
    /// have one input: the default hands the batch to `on_batch`.
    fn on_input(&mut self, _input: usize, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        self.on_batch(batch, out)
    }

    /// Handles a watermark advance. The default forwards it.
    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        out.watermark(watermark);
        Ok(())
    }

    /// How often the task calls [`Operator::on_timer`] (processing time),
    /// if at all.
    fn timer_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// A processing-time tick.
    fn on_timer(&mut self, _out: &mut Collector) -> Result<()> {
        Ok(())
    }

    /// The operator's state for checkpoint `checkpoint` (everything it
    /// processed so far); `None` for stateless operators. Large state goes
    /// into `chunks`: chunks a completed checkpoint already stored are
    /// referenced, not written again.
    fn snapshot(&mut self, _checkpoint: u64, _chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// [`Operator::snapshot`] in two halves: what runs here, at the
    /// barrier, takes a consistent view of the state cheaply (immutable
    /// Arrow arrays shared, not copied); the returned job encodes it and
    /// runs off the task loop, so that the stream goes on meanwhile. State
    /// the operator changes after this call must not reach the job. The
    /// default takes the whole snapshot here, as `snapshot` does.
    fn snapshot_async(&mut self, checkpoint: u64) -> Result<SnapshotJob> {
        let mut chunks = ChunkWriter::default();
        let state = self.snapshot(checkpoint, &mut chunks)?;
        Ok(Box::new(move || Ok(SnapshotOutput { state, chunks })))
    }

    /// Checkpoint `checkpoint` is complete: the chunks its snapshot wrote
    /// are stored, and later snapshots may reference them.
    fn checkpoint_complete(&mut self, _checkpoint: u64) {}

    /// Restores, before any input, what [`Operator::snapshot`] returned in
    /// the subtasks of a checkpoint — all of them, since the job may run at
    /// another parallelism now: the operator keeps the state of the key
    /// groups `owns` says are its own.
    fn restore(&mut self, _states: &[&[u8]], _chunks: &ChunkMap, _owns: &dyn Fn(usize) -> bool) -> Result<()> {
        Ok(())
    }

    /// [`Operator::restore`] of state saved by a query with fewer
    /// aggregates (a savepoint restored into a query that added aggregate
    /// columns, `checkpoint::evolution`): `saved[i]` is the saved aggregate
    /// that aggregate `i` restores, `None` for a new one, which starts from
    /// its empty state. Only aggregating operators can.
    fn restore_adding_aggregates(
        &mut self,
        _states: &[&[u8]],
        _chunks: &ChunkMap,
        _owns: &dyn Fn(usize) -> bool,
        _saved: &[Option<usize>],
    ) -> Result<()> {
        Err(crate::error::EngineError::Incompatible(
            "this operator keeps no aggregates: its state cannot gain aggregate columns".into(),
        ))
    }

    /// Called once when every input has ended, after the final watermark.
    fn on_end(&mut self, _out: &mut Collector) -> Result<()> {
        Ok(())
    }

    /// Whether the task may hand the operator more input now. An operator
    /// waiting on I/O (a lookup join) says no while its limit of requests in
    /// flight is reached: input then waits in its channel, which
    /// backpressures upstream, and the task only polls
    /// [`Operator::poll_progress`] until room frees up.
    fn accepts_input(&self) -> bool {
        true
    }

    /// Whether work is in flight that will still emit rows (lookups awaiting
    /// answers). At the end of input the task polls
    /// [`Operator::poll_progress`] until there is none before it calls
    /// [`Operator::on_end`], so no row is dropped.
    fn in_flight(&self) -> bool {
        false
    }

    /// Polls the operator's work in flight: `Ready` when it made progress
    /// (emitted into `out`, or freed room for input), `Pending` after
    /// registering `cx`'s waker. The task selects on this alongside its
    /// input, so asynchronous operators need no thread or timer of their
    /// own and the stream never blocks on one slow request. The default has
    /// nothing in flight.
    fn poll_progress(&mut self, _cx: &mut Context<'_>, _out: &mut Collector) -> Poll<Result<()>> {
        Poll::Pending
    }

    /// How much state the operator holds now, for `weir.memory`; nothing
    /// for stateless operators. Called every so many batches, not per batch:
    /// an estimate (sampled where counting would walk every key) will do.
    fn state_size(&self) -> StateSize {
        StateSize::default()
    }
}
