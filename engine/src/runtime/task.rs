//! A task: one parallel subtask of a stage, running its operator chain on a
//! tokio task between its input and its output.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::RecordBatch;

use tokio::sync::{mpsc, watch};

use crate::checkpoint::coordinator::{Ack, FINISHED};
use crate::checkpoint::identity::StageStates;
use crate::checkpoint::snapshot::{self, OperatorJob, WriteTarget, Writing};
use crate::checkpoint::store::{StateStore, TaskState};
use crate::error::{EngineError, Result};
use crate::message::Message;
use crate::metrics::{OperatorMetrics, OperatorState, TaskMetrics};
use crate::operator::{Collector, Emitted, Operator, StateSize};
use crate::runtime::fanout::FanOut;
use crate::runtime::input::ExchangeInput;
use crate::sink::SinkWriter;
use crate::source::driver::SourceDriver;

pub(crate) enum TaskInput {
    Source(SourceDriver),
    Exchange(ExchangeInput),
}

impl TaskInput {
    async fn next(&mut self) -> Result<Message> {
        match self {
            TaskInput::Source(s) => s.next().await,
            TaskInput::Exchange(e) => e.next().await,
        }
    }

    /// The input (side of a join) the last data message came from.
    fn side(&self) -> usize {
        match self {
            TaskInput::Source(_) => 0,
            TaskInput::Exchange(e) => e.side(),
        }
    }
}

/// A sink writer with the counters of its rows.
pub(crate) struct SinkOutput {
    pub writer: Box<dyn SinkWriter>,
    pub metrics: Arc<OperatorMetrics>,
    /// The name of its prepared output in checkpoints.
    pub part: String,
}

impl SinkOutput {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.metrics.rows_in.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        crate::failpoints::sink_write(&self.metrics.operator)?;
        self.writer.write(batch).await
    }
}

/// Where a task's rows go: the next stage or the sink, and the late-data
/// side table when the query has one.
pub(crate) struct TaskOutput {
    pub main: MainOutput,
    pub late: Option<SinkOutput>,
}

pub(crate) enum MainOutput {
    Exchange(FanOut),
    Sink(SinkOutput),
}

impl TaskOutput {
    async fn emit(&mut self, e: Emitted) -> Result<()> {
        match (&mut self.main, e) {
            (MainOutput::Exchange(r), Emitted::Data(b)) => r.send_batch(b).await,
            (MainOutput::Exchange(r), Emitted::Watermark(w)) => r.broadcast(Message::Watermark(w)).await,
            (MainOutput::Sink(s), Emitted::Data(b)) => s.write(b.data).await,
            (MainOutput::Sink(s), Emitted::Watermark(w)) => {
                s.writer.watermark(w);
                Ok(())
            }
            (_, Emitted::Late(b)) => match &mut self.late {
                Some(late) => late.write(b).await,
                None => Err(EngineError::Plan("late rows were routed but the query has no LATE DATA table".into())),
            },
        }
    }

    /// Checkpoint `id` completed: sinks make its output visible.
    async fn commit(&mut self, id: u64) -> Result<()> {
        if let MainOutput::Sink(s) = &mut self.main {
            s.writer.commit(id).await?;
        }
        if let Some(late) = &mut self.late {
            late.writer.commit(id).await?;
        }
        Ok(())
    }

    /// Tells the next stage this task holds no watermark back for now.
    async fn idle(&mut self) -> Result<()> {
        match &mut self.main {
            MainOutput::Exchange(r) => r.broadcast(Message::Idle).await,
            MainOutput::Sink(_) => Ok(()),
        }
    }

    /// Sinks prepare what they wrote since the last checkpoint for
    /// checkpoint `id`, adding it to the task's `parts`.
    async fn prepare(&mut self, id: u64, parts: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
        if let MainOutput::Sink(s) = &mut self.main {
            parts.push((s.part.clone(), s.writer.prepare(id).await?));
        }
        if let Some(late) = &mut self.late {
            parts.push((late.part.clone(), late.writer.prepare(id).await?));
        }
        Ok(())
    }

    /// The input ended: the next stage is told; sinks finish later
    /// ([`TaskOutput::finish`]), once their last output is committed.
    async fn end(&mut self) -> Result<()> {
        match &mut self.main {
            MainOutput::Exchange(r) => r.broadcast(Message::End).await,
            MainOutput::Sink(_) => Ok(()),
        }
    }

    /// Sinks flush and make visible what no checkpoint committed: with
    /// checkpoints nothing is left by then ([`Task::report_finished`]).
    async fn finish(&mut self) -> Result<()> {
        if let Some(late) = &mut self.late {
            late.writer.finish().await?;
        }
        match &mut self.main {
            MainOutput::Exchange(_) => Ok(()),
            MainOutput::Sink(s) => s.writer.finish().await,
        }
    }

