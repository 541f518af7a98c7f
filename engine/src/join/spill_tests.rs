//! Interval and regular inner joins under a small state budget against the
//! same join in memory and DataFusion's join of every row: duplicate and
//! NULL keys, a residual condition, runs probed by keys found only there,
//! checkpoints (one abandoned) restored at another parallelism with and
//! without a budget, and spill files gone once the watermark passed them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::common::{JoinSide, JoinType};
use datafusion::logical_expr::Operator as BinaryOp;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_plan::PhysicalExpr;
use datafusion::physical_plan::joins::utils::{ColumnIndex, JoinFilter};
use datafusion::scalar::ScalarValue;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::checkpoint::chunk::{ChunkBytes, ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::join::exec::JoinSpec;
use crate::join::interval::{IntervalJoin, IntervalJoinPlan, TimeBounds};
use crate::join::runs::{KeyRange, Run};
use crate::join::sides::SideRows;
use crate::message::{StreamBatch, WATERMARK_END};
use crate::metrics::JobMetrics;
use crate::operator::{Collector, Operator};
use crate::runtime::exchange::{KEY_GROUPS, key_groups, subtask_of_key_group};
use crate::spill::StateBackend;
use crate::testing::{data_batches, sorted_lines};

const BUDGET: usize = 32 << 10;
/// An interval join's bounds: `r.ts - l.ts` within `[LOWER, UPPER]`.
const LOWER: i64 = -60;
const UPPER: i64 = 40;
/// A key only the first left batch has.
const LONE_KEY: i64 = 1_000_000;

fn side_schema(side: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(format!("{side}k"), DataType::Int64, true),
        Field::new(format!("{side}v"), DataType::Int64, false),
        Field::new(format!("{side}ts"), DataType::Timestamp(TimeUnit::Millisecond, None), false),
    ]))
}

fn binary(l: Arc<dyn PhysicalExpr>, op: BinaryOp, r: Arc<dyn PhysicalExpr>) -> Arc<dyn PhysicalExpr> {
    Arc::new(BinaryExpr::new(l, op, r))
}

/// A `join_type` join on `l.k = r.k AND l.v < r.v`; for an interval join
/// also `r.ts BETWEEN l.ts + LOWER AND l.ts + UPPER` in the residual
/// condition, as the planner leaves it.
fn plan(interval: bool, join_type: JoinType) -> Arc<IntervalJoinPlan> {
    let (l, r) = (side_schema("l"), side_schema("r"));
    let nullable = |f: &Arc<Field>| f.as_ref().clone().with_nullable(true);
    let output = Arc::new(Schema::new(l.fields().iter().chain(r.fields().iter()).map(nullable).collect::<Vec<_>>()));
    let col = |name: &str, i: usize| -> Arc<dyn PhysicalExpr> { Arc::new(Column::new(name, i)) };
    let mut condition = binary(col("lv", 0), BinaryOp::Lt, col("rv", 1));
    let mut indices =
        vec![ColumnIndex { index: 1, side: JoinSide::Left }, ColumnIndex { index: 1, side: JoinSide::Right }];
    let mut fields = vec![l.field(1).clone(), r.field(1).clone()];
    if interval {
        let ms = |v: i64| -> Arc<dyn PhysicalExpr> {
            Arc::new(Literal::new(ScalarValue::IntervalMonthDayNano(Some(
                datafusion::arrow::datatypes::IntervalMonthDayNano::new(0, 0, v * 1_000_000),
            ))))
        };
        let (lts, rts) = (col("lts", 2), col("rts", 3));
        let after = binary(Arc::clone(&rts), BinaryOp::GtEq, binary(Arc::clone(&lts), BinaryOp::Plus, ms(LOWER)));
        let before = binary(rts, BinaryOp::LtEq, binary(lts, BinaryOp::Plus, ms(UPPER)));
        condition = binary(condition, BinaryOp::And, binary(after, BinaryOp::And, before));
        indices
            .extend([ColumnIndex { index: 2, side: JoinSide::Left }, ColumnIndex { index: 2, side: JoinSide::Right }]);
        fields.extend([l.field(2).clone(), r.field(2).clone()]);
    }
    let spec = JoinSpec {
        join_type,
        left_schema: l,
        right_schema: r,
        on: vec![(col("lk", 0), col("rk", 0))],
        filter: Some(JoinFilter::new(condition, indices, Arc::new(Schema::new(fields)))),
        output_schema: output,
    };
    let bounds = interval.then_some(TimeBounds { time: [2, 2], lower: LOWER, upper: UPPER });
    Arc::new(IntervalJoinPlan { spec, bounds, ttl: [None, None] })
}

