//! Session windows (`SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), gap)`):
//! per group key, rows closer than `gap` in event time share a window
//! `[first row, last row + gap)`. A row can merge sessions, also a late but
//! allowed row that bridges two of them. Rows are kept until their session
//! is purged and aggregated when it fires, so merging needs no accumulator
//! surgery.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray, UInt32Array};
use datafusion::arrow::compute::{filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use smallvec::SmallVec;

use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::live_rows;
use crate::checkpoint::snapshot::{SnapshotJob, SnapshotOutput};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::metrics::{DropReason, OperatorMetrics};
use crate::operator::{Collector, Operator, StateSize};
use crate::runtime::exchange::key_groups;
use crate::spill::StateBudget;
use crate::window::aggregate::{OutputColumn, WindowedAggregation, evaluate_input};
use crate::window::groups::EvaluatedInput;
use crate::window::late::LateRows;
use crate::window::pending::{KeyGroupSet, key_groups_of_new_groups, oldest_open_sessions};

mod buffered;
mod membership;

use buffered::{Buffered, Captured};
use membership::{Chosen, event_times, key_ids_of, resolve_rows, span};

/// One key's sessions, by start, with their ends: disjoint and sorted. Most
/// keys have one open session, held inline (32 bytes a key, where a
/// `BTreeMap` took a 200-byte node).
type KeySessions = SmallVec<[(EventTime, EventTime); 1]>;

/// Marks a state that lists its buffered batches as chunks (each with a
/// bitmap of its live rows) instead of carrying their rows: the first
/// layout's batch count is never this large.
const CHUNKED: u64 = u64::MAX;

/// What a session aggregate subtask needs.
#[derive(Debug)]
pub struct SessionAggregatePlan {
    /// Largest gap, in milliseconds, between rows of one session.
    pub gap: i64,
    pub aggregation: WindowedAggregation,
    /// The rows the aggregation reads: a checkpoint stores open sessions
    /// as these rows, and a restore refuses others.
    pub input_schema: SchemaRef,
    /// The SESSION TVF's rows themselves, not aggregated (Flink's
    /// `SELECT * FROM TABLE(SESSION(…))`): each row of a closed session is
    /// emitted with its window columns, rows plus `window_start`,
    /// `window_end`, `window_time` of this schema. The aggregation then has
    /// the partition keys and no aggregates.
    pub emit_rows: Option<SchemaRef>,
}

/// One subtask of a session window aggregate.
pub struct SessionAggregate {
    plan: Arc<SessionAggregatePlan>,
    name: String,
    watermark: EventTime,
    /// Interns group keys to small ids.
    key_ids: Option<Box<dyn GroupValues>>,
    /// Per key id (dense: the interner numbers keys from 0): sessions by
    /// start, with their end. A vector, not a map: about every key seen
    /// has a session open in a stream of sessions, and a vector grows
    /// in place (a large one is remapped), where a map's table doubles
    /// beside the old one (Nexmark q11: a 258 MB table beside 129 MB).
    sessions: Vec<KeySessions>,
    /// Sessions not yet fired, by (end, key, start).
    pending: BTreeSet<(EventTime, u32, EventTime)>,
    /// Sessions fired and kept for allowed lateness, by (end, key, start).
    kept: BTreeSet<(EventTime, u32, EventTime)>,
    /// Keys with rows since the last early emission.
    dirty: BTreeSet<u32>,
    buffer: Vec<Buffered>,
    metrics: Arc<OperatorMetrics>,
    /// Scratch buffer for key ids, reused across batches.
    ids: Vec<usize>,
    /// The key group of each key id, and per key group how many of its
    /// sessions are pending: what `weir.pending_windows` shows.
    key_group: Vec<u8>,
    pending_per_group: Vec<u32>,
    /// Pending sessions changed since they were last published.
    pending_changed: bool,
    hashes: Vec<u64>,
    /// The subtask's share of the job's state budget, with the spilling
    /// backend: over it, the newest buffered batches spill.
    budget: Option<StateBudget>,
}

impl SessionAggregate {
    /// A subtask; with `budget`, its buffered rows spill beyond that share.
    pub fn new(
        plan: Arc<SessionAggregatePlan>,
        name: String,
        metrics: Arc<OperatorMetrics>,
        budget: Option<StateBudget>,
    ) -> Result<Self> {
        let g = &plan.aggregation.grouping;
        let key_ids = if g.keys.is_empty() {
            None
        } else {
            Some(new_group_values(g.key_schema.clone(), &GroupOrdering::None).context(|| format!("{name}: keys"))?)
        };
        Ok(Self {
            plan,
            name,
            watermark: WATERMARK_MIN,
            key_ids,
            sessions: Vec::new(),
            pending: BTreeSet::new(),
            kept: BTreeSet::new(),
            dirty: BTreeSet::new(),
            buffer: Vec::new(),
            metrics,
            ids: Vec::new(),
            key_group: Vec::new(),
            pending_per_group: vec![0; crate::runtime::exchange::KEY_GROUPS],
            pending_changed: false,
            hashes: Vec::new(),
            budget,
        })
    }

    /// With a state budget: once the subtask holds more than its share in
    /// memory (its buffered batches and its sessions' bookkeeping), the
    /// newest buffered batches spill until it holds half as much, and no
    /// more than its share. The oldest stay: their sessions
    /// close first (rows arrive roughly in event-time order), and firing
    /// reads a spilled batch only when one of its rows is in a closing
    /// session.
    fn keep_within_budget(&mut self) -> Result<()> {
        if self.budget.is_none() {
            return Ok(());
        }
        let held = self.buffer.iter().map(Buffered::memory).sum::<usize>() + self.bookkeeping();
        let Some(budget) = &mut self.budget else {
            return Ok(());
        };
        if budget.fits(held) {
            return Ok(());
        }
        let (mut holds, mut written) = (held, 0);
        for b in self.buffer.iter_mut().rev() {
            if holds <= held / 2 && budget.fits(holds) {
                break;
            }
            let before = b.memory();
            written += b.spill(budget)?;
            holds -= before - b.memory();
        }
        self.metrics.spilled_bytes.fetch_add(written as u64, Ordering::Relaxed);
        budget.spilled(held, holds);
        Ok(())
    }

    /// Bytes of the sessions' bookkeeping, which cannot spill: the open
    /// sessions by key, the pending and kept ones in firing order, the
    /// interned keys and their key groups. Estimated from capacities and
    /// counts, without walking the keys (this runs after every batch).
    fn bookkeeping(&self) -> usize {
        // A set entry of 24 bytes in B-tree nodes about two-thirds full.
        const SESSION_IN_SET: usize = 40;
        self.sessions.capacity() * size_of::<KeySessions>()
            + (self.pending.len() + self.kept.len()) * SESSION_IN_SET
            + self.dirty.len() * 8
            + self.key_ids.as_ref().map_or(0, |k| k.size())
            + self.key_group.capacity()
    }

    /// Adds a row at `ts` to the sessions of `key`, merging the sessions it
    /// touches. Returns the resulting session, or `None` when that session
    /// is past its allowed lateness (the row is late).
    /// The live rows of the chunk a checkpoint lists next in `d`: its id,
    /// read from `chunks`, and the bitmap of its rows still live.
    fn live_rows_of_chunk(&self, d: &mut Decoder, chunks: &ChunkMap) -> Result<RecordBatch> {
        let damaged = |what: &str| EngineError::State(format!("{}: a buffered batch {what}", self.name));
        let id = <[u8; 16]>::try_from(d.bytes()?).map_err(|_| damaged("has a malformed chunk id"))?;
        let bitmap = d.bytes()?;
        let batch = Decoder::batch_alone_of(&chunks.get(u128::from_le_bytes(id))?, &self.plan.input_schema)?;
        let live =
            live_rows::mask(bitmap, batch.num_rows()).ok_or_else(|| damaged("lists live rows it does not have"))?;
        filter_record_batch(&batch, &live).context(|| format!("{}: restoring", self.name))
    }

    fn join(&mut self, key: u32, ts: EventTime, wm: EventTime) -> Option<(EventTime, EventTime)> {
        let gap = self.plan.gap;
        let lateness = self.plan.aggregation.allowed_lateness;
        let (mut start, mut end) = (ts, ts.saturating_add(gap));
        // Sessions overlapping or touching [ts, ts + gap): as Flink's
        // `TimeWindow.intersects`, a session ending where this row's window
        // starts (or starting where it ends) merges with it. Sessions are
        // disjoint and sorted: those are the last ones starting no later
        // than its end.
        let none = KeySessions::new();
        let sessions = self.sessions.get(key as usize).unwrap_or(&none);
        let after = sessions.partition_point(|(s, _)| *s <= end);
        let first = after - sessions[..after].iter().rev().take_while(|(_, e)| *e >= start).count();
        let touching: KeySessions = sessions[first..after].iter().copied().collect();
        for (s, e) in &touching {
            start = start.min(*s);
            end = end.max(*e);
        }
        if wm != WATERMARK_MIN && end.saturating_sub(1).saturating_add(lateness) <= wm {
            return None;
        }
        let at = key as usize;
        if self.sessions.len() <= at {
            self.sessions.resize_with(at + 1, KeySessions::new);
        }
        let sessions = &mut self.sessions[at];
        sessions.drain(first..after);
        sessions.insert(first, (start, end));
        let mut was_fired = false;
        for (s, e) in touching {
            self.unpend(&(e, key, s));
            was_fired |= self.kept.remove(&(e, key, s));
        }
        if was_fired || end.saturating_sub(1) <= self.watermark {
            // Fired before (or would have): it fires again right away.
            self.kept.insert((end, key, start));
        } else if self.pending.insert((end, key, start)) {
            self.count_pending(key, 1);
        }
        Some((start, end))
    }

    /// Removes `session` from the pending ones; whether it was.
    fn unpend(&mut self, session: &(EventTime, u32, EventTime)) -> bool {
        let removed = self.pending.remove(session);
        if removed {
            self.count_pending(session.1, -1);
        }
        removed
    }

    fn count_pending(&mut self, key: u32, by: i32) {
        self.pending_changed = true;
        if let Some(n) = self.key_group.get(key as usize).and_then(|g| self.pending_per_group.get_mut(*g as usize)) {
            *n = n.saturating_add_signed(by);
        }
    }

    /// Notes the key group of the key ids the last batch added (their first
    /// rows' keys hashed once; no key columns: one key in key group 0).
    fn note_key_groups(&mut self, key_cols: &[ArrayRef]) -> Result<()> {
        let known = self.key_group.len();
        let total = self.key_ids.as_ref().map_or(1, |k| k.len());
        if total <= known {
            return Ok(());
        }
        let groups = key_groups_of_new_groups(&self.ids, known, total, key_cols, &mut self.hashes, &self.name)?;
        self.key_group.extend(groups.into_iter().map(|g| g as u8));
        Ok(())
    }

    /// Publishes each key group's first session to fire, if the pending
    /// sessions changed (after a batch or a watermark, never per row).
    fn publish_open_sessions(&mut self) {
        if !std::mem::take(&mut self.pending_changed) {
            return;
        }
        let mut present = KeyGroupSet::default();
        for (g, n) in self.pending_per_group.iter().enumerate() {
            if *n > 0 {
                present.insert(g);
            }
        }
        let open = oldest_open_sessions(self.pending.iter(), &self.key_group, &present);
        *self.metrics.pending_windows.lock().unwrap_or_else(|p| p.into_inner()) = open;
    }

    /// Aggregates the rows of `fire` (sessions as (end, key, start)) and
    /// emits one row per session. `by_watermark`: they are the sessions a
    /// watermark passed, every pending one ending no later than the last
    /// of them ([`Chosen::all_ending_by_except`] the kept ones).
    fn fire(
        &mut self,
        fire: &BTreeSet<(EventTime, u32, EventTime)>,
        by_watermark: bool,
        out: &mut Collector,
    ) -> Result<()> {
        if fire.is_empty() {
            return Ok(());
        }
        if let Some(schema) = self.plan.emit_rows.clone() {
            return self.fire_rows(fire, by_watermark, &schema, out);
        }
        let plan = Arc::clone(&self.plan);
        let name = self.name.clone();
        let g = &plan.aggregation.grouping;
        let ctx = || format!("{name}: firing sessions");
        // Groups keyed by (session start, session end, keys…).
        let mut fields = vec![Field::new("start", DataType::Int64, false), Field::new("end", DataType::Int64, false)];
        fields.extend(g.key_schema.fields().iter().map(|f| f.as_ref().clone()));
        let mut groups = g.new_groups_keyed_by(Arc::new(Schema::new(fields))).context(ctx)?;
        let bounds = span(fire, plan.gap);
        let Self { buffer, key_ids, ids, sessions, kept, .. } = &mut *self;
        let chosen = Chosen { open: sessions, sessions: fire, all_ending_by_except: by_watermark.then_some(&*kept) };
        let mut resolve = |batch: &RecordBatch| resolve_rows(&plan, key_ids, ids, batch, &name);
        for b in buffer.iter() {
            let Some((data, starts, ends)) = b.rows_in(&chosen, bounds, &plan.input_schema, &name, &mut resolve)?
            else {
                continue;
            };
            let input = evaluate_input(g, &data, &name)?;
            let mut keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(starts)), Arc::new(Int64Array::from(ends))];
            keys.extend(input.keys);
            let input = EvaluatedInput { keys, args: input.args, filters: input.filters };
            groups.update(&input, data.num_rows()).context(ctx)?;
        }
        let (keys, values, rows) = groups.take_final().context(ctx)?;
        if rows == 0 {
            return Ok(());
        }
        let a = &self.plan.aggregation;
        let schema = &a.output_schema;
        let starts = keys[0].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let ends = keys[1].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(a.output.len());
        for (i, c) in a.output.iter().enumerate() {
            let tz = match schema.field(i).data_type() {
                DataType::Timestamp(TimeUnit::Millisecond, tz) => tz.clone(),
                _ => None,
            };
            let col: ArrayRef = match *c {
                OutputColumn::WindowStart => {
                    Arc::new(TimestampMillisecondArray::new(starts.values().clone(), None).with_timezone_opt(tz))
                }
                OutputColumn::WindowEnd => {
                    Arc::new(TimestampMillisecondArray::new(ends.values().clone(), None).with_timezone_opt(tz))
                }
                OutputColumn::WindowTime => Arc::new(
                    TimestampMillisecondArray::from_iter_values(ends.values().iter().map(|e| e - 1))
                        .with_timezone_opt(tz),
                ),
                OutputColumn::Key(k) => Arc::clone(&keys[k + 2]),
                OutputColumn::Aggregate(v) => Arc::clone(&values[v]),
            };
            columns.push(col);
        }
        let batch = RecordBatch::try_new(Arc::clone(schema), columns).context(ctx)?;
        self.metrics.rows_out.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        out.batch(StreamBatch::new(batch));
        Ok(())
    }

    /// Emits the rows of the sessions in `fire` (as [`Self::fire`] reads
    /// them), each with its session's window columns (typed as `schema`'s
    /// last three).
    fn fire_rows(
        &mut self,
        fire: &BTreeSet<(EventTime, u32, EventTime)>,
        by_watermark: bool,
        schema: &SchemaRef,
        out: &mut Collector,
    ) -> Result<()> {
        let n = schema.fields().len();
        let tz = |i: usize| match schema.field(i).data_type() {
            DataType::Timestamp(TimeUnit::Millisecond, tz) => tz.clone(),
            _ => None,
        };
        let bounds = span(fire, self.plan.gap);
        let Self { buffer, plan, key_ids, ids, name, metrics, sessions, kept, .. } = &mut *self;
        let chosen = Chosen { open: sessions, sessions: fire, all_ending_by_except: by_watermark.then_some(&*kept) };
        let ctx = || format!("{name}: firing sessions");
        let mut resolve = |batch: &RecordBatch| resolve_rows(plan, key_ids, ids, batch, name);
        for b in buffer.iter() {
            let Some((data, starts, ends)) = b.rows_in(&chosen, bounds, &plan.input_schema, name, &mut resolve)? else {
                continue;
            };
            let times: Vec<i64> = ends.iter().map(|e| e - 1).collect();
            let mut columns = data.columns().to_vec();
            columns.push(Arc::new(TimestampMillisecondArray::from(starts).with_timezone_opt(tz(n - 3))));
            columns.push(Arc::new(TimestampMillisecondArray::from(ends).with_timezone_opt(tz(n - 2))));
            columns.push(Arc::new(TimestampMillisecondArray::from(times).with_timezone_opt(tz(n - 1))));
            let batch = RecordBatch::try_new(Arc::clone(schema), columns).context(ctx)?;
            metrics.rows_out.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            out.batch(StreamBatch::new(batch));
        }
        Ok(())
    }

    /// Forgets the rows and sessions in `gone`: every open session ending
    /// no later than the last of them, past its allowed lateness.
    fn purge(&mut self, gone: &BTreeSet<(EventTime, u32, EventTime)>) -> Result<()> {
        if gone.is_empty() {
            return Ok(());
        }
        let (lo, hi) = span(gone, self.plan.gap);
        let none = BTreeSet::new();
        let Self { buffer, plan, key_ids, ids, name, sessions, .. } = &mut *self;
        let chosen = Chosen { open: sessions, sessions: gone, all_ending_by_except: Some(&none) };
        let mut resolve = |batch: &RecordBatch| resolve_rows(plan, key_ids, ids, batch, name);
        for b in buffer.iter_mut() {
            if !b.may_hold(lo, hi) {
                continue;
            }
            let loaded = b.rows(&plan.input_schema, &mut resolve)?;
            let gone: Vec<usize> = (0..b.rows_count())
                .filter(|i| b.is_live(*i) && chosen.session_of(loaded.keys[*i], loaded.times[*i]).is_some())
                .collect();
            drop(loaded);
            for i in gone {
                b.purged(i);
            }
        }
        for (e, k, s) in gone {
            if let Some(m) = self.sessions.get_mut(*k as usize) {
                if let Ok(i) = m.binary_search_by_key(s, |(start, _)| *start)
                    && m[i].1 == *e
                {
                    m.remove(i);
                }
                // A key's sessions that outgrew the inline one give back
                // their allocation once none is left.
                if m.is_empty() && m.spilled() {
                    *m = KeySessions::new();
                }
            }
        }
        Ok(())
    }

    /// Drops buffered batches whose rows have all been purged.
    fn compact(&mut self) {
        self.buffer.retain(|b| b.live_rows > 0);
    }

    /// Moves the watermark: fires sessions it passes, purges those past
    /// their allowed lateness.
    fn advance(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        self.watermark = watermark;
        let lateness = self.plan.aggregation.allowed_lateness;
        let mut due = BTreeSet::new();
        while let Some(&first) = self.pending.first() {
            if first.0.saturating_sub(1) > watermark {
                break;
            }
            self.unpend(&first);
            due.insert(first);
        }
        self.fire(&due, true, out)?;
        if lateness > 0 {
            self.kept.extend(due);
            due = BTreeSet::new();
        }
        while let Some(&first) = self.kept.first() {
            if first.0.saturating_sub(1).saturating_add(lateness) > watermark {
                break;
            }
            self.kept.pop_first();
            due.insert(first);
        }
        self.purge(&due)
    }
}

