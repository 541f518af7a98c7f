//! A session: the catalog, the settings and the jobs of one user, and the
//! execution of their statements. The REPL, `weir run` and the pgwire
//! server (`weir serve`) are front doors over it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::catalog::empty::EmptyTable;
use datafusion::sql::resolve::resolve_table_references;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, Query, Statement, TableFactor, Visit, Visitor};
use std::ops::ControlFlow;
use tokio::sync::mpsc;
use futures::FutureExt;
use weir_engine::plan::{SinkPlan, StreamPlan};
use weir_engine::EngineError;
use weir_engine::runtime::job::{JobHandle, JobStatus};

use crate::catalog::{Catalog, TableDef};
use crate::error::{Result, SqlError};
use crate::functions;
use crate::planner::table::{create_table, normalize};
use crate::results;
use crate::settings::Settings;
use crate::system::{self, Registry};
use crate::script::ParsedStatement;
use crate::statement::{WeirStatement, position_of};
use crate::views::Views;

mod statement_set;
mod hints;
mod alter;
mod create_table_as;
mod ddl;
mod describe;
mod show;
mod views;
mod zone;
mod persist;
mod jobs;
mod planning;

/// What a statement produced.
pub enum Outcome {
    /// A confirmation, e.g. `Table 'bids' created.`
    Done(String),
    /// A result table: SHOW, DESCRIBE, SET, or a query over memory tables.
    Table(Vec<RecordBatch>),
    /// The streaming plan of `EXPLAIN`.
    Explain(String),
    /// `INSERT INTO`: a job now runs in the background.
    JobStarted(JobHandle),
    /// A plain `SELECT` over streams: rows arrive as windows fire.
    Stream {
        job: JobHandle,
        schema: SchemaRef,
        rows: mpsc::Receiver<RecordBatch>,
        /// The columns that identify a row (group columns and window) when a
        /// window can fire again (`ALLOWED LATENESS`, `EMIT EARLY`): a later
        /// row with the same key replaces the earlier, as a live view shows.
        key: Option<Vec<usize>>,
    },
}

/// A job ready to start, and the table its `LATE DATA INTO` created.
struct Planned {
    plan: StreamPlan,
    /// Tables `LATE DATA INTO` named without declaring them.
    created_tables: Vec<TableDef>,
}

/// One user's catalog, settings and jobs.
pub struct Session {
    ctx: SessionContext,
    catalog: Catalog,
    settings: Settings,
    /// `CREATE VIEW`s, expanded into the statements that read them.
    views: Views,
    /// The INSERTs of a `BEGIN STATEMENT SET;` not yet ended.
    statement_set: Option<Vec<ParsedStatement>>,
    /// The `STATE_TTL` hints of the statement being run (of every INSERT
    /// of a statement set being ended), for its jobs' planner.
    state_ttl: Vec<crate::hints::StateTtlHint>,
    /// Those hints are a statement set's: one may name another INSERT's
    /// tables.
    state_ttl_in_set: bool,
    jobs: Vec<JobHandle>,
    /// The jobs again, with their sources, for the `weir.*` tables and the
    /// metrics endpoint, which outlive a borrow of the session.
    system: Arc<Registry>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    pub fn new() -> Self {
        // Flink keeps an identifier's case and matches it exactly
        // (`dateTime` is not `datetime`), quoted or not; and it types a
        // literal with a point as an exact DECIMAL (`1.5` is DECIMAL(2, 1),
        // so `0.1 + 0.2` is 0.3), not a DOUBLE. NULL sorts as the lowest
        // value (Calcite's `NullCollation.LOW`, Flink's default): first
        // ascending, last descending — a Top-N by price DESC ranks NULL last.
        let config = datafusion::prelude::SessionConfig::new()
            .set_bool("datafusion.sql_parser.enable_ident_normalization", false)
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
            .set_str("datafusion.sql_parser.default_null_ordering", "nulls_min");
        let ctx = SessionContext::new_with_config(config);
        functions::register(&ctx);
        crate::time_zone::register(&ctx, &Default::default());
        // Flink's UNNEST forms (an ARRAY of ROWs, a MAP, WITH ORDINALITY).
        if let Err(e) = crate::planner::stream::unnest::register(&ctx) {
            tracing::warn!(error = %e, "Flink's UNNEST forms are not available");
        }
        let system = Arc::new(Registry::default());
        if let Err(e) = system::register(&ctx, &system) {
            // Only a clash with a schema of the same name can fail this.
            tracing::warn!(error = %e, "the weir.* system tables are not available");
        }
        Self {
            ctx,
            catalog: Catalog::default(),
            settings: Settings::default(),
            views: Views::default(),
            statement_set: None,
            state_ttl: Vec::new(),
            state_ttl_in_set: false,
            jobs: Vec::new(),
            system,
        }
    }