fn join(plan: &Arc<IntervalJoinPlan>, backend: Option<&StateBackend>, subtask: usize) -> IntervalJoin {
    let metrics = JobMetrics::default().register("join", subtask);
    let budget = backend.and_then(|b| b.share("join", subtask));
    IntervalJoin::new(Arc::clone(plan), "join".into(), metrics).with_budget(budget)
}

#[derive(Clone)]
enum Input {
    Rows(usize, RecordBatch),
    Watermark(i64),
}

/// Batches of both sides in roughly rising time (never behind a watermark
/// sent), with duplicate keys and about one NULL key in ten; the first left
/// batch alone has [`LONE_KEY`], which, in a regular join, a right row
/// meets at the end.
fn inputs(seed: u64, interval: bool) -> Vec<Input> {
    let mut g = SmallRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let batch = |side: usize, keys: Vec<Option<i64>>, step: i64, g: &mut SmallRng| {
        let n = keys.len();
        let v = Int64Array::from_iter_values((0..n).map(|_| g.random_range(0..100)));
        let ts = TimestampMillisecondArray::from_iter_values((0..n).map(|_| step * 10 + g.random_range(0..40)));
        let schema = side_schema(["l", "r"][side]);
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(keys)), Arc::new(v), Arc::new(ts)]).unwrap()
    };
    out.push(Input::Rows(0, batch(0, vec![Some(LONE_KEY); 3], 0, &mut g)));
    for step in 1..400 {
        let side = g.random_range(0..2);
        let keys = (0..24).map(|_| (g.random_range(0..10) != 0).then(|| g.random_range(0..150))).collect();
        out.push(Input::Rows(side, batch(side, keys, step, &mut g)));
        if step % 10 == 0 {
            out.push(Input::Watermark(step * 10 - 100));
        }
    }
    if interval {
        return out;
    }
    let last = batch(1, vec![Some(LONE_KEY)], 0, &mut g);
    let mut columns = last.columns().to_vec();
    columns[1] = Arc::new(Int64Array::from(vec![1_000]));
    out.push(Input::Rows(1, RecordBatch::try_new(last.schema(), columns).unwrap()));
    out
}

/// The rows `inputs` would join if every row were held, by DataFusion.
fn oracle(plan: &IntervalJoinPlan, inputs: &[Input]) -> Vec<String> {
    let side = |s: usize| -> Vec<RecordBatch> {
        inputs
            .iter()
            .filter_map(|i| match i {
                Input::Rows(x, b) if *x == s => Some(b.clone()),
                _ => None,
            })
            .collect()
    };
    sorted_lines(&plan.spec.run(side(0), side(1), "oracle").unwrap())
}

