//! A hash index over the rows one side of an inner join holds, kept as
//! rows arrive, so that a new batch of the other side meets only the held
//! rows with its keys.
//!
//! Without it, every new batch was joined with the whole held side
//! (DataFusion's hash join rebuilt and probed per batch): a regular join,
//! which holds every row, did work proportional to batches × held rows,
//! the same at any parallelism. With it, a batch costs its own rows and
//! their matches.
//!
//! It is built lazily: held batches are indexed when the other side next
//! probes, so a side that is rarely probed (Nexmark q7's bids, met only
//! by each window's maximum) is rarely indexed; when held rows are
//! dropped, the index is cleared and rebuilt at the next probe.
//!
//! The index finds rows by key *hash*; the keys themselves and the rest of
//! the condition are then compared on the candidate pairs with Arrow's
//! kernels, so collisions and NULLs are handled as DataFusion's join does
//! (a NULL key matches nothing).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::kernels::boolean::and;
use datafusion::arrow::compute::{filter_record_batch, interleave_record_batch, take_record_batch};
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::physical_expr_common::datum::compare_with_eq;
use datafusion::physical_plan::PhysicalExpr;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::error::{EngineError, Result, ResultExt};
use crate::join::exec::JoinSpec;
use crate::join::sides::times;
use crate::message::EventTime;
use crate::operators::evaluate::columns;

/// Not the exchange's seed: the rows of one subtask share the low bits of
/// their exchange hash, which would crowd a table keyed by the same hash.
const SEED: u64 = 0x6a6f_696e_5f69_6478;

/// The held rows of one side by the hash of their join keys.
#[derive(Default)]
pub(crate) struct KeyIndex {
    /// Key hash → 1 + the last held row with that hash.
    heads: HashTable<(u64, u32)>,
    /// Per row: 1 + the previous row with the same hash (0 ends the
    /// chain). Rows are numbered across the batches, in order; the rows
    /// before `base` were dropped (a chain, newest first, ends there).
    chain: Vec<u32>,
    base: u32,
    /// The number of the first row of each held batch.
    starts: Vec<u32>,
    /// Scratch for a batch's hashes.
    hashes: Vec<u64>,
}

impl KeyIndex {
    /// Distinct key hashes indexed: the keys held, but for hash collisions
    /// and keys whose rows were all dropped since the index was rebuilt.
    pub(crate) fn keys(&self) -> usize {
        self.heads.len()
    }

    /// Bytes of the index itself (the rows are the side's).
    pub(crate) fn bytes(&self) -> usize {
        self.heads.capacity() * size_of::<(u64, u32)>() + (self.chain.capacity() + self.starts.capacity()) * 4
    }

    /// Forgets every row: the held batches changed other than by new ones
    /// at the end.
    pub(crate) fn clear(&mut self) {
        self.heads.clear();
        self.chain.clear();
        self.starts.clear();
        self.base = 0;
    }

    /// Forgets the first `batches` held batches (an interval join's
    /// expired rows) in place; once most of the numbered rows are gone,
    /// forgets everything, to be indexed afresh at the next probe.
    pub(crate) fn drop_front(&mut self, batches: usize) {
        if batches >= self.starts.len() {
            self.clear();
            return;
        }
        self.base = self.starts[batches];
        self.starts.drain(..batches);
        if self.base as usize > self.chain.len() / 2 {
            self.clear();
        }
    }

    /// Indexes the held batches not indexed yet, by their keys `keys`.
    fn catch_up(&mut self, keys: &[Arc<dyn PhysicalExpr>], held: &[RecordBatch], name: &str) -> Result<()> {
        for batch in &held[self.starts.len()..] {
            let columns = evaluate(keys, batch, name)?;
            self.push(&columns, batch.num_rows(), name)?;
        }
        Ok(())
    }

