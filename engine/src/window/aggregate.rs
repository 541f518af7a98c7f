//! The window aggregate operator: where windows fire.
//!
//! Rows are folded into per-slice partial aggregates as they arrive. When the
//! watermark reaches `window_end - 1 ms`, the window's slices are merged and
//! its groups are emitted. With `ALLOWED LATENESS d` the window's state is
//! kept until the watermark reaches `window_end - 1 ms + d`; a row arriving
//! for it in that time re-fires it with the corrected result. A row is late
//! when every window it belongs to is past that point under the watermark in
//! force when it arrived; a hopping-window row that missed only some of its
//! windows counts toward the rest, as in Flink. Late rows and rows with an
//! invalid event time are counted, and sent to the `LATE DATA INTO` table
//! when the query has one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray, UInt32Array};
use datafusion::arrow::compute::{take, take_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};

use crate::checkpoint::chunk::{ChunkId, ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::snapshot::{SnapshotJob, SnapshotOutput};
use crate::error::{EngineError, Result, ResultExt};
use crate::event_time::EventTimeValidity;
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::metrics::{DropReason, OperatorMetrics};
use crate::operator::{Collector, Operator, StateSize};
use crate::operators::evaluate::columns;
use crate::runtime::exchange::KEY_GROUPS;
use crate::spill::StateBudget;
use crate::window::groups::{EvaluatedInput, Groups, Grouping, PartialState};
use crate::window::late::{LateOutputPlan, LateRows};
use crate::window::pending::oldest_open_windows;
use crate::window::slice::{Slice, read_chunk, read_chunk_refs};
use crate::window::spec::WindowSpec;

/// Where each output column of a window aggregate comes from; the order is
/// the one DataFusion's `Aggregate` node gives (group columns, then
/// aggregates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputColumn {
    WindowStart,
    WindowEnd,
    /// `window_end - 1 ms`, the rowtime of the result.
    WindowTime,
    /// The n-th non-window group key.
    Key(usize),
    /// The n-th aggregate.
    Aggregate(usize),
}

/// Everything a window aggregate subtask needs, shared by all subtasks.
#[derive(Debug)]
pub struct WindowAggregatePlan {
    pub window: WindowSpec,
    pub aggregation: WindowedAggregation,
}

/// What every windowed aggregation has, whatever its windows.
#[derive(Debug)]
pub struct WindowedAggregation {
    /// Index of the event-time column (`TIMESTAMP(3)`) in the input.
    pub time_column: usize,
    pub grouping: Grouping,
    pub output: Vec<OutputColumn>,
    pub output_schema: SchemaRef,
    /// `ALLOWED LATENESS`, in milliseconds (0 without the clause).
    pub allowed_lateness: i64,
    /// The source table's valid event-time range.
    pub validity: EventTimeValidity,
    /// `LATE DATA INTO`: where unusable rows go.
    pub late_output: Option<Arc<LateOutputPlan>>,
    /// `EMIT EARLY EVERY`: how often open windows emit running results.
    pub emit_early: Option<std::time::Duration>,
}

/// Rows of one slice that count toward windows ending at `min_end` or later.
///
/// Ordinarily `min_end` is the first window of the slice; rows that arrived
/// after some of their hopping windows had been purged get their own entry
/// so they join only the windows still open for them.
pub type SliceKey = (EventTime, EventTime);

/// One subtask's window aggregate state as [`WindowAggregate::snapshot`]
/// writes it: its watermark, the ends of its pending and kept windows, and
/// per slice the chunks (key group, chunk id) of its partial states. The
/// one reader of that layout, for restoring and for inspecting a savepoint
/// (`checkpoint::inspect`).
#[derive(Debug, Default)]
pub struct SavedWindowState {
    pub watermark: EventTime,
    pub pending: Vec<EventTime>,
    pub kept: Vec<EventTime>,
    /// Per slice: (slice start, first window end its rows count toward),
    /// and its chunks.
    pub slices: Vec<(SliceKey, Vec<(usize, ChunkId)>)>,
}

impl SavedWindowState {
    /// Reads one subtask's state; damaged bytes are an error, never a panic.
    pub fn decode(state: &[u8]) -> Result<Self> {
        let mut d = Decoder::new(state);
        let mut saved = Self { watermark: d.i64()?, ..Self::default() };
        for set in [&mut saved.pending, &mut saved.kept] {
            for _ in 0..d.u64()? {
                set.push(d.i64()?);
            }
        }
        for _ in 0..d.u64()? {
            let key = (d.i64()?, d.i64()?);
            saved.slices.push((key, read_chunk_refs(&mut d)?));
        }
        d.finish()?;
        Ok(saved)
    }

    /// The partial states of chunk `id` of this state.
    pub fn chunk(chunks: &ChunkMap, id: ChunkId) -> Result<PartialState> {
        read_chunk(chunks, id)
    }
}

/// One subtask of a window aggregate.
pub struct WindowAggregate {
    plan: Arc<WindowAggregatePlan>,
    name: String,
    watermark: EventTime,
    slices: BTreeMap<SliceKey, Slice>,
    /// Ends of windows that hold data and have not fired.
    pending: BTreeSet<EventTime>,
    /// Ends of windows that fired and are kept for allowed lateness.
    kept: BTreeSet<EventTime>,
    /// Ends of open windows with rows since their last early emission.
    dirty: BTreeSet<EventTime>,
    /// The open windows changed (a window opened or fired, a slice gained
    /// a key group) since they were last published to the metrics.
    open_windows_changed: bool,
    /// Scratch buffer for the key hashes of new groups.
    hashes: Vec<u64>,
    /// The groups the last window that merged slices fired from, emptied:
    /// the next such window merges into them, so that its hash table
    /// starts at the size the last one grew to (growing a fresh one was a
    /// quarter of a HOP window's time).
    merged: Option<Groups>,
    metrics: Arc<OperatorMetrics>,
    /// The subtask's share of the job's state budget, with the spilling
    /// backend: over it, the slices spill, and windows fire one key group
    /// at a time.
    budget: Option<StateBudget>,
}

