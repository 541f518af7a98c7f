//! A small binary layout for operator state: little-endian integers,
//! length-prefixed byte strings, and Arrow IPC for batches (partial
//! aggregates, buffered rows), so that state is stored as Arrow, never as
//! re-aggregated rows.

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamDecoder;
use datafusion::arrow::ipc::writer::StreamWriter;

use crate::error::{EngineError, Result, ResultExt};

/// Appends values to a state buffer.
#[derive(Default)]
pub struct Encoder {
    pub bytes: Vec<u8>,
}

impl Encoder {
    pub fn i64(&mut self, v: i64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.bytes.extend_from_slice(b);
    }

    /// `batch` as one batch per key group of `keys` (its rows' keys, as
    /// the exchange hashes them), preceded by their count: how keyed state
    /// is written so that a job restores at another parallelism.
    pub fn batches_by_key_group(
        &mut self,
        batch: &RecordBatch,
        keys: &[datafusion::arrow::array::ArrayRef],
    ) -> Result<()> {
        if batch.num_rows() == 0 {
            self.u64(0);
            return Ok(());
        }
        let mut hashes = Vec::new();
        let groups = crate::runtime::exchange::rows_by_key_group(&crate::runtime::exchange::key_groups(
            keys,
            batch.num_rows(),
            &mut hashes,
        )?);
        self.u64(groups.len() as u64);
        for (key_group, rows) in groups {
            self.u64(key_group as u64);
            let part = datafusion::arrow::compute::take_record_batch(batch, &rows)
                .context(|| "splitting state by key group".into())?;
            self.batch(&part)?;
        }
        Ok(())
    }

    /// `batch` alone, as a chunk or a spill file holds it: what
    /// [`Decoder::batch_alone`] reads back.
    pub fn batch_alone(batch: &RecordBatch) -> Result<Vec<u8>> {
        let mut e = Self::default();
        e.batch(batch)?;
        Ok(e.bytes)
    }

    /// A batch as an Arrow IPC stream, length-prefixed like
    /// [`Self::bytes`]: written in place, its length filled in after.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let at = self.bytes.len();
        self.u64(0);
        {
            let mut w =
                StreamWriter::try_new(&mut self.bytes, batch.schema_ref()).context(|| "encoding state".into())?;
            w.write(batch).context(|| "encoding state".into())?;
            w.finish().context(|| "encoding state".into())?;
        }
        let len = (self.bytes.len() - at - 8) as u64;
        self.bytes[at..at + 8].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }
}

/// Reads values back in the order they were appended.
pub struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end =
            self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or_else(|| {
                EngineError::State(format!("state ends early: wanted {n} bytes at offset {}", self.at))
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    pub fn i64(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        Ok(i64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = usize::try_from(self.u64()?).map_err(|_| EngineError::State("state length overflows".into()))?;
        self.take(n)
    }

    pub fn batch(&mut self) -> Result<RecordBatch> {
        decode_batch(self.bytes()?)
    }

    /// A batch with the columns of `schema`: damaged state whose batch
    /// decodes to other columns or types is refused here, rather than
    /// panicking in the operator that reads it (kernels and accumulators
    /// downcast their input). Nested field names are not compared.
    pub fn batch_of(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let batch = self.batch()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows())).with_match_field_names(false);
        RecordBatch::try_new_with_options(std::sync::Arc::clone(schema), batch.columns().to_vec(), &options)
            .map_err(|e| EngineError::State(format!("a state batch does not have the operator's columns: {e}")))
    }

    /// The one batch of `bytes` ([`Encoder::batch_alone`]'s), nothing
    /// after it.
    pub fn batch_alone(bytes: &[u8]) -> Result<RecordBatch> {
        let mut d = Decoder::new(bytes);
        let batch = d.batch()?;
        d.finish()?;
        Ok(batch)
    }

    /// [`Self::batch_alone`] with the operator's `schema`, as
    /// [`Self::batch_of`] checks it.
    pub fn batch_alone_of(bytes: &[u8], schema: &SchemaRef) -> Result<RecordBatch> {
        let mut d = Decoder::new(bytes);
        let batch = d.batch_of(schema)?;
        d.finish()?;
        Ok(batch)
    }

    /// Whether everything was read (a shorter read means a format mismatch).
    pub fn finish(&self) -> Result<()> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(EngineError::State(format!("{} bytes of state left unread", self.bytes.len() - self.at)))
        }
    }
}

/// Decodes one batch [`Encoder::batch`] wrote (without its length).
pub fn decode_batch(bytes: &[u8]) -> Result<RecordBatch> {
    let mut buffer = Buffer::from(bytes);
    // Arrow's push decoder, not its reader: the reader allocates the
    // body length a message's metadata claims before reading it (a
    // damaged length aborted the process: the checkpoint fuzz target),
    // the decoder only ever holds the bytes it is given. It also trusts
    // the buffer lengths of the metadata and panics slicing past the
    // data on some damaged bytes: damaged state must be an error, so
    // that recovery falls back to the previous checkpoint.
    let read = std::panic::catch_unwind(move || {
        let mut decoder = StreamDecoder::new();
        match decoder.decode(&mut buffer).context(|| "decoding state".into())? {
            Some(batch) => Ok(batch),
            None => Err(EngineError::State("a state batch is missing or cut short".into())),
        }
    });
    read.unwrap_or_else(|_| Err(EngineError::State("a state batch is malformed".into())))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// A state batch whose IPC metadata gives a buffer length past its data
    /// (the checkpoint fuzz target's input, made by hand) is an error, not
    /// a panic in arrow's reader.
    #[test]
    fn a_batch_with_a_buffer_past_its_data_is_an_error() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        let mut e = Encoder::default();
        e.batch(&batch).unwrap();
        // The values buffer's length, 24 bytes, in the batch's flatbuffer
        // metadata: made huge.
        let at = e
            .bytes
            .windows(8)
            .rposition(|w| w == 24u64.to_le_bytes())
            .expect("the values buffer's length is in the metadata");
        e.bytes[at + 7] = 0x80;
        let decoded = Decoder::new(&e.bytes).batch();
        assert!(matches!(decoded, Err(EngineError::State(_))), "{decoded:?}");
    }

    /// A record batch message whose body length is huge (the checkpoint
    /// fuzz target's abort, made by hand): an error, without allocating
    /// what the length claims (which aborted the process).
    #[test]
    fn a_batch_claiming_a_huge_body_is_an_error() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3, 4]))]).unwrap();
        let mut e = Encoder::default();
        e.batch(&batch).unwrap();
        // The body and its one buffer are 32 bytes: every such length in
        // the metadata becomes 2^56.
        let mut hits = 0;
        for at in 0..e.bytes.len() - 8 {
            if e.bytes[at..at + 8] == 32u64.to_le_bytes() {
                e.bytes[at + 7] = 1;
                hits += 1;
            }
        }
        assert!(hits > 0);
        let decoded = Decoder::new(&e.bytes).batch();
        assert!(matches!(decoded, Err(EngineError::State(_))), "{decoded:?}");
        let mut intact = Encoder::default();
        intact.batch(&batch).unwrap();
        assert_eq!(Decoder::new(&intact.bytes).batch().unwrap(), batch);
    }
}