    /// Indexes the next held batch, by its key columns `keys`.
    fn push(&mut self, keys: &[ArrayRef], rows: usize, name: &str) -> Result<()> {
        let first = self.chain.len();
        if first + rows >= u32::MAX as usize {
            return Err(EngineError::Plan(format!("{name}: a join subtask can hold at most {} rows", u32::MAX - 1)));
        }
        let valid = hash(keys, rows, &mut self.hashes, name)?;
        self.starts.push(first as u32);
        self.chain.reserve(rows);
        for (i, &h) in self.hashes.iter().enumerate() {
            let row = (first + i + 1) as u32;
            if valid.as_ref().is_some_and(|v| v.is_null(i)) {
                self.chain.push(0);
                continue;
            }
            match self.heads.entry(h, |(x, _)| *x == h, |(x, _)| *x) {
                Entry::Occupied(mut e) => {
                    self.chain.push(e.get().1);
                    e.get_mut().1 = row;
                }
                Entry::Vacant(e) => {
                    self.chain.push(0);
                    e.insert((h, row));
                }
            }
        }
        Ok(())
    }

    /// The pairs of a probe row and a held row whose key hashes are equal,
    /// for a batch with key columns `keys`, and whose times are within
    /// `times` (probe rows' times, held batches' times, bounds) if given.
    fn candidates(&mut self, keys: &[ArrayRef], rows: usize, times: Option<&Times>, name: &str) -> Result<Candidates> {
        let valid = hash(keys, rows, &mut self.hashes, name)?;
        let (mut probe, mut held) = (Vec::new(), Vec::new());
        for (i, &h) in self.hashes.iter().enumerate() {
            if valid.as_ref().is_some_and(|v| v.is_null(i)) {
                continue;
            }
            let Some(&(_, mut row)) = self.heads.find(h, |(x, _)| *x == h) else {
                continue;
            };
            let reach = times.map(|t| (t.probe[i].saturating_add(t.lower), t.probe[i].saturating_add(t.upper)));
            while row > self.base {
                let at = row - 1;
                let batch = self.starts.partition_point(|s| *s <= at) - 1;
                let r = (at - self.starts[batch]) as usize;
                row = self.chain[at as usize];
                if let (Some((from, to)), Some(t)) = (reach, times) {
                    // The chain goes back in arrival order: once every
                    // batch this far back ends before the range, so does
                    // the rest of the chain.
                    if t.latest_so_far[batch] < from {
                        break;
                    }
                    if !(from..=to).contains(&t.held[batch][r]) {
                        continue;
                    }
                }
                probe.push(i as u32);
                held.push((batch, r));
            }
        }
        Ok(Candidates { probe, held })
    }

    /// Joins `batch`, arriving on `side` (0 left, 1 right), with the rows
    /// the other side holds (`held`, whose first batches are those this
    /// index has seen): the rows of the inner join `spec`, if any.
    #[cfg(test)]
    pub(crate) fn join(
        &mut self,
        spec: &JoinSpec,
        side: usize,
        batch: &RecordBatch,
        held: &[RecordBatch],
        name: &str,
    ) -> Result<Option<RecordBatch>> {
        Ok(self.join_pairs(spec, side, batch, held, None, name)?.map(|j| j.rows))
    }

