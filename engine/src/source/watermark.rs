//! Per-partition watermarks, combined as Flink combines split watermarks:
//! the minimum over the partitions being read, never moving backwards.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray};
use datafusion::error::DataFusionError;
use datafusion::arrow::datatypes::TimestampMillisecondType;
use datafusion::physical_plan::PhysicalExpr;

use crate::error::{EngineError, Result};
use crate::checkpoint::codec::{Decoder, Encoder};
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
    /// `'source.idle-timeout'`: a partition without rows for this long
    /// stops holding the watermark back until it has rows again.
    pub idle_timeout: Option<Duration>,
    /// Rows whose rowtime is outside this range neither move nor hold back
    /// the watermark.
    pub validity: EventTimeValidity,
    /// Processing time (windows over a `PROCTIME()` column): the watermark
    /// is the wall clock, every `interval`, rows or not; the time column
    /// was read from the same clock as the rows were read, so no row is
    /// ever behind it.
    pub processing_time: bool,
}

/// Watermarks of the partitions one source subtask reads.
#[derive(Debug)]
pub struct PartitionWatermarks {
    /// Partitions that have started and not ended, with their watermark.
    active: BTreeMap<usize, EventTime>,
    /// When each active partition last had rows.
    activity: BTreeMap<usize, Instant>,
    /// Active partitions marked idle: they hold nothing back.
    idle: BTreeSet<usize>,
    /// The combined watermark, as last computed (only ever forward).
    combined: EventTime,
    /// Per partition, the greatest valid event time read (for
    /// `weir.watermarks`: how far behind the wall clock it is).
    max_times: BTreeMap<usize, EventTime>,
}

/// One partition as `weir.watermarks` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionView {
    pub partition: usize,
    /// The partition's own watermark (before combining with the others).
    pub watermark: EventTime,
    /// The greatest valid event time read from it, once it had rows.
    pub max_event_time: Option<EventTime>,
    /// Silent for the idle timeout: it holds nothing back.
    pub idle: bool,
    /// When it last had rows, or began to be read if it had none.
    pub last_activity: Option<Instant>,
}