    /// The session's jobs as the system tables and the Prometheus
    /// endpoint see them.
    pub fn system(&self) -> Arc<Registry> {
        Arc::clone(&self.system)
    }

    /// Jobs started in this session, oldest first.
    pub fn jobs(&self) -> &[JobHandle] {
        &self.jobs
    }

    /// The tables declared so far, for the REPL's completion and `weir
    /// run`'s progress (how many rows a bounded source holds).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Refuses a statement beyond the session's limits
    /// (`table.planner.max-expression-depth`): checked by `execute`, and by
    /// front ends before they hand a statement to another planner.
    pub fn check_limits(&self, s: &ParsedStatement) -> Result<()> {
        crate::depth::check(&s.statement, self.settings.max_expression_depth(), s.start)
    }

    /// The DataFusion context the session's tables are registered in. A
    /// clone shares its state, so the pgwire server answers batch queries
    /// (memory tables, pg_catalog) from it without holding the session.
    pub fn context(&self) -> SessionContext {
        self.ctx.clone()
    }

    /// Does the query read a stream: a declared table that is not a memory
    /// table, or a window TVF? Tables Weir does not know (DataFusion's own,
    /// such as pg_catalog's) are not streams.
    pub fn reads_streams(&self, query: &Query) -> Result<bool> {
        let statement = DfStatement::Statement(Box::new(Statement::Query(Box::new(query.clone()))));
        let (tables, _) = resolve_table_references(&statement, false)?;
        let stream_table = tables.iter().any(|t| {
            !system::is_system(t.schema()) && self.catalog.get(t.table()).is_some_and(|def| def.connector.batch.is_none())
        });
        Ok(stream_table || count_table_functions(query) > 0)
    }

    /// Runs one statement. Error positions are those of the parsed script.
    ///
    /// A panic while planning or starting it (a bug, in Weir or a library)
    /// fails this statement only, as an internal error: the REPL, `weir run`
    /// and every pgwire connection go on.
    pub async fn execute(&mut self, s: &ParsedStatement) -> Result<Outcome> {
        self.check_limits(s)?;
        match AssertUnwindSafe(self.run(s)).catch_unwind().await {
            // An error with no place of its own (a refused setting, an
            // unknown job) points at its statement.
            Ok(outcome) => outcome.and_then(|o| self.shown(o)).map_err(|e| e.or_at(Some(s.start))),
            Err(panic) => {
                let message = crate::error::panic_message(panic.as_ref());
                tracing::error!(statement = %s.text, panic = %message, "a statement panicked");
                Err(SqlError::Panicked { message, position: Some(s.start) })
            }
        }
    }