    /// As [`KeyIndex::join`], with which rows met: what an outer interval
    /// join marks as matched. With `bounds`, held rows outside a probe
    /// row's time range are passed over while the index is walked, before
    /// any column is gathered (the join's condition holds the same bounds,
    /// so the result is the same).
    pub(crate) fn join_pairs(
        &mut self,
        spec: &JoinSpec,
        side: usize,
        batch: &RecordBatch,
        held: &[RecordBatch],
        bounds: Option<Reach<'_>>,
        name: &str,
    ) -> Result<Option<Joined>> {
        let ctx = || format!("{name}: joining");
        self.catch_up(&spec.keys(1 - side), held, name)?;
        let keys = evaluate(&spec.keys(side), batch, name)?;
        let times = match bounds {
            Some(Reach { range: b, latest }) => Some(Times {
                probe: times(batch, b.probe, name)?.values(),
                held: held.iter().map(|h| Ok(times(h, b.held, name)?.values().as_ref())).collect::<Result<_>>()?,
                latest_so_far: latest
                    .iter()
                    .scan(EventTime::MIN, |m, l| {
                        *m = (*m).max(*l);
                        Some(*m)
                    })
                    .collect(),
                lower: b.lower,
                upper: b.upper,
            }),
            None => None,
        };
        let Candidates { probe, held: pairs } = self.candidates(&keys, batch.num_rows(), times.as_ref(), name)?;
        if probe.is_empty() {
            return Ok(None);
        }
        let mine = take_record_batch(batch, &UInt32Array::from(probe.clone())).context(ctx)?;
        let held: Vec<&RecordBatch> = held.iter().collect();
        let theirs = interleave_record_batch(&held, &pairs).context(ctx)?;
        let (left, right) = if side == 0 { (mine, theirs) } else { (theirs, mine) };
        let mut keep: Option<BooleanArray> = None;
        let mut also = |m: BooleanArray| -> Result<()> {
            keep = Some(match keep.take() {
                None => m,
                Some(k) => and(&k, &m).context(ctx)?,
            });
            Ok(())
        };
        for (l, r) in &spec.on {
            let (l, r) =
                (evaluate(std::slice::from_ref(l), &left, name)?, evaluate(std::slice::from_ref(r), &right, name)?);
            // As DataFusion's hash join compares keys: nested types too.
            also(compare_with_eq(&l[0], &r[0], l[0].data_type().is_nested()).context(ctx)?)?;
        }
        if let Some(value) = spec.filter_pairs(&left, &right, name)? {
            also(value)?;
        }
        let mut columns = left.columns().to_vec();
        columns.extend(right.columns().iter().cloned());
        let joined = RecordBatch::try_new(Arc::clone(&spec.output_schema), columns).context(ctx)?;
        let (rows, probe, held) = match keep {
            Some(k) => {
                let met = |i: &usize| k.is_valid(*i) && k.value(*i);
                let probe = (0..probe.len()).filter(met).map(|i| probe[i]).collect();
                let held = (0..pairs.len()).filter(met).map(|i| pairs[i]).collect();
                (filter_record_batch(&joined, &k).context(ctx)?, probe, held)
            }
            None => (joined, probe, pairs),
        };
        Ok((rows.num_rows() > 0).then_some(Joined { rows, probe, held }))
    }
}

/// The rows a probe joined, and which rows met: per joined row, the probe
/// row and the held row (batch, row in it).
pub(crate) struct Joined {
    pub rows: RecordBatch,
    pub probe: Vec<u32>,
    pub held: Vec<(usize, usize)>,
}

/// Which held rows a probe row can meet by time: `held time - probe time`
/// within `[lower, upper]` (ms), the times in columns `probe` and `held`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeRange {
    pub probe: usize,
    pub held: usize,
    pub lower: i64,
    pub upper: i64,
}

/// A [`TimeRange`] and the latest time of each held batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reach<'a> {
    pub range: TimeRange,
    pub latest: &'a [EventTime],
}

/// A [`Reach`] with the probe batch's and the held batches' times.
struct Times<'a> {
    probe: &'a [i64],
    held: Vec<&'a [i64]>,
    /// Per held batch, the latest time of it and every batch before it.
    latest_so_far: Vec<EventTime>,
    lower: i64,
    upper: i64,
}

/// Pairs that may join: the probe batch's rows, and the held rows as
/// (batch, row in it), side by side.
struct Candidates {
    probe: Vec<u32>,
    held: Vec<(usize, usize)>,
}

/// The values of `exprs` for the rows of `batch`.
fn evaluate(exprs: &[Arc<dyn PhysicalExpr>], batch: &RecordBatch, name: &str) -> Result<Vec<ArrayRef>> {
    columns(exprs, batch).context(|| format!("{name}: join keys"))
}

