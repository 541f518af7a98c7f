//! GROUP BY without a window: results that change as rows arrive.
//!
//! Flink's group aggregation. Every group's result is kept up to date and
//! each input batch emits the changes it caused (Flink's mini-batch): `+I`
//! for a new group, `-U`/`+U` for a changed result (nothing when the result
//! did not change), `-D` when retractions emptied a group. The output is a
//! changelog stream ([`crate::changelog`]).
//!
//! The input may itself be a changelog (an aggregate of an aggregate,
//! Nexmark q4): its `-U`/`-D` rows are retracted from the accumulators,
//! which is why such a query only takes aggregates whose retraction does
//! not depend on order (COUNT, SUM, AVG, and MIN/MAX keeping a count per
//! value, `min_max.rs` — the planner checks).
//!
//! Per-row work is DataFusion's: keys are encoded by arrow's row format,
//! values folded by DataFusion's `Accumulator`s, one per group, each fed
//! the group's rows of a batch as one slice. (Not its `GroupsAccumulator`,
//! as windows are: at DataFusion 55 it has no `retract_batch`, and its
//! `evaluate`/`state` empty the groups they read, while every batch here
//! reads the touched groups' results and goes on with them.)
//!
//! Checkpoints write only the groups changed since the last one
//! (`chunks.rs`, `written.rs`). Under a state budget the coldest groups
//! spill to disk (`spill.rs`).

use std::collections::HashMap;

use datafusion::common::hash_utils::RandomState;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;

use crate::changelog::{self, RowKind};
use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::checkpoint::snapshot::SnapshotJob;
use crate::error::{EngineError, Result, ResultExt};
use crate::message::StreamBatch;
use crate::metrics::{DropReason, OperatorMetrics};
use crate::operator::{Collector, Operator, StateSize};
use crate::runtime::exchange::key_groups;
use crate::spill::StateBudget;
use crate::state_ttl::Expiry;
use crate::window::aggregate::{OutputColumn, evaluate_input};
use crate::window::groups::Grouping;

mod chunks;
mod min_max;
mod plan;
mod spill;
pub mod state_rows;
mod ttl;
mod written;

use crate::spill::runs::Runs;
pub use chunks::{KeyGroupRows, KeyGroupState, decode_key_groups, read_key_groups};
use min_max::RetractableMinMax;
use written::Written;

/// A GROUP BY without a window, shared by its subtasks.
#[derive(Debug)]
pub struct GroupAggregatePlan {
    pub grouping: Grouping,
    /// Group keys and aggregates, in the order DataFusion's `Aggregate`
    /// gives them.
    pub output: Vec<OutputColumn>,
    /// The visible output columns followed by the changelog column.
    pub output_schema: SchemaRef,
    /// The input is a changelog: accumulators must retract.
    pub retracting: bool,
    /// Groups nothing wrote for this long are dropped (state TTL).
    pub ttl: Option<std::time::Duration>,
}

/// One group's running aggregates.
struct Group {
    accumulators: Vec<Box<dyn Accumulator>>,
    /// Input rows added minus rows retracted: the group is gone at 0.
    /// A group that outlives the batch that made it has had its result
    /// emitted, so its changes are `-U`/`+U`.
    rows: i64,
    /// The group's key, kept only under a state TTL: what expiry removes
    /// from the index.
    key: Option<Box<[u8]>>,
    /// Where the group's state is checkpointed (`chunks.rs`).
    key_group: u32,
    /// The chunk and row that hold its state as of the last checkpoint
    /// that wrote it, and whether it changed since (`written.rs`).
    written: Option<written::Place>,
    changed: bool,
}

/// Encoded group key → index in `groups`.
type Index = HashMap<Box<[u8]>, u32, RandomState>;

/// Not the exchange's seed, whose hashes the keys of one subtask share
/// bits of.
const SEED: u64 = 0x6772_6f75_705f_6167;

/// One subtask of a group aggregation.
pub struct GroupAggregate {
    plan: Arc<GroupAggregatePlan>,
    name: String,
    converter: RowConverter,
    /// Encoded group key → index in `groups` (hashed with DataFusion's
    /// fast hasher: std's SipHash was a twentieth of q4).
    index: Index,
    groups: Vec<Option<Group>>,
    free: Vec<u32>,
    /// Per group: the batch in which it was last touched, and where it is
    /// in that batch's list of touched groups.
    touched_in: Vec<(u64, u32)>,
    batch_no: u64,
    /// Idle groups, under a state TTL.
    expiry: Option<Expiry>,
    /// The groups changed since the last checkpoint, and the chunks that
    /// hold the others.
    written: Written,
    /// Scratch buffer for the key hashes of new groups.
    hashes: Vec<u64>,
    /// The subtask's share of the state budget (`None`: state stays in
    /// memory), and the groups spilled beyond it.
    budget: Option<StateBudget>,
    runs: Runs,
    metrics: Arc<OperatorMetrics>,
}

