//! One source subtask: reads its partitions, adds computed columns,
//! generates watermarks per partition (Flink's watermark push-down), and
//! accounts for the records its reader could not decode.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{EngineError, ErrorKind, Result};
use crate::operators::project::ProjectPlan;
use crate::message::{EventTime, Message, StreamBatch, WATERMARK_END, WATERMARK_MIN, now_ms};
use crate::metrics::{DropReason, OperatorMetrics, PartitionStatus};
use crate::source::watermark::PartitionWatermarks;
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::source::{BadRecord, PARTITION_ENDED, Positions, SourceEvent, SourcePlan, SourceReader};
use crate::window::late::decode_errors_batch;

/// Events read ahead of the driver: enough to keep the reader busy while
/// the chain works, few enough to bound memory.
const READ_AHEAD: usize = 4;

/// Turns a reader's events into the messages of a source subtask.
///
/// The reader runs on its own tokio task so that the driver can wait for
/// its next event and for a timer at once (periodic watermarks, idle
/// partitions) without cancelling a read half-way.
pub struct SourceDriver {
    plan: Arc<SourcePlan>,
    events: mpsc::Receiver<Result<Option<SourceEvent>>>,
    reader: JoinHandle<()>,
    watermarks: PartitionWatermarks,
    /// Whether downstream was told this subtask is idle.
    idle: bool,
    /// `idle` as `weir.watermarks` last showed it for every partition.
    published_idle: bool,
    /// Every partition must be shown afresh at the next publish.
    republish: bool,
    /// Checkpoints to take, from the coordinator (none without checkpoints).
    trigger: Option<watch::Receiver<u64>>,
    /// Where each partition stands, as of the events handled so far.
    positions: Positions,
    /// State taken when the last barrier was queued.
    snapshot: Option<(u64, Vec<u8>)>,
    /// Positions of checkpoints taken and not yet known complete.
    uncommitted: VecDeque<(u64, Positions)>,
    /// When the driver started: a subtask whose partitions never have rows
    /// turns idle this long after it.
    started: Instant,
    emitted: EventTime,
    emitted_at: Instant,
    queue: VecDeque<Message>,
    done: bool,
    metrics: Arc<OperatorMetrics>,
}

impl SourceDriver {
    /// Starts reading (must be called on the tokio runtime).
    pub fn new(
        plan: Arc<SourcePlan>,
        mut reader: Box<dyn SourceReader>,
        metrics: Arc<OperatorMetrics>,
        trigger: Option<watch::Receiver<u64>>,
    ) -> Self {
        if let Some(timeout) = plan.watermark.as_ref().and_then(|w| w.idle_timeout) {
            let _ = metrics.idle_timeout.set(timeout);
        }
        let (tx, events) = mpsc::channel(READ_AHEAD);
        let reader = tokio::spawn(async move {
            loop {
                let event = reader.next().await;
                let last = !matches!(event, Ok(Some(_)));
                if tx.send(event).await.is_err() || last {
                    break;
                }
            }
        });
        Self {
            plan,
            events,
            reader,
            watermarks: PartitionWatermarks::default(),
            idle: false,
            published_idle: false,
            republish: true,
            trigger,
            positions: Positions::new(),
            snapshot: None,
            uncommitted: VecDeque::new(),
            started: Instant::now(),
            emitted: WATERMARK_MIN,
            emitted_at: Instant::now(),
            queue: VecDeque::new(),
            done: false,
            metrics,
        }
    }