/// Hashes the rows' keys into `hashes`; returns which rows have no NULL
/// key (`None`: all of them).
fn hash(keys: &[ArrayRef], rows: usize, hashes: &mut Vec<u64>, name: &str) -> Result<Option<NullBuffer>> {
    hashes.clear();
    hashes.resize(rows, 0);
    create_hashes(keys, &RandomState::with_seed(SEED), hashes).context(|| format!("{name}: hashing join keys"))?;
    Ok(keys.iter().fold(None, |acc, k| NullBuffer::union(acc.as_ref(), k.logical_nulls().as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sorted_lines;
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
    use datafusion::arrow::compute::kernels::aggregate::max;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
    use datafusion::common::ScalarValue;
    use datafusion::common::{JoinSide, JoinType};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
    use datafusion::physical_plan::joins::utils::{ColumnIndex, JoinFilter};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn schema(side: &str) -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new(format!("{side}k"), DataType::Int64, true),
            Field::new(format!("{side}s"), DataType::Utf8, true),
            Field::new(format!("{side}v"), DataType::Int64, false),
        ]))
    }

    /// `left.k = right.k AND left.s = right.s AND left.v < right.v`.
    fn spec() -> JoinSpec {
        let (l, r) = (schema("l"), schema("r"));
        let output = Arc::new(Schema::new([l.fields().to_vec(), r.fields().to_vec()].concat()));
        let filter_schema = Arc::new(Schema::new(vec![l.field(2).clone(), r.field(2).clone()]));
        let lt =
            Arc::new(BinaryExpr::new(Arc::new(Column::new("lv", 0)), Operator::Lt, Arc::new(Column::new("rv", 1))));
        let filter = JoinFilter::new(
            lt,
            vec![ColumnIndex { index: 2, side: JoinSide::Left }, ColumnIndex { index: 2, side: JoinSide::Right }],
            filter_schema,
        );
        JoinSpec {
            join_type: JoinType::Inner,
            left_schema: l,
            right_schema: r,
            on: vec![
                (Arc::new(Column::new("lk", 0)), Arc::new(Column::new("rk", 0))),
                (Arc::new(Column::new("ls", 1)), Arc::new(Column::new("rs", 1))),
            ],
            filter: Some(filter),
            output_schema: output,
        }
    }

    /// Few distinct keys (long chains), about one NULL in eight per key.
    fn rows(side: &str, n: usize, g: &mut SmallRng) -> RecordBatch {
        let k: Int64Array = (0..n).map(|_| (g.random_range(0..8) != 0).then(|| g.random_range(0..5))).collect();
        let s: StringArray =
            (0..n).map(|_| (g.random_range(0..8) != 0).then(|| ["a", "b"][g.random_range(0..2)])).collect();
        let v: Int64Array = (0..n).map(|_| Some(g.random_range(0..100))).collect();
        RecordBatch::try_new(schema(side), vec![Arc::new(k), Arc::new(s), Arc::new(v)]).unwrap()
    }

    /// After the oldest batches are dropped in place, a probe meets only
    /// the batches still held, as DataFusion's join of those would; a
    /// batch held later is numbered after them.
    #[test]
    fn dropping_the_oldest_batches_keeps_the_rest_findable() {
        let spec = spec();
        let mut g = SmallRng::seed_from_u64(5);
        let mut held: Vec<RecordBatch> = (0..4).map(|_| rows("r", 50, &mut g)).collect();
        let probe = rows("l", 60, &mut g);
        let mut index = KeyIndex::default();
        let _ = index.join(&spec, 0, &probe, &held, "test").unwrap();
        index.drop_front(1);
        held.remove(0);
        held.push(rows("r", 50, &mut g));
        let got: Vec<RecordBatch> = index.join(&spec, 0, &probe, &held, "test").unwrap().into_iter().collect();
        let want = spec.run(vec![probe.clone()], held.clone(), "test").unwrap();
        assert!(index.base > 0, "dropped in place, not rebuilt");
        let (got, want) = (sorted_lines(&got), sorted_lines(&want));
        assert!(want.len() > 20, "too few rows to be a test: {}", want.len());
        assert_eq!(got, want);
    }

    /// Struct keys (hashed and compared as nested values) join as in
    /// DataFusion.
    #[test]
    fn struct_keys_join() {
        use datafusion::arrow::array::StructArray;
        let field = |side: &str| {
            Field::new(format!("{side}k"), DataType::Struct(vec![Field::new("a", DataType::Int64, true)].into()), true)
        };
        let batch = |side: &str, keys: Vec<Option<i64>>| {
            let a: ArrayRef = Arc::new(Int64Array::from(keys));
            let k = StructArray::from(vec![(Arc::new(Field::new("a", DataType::Int64, true)), a)]);
            RecordBatch::try_new(Arc::new(Schema::new(vec![field(side)])), vec![Arc::new(k)]).unwrap()
        };
        let (l, r) = (batch("l", vec![Some(1), Some(2), None, Some(2)]), batch("r", vec![Some(2), Some(3), None]));
        let spec = JoinSpec {
            join_type: JoinType::Inner,
            left_schema: l.schema(),
            right_schema: r.schema(),
            on: vec![(Arc::new(Column::new("lk", 0)), Arc::new(Column::new("rk", 0)))],
            filter: None,
            output_schema: Arc::new(Schema::new(vec![field("l"), field("r")])),
        };
        let mut index = KeyIndex::default();
        let got: Vec<RecordBatch> =
            index.join(&spec, 1, &r, std::slice::from_ref(&l), "test").unwrap().into_iter().collect();
        let want = spec.run(vec![l], vec![r], "test").unwrap();
        assert_eq!(sorted_lines(&got), sorted_lines(&want));
        // {a: 2} twice on the left and once on the right; {a: NULL} is a
        // struct, not a NULL key, and matches itself as in DataFusion.
        assert_eq!(sorted_lines(&got).len(), 3);
    }

    /// `got`, the rows of `probe` (arriving on `side`) joined with `held`,
    /// are DataFusion's join of the same batches, and enough to tell.
    fn assert_joins_as_datafusion(
        spec: &JoinSpec,
        side: usize,
        probe: &RecordBatch,
        held: &[RecordBatch],
        got: &[RecordBatch],
    ) {
        let want = if side == 0 {
            spec.run(vec![probe.clone()], held.to_vec(), "test").unwrap()
        } else {
            spec.run(held.to_vec(), vec![probe.clone()], "test").unwrap()
        };
        let (got, want) = (sorted_lines(got), sorted_lines(&want));
        assert!(want.len() > 20, "too few rows to be a test: {}", want.len());
        assert_eq!(got, want, "probing from side {side}");
    }

    /// `l.k = r.k AND r.t BETWEEN l.t - 20 AND l.t + 30` (ms) over
    /// (k BIGINT, t TIMESTAMP(3)) rows.
    fn timed_spec() -> (JoinSpec, TimeRange) {
        let side = |s: &str| {
            Arc::new(Schema::new(vec![
                Field::new(format!("{s}k"), DataType::Int64, false),
                Field::new(format!("{s}t"), DataType::Timestamp(TimeUnit::Millisecond, None), false),
            ]))
        };
        let (l, r) = (side("l"), side("r"));
        let output = Arc::new(Schema::new([l.fields().to_vec(), r.fields().to_vec()].concat()));
        let filter_schema = Arc::new(Schema::new(vec![l.field(1).clone(), r.field(1).clone()]));
        let shifted = |ms: i64| -> Arc<dyn PhysicalExpr> {
            let d = Arc::new(Literal::new(ScalarValue::DurationMillisecond(Some(ms))));
            Arc::new(BinaryExpr::new(Arc::new(Column::new("lt", 0)), Operator::Plus, d))
        };
        let rt: Arc<dyn PhysicalExpr> = Arc::new(Column::new("rt", 1));
        let within = Arc::new(BinaryExpr::new(
            Arc::new(BinaryExpr::new(Arc::clone(&rt), Operator::GtEq, shifted(-20))),
            Operator::And,
            Arc::new(BinaryExpr::new(rt, Operator::LtEq, shifted(30))),
        ));
        let filter = JoinFilter::new(
            within,
            vec![ColumnIndex { index: 1, side: JoinSide::Left }, ColumnIndex { index: 1, side: JoinSide::Right }],
            filter_schema,
        );
        let spec = JoinSpec {
            join_type: JoinType::Inner,
            left_schema: l,
            right_schema: r,
            on: vec![(Arc::new(Column::new("lk", 0)), Arc::new(Column::new("rk", 0)))],
            filter: Some(filter),
            output_schema: output,
        };
        (spec, TimeRange { probe: 1, held: 1, lower: -20, upper: 30 })
    }

    /// Rows of 6 keys whose times go up by about `step` a row, out of
    /// order by up to 40 ms, from `start`.
    fn timed_rows(schema: &SchemaRef, n: usize, start: i64, g: &mut SmallRng) -> RecordBatch {
        let k: Int64Array = (0..n).map(|_| Some(g.random_range(0..6))).collect();
        let t: TimestampMillisecondArray =
            (0..n as i64).map(|i| Some(start + i * 3 + g.random_range(-40..=40))).collect();
        RecordBatch::try_new(Arc::clone(schema), vec![Arc::new(k), Arc::new(t)]).unwrap()
    }

    /// Probing with the join's time range, from either side, skips held
    /// rows outside it and stops where every earlier batch ends before it,
    /// yet gives DataFusion's rows for the whole condition, also when a
    /// held batch is far out of order (its latest time behind the range).
    #[test]
    fn time_ranges_prune_the_walk_but_not_the_rows() {
        let (spec, left_probes) = timed_spec();
        let right_probes = TimeRange { lower: -30, upper: 20, ..left_probes };
        let mut g = SmallRng::seed_from_u64(9);
        for (side, range) in [(0, left_probes), (1, right_probes)] {
            let held_schema = if side == 0 { &spec.right_schema } else { &spec.left_schema };
            let probe_schema = if side == 0 { &spec.left_schema } else { &spec.right_schema };
            // Held: 8 batches in time order, and one from long ago last.
            let mut held: Vec<RecordBatch> = (0..8).map(|b| timed_rows(held_schema, 40, b * 120, &mut g)).collect();
            held.push(timed_rows(held_schema, 40, -5_000, &mut g));
            let latest: Vec<EventTime> = held.iter().map(|b| max(times(b, 1, "test").unwrap()).unwrap()).collect();
            let probe = timed_rows(probe_schema, 60, 500, &mut g);
            let mut index = KeyIndex::default();
            let reach = Reach { range, latest: &latest };
            let got: Vec<RecordBatch> = index
                .join_pairs(&spec, side, &probe, &held, Some(reach), "test")
                .unwrap()
                .map(|j| j.rows)
                .into_iter()
                .collect();
            assert_joins_as_datafusion(&spec, side, &probe, &held, &got);
        }
    }

    /// Batches joined through the index, from either side, give the rows
    /// DataFusion's hash join gives for the same batches: duplicate keys,
    /// NULL keys (which match nothing), two keys and a residual filter.
    #[test]
    fn the_index_joins_as_datafusion_does() {
        let spec = spec();
        let mut g = SmallRng::seed_from_u64(3);
        for side in 0..2 {
            let held: Vec<RecordBatch> = (0..4).map(|_| rows(if side == 0 { "r" } else { "l" }, 50, &mut g)).collect();
            let mut index = KeyIndex::default();
            let probe = rows(if side == 0 { "l" } else { "r" }, 60, &mut g);
            // Indexed in two steps, as batches are held between probes.
            let _ = index.join(&spec, side, &probe, &held[..2], "test").unwrap();
            let got: Vec<RecordBatch> = index.join(&spec, side, &probe, &held, "test").unwrap().into_iter().collect();
            assert_joins_as_datafusion(&spec, side, &probe, &held, &got);
        }
    }
}
