//! The window join: rows of both sides that fall in the same window (of the
//! same TUMBLE or HOP) are joined when the watermark closes the window, as
//! Flink's window join; the window's rows are dropped then.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{Scalar, TimestampMillisecondArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::cmp::eq;

use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{Result, ResultExt};
use crate::join::exec::JoinSpec;
use crate::join::sides::{SideRows, drop_late, times};
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::metrics::OperatorMetrics;
use crate::operator::{Collector, Operator, StateSize};

/// A window join of two windowed relations.
#[derive(Debug)]
pub struct WindowJoinPlan {
    pub spec: JoinSpec,
    /// The `window_end` column of each side's rows (left, right).
    pub window_end: [usize; 2],
}

/// One subtask of a window join.
pub struct WindowJoin {
    plan: Arc<WindowJoinPlan>,
    name: String,
    watermark: EventTime,
    /// Per window end: the rows of each side.
    windows: BTreeMap<EventTime, [SideRows; 2]>,
    metrics: Arc<OperatorMetrics>,
}

impl WindowJoin {
    pub fn new(plan: Arc<WindowJoinPlan>, name: String, metrics: Arc<OperatorMetrics>) -> Self {
        Self { plan, name, watermark: WATERMARK_MIN, windows: BTreeMap::new(), metrics }
    }

    fn fire_until(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        while let Some(entry) = self.windows.first_entry() {
            if entry.key().saturating_sub(1) > watermark {
                break;
            }
            let [left, right] = entry.remove();
            for batch in self.plan.spec.run(left.into_batches(), right.into_batches(), &self.name)? {
                self.metrics.rows_out.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                out.batch(StreamBatch::new(batch));
            }
        }
        Ok(())
    }
}

