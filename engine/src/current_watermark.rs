//! What Flink's `CURRENT_WATERMARK(rowtime)` reads: the watermark of the
//! operator evaluating it, when it evaluates a row. Expressions are
//! DataFusion's and know nothing of watermarks, so the operators that
//! evaluate them (filter, projection) make theirs known to the function for
//! the length of one batch: the last watermark they forwarded, or per row
//! the one in force before that row was read (on-event watermarks).

use std::cell::RefCell;

use datafusion::arrow::array::{Array, Int64Array, TimestampMillisecondArray};

use crate::message::{EventTime, WATERMARK_MIN};

thread_local! {
    static CURRENT: RefCell<Option<(EventTime, Option<Int64Array>)>> = const { RefCell::new(None) };
}

/// Runs `f` (an evaluation over one batch) with `watermark` and the
/// batch's per-row watermarks as the current ones.
pub fn with_watermark<R>(watermark: EventTime, rows: Option<&Int64Array>, f: impl FnOnce() -> R) -> R {
    CURRENT.with(|c| *c.borrow_mut() = Some((watermark, rows.cloned())));
    let result = f();
    CURRENT.with(|c| *c.borrow_mut() = None);
    result
}

/// The watermark of each of `rows` rows being evaluated: NULL before the
/// first watermark, and outside a streaming operator (a batch query).
pub fn current(rows: usize) -> TimestampMillisecondArray {
    CURRENT.with(|c| match &*c.borrow() {
        None => TimestampMillisecondArray::new_null(rows),
        Some((watermark, per_row)) => (0..rows)
            .map(|i| {
                let w = match per_row {
                    Some(r) if i < r.len() && r.is_valid(i) => (*watermark).max(r.value(i)),
                    _ => *watermark,
                };
                (w != WATERMARK_MIN).then_some(w)
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_see_the_watermark_in_force_before_them() {
        assert_eq!(current(2).null_count(), 2, "outside an operator: NULL");
        let rows = Int64Array::from(vec![WATERMARK_MIN, 5, 20]);
        let seen = with_watermark(10, Some(&rows), || current(3));
        assert_eq!(
            seen,
            TimestampMillisecondArray::from(vec![Some(10), Some(10), Some(20)])
        );
        let none = with_watermark(WATERMARK_MIN, None, || current(1));
        assert_eq!(none.null_count(), 1);
        assert_eq!(current(1).null_count(), 1, "cleared after the batch");
    }
}