/// A group a batch touched.
struct Touched {
    group: u32,
    /// A row of the batch with the group's key (its key columns in the
    /// output come from there).
    first_row: u32,
    existed: bool,
}

impl GroupAggregate {
    /// A subtask; with a `budget` its groups spill beyond it (ignored under
    /// a state TTL and for a GROUP BY of no key, `spill.rs`).
    pub fn new(
        plan: Arc<GroupAggregatePlan>,
        name: String,
        metrics: Arc<OperatorMetrics>,
        budget: Option<StateBudget>,
    ) -> Result<Self> {
        let fields = plan.grouping.key_schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        let converter = RowConverter::new(fields).context(|| format!("{name}: group keys"))?;
        Ok(Self {
            name,
            converter,
            index: HashMap::with_hasher(RandomState::with_seed(SEED)),
            groups: Vec::new(),
            free: Vec::new(),
            touched_in: Vec::new(),
            batch_no: 0,
            expiry: plan.ttl.map(Expiry::new),
            written: Written::default(),
            hashes: Vec::new(),
            budget: budget.filter(|_| plan.ttl.is_none() && !plan.grouping.keys.is_empty()),
            runs: Runs::default(),
            metrics,
            plan,
        })
    }

    /// Fresh accumulators of the plan's aggregates (retracting ones over a
    /// changelog).
    fn accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>> {
        self.plan
            .grouping
            .aggregates
            .iter()
            .map(|call| match (self.plan.retracting, call.function.fun().name()) {
                // Over a changelog, MIN and MAX take back any value.
                (true, name @ ("min" | "max")) => {
                    let min_max = RetractableMinMax::new(name == "max", call.function.field().data_type().clone())?;
                    Ok(Box::new(min_max) as Box<dyn Accumulator>)
                }
                (true, _) => call.function.create_sliding_accumulator(),
                (false, _) => call.function.create_accumulator(),
            })
            .collect::<datafusion::error::Result<Vec<_>>>()
            .context(|| format!("{}: creating accumulators", self.name))
    }

    fn new_group(&mut self) -> Result<u32> {
        let group = Group {
            accumulators: self.accumulators()?,
            rows: 0,
            key: None,
            key_group: 0,
            written: None,
            changed: false,
        };
        Ok(match self.free.pop() {
            Some(i) => {
                self.groups[i as usize] = Some(group);
                i
            }
            None => {
                self.groups.push(Some(group));
                self.touched_in.push((0, 0));
                (self.groups.len() - 1) as u32
            }
        })
    }

    /// Takes group `g` out of memory (its key stays in the index): its
    /// checkpointed row is dead, its slot free.
    fn free_group(&mut self, g: u32) -> Option<Group> {
        let group = self.groups[g as usize].take()?;
        self.written.forget(&group);
        self.free.push(g);
        Some(group)
    }

    fn group(&mut self, i: u32) -> &mut Group {
        self.groups[i as usize].as_mut().expect("indexed groups exist")
    }

    /// The current results of some groups, one column per aggregate.
    fn evaluate(&mut self, groups: &[u32]) -> Result<Vec<Vec<ScalarValue>>> {
        let n = self.plan.grouping.aggregates.len();
        let mut values: Vec<Vec<ScalarValue>> = (0..n).map(|_| Vec::with_capacity(groups.len())).collect();
        let name = &self.name;
        for g in groups {
            let group = self.groups[*g as usize].as_mut().expect("indexed groups exist");
            for (a, acc) in group.accumulators.iter_mut().enumerate() {
                values[a].push(acc.evaluate().context(|| format!("{name}: evaluating"))?);
            }
        }
        Ok(values)
    }

