//! MIN and MAX over a changelog. DataFusion's sliding MIN and MAX retract
//! in arrival order (a window frame's oldest row leaves first); a
//! changelog withdraws whichever earlier result it names, so, as Flink's
//! `MinWithRetractAggFunction` does, this accumulator keeps how many times
//! each value is held, in order (arrow's row format orders them), and
//! answers with the first or the last.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, UInt64Type};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{ScalarValue, internal_err};
use datafusion::error::Result;
use datafusion::logical_expr::Accumulator;

/// A MIN or MAX that takes back any value.
#[derive(Debug)]
pub(super) struct RetractableMinMax {
    max: bool,
    data_type: DataType,
    converter: RowConverter,
    /// Encoded value → the value and how many rows hold it.
    values: BTreeMap<Box<[u8]>, (ScalarValue, u64)>,
}

impl RetractableMinMax {
    pub(super) fn new(max: bool, data_type: DataType) -> Result<Self> {
        let converter = RowConverter::new(vec![SortField::new(data_type.clone())])?;
        Ok(Self { max, data_type, converter, values: BTreeMap::new() })
    }

    /// Adds `counts[i]` (1 without) of each non-NULL value of `values`;
    /// takes them away with `retract`.
    fn apply(&mut self, values: &ArrayRef, counts: Option<&UInt64Array>, retract: bool) -> Result<()> {
        let rows = self.converter.convert_columns(std::slice::from_ref(values))?;
        for i in 0..values.len() {
            if values.is_null(i) {
                continue;
            }
            let n = counts.map_or(1, |c| c.value(i));
            let key = rows.row(i).data();
            match (retract, self.values.get_mut(key)) {
                (false, Some((_, held))) => *held += n,
                (false, None) => {
                    self.values.insert(key.into(), (ScalarValue::try_from_array(values, i)?, n));
                }
                (true, Some((_, held))) if *held > n => *held -= n,
                (true, Some(_)) => {
                    self.values.remove(key);
                }
                // A retraction of a value never added: the input withdrew
                // a row it did not send; nothing is held to take back.
                (true, None) => {}
            }
        }
        Ok(())
    }
}

impl Accumulator for RetractableMinMax {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(&values[0], None, false)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(&values[0], None, true)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let held = match self.max {
            true => self.values.last_key_value(),
            false => self.values.first_key_value(),
        };
        match held {
            Some((_, (v, _))) => Ok(v.clone()),
            None => ScalarValue::try_from(&self.data_type),
        }
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.values.iter().map(|(k, (v, _))| k.len() + v.size() + 16).sum::<usize>()
    }

    /// The values held and their counts, as two lists.
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.values.values().map(|(v, _)| v.clone()).collect();
        let counts: Vec<ScalarValue> = self.values.values().map(|(_, n)| ScalarValue::UInt64(Some(*n))).collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.data_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::UInt64)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, counts] = states else {
            return internal_err!("MIN/MAX with retraction: a state of {} columns", states.len());
        };
        let (values, counts) = (values.as_list_opt::<i32>(), counts.as_list_opt::<i32>());
        let (Some(values), Some(counts)) = (values, counts) else {
            return internal_err!("MIN/MAX with retraction: a state that is not two lists");
        };
        for r in 0..values.len() {
            let held = values.value(r);
            let Some(n) = counts.value(r).as_primitive_opt::<UInt64Type>().cloned() else {
                return internal_err!("MIN/MAX with retraction: counts that are not UInt64");
            };
            if held.len() != n.len() {
                return internal_err!("MIN/MAX with retraction: {} values but {} counts", held.len(), n.len());
            }
            self.apply(&Arc::clone(&held), Some(&n), false)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;

    fn values(v: &[Option<i64>]) -> Vec<ArrayRef> {
        vec![Arc::new(Int64Array::from(v.to_vec()))]
    }

    /// Any value can leave, not only the oldest; the answer follows.
    #[test]
    fn any_value_taken_back_moves_the_answer() {
        let mut max = RetractableMinMax::new(true, DataType::Int64).unwrap();
        let mut min = RetractableMinMax::new(false, DataType::Int64).unwrap();
        for acc in [&mut max, &mut min] {
            acc.update_batch(&values(&[Some(5), Some(9), None, Some(9), Some(1)])).unwrap();
            acc.retract_batch(&values(&[Some(9), Some(1)])).unwrap();
        }
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Int64(Some(9)), "one 9 is still held");
        assert_eq!(min.evaluate().unwrap(), ScalarValue::Int64(Some(5)));
        max.retract_batch(&values(&[Some(9), Some(5)])).unwrap();
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Int64(None), "nothing held: NULL");
    }

    /// The state restores into a fresh accumulator with the same counts.
    #[test]
    fn state_merges_back_with_its_counts() {
        let mut a = RetractableMinMax::new(true, DataType::Int64).unwrap();
        a.update_batch(&values(&[Some(3), Some(7), Some(7)])).unwrap();
        let state: Vec<ArrayRef> = a.state().unwrap().iter().map(|s| s.to_array().unwrap()).collect();
        let mut b = RetractableMinMax::new(true, DataType::Int64).unwrap();
        b.merge_batch(&state).unwrap();
        b.retract_batch(&values(&[Some(7)])).unwrap();
        assert_eq!(b.evaluate().unwrap(), ScalarValue::Int64(Some(7)));
        b.retract_batch(&values(&[Some(7)])).unwrap();
        assert_eq!(b.evaluate().unwrap(), ScalarValue::Int64(Some(3)));
    }
}