impl Operator for SessionAggregate {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        let n = batch.num_rows();
        self.metrics.rows_in.fetch_add(n as u64, Ordering::Relaxed);
        let plan = Arc::clone(&self.plan);
        let a = &plan.aggregation;
        let times: Vec<Option<EventTime>> = event_times(&plan, &batch.data, &self.name)?.iter().collect();
        let (keys, key_cols) = key_ids_of(&plan, &mut self.key_ids, &mut self.ids, &batch.data, &self.name)?;
        self.note_key_groups(&key_cols)?;
        let (min_valid, max_valid) = a.validity.bounds_now();
        let a_emits_early = a.emit_early.is_some();
        let row_wm = batch.row_watermarks.as_ref().map(|w| w.values().to_vec());
        let mut unusable = LateRows::default();
        let mut refire = BTreeSet::new();
        self.buffer.push(Buffered::new(
            batch.data.clone(),
            keys.clone(),
            times.iter().map(|t| t.unwrap_or_default()).collect(),
        ));
        let slot = self.buffer.len() - 1;
        for i in 0..n {
            if let Some(w) = &row_wm
                && w[i] > self.watermark
                && self.pending.first().is_some_and(|p| p.0.saturating_sub(1) <= w[i])
            {
                self.advance(w[i], out)?;
            }
            let wm = row_wm.as_ref().map_or(self.watermark, |w| w[i].max(self.watermark));
            let ts = match times[i] {
                Some(t) if (min_valid..=max_valid).contains(&t) => t,
                _ => {
                    unusable.push(i, DropReason::InvalidEventTime, wm);
                    continue;
                }
            };
            match self.join(keys[i], ts, wm) {
                Some(session) => {
                    if a_emits_early {
                        self.dirty.insert(keys[i]);
                    }
                    self.buffer[slot].joined(i, ts);
                    if self.kept.contains(&(session.1, keys[i], session.0)) {
                        refire.insert((session.1, keys[i], session.0));
                        if row_wm.is_some() {
                            self.fire(&std::mem::take(&mut refire), false, out)?;
                        }
                    }
                }
                None => {
                    unusable.push(i, DropReason::Late, wm);
                }
            }
        }
        // Sessions that merged away before firing no longer exist.
        refire.retain(|s| self.kept.contains(s));
        self.fire(&refire, false, out)?;
        self.compact();
        self.keep_within_budget()?;
        self.publish_open_sessions();
        unusable.report(self.plan.aggregation.late_output.as_deref(), &self.metrics, &batch.data, out)
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.advance(watermark, out)?;
        self.compact();
        self.publish_open_sessions();
        out.watermark(watermark);
        Ok(())
    }

    /// The rows of open (and kept) sessions, as Arrow; the sessions
    /// themselves are rebuilt from them on restore. Each buffered batch is
    /// a chunk written once and then referenced with its live rows.
    fn state_size(&self) -> StateSize {
        let bytes = self.buffer.iter().map(Buffered::memory).sum::<usize>() + self.bookkeeping();
        let spilled = self.buffer.iter().map(Buffered::spilled).sum();
        StateSize { bytes, keys: self.key_ids.as_ref().map(|k| k.len()), spilled }
    }

    fn snapshot(&mut self, checkpoint: u64, chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        let taken = self.snapshot_async(checkpoint)?()?;
        chunks.append(taken.chunks);
        Ok(taken.state)
    }

    /// At the barrier only the watermark, each buffered batch's rows
    /// (shared) and a copy of its live flags are taken; off the task loop
    /// each batch no completed checkpoint stored is written as a chunk
    /// (with the spilling backend, a large one to a spill file:
    /// [`Captured::write`]), and the state lists every batch's chunk with a
    /// bitmap of its live rows.
    fn snapshot_async(&mut self, checkpoint: u64) -> Result<SnapshotJob> {
        let watermark = self.watermark;
        let captured: Vec<Captured> =
            self.buffer.iter_mut().filter(|b| b.live_rows > 0).map(|b| b.capture(checkpoint)).collect();
        let target = self.budget.as_ref().map(StateBudget::target);
        Ok(Box::new(move || {
            let mut e = Encoder::default();
            let mut chunks = ChunkWriter::default();
            e.i64(watermark);
            e.u64(CHUNKED);
            e.u64(captured.len() as u64);
            for c in &captured {
                c.write(&mut e, &mut chunks, target.as_ref())?;
            }
            Ok(SnapshotOutput { state: Some(e.bytes), chunks })
        }))
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) {
        for b in &mut self.buffer {
            b.checkpoint_complete(checkpoint);
        }
    }

    fn restore(&mut self, states: &[&[u8]], chunks: &ChunkMap, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        let mut watermark = None::<EventTime>;
        let mut out = Collector::default();
        let mut hashes = Vec::new();
        for state in states {
            let mut d = Decoder::new(state);
            let w = d.i64()?;
            watermark = Some(watermark.map_or(w, |m| m.min(w)));
            let n = d.u64()?;
            let chunked = n == CHUNKED;
            for _ in 0..if chunked { d.u64()? } else { n } {
                let batch = match chunked {
                    true => self.live_rows_of_chunk(&mut d, chunks)?,
                    false => d.batch_of(&self.plan.input_schema)?,
                };
                // This subtask's keys only (the job may run at another
                // parallelism now); replaying the rows in their order
                // rebuilds the same sessions.
                let keys = evaluate_input(&self.plan.aggregation.grouping, &batch, &self.name)?.keys;
                let groups = key_groups(&keys, batch.num_rows(), &mut hashes)?;
                let mine: Vec<u32> = (0..batch.num_rows() as u32).filter(|i| owns(groups[*i as usize])).collect();
                let batch = take_record_batch(&batch, &UInt32Array::from(mine))
                    .context(|| format!("{}: restoring", self.name))?;
                self.on_batch(StreamBatch::new(batch), &mut out)?;
            }
            d.finish()?;
        }
        // Sessions the watermark had passed fired before the checkpoint.
        let Some(watermark) = watermark else {
            return Ok(());
        };
        self.watermark = watermark;
        let lateness = self.plan.aggregation.allowed_lateness;
        let fired: Vec<_> = self.pending.iter().filter(|(e, _, _)| e.saturating_sub(1) <= watermark).copied().collect();
        let mut gone = BTreeSet::new();
        for s in fired {
            self.unpend(&s);
            match s.0.saturating_sub(1).saturating_add(lateness) > watermark {
                true => self.kept.insert(s),
                false => gone.insert(s),
            };
        }
        // Past their lateness too: purged, as the watermark would have.
        self.purge(&gone)?;
        self.dirty.clear();
        self.publish_open_sessions();
        Ok(())
    }

    fn timer_interval(&self) -> Option<std::time::Duration> {
        self.plan.aggregation.emit_early
    }

    /// EMIT EARLY: the running result of every open session that changed.
    fn on_timer(&mut self, out: &mut Collector) -> Result<()> {
        let dirty = std::mem::take(&mut self.dirty);
        let open: BTreeSet<(EventTime, u32, EventTime)> =
            self.pending.iter().filter(|(_, k, _)| dirty.contains(k)).copied().collect();
        self.fire(&open, false, out)
    }
}

#[cfg(test)]
mod pending_tests;
#[cfg(test)]
mod spill_tests;
