//! The system tables as DataFusion table providers: each scan takes a fresh
//! snapshot of the counters ([`super::snapshot`]) and serves it as a memory
//! table, so any SQL (filters, joins, ORDER BY) works over them.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session as CatalogSession, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use super::Registry;
use super::snapshot;

/// How a table takes its snapshot: the registry to a batch of `schema`.
type Build = fn(&Registry, SchemaRef) -> DfResult<RecordBatch>;

/// One `weir.*` table.
pub(super) struct SystemTable {
    pub name: &'static str,
    schema: SchemaRef,
    registry: Arc<Registry>,
    build: Build,
    /// Whether the snapshot blocks (asks a broker): taken off the runtime.
    blocking: bool,
}

impl std::fmt::Debug for SystemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "weir.{}", self.name)
    }
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = Arc::clone(&self.schema);
        let batch = if self.blocking {
            let registry = Arc::clone(&self.registry);
            let build = self.build;
            tokio::task::spawn_blocking(move || build(&registry, schema))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))??
        } else {
            (self.build)(&self.registry, schema)?
        };
        MemTable::try_new(Arc::clone(&self.schema), vec![vec![batch]])?.scan(state, projection, filters, limit).await
    }
}

fn field(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

fn strings<'a>(v: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

fn u64s(v: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(UInt64Array::from_iter_values(v))
}

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> DfResult<RecordBatch> {
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Every system table, reading `registry`.
pub(super) fn all(registry: &Arc<Registry>) -> Vec<SystemTable> {
    let table = |name, fields: Vec<Field>, build: Build, blocking| SystemTable {
        name,
        schema: Arc::new(Schema::new(fields)),
        registry: Arc::clone(registry),
        build,
        blocking,
    };
    vec![
        table(
            "jobs",
            vec![
                field("job_id", DataType::Utf8, false),
                field("status", DataType::Utf8, false),
                field("rows_in", DataType::UInt64, false),
                field("rows_out", DataType::UInt64, false),
                field("rows_dropped", DataType::UInt64, false),
                field("watermark", ts(), true),
                field("checkpoints_completed", DataType::UInt64, false),
                field("restarts", DataType::UInt64, false),
                field("last_failure_time", ts(), true),
                field("last_failure", DataType::Utf8, true),
                field("statement", DataType::Utf8, false),
            ],
            |r, schema| {
                let rows = snapshot::jobs(r);
                batch(
                    schema,
                    vec![
                        strings(rows.iter().map(|j| j.job_id.as_str())),
                        strings(rows.iter().map(|j| j.status)),
                        u64s(rows.iter().map(|j| j.rows_in)),
                        u64s(rows.iter().map(|j| j.rows_out)),
                        u64s(rows.iter().map(|j| j.rows_dropped)),
                        Arc::new(TimestampMillisecondArray::from(rows.iter().map(|j| j.watermark).collect::<Vec<_>>())),
                        u64s(rows.iter().map(|j| j.checkpoints_completed)),
                        u64s(rows.iter().map(|j| j.restarts)),
                        Arc::new(TimestampMillisecondArray::from(
                            rows.iter().map(|j| j.last_failure.as_ref().map(|f| f.0)).collect::<Vec<_>>(),
                        )),
                        Arc::new(StringArray::from(
                            rows.iter().map(|j| j.last_failure.as_ref().map(|f| f.1.as_str())).collect::<Vec<_>>(),
                        )),
                        strings(rows.iter().map(|j| j.statement.as_str())),
                    ],
                )
            },
            false,
        ),
        table(
            "operators",
            vec![
                field("job_id", DataType::Utf8, false),
                field("stage", DataType::UInt64, false),
                field("subtask", DataType::UInt64, false),
                field("operator", DataType::Utf8, false),
                field("rows_in", DataType::UInt64, false),
                field("rows_out", DataType::UInt64, false),
                field("batches_in", DataType::UInt64, false),
                field("batches_out", DataType::UInt64, false),
                field("queue_depth", DataType::UInt64, false),
                field("queue_capacity", DataType::UInt64, false),
                field("busy_share", DataType::Float64, false),
                field("idle_share", DataType::Float64, false),
                field("backpressured_share", DataType::Float64, false),
                field("busy_ms", DataType::Float64, false),
                field("idle_ms", DataType::Float64, false),
                field("backpressured_ms", DataType::Float64, false),
            ],
            |r, schema| {
                let rows = snapshot::operators(r);
                let ms = |f: fn(&snapshot::OperatorRow) -> u64| -> ArrayRef {
                    Arc::new(Float64Array::from_iter_values(rows.iter().map(|o| f(o) as f64 / 1e6)))
                };
                let share = |f: fn(&snapshot::OperatorRow) -> u64| -> ArrayRef {
                    Arc::new(Float64Array::from_iter_values(rows.iter().map(|o| o.share(f(o)))))
                };
                batch(
                    schema,
                    vec![
                        strings(rows.iter().map(|o| o.job_id.as_str())),
                        u64s(rows.iter().map(|o| o.stage)),
                        u64s(rows.iter().map(|o| o.subtask)),
                        strings(rows.iter().map(|o| o.operator.as_str())),
                        u64s(rows.iter().map(|o| o.rows_in)),
                        u64s(rows.iter().map(|o| o.rows_out)),
                        u64s(rows.iter().map(|o| o.batches_in)),
                        u64s(rows.iter().map(|o| o.batches_out)),
                        u64s(rows.iter().map(|o| o.queue_depth)),
                        u64s(rows.iter().map(|o| o.queue_capacity)),
                        share(|o| o.busy_ns),
                        share(|o| o.idle_ns),
                        share(|o| o.backpressured_ns),
                        ms(|o| o.busy_ns),
                        ms(|o| o.idle_ns),
                        ms(|o| o.backpressured_ns),
                    ],
                )
            },
            false,
        ),
        table(
            "watermarks",
            vec![
                field("job_id", DataType::Utf8, false),
                field("table_name", DataType::Utf8, false),
                field("subtask", DataType::UInt64, false),
                field("partition", DataType::UInt64, false),
                field("watermark", ts(), true),
                field("max_event_time", ts(), true),
                field("idle", DataType::Boolean, false),
                field("event_time_lag_ms", DataType::Int64, true),
            ],
            |r, schema| {
                let rows = snapshot::watermarks(r);
                batch(
                    schema,
                    vec![
                        strings(rows.iter().map(|w| w.job_id.as_str())),
                        strings(rows.iter().map(|w| w.table.as_str())),
                        u64s(rows.iter().map(|w| w.subtask)),
                        u64s(rows.iter().map(|w| w.partition)),
                        Arc::new(TimestampMillisecondArray::from(rows.iter().map(|w| w.watermark).collect::<Vec<_>>())),
                        Arc::new(TimestampMillisecondArray::from(
                            rows.iter().map(|w| w.max_event_time).collect::<Vec<_>>(),
                        )),
                        Arc::new(BooleanArray::from(rows.iter().map(|w| w.idle).collect::<Vec<_>>())),
                        Arc::new(Int64Array::from(rows.iter().map(|w| w.event_time_lag_ms).collect::<Vec<_>>())),
                    ],
                )
            },
            false,
        ),
        table(
            "kafka_lag",
            vec![
                field("job_id", DataType::Utf8, false),
                field("table_name", DataType::Utf8, false),
                field("topic", DataType::Utf8, false),
                field("partition", DataType::UInt64, false),
                field("read_offset", DataType::UInt64, true),
                field("committed_offset", DataType::UInt64, true),
                field("high_watermark", DataType::UInt64, false),
                field("lag", DataType::UInt64, true),
                field("read_lag", DataType::UInt64, true),
                field("event_time_lag_ms", DataType::Int64, true),
            ],
            |r, schema| {
                let rows = snapshot::kafka_lag(r).map_err(|e| DataFusionError::External(Box::new(e)))?;
                batch(
                    schema,
                    vec![
                        strings(rows.iter().map(|k| k.job_id.as_str())),
                        strings(rows.iter().map(|k| k.table.as_str())),
                        strings(rows.iter().map(|k| k.topic.as_str())),
                        u64s(rows.iter().map(|k| k.partition)),
                        Arc::new(UInt64Array::from(rows.iter().map(|k| k.read_offset).collect::<Vec<_>>())),
                        Arc::new(UInt64Array::from(rows.iter().map(|k| k.committed_offset).collect::<Vec<_>>())),
                        u64s(rows.iter().map(|k| k.high_watermark)),
                        Arc::new(UInt64Array::from(rows.iter().map(|k| k.lag).collect::<Vec<_>>())),
                        Arc::new(UInt64Array::from(rows.iter().map(|k| k.read_lag).collect::<Vec<_>>())),
                        Arc::new(Int64Array::from(rows.iter().map(|k| k.event_time_lag_ms).collect::<Vec<_>>())),
                    ],
                )
            },
            true,
        ),
        table("pending_windows", super::pending::fields(), super::pending::batch, false),
        table(
            "checkpoints",
            vec![
                field("job_id", DataType::Utf8, false),
                field("checkpoint_id", DataType::UInt64, false),
                field("status", DataType::Utf8, false),
                field("started_at", ts(), false),
                field("duration_ms", DataType::UInt64, false),
                field("bytes", DataType::UInt64, false),
                field("aligned_wait_ms", DataType::Float64, true),
            ],
            |r, schema| {
                let rows = snapshot::checkpoints(r);
                batch(
                    schema,
                    vec![
                        strings(rows.iter().map(|c| c.job_id.as_str())),
                        u64s(rows.iter().map(|c| c.checkpoint_id)),
                        strings(rows.iter().map(|c| c.status)),
                        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|c| c.started_ms))),
                        u64s(rows.iter().map(|c| c.duration_ms)),
                        u64s(rows.iter().map(|c| c.bytes)),
                        Arc::new(Float64Array::from(rows.iter().map(|c| c.aligned_wait_ms).collect::<Vec<_>>())),
                    ],
                )
            },
            false,
        ),
        table(
            "late_events",
            vec![
                field("job_id", DataType::Utf8, false),
                field("operator", DataType::Utf8, false),
                field("reason", DataType::Utf8, false),
                field("rows", DataType::UInt64, false),
            ],
            |r, schema| {
                let rows = snapshot::late_events(r);
                batch(
                    schema,
                    vec![
                        strings(rows.iter().map(|l| l.job_id.as_str())),
                        strings(rows.iter().map(|l| l.operator.as_str())),
                        strings(rows.iter().map(|l| l.reason)),
                        u64s(rows.iter().map(|l| l.rows)),
                    ],
                )
            },
            false,
        ),
        table(
            "hot_keys",
            vec![
                field("job_id", DataType::Utf8, false),
                field("stage", DataType::UInt64, false),
                field("keyed_by", DataType::Utf8, false),
                field("rank", DataType::UInt64, false),
                field("key", DataType::Utf8, false),
                field("rows", DataType::UInt64, false),
                field("share", DataType::Float64, false),
                field("skew_ratio", DataType::Float64, false),
            ],
            |r, schema| {
                let rows = snapshot::hot_keys(r);
                batch(
                    schema,
                    vec![
                        strings(rows.iter().map(|h| h.job_id.as_str())),
                        u64s(rows.iter().map(|h| h.stage)),
                        strings(rows.iter().map(|h| h.keyed_by.as_str())),
                        u64s(rows.iter().map(|h| h.rank)),
                        strings(rows.iter().map(|h| h.key.as_str())),
                        u64s(rows.iter().map(|h| h.rows)),
                        Arc::new(Float64Array::from_iter_values(rows.iter().map(|h| h.share))),
                        Arc::new(Float64Array::from_iter_values(rows.iter().map(|h| h.skew_ratio))),
                    ],
                )
            },
            false,
        ),
        table(
            "memory",
            vec![
                field("job_id", DataType::Utf8, true),
                field("stage", DataType::UInt64, true),
                field("subtask", DataType::UInt64, true),
                field("operator", DataType::Utf8, false),
                field("bytes", DataType::UInt64, false),
                field("keys", DataType::UInt64, true),
                field("spilled_bytes", DataType::UInt64, false),
            ],
            |r, schema| {
                let rows = snapshot::memory(r);
                batch(
                    schema,
                    vec![
                        Arc::new(StringArray::from(rows.iter().map(|m| m.job_id.clone()).collect::<Vec<_>>())),
                        Arc::new(UInt64Array::from(rows.iter().map(|m| m.stage).collect::<Vec<_>>())),
                        Arc::new(UInt64Array::from(rows.iter().map(|m| m.subtask).collect::<Vec<_>>())),
                        strings(rows.iter().map(|m| m.operator.as_str())),
                        u64s(rows.iter().map(|m| m.bytes)),
                        Arc::new(UInt64Array::from(rows.iter().map(|m| m.keys).collect::<Vec<_>>())),
                        u64s(rows.iter().map(|m| m.spilled_bytes)),
                    ],
                )
            },
            false,
        ),
    ]
}
