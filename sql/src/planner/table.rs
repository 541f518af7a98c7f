//! `CREATE TABLE`: columns, computed columns and the watermark compiled with
//! DataFusion; connector options checked by the connector.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMillisecondArray, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMillisecondType};
use datafusion::common::{DFSchema, DataFusionError};
use datafusion::execution::SessionState;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_plan::PhysicalExpr;
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, ExprWithAlias, Ident};
use weir_engine::duration::parse_duration;
use weir_engine::event_time::EventTimeValidity;
use weir_engine::operators::project::ProjectPlan;
use weir_engine::source::WatermarkPlan;

use crate::catalog::TableDef;
use crate::error::{Position, Result, SqlError};
use crate::planner::day_time::day_time_intervals_as_durations;
use crate::settings::Settings;
use crate::statement::{ColumnKind, CreateTable, position_of};
use crate::types::{TIMESTAMP_MS, sql_name, to_arrow};

/// Table options that the engine, not the connector, interprets.
const EMIT_STRATEGY: &str = "scan.watermark.emit.strategy";
const MIN_VALID: &str = "watermark.min-valid-time";
const MAX_FUTURE: &str = "watermark.max-future";
const IDLE_TIMEOUT: &str = "source.idle-timeout";

/// An identifier as Flink takes it: as written, quoted or not (the
/// session's DataFusion does not fold case either).
pub fn normalize(ident: &Ident) -> String {
    ident.value.clone()
}

