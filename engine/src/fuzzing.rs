//! What the checkpoint fuzz target (`fuzz/fuzz_targets/checkpoint.rs`)
//! drives: every part of a job that keeps state, built over a small fixed
//! plan, restored from arbitrary bytes and then run to its end.
//!
//! Damaged state must be refused with an error (recovery then falls back to
//! the previous checkpoint), never panic: a panic here would take a whole
//! job, or `weir serve`, down at startup. Not part of Weir's API.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::JoinType;
use datafusion::functions_aggregate::average::avg_udaf;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::AggregateUDF;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::PhysicalExpr;

use crate::changelog;
use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result};
use crate::event_time::EventTimeValidity;
use crate::group_aggregate::{GroupAggregate, GroupAggregatePlan};
use crate::join::JoinSpec;
use crate::join::interval::{IntervalJoin, IntervalJoinPlan, TimeBounds};
use crate::join::updating::{UpdatingJoin, UpdatingJoinPlan};
use crate::join::window::{WindowJoin, WindowJoinPlan};
use crate::message::{StreamBatch, WATERMARK_END};
use crate::metrics::JobMetrics;
use crate::operator::{Collector, Operator};
use crate::source::driver::SourceDriver;
use crate::source::{Assignment, Positions, SourceConnector, SourceEvent, SourcePlan, SourceReader};
use crate::window::aggregate::{OutputColumn, WindowAggregate, WindowAggregatePlan, WindowedAggregation};
use crate::window::groups::{AggregateCall, Grouping};
use crate::window::session::{SessionAggregate, SessionAggregatePlan};
use crate::window::spec::{WindowKind, WindowSpec};

/// The parts of a job whose state a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    WindowAggregate,
    SessionAggregate,
    GroupAggregate,
    IntervalJoin,
    /// An interval join without time bounds (a regular join).
    RegularJoin,
    WindowJoin,
    /// A regular FULL join over changelogs: rows with copies and partners.
    UpdatingJoin,
    /// A source subtask's partition positions and watermarks.
    Source,
}

/// Every part, in the order the first byte of a fuzz input picks them.
pub const PARTS: [Part; 8] = [
    Part::WindowAggregate,
    Part::SessionAggregate,
    Part::GroupAggregate,
    Part::IntervalJoin,
    Part::RegularJoin,
    Part::WindowJoin,
    Part::Source,
    Part::UpdatingJoin,
];

/// Restores the part the first byte of `input` picks from the rest, then
/// feeds it a batch per input and the end of input, so that restored state
/// is also used, as after a real recovery.
///
/// The rest is one state, length-prefixed as [`Encoder::bytes`] writes it,
/// followed by chunks (id, then bytes, each length-prefixed) until the end:
/// the form [`seeds`] writes. Bytes that do not frame that way are all the
/// state, with no chunk.
pub fn restore(input: &[u8]) -> Result<()> {
    let Some((&first, rest)) = input.split_first() else {
        return Ok(());
    };
    let part = PARTS[usize::from(first) % PARTS.len()];
    let (state, chunks) = frame(rest);
    match part {
        Part::Source => restore_source(state),
        _ => {
            let mut op = operator(part)?;
            op.restore(&[state], &chunks, &|_| true)?;
            run_to_end(part, op.as_mut())
        }
    }
}

/// A valid input of [`restore`] for every part: its state after a few rows,
/// as a checkpoint stores it. The seed corpus of the fuzz target.
pub fn seeds() -> Result<Vec<(Part, Vec<u8>)>> {
    let mut out = Vec::new();
    for (index, part) in PARTS.into_iter().enumerate() {
        let mut chunks = ChunkWriter::default();
        let state = match part {
            Part::Source => source_state()?,
            _ => {
                let mut op = operator(part)?;
                let mut sink = Collector::default();
                for (input, batch) in inputs(part)? {
                    op.on_input(input, batch, &mut sink)?;
                }
                op.snapshot(1, &mut chunks)?.unwrap_or_default()
            }
        };
        let mut e = Encoder::default();
        e.bytes(&state);
        for (id, bytes) in &chunks.new {
            e.bytes(&id.to_le_bytes());
            e.bytes(&bytes.read()?);
        }
        let mut input = vec![u8::try_from(index).map_err(|_| EngineError::State("too many parts".into()))?];
        input.extend(e.bytes);
        out.push((part, input));
    }
    Ok(out)
}