impl WindowAggregate {
    /// Restores the slices of every subtask's state (see
    /// [`Operator::restore`]); with `added`, state of a query with fewer
    /// aggregates (`Grouping::adding_aggregates`).
    fn restore_slices(
        &mut self,
        states: &[&[u8]],
        chunks: &ChunkMap,
        owns: &dyn Fn(usize) -> bool,
        added: Option<&[Option<usize>]>,
    ) -> Result<()> {
        // The slowest subtask's watermark: no row is late that was not.
        let mut watermark = None::<EventTime>;
        for state in states {
            let saved = SavedWindowState::decode(state)?;
            watermark = Some(watermark.map_or(saved.watermark, |m| m.min(saved.watermark)));
            self.pending.extend(saved.pending);
            self.kept.extend(saved.kept);
            for (key, refs) in saved.slices {
                if !self.slices.contains_key(&key) {
                    let slice = Slice::new(&self.plan.aggregation.grouping, &self.name, self.budget.is_some())?;
                    self.slices.insert(key, slice);
                }
                let slice = self.slices.get_mut(&key).expect("inserted above");
                slice.restore(&self.plan.aggregation.grouping, &refs, chunks, owns, added)?;
                self.keep_within_budget()?;
            }
        }
        // Slices with none of this subtask's key groups.
        self.slices.retain(|_, s| !s.is_only_live() || !s.live.is_empty());
        if let Some(w) = watermark {
            self.watermark = w;
            self.metrics.watermark.store(w, Ordering::Relaxed);
        }
        // Kept windows the slowest watermark has not fired yet fire again.
        let unfired: Vec<EventTime> =
            self.kept.iter().filter(|e| e.saturating_sub(1) > self.watermark).copied().collect();
        for e in unfired {
            self.kept.remove(&e);
            self.pending.insert(e);
        }
        self.open_windows_changed = true;
        self.publish_open_windows();
        Ok(())
    }

    /// Publishes each key group's oldest open window to the metrics
    /// (`weir.pending_windows`), if they changed: after a batch or a
    /// watermark, never per row.
    fn publish_open_windows(&mut self) {
        if !std::mem::take(&mut self.open_windows_changed) {
            return;
        }
        let slices = self.slices.iter().map(|(k, s)| (*k, s.key_groups()));
        let open = oldest_open_windows(slices, &self.plan.window, &self.pending);
        *self.metrics.pending_windows.lock().unwrap_or_else(|p| p.into_inner()) = open;
    }

    /// A subtask; with `budget`, its state spills beyond that share.
    pub fn new(
        plan: Arc<WindowAggregatePlan>,
        name: String,
        metrics: Arc<OperatorMetrics>,
        budget: Option<StateBudget>,
    ) -> Self {
        Self {
            plan,
            name,
            watermark: WATERMARK_MIN,
            slices: BTreeMap::new(),
            pending: BTreeSet::new(),
            kept: BTreeSet::new(),
            dirty: BTreeSet::new(),
            open_windows_changed: false,
            hashes: Vec::new(),
            merged: None,
            metrics,
            budget,
        }
    }

    /// With a state budget: once the subtask holds more than its share in
    /// memory, every slice spills what it holds (the live groups too), so
    /// that memory falls back to nothing and fills again with new groups.
    fn keep_within_budget(&mut self) -> Result<()> {
        let Some(budget) = &mut self.budget else {
            return Ok(());
        };
        let held = self.slices.values().map(Slice::size).sum();
        if budget.fits(held) {
            return Ok(());
        }
        let mut written = 0;
        for slice in self.slices.values_mut() {
            written += slice.spill(budget, &self.plan.aggregation.grouping, &self.name, &mut self.hashes)?;
        }
        self.metrics.spilled_bytes.fetch_add(written as u64, Ordering::Relaxed);
        budget.spilled(held, self.slices.values().map(Slice::size).sum());
        Ok(())
    }

    /// The first window end a row at `ts` still counts toward when it
    /// arrives under watermark `wm`; `None` if it is late. A window ending
    /// at `e` takes rows until the watermark reaches `e - 1 + lateness`.
    #[inline]
    fn first_open_end(&self, slice_start: EventTime, ts: EventTime, wm: EventTime) -> Option<EventTime> {
        let w = &self.plan.window;
        let first = first_end_of_slice(w, slice_start);
        if wm == WATERMARK_MIN {
            return Some(first);
        }
        // Windows ending at or before `closed` no longer take rows.
        let closed = wm.saturating_sub(self.plan.aggregation.allowed_lateness).saturating_add(1);
        if w.last_window_end(ts) <= closed {
            return None;
        }
        if first > closed {
            return Some(first);
        }
        w.window_ends_of_slice(slice_start).find(|e| *e > closed)
    }