    fn has_sink(&self) -> bool {
        matches!(self.main, MainOutput::Sink(_)) || self.late.is_some()
    }
}

pub(crate) struct Task {
    pub input: TaskInput,
    pub chain: Vec<Box<dyn Operator>>,
    pub output: TaskOutput,
    pub checkpoint: Option<TaskCheckpoint>,
    /// The state ids of the stage's source and operators: the names their
    /// state is saved under.
    pub state_ids: StageStates,
    pub stage: usize,
    pub metrics: Arc<TaskMetrics>,
}

/// Batches between two measurements of the operators' state size.
const STATE_SIZE_EVERY: u64 = 64;

/// A task's link to the checkpoint coordinator.
pub(crate) struct TaskCheckpoint {
    /// The task's name in checkpoints, e.g. `s1-0` (stage 1, subtask 0).
    pub key: String,
    pub acks: mpsc::Sender<Ack>,
    pub committed: watch::Receiver<u64>,
    /// Where its writer puts the chunks its operators made.
    pub store: Arc<StateStore>,
    /// Its writer of the latest checkpoint, while it runs.
    pub writing: Option<Writing>,
    /// The last checkpoint the task took its part of (at first, the one
    /// its attempt's ids continue after): every later checkpoint holds
    /// its final state once its input ends.
    pub last: u64,
}

/// Passes one item through the chain from `chain[0]`, collecting what falls
/// out of the last operator; `input` is the side of a join it came from
/// (for the chain's first operator).
fn push(chain: &mut [Box<dyn Operator>], input: usize, item: Emitted, out: &mut Vec<Emitted>) -> Result<()> {
    let Some((op, rest)) = chain.split_first_mut() else {
        out.push(item);
        return Ok(());
    };
    let mut c = Collector::default();
    match item {
        Emitted::Data(b) => op.on_input(input, b, &mut c)?,
        Emitted::Watermark(w) => op.on_watermark(w, &mut c)?,
        late @ Emitted::Late(_) => {
            out.push(late);
            return Ok(());
        }
    }
    for e in c.out {
        push(rest, 0, e, out)?;
    }
    Ok(())
}

