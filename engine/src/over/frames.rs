//! One key's new rows computed over their frames.
//!
//! A key's rows come as one batch in its order: the rows it kept from
//! before (`retained`), then the new ones. A bounded frame's accumulator is
//! built afresh over that batch (it holds only what the frames need), fed
//! rows as the frame reaches them and retracting those that leave; an
//! unbounded frame's accumulator lives with the key. `LAG` takes values by
//! index, with arrow's `take`.

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, is_null, take};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;

use super::{Frame, OverFunction, OverPlan};
use crate::error::{Result, ResultExt};

/// What a key keeps between batches.
pub(super) struct KeyState {
    pub(super) key: Box<[u8]>,
    /// The last input rows that later rows' frames (or `LAG`) still take.
    pub(super) retained: Option<RecordBatch>,
    /// Per function: the accumulator of an unbounded frame.
    pub(super) accumulators: Vec<Option<Box<dyn Accumulator>>>,
}

impl KeyState {
    pub(super) fn new(key: &[u8], functions: usize) -> Self {
        Self {
            key: key.into(),
            retained: None,
            accumulators: (0..functions).map(|_| None).collect(),
        }
    }
}

/// The functions' values for rows `new..` of `frame` (the key's retained
/// rows, then its new rows), one array per function; keeps in `state` what
/// later rows need.
pub(super) fn compute(
    plan: &OverPlan,
    state: &mut KeyState,
    frame: &RecordBatch,
    new: usize,
    times: &[i64],
    name: &str,
) -> Result<Vec<ArrayRef>> {
    let ctx = || format!("{name}: computing the window");
    let mut out = Vec::with_capacity(plan.functions.len());
    for (f, function) in plan.functions.iter().enumerate() {
        let want = plan
            .output_schema
            .field(plan.input_schema.fields().len() + f)
            .data_type();
        let values = match function {
            OverFunction::Aggregate {
                function: agg,
                frame: bounds,
            } => {
                let args: Vec<ArrayRef> = agg
                    .expressions()
                    .iter()
                    .map(|e| e.evaluate(frame).and_then(|v| v.into_array(frame.num_rows())))
                    .collect::<datafusion::error::Result<_>>()
                    .context(ctx)?;
                let values = match bounds.unbounded() {
                    true => {
                        let acc = match &mut state.accumulators[f] {
                            Some(acc) => acc,
                            slot => slot.insert(agg.create_accumulator().context(ctx)?),
                        };
                        accumulate(acc.as_mut(), &args, new, times, *bounds, false)
                    }
                    false => {
                        let mut acc = agg.create_sliding_accumulator().context(ctx)?;
                        accumulate(acc.as_mut(), &args, new, times, *bounds, true)
                    }
                }
                .context(ctx)?;
                ScalarValue::iter_to_array(values).context(ctx)?
            }
            OverFunction::Lag { value, offset, default } => {
                let values = value
                    .evaluate(frame)
                    .and_then(|v| v.into_array(frame.num_rows()))
                    .context(ctx)?;
                lag(&values, new, *offset, default).context(ctx)?
            }
        };
        out.push(if values.data_type() == want {
            values
        } else {
            cast(&values, want).context(ctx)?
        });
    }
    let keep = keep_from(&plan.functions, times);
    state.retained = match keep < frame.num_rows() {
        // A copy, so the key does not hold the whole batch it came in.
        true => Some(concat_batches(&frame.schema(), [&frame.slice(keep, frame.num_rows() - keep)]).context(ctx)?),
        false => None,
    };
    Ok(out)
}

/// Folds rows into `acc` as the frames of rows `new..` reach them; with
/// `bounded`, retracts the rows each frame leaves behind.
fn accumulate(
    acc: &mut dyn Accumulator,
    args: &[ArrayRef],
    new: usize,
    times: &[i64],
    frame: Frame,
    bounded: bool,
) -> datafusion::error::Result<Vec<ScalarValue>> {
    let slice = |from: usize, to: usize| -> Vec<ArrayRef> { args.iter().map(|a| a.slice(from, to - from)).collect() };
    let n = times.len();
    let mut values = Vec::with_capacity(n - new);
    // Rows [start, added) are in the accumulator.
    let (mut start, mut added) = match bounded {
        true => (0, 0),
        false => (new, new),
    };
    let mut i = new;
    while i < n {
        // The rows that share this row's frame end: itself for ROWS, its
        // peers (equal times) for RANGE.
        let end = match frame {
            Frame::Rows(_) => i + 1,
            Frame::Range(_) => i + times[i..].iter().take_while(|t| **t == times[i]).count(),
        };
        if end > added {
            acc.update_batch(&slice(added, end))?;
            added = end;
        }
        if bounded {
            let first = match frame {
                Frame::Rows(Some(p)) => end.saturating_sub(p as usize + 1),
                Frame::Range(Some(ms)) => {
                    let lower = times[i].saturating_sub(ms);
                    start + times[start..end].iter().take_while(|t| **t < lower).count()
                }
                _ => start,
            };
            if first > start {
                acc.retract_batch(&slice(start, first))?;
                start = first;
            }
        }
        let v = acc.evaluate()?;
        values.extend(std::iter::repeat_n(v, end - i));
        i = end;
    }
    Ok(values)
}

/// `LAG(values, offset, default)` for rows `new..`.
fn lag(values: &ArrayRef, new: usize, offset: usize, default: &ScalarValue) -> datafusion::error::Result<ArrayRef> {
    let indices: UInt32Array = (new..values.len())
        .map(|i| i.checked_sub(offset).map(|j| j as u32))
        .collect();
    let taken = take(values.as_ref(), &indices, None)?;
    if default.is_null() {
        return Ok(taken);
    }
    let default = default.cast_to(values.data_type())?.to_array_of_size(indices.len())?;
    let before = is_null(&indices)?;
    Ok(datafusion::arrow::compute::kernels::zip::zip(
        &before, &default, &taken,
    )?)
}

/// The first row a later row can still need: the last rows of bounded
/// frames, the last `offset` rows for `LAG`.
fn keep_from(functions: &[OverFunction], times: &[i64]) -> usize {
    let n = times.len();
    let Some(last) = times.last() else { return 0 };
    functions
        .iter()
        .map(|f| match f {
            OverFunction::Aggregate {
                frame: Frame::Rows(Some(p)),
                ..
            } => n.saturating_sub(*p as usize),
            OverFunction::Aggregate {
                frame: Frame::Range(Some(ms)),
                ..
            } => {
                let lower = last.saturating_sub(*ms);
                times.iter().take_while(|t| **t < lower).count()
            }
            OverFunction::Aggregate { .. } => n,
            OverFunction::Lag { offset, .. } => n.saturating_sub(*offset),
        })
        .min()
        .unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::Int64Type;
    use std::sync::Arc;

    #[test]
    fn lag_takes_the_value_offset_rows_before_or_the_default() {
        let values: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)]));
        let got = lag(&values, 1, 2, &ScalarValue::Int64(Some(-1))).unwrap();
        let got: Vec<Option<i64>> = got.as_primitive::<Int64Type>().iter().collect();
        assert_eq!(got, vec![Some(-1), Some(1), None]);
    }

    #[test]
    fn frames_keep_the_rows_later_rows_take() {
        let rows = |p| OverFunction::Lag {
            value: Arc::new(datafusion::physical_expr::expressions::Column::new("x", 0)),
            offset: p,
            default: ScalarValue::Null,
        };
        assert_eq!(keep_from(&[rows(2)], &[1, 2, 3, 4]), 2);
        assert_eq!(keep_from(&[rows(9)], &[1, 2]), 0);
    }
}
