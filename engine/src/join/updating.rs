//! The updating join: a regular join (no window, no time bound) whose
//! inputs may be changelogs, or whose type is LEFT, RIGHT or FULL. Its
//! output is a changelog, as Flink's `StreamingJoinOperator` emits it:
//!
//! - an inner join forwards the kind of the row that arrived (`+I`/`+U`
//!   with each partner when it comes, `-U`/`-D` when it is taken back);
//! - an outer join sends `+I` and `-D` only: a row of an outer side without
//!   partners goes out padded with NULLs, and that row is withdrawn (`-D`)
//!   when its first partner comes and sent again (`+I`) when its last one
//!   leaves.
//!
//! Each side holds its rows as a multiset per join key
//! ([`HeldRows`]), with their partner counts. The rows of a batch are
//! applied one by one, in order; the pairs a batch can form are found and
//! filtered by the rest of the condition first, on whole batches.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{take, take_record_batch};
use datafusion::arrow::datatypes::{Schema, SchemaRef};

use crate::changelog::{self, RowKind};
use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::snapshot::{SnapshotJob, SnapshotOutput};
use crate::error::{Result, ResultExt};
use crate::join::exec::JoinSpec;
use crate::join::held_rows::{CapturedSide, Encoded, HeldRows, SideEncoder};
use crate::message::{EventTime, StreamBatch, WATERMARK_END, WATERMARK_MIN};
use crate::metrics::{DropReason, OperatorMetrics};
use crate::operator::{Collector, Operator, StateSize};

/// A regular join whose output is a changelog.
#[derive(Debug)]
pub struct UpdatingJoinPlan {
    /// The condition over the two sides' visible columns (a changelog's
    /// kind column, last in its batches, is not part of them).
    pub spec: JoinSpec,
    /// Each side's state TTL (left, right): a key whose rows nothing wrote
    /// for this long is dropped.
    pub ttl: [Option<std::time::Duration>; 2],
}

impl UpdatingJoinPlan {
    /// The joined columns, then the changelog column.
    pub fn output_schema(&self) -> SchemaRef {
        let mut fields: Vec<_> = self.spec.output_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(changelog::op_field());
        Arc::new(Schema::new(fields))
    }
}

/// One subtask of an updating join.
pub struct UpdatingJoin {
    plan: Arc<UpdatingJoinPlan>,
    name: String,
    sides: [HeldRows; 2],
    output: SchemaRef,
    metrics: Arc<OperatorMetrics>,
}

/// What one row of a batch sends: its kind, the row of the arriving side
/// (`None`: NULLs) and the partner among the batch's pairs (`None`: NULLs).
#[derive(Default)]
struct Output {
    kinds: Vec<i8>,
    mine: Vec<Option<u32>>,
    theirs: Vec<Option<u32>>,
}

impl Output {
    fn push(&mut self, kind: RowKind, mine: Option<u32>, theirs: Option<u32>, copies: u64) {
        for _ in 0..copies {
            self.kinds.push(kind as i8);
            self.mine.push(mine);
            self.theirs.push(theirs);
        }
    }
}

/// The pairs a batch forms with the other side's held rows that pass the
/// whole condition: per pair, the arriving row, and the partner's row
/// bytes (in `bytes`, at `spans`) and copies; the partners' columns in
/// `columns`, by pair.
struct Pairs {
    probe: Vec<u32>,
    spans: Vec<(usize, usize)>,
    bytes: Vec<u8>,
    copies: Vec<u64>,
    columns: Vec<ArrayRef>,
}

impl UpdatingJoin {
    pub fn new(plan: Arc<UpdatingJoinPlan>, name: String, metrics: Arc<OperatorMetrics>) -> Result<Self> {
        let spec = &plan.spec;
        let sides = [
            HeldRows::new(&spec.left_schema, &spec.keys(0), plan.ttl[0], &name)?,
            HeldRows::new(&spec.right_schema, &spec.keys(1), plan.ttl[1], &name)?,
        ];
        let output = plan.output_schema();
        Ok(Self { plan, name, sides, output, metrics })
    }