    /// Folds the rows `order` lists (grouped by touched group, `bounds[t]..
    /// bounds[t + 1]` for the t-th) into aggregate `a` of each touched group.
    fn fold(
        &mut self,
        a: usize,
        args: &[ArrayRef],
        order: &UInt32Array,
        bounds: &[usize],
        touched: &[Touched],
        retract: bool,
    ) -> Result<()> {
        if order.is_empty() {
            return Ok(());
        }
        let name = &self.name;
        let taken: Vec<ArrayRef> = args
            .iter()
            .map(|c| take(c.as_ref(), order, None))
            .collect::<std::result::Result<_, _>>()
            .context(|| format!("{name}: grouping rows"))?;
        for (t, touch) in touched.iter().enumerate() {
            let (from, to) = (bounds[t], bounds[t + 1]);
            if from == to {
                continue;
            }
            let slices: Vec<ArrayRef> = taken.iter().map(|c| c.slice(from, to - from)).collect();
            let acc = &mut self.groups[touch.group as usize].as_mut().expect("indexed groups exist").accumulators[a];
            if retract { acc.retract_batch(&slices) } else { acc.update_batch(&slices) }
                .context(|| format!("{name}: aggregating"))?;
        }
        Ok(())
    }

    /// Results (one list per aggregate) as arrays of the output columns'
    /// types.
    fn value_arrays(&self, values: Vec<Vec<ScalarValue>>) -> Result<Vec<ArrayRef>> {
        let ctx = || format!("{}: building results", self.name);
        let mut aggregates = Vec::with_capacity(values.len());
        for (a, v) in values.into_iter().enumerate() {
            let want = self.plan.output_schema.field(self.aggregate_column(a)).data_type();
            let array = ScalarValue::iter_to_array(v).context(ctx)?;
            aggregates.push(if array.data_type() == want {
                array
            } else {
                datafusion::arrow::compute::cast(&array, want).context(ctx)?
            });
        }
        Ok(aggregates)
    }

    /// Sets the key group of groups this batch made, from a row of each
    /// (`fresh`: group, row); a GROUP BY of no key has one group, in key
    /// group 0.
    fn assign_key_groups(&mut self, keys: &[ArrayRef], fresh: &[(u32, u32)]) -> Result<()> {
        if fresh.is_empty() || keys.is_empty() {
            return Ok(());
        }
        let kgs = self.key_groups_of(keys, UInt32Array::from_iter_values(fresh.iter().map(|f| f.1)))?;
        for ((g, _), kg) in fresh.iter().zip(kgs) {
            self.group(*g).key_group = kg as u32;
        }
        Ok(())
    }

    /// The key groups of the rows `picks` of a batch with key columns
    /// `keys`.
    fn key_groups_of(&mut self, keys: &[ArrayRef], picks: UInt32Array) -> Result<Vec<usize>> {
        let taken: Vec<ArrayRef> = keys
            .iter()
            .map(|k| take(k.as_ref(), &picks, None))
            .collect::<std::result::Result<_, _>>()
            .context(|| format!("{}: group keys", self.name))?;
        key_groups(&taken, picks.len(), &mut self.hashes)
    }

    fn output(
        &self,
        input: &[ArrayRef],
        rows: &[u32],
        values: Vec<Vec<ScalarValue>>,
        kinds: Vec<i8>,
    ) -> Result<RecordBatch> {
        let picks = UInt32Array::from(rows.to_vec());
        let ctx = || format!("{}: building results", self.name);
        let aggregates = self.value_arrays(values)?;
        let mut columns = Vec::with_capacity(self.plan.output.len() + 1);
        for c in &self.plan.output {
            columns.push(match c {
                OutputColumn::Key(k) => take(input[*k].as_ref(), &picks, None).context(ctx)?,
                OutputColumn::Aggregate(a) => Arc::clone(&aggregates[*a]),
                other => {
                    return Err(EngineError::Plan(format!(
                        "{}: a group aggregation has no {other:?} column",
                        self.name
                    )));
                }
            });
        }
        columns.push(Arc::new(datafusion::arrow::array::Int8Array::from(kinds)));
        RecordBatch::try_new(Arc::clone(&self.plan.output_schema), columns).context(ctx)
    }

    fn aggregate_column(&self, a: usize) -> usize {
        self.plan
            .output
            .iter()
            .position(|c| *c == OutputColumn::Aggregate(a))
            .expect("every aggregate is an output column")
    }
}

