//! Which engine answers a client's statement.
//!
//! Weir's statements (DDL, `INSERT INTO`, `SET 'k' = 'v'`, `SHOW JOBS`,
//! `STOP JOB`, `CREATE MATERIALIZED VIEW`, …) run in the shared [`Session`],
//! as in the REPL. Everything else — `SELECT`s over memory tables and
//! views, pg_catalog and information_schema, a client's own `SET`, `SHOW`,
//! `BEGIN` — goes to datafusion-postgres's [`DfSessionService`] over the
//! session's DataFusion context. A `SELECT` over streams never ends, so it
//! is refused with a hint to materialize it.
//!
//! Parsing, and Weir's statements (which plan as they run), happen on
//! blocking threads, never on the runtime's workers that every connection
//! and job shares; each message is held to the server's [`Limits`].

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_postgres::arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{FieldInfo, Response};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{ClientInfo, ClientPortalStore, Type};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::pgwire::types::format::FormatOptions;
use datafusion_postgres::{DfSessionService, Parser};
use futures::{Sink, SinkExt};
use tokio::runtime::Handle;
use tokio::sync::Mutex;
use weir_sql::{Outcome, ParsedStatement, Session, WeirStatement, parse_script};

use super::errors::{QueryError, refine};
use super::limits::Limits;
use super::persist::Store;
use super::response::answer;
use super::result_rows;

/// A prepared statement as datafusion-postgres keeps it: the SQL and, for
/// DataFusion's statements, their parsed form and plan. Weir's own are
/// stored without a plan (`(sql, None)`), which DataFusion never does.
type Prepared = <DfSessionService as ExtendedQueryHandler>::Statement;

/// Where a statement runs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Weir,
    DataFusion,
}

/// A client's SQL text, split.
pub(crate) enum Script {
    /// Statements Weir's parser takes (some of them still DataFusion's).
    Weir(Vec<ParsedStatement>),
    /// Text only PostgreSQL's dialect parses (`SET TIME ZONE 'UTC'`,
    /// `BEGIN`, `SHOW search_path`, `DECLARE … CURSOR`): all DataFusion's.
    Postgres,
}

/// Decides, for the simple and the extended protocol alike, where
/// statements run.
pub struct Router {
    session: Arc<Mutex<Session>>,
    postgres: Arc<PostgresCompatibilityParser>,
    limits: Arc<Limits>,
    /// The catalog that outlives the server, if it keeps one.
    store: Option<Arc<Store>>,
}

impl Router {
    pub fn new(session: Arc<Mutex<Session>>, limits: Arc<Limits>, store: Option<Arc<Store>>) -> Self {
        Self { session, postgres: Arc::new(PostgresCompatibilityParser::new()), limits, store }
    }

    /// What one client may ask of the server.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Weir's statements if Weir parses `sql`; else the text is a Postgres
    /// client's if PostgreSQL's dialect parses it; else Weir's error. Text
    /// beyond the limits is refused before it is parsed; the parse runs on
    /// a blocking thread.
    pub(crate) async fn split(&self, sql: &str) -> PgWireResult<Script> {
        self.limits.check_statement_bytes(sql)?;
        self.limits.check_separators(sql)?;
        let text = sql.to_string();
        let postgres = Arc::clone(&self.postgres);
        let (script, count) = tokio::task::spawn_blocking(move || match parse_script(&text) {
            Ok(statements) => {
                let count = statements.len();
                Ok((Script::Weir(statements), count))
            }
            Err(e) => match postgres.parse(&text) {
                Ok(statements) => Ok((Script::Postgres, statements.len())),
                Err(_) => Err(QueryError::from(e)),
            },
        })
        .await
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?
        .map_err(|e| e.into_pg_error(sql))?;
        self.limits.check_statements(count)?;
        Ok(script)
    }

    /// Refuses a statement beyond the session's limits (how deep it nests)
    /// before any planner, Weir's or DataFusion's, walks it.
    pub(crate) async fn check(&self, s: &ParsedStatement) -> Result<(), QueryError> {
        Ok(self.session.lock().await.check_limits(s)?)
    }