/// Splits the state from the chunks that follow it (see [`restore`]).
fn frame(rest: &[u8]) -> (&[u8], ChunkMap) {
    let mut d = Decoder::new(rest);
    let Ok(state) = d.bytes() else {
        return (rest, ChunkMap::default());
    };
    let mut chunks = ChunkMap::default();
    while let (Ok(id), Ok(bytes)) = (d.bytes(), d.bytes()) {
        let Ok(id) = <[u8; 16]>::try_from(id) else { break };
        chunks.insert(u128::from_le_bytes(id), bytes.to_vec());
    }
    (state, chunks)
}

/// After a restore: one batch per input, then the end of input, which
/// fires every window and flushes every held row.
fn run_to_end(part: Part, op: &mut dyn Operator) -> Result<()> {
    let mut out = Collector::default();
    for (input, batch) in inputs(part)? {
        op.on_input(input, batch, &mut out)?;
    }
    op.on_watermark(WATERMARK_END, &mut out)?;
    op.on_end(&mut out)
}

/// Rows of `(ts, k, v)`, the aggregations' input (`v` a DOUBLE, which
/// DataFusion's grouped `avg` takes).
fn input_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Float64, true),
    ]))
}

/// Rows of `(k, t)`, either side of a join (`t` is its rowtime or
/// window end).
fn side_schema(side: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(format!("{side}k"), DataType::Int64, true),
        Field::new(format!("{side}t"), DataType::Timestamp(TimeUnit::Millisecond, None), false),
    ]))
}

/// The batches [`run_to_end`] and [`seeds`] feed `part`, with the input
/// each goes to.
fn inputs(part: Part) -> Result<Vec<(usize, StreamBatch)>> {
    let ts: Vec<i64> = vec![1_000, 2_500, 7_000, 12_000];
    let keys: Vec<i64> = vec![1, 2, 1, 3];
    let times = || Arc::new(TimestampMillisecondArray::from(ts.clone())) as ArrayRef;
    let k = || Arc::new(Int64Array::from(keys.clone())) as ArrayRef;
    let batch = |schema: SchemaRef, columns: Vec<ArrayRef>| -> Result<StreamBatch> {
        RecordBatch::try_new(schema, columns)
            .map(StreamBatch::new)
            .map_err(|e| EngineError::State(format!("fuzzing input: {e}")))
    };
    Ok(match part {
        Part::WindowAggregate | Part::SessionAggregate | Part::GroupAggregate => {
            vec![(
                0,
                batch(input_schema(), vec![times(), k(), Arc::new(Float64Array::from(vec![5.0, 7.5, 11.0, 13.25]))])?,
            )]
        }
        Part::IntervalJoin | Part::RegularJoin | Part::WindowJoin | Part::UpdatingJoin => {
            vec![(0, batch(side_schema("l"), vec![k(), times()])?), (1, batch(side_schema("r"), vec![k(), times()])?)]
        }
        Part::Source => Vec::new(),
    })
}

/// `count(v), sum(v), avg(v)` grouped by `k`: aggregates with one and two
/// state columns.
fn grouping() -> Result<Grouping> {
    let schema = input_schema();
    let v: Arc<dyn PhysicalExpr> = Arc::new(Column::new("v", 2));
    let call = |f: Arc<AggregateUDF>, alias: &str| -> Result<AggregateCall> {
        let function = AggregateExprBuilder::new(f, vec![Arc::clone(&v)])
            .schema(Arc::clone(&schema))
            .alias(alias)
            .build()
            .map_err(|e| EngineError::Plan(format!("fuzzing plan: {e}")))?;
        Ok(AggregateCall { function: Arc::new(function), filter: None })
    };
    Ok(Grouping::new(
        vec![Arc::new(Column::new("k", 1))],
        vec![Field::new("k", DataType::Int64, true)],
        vec![call(count_udaf(), "c")?, call(sum_udaf(), "s")?, call(avg_udaf(), "a")?],
    ))
}

/// The aggregates' output columns after `first` (window bounds, or none).
fn aggregate_output(first: Vec<Field>) -> SchemaRef {
    let mut fields = first;
    fields.extend([
        Field::new("k", DataType::Int64, true),
        Field::new("c", DataType::Int64, false),
        Field::new("s", DataType::Float64, true),
        Field::new("a", DataType::Float64, true),
    ]);
    Arc::new(Schema::new(fields))
}