    /// When the driver must act without an event: the next periodic
    /// watermark, or the moment a partition turns idle.
    fn next_timer(&self) -> Option<Instant> {
        let plan = self.plan.watermark.as_ref()?;
        if plan.processing_time {
            return Some(self.emitted_at + plan.interval);
        }
        let emit = (!plan.on_event && self.watermarks.combined() > self.emitted).then(|| self.emitted_at + plan.interval);
        let idle = plan.idle_timeout.and_then(|t| match self.watermarks.oldest_activity() {
            Some(at) => Some(at + t),
            None if !self.idle && !self.watermarks.has_partitions() => Some(self.started + t),
            None => None,
        });
        match (emit, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Shows where each partition stands in `weir.watermarks`: every
    /// partition after a timer (idleness may have changed for any) or when
    /// the subtask turned idle or active, else only `touched`, the
    /// partition of the event just handled. Refreshing every partition per
    /// event would make reading a directory of n files cost n² steps.
    fn publish(&mut self, touched: Option<usize>) {
        let mut shown = self.metrics.partitions.lock().unwrap_or_else(|p| p.into_inner());
        let everything = self.republish || self.idle != self.published_idle;
        match touched {
            Some(p) if !everything => match self.status(p) {
                Some(status) => {
                    shown.insert(p, status);
                }
                None => {
                    shown.remove(&p);
                }
            },
            _ => {
                shown.clear();
                let partitions = self.positions.keys().copied().chain(self.watermarks.view().map(|v| v.partition));
                for p in partitions {
                    if let Some(status) = self.status(p) {
                        shown.insert(p, status);
                    }
                }
                self.republish = false;
                self.published_idle = self.idle;
            }
        }
    }

    /// How partition `p` is shown in `weir.watermarks`, if it was read.
    fn status(&self, p: usize) -> Option<PartitionStatus> {
        let position = self.positions.get(&p).copied();
        let view = self.watermarks.view_of(p);
        (position.is_some() || view.is_some()).then(|| PartitionStatus {
            watermark: view.map_or(WATERMARK_MIN, |v| v.watermark),
            max_event_time: view.and_then(|v| v.max_event_time),
            idle: view.is_some_and(|v| v.idle || self.idle),
            position,
            last_activity_ms: view.and_then(|v| v.last_activity).map(|at| now_ms() - at.elapsed().as_millis() as i64),
        })
    }

    /// Partitions silent for `'source.idle-timeout'` stop holding the
    /// watermark back; when all are, downstream is told this subtask is idle.
    fn on_timer(&mut self) {
        if let Some(timeout) = self.plan.watermark.as_ref().and_then(|w| w.idle_timeout) {
            let now = Instant::now();
            self.watermarks.mark_idle(now - timeout);
            let never_had_rows = !self.watermarks.has_partitions() && now >= self.started + timeout;
            if (self.watermarks.all_idle() || never_had_rows) && !self.idle {
                self.idle = true;
                self.queue.push_back(Message::Idle);
            }
        }
        self.maybe_emit_watermark();
    }

    /// The next message; `Message::End` once, after the final watermark.
    pub async fn next(&mut self) -> Result<Message> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return Ok(m);
            }
            if self.done {
                return Ok(Message::End);
            }
            let timer = self.next_timer();
            let event = tokio::select! {
                // A checkpoint starts between two events, never inside one.
                biased;
                triggered = checkpoint_triggered(&mut self.trigger) => {
                    match triggered {
                        Some(id) => self.begin_checkpoint(id),
                        None => self.trigger = None,
                    }
                    continue;
                }
                e = self.events.recv() => e,
                _ = sleep_until(timer) => {
                    self.on_timer();
                    self.republish = true;
                    self.publish(None);
                    continue;
                }
            };
            let event = event.ok_or_else(|| EngineError::Task {
                task: format!("source {}", self.plan.table),
                message: "the reader stopped without ending its input".into(),
                kind: ErrorKind::Internal,
            })??;
            let touched = match &event {
                Some(SourceEvent::Batch { partition, .. } | SourceEvent::PartitionEnd(partition) | SourceEvent::PartitionAdded(partition)) => Some(*partition),
                None => None,
            };
            match event {
                None => {
                    self.done = true;
                    // A bounded input that ended fires every window downstream.
                    self.queue.push_back(Message::Watermark(WATERMARK_END));
                }
                Some(SourceEvent::Batch {
                    partition,
                    batch,
                    bad_records,
                    position,
                }) => {
                    self.positions.insert(partition, position);
                    self.on_bad_records(&bad_records)?;
                    if batch.num_rows() == 0 {
                        self.publish(touched);
                        continue;
                    }
                    self.idle = false;
                    self.metrics
                        .rows_out
                        .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    let data = match &self.plan.computed {
                        Some(p) => computed_columns(p, &batch)?,
                        None => batch,
                    };
                    let mut batch = StreamBatch::new(data);
                    if let Some(wm) = &self.plan.watermark
                        && !wm.processing_time
                    {
                        batch.row_watermarks =
                            self.watermarks.observe(wm, partition, &batch.data, wm.on_event)?;
                    }
                    if batch.num_rows() > 0 {
                        self.queue.push_back(Message::Data(batch));
                    }
                    self.maybe_emit_watermark();
                }
                Some(SourceEvent::PartitionEnd(partition)) => {
                    self.positions.insert(partition, PARTITION_ENDED);
                    self.watermarks.end(partition);
                    self.maybe_emit_watermark();
                }
                Some(SourceEvent::PartitionAdded(partition)) => {
                    tracing::info!(table = %self.plan.table, partition, "reading a new partition");
                    self.watermarks.hold([partition]);
                    // An idle subtask speaks again at once, before the
                    // partition's first rows: downstream must not let
                    // another subtask's watermark pass them meanwhile.
                    if self.idle {
                        self.idle = false;
                        self.queue.push_back(Message::Watermark(self.emitted));
                    }
                }
            }
            self.publish(touched);
        }
    }

    /// Puts the barrier of checkpoint `id` after everything read so far,
    /// and records this subtask's state as of that point.
    fn begin_checkpoint(&mut self, id: u64) {
        let state = self.state();
        self.snapshot = Some((id, state));
        self.uncommitted.push_back((id, self.positions.clone()));
        self.queue.push_back(Message::Barrier(id));
    }

    /// This subtask's state as of the events handled so far.
    pub fn state(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.u64(self.positions.len() as u64);
        for (p, pos) in &self.positions {
            e.u64(*p as u64);
            e.u64(*pos);
        }
        self.watermarks.encode(&mut e);
        e.i64(self.emitted);
        e.bytes
    }

    /// This subtask's state for checkpoint `id` (taken when its barrier was
    /// queued).
    pub fn take_snapshot(&mut self, id: u64) -> Result<Vec<u8>> {
        match self.snapshot.take() {
            Some((at, bytes)) if at == id => Ok(bytes),
            _ => Err(EngineError::State(format!("source {}: no state for checkpoint {id}", self.plan.table))),
        }
    }

    /// Checkpoint `id` is complete: the connector learns the positions it
    /// holds (Kafka commits them to the consumer group, for lag tools).
    pub fn committed(&mut self, id: u64) {
        let mut latest = None;
        while self.uncommitted.front().is_some_and(|(at, _)| *at <= id) {
            latest = self.uncommitted.pop_front().map(|(_, p)| p);
        }
        if let Some(positions) = latest {
            self.plan.connector.checkpoint_committed(&positions);
        }
    }

    /// The partitions' positions in the snapshots of every subtask of a
    /// checkpoint, to reopen the readers there.
    pub fn positions_of(states: &[&[u8]]) -> Result<Positions> {
        let mut positions = Positions::new();
        for state in states {
            let mut d = Decoder::new(state);
            for _ in 0..d.u64()? {
                let p = d.u64()? as usize;
                positions.insert(p, d.u64()?);
            }
        }
        Ok(positions)
    }

    /// Continues from the snapshots of a checkpoint (of every subtask: the
    /// job may run at another parallelism now), for the partitions `owned`.
    pub fn restore(&mut self, states: &[&[u8]], owned: &[usize]) -> Result<()> {
        let mut combined = None::<EventTime>;
        let mut emitted = None::<EventTime>;
        for state in states {
            let mut d = Decoder::new(state);
            for _ in 0..d.u64()? {
                let p = d.u64()? as usize;
                let pos = d.u64()?;
                if owned.contains(&p) {
                    self.positions.insert(p, pos);
                }
            }
            let w = PartitionWatermarks::decode(&mut d)?;
            combined = Some(combined.map_or(w.combined(), |c| c.min(w.combined())));
            self.watermarks.adopt(&w, owned);
            let e = d.i64()?;
            emitted = Some(emitted.map_or(e, |m| m.min(e)));
            d.finish()?;
        }
        if let Some(c) = combined {
            self.watermarks.start_at(c);
        }
        if let Some(e) = emitted {
            self.emitted = e;
            // Downstream starts every input at no watermark: tell it at once
            // where this subtask stood, before any row.
            if e != WATERMARK_MIN {
                self.queue.push_back(Message::Watermark(e));
            }
        }
        Ok(())
    }

    /// Partitions of `owned` that have not ended hold the watermark back
    /// from the start (see [`PartitionWatermarks::hold`]).
    pub fn hold_back(&mut self, owned: &[usize]) {
        let open = owned.iter().copied().filter(|p| self.positions.get(p) != Some(&PARTITION_ENDED));
        self.watermarks.hold(open);
    }

    /// A subtask with no partition to read yet, of a source that discovers
    /// partitions, is idle from the start (as a Flink reader without
    /// splits): downstream does not wait for its watermark, and it is not
    /// ended either, since a partition may come.
    pub fn start_idle(&mut self) {
        self.idle = true;
        self.queue.push_back(Message::Idle);
    }

    /// Counts and logs records the reader could not decode, so that none
    /// vanishes silently, and routes them to the side table if there is one.
    fn on_bad_records(&mut self, records: &[BadRecord]) -> Result<()> {
        self.metrics
            .add_dropped(DropReason::DecodeError, records.len() as u64);
        for r in records {
            tracing::warn!(
                table = %self.plan.table,
                location = %r.location,
                error = %r.error,
                record = %r.text,
                "skipped a record that cannot be decoded"
            );
        }
        if let Some(plan) = &self.plan.late_output
            && !records.is_empty()
        {
            let batch = decode_errors_batch(plan, records.len(), self.watermarks.combined(), now_ms())?;
            self.queue.push_back(Message::Late(batch));
        }
        Ok(())
    }

    fn maybe_emit_watermark(&mut self) {
        let Some(plan) = &self.plan.watermark else {
            return;
        };
        let wm = match plan.processing_time {
            true => crate::message::now_ms(),
            false => self.watermarks.combined(),
        };
        if wm <= self.emitted {
            return;
        }
        if plan.on_event || self.emitted_at.elapsed() >= plan.interval || self.idle {
            self.emitted = wm;
            self.emitted_at = Instant::now();
            self.metrics.watermark.store(wm, Ordering::Relaxed);
            self.queue.push_back(Message::Watermark(wm));
        }
    }
}

