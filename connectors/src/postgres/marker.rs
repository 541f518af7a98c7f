//! The sink's record, in the database it writes, of what each subtask has
//! committed: a row `(job, subtask, checkpoint)` of the table
//! `weir_sink_checkpoints`, updated in the same transaction as the rows of
//! that checkpoint. Rows and marker become visible in one atomic step, so
//! the marker says exactly which checkpoints' rows the table holds, and a
//! checkpoint's rows are written again only if its marker is older.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use super::failure::{Failure, classify};

/// The marker table, in the connection's default schema (`public`).
const TABLE: &str = "weir_sink_checkpoints";

/// How long recovery waits for the backends of a job's earlier run to end.
const FENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// The `application_name` of a job's sink connections (at most 63 bytes,
/// Postgres's limit): how recovery finds the connections of the job's
/// earlier run.
pub(super) fn application_name(job: &str) -> String {
    let mut name = format!("weir-sink {job}");
    name.truncate(63);
    name
}

/// Creates the marker table if it does not exist yet.
pub(super) async fn ensure(client: &tokio_postgres::Client) -> Result<(), Failure> {
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (job text NOT NULL, subtask integer NOT NULL, \
         checkpoint bigint NOT NULL, PRIMARY KEY (job, subtask))"
    );
    match client.batch_execute(&create).await {
        // Two jobs creating it at once: one wins, the other sees it.
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) || e.code() == Some(&SqlState::DUPLICATE_TABLE) => {
            Ok(())
        }
        other => other.map_err(classify),
    }
}

/// The checkpoint each subtask of `job` committed last.
pub(super) async fn read(client: &tokio_postgres::Client, job: &str) -> Result<BTreeMap<usize, u64>, Failure> {
    let rows = client
        .query(
            &format!("SELECT subtask, checkpoint FROM {TABLE} WHERE job = $1"),
            &[&job],
        )
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|r| {
            let subtask: i32 = r.try_get(0).map_err(classify)?;
            let checkpoint: i64 = r.try_get(1).map_err(classify)?;
            Ok((subtask as usize, checkpoint as u64))
        })
        .collect()
}

/// Ends the connections of the job's earlier run (a process killed while
/// its commit was on the wire may still have a backend finishing it) and
/// waits until they are gone, so that no commit of that run can land after
/// recovery has read the markers: Kafka's fencing of a transactional id,
/// for Postgres.
pub(super) async fn fence(client: &tokio_postgres::Client, job: &str) -> Result<(), Failure> {
    let name = application_name(job);
    let others = "FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()";
    client
        .query(&format!("SELECT pg_terminate_backend(pid) {others}"), &[&name])
        .await
        .map_err(classify)?;
    let until = Instant::now() + FENCE_TIMEOUT;
    loop {
        let left: i64 = client
            .query_one(&format!("SELECT count(*) {others}"), &[&name])
            .await
            .map_err(classify)?
            .get(0);
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(Failure::Final(format!(
                "{left} connection(s) of the job's earlier run ('{name}') did not end within {FENCE_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// In the open transaction `tx`: locks the marker of `subtask` of `job`
/// (waiting while another transaction holds it) and returns the checkpoint
/// it says was committed (0: none).
pub(super) async fn lock(tx: &tokio_postgres::Transaction<'_>, job: &str, subtask: usize) -> Result<u64, Failure> {
    let subtask = subtask as i32;
    tx.execute(
        &format!("INSERT INTO {TABLE} (job, subtask, checkpoint) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING"),
        &[&job, &subtask],
    )
    .await
    .map_err(classify)?;
    let row = tx
        .query_one(
            &format!("SELECT checkpoint FROM {TABLE} WHERE job = $1 AND subtask = $2 FOR UPDATE"),
            &[&job, &subtask],
        )
        .await
        .map_err(classify)?;
    let checkpoint: i64 = row.try_get(0).map_err(classify)?;
    Ok(checkpoint as u64)
}

/// In the open transaction `tx`, after [`lock`]: `subtask` of `job` has
/// committed `checkpoint`.
pub(super) async fn advance(
    tx: &tokio_postgres::Transaction<'_>,
    job: &str,
    subtask: usize,
    checkpoint: u64,
) -> Result<(), Failure> {
    tx.execute(
        &format!("UPDATE {TABLE} SET checkpoint = $3 WHERE job = $1 AND subtask = $2"),
        &[&job, &(subtask as i32), &(checkpoint as i64)],
    )
    .await
    .map_err(classify)?;
    Ok(())
}