    /// Folds rows into one slice. Windows of the slice that already fired
    /// (kept for allowed lateness, or never fired because they were empty
    /// until now) are added to `refire`.
    fn update_slice(
        &mut self,
        key: SliceKey,
        input: &EvaluatedInput,
        rows: usize,
        refire: &mut BTreeSet<EventTime>,
    ) -> Result<()> {
        for end in self.plan.window.window_ends_of_slice(key.0) {
            if end < key.1 {
                continue;
            }
            if self.kept.contains(&end) {
                refire.insert(end);
            } else if end.saturating_sub(1) > self.watermark {
                self.open_windows_changed |= self.pending.insert(end);
                if self.plan.aggregation.emit_early.is_some() {
                    self.dirty.insert(end);
                }
            } else {
                // Past its end but within allowed lateness, and empty so far.
                self.kept.insert(end);
                refire.insert(end);
            }
        }
        if !self.slices.contains_key(&key) {
            let slice = Slice::new(&self.plan.aggregation.grouping, &self.name, self.budget.is_some())?;
            self.slices.insert(key, slice);
        }
        let slice = self.slices.get_mut(&key).expect("inserted above");
        self.open_windows_changed |= slice.update(input, rows, &self.name, &mut self.hashes)?;
        Ok(())
    }

    /// Emits the window ending at `end`. An `early` emission (EMIT EARLY)
    /// keeps every slice as it is for the final one.
    fn fire(&mut self, end: EventTime, early: bool, out: &mut Collector) -> Result<()> {
        if !early {
            self.dirty.remove(&end);
        }
        let w = self.plan.window;
        let start = w.window_start(end);
        let name = self.name.clone();
        let ctx = || format!("{name}: firing window [{start}, {end})");
        let mut keys: Vec<SliceKey> = self
            .slices
            .range((start, EventTime::MIN)..(end, EventTime::MIN))
            .filter(|(k, _)| k.1 <= end)
            .map(|(k, _)| *k)
            .collect();
        // emitOnlyOnUpdate: the last slice merges first, so that the groups
        // it updated are the window's first groups, the only ones emitted.
        let last_slice = end - w.slice_size();
        let only_updated = w.emit_only_on_update && !early;
        if only_updated {
            keys.sort_by_key(|k| k.0 != last_slice);
        }
        let tumbling = matches!(w.kind, crate::window::spec::WindowKind::Tumble { .. });
        let keep = early || self.plan.aggregation.allowed_lateness > 0;
        // Under a budget a slice with parts fires one key group at a time,
        // so that its spilled parts are read back a little at a time.
        let order_free = self.budget.is_none() && self.plan.aggregation.grouping.merges_in_any_order();
        let whole = |s: &Slice| order_free || s.is_only_live();
        if tumbling && !keep && keys.len() == 1 && self.slices.get(&keys[0]).is_some_and(whole) {
            let slice = self.slices.remove(&keys[0]).expect("key from the map");
            let (group_keys, values, rows) = slice.into_final(&name)?;
            return self.emit(start, end, group_keys, values, rows, out);
        }
        if self.budget.is_some() {
            self.fire_by_key_group(&keys, last_slice, only_updated, (start, end), out)?;
        } else {
            let mut window = match self.merged.take() {
                Some(emptied) => emptied,
                None => self.plan.aggregation.grouping.new_groups().context(ctx)?,
            };
            let mut updated = 0;
            for k in &keys {
                let slice = self.slices.get_mut(k).expect("key from the map");
                slice.merge_into(&mut window, &name, &mut self.hashes)?;
                if k.0 == last_slice {
                    updated = window.len();
                }
            }
            let (group_keys, values, rows) = window.take_final().context(ctx)?;
            self.merged = Some(window);
            let (group_keys, values, rows) = only_updated_groups(group_keys, values, rows, only_updated, updated);
            self.emit(start, end, group_keys, values, rows, out)?;
        }
        if !keep {
            self.drop_slices_before(end);
        }
        Ok(())
    }

    /// Fires the window of `keys` one key group at a time, reading back
    /// only that group's spilled parts: firing holds about
    /// 1/`KEY_GROUPS` of the window's state in memory.
    fn fire_by_key_group(
        &mut self,
        keys: &[SliceKey],
        last_slice: EventTime,
        only_updated: bool,
        (start, end): (EventTime, EventTime),
        out: &mut Collector,
    ) -> Result<()> {
        let name = self.name.clone();
        let ctx = || format!("{name}: firing window [{start}, {end})");
        for k in keys {
            let slice = self.slices.get_mut(k).expect("key from the map");
            slice.flush_by_key_group(&name, &mut self.hashes)?;
        }
        for group in 0..KEY_GROUPS {
            if !keys.iter().any(|k| self.slices[k].key_groups().contains(group)) {
                continue;
            }
            let mut window = self.plan.aggregation.grouping.new_groups().context(ctx)?;
            let mut updated = 0;
            for k in keys {
                self.slices[k].merge_key_group(group, &mut window, &name)?;
                if k.0 == last_slice {
                    updated = window.len();
                }
            }
            let (group_keys, values, rows) = window.take_final().context(ctx)?;
            let (group_keys, values, rows) = only_updated_groups(group_keys, values, rows, only_updated, updated);
            self.emit(start, end, group_keys, values, rows, out)?;
        }
        Ok(())
    }