    /// Where a statement Weir parsed runs. `SET`/`RESET` of a key without a
    /// dot are a client's settings (`extra_float_digits`, `search_path`):
    /// every Weir setting is a dotted Flink key.
    pub(crate) async fn route(&self, statement: &WeirStatement) -> Result<Route, QueryError> {
        match statement {
            WeirStatement::Query { query, .. } => {
                let session = self.session.lock().await;
                if session.reads_views(query) {
                    // DataFusion alone knows no views: Weir expands them.
                    // (A view over a stream then fails as a streaming
                    // SELECT does, naming the alternative.)
                    Ok(Route::Weir)
                } else if session.reads_streams(query)? {
                    Err(QueryError::StreamingSelect)
                } else {
                    Ok(Route::DataFusion)
                }
            }
            WeirStatement::Explain(inner) => match inner.as_ref() {
                WeirStatement::Query { query, .. } if !self.session.lock().await.reads_streams(query)? => {
                    Ok(Route::DataFusion)
                }
                _ => Ok(Route::Weir),
            },
            WeirStatement::Set { key: Some(key), .. } | WeirStatement::Reset { key: Some(key) }
                if !key.contains('.') =>
            {
                Ok(Route::DataFusion)
            }
            _ => Ok(Route::Weir),
        }
    }

    /// Runs one of Weir's statements; its message, if any, goes to the
    /// client as a notice. Rows are encoded in `format`.
    async fn execute<C>(
        &self,
        client: &mut C,
        s: &ParsedStatement,
        sql: &str,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let outcome = self.run(s).await?.map_err(|e| QueryError::from(e).into_pg_error(sql))?;
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let answer = answer(&s.statement, outcome, format, options)?;
        if let Some(message) = answer.notice {
            let notice = ErrorInfo::new("NOTICE".into(), "00000".into(), message);
            client.feed(PgWireBackendMessage::NoticeResponse(notice.into())).await?;
        }
        Ok(answer.response)
    }

    /// Runs `s` in the session on a blocking thread: planning is CPU work
    /// the runtime's workers must not wait on. Once started it runs to its
    /// end even if the client stops waiting (a cancel, the statement
    /// timeout, a client that leaves): Weir's statements change the session
    /// and the jobs, which cannot be left half done.
    pub(crate) async fn run(&self, s: &ParsedStatement) -> PgWireResult<weir_sql::error::Result<Outcome>> {
        let session = Arc::clone(&self.session);
        let store = self.store.clone();
        let statement = s.clone();
        let runtime = Handle::current();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(async {
                let mut session = session.lock().await;
                match &store {
                    Some(store) => store.execute(&mut session, &statement).await,
                    None => session.execute(&statement).await,
                }
            })
        })
        .await
        .map_err(|e| PgWireError::ApiError(Box::new(e)))
    }
}

/// The query handler of every connection.
pub struct WeirHandler {
    router: Arc<Router>,
    datafusion: Arc<DfSessionService>,
    parser: Arc<WeirQueryParser>,
}

impl WeirHandler {
    /// Weir's statements run in `session`, the others in `datafusion`
    /// (built over the session's context), within `limits`; what they
    /// change is kept in `store`.
    pub fn new(
        session: Arc<Mutex<Session>>,
        datafusion: Arc<DfSessionService>,
        limits: Arc<Limits>,
        store: Option<Arc<Store>>,
    ) -> Self {
        let router = Arc::new(Router::new(session, limits, store));
        let parser = Arc::new(WeirQueryParser { router: Arc::clone(&router), datafusion: datafusion.query_parser() });
        Self { router, datafusion, parser }
    }

