//! The PostgreSQL sink, exactly once (docs/postgres.md). In a job that
//! checkpoints, a writer holds the rows it receives; at a checkpoint's
//! barrier it collapses them to each key's last change and puts them in the
//! checkpoint's state; once the checkpoint is durable it writes them in one
//! transaction that also advances its marker (`marker.rs`). Recovery writes
//! what the restored checkpoint holds unless the marker says it is in the
//! table, so a crash anywhere loses and repeats nothing. Without
//! checkpoints the writer flushes as Flink's JDBC sink does (at least once).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::checkpoint::codec::{Decoder, Encoder};
use weir_engine::error::{EngineError, Result};
use weir_engine::sink::{Committed, SinkConnector, SinkWriter};

use super::collapse;
use super::marker;
use super::session::{self, Mark, Session, Target};

/// Held rows of an upsert table are collapsed once they pass this many,
/// so that a hot key's changes between two checkpoints take little memory.
const COLLAPSE_AT: usize = 1 << 16;

pub(crate) struct PostgresSink {
    target: Arc<Target>,
    /// The table's columns.
    schema: SchemaRef,
    /// Its columns and the changelog column: how rows are held.
    held: SchemaRef,
    /// Per job that checkpoints (it asked [`SinkConnector::committed_checkpoint`]):
    /// the checkpoint each of its subtasks committed last.
    jobs: Mutex<HashMap<String, BTreeMap<usize, u64>>>,
}

impl std::fmt::Debug for PostgresSink {
    // The connection settings may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PostgresSink {
    pub(super) fn new(target: Target, schema: SchemaRef) -> Self {
        let held = collapse::with_op(&schema);
        Self {
            target: Arc::new(target),
            schema,
            held,
            jobs: Mutex::new(HashMap::new()),
        }
    }

    fn fail(&self, what: &str, m: &str) -> EngineError {
        let c = &self.target.connection;
        EngineError::Connector(format!("postgres table {} at {}: {what}: {m}", c.table, c.server()))
    }
}

/// Runs `f` to completion on a thread of its own (the trait's recovery
/// calls are not async, and may come from inside the job's runtime).
fn on_own_thread<T: Send>(f: impl Future<Output = Result<T>> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| EngineError::Io {
                    context: "starting the postgres sink's recovery runtime".into(),
                    source: e,
                })?;
            runtime.block_on(f)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(EngineError::Connector(
                "postgres sink: the recovery thread panicked".into(),
            ))
        })
    })
}

impl SinkConnector for PostgresSink {
    fn describe(&self) -> String {
        let c = &self.target.connection;
        let mode = if self.target.statements.key.is_empty() {
            "append"
        } else {
            "upsert"
        };
        format!("postgres table {} at {} ({mode})", c.table, c.server())
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// A table with a primary key takes changes: upserts and deletes by
    /// key. Without one, rows can only be appended (as in Flink).
    fn accepts_changes(&self) -> bool {
        !self.target.statements.key.is_empty()
    }

    /// Fences the job's earlier run, then reads its markers: the newest
    /// checkpoint any subtask committed. Reported as output that recovery
    /// deals with ([`Committed::Withdrawable`]), not as a commit point the
    /// job must go back to ([`Committed::Through`]): a restored checkpoint
    /// that some subtask did not commit is rolled forward from the state by
    /// [`SinkConnector::recover`], so the job never resumes from an older
    /// one (which would repeat the rows of the subtasks, and of other
    /// sinks, that had committed it).
    fn committed_checkpoint(&self, job_id: &str) -> Result<Committed> {
        let markers = on_own_thread(async {
            let session = Session::connect(&self.target, job_id)
                .await
                .map_err(|f| self.fail("recovery", f.message()))?;
            let client = session.client();
            marker::fence(client, job_id)
                .await
                .map_err(|f| self.fail("fencing the job's earlier run", f.message()))?;
            marker::ensure(client)
                .await
                .map_err(|f| self.fail("creating the marker table", f.message()))?;
            marker::read(client, job_id)
                .await
                .map_err(|f| self.fail("reading the marker table", f.message()))
        })?;
        let newest = markers.values().copied().max().unwrap_or(0);
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job_id.to_string(), markers);
        Ok(Committed::Withdrawable(newest))
    }

    /// Writes the rows subtask `subtask` prepared in the restored
    /// checkpoint, unless its marker says they are in the table already.
    /// Rows committed after `withdraw_after` (a savepoint, or checkpoints
    /// the store lost) cannot be taken back: they are written again, which
    /// an upsert table absorbs and an append table repeats.
    fn recover(
        &self,
        job_id: &str,
        subtask: usize,
        prepared: Option<&[u8]>,
        withdraw_after: Option<u64>,
    ) -> Result<()> {
        let committed = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(job_id)
            .and_then(|m| m.get(&subtask).copied())
            .unwrap_or(0);
        if let Some(after) = withdraw_after
            && committed > after
        {
            tracing::warn!(
                table = %self.target.connection.table,
                subtask,
                "rows committed up to checkpoint {committed} cannot be taken back from a postgres table: those after \
                 checkpoint {after} are written again"
            );
        }
        let Some(bytes) = prepared else { return Ok(()) };
        let (checkpoint, changes) = decode(bytes, &self.held)?;
        if committed >= checkpoint {
            return Ok(());
        }
        let mark = Mark {
            job: job_id,
            subtask,
            checkpoint,
        };
        let what = format!("the rows of checkpoint {checkpoint} again (recovery)");
        on_own_thread(session::write(
            &self.target,
            &mut None,
            job_id,
            Some(&changes),
            Some(mark),
            &what,
        ))?;
        tracing::info!(table = %self.target.connection.table, subtask, checkpoint, rows = changes.num_rows(), "rows of a completed checkpoint written at recovery");
        Ok(())
    }

