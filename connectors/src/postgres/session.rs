//! One sink connection and the transaction that writes a checkpoint's
//! changes: lock the subtask's marker, skip what it says is committed,
//! write the rows, advance the marker, commit. Retried, over a new
//! connection, while the server cannot be reached; a retry after a commit
//! whose answer was lost finds the marker advanced and writes nothing.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use tokio_postgres::NoTls;
use weir_engine::error::{EngineError, Result};

use super::failure::{Failure, classify};
use super::marker;
use super::options::{Connection, SinkOptions};
use super::statements::{Prepared, Statements};

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a sink writes to: the table, its statements and options.
pub(super) struct Target {
    pub connection: Connection,
    pub statements: Statements,
    pub options: SinkOptions,
}

/// The marker a transaction advances: subtask `subtask` of `job` has
/// committed `checkpoint`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark<'a> {
    pub job: &'a str,
    pub subtask: usize,
    pub checkpoint: u64,
}

/// An open connection with the sink's statements prepared on it.
pub(super) struct Session {
    client: tokio_postgres::Client,
    prepared: Prepared,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Session {
    /// Connects as `job`'s sink (its `application_name`, so that a later
    /// run can fence it), in the UTC time zone (a TIMESTAMP_LTZ's UTC time
    /// goes into a `timestamptz` column as that instant).
    pub(super) async fn connect(target: &Target, job: &str) -> Result<Self, Failure> {
        let mut config = target.connection.config.clone();
        config.application_name(&marker::application_name(job));
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| Failure::Transient(format!("cannot connect: {}", classify(e).message())))?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("postgres sink connection ended: {e}");
            }
        });
        client.batch_execute("SET TIME ZONE 'UTC'").await.map_err(classify)?;
        let prepared = target.statements.prepare(&client).await?;
        Ok(Self {
            client,
            prepared,
            driver,
        })
    }

    /// The client, for the marker's own statements.
    pub(super) fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// One transaction: `changes` (if any) written and `mark` (if any)
    /// advanced together, unless the marker says `mark`'s checkpoint is
    /// committed already. Returns whether it wrote.
    async fn transaction(
        &mut self,
        target: &Target,
        changes: Option<&RecordBatch>,
        mark: Option<Mark<'_>>,
    ) -> Result<bool, Failure> {
        let tx = self.client.transaction().await.map_err(classify)?;
        if let Some(m) = mark
            && marker::lock(&tx, m.job, m.subtask).await? >= m.checkpoint
        {
            tx.rollback().await.map_err(classify)?;
            return Ok(false);
        }
        if let Some(changes) = changes.filter(|c| c.num_rows() > 0) {
            target
                .statements
                .apply(&tx, &self.prepared, changes, target.options.max_rows)
                .await?;
        }
        if let Some(m) = mark {
            marker::advance(&tx, m.job, m.subtask, m.checkpoint).await?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }
}

/// Writes `changes` and advances `mark` in one transaction over `session`
/// (connected first if `None`), retrying up to `'sink.max-retries'` times
/// over a new connection while the server cannot be reached. `what` names
/// the write in errors.
pub(super) async fn write(
    target: &Arc<Target>,
    session: &mut Option<Session>,
    job: &str,
    changes: Option<&RecordBatch>,
    mark: Option<Mark<'_>>,
    what: &str,
) -> Result<bool> {
    let mut attempt = 0;
    loop {
        let result = match session {
            Some(s) => s.transaction(target, changes, mark).await,
            None => match Session::connect(target, job).await {
                Ok(s) => session.insert(s).transaction(target, changes, mark).await,
                Err(e) => Err(e),
            },
        };
        let failure = match result {
            Ok(wrote) => return Ok(wrote),
            Err(f) => f,
        };
        // The connection may be broken or inside a failed transaction.
        *session = None;
        let c = &target.connection;
        match failure {
            Failure::Transient(m) if attempt < target.options.max_retries => {
                attempt += 1;
                let backoff = (Duration::from_secs(1) * attempt).min(MAX_BACKOFF);
                tracing::warn!(table = %c.table, attempt, "writing {what} failed, retrying in {backoff:?}: {m}");
                tokio::time::sleep(backoff).await;
            }
            Failure::Transient(m) => {
                return Err(EngineError::Connector(format!(
                    "postgres table {} at {}: writing {what} failed after {} attempts ('sink.max-retries' = {}): {m}",
                    c.table,
                    c.server(),
                    attempt + 1,
                    target.options.max_retries
                )));
            }
            Failure::Final(m) => {
                return Err(EngineError::Refused(format!(
                    "postgres table {} at {}: writing {what} failed: {m}",
                    c.table,
                    c.server()
                )));
            }
        }
    }
}
