//! Flink's `COLLECT(x)`: the multiset of a group's values that are not
//! NULL (with `DISTINCT`, each value once). Weir has no MULTISET type; the
//! result is a `MAP<T, INT>` of each value to how often it came, which is
//! how Flink holds a multiset and how its JSON format writes one (an object
//! of element → count). A group without values gives the empty map.
//!
//! The values are kept as Arrow row-format bytes (one encoding for every
//! type, compared as the values order), each with its count, so a batch is
//! encoded in one call and the result comes out sorted by value. Counts
//! go down on retraction (a GROUP BY over a changelog): a value at 0 is
//! gone. A value retracted before it was added keeps a negative count
//! until it comes, unseen: a multiset has no negative elements.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, MapArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

/// `COLLECT`, registered as DataFusion's aggregate `collect`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Collect {
    signature: Signature,
}

impl Collect {
    /// The aggregate over a value of any type the row format encodes.
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

/// `MAP<key, count>` laid out as Weir's MAP columns are (`types.rs`):
/// `entries` of a non-null `key` and a nullable `value`.
fn map_of(key: &DataType, count: DataType) -> DataType {
    let entries = Fields::from(vec![Field::new("key", key.clone(), false), Field::new("value", count, true)]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

impl AggregateUDFImpl for Collect {
    fn name(&self) -> &str {
        "collect"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let Some(t) = arg_types.first() else {
            return plan_err!("COLLECT takes one argument");
        };
        if !RowConverter::supports_fields(&[SortField::new(t.clone())]) {
            return plan_err!("COLLECT of {t} values is not supported");
        }
        Ok(map_of(t, DataType::Int32))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some(input) = args.expr_fields.first() else {
            return plan_err!("COLLECT takes one argument");
        };
        Ok(Box::new(CollectAccumulator::new(input.data_type(), args.is_distinct)?))
    }

    /// The counts so far, as a `MAP<T, BIGINT>` (negative while a
    /// retraction waits for its value).
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let Some(input) = args.input_fields.first() else {
            return plan_err!("COLLECT takes one argument");
        };
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "collect"),
            map_of(input.data_type(), DataType::Int64),
            true,
        ))])
    }

    /// Flink's COLLECT of no rows is the empty multiset, not NULL.
    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        let DataType::Map(entries, _) = data_type else {
            return exec_err!("COLLECT returns a MAP, not {data_type}");
        };
        let DataType::Struct(fields) = entries.data_type() else {
            return exec_err!("COLLECT returns a MAP of entries, not {data_type}");
        };
        let key = fields[0].data_type();
        let keys = datafusion::arrow::array::new_empty_array(key);
        Ok(ScalarValue::Map(Arc::new(map_array(key, keys, Arc::new(Int32Array::from(Vec::<i32>::new())))?)))
    }
}

/// One map of `keys` to `counts` (as long as each other).
fn map_array(key: &DataType, keys: ArrayRef, counts: ArrayRef) -> Result<MapArray> {
    let DataType::Map(entries, _) = map_of(key, counts.data_type().clone()) else {
        return exec_err!("COLLECT: a map type that is not a map");
    };
    let DataType::Struct(fields) = entries.data_type() else {
        return exec_err!("COLLECT: map entries that are not a struct");
    };
    let len = keys.len();
    let struct_array = StructArray::try_new(fields.clone(), vec![keys, counts], None)?;
    Ok(MapArray::try_new(entries, OffsetBuffer::from_lengths([len]), struct_array, None, false)?)
}

/// The values of one group, by their row encoding, with their counts.
#[derive(Debug)]
struct CollectAccumulator {
    converter: RowConverter,
    key: DataType,
    counts: BTreeMap<Box<[u8]>, i64>,
    distinct: bool,
    /// Bytes of the encoded values, for `size`.
    bytes: usize,
}