/// The next processing-time tick, or never without a ticker.
async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The first operator of `chain` that made progress on work in flight
/// ([`Operator::poll_progress`]): its index and what it emitted.
async fn progress(chain: &mut [Box<dyn Operator>]) -> (usize, Result<Collector>) {
    std::future::poll_fn(|cx| {
        for (i, op) in chain.iter_mut().enumerate() {
            let mut c = Collector::default();
            if let std::task::Poll::Ready(r) = op.poll_progress(cx, &mut c) {
                return std::task::Poll::Ready((i, r.map(|()| c)));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// The next completed checkpoint; `None` once the coordinator is gone.
async fn committed(link: &mut Option<TaskCheckpoint>) -> Option<u64> {
    match link {
        Some(l) => l.committed.changed().await.ok().map(|()| *l.committed.borrow_and_update()),
        None => std::future::pending().await,
    }
}

impl Task {
    /// Checkpoint `id` is complete: sinks make its output visible.
    async fn on_committed(&mut self, id: u64) -> Result<()> {
        if let TaskInput::Source(driver) = &mut self.input {
            driver.committed(id);
        }
        for op in &mut self.chain {
            op.checkpoint_complete(id);
        }
        self.output.commit(id).await
    }

    /// Commits a completion the coordinator announced and the task has not
    /// seen yet. Called before sinks prepare (at a barrier, at the end of
    /// the input): the previous checkpoint's completion is announced before
    /// the next one starts, so what they prepare then holds only what came
    /// after it (or, if it was abandoned, everything since the last commit).
    async fn commit_announced(&mut self) -> Result<()> {
        let announced = match &mut self.checkpoint {
            Some(link) if link.committed.has_changed().unwrap_or(false) => *link.committed.borrow_and_update(),
            _ => return Ok(()),
        };
        self.on_committed(announced).await
    }

    /// Takes this task's part of checkpoint `id` — the source's positions,
    /// each operator's state, the sinks' prepared output — acknowledges it,
    /// and passes the barrier on.
    async fn checkpoint(&mut self, id: u64) -> Result<()> {
        self.commit_announced().await?;
        let paused = std::time::Instant::now();
        let mut state = TaskState::default();
        if let TaskInput::Source(driver) = &mut self.input {
            state.parts.push((source_part(&self.state_ids, self.stage)?, driver.take_snapshot(id)?));
        }
        // The operators' views of their state; encoding and writing them
        // happen on the writer, while the stream goes on.
        let mut jobs = Vec::new();
        for (op, state_id) in self.chain.iter_mut().zip(&self.state_ids.operators) {
            let taken = std::time::Instant::now();
            let job = op.snapshot_async(id)?;
            // Which operator holds the stream up, when one does.
            let ms = taken.elapsed().as_millis();
            if ms >= 20 {
                tracing::debug!(operator = op.name(), checkpoint = id, ms, "snapshot paused the task");
            }
            jobs.push(OperatorJob {
                state_id: state_id.as_ref().map(|id| id.to_string()),
                name: op.name().to_string(),
                job,
            });
        }
        self.metrics.snapshot_pause_max_ns.fetch_max(paused.elapsed().as_nanos() as u64, Ordering::Relaxed);
        match &mut self.output.main {
            MainOutput::Sink(s) => crate::failpoints::sink_barrier(&s.metrics.operator, id)?,
            MainOutput::Exchange(r) => r.broadcast(Message::Barrier(id)).await?,
        }
        self.output.prepare(id, &mut state.parts).await?;
        if let Some(link) = &mut self.checkpoint {
            link.last = id;
            // A writer still running belongs to a checkpoint the coordinator
            // has given up (it starts one only when the last has ended).
            link.writing = None;
            let target = WriteTarget {
                store: Arc::clone(&link.store),
                acks: link.acks.clone(),
                checkpoint: id,
                task: link.key.clone(),
            };
            link.writing = Some(snapshot::spawn(target, state, jobs));
        }
        Ok(())
    }

    /// Adds each operator's final state to `state`, taken on the loop: the
    /// input has ended, there is no stream left to hold up.
    fn snapshot_operators(&mut self, id: u64, state: &mut TaskState) -> Result<()> {
        for (op, state_id) in self.chain.iter_mut().zip(&self.state_ids.operators) {
            if let Some(bytes) = op.snapshot(id, &mut state.chunks)? {
                let state_id = state_id
                    .as_ref()
                    .ok_or_else(|| EngineError::Plan(format!("{} keeps state but has no state id", op.name())))?;
                state.parts.push((state_id.to_string(), bytes));
            }
        }
        Ok(())
    }

    /// Tells the coordinator this task's input ended, with its final state
    /// (its source's partitions all ended, its sinks' last output
    /// prepared), then waits until a checkpoint holding that state is
    /// complete and commits it. Sinks make their last output visible only
    /// then, as at any checkpoint (Flink's final checkpoint): a run killed
    /// before the job records that it finished restores a checkpoint that
    /// holds the output, and never writes it twice.
    async fn report_finished(&mut self) -> Result<()> {
        let Some(link) = self.checkpoint.as_mut() else {
            return Ok(());
        };
        // The last checkpoint's part is acknowledged first: the coordinator
        // must not take this final state for a checkpoint whose barrier
        // came before rows this state holds.
        if let Some(writing) = link.writing.take() {
            writing.await;
        }
        // Every checkpoint after the last one the task took holds its final
        // state; the first of them labels the sinks' last output.
        let first_final = link.last + 1;
        self.commit_announced().await?;
        let mut state = TaskState::default();
        if let TaskInput::Source(driver) = &mut self.input {
            state.parts.push((source_part(&self.state_ids, self.stage)?, driver.state()));
        }
        self.snapshot_operators(FINISHED, &mut state)?;
        self.output.prepare(first_final, &mut state.parts).await?;
        let Some(link) = self.checkpoint.as_mut() else {
            return Ok(());
        };
        let ack = Ack { checkpoint: FINISHED, task: link.key.clone(), state: Ok(state) };
        if link.acks.send(ack).await.is_err() || !self.output.has_sink() {
            return Ok(());
        }
        let committed = match link.committed.wait_for(|c| *c >= first_final).await {
            Ok(c) => *c,
            Err(_) => {
                return Err(EngineError::State(
                    "the checkpoint coordinator stopped before the job's last output was committed".into(),
                ));
            }
        };
        self.on_committed(committed).await
    }

    pub async fn run(mut self) -> Result<()> {
        let metrics = Arc::clone(&self.metrics);
        let ran = self.run_counted().await;
        metrics.ended();
        ran
    }

    /// Hands what the chain emitted to the output, counting its batches.
    async fn flush(&mut self, emitted: &mut Vec<Emitted>) -> Result<()> {
        for e in emitted.drain(..) {
            if let Emitted::Data(b) = &e {
                self.metrics.batches_out.fetch_add(1, Ordering::Relaxed);
                self.metrics.rows_out.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
            }
            self.output.emit(e).await?;
        }
        Ok(())
    }

    /// Measures the operators' state for `weir.memory`.
    fn measure_state(&self) {
        let mut state = self.metrics.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.len() != self.chain.len() {
            *state = self
                .chain
                .iter()
                .enumerate()
                .map(|(i, op)| {
                    let id = self.state_ids.operators.get(i).and_then(Option::as_ref);
                    OperatorState {
                        operator: id.map_or_else(|| op.name().to_string(), ToString::to_string),
                        checkpointed: id.is_some(),
                        size: StateSize::default(),
                    }
                })
                .collect();
        }
        for (slot, op) in state.iter_mut().zip(&self.chain) {
            slot.size = op.state_size();
        }
    }

    async fn run_counted(&mut self) -> Result<()> {
        if let MainOutput::Exchange(r) = &mut self.output.main {
            r.attach(Arc::clone(&self.metrics));
        }
        let mut emitted = Vec::new();
        // One processing-time cadence per task: the shortest any operator
        // asks for (a chain has at most one windowed operator).
        let mut ticker = self.chain.iter().filter_map(|op| op.timer_interval()).min().map(|d| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            t
        });
        loop {
            let waiting = self.metrics.idle_begins();
            // An operator with its limit of requests in flight holds the
            // input back until one completes.
            let accepting = self.chain.iter().all(|op| op.accepts_input());
            // Inputs are cancel-safe: a tick or a commit never loses a message.
            let message = tokio::select! {
                m = self.input.next(), if accepting => m?,
                (i, emitted_by) = progress(&mut self.chain) => {
                    self.metrics.idle_ends(waiting);
                    for e in emitted_by?.out {
                        push(&mut self.chain[i + 1..], 0, e, &mut emitted)?;
                    }
                    self.flush(&mut emitted).await?;
                    continue;
                }
                _ = tick(&mut ticker) => {
                    self.metrics.idle_ends(waiting);
                    for i in 0..self.chain.len() {
                        if self.chain[i].timer_interval().is_some() {
                            let mut c = Collector::default();
                            self.chain[i].on_timer(&mut c)?;
                            for e in c.out {
                                push(&mut self.chain[i + 1..], 0, e, &mut emitted)?;
                            }
                        }
                    }
                    self.flush(&mut emitted).await?;
                    self.measure_state();
                    continue;
                }
                committed = committed(&mut self.checkpoint) => {
                    self.metrics.idle_ends(waiting);
                    match committed {
                        Some(id) => self.on_committed(id).await?,
                        None => self.checkpoint = None,
                    }
                    continue;
                }
            };
            self.metrics.idle_ends(waiting);
            if let Message::Data(b) = &message {
                let batches = self.metrics.batches_in.fetch_add(1, Ordering::Relaxed) + 1;
                self.metrics.rows_in.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
                if batches.is_multiple_of(STATE_SIZE_EVERY) {
                    self.measure_state();
                }
            }
            match message {
                Message::Data(b) => push(&mut self.chain, self.input.side(), Emitted::Data(b), &mut emitted)?,
                Message::Watermark(w) => push(&mut self.chain, 0, Emitted::Watermark(w), &mut emitted)?,
                // A source's side-table rows skip the chain, as operators' do.
                Message::Late(b) => emitted.push(Emitted::Late(b)),
                Message::Idle => self.output.idle().await?,
                Message::Barrier(id) => {
                    if let TaskInput::Exchange(e) = &mut self.input
                        && let Some(waited) = e.take_alignment()
                    {
                        self.metrics.aligned(id, waited.as_nanos() as u64);
                    }
                    self.measure_state();
                    self.checkpoint(id).await?
                }
                Message::End => {
                    for i in 0..self.chain.len() {
                        // Work in flight finishes before the operator ends
                        // (and before what it emits reaches the next one).
                        while self.chain[i].in_flight() {
                            let (j, emitted_by) = progress(&mut self.chain[i..=i]).await;
                            debug_assert_eq!(j, 0);
                            for e in emitted_by?.out {
                                push(&mut self.chain[i + 1..], 0, e, &mut emitted)?;
                            }
                            self.flush(&mut emitted).await?;
                        }
                        let mut c = Collector::default();
                        self.chain[i].on_end(&mut c)?;
                        for e in c.out {
                            push(&mut self.chain[i + 1..], 0, e, &mut emitted)?;
                        }
                    }
                    self.flush(&mut emitted).await?;
                    self.measure_state();
                    self.output.end().await?;
                    self.report_finished().await?;
                    return self.output.finish().await;
                }
            }
            self.flush(&mut emitted).await?;
        }
    }
}

/// The name the positions of the source of `stage` are saved under.
fn source_part(ids: &StageStates, stage: usize) -> Result<String> {
    ids.source
        .as_ref()
        .map(|id| id.to_string())
        .ok_or_else(|| EngineError::Plan(format!("the source of stage {stage} has no state id")))
}