impl Default for PartitionWatermarks {
    fn default() -> Self {
        Self {
            active: BTreeMap::new(),
            activity: BTreeMap::new(),
            idle: BTreeSet::new(),
            combined: WATERMARK_MIN,
            max_times: BTreeMap::new(),
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
        let values = match plan.expr.evaluate(batch).and_then(|v| v.into_array(n)) {
            Ok(values) => timestamps(plan, &values)?.clone(),
            Err(e) => row_by_row(plan, batch, &e)?,
        };
        let times = batch.column(plan.time_column);
        let times = times.as_primitive_opt::<TimestampMillisecondType>().ok_or_else(|| {
            EngineError::Plan(format!("rowtime column has type {}, expected TIMESTAMP(3)", times.data_type()))
        })?;
        let (min_valid, max_valid) = plan.validity.bounds_now();
        let valid = |i: usize| times.is_valid(i) && values.is_valid(i) && (min_valid..=max_valid).contains(&times.value(i));
        let own = *self.active.entry(partition).or_insert(WATERMARK_MIN);
        // A partition with rows is active again (it rejoins without moving
        // the watermark back: `combined` only grows).
        self.idle.remove(&partition);
        self.activity.insert(partition, Instant::now());
        let others = self
            .active
            .iter()
            .filter(|(p, _)| **p != partition && !self.idle.contains(p))
            .map(|(_, w)| *w)
            .min()
            .unwrap_or(EventTime::MAX);
        let mut running = own;
        let mut max_time = self.max_times.get(&partition).copied().unwrap_or(WATERMARK_MIN);
        let mut out = per_row.then(|| Vec::with_capacity(n));
        for i in 0..n {
            if let Some(out) = &mut out {
                out.push(self.combined.max(others.min(running)));
            }
            if valid(i) {
                running = running.max(values.value(i));
                max_time = max_time.max(times.value(i));
            }
        }
        let row_watermarks = out.map(Int64Array::from);
        self.active.insert(partition, running);
        if max_time != WATERMARK_MIN {
            self.max_times.insert(partition, max_time);
        }
        self.recombine();
        Ok(row_watermarks)
    }

    /// Writes the partitions' watermarks for a checkpoint (idleness is not
    /// kept: after recovery every partition must show rows again).
    pub fn encode(&self, e: &mut Encoder) {
        e.i64(self.combined);
        e.u64(self.active.len() as u64);
        for (p, w) in &self.active {
            e.u64(*p as u64);
            e.i64(*w);
        }
    }

    /// Reads what [`PartitionWatermarks::encode`] wrote.
    pub fn decode(d: &mut Decoder) -> Result<Self> {
        let mut w = Self {
            combined: d.i64()?,
            ..Self::default()
        };
        let n = d.u64()?;
        let now = Instant::now();
        for _ in 0..n {
            let p = d.u64()? as usize;
            w.active.insert(p, d.i64()?);
            w.activity.insert(p, now);
        }
        Ok(w)
    }

    /// Takes over the watermarks of the partitions in `owned` from another
    /// subtask's restored state.
    pub fn adopt(&mut self, other: &PartitionWatermarks, owned: &[usize]) {
        for (p, w) in &other.active {
            if owned.contains(p) {
                self.active.insert(*p, *w);
                self.activity.insert(*p, Instant::now());
            }
        }
    }

    /// Makes `partitions` hold the watermark back before their first rows:
    /// for sources that read all their partitions at once (Kafka), where a
    /// partition without rows yet must not let the others' watermark pass
    /// its own future rows (as Flink registers every assigned split).
    pub fn hold(&mut self, partitions: impl IntoIterator<Item = usize>) {
        for p in partitions {
            self.active.entry(p).or_insert(WATERMARK_MIN);
            self.activity.entry(p).or_insert_with(Instant::now);
        }
        self.recombine();
    }

    /// Sets the combined watermark a restored subtask continues from.
    pub fn start_at(&mut self, combined: EventTime) {
        self.combined = combined;
    }

    /// A partition ended: it no longer holds the watermark back.
    pub fn end(&mut self, partition: usize) {
        self.active.remove(&partition);
        self.activity.remove(&partition);
        self.idle.remove(&partition);
        self.recombine();
    }

    /// Every partition that has not ended, with its watermark, the greatest
    /// event time read from it and whether it is idle.
    pub fn view(&self) -> impl Iterator<Item = PartitionView> + '_ {
        self.active.keys().filter_map(|p| self.view_of(*p))
    }

    /// Partition `partition` as [`PartitionWatermarks::view`] shows it, if
    /// it has not ended.
    pub fn view_of(&self, partition: usize) -> Option<PartitionView> {
        self.active.get(&partition).map(|w| PartitionView {
            partition,
            watermark: *w,
            max_event_time: self.max_times.get(&partition).copied(),
            idle: self.idle.contains(&partition),
            last_activity: self.activity.get(&partition).copied(),
        })
    }

    /// When the longest-silent partition that is not idle yet last had rows.
    pub fn oldest_activity(&self) -> Option<Instant> {
        self.activity
            .iter()
            .filter(|(p, _)| !self.idle.contains(p))
            .map(|(_, at)| *at)
            .min()
    }

    /// Marks idle the partitions without rows since `before`.
    pub fn mark_idle(&mut self, before: Instant) {
        for (p, at) in &self.activity {
            if *at <= before {
                self.idle.insert(*p);
            }
        }
        self.recombine();
    }

    /// Whether any partition has had rows and not ended.
    pub fn has_partitions(&self) -> bool {
        !self.active.is_empty()
    }

    /// Whether every active partition is idle (then the subtask is).
    pub fn all_idle(&self) -> bool {
        !self.active.is_empty() && self.active.keys().all(|p| self.idle.contains(p))
    }

    fn recombine(&mut self) {
        let min = self
            .active
            .iter()
            .filter(|(p, _)| !self.idle.contains(p))
            .map(|(_, w)| *w)
            .min();
        // When every partition is idle the watermark stays: the subtask
        // reports itself idle instead, as Flink's split multiplexer does.
        if let Some(min) = min {
            self.combined = self.combined.max(min);
        }
    }
}