impl CollectAccumulator {
    /// An empty multiset of `key` values (each shown once if `distinct`).
    fn new(key: &DataType, distinct: bool) -> Result<Self> {
        Ok(Self {
            converter: RowConverter::new(vec![SortField::new(key.clone())])?,
            key: key.clone(),
            counts: BTreeMap::new(),
            distinct,
            bytes: 0,
        })
    }

    /// Adds `by(row)` to the count of each value of `values` that is not
    /// NULL, dropping the values that reach 0.
    fn add(&mut self, values: &ArrayRef, by: impl Fn(usize) -> i64) -> Result<()> {
        let rows = self.converter.convert_columns(std::slice::from_ref(values))?;
        for r in 0..values.len() {
            if values.is_null(r) {
                continue;
            }
            let row = rows.row(r);
            let delta = by(r);
            match self.counts.get_mut(row.data()) {
                Some(count) => {
                    *count += delta;
                    if *count == 0 {
                        self.counts.remove(row.data());
                        self.bytes -= row.data().len();
                    }
                }
                None if delta != 0 => {
                    self.bytes += row.data().len();
                    self.counts.insert(row.data().into(), delta);
                }
                None => {}
            }
        }
        Ok(())
    }

    /// The values whose count passes `keep`, with their counts, as arrays.
    fn entries(&self, keep: impl Fn(i64) -> bool) -> Result<(ArrayRef, Vec<i64>)> {
        let parser = self.converter.parser();
        let kept: Vec<(&[u8], i64)> =
            self.counts.iter().filter(|(_, c)| keep(**c)).map(|(v, c)| (v.as_ref(), *c)).collect();
        let mut keys = self.converter.convert_rows(kept.iter().map(|(v, _)| parser.parse(v)))?;
        let Some(keys) = keys.pop() else {
            return exec_err!("COLLECT: no column decoded");
        };
        Ok((keys, kept.into_iter().map(|(_, c)| c).collect()))
    }
}

