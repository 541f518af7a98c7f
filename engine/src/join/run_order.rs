//! The order a run writes its rows in: for a join on one integer key, by
//! key, cut into blocks of about [`BLOCK`] bytes (rows with a NULL key,
//! which meet nothing, last in a block of their own); otherwise in arrival
//! order, one block. Each batch's rows are sorted by key on their own and
//! the batches merged as the blocks are made, so that ordering a run of
//! millions of rows holds 4 bytes a row (its batches' sorted row numbers),
//! not a (key, batch, row) entry for every row at once: that took 24
//! bytes a row, 450 MB of a join's spill of Nexmark q4 at 100M events.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};

use crate::error::{EngineError, Result, ResultExt};
use crate::join::runs::KeyRange;

/// Bytes of rows a block of a run sorted by key holds, about: what a probe
/// whose keys are close together reads of the run.
pub(super) const BLOCK: usize = 4 << 20;

/// A row of a run's batches: (batch, row).
pub(super) type At = (u32, u32);

/// The rows of a run's batches, block by block ([`RunOrder::blocks`]).
pub(super) enum RunOrder {
    /// One integer key: each batch's key column (as Int64) and its rows
    /// with a key, by key; the rows with a NULL key.
    Keyed { keys: Vec<ArrayRef>, sorted: Vec<Vec<u32>>, nulls: Vec<At>, rows_per_block: usize },
    /// Another key: how many rows each batch has.
    Arrival(Vec<usize>),
}

impl RunOrder {
    /// The order of `batches`, whose key columns are `key_columns` and
    /// whose rows' keys are in `range`.
    pub fn new(batches: &[RecordBatch], key_columns: &[Vec<ArrayRef>], range: KeyRange) -> Result<Self> {
        let ctx = || "join state: spilling".to_string();
        if range == KeyRange::Unknown {
            return Ok(Self::Arrival(batches.iter().map(RecordBatch::num_rows).collect()));
        }
        let (mut keys, mut sorted, mut nulls) = (Vec::new(), Vec::new(), Vec::new());
        for (b, columns) in key_columns.iter().enumerate() {
            let key = cast(&columns[0], &DataType::Int64).context(ctx)?;
            let values = key.as_primitive::<Int64Type>();
            let mut rows: Vec<u32> = Vec::with_capacity(values.len() - values.null_count());
            for r in 0..values.len() {
                match values.is_valid(r) {
                    true => rows.push(row(r)?),
                    false => nulls.push((row(b)?, row(r)?)),
                }
            }
            rows.sort_by_key(|r| values.value(*r as usize));
            sorted.push(rows);
            keys.push(key);
        }
        let keyed: usize = sorted.iter().map(Vec::len).sum();
        let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let rows_per_block = (BLOCK as u128 * keyed.max(1) as u128 / bytes.max(1) as u128).max(1) as usize;
        Ok(Self::Keyed { keys, sorted, nulls, rows_per_block })
    }

    /// Calls `block` with the rows of each block in order and the block's
    /// key range; the same blocks every time it is called. `block` may
    /// reorder the rows it is given.
    pub fn blocks(&self, block: &mut dyn FnMut(&mut Vec<At>, KeyRange) -> Result<()>) -> Result<()> {
        let mut rows: Vec<At> = Vec::new();
        let (keys, sorted, nulls, rows_per_block) = match self {
            Self::Arrival(sizes) => {
                for (b, n) in sizes.iter().enumerate() {
                    for r in 0..*n {
                        rows.push((row(b)?, row(r)?));
                    }
                }
                return block(&mut rows, KeyRange::Unknown);
            }
            Self::Keyed { keys, sorted, nulls, rows_per_block } => (keys, sorted, nulls, *rows_per_block),
        };
        let key = |b: usize, i: usize| keys[b].as_primitive::<Int64Type>().value(sorted[b][i] as usize);
        // The next row of each batch, smallest key first (then batch).
        let mut heads: BinaryHeap<Reverse<(i64, usize, usize)>> =
            (0..sorted.len()).filter(|b| !sorted[*b].is_empty()).map(|b| Reverse((key(b, 0), b, 0))).collect();
        let mut range = (i64::MAX, i64::MIN);
        while let Some(Reverse((k, b, i))) = heads.pop() {
            rows.push((row(b)?, sorted[b][i]));
            range = (range.0.min(k), range.1.max(k));
            if i + 1 < sorted[b].len() {
                heads.push(Reverse((key(b, i + 1), b, i + 1)));
            }
            if rows.len() == rows_per_block || heads.is_empty() {
                block(&mut rows, KeyRange::Within(range.0, range.1))?;
                rows.clear();
                range = (i64::MAX, i64::MIN);
            }
        }
        if !nulls.is_empty() {
            rows.extend_from_slice(nulls);
            block(&mut rows, KeyRange::Empty)?;
        }
        Ok(())
    }
}

/// A batch or row number as a run's order holds it.
fn row(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| EngineError::State("join state: spilling over 4G batches or rows".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    /// The blocks (8 MB of keys: two or three) hold every row once, by key
    /// across batches (NULL keys last, alone), each within its key range
    /// and at most a block's rows, and are the same when asked again.
    #[test]
    fn blocks_merge_the_batches_by_key() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let mut seed = 7u64;
        let batches: Vec<RecordBatch> = (0..5)
            .map(|_| {
                let keys: Int64Array = (0..200_000)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        (!(seed >> 33).is_multiple_of(97)).then_some(((seed >> 40) % 50_000) as i64)
                    })
                    .collect();
                RecordBatch::try_new(schema.clone(), vec![Arc::new(keys)]).unwrap()
            })
            .collect();
        let key_columns: Vec<Vec<ArrayRef>> = batches.iter().map(|b| vec![b.column(0).clone()]).collect();
        let order = RunOrder::new(&batches, &key_columns, KeyRange::Within(0, 50_000)).unwrap();
        let RunOrder::Keyed { rows_per_block, .. } = &order else { panic!("not keyed") };
        let per_block = *rows_per_block;
        let key = |(b, r): At| {
            let k = batches[b as usize].column(0).as_primitive::<Int64Type>();
            k.is_valid(r as usize).then(|| k.value(r as usize))
        };
        let collect = || {
            let mut blocks = Vec::new();
            order
                .blocks(&mut |rows, range| {
                    blocks.push((rows.clone(), range));
                    Ok(())
                })
                .unwrap();
            blocks
        };
        let blocks = collect();
        assert_eq!(blocks, collect());
        let all: Vec<At> = blocks.iter().flat_map(|(rows, _)| rows.iter().copied()).collect();
        let mut expected: Vec<At> = (0..5u32).flat_map(|b| (0..200_000u32).map(move |r| (b, r))).collect();
        expected.sort_by_key(|at| (key(*at).is_none(), key(*at), *at));
        assert_eq!(all, expected, "every row once, by key, then batch and row; NULL keys last");
        let (nulls, keyed) = blocks.split_last().unwrap();
        assert!(nulls.0.iter().all(|at| key(*at).is_none()) && nulls.1 == KeyRange::Empty);
        assert!(keyed.len() > 1, "{} blocks", keyed.len());
        for (rows, range) in keyed {
            assert!(rows.len() <= per_block);
            let ks: Vec<i64> = rows.iter().map(|at| key(*at).unwrap()).collect();
            assert_eq!(*range, KeyRange::Within(ks[0], *ks.last().unwrap()));
        }
    }
}