    /// Emits the `rows` groups of the window `[start, end)`.
    fn emit(
        &self,
        start: EventTime,
        end: EventTime,
        group_keys: Vec<ArrayRef>,
        values: Vec<ArrayRef>,
        rows: usize,
        out: &mut Collector,
    ) -> Result<()> {
        if rows == 0 {
            return Ok(());
        }
        let w = self.plan.window;
        let schema = &self.plan.aggregation.output_schema;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.plan.aggregation.output.len());
        for (i, c) in self.plan.aggregation.output.iter().enumerate() {
            let col = match *c {
                OutputColumn::WindowStart => time_column(start + w.local_shift, rows, schema.field(i).data_type()),
                OutputColumn::WindowEnd => time_column(end + w.local_shift, rows, schema.field(i).data_type()),
                OutputColumn::WindowTime => time_column(end - 1, rows, schema.field(i).data_type()),
                OutputColumn::Key(k) => Arc::clone(&group_keys[k]),
                OutputColumn::Aggregate(a) => Arc::clone(&values[a]),
            };
            columns.push(col);
        }
        let batch = RecordBatch::try_new(Arc::clone(schema), columns)
            .context(|| format!("{}: firing window [{start}, {end})", self.name))?;
        self.metrics.rows_out.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        out.batch(StreamBatch::new(batch));
        Ok(())
    }

    /// Drops the slices that no window after the one ending at `end` holds.
    fn drop_slices_before(&mut self, end: EventTime) {
        let live_from = self.plan.window.first_live_slice_after(end);
        self.slices.retain(|k, _| k.0 >= live_from);
    }
}

/// emitOnlyOnUpdate: only the first `updated` groups (those the window's
/// last slice updated, merged first) when `only_updated`.
fn only_updated_groups(
    group_keys: Vec<ArrayRef>,
    values: Vec<ArrayRef>,
    rows: usize,
    only_updated: bool,
    updated: usize,
) -> (Vec<ArrayRef>, Vec<ArrayRef>, usize) {
    if only_updated && updated < rows {
        let first = |c: Vec<ArrayRef>| c.iter().map(|a| a.slice(0, updated)).collect::<Vec<_>>();
        (first(group_keys), first(values), updated)
    } else {
        (group_keys, values, rows)
    }
}

fn first_end_of_slice(w: &WindowSpec, slice_start: EventTime) -> EventTime {
    w.window_ends_of_slice(slice_start).next().unwrap_or(slice_start + w.slice_size())
}

fn time_column(value: EventTime, rows: usize, dt: &DataType) -> ArrayRef {
    let tz = match dt {
        DataType::Timestamp(TimeUnit::Millisecond, tz) => tz.clone(),
        _ => None,
    };
    Arc::new(TimestampMillisecondArray::from_value(value, rows).with_timezone_opt(tz))
}

/// Evaluates the group keys, aggregate arguments and FILTER masks of a
/// batch once, for all the slices or sessions it feeds.
pub(crate) fn evaluate_input(g: &Grouping, batch: &RecordBatch, name: &str) -> Result<EvaluatedInput> {
    let n = batch.num_rows();
    let ctx = || format!("{name}: evaluating");
    let keys = columns(&g.keys, batch).context(ctx)?;
    let mut args = Vec::with_capacity(g.aggregates.len());
    let mut filters = Vec::with_capacity(g.aggregates.len());
    for call in &g.aggregates {
        args.push(columns(&call.function.expressions(), batch).context(ctx)?);
        let f = match &call.filter {
            Some(f) => {
                let v = f.evaluate(batch).and_then(|v| v.into_array(n)).context(ctx)?;
                Some(v.as_boolean().clone())
            }
            None => None,
        };
        filters.push(f);
    }
    Ok(EvaluatedInput { keys, args, filters })
}