    fn open(&self, job_id: &str, subtask: usize, _parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        let exactly_once = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).contains_key(job_id);
        Ok(Box::new(PostgresWriter {
            target: Arc::clone(&self.target),
            held_schema: Arc::clone(&self.held),
            job: job_id.to_string(),
            subtask,
            exactly_once,
            session: None,
            held: Vec::new(),
            held_rows: 0,
            held_since: None,
            prepared: None,
        }))
    }
}

/// The state a writer puts in a checkpoint: its id and the changes.
fn encode(checkpoint: u64, changes: &RecordBatch) -> Result<Vec<u8>> {
    let mut e = Encoder::default();
    e.u64(checkpoint);
    e.batch(changes)?;
    Ok(e.bytes)
}

fn decode(bytes: &[u8], held: &SchemaRef) -> Result<(u64, RecordBatch)> {
    let mut d = Decoder::new(bytes);
    let checkpoint = d.u64()?;
    let changes = d.batch_of(held)?;
    d.finish()?;
    Ok((checkpoint, changes))
}

/// The failpoint `weir::postgres::commit`: with `FAILPOINTS` set to
/// `weir::postgres::commit=return` (or `N*off->return`: at the N+1st
/// commit), the process dies at once between a checkpoint's completion and
/// its transaction, as a crash there would, so that tests of recovery can
/// hit that moment on purpose. Inert otherwise.
fn crash_point() {
    let crash = || -> bool {
        fail::fail_point!("weir::postgres::commit", |_| true);
        false
    };
    if crash() {
        eprintln!("failpoint weir::postgres::commit: the process dies before the commit");
        std::process::abort();
    }
}

/// One subtask's writer.
struct PostgresWriter {
    target: Arc<Target>,
    held_schema: SchemaRef,
    job: String,
    subtask: usize,
    /// The job checkpoints: rows wait for their checkpoint's commit.
    exactly_once: bool,
    session: Option<Session>,
    /// Rows received since the last checkpoint (or flush), with their kinds.
    held: Vec<RecordBatch>,
    held_rows: usize,
    /// When the oldest held row came (flushes without checkpoints).
    held_since: Option<Instant>,
    /// The changes of the last checkpoint taken and not yet committed
    /// (with those of earlier ones that were abandoned).
    prepared: Option<(u64, RecordBatch)>,
}

impl PostgresWriter {
    /// The held rows as one batch: each key's last change on a table with
    /// a primary key, every row otherwise. Takes them.
    fn take_held(&mut self, earlier: Option<RecordBatch>) -> Result<RecordBatch> {
        let mut batches: Vec<RecordBatch> = earlier.into_iter().collect();
        batches.append(&mut self.held);
        self.held_rows = 0;
        self.held_since = None;
        let key = &self.target.statements.key;
        let merged = match key.is_empty() {
            true => concat_batches(&self.held_schema, &batches),
            false => collapse::last_per_key(&self.held_schema, &batches, key),
        };
        merged.map_err(|e| EngineError::Connector(format!("postgres sink: gathering rows: {e}")))
    }

    /// Writes the held rows now (without checkpoints: at least once).
    async fn flush(&mut self) -> Result<()> {
        let changes = self.take_held(None)?;
        session::write(&self.target, &mut self.session, &self.job, Some(&changes), None, "rows").await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl SinkWriter for PostgresWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let changes = collapse::as_changes(&batch, &self.held_schema)
            .map_err(|e| EngineError::Connector(format!("postgres sink: rows do not fit the table: {e}")))?;
        self.held_rows += changes.num_rows();
        self.held.push(changes);
        self.held_since.get_or_insert_with(Instant::now);
        if self.exactly_once {
            if self.held_rows > COLLAPSE_AT && !self.target.statements.key.is_empty() {
                let collapsed = self.take_held(None)?;
                self.held_rows = collapsed.num_rows();
                self.held.push(collapsed);
            }
            return Ok(());
        }
        let options = &self.target.options;
        let due = options
            .interval
            .zip(self.held_since)
            .is_some_and(|(i, since)| since.elapsed() >= i);
        if self.held_rows >= options.max_rows || due {
            self.flush().await?;
        }
        Ok(())
    }

    async fn prepare(&mut self, checkpoint: u64) -> Result<Vec<u8>> {
        if !self.exactly_once {
            self.flush().await?;
            return Ok(Vec::new());
        }
        // Rows of an abandoned checkpoint are still prepared: they join
        // this one's.
        let earlier = self.prepared.take().map(|(_, c)| c);
        let changes = self.take_held(earlier)?;
        let state = encode(checkpoint, &changes)?;
        self.prepared = Some((checkpoint, changes));
        Ok(state)
    }

    async fn commit(&mut self, checkpoint: u64) -> Result<()> {
        let Some((prepared, changes)) = self.prepared.take_if(|(p, _)| *p <= checkpoint) else {
            return Ok(());
        };
        crash_point();
        let mark = Mark {
            job: &self.job,
            subtask: self.subtask,
            checkpoint: prepared,
        };
        let what = format!("the rows of checkpoint {prepared}");
        session::write(
            &self.target,
            &mut self.session,
            &self.job,
            Some(&changes),
            Some(mark),
            &what,
        )
        .await?;
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        // A checkpoint taken and not yet committed commits first, with its
        // marker; what came after it has no checkpoint to mark.
        if let Some(prepared) = self.prepared.as_ref().map(|(p, _)| *p) {
            self.commit(prepared).await?;
        }
        let changes = self.take_held(None)?;
        session::write(
            &self.target,
            &mut self.session,
            &self.job,
            Some(&changes),
            None,
            "the last rows",
        )
        .await?;
        self.session = None;
        Ok(())
    }
}
