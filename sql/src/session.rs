//! A session: the catalog, the settings and the jobs of one user, and the
//! execution of their statements. The REPL, `weir run` and (later) the
//! pgwire server are front doors over it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::empty::EmptyTable;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, Query, Statement};
use tokio::sync::mpsc;
use weir_engine::plan::{SinkPlan, StreamPlan};
use weir_engine::runtime::job::{self, JobHandle};

use crate::catalog::Catalog;
use crate::collect::CollectSink;
use crate::error::{Result, SqlError};
use crate::functions;
use crate::planner::stream::StreamPlanner;
use crate::planner::table::{create_table, normalize};
use crate::planner::validate::check_streaming_query;
use crate::planner::window_tvf;
use crate::settings::Settings;
use crate::statement::{ParsedStatement, WeirStatement, position_of};
use crate::types::sql_name;

/// What a statement produced.
pub enum Outcome {
    /// A confirmation, e.g. `Table 'bids' created.`
    Done(String),
    /// A small result table (SHOW, DESCRIBE, SET).
    Table(RecordBatch),
    /// The streaming plan of `EXPLAIN`.
    Explain(String),
    /// `INSERT INTO`: a job now runs in the background.
    JobStarted(JobHandle),
    /// A plain `SELECT` over streams: rows arrive as windows fire.
    Stream {
        job: JobHandle,
        schema: SchemaRef,
        rows: mpsc::Receiver<RecordBatch>,
    },
}

/// One user's catalog, settings and jobs.
pub struct Session {
    ctx: SessionContext,
    catalog: Catalog,
    settings: Settings,
    jobs: Vec<JobHandle>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    pub fn new() -> Self {
        let ctx = SessionContext::new();
        functions::register(&ctx);
        Self {
            ctx,
            catalog: Catalog::default(),
            settings: Settings::default(),
            jobs: Vec::new(),
        }
    }

    /// Jobs started in this session, oldest first.
    pub fn jobs(&self) -> &[JobHandle] {
        &self.jobs
    }

    /// Runs one statement. Error positions are those of the parsed script.
    pub async fn execute(&mut self, s: &ParsedStatement) -> Result<Outcome> {
        let text = s.text.as_str();
        match &s.statement {
            WeirStatement::CreateTable(ct) => {
                let state = self.ctx.state();
                let table = create_table(&state, ct, text, &self.settings)?;
                let name = table.name.clone();
                if self.catalog.get(&name).is_some() {
                    if ct.if_not_exists {
                        return Ok(Outcome::Done(format!("Table '{name}' already exists.")));
                    }
                    return Err(SqlError::plan(
                        format!("table '{name}' already exists"),
                        position_of(&ct.name),
                    ));
                }
                self.ctx
                    .register_table(name.as_str(), Arc::new(EmptyTable::new(Arc::clone(&table.schema))))?;
                self.catalog.insert(table);
                Ok(Outcome::Done(format!("Table '{name}' created.")))
            }
            WeirStatement::DropTable { name, if_exists } => {
                let n = table_name(name);
                if self.catalog.remove(&n).is_none() {
                    if *if_exists {
                        return Ok(Outcome::Done(format!("Table '{n}' does not exist.")));
                    }
                    return Err(SqlError::plan(format!("table '{n}' not found"), position_of(name)));
                }
                self.ctx.deregister_table(n.as_str())?;
                Ok(Outcome::Done(format!("Table '{n}' dropped.")))
            }
            WeirStatement::Set { key: Some(k), value: Some(v) } => {
                self.settings.set(k, v)?;
                Ok(Outcome::Done(format!("'{k}' set to '{v}'.")))
            }
            WeirStatement::Set { .. } => {
                let (keys, values): (Vec<String>, Vec<String>) = self.settings.all().into_iter().unzip();
                Ok(Outcome::Table(string_table(&["key", "value"], vec![keys, values])))
            }
            WeirStatement::Reset { key } => {
                self.settings.reset(key.as_deref())?;
                Ok(Outcome::Done(match key {
                    Some(k) => format!("'{k}' reset."),
                    None => "All settings reset.".into(),
                }))
            }
            WeirStatement::ShowTables => {
                let names = self.catalog.tables().map(|t| t.name.clone()).collect();
                Ok(Outcome::Table(string_table(&["table name"], vec![names])))
            }
            WeirStatement::Describe { name } => self.describe(name),
            WeirStatement::ShowJobs => Ok(Outcome::Table(self.show_jobs())),
            WeirStatement::StopJob { id } => {
                let job = self
                    .jobs
                    .iter()
                    .find(|j| j.id == *id)
                    .ok_or_else(|| SqlError::plan(format!("no job with id '{id}'"), None))?;
                job.cancel();
                Ok(Outcome::Done(format!("Job '{id}' stopped.")))
            }
            WeirStatement::Explain(inner) => {
                let plan = match inner.as_ref() {
                    WeirStatement::Insert { table, query } => self.plan_insert(table, query).await?,
                    WeirStatement::Query(q) => self.plan_select(q).await?.0,
                    _ => return Err(SqlError::unsupported("EXPLAIN of this statement", None)),
                };
                Ok(Outcome::Explain(plan.to_string()))
            }
            WeirStatement::Insert { table, query } => {
                let plan = self.plan_insert(table, query).await?;
                let handle = job::start(plan, new_job_id(), text.to_string())?;
                self.jobs.push(handle.clone());
                Ok(Outcome::JobStarted(handle))
            }
            WeirStatement::Query(q) => {
                let (plan, schema, rows) = self.plan_select(q).await?;
                let handle = job::start(plan, new_job_id(), text.to_string())?;
                self.jobs.push(handle.clone());
                Ok(Outcome::Stream { job: handle, schema, rows })
            }
        }
    }

