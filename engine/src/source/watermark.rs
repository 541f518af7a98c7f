//! Per-partition watermarks, combined as Flink combines split watermarks:
//! the minimum over the partitions being read, never moving backwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::TimestampMillisecondType;
use datafusion::physical_plan::PhysicalExpr;

use crate::error::{EngineError, Result, ResultExt};
use crate::event_time::EventTimeValidity;
use crate::message::{EventTime, WATERMARK_MIN};

/// `WATERMARK FOR col AS expr` of a table, and how often it is emitted.
#[derive(Debug, Clone)]
pub struct WatermarkPlan {
    /// Index of the rowtime column in the table's row.
    pub time_column: usize,
    /// The watermark expression, evaluated on every row.
    pub expr: Arc<dyn PhysicalExpr>,
    /// The expression as written, for EXPLAIN.
    pub display: String,
    /// `'scan.watermark.emit.strategy' = 'on-event'` (or an interval of 0):
    /// a watermark after every row.
    pub on_event: bool,
    /// `pipeline.auto-watermark-interval`.
    pub interval: Duration,
    /// Rows whose rowtime is outside this range neither move nor hold back
    /// the watermark.
    pub validity: EventTimeValidity,
}

/// Watermarks of the partitions one source subtask reads.
#[derive(Debug)]
pub struct PartitionWatermarks {
    /// Partitions that have started and not ended, with their watermark.
    active: BTreeMap<usize, EventTime>,
    /// The combined watermark, as last computed (only ever forward).
    combined: EventTime,
}

impl Default for PartitionWatermarks {
    fn default() -> Self {
        Self {
            active: BTreeMap::new(),
            combined: WATERMARK_MIN,
        }
    }
}

impl PartitionWatermarks {
    pub fn combined(&self) -> EventTime {
        self.combined
    }

    /// Takes a batch of `partition` into account. With `per_row`, returns for
    /// every row the combined watermark in force just before it.
    pub fn observe(
        &mut self,
        plan: &WatermarkPlan,
        partition: usize,
        batch: &RecordBatch,
        per_row: bool,
    ) -> Result<Option<Int64Array>> {
        let n = batch.num_rows();
        let values = plan
            .expr
            .evaluate(batch)
            .and_then(|v| v.into_array(n))
            .context(|| "evaluating the WATERMARK expression".to_string())?;
        let values = values
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| {
                EngineError::Plan(format!(
                    "WATERMARK expression {} has type {}, expected TIMESTAMP(3)",
                    plan.display,
                    values.data_type()
                ))
            })?;
        let times = batch.column(plan.time_column);
        let times = times.as_primitive_opt::<TimestampMillisecondType>().ok_or_else(|| {
            EngineError::Plan(format!("rowtime column has type {}, expected TIMESTAMP(3)", times.data_type()))
        })?;
        let (min_valid, max_valid) = plan.validity.bounds_now();
        let valid = |i: usize| times.is_valid(i) && values.is_valid(i) && (min_valid..=max_valid).contains(&times.value(i));
        let own = *self.active.entry(partition).or_insert(WATERMARK_MIN);
        let others = self
            .active
            .iter()
            .filter(|(p, _)| **p != partition)
            .map(|(_, w)| *w)
            .min()
            .unwrap_or(EventTime::MAX);
        let mut running = own;
        let mut out = per_row.then(|| Vec::with_capacity(n));
        for i in 0..n {
            if let Some(out) = &mut out {
                out.push(self.combined.max(others.min(running)));
            }
            if valid(i) {
                running = running.max(values.value(i));
            }
        }
        let row_watermarks = out.map(Int64Array::from);
        self.active.insert(partition, running);
        self.recombine();
        Ok(row_watermarks)
    }

    /// A partition ended: it no longer holds the watermark back.
    pub fn end(&mut self, partition: usize) {
        self.active.remove(&partition);
        self.recombine();
    }

    fn recombine(&mut self) {
        if let Some(min) = self.active.values().min() {
            self.combined = self.combined.max(*min);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::TimestampMillisecondArray;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::physical_expr::expressions::Column;

    fn plan() -> WatermarkPlan {
        WatermarkPlan {
            time_column: 0,
            expr: Arc::new(Column::new("ts", 0)),
            display: "ts".into(),
            on_event: true,
            interval: Duration::ZERO,
            validity: EventTimeValidity { min_valid: 0, max_future_ms: i64::MAX / 4 },
        }
    }

    fn batch(ts: &[Option<i64>]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("ts", datafusion::arrow::datatypes::DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None), true)]));
        RecordBatch::try_new(schema, vec![Arc::new(TimestampMillisecondArray::from(ts.to_vec()))]).unwrap()
    }

    #[test]
    fn per_row_watermarks_are_the_running_maximum_before_each_row() {
        let mut w = PartitionWatermarks::default();
        let rows = w.observe(&plan(), 0, &batch(&[Some(10), Some(5), None, Some(20)]), true).unwrap().unwrap();
        assert_eq!(rows.values().to_vec(), vec![WATERMARK_MIN, 10, 10, 10]);
        assert_eq!(w.combined(), 20);
    }

    #[test]
    fn the_slowest_active_partition_holds_the_watermark_until_it_ends() {
        let mut w = PartitionWatermarks::default();
        w.observe(&plan(), 0, &batch(&[Some(100)]), false).unwrap();
        assert_eq!(w.combined(), 100);
        w.observe(&plan(), 1, &batch(&[Some(40)]), false).unwrap();
        // Never backwards: partition 1 starting behind does not lower it.
        assert_eq!(w.combined(), 100);
        w.observe(&plan(), 0, &batch(&[Some(300)]), false).unwrap();
        assert_eq!(w.combined(), 100);
        w.observe(&plan(), 1, &batch(&[Some(200)]), false).unwrap();
        assert_eq!(w.combined(), 200);
        w.end(1);
        assert_eq!(w.combined(), 300);
        // Per-row watermarks of one partition are held back by the other.
        w.observe(&plan(), 2, &batch(&[Some(250)]), false).unwrap();
        let rows = w.observe(&plan(), 0, &batch(&[Some(400), Some(500)]), true).unwrap().unwrap();
        assert_eq!(rows.values().to_vec(), vec![300, 300]);
    }

    #[test]
    fn invalid_event_times_neither_move_nor_hold_the_watermark() {
        let mut p = plan();
        p.validity.min_valid = 50;
        let mut w = PartitionWatermarks::default();
        let rows = w.observe(&p, 0, &batch(&[Some(60), Some(10), Some(i64::MAX / 2), None, Some(70)]), true).unwrap().unwrap();
        assert_eq!(rows.values().to_vec(), vec![WATERMARK_MIN, 60, 60, 60, 60]);
        assert_eq!(w.combined(), 70);
    }
}
