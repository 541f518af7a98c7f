//! A session: the catalog, the settings and the jobs of one user, and the
//! execution of their statements. The REPL, `weir run` and the pgwire
//! server (`weir serve`) are front doors over it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::catalog::empty::EmptyTable;
use datafusion::sql::resolve::resolve_table_references;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, Query, Statement, TableFactor, Visit, Visitor};
use std::ops::ControlFlow;
use tokio::sync::mpsc;
use futures::FutureExt;
use weir_engine::plan::{SinkPlan, StageInput, StreamPlan};
use weir_engine::EngineError;
use weir_engine::checkpoint::coordinator::CheckpointConfig;
use weir_engine::runtime::job::{self, Durability, JobHandle, JobStatus};

use crate::catalog::{Catalog, TableDef};
use crate::collect::CollectSink;
use crate::error::{Result, SqlError};
use crate::functions;
use crate::planner::stream::{LateClauses, LateTarget, StreamPlanner};
use crate::planner::table::{create_table, normalize};
use crate::planner::validate::check_streaming_query;
use crate::planner::window_tvf;
use crate::results;
use crate::settings::Settings;
use crate::system::{self, JobEntry, Registry};
use crate::script::ParsedStatement;
use crate::statement::{WeirStatement, WindowClauses, position_of};
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

    /// Starts a planned job and adopts the table it created, if any. An
    /// `INSERT` job is durable: its id derives from its statement, so
    /// running it again (after a crash, at any parallelism) finds its state
    /// under `state.dir` and resumes from its latest checkpoint.
    fn start(&mut self, mut planned: Planned, text: &str, durable: bool) -> Result<JobHandle> {
        planned.plan = crate::planner::stream::uid::apply_uids(planned.plan, text)?;
        let (id, durability) = if durable {
            // The tables' definitions belong to the job: the same statement
            // over another topic or path is another job, not a resumption.
            let mut identity = text.to_string();
            for table in planned.plan.tables() {
                if let Some(def) = self.catalog.get(table) {
                    identity.push('\n');
                    identity.push_str(&def.ddl);
                }
            }
            let id = stable_job_id(&identity);
            if self.jobs.iter().any(|j| j.id == id && !j.status().is_done()) {
                return Err(SqlError::plan(format!("this statement already runs as job '{id}'"), None));
            }
            let durability = match self.settings.checkpointing() {
                Some((interval, timeout, min_pause)) => {
                    Some(Durability {
                        config: CheckpointConfig {
                            interval,
                            timeout,
                            min_pause,
                            mode: self.settings.checkpoint_mode(),
                        },
                        dir: self.settings.state_dir().join(&id),
                        savepoint: self.settings.savepoint_path(),
                        checkpoints: self.settings.checkpoints_dir(),
                        allow_fresh_start: self.settings.allow_fresh_start(),
                        restart: self.settings.restart_strategy(),
                        ignore_unclaimed_state: self.settings.ignore_unclaimed_state(),
                    })
                }
                None => None,
            };
            (id, durability)
        } else {
            (new_job_id(), None)
        };
        let sources = planned
            .plan
            .stages
            .iter()
            .filter_map(|s| match &s.input {
                StageInput::Source(src) => Some((src.table.clone(), Arc::clone(&src.connector))),
                _ => None,
            })
            .collect();
        let handle = job::start(planned.plan, id, text.to_string(), durability)?;
        self.system.add(JobEntry { handle: handle.clone(), sources });
        for table in planned.created_tables {
            self.register(table)?;
        }
        self.jobs.push(handle.clone());
        Ok(handle)
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
            if system::is_system(t.schema()) {
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

    async fn plan_insert(&self, table: &ObjectName, query: &Query, clauses: &WindowClauses) -> Result<Planned> {
        let name = crate::catalog::names::table_part(table)?;
        let def = self.catalog.get(&name).ok_or_else(|| match self.views.get(&name) {
            // As in Flink, a view is read, never written.
            Some(_) => SqlError::plan(format!("'{name}' is a view: INSERT INTO a table"), position_of(table)),
            None => SqlError::unknown_table(name.clone(), position_of(table)),
        })?;
        let connector = def.connector.sink.clone().ok_or_else(|| {
            SqlError::plan(
                format!(
                    "table '{name}' cannot be written: connector '{}' is a source only",
                    def.connector.connector
                ),
                position_of(table),
            )
        })?;
        let sink = SinkPlan {
            table: name,
            connector,
            upsert_key: None,
        };
        let declared = Arc::clone(&def.schema);
        self.plan_job(query, clauses, sink, Some(&declared)).await
    }

    async fn plan_select(
        &self,
        query: &Query,
        clauses: &WindowClauses,
    ) -> Result<(Planned, SchemaRef, mpsc::Receiver<RecordBatch>)> {
        let schema = {
            let (logical, _) = self.logical_plan(query).await?;
            Arc::new(logical.schema().as_arrow().clone())
        };
        let (collect, rows) = CollectSink::new(Arc::clone(&schema));
        let sink = SinkPlan {
            table: "client".into(),
            connector: Arc::new(collect),
            upsert_key: None,
        };
        Ok((self.plan_job(query, clauses, sink, None).await?, schema, rows))
    }

    /// Plans a job of `query` into `sink`; `declared` is the sink table's
    /// schema as declared, whose instants and wall-clock times the query's
    /// are converted to in the session's zone.
    async fn plan_job(
        &self,
        query: &Query,
        clauses: &WindowClauses,
        sink: SinkPlan,
        declared: Option<&SchemaRef>,
    ) -> Result<Planned> {
        let (logical, windows) = self.logical_plan(query).await?;
        let logical = match declared {
            Some(d) => self.to_declared_times(logical, d)?,
            None => logical,
        };
        let state = self.ctx.state();
        let mut planner = StreamPlanner::new(&state, &self.catalog, &windows, &self.settings);
        planner.join_position = crate::planner::validate::first_join(query);
        planner.state_ttl.set_hints(&self.state_ttl, !self.state_ttl_in_set);
        if !clauses.is_empty() {
            planner = planner.with_clauses(self.resolve_clauses(clauses)?);
        }
        // What the planner cannot place more precisely is at the query.
        let (plan, created_table) = planner
            .plan_into_sink(&logical, sink)
            .map_err(|e| e.or_at(position_of(query)))?;
        Ok(Planned { plan, created_tables: created_table.into_iter().collect() })
    }

    fn resolve_clauses(&self, c: &WindowClauses) -> Result<LateClauses> {
        let emit_early = match &c.emit_early {
            Some(e) => {
                let ms = window_tvf::interval_ms(e, &self.ctx.state())?;
                if ms <= 0 {
                    return Err(SqlError::plan("EMIT EARLY EVERY needs a positive interval", position_of(e)));
                }
                Some(std::time::Duration::from_millis(ms as u64))
            }
            None => None,
        };
        let allowed_lateness = match &c.allowed_lateness {
            Some(e) => window_tvf::interval_ms(e, &self.ctx.state())?,
            None => 0,
        };
        if allowed_lateness < 0 {
            return Err(SqlError::plan("ALLOWED LATENESS must not be negative", c.position));
        }
        let late_data_into = c.late_data_into.as_ref().map(|name| {
            let n = table_name(name);
            match self.catalog.get(&n) {
                Some(def) => LateTarget::Declared(Arc::clone(def)),
                None => LateTarget::New(n),
            }
        });
        Ok(LateClauses {
            allowed_lateness,
            emit_early,
            late_data_into,
            position: c.position,
        })
    }

    /// DataFusion's analysed logical plan of a streaming query, and the
    /// window relations it reads.
    async fn logical_plan(
        &self,
        query: &Query,
    ) -> Result<(LogicalPlan, std::collections::HashMap<String, window_tvf::WindowRelation>)> {
        check_streaming_query(query)?;
        // DataFusion's errors that name no place are at the query.
        let at = |e: datafusion::error::DataFusionError| SqlError::from(e).or_at(position_of(query));
        let mut query = query.clone();
        let state = self.ctx.state();
        let twins = crate::planner::lookup::rewrite(&mut query, &self.catalog)?;
        // Views windowed by a TVF are planned first: the TVF windows their
        // rows, and their own TVFs' relations join this query's.
        let mut windows = std::collections::HashMap::new();
        let mut views = std::collections::HashMap::new();
        for (name, view_query) in self.views.windowed(&query)? {
            let (plan, inner) = Box::pin(self.logical_plan(&view_query)).await?;
            windows.extend(inner);
            views.insert(name, Arc::new(plan));
        }
        let zone = self.settings.local_zone();
        let inputs = window_tvf::Inputs { catalog: &self.catalog, views: &views, zone: &zone };
        windows.extend(window_tvf::rewrite(&mut query, &inputs, &state)?);
        // MATCH_RECOGNIZE inputs are planned first, as views under a TVF.
        let mut matches = Vec::new();
        for pending in crate::planner::match_recognize::rewrite(&mut query)? {
            let (input, inner) = Box::pin(self.logical_plan(&pending.input)).await?;
            windows.extend(inner);
            matches.push(pending.plan(input, &state)?);
        }
        for m in &matches {
            self.ctx.register_table(TableReference::bare(m.name.as_str()), crate::planner::match_recognize::table(m))?;
        }
        // The relations standing for TVF calls exist only while this query
        // is planned.
        for rel in windows.values() {
            self.ctx
                .register_table(TableReference::bare(rel.name.as_str()), Arc::new(EmptyTable::new(Arc::clone(&rel.schema))))?;
        }
        let twin_names: Vec<String> =
            twins.iter().map(|t| format!("{}{}", crate::planner::lookup::LOOKUP_TWIN, t.name)).collect();
        for (twin, name) in twins.iter().zip(&twin_names) {
            if let Some(lookup) = &twin.connector.lookup {
                self.ctx.register_table(TableReference::bare(name.as_str()), Arc::new(EmptyTable::new(lookup.schema())))?;
            }
        }
        let plan = match crate::planner::set_operations::rewrite(&mut query, &state).await {
            Ok(()) => Ok(state.statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(Box::new(query))))).await),
            Err(e) => Err(e),
        };
        for rel in windows.values() {
            self.ctx.deregister_table(TableReference::bare(rel.name.as_str()))?;
        }
        for name in &twin_names {
            self.ctx.deregister_table(TableReference::bare(name.as_str()))?;
        }
        for m in &matches {
            self.ctx.deregister_table(TableReference::bare(m.name.as_str()))?;
        }
        let plan = plan?;
        let plan = state
            .analyzer()
            .execute_and_check(plan.map_err(at)?, state.config_options(), |_, _| {})
            .map_err(at)?;
        let plan = self.localize(plan)?;
        let plan = crate::planner::optimize::optimize(plan, &state).map_err(at)?;
        Ok((plan, windows))
    }

    fn show_jobs(&self) -> RecordBatch {
        let mut ids = Vec::new();
        let mut status = Vec::new();
        let mut statements = Vec::new();
        let mut rows_out = Vec::new();
        let mut rows_in = Vec::new();
        let mut late = Vec::new();
        let mut watermarks = Vec::new();
        for j in &self.jobs {
            ids.push(j.id.clone());
            status.push(format!("{:?}", j.status()));
            statements.push(j.statement.clone());
            let t = j.metrics.totals();
            rows_out.push(t.rows_to_sinks);
            rows_in.push(t.rows_from_sources);
            watermarks.push(j.metrics.watermark());
            late.push(t.late_rows + t.invalid_time_rows + t.decode_errors + t.expired_state_rows);
        }
        let schema = results::jobs();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(status)),
            Arc::new(UInt64Array::from(rows_out)),
            Arc::new(UInt64Array::from(rows_in)),
            Arc::new(UInt64Array::from(late)),
            Arc::new(TimestampMillisecondArray::from(watermarks)),
            Arc::new(StringArray::from(statements)),
        ];
        RecordBatch::try_new(schema, columns).expect("columns match the schema")
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

/// The id of a durable job: the same statement over the same table
/// definitions gets the same id (FNV-1a), hence the same state and
/// part-file names when it runs again — at any parallelism, since state is
/// kept by key group.
fn stable_job_id(statement: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in statement.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
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

