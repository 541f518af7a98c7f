//! What the keyed operators' tests share: rows of `(k, v, ts)`, and the
//! run that checks an operator restored at another parallelism goes on as
//! the uninterrupted one.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::message::StreamBatch;
use crate::operator::{Collector, Operator};
use crate::runtime::exchange::{key_groups, subtask_of_key_group};

/// `k BIGINT, v BIGINT, ts TIMESTAMP(3)`.
pub(crate) fn kvt_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]))
}

/// `(k, v, ts)` rows as a batch of [`kvt_schema`].
pub(crate) fn kvt_batch(rows: &[(i64, i64, i64)]) -> StreamBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    StreamBatch::new(RecordBatch::try_new(kvt_schema(), columns).expect("rows of the schema"))
}

/// Rows of one step of a run, and the watermark after them.
pub(crate) type Part = (Vec<(i64, i64, i64)>, i64);

/// Feeds `parts` (rows, then the watermark after them) to one subtask
/// made by `make`; after the first `split` parts, checkpoints it and
/// restores the checkpoint into `subtasks` fresh ones (each keeping its key
/// groups), and feeds the remaining parts to both, routed among the
/// restored ones by the key columns `keys` picks, as an exchange would.
/// Returns what the uninterrupted subtask emitted, and what the restored
/// run did (the parts before the checkpoint being the same).
pub(crate) fn whole_and_restored<O: Operator>(
    make: impl Fn() -> O,
    parts: &[Part],
    split: usize,
    subtasks: usize,
    keys: impl Fn(&StreamBatch) -> Vec<ArrayRef>,
) -> (Vec<Collector>, Vec<Collector>) {
    let mut whole = make();
    let (mut expected, mut got) = (Vec::new(), Vec::new());
    let mut state = None;
    let mut restored: Vec<O> = Vec::new();
    let mut hashes = Vec::new();
    for (i, (rows, watermark)) in parts.iter().enumerate() {
        if i == split {
            assert!(whole.state_size().bytes > 0, "weir.memory sees the state");
            let mut written = ChunkWriter::default();
            state = whole.snapshot(1, &mut written).expect("a snapshot");
            let state = state.as_ref().expect("the operator keeps state");
            let chunks = ChunkMap::of(written.new).expect("spilled chunks read back");
            restored = (0..subtasks)
                .map(|s| {
                    let mut op = make();
                    op.restore(&[state], &chunks, &|g| subtask_of_key_group(g, subtasks) == s).expect("a restore");
                    op
                })
                .collect();
        }
        let mut out = Collector::default();
        whole.on_batch(kvt_batch(rows), &mut out).expect("rows");
        whole.on_watermark(*watermark, &mut out).expect("a watermark");
        if state.is_none() {
            got.push(Collector { out: out.out.iter().map(clone_emitted).collect() });
            expected.push(out);
            continue;
        }
        expected.push(out);
        let batch = kvt_batch(rows);
        let groups = key_groups(&keys(&batch), rows.len(), &mut hashes).expect("key groups");
        for (s, op) in restored.iter_mut().enumerate() {
            let mine: Vec<(i64, i64, i64)> = rows
                .iter()
                .zip(&groups)
                .filter(|(_, g)| subtask_of_key_group(**g, subtasks) == s)
                .map(|(r, _)| *r)
                .collect();
            let mut out = Collector::default();
            op.on_batch(kvt_batch(&mine), &mut out).expect("rows");
            op.on_watermark(*watermark, &mut out).expect("a watermark");
            got.push(out);
        }
    }
    (expected, got)
}

fn clone_emitted(e: &crate::operator::Emitted) -> crate::operator::Emitted {
    use crate::operator::Emitted;
    match e {
        Emitted::Data(b) => Emitted::Data(b.clone()),
        Emitted::Watermark(w) => Emitted::Watermark(*w),
        Emitted::Late(b) => Emitted::Late(b.clone()),
    }
}

/// The rows of `batches` as sorted lines of a pretty-printed table: a
/// multiset to compare with another operator's (or DataFusion's) output.
pub(crate) fn sorted_lines(batches: &[RecordBatch]) -> Vec<String> {
    let text = datafusion::arrow::util::pretty::pretty_format_batches(batches).expect("printable batches").to_string();
    let mut lines: Vec<String> = text.lines().filter(|l| l.starts_with('|')).skip(1).map(String::from).collect();
    lines.sort();
    lines
}

/// The data batches `out` collected, without its watermarks and late rows.
pub(crate) fn data_batches(out: Collector) -> Vec<RecordBatch> {
    out.out
        .into_iter()
        .filter_map(|e| match e {
            crate::operator::Emitted::Data(b) => Some(b.data),
            _ => None,
        })
        .collect()
}
