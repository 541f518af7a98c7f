//! The input side of a task fed by an exchange: merges its channels and
//! combines their watermarks (the minimum over inputs that have not ended).

use datafusion::arrow::array::Int64Array;
use tokio_stream::StreamExt;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{EngineError, Result};
use crate::message::{EventTime, Message, StreamBatch, WATERMARK_END, WATERMARK_MIN};

/// All input channels of one task.
pub struct ExchangeInput {
    channels: StreamMap<usize, ReceiverStream<Message>>,
    watermarks: Vec<EventTime>,
    ended: Vec<bool>,
    combined: EventTime,
    task: String,
}

impl ExchangeInput {
    pub fn new(receivers: Vec<tokio::sync::mpsc::Receiver<Message>>, task: String) -> Self {
        let n = receivers.len();
        let mut channels = StreamMap::new();
        for (i, r) in receivers.into_iter().enumerate() {
            channels.insert(i, ReceiverStream::new(r));
        }
        Self {
            channels,
            watermarks: vec![WATERMARK_MIN; n],
            ended: vec![false; n],
            combined: WATERMARK_MIN,
            task,
        }
    }

    /// The next merged message; `Message::End` when every input has ended.
    pub async fn next(&mut self) -> Result<Message> {
        loop {
            let Some((input, msg)) = self.channels.next().await else {
                // A channel that closed without `End` means its task failed:
                // never fire windows on partial input.
                return if self.ended.iter().all(|e| *e) {
                    Ok(Message::End)
                } else {
                    Err(self.closed())
                };
            };
            match msg {
                Message::Data(batch) => return Ok(Message::Data(self.effective(input, batch))),
                Message::Watermark(w) => {
                    self.watermarks[input] = self.watermarks[input].max(w);
                    if let Some(w) = self.advance() {
                        return Ok(Message::Watermark(w));
                    }
                }
                Message::Late(_) => {
                    return Err(EngineError::Plan("late rows cannot cross an exchange".into()));
                }
                Message::End => {
                    self.ended[input] = true;
                    self.watermarks[input] = WATERMARK_END;
                    self.channels.remove(&input);
                    if let Some(w) = self.advance() {
                        return Ok(Message::Watermark(w));
                    }
                }
            }
        }
    }

    fn closed(&self) -> EngineError {
        EngineError::Task {
            task: self.task.clone(),
            message: "an upstream task stopped before its input ended".into(),
        }
    }

    fn advance(&mut self) -> Option<EventTime> {
        let min = self.watermarks.iter().copied().min().unwrap_or(WATERMARK_END);
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
            let others = self
                .watermarks
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != input)
                .map(|(_, w)| *w)
                .min()
                .unwrap_or(WATERMARK_END);
            let combined = self.combined;
            let eff: Int64Array = w.values().iter().map(|v| Some(combined.max(others.min(*v)))).collect();
            batch.row_watermarks = Some(eff);
        }
        batch
    }
}