/// `got` and `want` (sorted lines) as multisets; a failure shows a few
/// lines only one of them has.
fn assert_same(got: &[String], want: &[String], what: &str) {
    if got == want {
        return;
    }
    let (mut only_got, mut only_want) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < got.len() || j < want.len() {
        match (got.get(i), want.get(j)) {
            (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
            (Some(a), Some(b)) if a < b => (only_got.push(a), i += 1).1,
            (Some(a), None) => (only_got.push(a), i += 1).1,
            (_, Some(b)) => (only_want.push(b), j += 1).1,
            (None, None) => unreachable!(),
        }
    }
    panic!(
        "{what}: {} rows, {} wanted; {} extra, e.g. {:?}; {} missing, e.g. {:?}",
        got.len(),
        want.len(),
        only_got.len(),
        &only_got[..only_got.len().min(3)],
        only_want.len(),
        &only_want[..only_want.len().min(3)]
    );
}

/// Feeds `input` to `op`; with `budget`, checks the bytes it then holds.
fn feed(op: &mut IntervalJoin, input: &Input, budget: Option<usize>) -> Vec<RecordBatch> {
    let mut out = Collector::default();
    match input {
        Input::Rows(side, b) => op.on_input(*side, StreamBatch::new(b.clone()), &mut out).unwrap(),
        Input::Watermark(w) => op.on_watermark(*w, &mut out).unwrap(),
    }
    if let Some(budget) = budget {
        // The rows and indexes; where the runs' parts are cannot spill.
        let held = op.spillable_bytes();
        assert!(held <= budget, "holds {held} bytes, over the budget of {budget}");
    }
    data_batches(out)
}

/// `input` for the subtask `subtask` of `parallelism`: its key groups' rows.
fn part_of(input: &Input, subtask: usize, parallelism: usize) -> Input {
    let Input::Rows(side, b) = input else {
        return input.clone();
    };
    let groups = key_groups(&[Arc::clone(b.column(0))], b.num_rows(), &mut Vec::new()).unwrap();
    let mine = UInt32Array::from_iter_values(
        (0..b.num_rows() as u32).filter(|r| subtask_of_key_group(groups[*r as usize], parallelism) == subtask),
    );
    Input::Rows(*side, datafusion::arrow::compute::take_record_batch(b, &mine).unwrap())
}

/// Files under `dir`, at any depth.
fn files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map_or(0, |entries| entries.flatten().map(|e| if e.path().is_dir() { files(&e.path()) } else { 1 }).sum())
}

/// Under a 32 KB budget both joins spill runs, never hold more than the
/// budget after an input, find a key only a run holds, and emit what the
/// join in memory and DataFusion's join emit; an interval join's files
/// go once the watermark passed them. A LEFT interval join spills its
/// inner (right) side only, and pads its left rows as in memory.
#[test]
fn joins_under_a_budget_equal_the_join_in_memory_and_datafusion() {
    for (interval, join_type) in [(false, JoinType::Inner), (true, JoinType::Inner), (true, JoinType::Left)] {
        let what = format!("{join_type:?}, interval {interval}");
        let plan = plan(interval, join_type);
        let mut inputs = inputs(if interval { 3 } else { 4 }, interval);
        let dir = tempfile::tempdir().unwrap();
        let backend = StateBackend::spilling(BUDGET as u64, &dir.path().join("spill")).unwrap();
        let (mut memory, mut spilling) = (join(&plan, None, 0), join(&plan, Some(&backend), 0));
        let (mut want, mut got) = (Vec::new(), Vec::new());
        let (mut most_runs, mut most_spilled) = ([0, 0], [0, 0]);
        for input in &inputs {
            if matches!(input, Input::Rows(1, b) if b.num_rows() == 1) {
                assert!(spilling.runs()[0] > 0, "the lone key's batch is spilled");
            }
            want.extend(feed(&mut memory, input, None));
            got.extend(feed(&mut spilling, input, Some(BUDGET)));
            let (runs, spilled) = (spilling.runs(), spilling.spilled_per_side());
            most_runs = [most_runs[0].max(runs[0]), most_runs[1].max(runs[1])];
            most_spilled = [most_spilled[0].max(spilled[0]), most_spilled[1].max(spilled[1])];
        }
        let outer = join_type == JoinType::Left;
        // Runs merge in tiers, so several spills may be one run: what was
        // on disk at once (compressed) counts.
        let spills = |s: usize| most_spilled[s] >= BUDGET;
        assert!(spills(1) && (outer || spills(0)), "{what}: too little spilled to be a test: {most_spilled:?}");
        assert!(most_runs[0] == 0 || !outer, "{what}: an outer side spilled");
        if interval {
            // The end of input fires every padded row and drops every run.
            assert!(files(dir.path()) > 0, "{what}: runs of the last seconds are on disk");
            inputs.push(Input::Watermark(WATERMARK_END));
            want.extend(feed(&mut memory, &Input::Watermark(WATERMARK_END), None));
            got.extend(feed(&mut spilling, &Input::Watermark(WATERMARK_END), None));
            assert_eq!(spilling.runs(), [0, 0]);
            assert_eq!(spilling.state_size().spilled, 0);
            assert_eq!(files(dir.path()), 0, "{what}: the watermark passed every run");
        } else {
            assert!(spilling.state_size().spilled > 0);
        }
        let (got, want, oracle) = (sorted_lines(&got), sorted_lines(&want), oracle(&plan, &inputs));
        assert!(oracle.len() > 1_000, "{what}: too few rows to be a test: {}", oracle.len());
        assert_same(&want, &oracle, &format!("in memory, {what}"));
        assert_same(&got, &oracle, &format!("spilling, {what}"));
        if !interval {
            let lone = got.iter().filter(|l| l.starts_with(&format!("| {LONE_KEY} "))).count();
            assert_eq!(lone, 3, "{what}: the lone key met in a run");
        }
        drop(spilling);
        assert_eq!(files(dir.path()), 0, "{what}: spill files outlived the join");
    }
}

