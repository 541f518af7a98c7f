//! Changelog streams: the rows of a query whose results change (a GROUP BY
//! without a window), each with the kind of change it is.
//!
//! As in Flink, every row of such a stream carries a `RowKind`: `+I` (a new
//! result), `-U` (the result before an update), `+U` (the result after it)
//! and `-D` (a result that no longer exists). Weir carries it in one extra
//! trailing `Int8` column named [`OP_COLUMN`], so that projections and
//! filters written for the visible columns work unchanged, and batches stay
//! plain Arrow. Sinks take the column off: upsert sinks keep the latest row
//! per key, `print` shows the kinds, sinks that can only append refuse such
//! a query when it is planned.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int8Array, RecordBatch};
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Int8Type, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::row::{RowConverter, SortField};

/// Name of the trailing column that holds each row's [`RowKind`].
pub const OP_COLUMN: &str = "_weir_op";

/// The kind of change a row is (Flink's `RowKind`, same byte values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum RowKind {
    Insert = 0,
    UpdateBefore = 1,
    UpdateAfter = 2,
    Delete = 3,
}

impl RowKind {
    /// Flink's short form, as its `print` connector writes it.
    pub fn short(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    /// Whether the row withdraws an earlier one (`-U`, `-D`).
    pub fn retracts(self) -> bool {
        matches!(self, RowKind::UpdateBefore | RowKind::Delete)
    }

    fn from_i8(v: i8) -> Self {
        match v {
            1 => RowKind::UpdateBefore,
            2 => RowKind::UpdateAfter,
            3 => RowKind::Delete,
            _ => RowKind::Insert,
        }
    }
}

/// The field of the [`OP_COLUMN`].
pub fn op_field() -> Field {
    Field::new(OP_COLUMN, DataType::Int8, false)
}

/// The kinds of a changelog batch's rows.
pub struct Kinds(Int8Array);

impl Kinds {
    pub fn get(&self, row: usize) -> RowKind {
        RowKind::from_i8(self.0.value(row))
    }

    /// The column itself, for kernels (e.g. a mask of retractions).
    pub fn array(&self) -> &Int8Array {
        &self.0
    }
}

/// Splits a batch into its visible columns and, when it is a changelog
/// batch (its last column is [`OP_COLUMN`]), the kinds of its rows.
pub fn split(batch: &RecordBatch) -> (RecordBatch, Option<Kinds>) {
    let n = batch.num_columns();
    let is_changelog = n > 0
        && batch.schema_ref().field(n - 1).name() == OP_COLUMN
        && batch.column(n - 1).data_type() == &DataType::Int8;
    if !is_changelog {
        return (batch.clone(), None);
    }
    let kinds = Kinds(batch.column(n - 1).as_primitive::<Int8Type>().clone());
    (batch.project(&(0..n - 1).collect::<Vec<_>>()).expect("indices are in range"), Some(kinds))
}

/// Appends the kinds to the visible columns of a batch.
pub fn with_kinds(batch: &RecordBatch, kinds: Vec<i8>) -> Result<RecordBatch, ArrowError> {
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(op_field());
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(Int8Array::from(kinds)));
    RecordBatch::try_new(Arc::new(datafusion::arrow::datatypes::Schema::new(fields)), columns)
}