impl Operator for WindowAggregate {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        let n = batch.num_rows();
        self.metrics.rows_in.fetch_add(n as u64, Ordering::Relaxed);
        let times = batch.data.column(self.plan.aggregation.time_column);
        let times = times.as_primitive_opt::<TimestampMillisecondType>().ok_or_else(|| {
            EngineError::Plan(format!(
                "{}: event-time column has type {}, expected TIMESTAMP(3)",
                self.name,
                times.data_type()
            ))
        })?;
        let (min_valid, max_valid) = self.plan.aggregation.validity.bounds_now();
        let mut segment = Segment::default();
        let mut unusable = LateRows::default();
        let row_wm = batch.row_watermarks.as_ref().map(|w| w.values());
        for i in 0..n {
            // With per-row watermarks, windows fire between the rows that
            // pass their end, exactly as Flink's on-event watermarks fire them.
            if let Some(w) = row_wm
                && self.fires_or_purges_at(w[i], &segment)
            {
                self.flush(&batch.data, &mut segment, out)?;
                self.advance(w[i], out)?;
            }
            let wm = match row_wm {
                Some(w) => w[i].max(self.watermark),
                None => self.watermark,
            };
            if times.is_null(i) || !(min_valid..=max_valid).contains(&times.value(i)) {
                unusable.push(i, DropReason::InvalidEventTime, wm);
                continue;
            }
            let ts = times.value(i);
            let slice = self.plan.window.slice_start(ts);
            match self.first_open_end(slice, ts, wm) {
                Some(min_end) => {
                    segment.push(i, (slice, min_end));
                    // A row for a window that already fired re-fires it at
                    // once (per row, with per-row watermarks). Without
                    // allowed lateness no fired window takes rows.
                    if row_wm.is_some()
                        && self.plan.aggregation.allowed_lateness > 0
                        && self.touches_fired_window((slice, min_end))
                    {
                        self.flush(&batch.data, &mut segment, out)?;
                    }
                }
                None => {
                    unusable.push(i, DropReason::Late, wm);
                }
            }
        }
        self.flush(&batch.data, &mut segment, out)?;
        self.keep_within_budget()?;
        self.publish_open_windows();
        unusable.report(self.plan.aggregation.late_output.as_deref(), &self.metrics, &batch.data, out)
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.advance(watermark, out)?;
        self.publish_open_windows();
        out.watermark(watermark);
        Ok(())
    }

    /// The window state as partial aggregates (Arrow), never raw rows,
    /// in chunks per slice and key group: only chunks a completed
    /// checkpoint has not stored are written (`window/slice.rs`).
    fn state_size(&self) -> StateSize {
        StateSize {
            bytes: self.slices.values().map(Slice::size).sum(),
            keys: Some(self.slices.values().map(Slice::groups).sum()),
            spilled: self.slices.values().map(Slice::spilled).sum(),
        }
    }

    fn snapshot(&mut self, checkpoint: u64, chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        let mut e = Encoder::default();
        e.i64(self.watermark);
        for set in [&self.pending, &self.kept] {
            e.u64(set.len() as u64);
            for end in set {
                e.i64(*end);
            }
        }
        e.u64(self.slices.len() as u64);
        let mut hashes = Vec::new();
        for ((start, min_end), slice) in self.slices.iter_mut() {
            e.i64(*start);
            e.i64(*min_end);
            slice.snapshot(&self.plan.aggregation.grouping, &self.name, checkpoint, &mut e, chunks, &mut hashes)?;
        }
        Ok(Some(e.bytes))
    }

    /// At the barrier each slice's live groups become a part (their
    /// accumulators' state arrays) shared with the job; splitting by key
    /// group, compacting and encoding run on the task's writer, and the
    /// parts as written replace the slice's once the checkpoint completes.
    fn snapshot_async(&mut self, checkpoint: u64) -> Result<SnapshotJob> {
        let mut header = Encoder::default();
        header.i64(self.watermark);
        for set in [&self.pending, &self.kept] {
            header.u64(set.len() as u64);
            for end in set {
                header.i64(*end);
            }
        }
        header.u64(self.slices.len() as u64);
        let mut slices = Vec::with_capacity(self.slices.len());
        for (key, slice) in self.slices.iter_mut() {
            slices.push((*key, slice.capture(&self.name, checkpoint, &mut self.hashes)?));
        }
        let plan = Arc::clone(&self.plan);
        let name = self.name.clone();
        Ok(Box::new(move || {
            let mut e = header;
            let mut chunks = ChunkWriter::default();
            let mut hashes = Vec::new();
            for ((start, min_end), slice) in slices {
                e.i64(start);
                e.i64(min_end);
                slice.write(&plan.aggregation.grouping, &name, &mut e, &mut chunks, &mut hashes)?;
            }
            Ok(SnapshotOutput { state: Some(e.bytes), chunks })
        }))
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) {
        for slice in self.slices.values_mut() {
            slice.checkpoint_complete(checkpoint);
        }
    }

    fn restore(&mut self, states: &[&[u8]], chunks: &ChunkMap, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        self.restore_slices(states, chunks, owns, None)
    }

    fn restore_adding_aggregates(
        &mut self,
        states: &[&[u8]],
        chunks: &ChunkMap,
        owns: &dyn Fn(usize) -> bool,
        saved: &[Option<usize>],
    ) -> Result<()> {
        self.restore_slices(states, chunks, owns, Some(saved))
    }

    fn timer_interval(&self) -> Option<std::time::Duration> {
        self.plan.aggregation.emit_early
    }

    /// EMIT EARLY: the running result of every open window that changed.
    fn on_timer(&mut self, out: &mut Collector) -> Result<()> {
        for end in std::mem::take(&mut self.dirty) {
            if self.pending.contains(&end) {
                self.fire(end, true, out)?;
            }
        }
        Ok(())
    }
}

/// Rows of a batch not yet folded into their slices.
#[derive(Default)]
struct Segment {
    keys: Vec<SliceKey>,
    rows: Vec<u32>,
    /// The earliest window end the rows count toward.
    first_end: Option<EventTime>,
}

impl Segment {
    fn push(&mut self, row: usize, key: SliceKey) {
        self.keys.push(key);
        self.rows.push(row as u32);
        self.first_end = Some(self.first_end.map_or(key.1, |e| e.min(key.1)));
    }
}

impl WindowAggregate {
    /// Would the watermark `w` fire or purge a window (counting the windows
    /// of rows not yet folded in)?
    fn fires_or_purges_at(&self, w: EventTime, segment: &Segment) -> bool {
        if w <= self.watermark {
            return false;
        }
        let fires = self.pending.first().is_some_and(|e| e.saturating_sub(1) <= w)
            || segment.first_end.is_some_and(|e| e.saturating_sub(1) <= w);
        let purges = self
            .kept
            .first()
            .is_some_and(|e| e.saturating_sub(1).saturating_add(self.plan.aggregation.allowed_lateness) <= w);
        fires || purges
    }

    /// Does a row of `key` count toward a window that has already fired?
    fn touches_fired_window(&self, key: SliceKey) -> bool {
        self.plan
            .window
            .window_ends_of_slice(key.0)
            .any(|e| e >= key.1 && (self.kept.contains(&e) || e.saturating_sub(1) <= self.watermark))
    }