/// Checkpoint 1 is abandoned, 2 and 3 complete (3 references what 2
/// stored); restored from 3 at parallelism 3, with and without a budget,
/// the subtasks go on to the output of the uninterrupted join.
#[test]
fn a_restore_at_another_parallelism_goes_on_as_before() {
    for interval in [false, true] {
        let plan = plan(interval, JoinType::Inner);
        let inputs = inputs(if interval { 5 } else { 6 }, interval);
        let dir = tempfile::tempdir().unwrap();
        let backend = StateBackend::spilling(BUDGET as u64, &dir.path().join("spill")).unwrap();
        let mut op = join(&plan, Some(&backend), 0);
        let mut got = Vec::new();
        let mut stored = ChunkMap::default();
        let mut state = Vec::new();
        let half = inputs.len() / 2;
        let at = half + 3;
        for (i, input) in inputs[..at].iter().enumerate() {
            got.extend(feed(&mut op, input, Some(BUDGET)));
            for (checkpoint, when) in [(1, half / 2), (2, half), (3, half + 2)] {
                if i != when {
                    continue;
                }
                let out = op.snapshot_async(checkpoint).unwrap()().unwrap();
                let new: Vec<_> = out.chunks.new.iter().map(|(id, _)| *id).collect();
                if checkpoint == 1 {
                    continue;
                }
                stored.extend(out.chunks.new).unwrap();
                for id in &out.chunks.refs {
                    assert!(stored.contains(*id), "checkpoint {checkpoint} references a chunk never stored");
                }
                if checkpoint == 3 {
                    assert!(new.len() < out.chunks.refs.len(), "stored runs are referenced, not copied again");
                }
                op.checkpoint_complete(checkpoint);
                state = out.state.unwrap();
            }
        }
        assert!(op.runs().iter().sum::<usize>() > 0, "no runs when checkpointed");
        // The restored job's own budget: the first job's process is gone.
        let restarted = StateBackend::spilling(BUDGET as u64, &dir.path().join("restored")).unwrap();
        for budget in [None, Some(restarted.as_ref())] {
            let mut restored: Vec<IntervalJoin> = (0..3)
                .map(|s| {
                    let mut op = join(&plan, budget, s + 1);
                    op.restore(&[&state], &stored, &|g| subtask_of_key_group(g, 3) == s).unwrap();
                    op
                })
                .collect();
            let mut all = got.clone();
            for input in &inputs[at..] {
                for (s, op) in restored.iter_mut().enumerate() {
                    all.extend(feed(op, &part_of(input, s, 3), budget.map(|_| BUDGET)));
                }
            }
            let what = format!("restored, interval {interval}, budget {}", budget.is_some());
            assert_same(&sorted_lines(&all), &oracle(&plan, &inputs), &what);
        }
    }
}

