//! The last change of each key among the changelog rows a sink holds: what
//! one transaction writes. Postgres refuses an `INSERT … ON CONFLICT DO
//! UPDATE` that touches a row twice ("command cannot affect row a second
//! time"), and the changes in between are never visible anyway, so a key's
//! earlier changes in the same transaction are dropped.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int8Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::row::{RowConverter, SortField};
use weir_engine::changelog::{self, RowKind};

/// The schema of held rows: the table's columns and the changelog column.
pub(super) fn with_op(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(changelog::op_field());
    Arc::new(Schema::new(fields))
}

/// A batch the sink received as a batch of `held` (its schema from
/// [`with_op`]): an append batch's rows are inserts.
pub(super) fn as_changes(batch: &RecordBatch, held: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let (visible, kinds) = changelog::split(batch);
    let kinds: ArrayRef = match kinds {
        Some(k) => Arc::new(k.array().clone()),
        None => Arc::new(Int8Array::from(vec![RowKind::Insert as i8; visible.num_rows()])),
    };
    let mut columns = visible.columns().to_vec();
    columns.push(kinds);
    RecordBatch::try_new(Arc::clone(held), columns)
}

/// One row per key of `key` (column indices) across `batches` (of schema
/// `held`): its last change, as `+I` when the key's row is to be written
/// and `-D` when it is to be deleted (`-U` last: a filter dropped the `+U`
/// that would have followed).
pub(super) fn last_per_key(
    held: &SchemaRef,
    batches: &[RecordBatch],
    key: &[usize],
) -> Result<RecordBatch, ArrowError> {
    let all = concat_batches(held, batches)?;
    let op = all.num_columns() - 1;
    let fields = key
        .iter()
        .map(|k| SortField::new(held.field(*k).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let keys: Vec<ArrayRef> = key.iter().map(|k| Arc::clone(all.column(*k))).collect();
    let rows = converter.convert_columns(&keys)?;
    let (_, kinds) = changelog::split(&all);
    let mut seen = HashSet::with_capacity(rows.num_rows());
    let mut keep = Vec::new();
    let mut ops = Vec::new();
    for i in (0..rows.num_rows()).rev() {
        if seen.insert(rows.row(i)) {
            keep.push(i as u32);
            let retracts = kinds.as_ref().is_some_and(|k| k.get(i).retracts());
            ops.push(if retracts { RowKind::Delete } else { RowKind::Insert } as i8);
        }
    }
    keep.reverse();
    ops.reverse();
    let kept = take_record_batch(&all, &UInt32Array::from(keep))?;
    let mut columns = kept.columns().to_vec();
    columns[op] = Arc::new(Int8Array::from(ops));
    RecordBatch::try_new(Arc::clone(held), columns)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Int8Type, Int64Type};

    use super::*;

    fn held() -> SchemaRef {
        with_op(&Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, true),
        ]))
    }

    fn batch(rows: &[(i64, i64, RowKind)]) -> RecordBatch {
        RecordBatch::try_new(
            held(),
            vec![
                Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                Arc::new(Int8Array::from(rows.iter().map(|r| r.2 as i8).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    /// Applies changes one by one to `table`, as Postgres would: the
    /// oracle of what the collapsed rows must do at once.
    fn apply(table: &mut std::collections::BTreeMap<i64, i64>, b: &RecordBatch) {
        for i in 0..b.num_rows() {
            let k = b.column(0).as_primitive::<Int64Type>().value(i);
            match b.column(2).as_primitive::<Int8Type>().value(i) {
                1 | 3 => table.remove(&k),
                _ => table.insert(k, b.column(1).as_primitive::<Int64Type>().value(i)),
            };
        }
    }

    #[test]
    fn keeps_each_keys_last_change() {
        use RowKind::*;
        let batches = [
            batch(&[(1, 10, Insert), (2, 20, Insert), (3, 30, Insert)]),
            batch(&[
                (1, 10, UpdateBefore),
                (1, 11, UpdateAfter),
                (2, 20, Delete),
                (4, 40, Insert),
            ]),
            batch(&[(3, 30, UpdateBefore), (2, 21, Insert), (5, 50, Delete)]),
        ];
        let last = last_per_key(&held(), &batches, &[0]).unwrap();
        assert_eq!(last.num_rows(), 5, "one row per key");
        let kinds = last.column(2).as_primitive::<Int8Type>();
        assert!(kinds.values().iter().all(|k| *k == Insert as i8 || *k == Delete as i8));
        let before: std::collections::BTreeMap<i64, i64> = [(3, 33), (5, 55), (6, 66)].into();
        let mut expected = before.clone();
        batches.iter().for_each(|b| apply(&mut expected, b));
        let mut collapsed = before;
        apply(&mut collapsed, &last);
        assert_eq!(collapsed, expected);
    }
}