    /// One statement of a simple query: its responses, or the error that
    /// stops the rest of the query.
    async fn simple<C>(&self, client: &mut C, s: &ParsedStatement, sql: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.router.check(s).await.map_err(|e| e.into_pg_error(sql))?;
        let responses = match self.router.route(&s.statement).await.map_err(|e| e.into_pg_error(sql))? {
            Route::DataFusion => {
                let text = with_system_functions_renamed(s).unwrap_or_else(|| s.text.clone());
                off_the_workers(SimpleQueryHandler::do_query(self.datafusion.as_ref(), client, &text))?
            }
            Route::Weir => vec![self.router.execute(client, s, sql, &Format::UnifiedText).await?],
        };
        Ok(responses.into_iter().map(|r| self.at_most_rows(r)).collect())
    }

    /// `response`, refused past the rows one query may send without a
    /// cursor.
    fn at_most_rows(&self, response: Response) -> Response {
        let limits = Arc::clone(&self.router.limits);
        result_rows::at_most(response, limits.max_result_rows, move || limits.too_many_rows())
    }
}

#[async_trait]
impl SimpleQueryHandler for WeirHandler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        failpoint(query);
        let statements = match self.router.split(query).await? {
            Script::Postgres => {
                let responses = off_the_workers(SimpleQueryHandler::do_query(self.datafusion.as_ref(), client, query))?;
                return Ok(responses.into_iter().map(|r| self.at_most_rows(r)).collect());
            }
            Script::Weir(statements) => statements,
        };
        let mut responses = Vec::with_capacity(statements.len());
        for s in &statements {
            match self.simple(client, s, query).await {
                Ok(r) => responses.extend(r),
                // As in PostgreSQL, the statements after a failed one do
                // not run; the ones before it did, and keep their results.
                Err(e) => {
                    responses.push(Response::Error(Box::new(ErrorInfo::from(refine(e)))));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for WeirHandler {
    type Statement = Prepared;
    type QueryParser = WeirQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let response = match &portal.statement.statement {
            (sql, None) => {
                // One of Weir's statements, checked when it was parsed.
                let Script::Weir(statements) = self.router.split(sql).await? else {
                    return Ok(Response::EmptyQuery);
                };
                let Some(s) = statements.first() else {
                    return Ok(Response::EmptyQuery);
                };
                self.router.execute(client, s, sql, &portal.result_column_format).await?
            }
            _ => off_the_workers(ExtendedQueryHandler::do_query(self.datafusion.as_ref(), client, portal, max_rows))?,
        };
        // An Execute that asks for some rows at a time reads a portal as a
        // cursor: only one that asks for all of them is bounded.
        Ok(if max_rows == 0 { self.at_most_rows(response) } else { response })
    }
}

/// The text of `s` for DataFusion's front end when `s` calls a system
/// table function as `weir.<function>(…)`: that front end drops a table
/// function's schema before DataFusion plans the call, so the session's
/// renaming of such calls (`weir_sql::system::rename_calls`, which its
/// planner applies in the REPL and `weir run`) is applied first. `None`
/// when there is no such call: the text goes as the client wrote it.
fn with_system_functions_renamed(s: &ParsedStatement) -> Option<String> {
    let WeirStatement::Query { query, .. } = &s.statement else { return None };
    let mut query = query.clone();
    weir_sql::system::rename_calls(&mut query).then(|| query.to_string())
}

/// Runs `work` — DataFusion's parsing and planning of a query, inside
/// datafusion-postgres, which Weir cannot split from it — after handing
/// this worker thread back to the runtime: a long plan then stalls neither
/// other connections nor jobs, as Weir's own statements already run on the
/// blocking pool.
fn off_the_workers<F: std::future::Future>(work: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(work))
}

/// The point `weir::pgwire::query` (see `weir_engine::failpoints`):
/// answering a simple query whose text holds the point's value panics, so
/// that tests can check that a panic fails that statement alone.
fn failpoint(query: &str) {
    let victim = || -> Option<String> {
        fail::fail_point!("weir::pgwire::query", |victim| victim);
        None
    };
    if victim().is_some_and(|v| query.contains(&v)) {
        panic!("failpoint weir::pgwire::query: a panic injected into answering a query");
    }
}

/// Parses the extended protocol's statements: Weir's that answer with a
/// command tag are kept for Weir to run; DataFusion's are parsed and
/// planned by datafusion-postgres.
pub struct WeirQueryParser {
    router: Arc<Router>,
    datafusion: Arc<Parser>,
}

#[async_trait]
impl QueryParser for WeirQueryParser {
    type Statement = Prepared;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let refuse = |e: QueryError| e.into_pg_error(sql);
        let Script::Weir(statements) = self.router.split(sql).await? else {
            return off_the_workers(self.datafusion.parse_sql(client, sql, types));
        };
        // No statement, or several: DataFusion's parser answers (an empty
        // query; several statements are refused, as by PostgreSQL).
        let [s] = statements.as_slice() else {
            return off_the_workers(self.datafusion.parse_sql(client, sql, types));
        };
        self.router.check(s).await.map_err(refuse)?;
        match self.router.route(&s.statement).await.map_err(refuse)? {
            Route::DataFusion => {
                let text = with_system_functions_renamed(s);
                off_the_workers(self.datafusion.parse_sql(client, text.as_deref().unwrap_or(sql), types))
            }
            Route::Weir => Ok(Some((sql.to_string(), None))),
        }
    }

    fn get_parameter_types(&self, statement: &Self::Statement) -> PgWireResult<Vec<Type>> {
        match statement {
            (_, None) => Ok(Vec::new()),
            _ => self.datafusion.get_parameter_types(statement),
        }
    }

    /// A Weir statement's columns are fixed (`weir_sql::results`), so a
    /// client can have them described before it runs the statement.
    fn get_result_schema(&self, statement: &Self::Statement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        let (sql, None) = statement else {
            return self.datafusion.get_result_schema(statement, format);
        };
        let parsed = parse_script(sql).map_err(|e| QueryError::from(e).into_pg_error(sql))?;
        match parsed.first().and_then(|s| weir_sql::results::of(&s.statement)) {
            Some(schema) => arrow_schema_to_pg_fields(&schema, format.unwrap_or(&Format::UnifiedText), None),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn router() -> Router {
        let mut session = Session::new();
        let ddl =
            "CREATE TABLE src (k VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen')";
        for s in parse_script(ddl).unwrap() {
            session.execute(&s).await.unwrap();
        }
        Router::new(Arc::new(Mutex::new(session)), Arc::default(), None)
    }

    async fn route(router: &Router, sql: &str) -> Result<Route, QueryError> {
        let Ok(Script::Weir(statements)) = router.split(sql).await else { panic!("{sql}: not Weir's") };
        router.route(&statements[0].statement).await
    }

    #[tokio::test]
    async fn statements_go_where_they_can_be_answered() {
        let r = router().await;
        for sql in ["SELECT 1", "SELECT * FROM pg_catalog.pg_class", "SET extra_float_digits = 3", "EXPLAIN SELECT 1"] {
            assert_eq!(route(&r, sql).await.unwrap(), Route::DataFusion, "{sql}");
        }
        for sql in [
            "SET 'parallelism.default' = '2'",
            "RESET 'state.dir'",
            "SET",
            "SHOW JOBS",
            "CREATE MATERIALIZED VIEW v AS SELECT k FROM src",
            "EXPLAIN SELECT k FROM src",
        ] {
            assert_eq!(route(&r, sql).await.unwrap(), Route::Weir, "{sql}");
        }
        let tumble = "SELECT count(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end";
        for sql in ["SELECT * FROM src", tumble] {
            assert!(matches!(route(&r, sql).await, Err(QueryError::StreamingSelect)), "{sql}");
        }
        // PostgreSQL's own statements, which Weir's parser does not take.
        for sql in ["SET TIME ZONE 'UTC'", "BEGIN", "SHOW search_path"] {
            assert!(matches!(r.split(sql).await, Ok(Script::Postgres)), "{sql}");
        }
        let Err(PgWireError::UserError(syntax)) = r.split("SELEC 1").await else { panic!("SELEC 1 parsed") };
        assert_eq!(syntax.code, "42601");
    }
}