/// A windowed aggregation over `ts`, as its window operators share it.
fn windowed() -> Result<WindowedAggregation> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    let bounds = vec![Field::new("window_start", ts.clone(), false), Field::new("window_end", ts, false)];
    Ok(WindowedAggregation {
        time_column: 0,
        grouping: grouping()?,
        output: vec![
            OutputColumn::WindowStart,
            OutputColumn::WindowEnd,
            OutputColumn::Key(0),
            OutputColumn::Aggregate(0),
            OutputColumn::Aggregate(1),
            OutputColumn::Aggregate(2),
        ],
        output_schema: aggregate_output(bounds),
        allowed_lateness: 0,
        validity: EventTimeValidity { min_valid: i64::MIN, max_future_ms: i64::MAX / 4 },
        late_output: None,
        emit_early: None,
    })
}

/// An inner join on `lk = rk`.
fn join_spec() -> JoinSpec {
    let (left, right) = (side_schema("l"), side_schema("r"));
    let output = Arc::new(Schema::new([left.fields().to_vec(), right.fields().to_vec()].concat()));
    JoinSpec {
        join_type: JoinType::Inner,
        left_schema: left,
        right_schema: right,
        on: vec![(Arc::new(Column::new("lk", 0)), Arc::new(Column::new("rk", 0)))],
        filter: None,
        output_schema: output,
    }
}

/// A 5-second tumbling window of `count(v), sum(v), avg(v)` by `k`.
pub(crate) fn window_aggregate() -> Result<WindowAggregatePlan> {
    Ok(WindowAggregatePlan {
        window: WindowSpec::new(WindowKind::Tumble { size: 5_000 }, 0).map_err(EngineError::Plan)?,
        aggregation: windowed()?,
    })
}

/// A fresh subtask of `part` (not [`Part::Source`], which is no operator).
fn operator(part: Part) -> Result<Box<dyn Operator>> {
    let name = format!("{part:?}");
    let metrics = JobMetrics::default().register(&name, 0);
    Ok(match part {
        Part::WindowAggregate => Box::new(WindowAggregate::new(Arc::new(window_aggregate()?), name, metrics, None)),
        Part::SessionAggregate => {
            let plan = SessionAggregatePlan {
                gap: 3_000,
                aggregation: windowed()?,
                input_schema: input_schema(),
                emit_rows: None,
            };
            Box::new(SessionAggregate::new(Arc::new(plan), name, metrics, None)?)
        }
        Part::GroupAggregate => {
            let mut output = aggregate_output(Vec::new()).fields().to_vec();
            output.push(Arc::new(changelog::op_field()));
            let plan = GroupAggregatePlan {
                grouping: grouping()?,
                output: vec![
                    OutputColumn::Key(0),
                    OutputColumn::Aggregate(0),
                    OutputColumn::Aggregate(1),
                    OutputColumn::Aggregate(2),
                ],
                output_schema: Arc::new(Schema::new(output)),
                retracting: false,
                ttl: None,
            };
            Box::new(GroupAggregate::new(Arc::new(plan), name, metrics, None)?)
        }
        Part::IntervalJoin | Part::RegularJoin => {
            let bounds =
                (part == Part::IntervalJoin).then_some(TimeBounds { time: [1, 1], lower: -2_000, upper: 2_000 });
            let plan = IntervalJoinPlan { spec: join_spec(), bounds, ttl: [None, None] };
            Box::new(IntervalJoin::new(Arc::new(plan), name, metrics))
        }
        Part::WindowJoin => {
            let plan = WindowJoinPlan { spec: join_spec(), window_end: [1, 1] };
            Box::new(WindowJoin::new(Arc::new(plan), name, metrics))
        }
        Part::UpdatingJoin => {
            // Either side may be padded with NULLs.
            let spec = join_spec();
            let nullable: Vec<Field> =
                spec.output_schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
            let spec = JoinSpec { join_type: JoinType::Full, output_schema: Arc::new(Schema::new(nullable)), ..spec };
            let plan = UpdatingJoinPlan { spec, ttl: [None, None] };
            Box::new(UpdatingJoin::new(Arc::new(plan), name, metrics)?)
        }
        Part::Source => return Err(EngineError::Plan("a source is no operator".into())),
    })
}

/// A source of two partitions that never has rows: the driver's restore is
/// what is fuzzed, not a reader.
#[derive(Debug)]
struct NoRows;

#[async_trait::async_trait]
impl SourceReader for NoRows {
    async fn next(&mut self) -> Result<Option<SourceEvent>> {
        Ok(None)
    }
}