impl Accumulator for CollectAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], |_| 1)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], |_| -1)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(maps) = states[0].as_map_opt() else {
            return exec_err!("COLLECT: its state is not a map but {}", states[0].data_type());
        };
        let Some(counts) = maps.values().as_primitive_opt::<Int64Type>() else {
            return exec_err!("COLLECT: its state's counts are not BIGINT");
        };
        // Entries of NULL maps (none are written) are not part of the state.
        let offsets = maps.value_offsets();
        let (from, to) = (offsets[0] as usize, offsets[maps.len()] as usize);
        let keys = maps.keys().slice(from, to - from);
        let counts = counts.slice(from, to - from);
        let live: Vec<bool> = (0..maps.len())
            .flat_map(|m| std::iter::repeat_n(maps.is_valid(m), maps.value_length(m) as usize))
            .collect();
        self.add(&keys, |r| if live[r] && counts.is_valid(r) { counts.value(r) } else { 0 })
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (keys, counts) = self.entries(|_| true)?;
        let map = map_array(&self.key, keys, Arc::new(Int64Array::from(counts)))?;
        Ok(vec![ScalarValue::Map(Arc::new(map))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let (keys, counts) = self.entries(|c| c > 0)?;
        let distinct = self.distinct;
        let counts: Int32Array = counts
            .into_iter()
            .map(|c| if distinct { Some(1) } else { Some(i32::try_from(c).unwrap_or(i32::MAX)) })
            .collect();
        Ok(ScalarValue::Map(Arc::new(map_array(&self.key, keys, Arc::new(counts))?)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.converter.size() + self.bytes + self.counts.len() * (size_of::<i64>() + 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn shown(value: ScalarValue) -> String {
        let array = value.to_array().unwrap();
        ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).unwrap().value(0).to_string()
    }

    /// Counts go up and down; NULLs are skipped; a value at 0 is gone; a
    /// value retracted before it came is not shown until it comes.
    #[test]
    fn retraction_takes_counts_down() {
        let mut acc = CollectAccumulator::new(&DataType::Utf8, false).unwrap();
        assert_eq!(shown(acc.evaluate().unwrap()), "{}");
        acc.update_batch(&[strings(&[Some("b"), Some("a"), None, Some("b")])]).unwrap();
        assert_eq!(shown(acc.evaluate().unwrap()), "{a: 1, b: 2}");
        acc.retract_batch(&[strings(&[Some("a"), Some("b"), None, Some("c")])]).unwrap();
        assert_eq!(shown(acc.evaluate().unwrap()), "{b: 1}");
        acc.update_batch(&[strings(&[Some("c"), Some("c")])]).unwrap();
        assert_eq!(shown(acc.evaluate().unwrap()), "{b: 1, c: 1}");
        acc.retract_batch(&[strings(&[Some("b"), Some("c")])]).unwrap();
        assert_eq!(shown(acc.evaluate().unwrap()), "{}");
        assert!(acc.counts.is_empty() && acc.bytes == 0);
    }

    /// In SQL: NULLs skipped, `DISTINCT` each value once, the empty map
    /// for a group without values and for no rows at all.
    #[tokio::test]
    async fn collect_in_a_query() {
        use crate::functions::testing::query;
        let t = "(VALUES ('b', 1), ('a', 1), (NULL, 1), ('b', 2), (NULL, 3)) t(s, g)";
        assert_eq!(query(&format!("SELECT collect(s) FROM {t}")).await, ["{a: 1, b: 2}"]);
        assert_eq!(query(&format!("SELECT collect(DISTINCT s) FROM {t}")).await, ["{a: 1, b: 1}"]);
        assert_eq!(
            query(&format!("SELECT collect(s) FROM {t} GROUP BY g ORDER BY g")).await,
            ["{a: 1, b: 1}", "{b: 1}", "{}"]
        );
        assert_eq!(query(&format!("SELECT collect(s) FROM {t} WHERE g > 5")).await, ["{}"]);
        assert_eq!(
            query("SELECT arrow_typeof(collect(x)) FROM (VALUES (CAST(1 AS BIGINT))) t(x)").await,
            ["Map(\"entries\": non-null Struct(\"key\": non-null Int64, \"value\": Int32), unsorted)"]
        );
    }

    /// A state (negative counts too) merged into a fresh accumulator gives
    /// it the same counts; several states add up, and DISTINCT shows each
    /// value once.
    #[test]
    fn state_round_trips() {
        let mut acc = CollectAccumulator::new(&DataType::Int64, false).unwrap();
        let values = |v: &[i64]| -> ArrayRef { Arc::new(Int64Array::from(v.to_vec())) };
        acc.update_batch(&[values(&[3, 1, 3, 3])]).unwrap();
        acc.retract_batch(&[values(&[7])]).unwrap();
        let state = acc.state().unwrap();
        let field = CollectAccumulator::new(&DataType::Int64, false).unwrap().state().unwrap()[0].data_type();
        assert!(state[0].data_type().equals_datatype(&field));
        let column = ScalarValue::iter_to_array([state[0].clone(), state[0].clone()]).unwrap();
        let mut restored = CollectAccumulator::new(&DataType::Int64, false).unwrap();
        restored.merge_batch(&[column.slice(0, 1)]).unwrap();
        assert_eq!(restored.counts, acc.counts);
        assert_eq!(shown(restored.evaluate().unwrap()), "{1: 1, 3: 3}");
        restored.update_batch(&[values(&[7])]).unwrap();
        assert_eq!(shown(restored.evaluate().unwrap()), "{1: 1, 3: 3}", "the retracted 7 came");
        let mut both = CollectAccumulator::new(&DataType::Int64, true).unwrap();
        both.merge_batch(&[column]).unwrap();
        assert_eq!(both.counts.values().copied().collect::<Vec<_>>(), [2, 6, -2]);
        assert_eq!(shown(both.evaluate().unwrap()), "{1: 1, 3: 1}");
    }
}
