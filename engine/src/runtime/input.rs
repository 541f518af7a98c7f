//! The input side of a task fed by an exchange: merges its channels and
//! combines their watermarks (the minimum over inputs that have not ended).

use datafusion::arrow::array::Int64Array;
use tokio_stream::StreamExt;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::ReceiverStream;

use crate::checkpoint::coordinator::CheckpointMode;
use crate::error::{EngineError, ErrorKind, Result};
use crate::message::{EventTime, Message, StreamBatch, WATERMARK_END, WATERMARK_MIN};

/// All input channels of one task.
pub struct ExchangeInput {
    channels: StreamMap<usize, ReceiverStream<Message>>,
    watermarks: Vec<EventTime>,
    ended: Vec<bool>,
    /// Inputs that said they are idle: they hold no watermark back.
    idle: Vec<bool>,
    /// The checkpoint whose barriers are being aligned, and the inputs that
    /// delivered it: they are not read until every input has (exactly-once
    /// alignment, so that the checkpoint holds exactly the rows before it).
    aligning: Option<u64>,
    blocked: Vec<(usize, ReceiverStream<Message>)>,
    /// When the first barrier of the checkpoint being aligned arrived, and
    /// how long the last alignment held inputs back (`weir.checkpoints`).
    aligning_since: Option<std::time::Instant>,
    last_alignment: Option<std::time::Duration>,
    mode: CheckpointMode,
    /// At least once: the last barrier each input delivered; a barrier goes
    /// on once every open input has delivered it, and no input waits.
    delivered: Vec<u64>,
    /// The last barrier passed on (in either mode).
    forwarded: u64,
    combined: EventTime,
    task: String,
    /// Per input: the side (of a join) its upstream stage is.
    sides: Vec<usize>,
    /// The side of the last data message returned.
    side: usize,
}

impl ExchangeInput {
    /// `silent` inputs (by index; missing ones are not) are known to send
    /// no rows: they count as ended from the start, and what they send but
    /// their end is ignored.
    ///
    /// `sides` gives each input's side for a join (empty: all are side 0).
    pub fn new(
        receivers: Vec<tokio::sync::mpsc::Receiver<Message>>,
        task: String,
        mode: CheckpointMode,
        silent: &[bool],
        sides: Vec<usize>,
    ) -> Self {
        let n = receivers.len();
        let silent = |i: usize| silent.get(i).copied().unwrap_or(false);
        let mut channels = StreamMap::new();
        for (i, r) in receivers.into_iter().enumerate() {
            channels.insert(i, ReceiverStream::new(r));
        }
        Self {
            channels,
            watermarks: (0..n).map(|i| if silent(i) { WATERMARK_END } else { WATERMARK_MIN }).collect(),
            ended: (0..n).map(silent).collect(),
            idle: vec![false; n],
            aligning: None,
            blocked: Vec::new(),
            aligning_since: None,
            last_alignment: None,
            mode,
            delivered: vec![0; n],
            forwarded: 0,
            combined: WATERMARK_MIN,
            task,
            sides,
            side: 0,
        }
    }

    /// The side (input of a join) the last data message came from.
    pub fn side(&self) -> usize {
        self.side
    }