impl SourceConnector for NoRows {
    fn describe(&self) -> String {
        "no rows".into()
    }

    fn schema(&self) -> SchemaRef {
        input_schema()
    }

    fn partitions(&self, _parallelism: usize) -> Result<usize> {
        Ok(2)
    }

    fn open(&self, _assignment: Assignment, _report: bool, _resume: &Positions) -> Result<Box<dyn SourceReader>> {
        Ok(Box::new(NoRows))
    }
}

/// A runtime for the source driver, whose reader is a tokio task; one for
/// the whole fuzzing process rather than one per input.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build())
        .as_ref()
        .map_err(|e| EngineError::State(format!("fuzzing runtime: {e}")))
}

/// Runs `f` with a fresh source driver that owns both partitions, then lets
/// its reader task finish so that none pile up across inputs.
fn with_driver<T>(f: impl FnOnce(&mut SourceDriver) -> Result<T>) -> Result<T> {
    runtime()?.block_on(async {
        let plan = SourcePlan {
            table: "fuzzed".into(),
            connector: Arc::new(NoRows),
            computed: None,
            watermark: None,
            schema: input_schema(),
            report_bad_records: false,
            late_output: None,
            read: None,
        };
        let metrics = JobMetrics::default().register("source", 0);
        let mut driver = SourceDriver::new(Arc::new(plan), Box::new(NoRows), metrics, None);
        let result = f(&mut driver);
        drop(driver);
        tokio::task::yield_now().await;
        result
    })
}

/// Restores a source subtask owning both partitions from `state`.
fn restore_source(state: &[u8]) -> Result<()> {
    SourceDriver::positions_of(&[state])?;
    with_driver(|driver| {
        driver.restore(&[state], &[0, 1])?;
        driver.hold_back(&[0, 1]);
        Ok(())
    })
}

/// A source subtask's state with both partitions holding the watermark.
fn source_state() -> Result<Vec<u8>> {
    with_driver(|driver| {
        driver.hold_back(&[0, 1]);
        Ok(driver.state())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds are real states: each restores and runs to its end.
    #[test]
    fn every_seed_restores() {
        let seeds = seeds().unwrap();
        assert_eq!(seeds.len(), PARTS.len());
        for (part, input) in seeds {
            restore(&input).unwrap_or_else(|e| panic!("{part:?}: {e}"));
        }
    }

    /// Stored rows of other types than the operator reads (the fuzzer's
    /// find: a session's key column decoded as another type panicked in
    /// DataFusion's group values) are damaged state, for every part that
    /// stores rows.
    #[test]
    fn stored_rows_of_other_types_are_an_error() {
        use datafusion::arrow::array::StringArray;
        let utf8 = |name: &str| Field::new(name, DataType::Utf8, true);
        let strings = || Arc::new(StringArray::from(vec!["a"])) as ArrayRef;
        let times = || Arc::new(TimestampMillisecondArray::from(vec![1_000])) as ArrayRef;
        let wrong_input = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
                utf8("k"),
                Field::new("v", DataType::Float64, true),
            ])),
            vec![times(), strings(), Arc::new(Float64Array::from(vec![1.0]))],
        )
        .unwrap();
        let wrong_side = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                utf8("k"),
                Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), false),
            ])),
            vec![strings(), times()],
        )
        .unwrap();
        let framed = |part: Part, state: Vec<u8>| {
            let mut e = Encoder::default();
            e.bytes(&state);
            let index = PARTS.iter().position(|p| *p == part).unwrap();
            [vec![index as u8], e.bytes].concat()
        };
        // A session: its watermark, then its buffered input rows.
        let mut session = Encoder::default();
        session.i64(0);
        session.u64(1);
        session.batch(&wrong_input).unwrap();
        let err = restore(&framed(Part::SessionAggregate, session.bytes)).unwrap_err();
        assert!(err.to_string().contains("does not have the operator's columns"), "{err}");
        // A window join: its watermark, one window, then each side's rows
        // by key group.
        let mut join = Encoder::default();
        join.i64(0);
        join.u64(1);
        join.i64(5_000);
        for _ in 0..2 {
            join.u64(1);
            join.u64(0);
            join.batch(&wrong_side).unwrap();
        }
        let err = restore(&framed(Part::WindowJoin, join.bytes)).unwrap_err();
        assert!(err.to_string().contains("does not have the operator's columns"), "{err}");
    }
}