/// Keys that grow (Nexmark's auction ids): a new row's key is above all
/// but the newest rows' spilled, so probes skip the older runs and blocks
/// (a merged run keeps its runs' blocks) without reading them, and the
/// join still equals DataFusion's.
#[test]
fn growing_keys_skip_the_runs_they_cannot_meet() {
    let plan = plan(false, JoinType::Inner);
    let mut g = SmallRng::seed_from_u64(7);
    let inputs: Vec<Input> = (0..300i64)
        .map(|step| {
            let side = (step % 2) as usize;
            let keys = Int64Array::from_iter_values((0..24).map(|_| step * 4 + g.random_range(0..12)));
            let v = Int64Array::from_iter_values((0..24).map(|_| g.random_range(0..100)));
            let ts = TimestampMillisecondArray::from_iter_values((0..24).map(|_| step * 10));
            let schema = side_schema(["l", "r"][side]);
            Input::Rows(side, RecordBatch::try_new(schema, vec![Arc::new(keys), Arc::new(v), Arc::new(ts)]).unwrap())
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let backend = StateBackend::spilling(BUDGET as u64, &dir.path().join("spill")).unwrap();
    let mut op = join(&plan, Some(&backend), 0);
    let mut got = Vec::new();
    for input in &inputs {
        got.extend(feed(&mut op, input, Some(BUDGET)));
    }
    let spilled = op.spilled_per_side();
    assert!(spilled.iter().all(|s| *s >= BUDGET), "too little spilled to be a test: {spilled:?}");
    let oracle = oracle(&plan, &inputs);
    assert!(oracle.len() > 1_000, "too few rows to be a test: {}", oracle.len());
    assert_same(&sorted_lines(&got), &oracle, "growing keys");
    // Only the newest run can hold keys a batch meets (keys three steps
    // apart), and of it about a batch's key groups: a probe of every run
    // would read some 20 parts of each per batch.
    let read = op.parts_read();
    assert!(read > 0 && read < inputs.len() as u64, "{read} parts read by {} probes", inputs.len());
}

/// `n` batches of the left side, keys `0..keys` with some NULLs.
fn left_batches(n: usize, keys: i64, g: &mut SmallRng) -> Vec<RecordBatch> {
    (0..n)
        .map(|step| {
            let k =
                Int64Array::from_iter((0..50).map(|_| (g.random_range(0..10) != 0).then(|| g.random_range(0..keys))));
            let v = Int64Array::from_iter_values((0..50).map(|_| g.random_range(0..100)));
            let ts = TimestampMillisecondArray::from_iter_values((0..50).map(|_| step as i64));
            RecordBatch::try_new(side_schema("l"), vec![Arc::new(k), Arc::new(v), Arc::new(ts)]).unwrap()
        })
        .collect()
}

/// The parts of a run of the left side a probe with rows of the `wanted`
/// key groups reads.
fn read(run: &Run, wanted: &[bool]) -> Vec<RecordBatch> {
    read_keys(run, wanted, KeyRange::Unknown).0
}

/// As [`read`], for a probe whose keys are within `keys`; with the reads.
fn read_keys(run: &Run, wanted: &[bool], keys: KeyRange) -> (Vec<RecordBatch>, usize) {
    let mut parts = Vec::new();
    let (n, reads) = run
        .read_each(wanted, keys, &side_schema("l"), &mut |b| {
            parts.push(b);
            Ok(())
        })
        .unwrap();
    assert_eq!(n, parts.len());
    assert!(reads <= n);
    (parts, reads)
}

/// The rows of `batches` a probe can meet: those without a NULL key.
fn keyed(batches: &[RecordBatch]) -> Vec<RecordBatch> {
    let not_null = |b: &RecordBatch| datafusion::arrow::compute::is_not_null(b.column(0)).unwrap();
    batches.iter().map(|b| datafusion::arrow::compute::filter_record_batch(b, &not_null(b)).unwrap()).collect()
}

/// A spill file decoded as a restore decodes a chunk: the rows of every
/// key group.
fn chunk_rows(chunk: &ChunkBytes) -> Vec<RecordBatch> {
    let bytes = chunk.read().unwrap();
    let mut d = Decoder::new(&bytes);
    let mut rows = Vec::new();
    SideRows::decode_each(&mut d, &side_schema("l"), &|_| true, &mut |b| {
        rows.push(b);
        Ok(())
    })
    .unwrap();
    d.finish().unwrap();
    rows
}

/// The rows a checkpoint takes from memory are encoded off the task loop:
/// into a compressed spill file when the join spills (the store links it),
/// else into memory, with the same rows either way; a later checkpoint
/// references the chunk once the first completed.
#[test]
fn fresh_rows_go_to_a_spill_file_when_the_join_spills() {
    let dir = tempfile::tempdir().unwrap();
    let backend = StateBackend::spilling(1 << 30, &dir.path().join("spill")).unwrap();
    let target = backend.share("join", 0).unwrap().target();
    let keys: Vec<Arc<dyn PhysicalExpr>> = vec![Arc::new(Column::new("lk", 0))];
    let batches = left_batches(6, 2, &mut SmallRng::seed_from_u64(14));
    let mut side = SideRows::default();
    for b in &batches {
        side.push(b.clone());
    }
    let (mut first, mut e) = (ChunkWriter::default(), Encoder::default());
    let fresh = side.snapshot(&keys, 1, &mut first, &mut e).expect("rows in memory");
    let mut plain = ChunkWriter::default();
    fresh.clone().write(None, &mut plain).unwrap();
    fresh.write(Some(&target), &mut first).unwrap();
    let [(id, ChunkBytes::File(file))] = &first.new[..] else { panic!("one chunk, a file: {:?}", first.refs) };
    let [(plain_id, ChunkBytes::Memory(bytes))] = &plain.new[..] else { panic!("one chunk in memory") };
    assert_eq!(id, plain_id);
    assert!(file.bytes() < bytes.len(), "compressed: {} bytes, {} plain", file.bytes(), bytes.len());
    let want = sorted_lines(&batches);
    assert_eq!(sorted_lines(&chunk_rows(&first.new[0].1)), want);
    assert_eq!(sorted_lines(&chunk_rows(&plain.new[0].1)), want);
    side.checkpoint_complete(1);
    let mut second = ChunkWriter::default();
    assert!(side.snapshot(&keys, 2, &mut second, &mut Encoder::default()).is_none());
    assert_eq!((second.new.len(), &second.refs[..]), (0, &[*id][..]), "the stored chunk is referenced");
}

/// Two runs merged by copying their parts: the merged file is a chunk
/// whose rows are both runs' rows, and a probe's read of every key group
/// finds them too.
#[test]
fn merged_runs_hold_both_runs_rows() {
    let dir = tempfile::tempdir().unwrap();
    let backend = StateBackend::spilling(1 << 30, &dir.path().join("spill")).unwrap();
    let budget = backend.share("join", 0).unwrap();
    let keys: Vec<Arc<dyn PhysicalExpr>> = vec![Arc::new(Column::new("lk", 0))];
    let mut g = SmallRng::seed_from_u64(11);
    let mut side = SideRows::default();
    let mut all = Vec::new();
    for (i, n) in [3, 5].into_iter().enumerate() {
        for b in left_batches(n, 40 + 200 * i as i64, &mut g) {
            all.push(b.clone());
            side.push(b);
        }
        side.spill_front(n, &keys, (0, 10), &budget, &mut Vec::new()).unwrap();
    }
    // Each run's file, as a checkpoint copies it, holds its rows.
    let mut copies = ChunkWriter::default();
    assert!(side.snapshot(&keys, 1, &mut copies, &mut Encoder::default()).is_none(), "every row is in a run");
    assert_eq!(copies.new.len(), 2);
    assert!(copies.new.iter().all(|(_, c)| matches!(c, ChunkBytes::File(_))), "runs go as their files");
    assert_eq!(sorted_lines(&chunk_rows(&copies.new[0].1)), sorted_lines(&all[..3]));
    assert_eq!(sorted_lines(&chunk_rows(&copies.new[1].1)), sorted_lines(&all[3..]));
    let [a, b] = side.runs() else { panic!("two runs") };
    let mut merged = a.merge(b, &budget).unwrap();
    assert_eq!(merged.disk_bytes() + 8, a.disk_bytes() + b.disk_bytes(), "one count instead of two");
    let want = sorted_lines(&all);
    assert!(want.len() > 300);
    assert_eq!(
        sorted_lines(&read(&merged, &[true; KEY_GROUPS])),
        sorted_lines(&keyed(&all)),
        "probes read all but NULL keys"
    );
    let mut copies = ChunkWriter::default();
    merged.list(1, &mut copies);
    assert_eq!(sorted_lines(&chunk_rows(&copies.new[0].1)), want);
    let one_group: Vec<RecordBatch> = read(&merged, &std::array::from_fn::<_, KEY_GROUPS, _>(|g| g == 5));
    let group_of = |b: &RecordBatch| key_groups(&[Arc::clone(b.column(0))], b.num_rows(), &mut Vec::new()).unwrap();
    assert!(one_group.iter().all(|b| group_of(b).iter().all(|g| *g == 5)));
    assert!(merged.overlaps(0, 10, KeyRange::Within(230, 230)), "the key range is both runs'");
}

/// Runs no probe read are not merged (rewriting them buys nothing) until
/// there are too many to keep open; runs a probe read are merged in tiers,
/// each over twice the size of the next newer one, so that many small
/// spills rewrite a row about log2(spills) times (merging down to a fixed
/// number of runs rewrote the older runs at every spill: 31 times the rows
/// at 600 spills), and no row is lost.
#[test]
fn runs_merge_in_tiers_once_probed() {
    let dir = tempfile::tempdir().unwrap();
    let backend = StateBackend::spilling(1 << 30, &dir.path().join("spill")).unwrap();
    let budget = backend.share("join", 0).unwrap();
    let keys: Vec<Arc<dyn PhysicalExpr>> = vec![Arc::new(Column::new("lk", 0))];
    let mut g = SmallRng::seed_from_u64(12);
    let mut side = SideRows::default();
    let (mut spilled, mut spilled_bytes) = (Vec::new(), 0);
    let mut spill = |side: &mut SideRows| {
        for b in left_batches(1, 20, &mut g) {
            spilled.push(b.clone());
            side.push(b);
        }
        spilled_bytes += side.spill_front(1, &keys, (0, 10), &budget, &mut Vec::new()).unwrap();
    };
    for _ in 0..40 {
        spill(&mut side);
        side.merge_runs(&budget).unwrap();
    }
    assert_eq!(side.runs().len(), 32, "runs no probe read stay as they are, up to 32");
    let mut merged = 0;
    for _ in 0..600 {
        spill(&mut side);
        side.probed();
        merged += side.merge_runs(&budget).unwrap();
        let sizes: Vec<usize> = side.runs().iter().map(Run::disk_bytes).collect();
        assert!(sizes.windows(2).all(|w| w[0] > 2 * w[1]), "tiers: {sizes:?}");
    }
    assert!(side.runs().len() <= 12, "about log2 of the spills: {}", side.runs().len());
    assert!(merged < 16 * spilled_bytes, "merges wrote {merged} bytes for {spilled_bytes} spilled");
    let rows: usize = side
        .runs()
        .iter()
        .map(|r| read(r, &[true; KEY_GROUPS]))
        .map(|b| b.iter().map(RecordBatch::num_rows).sum::<usize>())
        .sum();
    let want: usize = keyed(&spilled).iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, want, "every row spilled with a key is in a run");
}

/// A run on one integer key is sorted by key into blocks of about 4 MB: a
/// probe whose keys are close together reads the parts of the blocks they
/// meet only, in few reads (adjacent parts at once), and finds every row
/// of its keys; merged runs keep their blocks.
#[test]
fn a_probe_reads_the_blocks_its_keys_meet() {
    let dir = tempfile::tempdir().unwrap();
    let backend = StateBackend::spilling(1 << 30, &dir.path().join("spill")).unwrap();
    let budget = backend.share("join", 0).unwrap();
    let keys: Vec<Arc<dyn PhysicalExpr>> = vec![Arc::new(Column::new("lk", 0))];
    let mut g = SmallRng::seed_from_u64(13);
    let batches: Vec<RecordBatch> = (0..2)
        .map(|_| {
            let n = 1_000_000;
            let k = Int64Array::from_iter(
                (0..n).map(|_| (g.random_range(0..100) != 0).then(|| g.random_range(0..1_000_000))),
            );
            let v = Int64Array::from_iter_values((0..n).map(|_| g.random_range(0..100)));
            let ts = TimestampMillisecondArray::from_iter_values((0..n).map(|_| 0));
            RecordBatch::try_new(side_schema("l"), vec![Arc::new(k), Arc::new(v), Arc::new(ts)]).unwrap()
        })
        .collect();
    let mut side = SideRows::default();
    for b in &batches {
        side.push(b.clone());
        side.spill_front(1, &keys, (0, 10), &budget, &mut Vec::new()).unwrap();
    }
    let [a, b] = side.runs() else { panic!("two runs") };
    let mut merged = a.merge(b, &budget).unwrap();
    let every = [true; KEY_GROUPS];
    let (lo, hi) = (500_000, 500_500);
    // The rows' keys and values, sorted (printing 2M rows is slow).
    let pairs = |batches: &[RecordBatch]| -> Vec<(Option<i64>, i64)> {
        let mut pairs: Vec<_> = batches
            .iter()
            .flat_map(|b| {
                let (k, v) = (b.column(0).as_primitive::<Int64Type>(), b.column(1).as_primitive::<Int64Type>());
                (0..b.num_rows()).map(|i| (k.is_valid(i).then(|| k.value(i)), v.value(i))).collect::<Vec<_>>()
            })
            .collect();
        pairs.sort_unstable();
        pairs
    };
    let near = |batches: &[RecordBatch]| -> Vec<(Option<i64>, i64)> {
        pairs(batches).into_iter().filter(|(k, _)| k.is_some_and(|k| (lo..=hi).contains(&k))).collect()
    };
    let want = near(&batches);
    assert!(want.len() > 100, "too few rows to be a test: {}", want.len());
    for (run, rows) in [(a, &batches[..1]), (&merged, &batches[..])] {
        let all = read(run, &every);
        let (parts, reads) = read_keys(run, &every, KeyRange::Within(lo, hi));
        assert_eq!(near(&parts), near(rows), "every row of the probe's keys is read");
        let (read_rows, all_rows) = (
            parts.iter().map(RecordBatch::num_rows).sum::<usize>(),
            all.iter().map(RecordBatch::num_rows).sum::<usize>(),
        );
        assert!(read_rows * 4 < all_rows, "a probe read {read_rows} of {all_rows} rows");
        assert!(reads * 8 < parts.len(), "{reads} reads for {} parts", parts.len());
    }
    assert_eq!(near(&read_keys(&merged, &every, KeyRange::Within(lo, hi)).0), want);
    assert!(read_keys(&merged, &every, KeyRange::Empty).0.is_empty(), "NULL keys meet nothing");
    assert_eq!(pairs(&read(&merged, &every)), pairs(&keyed(&batches)));
    let mut copies = ChunkWriter::default();
    merged.list(1, &mut copies);
    assert_eq!(pairs(&chunk_rows(&copies.new[0].1)), pairs(&batches), "NULL keys are kept");
}