/// The next checkpoint to start; `None` once the coordinator is gone.
/// The table's full rows from a connector's batch: computed columns are
/// written over the visible columns, and a changelog batch's kinds stay
/// after them (the watermark reads only the visible columns, by index).
fn computed_columns(plan: &ProjectPlan, batch: &RecordBatch) -> Result<RecordBatch> {
    let (visible, kinds) = crate::changelog::split(batch);
    let rows = plan.apply(&visible, "computed columns")?;
    let Some(kinds) = kinds else {
        return Ok(rows);
    };
    let mut fields: Vec<_> = rows.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(crate::changelog::op_field()));
    let mut columns = rows.columns().to_vec();
    columns.push(Arc::new(kinds.array().clone()));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| EngineError::Plan(format!("computed columns of a changelog: {e}")))
}

async fn checkpoint_triggered(trigger: &mut Option<watch::Receiver<u64>>) -> Option<u64> {
    match trigger {
        Some(t) => t.changed().await.ok().map(|()| *t.borrow_and_update()),
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever without a deadline.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Drop for SourceDriver {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{
        DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
    };
    use datafusion::physical_expr::expressions::Column;

    use super::*;
    use crate::event_time::EventTimeValidity;
    use crate::source::Assignment;
    use crate::metrics::JobMetrics;
    use crate::source::{SourceConnector, WatermarkPlan};
    use crate::window::late::{LateColumn, LateOutputPlan};

    /// 2026-01-01T00:00:00Z.
    const BASE: EventTime = 1_767_225_600_000;
    const TS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

    /// A side table declaring every kind of column, two of them with types
    /// that need a cast (a time zone, a large string).
    fn late_plan() -> LateOutputPlan {
        LateOutputPlan {
            columns: vec![
                LateColumn::Input(0),
                LateColumn::Reason,
                LateColumn::Input(1),
                LateColumn::Watermark,
                LateColumn::ArrivedAt,
            ],
            schema: Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, true),
                Field::new("reason", DataType::LargeUtf8, true),
                Field::new("ts", TS, true),
                Field::new("watermark", TS, true),
                Field::new("arrived_at", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), true),
            ])),
        }
    }

    fn times(batch: &RecordBatch, column: usize) -> Vec<Option<i64>> {
        batch.column(column).as_primitive::<TimestampMillisecondType>().iter().collect()
    }

    #[test]
    fn decode_errors_have_null_row_columns_a_reason_and_the_source_watermark() {
        let plan = late_plan();
        let batch = decode_errors_batch(&plan, 2, BASE, BASE + 7).unwrap();
        assert_eq!(batch.schema(), plan.schema);
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(0).null_count(), 2);
        assert_eq!(batch.column(2).null_count(), 2);
        let reasons: Vec<_> = batch.column(1).as_string::<i64>().iter().collect();
        assert_eq!(reasons, vec![Some("decode_error"), Some("decode_error")]);
        assert_eq!(times(&batch, 3), vec![Some(BASE), Some(BASE)]);
        assert_eq!(times(&batch, 4), vec![Some(BASE + 7), Some(BASE + 7)]);
        // Before the source has a watermark, there is none to report.
        let batch = decode_errors_batch(&plan, 1, WATERMARK_MIN, BASE).unwrap();
        assert_eq!(times(&batch, 3), vec![None]);
        assert_eq!(times(&batch, 4), vec![Some(BASE)]);
    }

    /// Only its schema is used: the driver gets its reader directly.
    #[derive(Debug)]
    struct Unopened(SchemaRef);

    impl SourceConnector for Unopened {
        fn describe(&self) -> String {
            "test".into()
        }
        fn schema(&self) -> SchemaRef {
            Arc::clone(&self.0)
        }
        fn partitions(&self, _parallelism: usize) -> Result<usize> {
            Ok(1)
        }
        fn open(&self, _: Assignment, _: bool, _: &Positions) -> Result<Box<dyn SourceReader>> {
            Err(crate::EngineError::Plan("the test drives its own reader".into()))
        }
    }

    struct Scripted(VecDeque<SourceEvent>);

    #[async_trait::async_trait]
    impl SourceReader for Scripted {
        async fn next(&mut self) -> Result<Option<SourceEvent>> {
            Ok(self.0.pop_front())
        }
    }

    fn bad(line: usize) -> BadRecord {
        BadRecord {
            partition: 0,
            location: format!("/data/in.json:{line}"),
            text: "{oops".into(),
            error: "Encountered unexpected 'o' whilst parsing value".into(),
        }
    }

    /// The source's rows: (id, ts).
    fn source_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("ts", TS, true),
        ]))
    }

    /// A scan of `bids` (id, ts) with on-event watermarks `ts`.
    fn source_plan(idle_timeout: Option<Duration>, late_output: Option<Arc<LateOutputPlan>>) -> Arc<SourcePlan> {
        let schema = source_schema();
        Arc::new(SourcePlan {
            table: "bids".into(),
            connector: Arc::new(Unopened(Arc::clone(&schema))),
            computed: None,
            watermark: Some(WatermarkPlan {
                time_column: 1,
                expr: Arc::new(Column::new("ts", 1)),
                display: "ts".into(),
                on_event: true,
                interval: Duration::ZERO,
                idle_timeout,
                validity: EventTimeValidity::default(),
                processing_time: false,
            }),
            schema,
            report_bad_records: late_output.is_some(),
            late_output,
            read: None,
        })
    }

    /// Drives a source through `events` to its end.
    async fn drive(
        late_output: Option<Arc<LateOutputPlan>>,
        events: Vec<SourceEvent>,
    ) -> (Vec<Message>, Arc<OperatorMetrics>, Arc<JobMetrics>) {
        let plan = source_plan(None, late_output);
        let job = Arc::new(JobMetrics::default());
        let metrics = job.register("Source: bids", 0);
        let mut driver = SourceDriver::new(plan, Box::new(Scripted(events.into())), Arc::clone(&metrics), None);
        let mut out = Vec::new();
        loop {
            match driver.next().await.unwrap() {
                Message::End => break,
                m => out.push(m),
            }
        }
        (out, metrics, job)
    }

    fn rows(id: i64, ts: EventTime) -> SourceEvent {
        let batch = RecordBatch::try_new(
            source_schema(),
            vec![Arc::new(Int64Array::from(vec![id])), Arc::new(TimestampMillisecondArray::from(vec![ts]))],
        )
        .unwrap();
        SourceEvent::Batch {
            partition: 0,
            batch,
            bad_records: vec![],
            position: id as u64,
        }
    }

    /// Bad records alone, as a chunk without good rows reports them.
    fn only_bad(records: Vec<BadRecord>) -> SourceEvent {
        SourceEvent::Batch {
            partition: 0,
            batch: RecordBatch::new_empty(source_schema()),
            bad_records: records,
            position: 0,
        }
    }

    #[tokio::test]
    async fn bad_records_are_counted_and_routed_with_the_current_watermark() {
        let (out, metrics, job) = drive(
            Some(Arc::new(late_plan())),
            vec![
                only_bad(vec![bad(1)]),
                rows(2, BASE),
                only_bad(vec![bad(3), bad(4)]),
                SourceEvent::PartitionEnd(0),
            ],
        )
        .await;
        assert_eq!(out.len(), 5, "{out:?}");
        let Message::Late(first) = &out[0] else { panic!("{out:?}") };
        assert_eq!(first.num_rows(), 1);
        assert_eq!(times(first, 3), vec![None]);
        assert!(matches!(&out[1], Message::Data(b) if b.data.column(0).as_primitive::<Int64Type>().value(0) == 2));
        assert!(matches!(out[2], Message::Watermark(w) if w == BASE));
        let Message::Late(second) = &out[3] else { panic!("{out:?}") };
        assert_eq!(second.num_rows(), 2);
        assert_eq!(times(second, 3), vec![Some(BASE), Some(BASE)]);
        let reasons: Vec<_> = second.column(1).as_string::<i64>().iter().collect();
        assert_eq!(reasons, vec![Some("decode_error"), Some("decode_error")]);
        assert!(matches!(out[4], Message::Watermark(WATERMARK_END)));
        assert_eq!(metrics.decode_errors.load(Ordering::Relaxed), 3);
        assert_eq!(metrics.rows_out.load(Ordering::Relaxed), 1);
        assert_eq!(job.totals().decode_errors, 3);
    }

    #[tokio::test]
    async fn without_a_side_table_bad_records_are_only_counted() {
        let (out, metrics, _) = drive(None, vec![only_bad(vec![bad(1), bad(2)])]).await;
        assert!(matches!(out[..], [Message::Watermark(WATERMARK_END)]), "{out:?}");
        assert_eq!(metrics.decode_errors.load(Ordering::Relaxed), 2);
    }

    /// Partition 0 sends one row and then nothing, without ending; partition
    /// 1 keeps going. After the idle timeout partition 0 holds nothing back.
    #[tokio::test]
    async fn a_silent_partition_turns_idle_and_stops_holding_the_watermark() {
        struct Stalls(VecDeque<SourceEvent>);
        #[async_trait::async_trait]
        impl SourceReader for Stalls {
            async fn next(&mut self) -> Result<Option<SourceEvent>> {
                match self.0.pop_front() {
                    Some(e) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(Some(e))
                    }
                    None => std::future::pending().await,
                }
            }
        }
        let schema = source_schema();
        let rows = |ts: i64| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(vec![1])),
                    Arc::new(TimestampMillisecondArray::from(vec![BASE + ts])),
                ],
            )
            .unwrap()
        };
        let mut events = VecDeque::new();
        let event = |partition, batch| SourceEvent::Batch {
            partition,
            batch,
            bad_records: vec![],
            position: 1,
        };
        events.push_back(event(0, rows(1_000)));
        for i in 1..=10 {
            events.push_back(event(1, rows(1_000 + i * 1_000)));
        }
        let plan = source_plan(Some(Duration::from_millis(60)), None);
        let metrics = JobMetrics::default().register("Source: bids", 0);
        let mut driver = SourceDriver::new(plan, Box::new(Stalls(events)), metrics, None);
        let mut last = WATERMARK_MIN;
        // Ends only when the subtask reports itself idle (once partition 1
        // is silent too); a stall fails the timeout.
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), driver.next()).await.expect("the driver must not stall");
            match m.unwrap() {
                Message::Watermark(w) => last = w,
                Message::Idle => break,
                _ => {}
            }
        }
        // Partition 0 stayed at 1 s: without idleness the watermark would too.
        assert_eq!(last, BASE + 11_000);
    }
}