/// The values of the WATERMARK expression, which must be TIMESTAMP(3).
fn timestamps<'a>(plan: &WatermarkPlan, values: &'a ArrayRef) -> Result<&'a TimestampMillisecondArray> {
    values.as_primitive_opt::<TimestampMillisecondType>().ok_or_else(|| {
        EngineError::Plan(format!(
            "WATERMARK expression {} has type {}, expected TIMESTAMP(3)",
            plan.display,
            values.data_type()
        ))
    })
}

/// The WATERMARK expression row by row, after it failed on the whole
/// batch (`failed`): a row it cannot be computed for (an event time so far
/// off that subtracting the delay overflows) gets none, so that it neither
/// moves nor holds the watermark, as an invalid event time, instead of one
/// record failing the job. Only on this rare path is the cost per row.
fn row_by_row(plan: &WatermarkPlan, batch: &RecordBatch, failed: &DataFusionError) -> Result<TimestampMillisecondArray> {
    let mut unusable = 0;
    let values = (0..batch.num_rows())
        .map(|i| match plan.expr.evaluate(&batch.slice(i, 1)).and_then(|v| v.into_array(1)) {
            Ok(value) => Ok(timestamps(plan, &value)?.iter().next().flatten()),
            Err(_) => {
                unusable += 1;
                Ok(None)
            }
        })
        .collect::<Result<TimestampMillisecondArray>>()?;
    tracing::warn!(
        expression = %plan.display,
        rows = unusable,
        error = %failed,
        "rows whose watermark cannot be computed do not move the watermark"
    );
    Ok(values)
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
            idle_timeout: None,
            validity: EventTimeValidity { min_valid: 0, max_future_ms: i64::MAX / 4 },
            processing_time: false,
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
    fn an_idle_partition_stops_holding_the_watermark_and_rejoins() {
        let mut w = PartitionWatermarks::default();
        w.observe(&plan(), 0, &batch(&[Some(100)]), false).unwrap();
        w.observe(&plan(), 1, &batch(&[Some(500)]), false).unwrap();
        assert_eq!(w.combined(), 100);
        // Partition 0 has been silent since before now: idle.
        std::thread::sleep(Duration::from_millis(5));
        let cutoff = Instant::now();
        w.observe(&plan(), 1, &batch(&[Some(600)]), false).unwrap();
        w.mark_idle(cutoff);
        assert_eq!(w.combined(), 600);
        assert!(!w.all_idle());
        // It rejoins with rows, behind the watermark: nothing moves back.
        w.observe(&plan(), 0, &batch(&[Some(200)]), false).unwrap();
        assert_eq!(w.combined(), 600);
        w.observe(&plan(), 1, &batch(&[Some(900)]), false).unwrap();
        assert_eq!(w.combined(), 600);
        w.observe(&plan(), 0, &batch(&[Some(700)]), false).unwrap();
        assert_eq!(w.combined(), 700);
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

    /// `ts - INTERVAL '5' SECOND` overflows for an event time near the
    /// smallest timestamp: that row is left out as an invalid one would
    /// be, and the others still move the watermark.
    #[test]
    fn a_row_whose_watermark_overflows_does_not_fail_the_batch() {
        use datafusion::logical_expr::Operator;
        use datafusion::physical_expr::expressions::{BinaryExpr, Literal};
        use datafusion::scalar::ScalarValue;
        const DELAY: i64 = 5_000;
        let mut p = plan();
        p.expr = Arc::new(BinaryExpr::new(
            Arc::new(Column::new("ts", 0)),
            Operator::Minus,
            Arc::new(Literal::new(ScalarValue::DurationMillisecond(Some(DELAY)))),
        ));
        p.validity.min_valid = i64::MIN;
        let times = [Some(70_000), Some(i64::MIN + 1), Some(90_000), None, Some(80_000)];
        assert!(p.expr.evaluate(&batch(&times)).is_err(), "the batch as a whole must overflow");
        let mut w = PartitionWatermarks::default();
        let rows = w.observe(&p, 0, &batch(&times), true).unwrap().unwrap();
        let expected = |upto: usize| {
            times[..upto].iter().flatten().filter_map(|t| t.checked_sub(DELAY)).max().unwrap_or(WATERMARK_MIN)
        };
        let per_row: Vec<i64> = (0..times.len()).map(expected).collect();
        assert_eq!(rows.values().to_vec(), per_row);
        assert_eq!(w.combined(), expected(times.len()));
    }
}