    /// Moves the watermark: fires the windows it passes, purges those past
    /// their allowed lateness.
    fn advance(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        self.watermark = watermark;
        self.metrics.watermark.store(watermark, Ordering::Relaxed);
        let lateness = self.plan.aggregation.allowed_lateness;
        while let Some(&end) = self.pending.first() {
            if end.saturating_sub(1) > watermark {
                break;
            }
            self.pending.pop_first();
            self.open_windows_changed = true;
            self.fire(end, false, out)?;
            if lateness > 0 {
                self.kept.insert(end);
            }
        }
        while let Some(&end) = self.kept.first() {
            if end.saturating_sub(1).saturating_add(lateness) > watermark {
                break;
            }
            self.kept.pop_first();
            self.drop_slices_before(end);
        }
        Ok(())
    }

    /// Folds the segment's rows into their slices and re-fires the fired
    /// windows they changed.
    fn flush(&mut self, data: &RecordBatch, segment: &mut Segment, out: &mut Collector) -> Result<()> {
        if segment.rows.is_empty() {
            return Ok(());
        }
        let keys = std::mem::take(&mut segment.keys);
        let rows = std::mem::take(&mut segment.rows);
        segment.first_end = None;
        let data = if rows.len() == data.num_rows() {
            data.clone()
        } else {
            take_record_batch(data, &UInt32Array::from(rows)).context(|| format!("{}: selecting rows", self.name))?
        };
        let input = evaluate_input(&self.plan.aggregation.grouping, &data, &self.name)?;
        let n = data.num_rows();
        let mut refire = BTreeSet::new();
        if keys.iter().all(|k| *k == keys[0]) {
            self.update_slice(keys[0], &input, n, &mut refire)?;
        } else {
            // Rows spanning several slices: group row indices by slice.
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.sort_by_key(|&i| keys[i as usize]);
            let mut start = 0;
            while start < order.len() {
                let key = keys[order[start] as usize];
                let mut end = start + 1;
                while end < order.len() && keys[order[end] as usize] == key {
                    end += 1;
                }
                let idx = UInt32Array::from(order[start..end].to_vec());
                let part = take_input(&input, &idx).context(|| format!("{}: splitting", self.name))?;
                self.update_slice(key, &part, end - start, &mut refire)?;
                start = end;
            }
        }
        for end in refire {
            self.fire(end, false, out)?;
        }
        Ok(())
    }
}

fn take_input(
    input: &EvaluatedInput,
    idx: &UInt32Array,
) -> std::result::Result<EvaluatedInput, datafusion::arrow::error::ArrowError> {
    let t = |a: &ArrayRef| take(a.as_ref(), idx, None);
    Ok(EvaluatedInput {
        keys: input.keys.iter().map(t).collect::<std::result::Result<_, _>>()?,
        args: input
            .args
            .iter()
            .map(|cols| cols.iter().map(t).collect::<std::result::Result<_, _>>())
            .collect::<std::result::Result<_, _>>()?,
        filters: input
            .filters
            .iter()
            .map(|f| f.as_ref().map(|f| take(f, idx, None).map(|a| a.as_boolean().clone())).transpose())
            .collect::<std::result::Result<_, _>>()?,
    })
}

