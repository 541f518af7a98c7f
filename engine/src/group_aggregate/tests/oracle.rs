//! The group aggregation against DataFusion's batch aggregation of the
//! same rows: over a changelog that retracts, restored from incremental
//! checkpoints at another parallelism, and read back by
//! [`decode_key_groups`]; and which chunks a checkpoint writes.

use super::*;
use crate::checkpoint::chunk::ChunkBytes;
use crate::checkpoint::codec::Decoder;
use crate::runtime::exchange::KEY_GROUPS;
use crate::spill::runs::live_rows_of_chunk;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::datasource::MemTable;
use datafusion::functions_aggregate::average::avg_udaf;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::min_max::min_udaf;
use datafusion::physical_expr::expressions::cast;
use datafusion::prelude::SessionContext;
use std::collections::{BTreeSet, HashMap, HashSet};

/// `k`'s result row, as text: (count, sum, avg, min, max) of `v`.
pub(super) type Table = BTreeMap<i64, Vec<String>>;

const SQL: &str = "SELECT k, count(v), sum(v), avg(v), min(v), max(v) FROM t GROUP BY k";

fn input_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true), Field::new("v", DataType::Int64, true)]))
}

/// [`SQL`] as a group aggregation, over appends or a changelog.
pub(super) fn plan(retracting: bool) -> Arc<GroupAggregatePlan> {
    let input = input_schema();
    let k: Arc<dyn datafusion::physical_plan::PhysicalExpr> = Arc::new(Column::new("k", 0));
    let v: Arc<dyn datafusion::physical_plan::PhysicalExpr> = Arc::new(Column::new("v", 1));
    // DataFusion's AVG takes a DOUBLE: its planner casts an integer to it.
    let double = cast(Arc::clone(&v), &input, DataType::Float64).unwrap();
    let call = |f, arg: &Arc<dyn datafusion::physical_plan::PhysicalExpr>, alias: &str| AggregateCall {
        function: Arc::new(
            AggregateExprBuilder::new(f, vec![Arc::clone(arg)])
                .schema(Arc::clone(&input))
                .alias(alias)
                .build()
                .unwrap(),
        ),
        filter: None,
    };
    let aggregates = vec![
        call(count_udaf(), &v, "c"),
        call(sum_udaf(), &v, "s"),
        call(avg_udaf(), &double, "a"),
        call(min_udaf(), &v, "mi"),
        call(max_udaf(), &v, "ma"),
    ];
    let mut fields = vec![Field::new("k", DataType::Int64, true)];
    fields.extend(aggregates.iter().map(|c| c.function.field().as_ref().clone()));
    fields.push(changelog::op_field());
    let mut output = vec![OutputColumn::Key(0)];
    output.extend((0..aggregates.len()).map(OutputColumn::Aggregate));
    Arc::new(GroupAggregatePlan {
        grouping: Grouping::new(vec![k], vec![Field::new("k", DataType::Int64, true)], aggregates),
        output,
        output_schema: Arc::new(Schema::new(fields)),
        retracting,
        ttl: None,
    })
}

pub(super) fn subtask(plan: &Arc<GroupAggregatePlan>) -> GroupAggregate {
    let metrics = crate::metrics::JobMetrics::default().register("g", 0);
    GroupAggregate::new(Arc::clone(plan), "g".into(), metrics, None).unwrap()
}

/// One input change: key, value, kind.
pub(super) type Change = (i64, i64, RowKind);

pub(super) fn changes(rows: &[Change]) -> StreamBatch {
    let plain = batch(&rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>()).data;
    StreamBatch::new(changelog::with_kinds(&plain, rows.iter().map(|r| r.2 as i8).collect()).unwrap())
}