    async fn run(&mut self, s: &ParsedStatement) -> Result<Outcome> {
        let text = s.text.as_str();
        self.state_ttl.clone_from(&s.state_ttl);
        self.state_ttl_in_set = false;
        if let Some(outcome) = self.collect_into_statement_set(s)? {
            return Ok(outcome);
        }
        if !s.hints.is_empty() {
            let (statement, copies) = self.hinted(&s.statement, &s.hints)?;
            let plain = ParsedStatement { statement, hints: Vec::new(), ..s.clone() };
            let outcome = Box::pin(self.run(&plain)).await;
            self.drop_hinted(copies);
            return outcome;
        }
        let statement = self.written_out(&s.statement)?;
        match statement.as_ref() {
            WeirStatement::CreateTable(ct) => {
                // A name qualified with another catalog or database is refused.
                crate::catalog::names::table_part(&ct.name)?;
                let state = self.ctx.state();
                let merged = match &ct.like {
                    None => None,
                    Some(like) => {
                        let name = table_name(&like.source);
                        let source = self.catalog.get(&name).ok_or_else(|| SqlError::unknown_table(name.clone(), like.position))?;
                        let declared = source.declared.as_ref().ok_or_else(|| {
                            SqlError::plan(format!("table '{name}' was not declared by CREATE TABLE: nothing to be LIKE"), like.position)
                        })?;
                        Some(crate::planner::table_like::merge(ct, like, declared)?)
                    }
                };
                let table = create_table(&state, merged.as_ref().unwrap_or(ct), text, &self.settings)?;
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
                self.register(table)?;
                Ok(Outcome::Done(format!("Table '{name}' created.")))
            }
            WeirStatement::CreateTableAs { create, query, replace } => {
                self.create_table_as(create, query, *replace, s).await
            }
            WeirStatement::DropTable { name, if_exists } => {
                let n = crate::catalog::names::table_part(name)?;
                if self.catalog.remove(&n).is_none() {
                    if *if_exists {
                        return Ok(Outcome::Done(format!("Table '{n}' does not exist.")));
                    }
                    return Err(SqlError::unknown_table(n, position_of(name)));
                }
                self.ctx.deregister_table(TableReference::bare(n.as_str()))?;
                Ok(Outcome::Done(format!("Table '{n}' dropped.")))
            }
            WeirStatement::Set { key: Some(k), value: Some(v) } => {
                let no_effect = self.settings.set(k, v)?;
                if k == crate::settings::LOCAL_TIME_ZONE {
                    crate::time_zone::register(&self.ctx, &self.settings.local_zone());
                }
                Ok(Outcome::Done(match no_effect {
                    Some(why) => format!("'{k}' set to '{v}' (no effect: {why})."),
                    None => format!("'{k}' set to '{v}'."),
                }))
            }
            WeirStatement::Set { .. } => {
                let (keys, values): (Vec<String>, Vec<String>) = self.settings.all().into_iter().unzip();
                Ok(Outcome::Table(vec![string_table(results::settings(), vec![keys, values])]))
            }
            WeirStatement::Reset { key } => {
                self.settings.reset(key.as_deref())?;
                crate::time_zone::register(&self.ctx, &self.settings.local_zone());
                Ok(Outcome::Done(match key {
                    Some(k) => format!("'{k}' reset."),
                    None => "All settings reset.".into(),
                }))
            }
            WeirStatement::CreateView { name, columns, query, if_not_exists } => {
                self.create_view(name, columns, query, *if_not_exists, text)
            }
            WeirStatement::DropView { name, if_exists } => self.drop_view(name, *if_exists),
            WeirStatement::StatementSet(inserts) => self.run_statement_set(inserts, text).await,
            WeirStatement::EndStatementSet => self.end_statement_set().await,
            WeirStatement::BeginStatementSet => {
                Err(SqlError::plan("a statement set is already open: END it first", None))
            }
            WeirStatement::Show(show) => self.show(show).await,
            WeirStatement::Catalog(c) => self.catalog_statement(c),
            WeirStatement::AlterTable(alter) => self.alter_table(alter),
            WeirStatement::AlterView(alter) => self.alter_view(alter),
            WeirStatement::Describe { name } => self.describe(name).await,
            WeirStatement::ShowJobs => Ok(Outcome::Table(vec![self.show_jobs()])),
            WeirStatement::StopJob { id, savepoint } => {
                let job = self
                    .jobs
                    .iter()
                    .find(|j| j.id == *id)
                    .ok_or_else(|| SqlError::plan(format!("no job with id '{id}'"), None))?;
                if job.status().is_done() {
                    return Err(SqlError::plan(format!("job '{id}' has already ended ({:?})", job.status()), None));
                }
                let mut message = format!("Job '{id}' stopped.");
                if *savepoint {
                    let dir = self.settings.savepoints_dir().unwrap_or_else(|| {
                        weir_engine::checkpoint::store::Location::Local(self.settings.state_dir().join("savepoints"))
                    });
                    let target = dir.join(&format!("{id}-{}", weir_engine::message::now_ms()));
                    let checkpoint = job.savepoint(&target.to_path_buf()).await?;
                    let shown = match target {
                        weir_engine::checkpoint::store::Location::Local(path) => {
                            std::path::absolute(&path).unwrap_or(path).display().to_string()
                        }
                        url => url.to_string(),
                    };
                    message = format!("Job '{id}' stopped with savepoint '{shown}' (checkpoint {checkpoint}).");
                }
                job.cancel();
                job.wait().await;
                Ok(Outcome::Done(message))
            }
            WeirStatement::Explain(inner) => {
                let planned = match inner.as_ref() {
                    WeirStatement::Insert { table, query, clauses, .. } => {
                        self.plan_insert(table, query, clauses).await?
                    }
                    WeirStatement::Query { query, clauses } => {
                        if self.reads_memory_tables(query)? {
                            return Err(SqlError::unsupported("EXPLAIN of a query over memory tables", None));
                        }
                        self.plan_select(query, clauses).await?.0
                    }
                    WeirStatement::StatementSet(inserts) => self.plan_statement_set(inserts).await?.0,
                    _ => return Err(SqlError::unsupported("EXPLAIN of this statement", None)),
                };
                Ok(Outcome::Explain(crate::planner::stream::uid::apply_uids(planned.plan, text)?.to_string()))
            }
            WeirStatement::Insert { table, query, clauses, .. } => {
                let planned = self.plan_insert(table, query, clauses).await?;
                // The views it reads belong to the job as its tables do.
                let identity = format!("{text}{}", self.view_ddls(&s.statement));
                let handle = self.start(planned, &identity, true)?;
                if self.settings.dml_sync() {
                    return match handle.wait().await {
                        JobStatus::Finished => Ok(Outcome::Done(format!("Job '{}' finished.", handle.id))),
                        JobStatus::Failed(why) => Err(SqlError::Engine(EngineError::Task {
                            task: format!("job {}", handle.id),
                            message: why.message,
                            kind: why.kind,
                        })),
                        other => Ok(Outcome::Done(format!("Job '{}' ended: {other:?}.", handle.id))),
                    };
                }
                Ok(Outcome::JobStarted(handle))
            }
            WeirStatement::Query { query, clauses } => {
                if self.reads_memory_tables(query)? {
                    if !clauses.is_empty() {
                        return Err(SqlError::plan("a query over memory tables takes no window clauses", clauses.position));
                    }
                    return self.batch_query(query).await;
                }
                let (planned, schema, rows) = self.plan_select(query, clauses).await?;
                let key = planned.plan.stages.iter().find_map(|s| s.sink.as_ref()?.upsert_key.clone());
                let handle = self.start(planned, text, false)?;
                Ok(Outcome::Stream { job: handle, schema, rows, key })
            }
            WeirStatement::CreateMaterializedView { name, query, clauses } => {
                let n = table_name(name);
                if self.catalog.get(&n).is_some() {
                    return Err(SqlError::plan(format!("table '{n}' already exists"), position_of(name)));
                }
                if self.reads_memory_tables(query)? {
                    return Err(SqlError::unsupported(
                        "a materialized view of memory tables (query them directly)",
                        position_of(name),
                    ));
                }
                let view = self.view_table(&n, query, text).await?;
                let connector = view.connector.sink.clone().expect("a memory table can be written");
                let sink = SinkPlan {
                    table: n,
                    connector,
                    upsert_key: None,
                };
                let planned = self.plan_job(query, clauses, sink, None).await?;
                // The view's rows live in this process only, so a checkpoint
                // could not bring them back: the job is not durable and
                // starts afresh each time.
                let handle = self.start(planned, text, false)?;
                self.register(view)?;
                Ok(Outcome::JobStarted(handle))
            }
        }
    }

