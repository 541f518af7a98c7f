//! Late-data routing: rows a window operator could not use, with why, sent
//! to the query's `LATE DATA INTO` table.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{Field, SchemaRef};

use crate::error::{Result, ResultExt};
use crate::message::EventTime;
use crate::message::now_ms;
use crate::metrics::{DropReason, OperatorMetrics};
use crate::operator::Collector;

/// Where a column of the side table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateColumn {
    /// A column of the row itself.
    Input(usize),
    /// `late`, `invalid_event_time` or `decode_error`.
    Reason,
    /// The operator's watermark when the row arrived.
    Watermark,
    /// Processing time of arrival.
    ArrivedAt,
}

/// The side table's columns, matched by name when the query was planned.
#[derive(Debug)]
pub struct LateOutputPlan {
    pub columns: Vec<LateColumn>,
    pub schema: SchemaRef,
}

/// Rows set aside while processing one batch.
#[derive(Default)]
pub struct LateRows {
    pub rows: Vec<u32>,
    pub reasons: Vec<DropReason>,
    pub watermarks: Vec<EventTime>,
}

impl LateRows {
    pub fn push(&mut self, row: usize, reason: DropReason, watermark: EventTime) {
        self.rows.push(row as u32);
        self.reasons.push(reason);
        self.watermarks.push(watermark);
    }

    /// Counts the rows set aside by reason and, with a side table, sends
    /// them there: nothing is dropped without a count.
    pub fn report(
        &self,
        plan: Option<&LateOutputPlan>,
        metrics: &OperatorMetrics,
        input: &RecordBatch,
        out: &mut Collector,
    ) -> Result<()> {
        for reason in [DropReason::Late, DropReason::InvalidEventTime] {
            metrics.add_dropped(reason, self.reasons.iter().filter(|r| **r == reason).count() as u64);
        }
        if let Some(plan) = plan
            && !self.rows.is_empty()
        {
            out.late(self.to_batch(plan, input, now_ms())?);
        }
        Ok(())
    }

    /// Builds the side table's batch from the input batch.
    pub fn to_batch(&self, plan: &LateOutputPlan, input: &RecordBatch, arrived_at: EventTime) -> Result<RecordBatch> {
        let n = self.rows.len();
        let idx = UInt32Array::from(self.rows.clone());
        let ctx = || "routing late rows".to_string();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(plan.columns.len());
        for (c, field) in plan.columns.iter().zip(plan.schema.fields()) {
            let col: ArrayRef = match *c {
                LateColumn::Input(i) => take(input.column(i), &idx, None).context(ctx)?,
                LateColumn::Reason => Arc::new(StringArray::from_iter_values(self.reasons.iter().map(|r| r.as_str()))),
                LateColumn::Watermark => Arc::new(TimestampMillisecondArray::from(
                    self.watermarks
                        .iter()
                        .map(|w| (*w != EventTime::MIN).then_some(*w))
                        .collect::<Vec<_>>(),
                )),
                LateColumn::ArrivedAt => Arc::new(TimestampMillisecondArray::from_value(arrived_at, n)),
            };
            columns.push(as_field_type(col, field, ctx)?);
        }
        RecordBatch::try_new(Arc::clone(&plan.schema), columns).context(ctx)
    }
}

/// The side table's batch for `rows` records a source could not decode: they
/// have no columns of their own, so those are NULL; the watermark is the
/// source's (NULL before it has one).
pub fn decode_errors_batch(
    plan: &LateOutputPlan,
    rows: usize,
    watermark: EventTime,
    arrived_at: EventTime,
) -> Result<RecordBatch> {
    let ctx = || "routing records that could not be decoded".to_string();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(plan.columns.len());
    for (c, field) in plan.columns.iter().zip(plan.schema.fields()) {
        let col: ArrayRef = match *c {
            LateColumn::Input(_) => new_null_array(field.data_type(), rows),
            LateColumn::Reason => Arc::new(StringArray::from_iter_values(
                std::iter::repeat_n(DropReason::DecodeError.as_str(), rows),
            )),
            LateColumn::Watermark if watermark == EventTime::MIN => {
                Arc::new(TimestampMillisecondArray::new_null(rows))
            }
            LateColumn::Watermark => Arc::new(TimestampMillisecondArray::from_value(watermark, rows)),
            LateColumn::ArrivedAt => Arc::new(TimestampMillisecondArray::from_value(arrived_at, rows)),
        };
        columns.push(as_field_type(col, field, ctx)?);
    }
    RecordBatch::try_new(Arc::clone(&plan.schema), columns).context(ctx)
}

/// Casts a column built with the natural type of its kind (Utf8,
/// TIMESTAMP(3)) to the type the side table declares for it.
fn as_field_type(col: ArrayRef, field: &Field, ctx: impl FnOnce() -> String) -> Result<ArrayRef> {
    if col.data_type() == field.data_type() {
        Ok(col)
    } else {
        cast(&col, field.data_type()).context(ctx)
    }
}