/// A changelog of `batches` batches over `keys` keys whose retractions
/// each withdraw a row sent before (`-D`, or `-U` followed by its `+U`),
/// as an upstream aggregate's are. Deterministic (a linear congruential
/// generator).
pub(super) fn changelog_input(batches: usize, keys: i64, seed: u64) -> Vec<Vec<Change>> {
    let mut state = seed;
    let mut next = move |n: u64| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let mut held: Vec<(i64, i64)> = Vec::new();
    (0..batches)
        .map(|_| {
            let mut out = Vec::new();
            for _ in 0..200 {
                match next(4) {
                    0 | 1 if !held.is_empty() => {
                        let (k, v) = held.swap_remove(next(held.len() as u64) as usize);
                        if next(2) == 0 {
                            out.push((k, v, RowKind::Delete));
                        } else {
                            let w = next(1000) as i64;
                            out.extend([(k, v, RowKind::UpdateBefore), (k, w, RowKind::UpdateAfter)]);
                            held.push((k, w));
                        }
                    }
                    _ => {
                        let (k, v) = (next(keys as u64) as i64, next(1000) as i64);
                        out.push((k, v, RowKind::Insert));
                        held.push((k, v));
                    }
                }
            }
            out
        })
        .collect()
}

/// The rows a changelog leaves: each retraction takes back one row equal
/// to it.
pub(super) fn net(changes: &[Change]) -> Vec<(i64, i64)> {
    let mut held: HashMap<(i64, i64), usize> = HashMap::new();
    for (k, v, kind) in changes {
        let n = held.entry((*k, *v)).or_default();
        if kind.retracts() {
            *n -= 1;
        } else {
            *n += 1;
        }
    }
    held.into_iter().flat_map(|(row, n)| std::iter::repeat_n(row, n)).collect()
}

/// [`SQL`] run by DataFusion over `rows`.
pub(super) async fn batch_query(rows: &[(i64, i64)]) -> Table {
    let data = batch(rows).data;
    let ctx = SessionContext::new();
    ctx.register_table("t", Arc::new(MemTable::try_new(input_schema(), vec![vec![data]]).unwrap())).unwrap();
    let mut table = Table::new();
    for b in ctx.sql(SQL).await.unwrap().collect().await.unwrap() {
        table.extend(text_rows(&b.columns()[0], &b.columns()[1..], b.num_rows()));
    }
    table
}

pub(super) fn text_rows<'a>(
    keys: &'a ArrayRef,
    values: &'a [ArrayRef],
    n: usize,
) -> impl Iterator<Item = (i64, Vec<String>)> + 'a {
    let keys = keys.as_primitive::<Int64Type>();
    (0..n).map(move |r| (keys.value(r), values.iter().map(|c| array_value_to_string(c, r).unwrap()).collect()))
}

/// Applies emitted changes to `table`, checking that each `-U`/`-D`
/// withdraws the key's current row.
pub(super) fn apply_rows(out: Collector, table: &mut Table) {
    for e in out.out {
        let Emitted::Data(b) = e else { continue };
        let (rows, kinds) = changelog::split(&b.data);
        let kinds = kinds.unwrap();
        let columns = rows.columns();
        for (r, (k, row)) in text_rows(&columns[0], &columns[1..], rows.num_rows()).enumerate() {
            match kinds.get(r) {
                RowKind::Insert | RowKind::UpdateAfter => assert!(table.insert(k, row).is_none(), "{k} inserted twice"),
                RowKind::UpdateBefore | RowKind::Delete => assert_eq!(table.remove(&k), Some(row), "{k} withdrawn"),
            }
        }
    }
}

/// Feeds `rows` to the subtasks of a job at `subtasks.len()`, each row to
/// the subtask of its key group as the exchange routes it.
pub(super) fn route(subtasks: &mut [GroupAggregate], rows: &[Change], table: &mut Table) {
    let keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0)))];
    let groups = key_groups(&keys, rows.len(), &mut Vec::new()).unwrap();
    let n = subtasks.len();
    for (i, op) in subtasks.iter_mut().enumerate() {
        let mine: Vec<Change> =
            rows.iter().zip(&groups).filter(|(_, g)| subtask_of_key_group(**g, n) == i).map(|(r, _)| *r).collect();
        if !mine.is_empty() {
            let mut out = Collector::default();
            op.on_batch(changes(&mine), &mut out).unwrap();
            apply_rows(out, table);
        }
    }
}