    /// The pairs of `data` (rows of side `side`, encoded as `rows`) and the
    /// rows the other side holds.
    fn pairs(&self, side: usize, data: &RecordBatch, rows: &Encoded) -> Result<Pairs> {
        let ctx = || format!("{}: joining", self.name);
        let other = &self.sides[1 - side];
        let mut probe = Vec::new();
        let mut held: Vec<&[u8]> = Vec::new();
        let mut copies = Vec::new();
        for i in 0..data.num_rows() {
            if rows.meets_nothing(i) {
                continue;
            }
            for (row, h) in other.with_key(rows.key(i)) {
                probe.push(i as u32);
                held.push(row);
                copies.push(h.copies);
            }
        }
        let mut columns = other.columns(held.iter().copied())?;
        let mut keep: Vec<usize> = (0..probe.len()).collect();
        if !probe.is_empty() {
            let mine = take_record_batch(data, &UInt32Array::from(probe.clone())).context(ctx)?;
            let schema = if side == 0 { &self.plan.spec.right_schema } else { &self.plan.spec.left_schema };
            let theirs = RecordBatch::try_new(Arc::clone(schema), columns.clone()).context(ctx)?;
            let (left, right) = if side == 0 { (&mine, &theirs) } else { (&theirs, &mine) };
            if let Some(pass) = self.plan.spec.filter_pairs(left, right, &self.name)? {
                keep.retain(|i| pass.is_valid(*i) && pass.value(*i));
                let indices = UInt32Array::from_iter_values(keep.iter().map(|i| *i as u32));
                columns = columns
                    .iter()
                    .map(|c| take(c, &indices, None))
                    .collect::<std::result::Result<_, _>>()
                    .context(ctx)?;
            }
        }
        let mut bytes = Vec::new();
        let mut spans = Vec::with_capacity(keep.len());
        for i in &keep {
            spans.push((bytes.len(), bytes.len() + held[*i].len()));
            bytes.extend_from_slice(held[*i]);
        }
        Ok(Pairs {
            probe: keep.iter().map(|i| probe[*i]).collect(),
            spans,
            bytes,
            copies: keep.iter().map(|i| copies[*i]).collect(),
            columns,
        })
    }

    /// Applies the rows of `data` (of side `side`) in order: what they
    /// send, and the held rows they change.
    fn apply(
        &mut self,
        side: usize,
        data: &RecordBatch,
        kinds: Option<&changelog::Kinds>,
        rows: &Encoded,
        pairs: &Pairs,
    ) -> Output {
        let (mine_outer, theirs_outer) = (self.plan.spec.outer(side), self.plan.spec.outer(1 - side));
        let mut out = Output::default();
        let mut next = 0;
        let mut missing = 0u64;
        for i in 0..data.num_rows() {
            let kind = kinds.map_or(RowKind::Insert, |k| k.get(i));
            let start = next;
            while next < pairs.probe.len() && pairs.probe[next] as usize == i {
                next += 1;
            }
            let (key, row) = (rows.key(i), rows.row(i));
            let at = Some(i as u32);
            // Partners state TTL dropped are missing from this row's joins.
            if self.sides[1 - side].met_expired(key) {
                missing += 1;
            }
            if !kind.retracts() {
                let mut partners = 0;
                for p in start..next {
                    let (copies, theirs) = (pairs.copies[p], Some(p as u32));
                    partners += copies;
                    if theirs_outer {
                        let (from, to) = pairs.spans[p];
                        if let Some(held) = self.sides[1 - side].get_mut(key, &pairs.bytes[from..to]) {
                            if held.partners == 0 {
                                out.push(RowKind::Delete, None, theirs, copies);
                            }
                            held.partners += 1;
                        }
                    }
                    let sent = if mine_outer || theirs_outer { RowKind::Insert } else { kind };
                    out.push(sent, at, theirs, copies);
                }
                if start == next && mine_outer {
                    out.push(RowKind::Insert, at, None, 1);
                }
                self.sides[side].add(key, row, partners);
                continue;
            }
            // A retraction of a row never held (its insertion came before
            // the job started reading) has nothing to take back.
            if !self.sides[side].retract(key, row) {
                missing += 1;
                continue;
            }
            if start == next && mine_outer {
                out.push(RowKind::Delete, at, None, 1);
            }
            for p in start..next {
                let (copies, theirs) = (pairs.copies[p], Some(p as u32));
                let sent = if mine_outer || theirs_outer { RowKind::Delete } else { kind };
                out.push(sent, at, theirs, copies);
                if theirs_outer {
                    let (from, to) = pairs.spans[p];
                    if let Some(held) = self.sides[1 - side].get_mut(key, &pairs.bytes[from..to]) {
                        held.partners = held.partners.saturating_sub(1);
                        if held.partners == 0 {
                            out.push(RowKind::Insert, None, theirs, copies);
                        }
                    }
                }
            }
        }
        self.metrics.add_dropped(DropReason::ExpiredState, missing);
        out
    }