/// Builds a catalog entry from `CREATE TABLE`.
pub fn create_table(state: &SessionState, ct: &CreateTable, ddl: &str, settings: &Settings) -> Result<TableDef> {
    let name = ct
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(normalize)
        .ok_or_else(|| SqlError::plan("a table needs a name", position_of(&ct.name)))?;
    if ct.columns.is_empty() {
        return Err(SqlError::plan(format!("table '{name}' declares no columns"), position_of(&ct.name)));
    }
    // Physical columns first: computed columns are planned against them.
    let mut physical_fields = Vec::new();
    let mut metadata = Vec::new();
    let mut seen = BTreeMap::new();
    for c in &ct.columns {
        let cname = normalize(&c.name);
        if seen.insert(cname.clone(), ()).is_some() {
            return Err(SqlError::plan(format!("column '{cname}' is declared twice"), c.position));
        }
        match &c.kind {
            ColumnKind::Physical { data_type, not_null } => {
                physical_fields.push(Field::new(&cname, stored(to_arrow(data_type, c.position)?), !not_null));
            }
            // The connector produces metadata columns beside the record's.
            ColumnKind::Metadata { data_type, key, .. } => {
                metadata.push(weir_connectors::MetadataColumn {
                    index: physical_fields.len(),
                    key: key.clone().unwrap_or_else(|| cname.clone()),
                });
                physical_fields.push(Field::new(&cname, stored(to_arrow(data_type, c.position)?), true));
            }
            ColumnKind::Computed(_) => {}
        }
    }
    let physical: SchemaRef = Arc::new(Schema::new(physical_fields));
    let physical_df = DFSchema::try_from(physical.as_ref().clone())?;
    let mut fields = Vec::new();
    let mut exprs: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    let mut has_computed = false;
    for c in &ct.columns {
        let cname = normalize(&c.name);
        match &c.kind {
            ColumnKind::Physical { data_type, .. } | ColumnKind::Metadata { data_type, .. } => {
                let idx = physical.index_of(&cname).map_err(|e| SqlError::plan(e.to_string(), c.position))?;
                let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(&cname, idx));
                let declared = to_arrow(data_type, c.position)?;
                if crate::time_zone::is_ltz(&declared) {
                    // Connectors read an instant as a TIMESTAMP(3) of UTC.
                    has_computed = true;
                    fields.push(physical.field(idx).clone().with_data_type(declared.clone()));
                    exprs.push(Arc::new(CastExpr::new(column, declared, None)));
                } else {
                    fields.push(physical.field(idx).clone());
                    exprs.push(column);
                }
            }
            ColumnKind::Computed(expr) => {
                has_computed = true;
                let e = compile(state, expr, &physical_df, c.position)?;
                let dt = e.data_type(&physical).map_err(|err| SqlError::plan(err.to_string(), c.position))?;
                let nullable = e.nullable(&physical).unwrap_or(true);
                fields.push(Field::new(&cname, dt, nullable));
                exprs.push(e);
            }
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let computed = has_computed.then(|| {
        Arc::new(ProjectPlan {
            exprs,
            schema: Arc::clone(&schema),
        })
    });

    let mut options = ct.options.clone();
    let on_event = match options.remove(EMIT_STRATEGY).as_deref() {
        None | Some("on-periodic") => false,
        Some("on-event") => true,
        Some(other) => {
            return Err(SqlError::plan(
                format!("invalid value '{other}' for option '{EMIT_STRATEGY}': expected 'on-event' or 'on-periodic'"),
                position_of(&ct.name),
            ));
        }
    };
    let mut validity = EventTimeValidity::default();
    if let Some(v) = options.remove(MIN_VALID) {
        validity.min_valid = parse_timestamp(&v).ok_or_else(|| {
            SqlError::plan(
                format!("invalid value '{v}' for option '{MIN_VALID}': expected a timestamp like '2000-01-01 00:00:00'"),
                position_of(&ct.name),
            )
        })?;
    }
    if let Some(v) = options.remove(MAX_FUTURE) {
        let d = parse_duration(&v).map_err(|why| {
            SqlError::plan(format!("invalid value '{v}' for option '{MAX_FUTURE}': {why}"), position_of(&ct.name))
        })?;
        validity.max_future_ms = d.as_millis().min(i64::MAX as u128 / 4) as i64;
    }
    let idle_timeout = match options.remove(IDLE_TIMEOUT) {
        None => None,
        Some(v) => {
            let d = parse_duration(&v).map_err(|why| {
                SqlError::plan(format!("invalid value '{v}' for option '{IDLE_TIMEOUT}': {why}"), position_of(&ct.name))
            })?;
            (!d.is_zero()).then_some(d)
        }
    };

    let watermark = match &ct.watermark {
        None => None,
        Some(wm) => {
            let col = normalize(&wm.column);
            let idx = schema.index_of(&col).map_err(|_| {
                SqlError::plan(format!("WATERMARK FOR '{col}': no such column in table '{name}'"), wm.position)
            })?;
            let dt = schema.field(idx).data_type();
            if *dt != TIMESTAMP_MS && !crate::time_zone::is_ltz(dt) {
                return Err(SqlError::plan(
                    format!(
                        "WATERMARK FOR '{col}': the rowtime column must be TIMESTAMP(3) or TIMESTAMP_LTZ(3), not {}",
                        sql_name(dt)
                    ),
                    wm.position,
                ));
            }
            let df = DFSchema::try_from(schema.as_ref().clone())?;
            let expr = compile(state, &wm.expr, &df, position_of(&wm.expr))?;
            let wdt = expr.data_type(&schema).map_err(|e| SqlError::plan(e.to_string(), wm.position))?;
            if !matches!(wdt, DataType::Timestamp(_, _)) {
                return Err(SqlError::plan(
                    format!("WATERMARK expression {} must be a TIMESTAMP(3), not {}", wm.expr, sql_name(&wdt)),
                    position_of(&wm.expr),
                ));
            }
            check_watermark_computable(&expr, &schema, idx, &validity, &wm.expr)?;
            Some(WatermarkPlan {
                time_column: idx,
                expr,
                display: wm.expr.to_string(),
                on_event,
                interval: settings.watermark_interval(),
                idle_timeout,
                validity,
                processing_time: false,
            })
        }
    };
    let partition_keys = crate::planner::table_partitions::partition_keys(ct, &name)?;
    let primary_key: Vec<String> = ct.primary_key.iter().map(normalize).collect();
    let connector =
        weir_connectors::create_table(&name, &options, Arc::clone(&physical), &metadata, &partition_keys, &primary_key)
            .map_err(|source| SqlError::Connector { table: name.clone(), source })?;
    Ok(TableDef {
        name,
        ddl: ddl.to_string(),
        schema,
        physical,
        computed,
        watermark,
        connector,
        options: ct.options.clone(),
        declared: Some(Arc::new(ct.clone())),
    })
}

/// The type a connector reads a declared column as: a `TIMESTAMP_LTZ`
/// as the `TIMESTAMP(3)` of its UTC time (connectors know no zones).
fn stored(declared: DataType) -> DataType {
    if crate::time_zone::is_ltz(&declared) { TIMESTAMP_MS } else { declared }
}

/// Epoch milliseconds of `2000-01-01 00:00:00[.SSS]`, the ISO form, or a
/// number of milliseconds.
fn parse_timestamp(v: &str) -> Option<i64> {
    if let Ok(ms) = v.trim().parse::<i64>() {
        return Some(ms);
    }
    let a = StringArray::from(vec![v]);
    let t = cast(&a, &TIMESTAMP_MS).ok()?;
    let t = t.as_primitive_opt::<TimestampMillisecondType>()?;
    t.is_valid(0).then(|| t.value(0))
}

/// Plans a SQL expression over `schema` into a physical expression, with
/// DataFusion's type coercion and day-time intervals as Flink adds them.
fn compile(
    state: &SessionState,
    expr: &SqlExpr,
    schema: &DFSchema,
    position: Option<Position>,
) -> Result<Arc<dyn PhysicalExpr>> {
    // Flink's calls DataFusion cannot plan as written (TIMESTAMPADD's unit).
    let mut expr = expr.clone();
    crate::planner::flink_calls::rewrite_expr(&mut expr);
    let logical = state
        .create_logical_expr_from_sql_expr(
            ExprWithAlias {
                expr,
                alias: None,
            },
            schema,
        )
        .and_then(|e| day_time_intervals_as_durations(e, schema))
        .map_err(|e| with_position(e.into(), position))?;
    state
        .create_physical_expr(logical, schema)
        .map_err(|e| with_position(e.into(), position))
}

/// Refuses a WATERMARK expression that cannot be computed for valid
/// event times, such as `ts - INTERVAL '300000' YEAR`, which leaves the
/// range of timestamps: each row's watermark would fail, and the watermark
/// would never move. Tried on the earliest valid event time and on now,
/// every other column NULL.
fn check_watermark_computable(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &SchemaRef,
    time_column: usize,
    validity: &EventTimeValidity,
    written: &SqlExpr,
) -> Result<()> {
    let probes = [validity.min_valid, weir_engine::message::now_ms()];
    let fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    let columns = fields
        .iter()
        .enumerate()
        .map(|(i, f)| match i == time_column {
            true => {
                let tz = match f.data_type() {
                    DataType::Timestamp(_, tz) => tz.clone(),
                    _ => None,
                };
                Arc::new(TimestampMillisecondArray::from(probes.to_vec()).with_timezone_opt(tz)) as ArrayRef
            }
            false => new_null_array(f.data_type(), probes.len()),
        })
        .collect();
    let probe = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(DataFusionError::from)?;
    for i in 0..probes.len() {
        let row = probe.slice(i, 1);
        if let Err(e) = expr.evaluate(&row).and_then(|v| v.into_array(1)) {
            let time = cast(row.column(time_column), &DataType::Utf8).map_err(DataFusionError::from)?;
            return Err(SqlError::plan(
                format!(
                    "WATERMARK expression {written} cannot be computed for the event time {}: {}",
                    time.as_string::<i32>().value(0),
                    e.strip_backtrace()
                ),
                position_of(written),
            ));
        }
    }
    Ok(())
}

fn with_position(e: SqlError, position: Option<Position>) -> SqlError {
    match e {
        SqlError::Plan { message, position: None } => SqlError::Plan { message, position },
        other => other,
    }
}