/// Checkpoint `id` of every subtask: their states; the chunks they write
/// go to `store`.
fn checkpoint(subtasks: &mut [GroupAggregate], id: u64, store: &mut ChunkMap) -> Vec<Vec<u8>> {
    subtasks
        .iter_mut()
        .map(|op| {
            let mut writer = ChunkWriter::default();
            let state = op.snapshot(id, &mut writer).unwrap().unwrap();
            store.extend(writer.new).unwrap();
            op.checkpoint_complete(id);
            state
        })
        .collect()
}

/// COUNT, SUM, AVG, MIN and MAX over a changelog that withdraws earlier
/// rows (and updates them) end where DataFusion's batch aggregation of the
/// rows left ends.
#[tokio::test]
async fn retracting_input_ends_as_a_batch_query_of_the_rows_left() {
    let input = changelog_input(30, 40, 7);
    let mut op = subtask(&plan(true));
    let mut table = Table::new();
    for rows in &input {
        let mut out = Collector::default();
        op.on_batch(changes(rows), &mut out).unwrap();
        apply_rows(out, &mut table);
    }
    let all: Vec<Change> = input.concat();
    assert!(all.iter().any(|c| c.2 == RowKind::Delete) && all.iter().any(|c| c.2 == RowKind::UpdateBefore));
    assert_eq!(table, batch_query(&net(&all)).await);
}

/// A job at parallelism 2 checkpoints twice (the second writing only what
/// changed), goes on, and is killed; restored from its last checkpoint's
/// chunks at parallelism 3 and given the changes after it again, its
/// output ends where DataFusion's batch aggregation of all rows does.
#[tokio::test]
async fn restored_at_another_parallelism_after_a_kill_ends_as_a_batch_query() {
    let plan = plan(true);
    let input = changelog_input(30, 300, 11);
    let mut store = ChunkMap::default();
    let mut before: Vec<GroupAggregate> = (0..2).map(|_| subtask(&plan)).collect();
    let mut table = Table::new();
    for rows in &input[..10] {
        route(&mut before, rows, &mut table);
    }
    checkpoint(&mut before, 1, &mut store);
    for rows in &input[10..15] {
        route(&mut before, rows, &mut table);
    }
    let states = checkpoint(&mut before, 2, &mut store);
    // What the sink holds at checkpoint 2; the rest is produced again.
    let committed = table.clone();
    for rows in &input[15..20] {
        route(&mut before, rows, &mut table);
    }
    drop(before);
    let chunks = store;
    let states: Vec<&[u8]> = states.iter().map(Vec::as_slice).collect();
    let mut after: Vec<GroupAggregate> = (0..3)
        .map(|i| {
            let mut op = subtask(&plan);
            op.restore(&states, &chunks, &|g| subtask_of_key_group(g, 3) == i).unwrap();
            op
        })
        .collect();
    let mut table = committed;
    for rows in &input[15..] {
        route(&mut after, rows, &mut table);
    }
    assert_eq!(table, batch_query(&net(&input.concat())).await);
}

/// The rows of the chunks `writer` wrote.
pub(super) fn rows_written(writer: &ChunkWriter) -> usize {
    let rows = |b: &ChunkBytes| live_rows_of_chunk(&b.read().unwrap(), &[], "t").unwrap().num_rows();
    writer.new.iter().map(|(_, b)| rows(b)).sum()
}