/// Rows of `rows` (where `keep` says) ordered by their touched group,
/// stable; and where each group's rows start.
fn grouped_order(touched_of: &[u32], groups: usize, keep: impl Fn(usize) -> bool) -> (UInt32Array, Vec<usize>) {
    let mut bounds = vec![0usize; groups + 1];
    for (r, t) in touched_of.iter().enumerate() {
        if keep(r) {
            bounds[*t as usize + 1] += 1;
        }
    }
    for i in 0..groups {
        bounds[i + 1] += bounds[i];
    }
    let mut next = bounds.clone();
    let mut order = vec![0u32; bounds[groups]];
    for (r, t) in touched_of.iter().enumerate() {
        if keep(r) {
            order[next[*t as usize]] = r as u32;
            next[*t as usize] += 1;
        }
    }
    (UInt32Array::from(order), bounds)
}

fn passes(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}

impl Operator for GroupAggregate {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        let (data, kinds) = changelog::split(&batch.data);
        let n = data.num_rows();
        if n == 0 {
            return Ok(());
        }
        let input = evaluate_input(&self.plan.grouping, &data, &self.name)?;
        let rows = if !input.keys.is_empty() {
            Some(self.converter.convert_columns(&input.keys).context(|| format!("{}: group keys", self.name))?)
        } else {
            None
        };
        self.batch_no += 1;
        if let Some(rows) = &rows {
            self.load_spilled(&input.keys, rows)?;
        }
        let mut touched: Vec<Touched> = Vec::new();
        let mut touched_of = Vec::with_capacity(n);
        let now = self.expiry.as_ref().map(Expiry::now);
        let mut met_missing = 0;
        // Per touched group, its rows so far; the retractions taking back
        // nothing, in order.
        let mut running: Vec<i64> = Vec::new();
        let mut skipped: Vec<u32> = Vec::new();
        // Groups this batch made, with a row of each (for their key group).
        let mut fresh: Vec<(u32, u32)> = Vec::new();
        for r in 0..n {
            let key: &[u8] = rows.as_ref().map_or(&[], |rows| rows.row(r).data());
            let (group, existed) = match self.index.get(key) {
                Some(g) => (*g, true),
                None => {
                    // A row of a group state TTL dropped meets missing
                    // state (a retraction is counted below).
                    if self.met_expired(key) && !kinds.as_ref().is_some_and(|k| k.get(r).retracts()) {
                        met_missing += 1;
                    }
                    let g = self.new_group()?;
                    self.index.insert(key.into(), g);
                    self.keep_key(g, key);
                    fresh.push((g, r as u32));
                    (g, false)
                }
            };
            if let (Some(e), Some(now)) = (&mut self.expiry, now) {
                e.touch(group, now);
            }
            let seen = &mut self.touched_in[group as usize];
            if seen.0 != self.batch_no {
                *seen = (self.batch_no, touched.len() as u32);
                touched.push(Touched { group, first_row: r as u32, existed });
            }
            touched_of.push(seen.1);
            // A retraction of more rows than its group holds (of a group
            // that is not there: its insertion came before the job began
            // reading, or state TTL dropped it) takes back nothing, as in
            // Flink, and is counted.
            let t = seen.1 as usize;
            if running.len() == t {
                running.push(self.group(group).rows);
            }
            if kinds.as_ref().is_some_and(|k| k.get(r).retracts()) {
                if running[t] <= 0 {
                    skipped.push(r as u32);
                    met_missing += 1;
                } else {
                    running[t] -= 1;
                }
            } else {
                running[t] += 1;
            }
        }
        self.assign_key_groups(&input.keys, &fresh)?;
        let retracts = |r: usize| {
            kinds.as_ref().is_some_and(|k| k.get(r).retracts()) && skipped.binary_search(&(r as u32)).is_err()
        };
        let skip = |r: usize| skipped.binary_search(&(r as u32)).is_ok();
        // Results before this batch, for the -U/-D rows.
        let before: Vec<u32> = touched.iter().filter(|t| t.existed).map(|t| t.group).collect();
        let old = self.evaluate(&before)?;
        for (a, args) in input.args.iter().enumerate() {
            let filter = input.filters[a].as_ref();
            let (order, bounds) =
                grouped_order(&touched_of, touched.len(), |r| !retracts(r) && !skip(r) && passes(filter, r));
            self.fold(a, args, &order, &bounds, &touched, false)?;
            if kinds.is_some() {
                let (order, bounds) = grouped_order(&touched_of, touched.len(), |r| retracts(r) && passes(filter, r));
                self.fold(a, args, &order, &bounds, &touched, true)?;
            }
        }
        let mut counts = vec![0i64; touched.len()];
        for (r, t) in touched_of.iter().enumerate().filter(|(r, _)| !skip(*r)) {
            counts[*t as usize] += if retracts(r) { -1 } else { 1 };
        }
        for (t, c) in touched.iter().zip(&counts) {
            let group = self.groups[t.group as usize].as_mut().expect("indexed groups exist");
            group.rows += c;
            let key: &[u8] = rows.as_ref().map_or(&[], |rows| rows.row(t.first_row as usize).data());
            self.written.changed(group, t.group, key);
        }

