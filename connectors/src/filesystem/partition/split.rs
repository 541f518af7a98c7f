//! A batch of a partitioned table's rows cut into one batch per partition
//! directory, with whole-batch kernels: the partition columns as text
//! (`cast`), runs of equal values (`partition`), and, when a partition's
//! rows are not together, a stable sort (`lexsort_to_indices` and `take`)
//! that brings them together. Rows keep their order within a partition.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, Scalar, StringArray, UInt32Array};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{SortColumn, cast, lexsort_to_indices, nullif, partition, take, take_record_batch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;

use super::layout::PartitionLayout;

/// Runs of one batch beyond which the rows are sorted at once rather than
/// the runs' directories compared (a batch of interleaved partitions).
const MAX_RUNS_UNSORTED: usize = 64;

/// The rows of one partition in a batch: the columns the files hold.
#[derive(Debug)]
pub(crate) struct Piece {
    /// The partition's directory, relative to the table's path.
    pub(crate) dir: String,
    pub(crate) rows: RecordBatch,
}

/// Cuts `batch` (the table's columns) into its partitions' rows, each
/// without the partition columns. A partition's rows come in one piece
/// unless they are not together in `batch` and the batch has few runs (a
/// partition then gets one piece per run, in order).
pub(crate) fn split(layout: &PartitionLayout, batch: &RecordBatch) -> Result<Vec<Piece>, ArrowError> {
    let rows = batch.project(layout.data_indices())?;
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    // '' is NULL here: both go to the default partition, so one run.
    let empty = Scalar::new(StringArray::from(vec![""]));
    let texts: Vec<ArrayRef> = layout
        .keys()
        .iter()
        .map(|k| {
            let text = cast(batch.column(k.index), &DataType::Utf8)?;
            nullif(&text, &eq(&text, &empty)?)
        })
        .collect::<Result<_, _>>()?;
    let runs = partition(&texts)?.ranges();
    if runs.len() <= MAX_RUNS_UNSORTED {
        let dirs: Vec<String> = runs.iter().map(|r| layout.dir_of(&texts, r.start)).collect();
        let distinct: HashSet<&str> = dirs.iter().map(String::as_str).collect();
        // Usually each partition's rows are together already (rows in time
        // order, partitioned by time): no sort.
        if distinct.len() == runs.len() {
            return Ok(runs
                .into_iter()
                .zip(dirs)
                .map(|(r, dir)| Piece {
                    dir,
                    rows: rows.slice(r.start, r.end - r.start),
                })
                .collect());
        }
    }
    // The row number last makes the sort stable.
    let n = u32::try_from(batch.num_rows())
        .map_err(|_| ArrowError::ComputeError("a batch of more than 2^32 rows".into()))?;
    let mut columns: Vec<SortColumn> = texts
        .iter()
        .map(|t| SortColumn {
            values: Arc::clone(t),
            options: None,
        })
        .collect();
    columns.push(SortColumn {
        values: Arc::new(UInt32Array::from_iter_values(0..n)),
        options: None,
    });
    let order = lexsort_to_indices(&columns, None)?;
    let sorted: Vec<ArrayRef> = texts.iter().map(|t| take(t, &order, None)).collect::<Result<_, _>>()?;
    let rows = take_record_batch(&rows, &order)?;
    Ok(partition(&sorted)?
        .ranges()
        .into_iter()
        .map(|r| Piece {
            dir: layout.dir_of(&sorted, r.start),
            rows: rows.slice(r.start, r.end - r.start),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::{Field, Int64Type, Schema};

    use super::super::layout::DEFAULT_PARTITION_NAME;
    use super::*;

    fn batch(ks: Vec<Option<&str>>, vs: Vec<i64>) -> (PartitionLayout, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let layout = PartitionLayout::new(&schema, &["k".into()], DEFAULT_PARTITION_NAME.into()).unwrap();
        let b = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(ks)), Arc::new(Int64Array::from(vs))],
        )
        .unwrap();
        (layout, b)
    }

    fn summary(pieces: &[Piece]) -> Vec<(String, Vec<i64>)> {
        pieces
            .iter()
            .map(|p| {
                assert_eq!(p.rows.num_columns(), 1, "the partition column is not in the files");
                (
                    p.dir.clone(),
                    p.rows.column(0).as_primitive::<Int64Type>().values().to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn grouped_rows_are_sliced_in_order() {
        let (l, b) = batch(
            vec![Some("a"), Some("a"), Some("b"), None, Some("")],
            vec![1, 2, 3, 4, 5],
        );
        let pieces = split(&l, &b).unwrap();
        assert_eq!(
            summary(&pieces),
            vec![
                ("k=a".into(), vec![1, 2]),
                ("k=b".into(), vec![3]),
                // NULL and '' are the same partition.
                ("k=__DEFAULT_PARTITION__".into(), vec![4, 5]),
            ]
        );
    }

    #[test]
    fn interleaved_rows_are_sorted_stably() {
        let (l, b) = batch(
            vec![Some("b"), Some("a"), Some("b"), Some("a"), Some("b")],
            vec![1, 2, 3, 4, 5],
        );
        assert_eq!(
            summary(&split(&l, &b).unwrap()),
            vec![("k=a".into(), vec![2, 4]), ("k=b".into(), vec![1, 3, 5])]
        );
        let ks: Vec<Option<&str>> = (0..1000).map(|i| Some(if i % 3 == 0 { "x" } else { "y" })).collect();
        let (l, b) = batch(ks, (0..1000).collect());
        let s = summary(&split(&l, &b).unwrap());
        assert_eq!(s.len(), 2);
        assert!(s[0].1.windows(2).all(|w| w[0] < w[1]) && s[0].1.len() == 334);
        assert!(s[1].1.windows(2).all(|w| w[0] < w[1]) && s[1].1.len() == 666);
    }

    #[test]
    fn empty_batches_have_no_pieces() {
        let (l, b) = batch(vec![], vec![]);
        assert!(split(&l, &b).unwrap().is_empty());
    }
}
