//! What a Weir statement produced, as pgwire responses: a command tag, or
//! rows encoded by arrow-pg (so that every Arrow type gets its Postgres
//! type and text or binary form).

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::Schema;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::api::results::{QueryResponse, Response, Tag};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::types::format::FormatOptions;
use weir_sql::statement::CatalogStatement;
use weir_sql::{Outcome, WeirStatement};

use super::errors::QueryError;

/// The response to a statement that ran, and a message for the client (a
/// NoticeResponse: what the REPL would print, such as a job's id).
pub struct Answer {
    pub response: Response,
    pub notice: Option<String>,
}

/// Turns `outcome` of `statement` into its answer; rows in `format`.
pub fn answer(
    statement: &WeirStatement,
    outcome: Outcome,
    format: &Format,
    options: Arc<FormatOptions>,
) -> PgWireResult<Answer> {
    let (response, notice) = match outcome {
        Outcome::Done(message) => (Response::Execution(tag(statement)), Some(message)),
        Outcome::JobStarted(job) => (Response::Execution(tag(statement)), Some(job.started_message())),
        Outcome::Table(batches) => (Response::Query(rows(batches, format, options)?), None),
        Outcome::Explain(plan) => (Response::Query(rows(vec![query_plan(&plan)?], format, options)?), None),
        // The handler keeps SELECTs over streams away from the session;
        // should one get through, it is stopped, not left to block.
        Outcome::Stream { job, .. } => {
            job.cancel();
            return Err(QueryError::StreamingSelect.into_pg_error(""));
        }
    };
    Ok(Answer { response, notice })
}

/// The command tag PostgreSQL would send for the statement (Weir's own
/// statements get their keywords).
fn tag(statement: &WeirStatement) -> Tag {
    match statement {
        WeirStatement::CreateTable(_) => Tag::new("CREATE TABLE"),
        WeirStatement::DropTable { .. } => Tag::new("DROP TABLE"),
        // The job has started (or, with `table.dml-sync`, ended): no row
        // count is known, as for Flink's INSERT.
        WeirStatement::Insert { .. } => Tag::new("INSERT").with_oid(0).with_rows(0),
        // PostgreSQL tags CREATE TABLE … AS with the rows it wrote; the
        // job has just started.
        WeirStatement::CreateTableAs { .. } => Tag::new("SELECT").with_rows(0),
        WeirStatement::CreateMaterializedView { .. } => Tag::new("CREATE MATERIALIZED VIEW"),
        WeirStatement::CreateView { .. } => Tag::new("CREATE VIEW"),
        WeirStatement::DropView { .. } => Tag::new("DROP VIEW"),
        WeirStatement::StatementSet(_) | WeirStatement::EndStatementSet => Tag::new("INSERT").with_oid(0).with_rows(0),
        WeirStatement::BeginStatementSet => Tag::new("BEGIN STATEMENT SET"),
        WeirStatement::Set { .. } => Tag::new("SET"),
        WeirStatement::Reset { .. } => Tag::new("RESET"),
        WeirStatement::StopJob { .. } => Tag::new("STOP JOB"),
        WeirStatement::Catalog(CatalogStatement::CreateDatabase { .. }) => Tag::new("CREATE DATABASE"),
        WeirStatement::Catalog(_) => Tag::new("USE"),
        WeirStatement::AlterTable(_) => Tag::new("ALTER TABLE"),
        WeirStatement::AlterView(_) => Tag::new("ALTER VIEW"),
        WeirStatement::Query { .. }
        | WeirStatement::Explain(_)
        | WeirStatement::Show(_)
        | WeirStatement::ShowJobs
        | WeirStatement::Describe { .. } => Tag::new("SELECT"),
    }
}

/// Rows of batches that share one schema (an empty list has no columns).
fn rows(batches: Vec<RecordBatch>, format: &Format, options: Arc<FormatOptions>) -> PgWireResult<QueryResponse> {
    let schema = batches.first().map(|b| b.schema()).unwrap_or_else(|| Arc::new(Schema::empty()));
    let fields = Arc::new(arrow_schema_to_pg_fields(&schema, format, Some(options))?);
    let encoded: Vec<_> = batches
        .into_iter()
        .flat_map(|b| encode_recordbatch(Arc::clone(&fields), b))
        .collect();
    Ok(QueryResponse::new(fields, futures::stream::iter(encoded)))
}

/// EXPLAIN's plan as PostgreSQL shows one: a `QUERY PLAN` row per line.
fn query_plan(plan: &str) -> PgWireResult<RecordBatch> {
    let schema = weir_sql::results::explain();
    let lines = StringArray::from(plan.lines().collect::<Vec<_>>());
    RecordBatch::try_new(schema, vec![Arc::new(lines)]).map_err(|e| PgWireError::ApiError(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str) -> WeirStatement {
        weir_sql::parse_script(sql).unwrap().remove(0).statement
    }

    #[test]
    fn explain_answers_a_row_per_line_of_the_plan() {
        let explain = statement("EXPLAIN SELECT 1");
        let outcome = Outcome::Explain("stage 0\n  source t\n  sink out".into());
        let a = answer(&explain, outcome, &Format::UnifiedText, Arc::default()).unwrap();
        let Response::Query(q) = a.response else { panic!("rows expected") };
        assert_eq!(q.row_schema.len(), 1);
        assert_eq!(q.row_schema[0].name(), "QUERY PLAN");
        assert!(a.notice.is_none());
    }

    #[test]
    fn weir_statements_get_postgres_command_tags_and_notices() {
        let create = statement("CREATE TABLE t (a BIGINT) WITH ('connector' = 'blackhole')");
        let a = answer(&create, Outcome::Done("Table 't' created.".into()), &Format::UnifiedText, Arc::default()).unwrap();
        assert!(matches!(&a.response, Response::Execution(tag) if *tag == Tag::new("CREATE TABLE")));
        assert_eq!(a.notice.as_deref(), Some("Table 't' created."));
    }
}