/// After a checkpoint of 10 000 keys (every key group), a batch of three
/// keys makes the next checkpoint write only those three groups, a chunk
/// per changed key group, and reference the first checkpoint's chunks
/// (their three old rows listed as dead); a checkpoint that did not
/// complete has its rows written again by the next; and the state read
/// back by [`decode_key_groups`] is DataFusion's batch aggregation of the
/// rows.
#[tokio::test]
async fn a_checkpoint_writes_only_the_groups_that_changed() {
    let plan = plan(false);
    let mut op = subtask(&plan);
    let rows: Vec<Change> = (0..10_000).map(|k| (k, k % 97, RowKind::Insert)).collect();
    op.on_batch(changes(&rows), &mut Collector::default()).unwrap();
    let mut first = ChunkWriter::default();
    op.snapshot(1, &mut first).unwrap().unwrap();
    assert_eq!(first.new.len(), KEY_GROUPS, "every key group is new");
    assert_eq!(rows_written(&first), 10_000);
    op.checkpoint_complete(1);

    let more: Vec<Change> = vec![(5, 1, RowKind::Insert), (6, 2, RowKind::Insert), (7, 3, RowKind::Insert)];
    op.on_batch(changes(&more), &mut Collector::default()).unwrap();
    let keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![5, 6, 7]))];
    let changed: HashSet<usize> = key_groups(&keys, 3, &mut Vec::new()).unwrap().into_iter().collect();
    let mut second = ChunkWriter::default();
    let state = op.snapshot(2, &mut second).unwrap().unwrap();
    assert_eq!(second.new.len(), changed.len(), "a chunk per changed key group");
    assert_eq!(rows_written(&second), 3, "only the changed groups are written");
    let ids = |ids: &mut dyn Iterator<Item = u128>| ids.collect::<BTreeSet<_>>();
    let firsts = ids(&mut first.new.iter().chain(&second.new).map(|(id, _)| *id));
    assert_eq!(ids(&mut second.refs.iter().copied()), firsts, "the rest is referenced");
    let dead: usize = read_key_groups("t", &state)
        .unwrap()
        .into_iter()
        .map(|(_, s)| match s {
            KeyGroupState::Chunk { live, .. } if !live.is_empty() => {
                live.iter().map(|b| b.count_zeros() as usize).sum::<usize>()
            }
            _ => 0,
        })
        .sum();
    assert!((3..3 + 8 * changed.len()).contains(&dead), "the old rows are dead ({dead} dead bits)");

    // Checkpoint 2 never completes: checkpoint 3 writes its rows again.
    let mut third = ChunkWriter::default();
    let state = op.snapshot(3, &mut third).unwrap().unwrap();
    assert_eq!(rows_written(&third), 3);
    assert!(third.new.iter().all(|(id, _)| !second.new.iter().any(|(old, _)| old == id)), "new chunks");
    op.checkpoint_complete(3);
    let mut fourth = ChunkWriter::default();
    op.snapshot(4, &mut fourth).unwrap().unwrap();
    assert!(fourth.new.is_empty(), "nothing changed since checkpoint 3");

    let chunks = ChunkMap::of(first.new.into_iter().chain(third.new)).unwrap();
    let mut decoded = Table::new();
    let mut key_groups_seen = Vec::new();
    for part in decode_key_groups(Arc::clone(&plan), &[&state], &chunks).unwrap() {
        key_groups_seen.push(part.key_group);
        decoded.extend(text_rows(&part.keys[0], &part.values, part.rows));
    }
    assert_eq!(key_groups_seen, (0..KEY_GROUPS).collect::<Vec<_>>());
    assert_eq!(decoded, batch_query(&net(&[rows, more].concat())).await);
}