/// The current rows of a table written as batches in order, each an append
/// batch or a changelog batch ([`split`]).
///
/// With `key`, the table is an upsert table: the latest row of each key
/// stays (a re-fired window replaces its row), `-U` and `-D` remove the
/// key (a `+U` usually follows, and takes the key's old place; a filter
/// after the aggregation may have dropped it). Without a key, rows are kept as a
/// multiset: `-U` and `-D` each withdraw one equal row. Rows stay in the
/// order their key (or value) first came.
pub fn materialize(schema: &SchemaRef, batches: &[RecordBatch], key: Option<&[usize]>) -> Result<RecordBatch, ArrowError> {
    let visible: Vec<(RecordBatch, Option<Kinds>)> = batches.iter().map(split).collect();
    if key.is_none() && visible.iter().all(|(_, k)| k.is_none()) {
        let plain: Vec<RecordBatch> = visible.into_iter().map(|(b, _)| b).collect();
        return datafusion::arrow::compute::concat_batches(schema, &plain);
    }
    let identity: Vec<usize> = match key {
        Some(k) => k.to_vec(),
        None => (0..schema.fields().len()).collect(),
    };
    let fields: Vec<SortField> = identity
        .iter()
        .map(|k| SortField::new(schema.field(*k).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    // Per key (or row value): where its current row is, and how many of it
    // there are (always 1 with a key).
    let mut slot: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut current: Vec<((usize, usize), usize)> = Vec::new();
    for (b, (batch, kinds)) in visible.iter().enumerate() {
        let columns: Vec<ArrayRef> = identity.iter().map(|k| Arc::clone(batch.column(*k))).collect();
        let rows = converter.convert_columns(&columns)?;
        for (r, row) in rows.iter().enumerate() {
            let kind = kinds.as_ref().map_or(RowKind::Insert, |k| k.get(r));
            let at = slot.get(row.as_ref()).copied();
            match (kind, at, key.is_some()) {
                (k, Some(i), true) if k.retracts() => current[i].1 = 0,
                (k, Some(i), false) if k.retracts() => current[i].1 = current[i].1.saturating_sub(1),
                (k, None, _) if k.retracts() => {}
                (_, Some(i), true) => current[i] = ((b, r), 1),
                (_, Some(i), false) => current[i].1 += 1,
                (_, None, _) => {
                    slot.insert(row.as_ref().to_vec(), current.len());
                    current.push(((b, r), 1));
                }
            }
        }
    }
    let refs: Vec<&RecordBatch> = visible.iter().map(|(b, _)| b).collect();
    let picks: Vec<(usize, usize)> = current
        .iter()
        .flat_map(|(at, n)| std::iter::repeat_n(*at, *n))
        .collect();
    if refs.is_empty() {
        return Ok(RecordBatch::new_empty(Arc::clone(schema)));
    }
    interleave_record_batch(&refs, &picks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::Schema;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]))
    }

    fn changes(rows: &[(i64, i64, RowKind)]) -> RecordBatch {
        let b = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap();
        with_kinds(&b, rows.iter().map(|r| r.2 as i8).collect()).unwrap()
    }

    fn pairs(b: &RecordBatch) -> Vec<(i64, i64)> {
        let k = b.column(0).as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let v = b.column(1).as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        (0..b.num_rows()).map(|i| (k.value(i), v.value(i))).collect()
    }

    #[test]
    fn upserts_keep_the_latest_row_per_key_and_deletes_remove_it() {
        use RowKind::*;
        let batches = [
            changes(&[(1, 10, Insert), (2, 20, Insert)]),
            changes(&[(1, 10, UpdateBefore), (1, 11, UpdateAfter), (3, 30, Insert)]),
            changes(&[(2, 20, Delete)]),
            // A HAVING dropped the +U: the key is gone.
            changes(&[(3, 30, UpdateBefore)]),
        ];
        let b = materialize(&schema(), &batches, Some(&[0])).unwrap();
        assert_eq!(pairs(&b), vec![(1, 11)]);
    }

    #[test]
    fn without_a_key_retractions_withdraw_one_equal_row() {
        use RowKind::*;
        let batches = [
            changes(&[(1, 10, Insert), (1, 10, Insert), (2, 20, Insert)]),
            changes(&[(1, 10, UpdateBefore), (1, 12, UpdateAfter), (2, 20, Delete), (9, 9, Delete)]),
        ];
        let b = materialize(&schema(), &batches, None).unwrap();
        assert_eq!(pairs(&b), vec![(1, 10), (1, 12)]);
    }

    #[test]
    fn append_batches_are_kept_whole() {
        let plain = changes(&[(1, 1, RowKind::Insert)]);
        let (visible, kinds) = split(&plain);
        assert!(kinds.is_some());
        let b = materialize(&schema(), &[visible.clone(), visible], None).unwrap();
        assert_eq!(pairs(&b), vec![(1, 1), (1, 1)]);
    }
}
