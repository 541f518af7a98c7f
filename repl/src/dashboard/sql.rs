//! The SQL box (`POST /api/sql`): statements run as pgwire runs them — the
//! same limits, parse off the workers, refusal of a SELECT over streams,
//! and the shared session (with `weir serve`'s catalog, so that what the
//! box creates or stops is remembered as over psql). Stopping a job
//! ([`super::stop`]) goes the same way.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use datafusion_postgres::pgwire::error::PgWireError;
use serde::{Deserialize, Serialize};
use weir_sql::Outcome;

use super::Dash;
use crate::output;
use crate::serve::errors::QueryError;
use crate::serve::handler::{Router, Script};

/// The body of `POST /api/sql`.
#[derive(Debug, Deserialize)]
pub struct SqlRequest {
    pub sql: String,
}

/// What one statement produced.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    /// Rows, each cell as the REPL prints it; `truncated` past the
    /// server's `--max-result-rows`.
    Table {
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
        truncated: bool,
    },
    Done {
        message: String,
    },
    Explain {
        text: String,
    },
    /// An `INSERT` started a job.
    Job {
        id: String,
        message: String,
    },
}

/// Why a statement failed: Weir's message, and what to do instead when
/// there is something.
#[derive(Debug, Serialize)]
pub struct Failure {
    pub error: String,
    pub hint: Option<String>,
}

impl From<QueryError> for Failure {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::StreamingSelect => Failure {
                error: "a SELECT over streams runs until it is stopped, so the dashboard cannot show its result".into(),
                hint: QueryError::StreamingSelect.hint().map(str::to_string),
            },
            other => Failure { hint: other.hint().map(str::to_string), error: other.to_string() },
        }
    }
}

impl From<PgWireError> for Failure {
    fn from(e: PgWireError) -> Self {
        match e {
            PgWireError::UserError(info) => Failure { error: info.message, hint: info.hint },
            other => Failure { error: other.to_string(), hint: None },
        }
    }
}

/// The answer of `POST /api/sql`: the results of the statements that ran
/// and, if one failed (the rest then did not run, as over pgwire), why.
#[derive(Debug, Serialize)]
pub struct Answers {
    pub results: Vec<Answer>,
    #[serde(flatten)]
    pub failure: Option<Failure>,
}

/// `POST /api/sql`.
pub async fn handle(State(dash): State<Arc<Dash>>, Json(request): Json<SqlRequest>) -> Response {
    let answers = run(&dash.router, &request.sql).await;
    let status = if answers.failure.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    (status, Json(answers)).into_response()
}

/// Runs the statements of `sql` in order, stopping at the first failure.
pub async fn run(router: &Router, sql: &str) -> Answers {
    let mut results = Vec::new();
    let failure = run_into(router, sql, &mut results).await.err();
    Answers { results, failure }
}

async fn run_into(router: &Router, sql: &str, results: &mut Vec<Answer>) -> Result<(), Failure> {
    let statements = match router.split(sql).await? {
        Script::Weir(statements) => statements,
        Script::Postgres => {
            return Err(Failure {
                error: "only PostgreSQL's dialect parses this: it is a client's statement, which the dashboard does not run".into(),
                hint: Some("run it over psql".into()),
            });
        }
    };
    for s in &statements {
        router.check(s).await?;
        router.route(&s.statement).await?;
        let outcome = router.run(s).await?.map_err(QueryError::from)?;
        results.push(answer(outcome, router.limits().max_result_rows)?);
    }
    Ok(())
}

/// One statement's outcome as the page shows it, at most `max_rows` rows.
fn answer(outcome: Outcome, max_rows: usize) -> Result<Answer, Failure> {
    Ok(match outcome {
        Outcome::Done(message) => Answer::Done { message },
        Outcome::Explain(text) => Answer::Explain { text },
        Outcome::JobStarted(job) => Answer::Job { message: job.started_message(), id: job.id },
        Outcome::Table(batches) => {
            let Some(first) = batches.first() else {
                return Ok(Answer::Table { columns: Vec::new(), rows: Vec::new(), truncated: false });
            };
            let (columns, mut rows) = output::cells(&first.schema(), &batches)
                .map_err(|e| Failure { error: format!("cannot display the rows: {e}"), hint: None })?;
            let truncated = rows.len() > max_rows;
            rows.truncate(max_rows);
            Answer::Table { columns, rows, truncated }
        }
        // A view over a stream: its rows never end. Its job is stopped
        // rather than left running for nobody.
        Outcome::Stream { job, .. } => {
            job.cancel();
            return Err(QueryError::StreamingSelect.into());
        }
    })
}