    /// The rows `out` lists, as a changelog batch of the join's output.
    fn build(&self, side: usize, data: &RecordBatch, pairs: &Pairs, out: Output) -> Result<RecordBatch> {
        let ctx = || format!("{}: joined rows", self.name);
        let mine_at = UInt32Array::from(out.mine);
        let theirs_at = UInt32Array::from(out.theirs);
        let mut mine: Vec<ArrayRef> = data
            .columns()
            .iter()
            .map(|c| take(c, &mine_at, None))
            .collect::<std::result::Result<_, _>>()
            .context(ctx)?;
        let mut columns = match pairs.probe.is_empty() {
            // No partners: every row of the other side is NULL.
            true => self.plan.spec.padded(side, mine, &self.name)?,
            false => {
                let mut theirs: Vec<ArrayRef> = pairs
                    .columns
                    .iter()
                    .map(|c| take(c, &theirs_at, None))
                    .collect::<std::result::Result<_, _>>()
                    .context(ctx)?;
                match side {
                    0 => {
                        mine.append(&mut theirs);
                        mine
                    }
                    _ => {
                        theirs.append(&mut mine);
                        theirs
                    }
                }
            }
        };
        columns.push(Arc::new(datafusion::arrow::array::Int8Array::from(out.kinds)));
        RecordBatch::try_new(Arc::clone(&self.output), columns).context(ctx)
    }
}

impl Operator for UpdatingJoin {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, _batch: StreamBatch, _out: &mut Collector) -> Result<()> {
        Err(crate::operator::side_required(&self.name))
    }

    fn on_input(&mut self, input: usize, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        self.metrics.rows_in.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        let (data, kinds) = changelog::split(&batch.data);
        if data.num_rows() == 0 {
            return Ok(());
        }
        let rows = self.sides[input].encode(&data)?;
        for side in self.sides.iter_mut() {
            side.start_batch();
        }
        let pairs = self.pairs(input, &data, &rows)?;
        let sent = self.apply(input, &data, kinds.as_ref(), &rows, &pairs);
        if sent.kinds.is_empty() {
            return Ok(());
        }
        let joined = self.build(input, &data, &pairs, sent)?;
        self.metrics.rows_out.fetch_add(joined.num_rows() as u64, Ordering::Relaxed);
        out.batch(StreamBatch::new(joined));
        Ok(())
    }

    /// A regular join's output has no watermark but the end of input: any
    /// row may still meet a row to come.
    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        out.watermark(if watermark == WATERMARK_END { watermark } else { WATERMARK_MIN });
        Ok(())
    }

    fn snapshot(&mut self, checkpoint: u64, chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        let out = self.snapshot_async(checkpoint)?()?;
        chunks.append(out.chunks);
        Ok(out.state)
    }

    /// Both sides' rows are copied at the barrier and encoded off the task
    /// loop.
    fn snapshot_async(&mut self, _checkpoint: u64) -> Result<SnapshotJob> {
        let sides: Vec<(CapturedSide, SideEncoder)> =
            self.sides.iter().map(|side| Ok((side.capture(), side.encoder()?))).collect::<Result<_>>()?;
        Ok(Box::new(move || {
            let mut e = Encoder::default();
            for (captured, encoder) in sides {
                encoder.encode(captured, &mut e)?;
            }
            Ok(SnapshotOutput { state: Some(e.bytes), chunks: ChunkWriter::default() })
        }))
    }

    fn state_size(&self) -> StateSize {
        StateSize {
            bytes: self.sides.iter().map(HeldRows::bytes).sum(),
            keys: Some(self.sides.iter().map(HeldRows::keys).sum()),
            spilled: 0,
        }
    }

    fn timer_interval(&self) -> Option<std::time::Duration> {
        self.sides.iter().filter_map(HeldRows::check_every).min()
    }

    fn on_timer(&mut self, _out: &mut Collector) -> Result<()> {
        for side in self.sides.iter_mut() {
            side.expire();
        }
        Ok(())
    }

    fn restore(&mut self, states: &[&[u8]], _chunks: &ChunkMap, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        for state in states {
            let mut d = Decoder::new(state);
            for side in self.sides.iter_mut() {
                side.decode_state(&mut d, owns)?;
            }
            d.finish()?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "updating_tests.rs"]
mod tests;
