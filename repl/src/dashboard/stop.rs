//! Stopping a job from its page (`POST /api/jobs/{id}/stop`), with or
//! without a savepoint: the `STOP JOB` statement, run as the SQL box runs
//! statements, so that `weir serve` forgets the job in its catalog as it
//! does when psql stops it (a restarted server would otherwise start it
//! again).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use weir_sql::system::snapshot::status_name;

use super::Dash;
use super::sql::{self, Answer};

/// The body of a stop request.
#[derive(Debug, Default, Deserialize)]
pub struct StopRequest {
    /// Take a savepoint first (the job must checkpoint).
    #[serde(default)]
    pub savepoint: bool,
}

#[derive(Serialize)]
struct Stopped {
    message: String,
}

#[derive(Serialize)]
struct Refused {
    error: String,
}

/// `POST /api/jobs/{id}/stop`: 404 for a job nobody started, 409 for one
/// that has ended, 400 with Weir's error when it cannot be stopped so.
pub async fn handle(
    State(dash): State<Arc<Dash>>,
    Path(id): Path<String>,
    Json(request): Json<StopRequest>,
) -> Response {
    let refuse = |status: StatusCode, error: String| (status, Json(Refused { error })).into_response();
    let Some(job) = dash.registry.jobs().into_iter().find(|j| j.handle.id == id) else {
        return refuse(StatusCode::NOT_FOUND, format!("no job '{id}'"));
    };
    let status = job.handle.status();
    if status.is_done() {
        return refuse(StatusCode::CONFLICT, format!("job '{id}' has already ended ({})", status_name(&status)));
    }
    let answers = sql::run(&dash.router, &statement(&id, request.savepoint)).await;
    match (answers.failure, answers.results.into_iter().next()) {
        (Some(f), _) => refuse(StatusCode::BAD_REQUEST, f.error),
        (None, Some(Answer::Done { message })) => (StatusCode::OK, Json(Stopped { message })).into_response(),
        (None, other) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("STOP JOB answered {other:?}")),
    }
}

/// The statement that stops job `id`, its quotes doubled.
fn statement(id: &str, savepoint: bool) -> String {
    let with = if savepoint { " WITH SAVEPOINT" } else { "" };
    format!("STOP JOB '{}'{with}", id.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_quoted() {
        assert_eq!(statement("a1b2", false), "STOP JOB 'a1b2'");
        assert_eq!(statement("a1b2", true), "STOP JOB 'a1b2' WITH SAVEPOINT");
        assert_eq!(statement("x'; DROP TABLE t; --", false), "STOP JOB 'x''; DROP TABLE t; --'");
        let parsed = weir_sql::parse_script(&statement("it's", true)).unwrap();
        assert!(
            matches!(&parsed[0].statement, weir_sql::WeirStatement::StopJob { id, savepoint: true } if id == "it's"),
            "{parsed:?}"
        );
    }
}