    /// The next merged message; `Message::End` when every input has ended.
    pub async fn next(&mut self) -> Result<Message> {
        loop {
            let ready = self.behind_first();
            let Some((input, msg)) = (match ready {
                Some(m) => Some(m),
                None => self.channels.next().await,
            }) else {
                // A channel that closed without `End` means its task failed:
                // never fire windows on partial input.
                return if self.ended.iter().all(|e| *e) { Ok(Message::End) } else { Err(self.closed()) };
            };
            if self.ended[input] {
                // A silent input: only its end matters (its channel closes).
                if matches!(msg, Message::End) {
                    self.channels.remove(&input);
                }
                continue;
            }
            match msg {
                Message::Data(batch) => {
                    self.idle[input] = false;
                    self.side = self.sides.get(input).copied().unwrap_or(0);
                    return Ok(Message::Data(self.effective(input, batch)));
                }
                Message::Watermark(w) => {
                    self.idle[input] = false;
                    self.watermarks[input] = self.watermarks[input].max(w);
                    if let Some(w) = self.advance() {
                        return Ok(Message::Watermark(w));
                    }
                }
                Message::Idle => {
                    self.idle[input] = true;
                    if let Some(w) = self.advance() {
                        return Ok(Message::Watermark(w));
                    }
                }
                Message::Late(_) => {
                    return Err(EngineError::Plan("late rows cannot cross an exchange".into()));
                }
                Message::Barrier(id) if self.mode == CheckpointMode::AtLeastOnce => {
                    self.delivered[input] = self.delivered[input].max(id);
                    if let Some(b) = self.passed() {
                        return Ok(b);
                    }
                }
                Message::Barrier(id) => {
                    // Sources are told only the newest checkpoint to take
                    // (a watch channel): after one was abandoned, an input
                    // may skip its barrier. As Flink's aligner does, a newer
                    // barrier ends the alignment of the older checkpoint
                    // (abandoned: it can no longer complete) and barriers
                    // of checkpoints older than the newest seen are ignored.
                    if id <= self.forwarded || self.aligning.is_some_and(|a| id < a) {
                        continue;
                    }
                    if self.aligning.is_some_and(|a| a < id) {
                        tracing::debug!(task = %self.task, barrier = id, "a newer barrier ends the alignment of an abandoned checkpoint");
                        self.release_blocked();
                        self.aligning_since = None;
                    }
                    self.aligning = Some(id);
                    self.aligning_since.get_or_insert_with(std::time::Instant::now);
                    if let Some(stream) = self.channels.remove(&input) {
                        self.blocked.push((input, stream));
                    }
                    if let Some(b) = self.aligned() {
                        return Ok(b);
                    }
                }
                Message::End => {
                    self.ended[input] = true;
                    self.watermarks[input] = WATERMARK_END;
                    self.channels.remove(&input);
                    if let Some(w) = self.advance() {
                        return Ok(Message::Watermark(w));
                    }
                    if let Some(b) = self.aligned().or_else(|| self.passed()) {
                        return Ok(b);
                    }
                }
            }
        }
    }

    /// A message already waiting on the input furthest behind in event
    /// time, when one input is behind the others: it is read first.
    ///
    /// Otherwise inputs are read in turn as they are ready, and with every
    /// input ready the gap between their event times walks at random: a
    /// two-input join then held the rows of whichever side was ahead (the
    /// combined watermark is the lagging side's), hundreds of seconds of
    /// them in a bench, and probed them all. Reading the lagging input
    /// first keeps the inputs' event times together, as Flink's watermark
    /// alignment does for sources. An input without a watermark yet, or
    /// idle, is not preferred: it may never get one.
    fn behind_first(&mut self) -> Option<(usize, Message)> {
        if self.watermarks.len() < 2 {
            return None;
        }
        let (mut behind, mut lowest, mut highest) = (None, EventTime::MAX, EventTime::MIN);
        for &i in self.channels.keys() {
            let w = self.watermarks[i];
            if self.idle[i] || w == WATERMARK_MIN {
                continue;
            }
            if w < lowest {
                (behind, lowest) = (Some(i), w);
            }
            highest = highest.max(w);
        }
        let behind = behind.filter(|_| lowest < highest)?;
        let (_, stream) = self.channels.iter_mut().find(|(i, _)| *i == behind)?;
        stream.as_mut().try_recv().ok().map(|m| (behind, m))
    }

    /// At least once: the newest barrier every open input has delivered, if
    /// not forwarded yet.
    fn passed(&mut self) -> Option<Message> {
        if self.mode != CheckpointMode::AtLeastOnce {
            return None;
        }
        let id = (0..self.ended.len()).filter(|i| !self.ended[*i]).map(|i| self.delivered[i]).min()?;
        (id > self.forwarded).then(|| {
            self.forwarded = id;
            Message::Barrier(id)
        })
    }

    /// The barrier being aligned, once every input that has not ended has
    /// delivered it; blocked inputs are then read again.
    fn aligned(&mut self) -> Option<Message> {
        let id = self.aligning?;
        let open = (0..self.ended.len()).filter(|i| !self.ended[*i]).count();
        if self.blocked.len() < open {
            return None;
        }
        self.release_blocked();
        self.aligning = None;
        self.forwarded = id;
        self.last_alignment = self.aligning_since.take().map(|t| t.elapsed());
        Some(Message::Barrier(id))
    }

    /// Reads the inputs held back by an alignment again.
    fn release_blocked(&mut self) {
        for (input, stream) in self.blocked.drain(..) {
            self.channels.insert(input, stream);
        }
    }

    /// How long the barrier just returned waited for alignment, once.
    pub fn take_alignment(&mut self) -> Option<std::time::Duration> {
        self.last_alignment.take()
    }