impl Operator for WindowJoin {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, _batch: StreamBatch, _out: &mut Collector) -> Result<()> {
        Err(crate::operator::side_required(&self.name))
    }

    /// Keeps each row in its window; a row whose window has closed (its end
    /// is not after the watermark) is late and counted.
    fn on_input(&mut self, input: usize, batch: StreamBatch, _out: &mut Collector) -> Result<()> {
        let column = self.plan.window_end[input];
        // A window ending at `e` takes rows while the watermark is before `e - 1`.
        let kept = drop_late(&batch, column, -1, self.watermark, &self.name, &self.metrics)?;
        let ends = times(&kept, column, &self.name)?;
        let mut distinct: Vec<EventTime> = ends.values().to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        for end in distinct {
            let rows = if ends.len() == 1 || ends.values().iter().all(|e| *e == end) {
                kept.clone()
            } else {
                let mask = eq(ends, &Scalar::new(TimestampMillisecondArray::from(vec![end])))
                    .context(|| format!("{}: windows", self.name))?;
                filter_record_batch(&kept, &mask).context(|| format!("{}: windows", self.name))?
            };
            self.windows.entry(end).or_default()[input].push(rows);
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.fire_until(watermark, out)?;
        }
        out.watermark(watermark);
        Ok(())
    }

    /// The rows of every open window, by side and key group.
    fn snapshot(&mut self, _checkpoint: u64, _chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        let mut e = Encoder::default();
        let mut hashes = Vec::new();
        e.i64(self.watermark);
        e.u64(self.windows.len() as u64);
        let keys = [self.plan.spec.keys(0), self.plan.spec.keys(1)];
        for (end, sides) in &self.windows {
            e.i64(*end);
            for (side, rows) in sides.iter().enumerate() {
                rows.encode(&keys[side], &mut e, &mut hashes)?;
            }
        }
        Ok(Some(e.bytes))
    }

    fn state_size(&self) -> StateSize {
        StateSize { bytes: self.windows.values().flatten().map(SideRows::bytes).sum(), keys: None, spilled: 0 }
    }

    fn restore(&mut self, states: &[&[u8]], _chunks: &ChunkMap, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        let mut watermark = None::<EventTime>;
        for state in states {
            let mut d = Decoder::new(state);
            let w = d.i64()?;
            watermark = Some(watermark.map_or(w, |m| m.min(w)));
            for _ in 0..d.u64()? {
                let end = d.i64()?;
                let sides = self.windows.entry(end).or_default();
                let schemas = [&self.plan.spec.left_schema, &self.plan.spec.right_schema];
                for (rows, schema) in sides.iter_mut().zip(schemas) {
                    rows.decode(&mut d, schema, owns)?;
                }
            }
            d.finish()?;
        }
        self.windows.retain(|_, [l, r]| l.rows() + r.rows() > 0);
        if let Some(w) = watermark {
            self.watermark = w;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::JobMetrics;
    use crate::operator::Emitted;
    use crate::runtime::exchange::subtask_of_key_group;
    use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::common::JoinType;
    use datafusion::physical_expr::expressions::Column;

    fn schema(side: &str) -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new(format!("{side}k"), DataType::Int64, true),
            Field::new(format!("{side}end"), DataType::Timestamp(TimeUnit::Millisecond, None), false),
        ]))
    }

    fn join() -> WindowJoin {
        let (l, r) = (schema("l"), schema("r"));
        let output = Arc::new(Schema::new([l.fields().to_vec(), r.fields().to_vec()].concat()));
        let spec = JoinSpec {
            join_type: JoinType::Inner,
            left_schema: l,
            right_schema: r,
            on: vec![(Arc::new(Column::new("lk", 0)), Arc::new(Column::new("rk", 0)))],
            filter: None,
            output_schema: output,
        };
        let plan = WindowJoinPlan { spec, window_end: [1, 1] };
        WindowJoin::new(Arc::new(plan), "join".into(), JobMetrics::default().register("join", 0))
    }

    fn rows(side: &str, keys: &[i64], end: i64) -> StreamBatch {
        let columns: Vec<datafusion::arrow::array::ArrayRef> = vec![
            Arc::new(Int64Array::from(keys.to_vec())),
            Arc::new(TimestampMillisecondArray::from(vec![end; keys.len()])),
        ];
        StreamBatch::new(RecordBatch::try_new(schema(side), columns).unwrap())
    }

    /// (left key, right key) of every joined row, sorted.
    fn pairs(out: Collector) -> Vec<(i64, i64)> {
        let mut v = Vec::new();
        for e in out.out {
            if let Emitted::Data(b) = e {
                let (l, r) = (
                    b.data.column(0).as_primitive::<datafusion::arrow::datatypes::Int64Type>(),
                    b.data.column(2).as_primitive::<datafusion::arrow::datatypes::Int64Type>(),
                );
                v.extend((0..b.num_rows()).map(|i| (l.value(i), r.value(i))));
            }
        }
        v.sort();
        v
    }

    /// The open windows' rows, restored at parallelism 3 from one
    /// subtask's checkpoint, join into what the one subtask would emit.
    #[test]
    fn window_rows_restore_at_another_parallelism() {
        let keys: Vec<i64> = (0..200).collect();
        let mut one = join();
        let mut out = Collector::default();
        one.on_input(0, rows("l", &keys, 10), &mut out).unwrap();
        one.on_input(1, rows("r", &keys[50..], 10), &mut out).unwrap();
        one.on_input(1, rows("r", &keys[..20], 20), &mut out).unwrap();
        let state = one.snapshot(1, &mut ChunkWriter::default()).unwrap().unwrap();
        one.on_watermark(100, &mut out).unwrap();
        let want = pairs(out);
        assert_eq!(want.len(), 150, "keys 50..200 meet in window 10; window 20 has no left rows");
        let mut got = Vec::new();
        for subtask in 0..3 {
            let mut part = join();
            part.restore(&[&state], &ChunkMap::default(), &|g| subtask_of_key_group(g, 3) == subtask).unwrap();
            let mut out = Collector::default();
            part.on_watermark(100, &mut out).unwrap();
            let mine = pairs(out);
            assert!(mine.len() < want.len(), "subtask {subtask} kept only its key groups");
            got.extend(mine);
        }
        got.sort();
        assert_eq!(got, want);
    }
}
