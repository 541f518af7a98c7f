//! The page's data: the latest sample as JSON (`GET /api/jobs`,
//! `GET /api/jobs/{id}`) and every new one as a server-sent event
//! (`GET /api/events`, `event: snapshot`), which `EventSource` in the page
//! follows and reconnects by itself.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::WatchStream;

use super::Dash;

/// `GET /api/jobs`: every job of the latest sample.
pub async fn jobs(State(dash): State<Arc<Dash>>) -> Response {
    let latest = Arc::clone(&dash.latest.borrow());
    Json(&*latest).into_response()
}

/// `GET /api/jobs/{id}`: one job of the latest sample.
pub async fn job(State(dash): State<Arc<Dash>>, Path(id): Path<String>) -> Response {
    let latest = Arc::clone(&dash.latest.borrow());
    match latest.jobs.iter().find(|j| j.id == id) {
        Some(job) => Json(job).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no job '{id}'\n")).into_response(),
    }
}

/// `GET /api/events`: the latest sample at once, then each new one.
pub async fn events(State(dash): State<Arc<Dash>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let samples = WatchStream::new(dash.latest.clone()).map(|payload| {
        Ok(Event::default().event("snapshot").json_data(&*payload).unwrap_or_else(|e| {
            // Plain data cannot fail to serialize; said to the page if it did.
            Event::default().event("failure").data(e.to_string())
        }))
    });
    Sse::new(samples).keep_alive(KeepAlive::default())
}