        // The changes: retractions of old results first, so that a sink
        // applying them in order ends with the new ones.
        let live: Vec<u32> = touched
            .iter()
            .filter(|t| self.groups[t.group as usize].as_ref().is_some_and(|g| g.rows > 0))
            .map(|t| t.group)
            .collect();
        let new = self.evaluate(&live)?;
        let aggregates = self.plan.grouping.aggregates.len();
        // (row with the key, kind, index into `old` or `new`).
        let mut withdrawn: Vec<(u32, RowKind, usize)> = Vec::new();
        let mut current: Vec<(u32, RowKind, usize)> = Vec::new();
        let (mut b, mut l) = (0, 0);
        for t in &touched {
            let had = before.get(b) == Some(&t.group);
            let alive = live.get(l) == Some(&t.group);
            let changed = !(had && alive) || (0..aggregates).any(|a| old[a][b] != new[a][l]);
            if had && changed {
                withdrawn.push((t.first_row, if alive { RowKind::UpdateBefore } else { RowKind::Delete }, b));
            }
            if alive && changed {
                current.push((t.first_row, if had { RowKind::UpdateAfter } else { RowKind::Insert }, l));
            }
            if !alive {
                let key: &[u8] = rows.as_ref().map_or(&[], |rows| rows.row(t.first_row as usize).data());
                self.index.remove(key);
                self.free_group(t.group);
                if let Some(e) = &mut self.expiry {
                    e.vacate(t.group);
                }
            }
            b += had as usize;
            l += alive as usize;
        }
        let out_rows: Vec<u32> = withdrawn.iter().chain(&current).map(|c| c.0).collect();
        let out_kinds: Vec<i8> = withdrawn.iter().chain(&current).map(|c| c.1 as i8).collect();
        let out_values: Vec<Vec<ScalarValue>> = (0..aggregates)
            .map(|a| {
                let before = withdrawn.iter().map(|c| old[a][c.2].clone());
                before.chain(current.iter().map(|c| new[a][c.2].clone())).collect()
            })
            .collect();
        if !out_rows.is_empty() {
            let result = self.output(&input.keys, &out_rows, out_values, out_kinds)?;
            out.batch(StreamBatch::new(result));
        }
        self.metrics.add_dropped(DropReason::ExpiredState, met_missing);
        self.written.trim(&self.groups, self.index.len());
        self.keep_within_budget()
    }

    fn timer_interval(&self) -> Option<std::time::Duration> {
        self.expiry.as_ref().map(Expiry::check_every)
    }

    fn on_timer(&mut self, _out: &mut Collector) -> Result<()> {
        self.expire();
        Ok(())
    }

    /// Estimated from a sample of groups (`held_bytes`): walking every
    /// accumulator of a large state each time the gauge is read cost q4 a
    /// twentieth of its time.
    fn state_size(&self) -> StateSize {
        StateSize {
            bytes: self.held_bytes(),
            keys: Some(self.index.len() + self.runs.live_rows()),
            spilled: self.runs.disk(),
        }
    }

    fn snapshot(&mut self, checkpoint: u64, chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        let out = self.snapshot_job(checkpoint)?()?;
        chunks.append(out.chunks);
        Ok(out.state)
    }

    /// The groups changed since the last checkpoint are taken as Arrow
    /// batches here and encoded off the task loop (`chunks.rs`).
    fn snapshot_async(&mut self, checkpoint: u64) -> Result<SnapshotJob> {
        self.snapshot_job(checkpoint)
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) {
        self.written.complete(checkpoint);
        self.runs.complete(checkpoint);
    }

    fn restore(&mut self, states: &[&[u8]], chunks: &ChunkMap, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        let all: Vec<Option<usize>> = (0..self.plan.grouping.aggregates.len()).map(Some).collect();
        self.restore_chunks(states, chunks, owns, &all)
    }

    fn restore_adding_aggregates(
        &mut self,
        states: &[&[u8]],
        chunks: &ChunkMap,
        owns: &dyn Fn(usize) -> bool,
        saved: &[Option<usize>],
    ) -> Result<()> {
        self.restore_chunks(states, chunks, owns, saved)
    }
}

#[cfg(test)]
mod tests;