#[cfg(test)]
mod merge_order_tests;
#[cfg(test)]
pub(crate) mod pending_tests;
#[cfg(test)]
pub(crate) mod spill_tests;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
    use crate::metrics::JobMetrics;
    use crate::operator::Emitted;
    use crate::window::groups::AggregateCall;
    use crate::window::spec::WindowKind;
    use datafusion::arrow::array::{Int64Array, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::functions_aggregate::count::count_udaf;
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::Column;

    /// `SELECT window_start, window_end, k, count(k)` over (ts, k).
    pub(super) fn operator(kind: WindowKind) -> (WindowAggregate, Arc<OperatorMetrics>) {
        let plan = WindowAggregatePlan { window: WindowSpec::new(kind, 0).unwrap(), aggregation: count_per_key() };
        let metrics = JobMetrics::default().register("w", 0);
        (WindowAggregate::new(Arc::new(plan), "w".into(), Arc::clone(&metrics), None), metrics)
    }

    /// The input (ts, k) of [`count_per_key`].
    pub(crate) fn keyed_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("k", DataType::Int64, true),
        ]))
    }

    /// `window_start, window_end, k, count(k)` per k over [`keyed_schema`]
    /// rows, for any kind of window.
    pub(crate) fn count_per_key() -> WindowedAggregation {
        let input = keyed_schema();
        let k: Arc<dyn datafusion::physical_plan::PhysicalExpr> = Arc::new(Column::new("k", 1));
        let count = AggregateExprBuilder::new(count_udaf(), vec![Arc::clone(&k)])
            .schema(Arc::clone(&input))
            .alias("c")
            .build()
            .unwrap();
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let output = Arc::new(Schema::new(vec![
            Field::new("window_start", ts.clone(), false),
            Field::new("window_end", ts, false),
            Field::new("k", DataType::Int64, true),
            Field::new("c", DataType::Int64, false),
        ]));
        WindowedAggregation {
            time_column: 0,
            grouping: Grouping::new(
                vec![k],
                vec![Field::new("k", DataType::Int64, true)],
                vec![AggregateCall { function: Arc::new(count), filter: None }],
            ),
            output: vec![
                OutputColumn::WindowStart,
                OutputColumn::WindowEnd,
                OutputColumn::Key(0),
                OutputColumn::Aggregate(0),
            ],
            output_schema: output,
            allowed_lateness: 0,
            validity: EventTimeValidity { min_valid: i64::MIN, max_future_ms: i64::MAX / 4 },
            late_output: None,
            emit_early: None,
        }
    }

    fn rows(ts: &[i64], row_wm: Option<&[i64]>) -> StreamBatch {
        let mut b = keyed(ts, &vec![1; ts.len()]);
        b.row_watermarks = row_wm.map(|w| Int64Array::from(w.to_vec()));
        b
    }

    pub(crate) fn keyed(ts: &[i64], keys: &[i64]) -> StreamBatch {
        let data = RecordBatch::try_new(
            keyed_schema(),
            vec![Arc::new(TimestampMillisecondArray::from(ts.to_vec())), Arc::new(Int64Array::from(keys.to_vec()))],
        )
        .unwrap();
        StreamBatch::new(data)
    }

    /// (key, count) of everything emitted, sorted.
    fn counts(out: Collector) -> Vec<(i64, i64)> {
        let mut v = Vec::new();
        for e in out.out {
            if let Emitted::Data(b) = e {
                let k = b.data.column(2).as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                let c = b.data.column(3).as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                v.extend((0..b.num_rows()).map(|i| (k.value(i), c.value(i))));
            }
        }
        v.sort();
        v
    }

    fn new_bytes(w: &ChunkWriter) -> usize {
        w.new.iter().map(|(_, b)| b.len()).sum()
    }

    /// A checkpoint writes only the groups updated since the last completed
    /// one; a restore at another parallelism from the chunks of several
    /// checkpoints gives the window the uninterrupted run gives.
    #[test]
    fn checkpoints_write_only_what_changed() {
        let (mut op, _) = operator(WindowKind::Tumble { size: 1000 });
        let mut out = Collector::default();
        let all: Vec<i64> = (0..10_000).collect();
        op.on_batch(keyed(&vec![1; all.len()], &all), &mut out).unwrap();
        let mut stored = ChunkMap::default();
        let mut first = ChunkWriter::default();
        op.snapshot(1, &mut first).unwrap().unwrap();
        assert_eq!(first.new.len(), crate::runtime::exchange::KEY_GROUPS, "one chunk per key group");
        stored.extend(first.new.iter().cloned()).unwrap();
        op.checkpoint_complete(1);

        op.on_batch(keyed(&[2, 3, 4], &[5, 6, 7]), &mut out).unwrap();
        let mut second = ChunkWriter::default();
        op.snapshot(2, &mut second).unwrap().unwrap();
        assert!((1..=3).contains(&second.new.len()), "{} chunks", second.new.len());
        assert!(new_bytes(&second) * 20 < new_bytes(&first), "{} vs {} bytes", new_bytes(&second), new_bytes(&first));
        assert!(first.refs.iter().all(|id| second.refs.contains(id)), "unchanged chunks are referenced");
        // Checkpoint 2 never completes: checkpoint 3 writes its chunks again.
        let mut third = ChunkWriter::default();
        let state = op.snapshot(3, &mut third).unwrap().unwrap();
        assert_eq!(
            third.new.iter().map(|c| c.0).collect::<Vec<_>>(),
            second.new.iter().map(|c| c.0).collect::<Vec<_>>()
        );
        stored.extend(third.new.iter().cloned()).unwrap();

        let mut expected: Vec<(i64, i64)> = all.iter().map(|k| (*k, if (5..=7).contains(k) { 2 } else { 1 })).collect();
        expected.sort();
        let chunks = stored;
        let mut restored = Vec::new();
        for subtask in 0..3 {
            let (mut r, _) = operator(WindowKind::Tumble { size: 1000 });
            let owns = |g: usize| crate::runtime::exchange::subtask_of_key_group(g, 3) == subtask;
            r.restore(&[&state], &chunks, &owns).unwrap();
            let mut out = Collector::default();
            r.on_watermark(2000, &mut out).unwrap();
            restored.extend(counts(out));
        }
        restored.sort();
        assert_eq!(restored, expected);

        // Every key updated again: the new chunks are as large as the old,
        // so each key group is merged into one chunk.
        op.checkpoint_complete(3);
        op.on_batch(keyed(&vec![5; all.len()], &all), &mut out).unwrap();
        let mut fourth = ChunkWriter::default();
        op.snapshot(4, &mut fourth).unwrap().unwrap();
        assert_eq!(fourth.refs.len(), crate::runtime::exchange::KEY_GROUPS, "one merged chunk per key group");
        assert_eq!(fourth.new.len(), fourth.refs.len());
        let mut out = Collector::default();
        op.on_watermark(2000, &mut out).unwrap();
        let twice: Vec<(i64, i64)> = expected.iter().map(|(k, c)| (*k, c + 1)).collect();
        assert_eq!(counts(out), twice);
    }

    /// Restores `state` and `chunks` into a fresh operator (one subtask)
    /// and fires its windows up to 2000.
    fn restored_counts(state: &[u8], chunks: &ChunkMap) -> Vec<(i64, i64)> {
        let (mut r, _) = operator(WindowKind::Tumble { size: 1000 });
        r.restore(&[state], chunks, &|_| true).unwrap();
        let mut out = Collector::default();
        r.on_watermark(2000, &mut out).unwrap();
        counts(out)
    }

    /// An asynchronous snapshot holds the state of its barrier, whatever
    /// the operator does before the job runs; once its checkpoint
    /// completes, the next snapshot references its chunks instead of
    /// writing them again, and a snapshot never completed is written again.
    #[test]
    fn asynchronous_snapshots_hold_the_state_of_their_barrier() {
        let all: Vec<i64> = (0..10_000).collect();
        let before = keyed(&vec![1; all.len()], &all);
        let after = keyed(&[2, 3, 4, 5], &[5, 6, 7, 20_000]);
        // What the window holds at the barrier, and at the end: the same
        // rows through an operator that never checkpoints.
        let oracle = |batches: &[&StreamBatch]| {
            let (mut o, _) = operator(WindowKind::Tumble { size: 1000 });
            let mut out = Collector::default();
            for b in batches {
                o.on_batch((*b).clone(), &mut out).unwrap();
            }
            o.on_watermark(2000, &mut out).unwrap();
            counts(out)
        };

        let (mut op, _) = operator(WindowKind::Tumble { size: 1000 });
        let mut out = Collector::default();
        op.on_batch(before.clone(), &mut out).unwrap();
        let first = op.snapshot_async(1).unwrap();
        op.on_batch(after.clone(), &mut out).unwrap();
        let first = first().unwrap();
        let mut stored = ChunkMap::of(first.chunks.new.iter().cloned()).unwrap();
        assert_eq!(restored_counts(first.state.as_deref().unwrap(), &stored), oracle(&[&before]));
        op.checkpoint_complete(1);

        // Checkpoint 2 is abandoned: checkpoint 3 writes its chunks again.
        let second = op.snapshot_async(2).unwrap()().unwrap();
        assert!(first.chunks.refs.iter().all(|id| second.chunks.refs.contains(id)));
        assert!(
            new_bytes(&second.chunks) * 20 < new_bytes(&first.chunks),
            "{} vs {} bytes",
            new_bytes(&second.chunks),
            new_bytes(&first.chunks)
        );
        let third = op.snapshot_async(3).unwrap()().unwrap();
        assert!(first.chunks.refs.iter().all(|id| third.chunks.refs.contains(id)));
        let unstored: Vec<_> = third.chunks.refs.iter().filter(|id| !first.chunks.refs.contains(id)).collect();
        assert!(!unstored.is_empty());
        assert!(unstored.iter().all(|id| third.chunks.new.iter().any(|(n, _)| n == *id)));
        stored.extend(third.chunks.new.iter().cloned()).unwrap();
        op.checkpoint_complete(3);
        let fourth = op.snapshot_async(4).unwrap()().unwrap();
        assert!(fourth.chunks.new.is_empty(), "nothing changed since checkpoint 3");
        assert_eq!(fourth.chunks.refs.len(), third.chunks.refs.len());

        let expected = oracle(&[&before, &after]);
        assert_eq!(restored_counts(third.state.as_deref().unwrap(), &stored), expected);
        assert_eq!(restored_counts(fourth.state.as_deref().unwrap(), &stored), expected);
        let mut fired = Collector::default();
        op.on_watermark(2000, &mut fired).unwrap();
        assert_eq!(counts(fired), expected);
    }

    /// (window_start, window_end, count) of everything emitted.
    fn fired(out: Collector) -> Vec<(i64, i64, i64)> {
        let mut v = Vec::new();
        for e in out.out {
            if let Emitted::Data(b) = e {
                let s = b.data.column(0).as_primitive::<TimestampMillisecondType>();
                let e = b.data.column(1).as_primitive::<TimestampMillisecondType>();
                let c = b.data.column(3).as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                for i in 0..b.num_rows() {
                    v.push((s.value(i), e.value(i), c.value(i)));
                }
            }
        }
        v
    }

    #[test]
    fn a_window_fires_exactly_when_the_watermark_reaches_end_minus_one() {
        let (mut op, metrics) = operator(WindowKind::Tumble { size: 10 });
        let mut out = Collector::default();
        op.on_batch(rows(&[1, 5, 9], None), &mut out).unwrap();
        op.on_watermark(8, &mut out).unwrap();
        assert!(fired(std::mem::take(&mut out)).is_empty(), "not yet at 8");
        // Under watermark 8, a row at 9 still counts.
        op.on_batch(rows(&[9], None), &mut out).unwrap();
        op.on_watermark(9, &mut out).unwrap();
        assert_eq!(fired(std::mem::take(&mut out)), vec![(0, 10, 4)]);
        // Now the window has fired: a row for it is late, counted, and
        // never re-fires it.
        op.on_batch(rows(&[3], None), &mut out).unwrap();
        op.on_watermark(100, &mut out).unwrap();
        assert!(fired(std::mem::take(&mut out)).is_empty());
        assert_eq!(metrics.late_rows.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn per_row_watermarks_decide_lateness_inside_a_batch() {
        let (mut op, metrics) = operator(WindowKind::Tumble { size: 10 });
        let mut out = Collector::default();
        // The third row arrives after the watermark reached 9: late, though
        // the operator hears of watermark 9 only after the batch.
        op.on_batch(rows(&[5, 12, 7], Some(&[i64::MIN, 4, 9])), &mut out).unwrap();
        op.on_watermark(9, &mut out).unwrap();
        assert_eq!(fired(out), vec![(0, 10, 1)]);
        assert_eq!(metrics.late_rows.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn a_hop_row_that_missed_some_windows_counts_toward_the_others() {
        // Windows of 10 sliding by 5: a row at 7 is in [0,10) and [5,15).
        let (mut op, metrics) = operator(WindowKind::Hop { slide: 5, size: 10 });
        let mut out = Collector::default();
        op.on_batch(rows(&[6], None), &mut out).unwrap();
        op.on_watermark(9, &mut out).unwrap();
        assert_eq!(fired(std::mem::take(&mut out)), vec![(0, 10, 1)]);
        op.on_batch(rows(&[7], None), &mut out).unwrap();
        op.on_watermark(14, &mut out).unwrap();
        assert_eq!(fired(out), vec![(5, 15, 2)]);
        assert_eq!(metrics.late_rows.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
}