/// A few hot groups among many cold ones, over 300 checkpoints: each
/// checkpoint writes about the hot groups (the tiers' merges included,
/// under four times the changed rows in all), a key group keeps a few
/// chunks, and the last state restores to DataFusion's batch result,
/// groups retracted to nothing included.
#[tokio::test]
async fn hot_groups_are_written_in_tiers() {
    let plan = plan(true);
    let mut op = subtask(&plan);
    let cold: Vec<Change> = (0..5_000).map(|k| (k, k % 13, RowKind::Insert)).collect();
    op.on_batch(changes(&cold), &mut Collector::default()).unwrap();
    let mut input = vec![cold];
    let mut store = ChunkMap::default();
    let (mut state, mut changed_rows, mut written) = (Vec::new(), 0, 0);
    let mut taken_back = HashSet::new();
    for c in 1..=300u64 {
        // 40 hot keys a checkpoint; some take back their first row, which
        // leaves a key that got no other row with nothing.
        let batch: Vec<Change> = (0..40)
            .map(|i| {
                let k = ((c * 7 + i * 131) % 400) as i64;
                match (c + i) % 9 == 0 && taken_back.insert(k) {
                    true => (k, k % 13, RowKind::Delete),
                    false => (k, (c % 5) as i64, RowKind::Insert),
                }
            })
            .collect();
        op.on_batch(changes(&batch), &mut Collector::default()).unwrap();
        changed_rows += batch.iter().map(|r| r.0).collect::<HashSet<_>>().len();
        input.push(batch);
        let mut writer = ChunkWriter::default();
        state = op.snapshot(c, &mut writer).unwrap().unwrap();
        if c > 1 {
            written += rows_written(&writer);
        }
        store.extend(writer.new).unwrap();
        op.checkpoint_complete(c);
        let chunks = read_key_groups("t", &state).unwrap().len();
        assert!(chunks <= KEY_GROUPS * 12, "{chunks} chunks listed at checkpoint {c}");
    }
    assert!(written < 4 * changed_rows, "{written} rows written for {changed_rows} changed");
    let mut decoded = Table::new();
    for part in decode_key_groups(Arc::clone(&plan), &[&state], &store).unwrap() {
        decoded.extend(text_rows(&part.keys[0], &part.values, part.rows));
    }
    assert_eq!(decoded, batch_query(&net(&input.concat())).await);
}

/// State of the layout before chunks (the number of key groups, then each
/// key group and its batch inline) still restores: the groups of a
/// checkpoint rewritten in that layout, restored at parallelism 2, go on to
/// DataFusion's batch result.
#[tokio::test]
async fn state_of_the_layout_before_chunks_restores() {
    let plan = plan(true);
    let input = changelog_input(10, 200, 3);
    let mut op = vec![subtask(&plan)];
    let mut table = Table::new();
    for rows in &input[..5] {
        route(&mut op, rows, &mut table);
    }
    let mut writer = ChunkWriter::default();
    let state = op[0].snapshot(1, &mut writer).unwrap().unwrap();
    let chunks = ChunkMap::of(writer.new).unwrap();
    // The layout before bitmaps (a chunk per key group) and the one before
    // chunks (each key group's batch inline).
    let mut d = Decoder::new(&state);
    assert_eq!(d.u64().unwrap(), u64::MAX - 1, "the layout's marker");
    let (mut chunked, mut inline) = (Encoder::default(), Encoder::default());
    chunked.u64(u64::MAX);
    let n = d.u64().unwrap();
    chunked.u64(n);
    inline.u64(n);
    for _ in 0..n {
        let kg = d.u64().unwrap();
        let id = d.bytes().unwrap();
        assert!(d.bytes().unwrap().is_empty(), "a first checkpoint's rows are all live");
        chunked.u64(kg);
        chunked.bytes(id);
        inline.u64(kg);
        let id = u128::from_le_bytes(id.try_into().unwrap());
        inline.batch(&Decoder::new(&chunks.get(id).unwrap()).batch().unwrap()).unwrap();
    }
    for (old, store) in [(chunked, &chunks), (inline, &ChunkMap::default())] {
        let mut after: Vec<GroupAggregate> = (0..2)
            .map(|i| {
                let mut op = subtask(&plan);
                op.restore(&[&old.bytes], store, &|g| subtask_of_key_group(g, 2) == i).unwrap();
                op
            })
            .collect();
        let mut table = table.clone();
        for rows in &input[5..] {
            route(&mut after, rows, &mut table);
        }
        assert_eq!(table, batch_query(&net(&input.concat())).await);
    }
}