    async fn plan_insert(&self, table: &ObjectName, query: &Query) -> Result<StreamPlan> {
        let name = table_name(table);
        let def = self
            .catalog
            .get(&name)
            .ok_or_else(|| SqlError::plan(format!("table '{name}' not found"), position_of(table)))?;
        let connector = def.connector.sink.clone().ok_or_else(|| {
            SqlError::plan(
                format!(
                    "table '{name}' cannot be written: connector '{}' is a source only",
                    def.connector.connector
                ),
                position_of(table),
            )
        })?;
        let sink = SinkPlan { table: name, connector };
        self.plan_stream(query, sink).await
    }

    async fn plan_select(&self, query: &Query) -> Result<(StreamPlan, SchemaRef, mpsc::Receiver<RecordBatch>)> {
        let (logical, windows) = self.logical_plan(query).await?;
        let schema: SchemaRef = Arc::new(logical.schema().as_arrow().clone());
        let (collect, rows) = CollectSink::new(Arc::clone(&schema));
        let sink = SinkPlan {
            table: "client".into(),
            connector: Arc::new(collect),
        };
        let state = self.ctx.state();
        let plan = StreamPlanner::new(&state, &self.catalog, &windows, &self.settings).plan_into_sink(&logical, sink)?;
        Ok((plan, schema, rows))
    }

    async fn plan_stream(&self, query: &Query, sink: SinkPlan) -> Result<StreamPlan> {
        let (logical, windows) = self.logical_plan(query).await?;
        let state = self.ctx.state();
        StreamPlanner::new(&state, &self.catalog, &windows, &self.settings).plan_into_sink(&logical, sink)
    }

    /// DataFusion's analysed logical plan of a streaming query, and the
    /// window relations it reads.
    async fn logical_plan(
        &self,
        query: &Query,
    ) -> Result<(LogicalPlan, std::collections::HashMap<String, window_tvf::WindowRelation>)> {
        check_streaming_query(query)?;
        let mut query = query.clone();
        let state = self.ctx.state();
        let windows = window_tvf::rewrite(&mut query, &self.catalog, &state)?;
        // The relations standing for TVF calls exist only while this query
        // is planned.
        for rel in windows.values() {
            self.ctx
                .register_table(rel.name.as_str(), Arc::new(EmptyTable::new(Arc::clone(&rel.schema))))?;
        }
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(Box::new(query)))))
            .await;
        for rel in windows.values() {
            self.ctx.deregister_table(rel.name.as_str())?;
        }
        let plan = state
            .analyzer()
            .execute_and_check(plan?, state.config_options(), |_, _| {})?;
        Ok((plan, windows))
    }

    fn describe(&self, name: &ObjectName) -> Result<Outcome> {
        let n = table_name(name);
        let t = self
            .catalog
            .get(&n)
            .ok_or_else(|| SqlError::plan(format!("table '{n}' not found"), position_of(name)))?;
        let mut names = Vec::new();
        let mut types = Vec::new();
        let mut nulls = Vec::new();
        let mut extras = Vec::new();
        for (i, f) in t.schema.fields().iter().enumerate() {
            names.push(f.name().clone());
            types.push(sql_name(f.data_type()));
            nulls.push(if f.is_nullable() { "YES" } else { "NO" }.to_string());
            let mut extra = Vec::new();
            if t.physical.index_of(f.name()).is_err() {
                extra.push("computed".to_string());
            }
            if let Some(w) = &t.watermark
                && w.time_column == i
            {
                extra.push(format!("WATERMARK AS {}", w.display));
            }
            extras.push(extra.join(", "));
        }
        Ok(Outcome::Table(string_table(
            &["name", "type", "null", "extras"],
            vec![names, types, nulls, extras],
        )))
    }

    fn show_jobs(&self) -> RecordBatch {
        let mut ids = Vec::new();
        let mut status = Vec::new();
        let mut statements = Vec::new();
        let mut rows_out = Vec::new();
        let mut late = Vec::new();
        for j in &self.jobs {
            ids.push(j.id.clone());
            status.push(format!("{:?}", j.status()));
            statements.push(j.statement.clone());
            let t = j.metrics.totals();
            rows_out.push(t.rows_to_sinks);
            late.push(t.late_rows + t.invalid_time_rows);
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("job id", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("rows out", DataType::UInt64, false),
            Field::new("late rows dropped", DataType::UInt64, false),
            Field::new("statement", DataType::Utf8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(status)),
            Arc::new(UInt64Array::from(rows_out)),
            Arc::new(UInt64Array::from(late)),
            Arc::new(StringArray::from(statements)),
        ];
        RecordBatch::try_new(schema, columns).expect("columns match the schema")
    }
}

fn table_name(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(normalize)
        .unwrap_or_default()
}

fn string_table(names: &[&str], columns: Vec<Vec<String>>) -> RecordBatch {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
        .collect();
    RecordBatch::try_new(schema, arrays).expect("columns match the schema")
}

/// A job id that is unique on this machine: part files are named after it.
fn new_job_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}", nanos ^ n.rotate_right(16) ^ (std::process::id() as u64).rotate_left(40))
}