    /// The memory table of a materialized view: the query's columns, all
    /// nullable (an aggregate over no rows, an outer join). The job's sink
    /// makes it an upsert table by the query's key.
    async fn view_table(&self, name: &str, query: &Query, text: &str) -> Result<TableDef> {
        let (logical, _) = self.logical_plan(query).await?;
        let fields: Vec<Field> = logical
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        Ok(TableDef::memory(name, text.to_string(), Arc::new(Schema::new(fields))))
    }

    /// Adds a table to the catalog and to DataFusion's: memory tables with
    /// their rows, streams as empty tables (for names and types only).
    fn register(&mut self, table: TableDef) -> Result<()> {
        let provider: Arc<dyn TableProvider> = match &table.connector.batch {
            Some(p) => Arc::clone(p),
            None => Arc::new(EmptyTable::new(Arc::clone(&table.schema))),
        };
        // As written (`bare`): Flink matches names exactly, and DataFusion's
        // parse of a name would fold its case.
        self.ctx.register_table(TableReference::bare(table.name.as_str()), provider)?;
        self.catalog.insert(table);
        Ok(())
    }

    /// Does the query read memory tables, or no table at all (run at once,
    /// as a batch query), rather than streams? Mixing both is an error.
    fn reads_memory_tables(&self, query: &Query) -> Result<bool> {
        let statement = DfStatement::Statement(Box::new(Statement::Query(Box::new(query.clone()))));
        let (tables, _) = resolve_table_references(&statement, false)?;
        let mut memory = 0;
        let mut streams = 0;
        for t in &tables {
            if system::is_system(t.schema()) || system::is_system_function(t.schema(), t.table()) {
                memory += 1;
                continue;
            }
            match self.catalog.get(t.table()) {
                Some(def) if def.connector.batch.is_some() => memory += 1,
                _ => streams += 1,
            }
        }
        streams += count_table_functions(query);
        if memory > 0 && streams > 0 {
            return Err(SqlError::unsupported("a query over both memory tables and streams", None));
        }
        Ok(streams == 0)
    }

    /// A plain query over memory tables: DataFusion runs it at once.
    async fn batch_query(&self, query: &Query) -> Result<Outcome> {
        let state = self.ctx.state();
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(Box::new(query.clone())))))
            .await?;
        // Analysed first, so that implicit casts are there to localise.
        let plan = state.analyzer().execute_and_check(plan, state.config_options(), |_, _| {})?;
        let plan = self.localize(plan)?;
        let batches = self.ctx.execute_logical_plan(plan).await?.collect().await?;
        Ok(Outcome::Table(batches))
    }

}

/// Table functions in FROM (window TVFs read streams).
fn count_table_functions(query: &Query) -> usize {
    struct Count(usize);
    impl Visitor for Count {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
            if matches!(t, TableFactor::TableFunction { .. }) {
                self.0 += 1;
            }
            ControlFlow::Continue(())
        }
    }
    let mut c = Count(0);
    let _ = query.visit(&mut c);
    c.0
}

fn table_name(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(normalize)
        .unwrap_or_default()
}

fn string_table(schema: SchemaRef, columns: Vec<Vec<String>>) -> RecordBatch {
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
        .collect();
    RecordBatch::try_new(schema, arrays).expect("columns match the schema")
}