    fn closed(&self) -> EngineError {
        EngineError::Task {
            task: self.task.clone(),
            message: crate::error::UPSTREAM_STOPPED.into(),
            kind: ErrorKind::Internal,
        }
    }

    /// Watermarks of the inputs that hold the watermark back (not idle).
    fn holding(&self, except: Option<usize>) -> impl Iterator<Item = EventTime> + '_ {
        self.watermarks.iter().enumerate().filter(move |(i, _)| !self.idle[*i] && Some(*i) != except).map(|(_, w)| *w)
    }

    fn advance(&mut self) -> Option<EventTime> {
        // With every input idle the watermark stays where it is.
        let min = self.holding(None).min()?;
        (min > self.combined).then(|| {
            self.combined = min;
            min
        })
    }

    /// Per-row watermarks of one input, as seen across all inputs: a row's
    /// watermark is held back by the other inputs' watermarks.
    fn effective(&self, input: usize, mut batch: StreamBatch) -> StreamBatch {
        if self.watermarks.len() == 1 {
            return batch;
        }
        if let Some(w) = &batch.row_watermarks {
            let others = self.holding(Some(input)).min().unwrap_or(WATERMARK_END);
            let combined = self.combined;
            let eff: Int64Array = w.values().iter().map(|v| Some(combined.max(others.min(*v)))).collect();
            batch.row_watermarks = Some(eff);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    /// With both inputs holding rows, the one behind in event time is read
    /// until it catches up; inputs at the same time, or without a
    /// watermark yet, are read as they come.
    #[tokio::test]
    async fn the_input_behind_in_event_time_is_read_first() {
        let (tx0, rx0) = mpsc::channel(64);
        let (tx1, rx1) = mpsc::channel(64);
        // Sides 0 and 1 tell which input a batch came from.
        let mut input = ExchangeInput::new(vec![rx0, rx1], "t".into(), CheckpointMode::ExactlyOnce, &[], vec![0, 1]);
        let rows = || {
            let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::empty());
            Message::Data(StreamBatch::new(datafusion::arrow::array::RecordBatch::new_empty(schema)))
        };
        tx0.send(Message::Watermark(100)).await.unwrap();
        tx1.send(Message::Watermark(40)).await.unwrap();
        assert!(matches!(input.next().await.unwrap(), Message::Watermark(40)));
        for _ in 0..10 {
            tx0.send(rows()).await.unwrap();
        }
        for w in [60, 80, 90, 130] {
            tx1.send(rows()).await.unwrap();
            tx1.send(Message::Watermark(w)).await.unwrap();
        }
        // Input 1 (behind) goes first until its watermark passes input 0's,
        // then input 0 is behind.
        let mut order = Vec::new();
        while order.len() < 10 {
            match input.next().await.unwrap() {
                Message::Data(_) => order.push(input.side()),
                Message::Watermark(_) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(order, [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn an_idle_input_holds_nothing_back_until_it_speaks_again() {
        let (tx0, rx0) = mpsc::channel(8);
        let (tx1, rx1) = mpsc::channel(8);
        let mut input = ExchangeInput::new(vec![rx0, rx1], "t".into(), CheckpointMode::ExactlyOnce, &[], Vec::new());
        tx0.send(Message::Watermark(100)).await.unwrap();
        tx1.send(Message::Watermark(50)).await.unwrap();
        assert!(matches!(input.next().await.unwrap(), Message::Watermark(50)));
        tx1.send(Message::Idle).await.unwrap();
        assert!(matches!(input.next().await.unwrap(), Message::Watermark(100)));
        tx0.send(Message::Watermark(200)).await.unwrap();
        assert!(matches!(input.next().await.unwrap(), Message::Watermark(200)));
        // Input 1 speaks again, behind: the watermark does not go back...
        tx1.send(Message::Watermark(150)).await.unwrap();
        tx1.send(Message::Watermark(260)).await.unwrap();
        let quiet = tokio::time::timeout(std::time::Duration::from_millis(50), input.next()).await;
        assert!(quiet.is_err(), "no watermark may come out: {:?}", quiet.map(|m| m.map(|m| format!("{m:?}"))));
        // ...and it holds the next advance again.
        tx0.send(Message::Watermark(500)).await.unwrap();
        assert!(matches!(input.next().await.unwrap(), Message::Watermark(260)));
    }

    #[tokio::test]
    async fn at_least_once_lets_rows_pass_a_barrier_that_exactly_once_holds_back() {
        let quiet = |m: std::result::Result<Result<Message>, _>| m.is_err();
        for mode in [CheckpointMode::ExactlyOnce, CheckpointMode::AtLeastOnce] {
            let (tx0, rx0) = mpsc::channel(8);
            let (tx1, rx1) = mpsc::channel(8);
            let mut input = ExchangeInput::new(vec![rx0, rx1], "t".into(), mode, &[], Vec::new());
            tx0.send(Message::Barrier(1)).await.unwrap();
            tx0.send(Message::Watermark(10)).await.unwrap();
            tx1.send(Message::Watermark(5)).await.unwrap();
            let wait = std::time::Duration::from_millis(50);
            match mode {
                // Input 0's watermark came after its barrier: held back
                // until input 1 delivers the barrier too.
                CheckpointMode::ExactlyOnce => {
                    assert!(quiet(tokio::time::timeout(wait, input.next()).await));
                    tx1.send(Message::Barrier(1)).await.unwrap();
                    assert!(matches!(input.next().await.unwrap(), Message::Barrier(1)));
                    assert!(matches!(input.next().await.unwrap(), Message::Watermark(5)));
                }
                CheckpointMode::AtLeastOnce => {
                    assert!(matches!(input.next().await.unwrap(), Message::Watermark(5)));
                    tx1.send(Message::Barrier(1)).await.unwrap();
                    assert!(matches!(input.next().await.unwrap(), Message::Barrier(1)));
                }
            }
        }
    }

    /// Checkpoint 1 was abandoned and input 1's source was told only of
    /// checkpoint 2: its barrier 1 never comes. Barrier 2 ends the wait for
    /// it, input 0's rows between its barriers 1 and 2 come before barrier 2,
    /// and a late barrier 1 is ignored.
    #[tokio::test]
    async fn a_newer_barrier_ends_the_alignment_of_an_abandoned_checkpoint() {
        let (tx0, rx0) = mpsc::channel(8);
        let (tx1, rx1) = mpsc::channel(8);
        let mut input = ExchangeInput::new(vec![rx0, rx1], "t".into(), CheckpointMode::ExactlyOnce, &[], Vec::new());
        tx0.send(Message::Watermark(5)).await.unwrap();
        tx1.send(Message::Watermark(5)).await.unwrap();
        assert!(matches!(input.next().await.unwrap(), Message::Watermark(5)));
        tx0.send(Message::Barrier(1)).await.unwrap();
        tx0.send(Message::Watermark(10)).await.unwrap();
        tx0.send(Message::Barrier(2)).await.unwrap();
        tx1.send(Message::Barrier(2)).await.unwrap();
        // Whichever input is read first, barrier 2 comes once both
        // delivered it (input 0's watermark between its barriers is read
        // before, holding nothing back alone).
        assert!(matches!(input.next().await.unwrap(), Message::Barrier(2)));
        tx1.send(Message::Barrier(1)).await.unwrap();
        tx1.send(Message::Watermark(20)).await.unwrap();
        assert!(matches!(input.next().await.unwrap(), Message::Watermark(10)));
        tx0.send(Message::Barrier(3)).await.unwrap();
        tx1.send(Message::Barrier(3)).await.unwrap();
        assert!(matches!(input.next().await.unwrap(), Message::Barrier(3)));
    }

    #[tokio::test]
    async fn a_silent_input_holds_nothing_back_from_the_start() {
        let (tx0, rx0) = mpsc::channel(8);
        let (tx1, rx1) = mpsc::channel(8);
        let mut input =
            ExchangeInput::new(vec![rx0, rx1], "t".into(), CheckpointMode::ExactlyOnce, &[false, true], Vec::new());
        // Input 1 has not said anything yet: input 0's watermark passes.
        tx0.send(Message::Watermark(100)).await.unwrap();
        assert!(matches!(input.next().await.unwrap(), Message::Watermark(100)));
        // Its barrier is not waited for, and neither blocks alignment.
        tx1.send(Message::Barrier(1)).await.unwrap();
        tx0.send(Message::Barrier(1)).await.unwrap();
        assert!(matches!(input.next().await.unwrap(), Message::Barrier(1)));
        tx1.send(Message::End).await.unwrap();
        tx0.send(Message::End).await.unwrap();
        drop((tx0, tx1));
        let mut last = input.next().await.unwrap();
        while !matches!(last, Message::End) {
            last = input.next().await.unwrap();
        }
    }
}
