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

/// What starts a compressed batch ([`Encoder::compressing`]); an Arrow IPC
/// stream starts with its continuation marker, `ff ff ff ff`, instead.
const COMPRESSED: &[u8; 4] = b"WLZ4";

/// LZ4 writes at most this many bytes from one compressed byte: a damaged
/// length claiming more is refused before anything is allocated for it.
const LZ4_MAX_RATIO: usize = 255;

/// Appends values to a state buffer.
#[derive(Default)]
pub struct Encoder {
    pub bytes: Vec<u8>,
    /// Whether batches are compressed.
    compress: bool,
    /// A batch's IPC stream before it is compressed (kept for the next).
    scratch: Vec<u8>,
}

impl Encoder {
    /// An encoder whose batches are LZ4-compressed, for spill files: a
    /// large state fills the disk with them and writes them again when it
    /// merges them, and rows of strings shrink several times. Compressing
    /// costs CPU time that state kept in memory and checkpointed need not
    /// spend, so other state is written as it is. [`Decoder`] reads both.
    pub fn compressing() -> Self {
        Self { compress: true, ..Self::default() }
    }

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
        self.slices_by_key_group(std::iter::once(Ok((batch.clone(), keys.to_vec()))))
    }

    /// Each of `slices` (a batch and its rows' keys) as
    /// [`Self::batches_by_key_group`] writes one, behind one count (a key
    /// group may then have several batches): a large state is encoded one
    /// slice at a time, without a copy of all of it as one batch.
    pub fn slices_by_key_group(
        &mut self,
        slices: impl Iterator<Item = Result<(RecordBatch, Vec<datafusion::arrow::array::ArrayRef>)>>,
    ) -> Result<()> {
        let at = self.bytes.len();
        self.u64(0);
        let mut count = 0u64;
        let mut hashes = Vec::new();
        for slice in slices {
            let (batch, keys) = slice?;
            if batch.num_rows() == 0 {
                continue;
            }
            let groups = crate::runtime::exchange::rows_by_key_group(&crate::runtime::exchange::key_groups(
                &keys,
                batch.num_rows(),
                &mut hashes,
            )?);
            count += groups.len() as u64;
            for (key_group, rows) in groups {
                self.u64(key_group as u64);
                let part = datafusion::arrow::compute::take_record_batch(&batch, &rows)
                    .context(|| "splitting state by key group".into())?;
                self.batch(&part)?;
            }
        }
        self.bytes[at..at + 8].copy_from_slice(&count.to_le_bytes());
        Ok(())
    }

    /// `batch` alone, as a chunk or a spill file holds it: what
    /// [`Decoder::batch_alone`] reads back.
    pub fn batch_alone(batch: &RecordBatch) -> Result<Vec<u8>> {
        let mut e = Self::default();
        e.batch(batch)?;
        Ok(e.bytes)
    }

    /// `batch` alone and compressed, as a spill file holds it: what
    /// [`Decoder::batch_alone`] reads back.
    pub fn batch_alone_compressed(batch: &RecordBatch) -> Result<Vec<u8>> {
        let mut e = Self::compressing();
        e.batch(batch)?;
        Ok(e.bytes)
    }

    /// A batch as an Arrow IPC stream, length-prefixed like
    /// [`Self::bytes`]: written in place, its length filled in after. A
    /// compressing encoder writes [`COMPRESSED`], the stream's length and
    /// the stream compressed as one LZ4 block instead of the stream.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let at = self.bytes.len();
        self.u64(0);
        if self.compress {
            self.scratch.clear();
            write_stream(&mut self.scratch, batch)?;
            let plain = self.scratch.len();
            self.bytes.extend_from_slice(COMPRESSED);
            self.u64(plain as u64);
            // Compressed into the scratch buffer behind the stream, then
            // copied: compressing into `bytes` would leave it the capacity
            // of the uncompressed stream, which a chunk held in memory
            // until it is stored would keep.
            self.scratch.resize(plain + lz4_flex::block::get_maximum_output_size(plain), 0);
            let (stream, block) = self.scratch.split_at_mut(plain);
            let n = lz4_flex::block::compress_into(stream, block)
                .map_err(|e| EngineError::State(format!("compressing state: {e}")))?;
            self.bytes.extend_from_slice(&block[..n]);
        } else {
            write_stream(&mut self.bytes, batch)?;
        }
        let len = (self.bytes.len() - at - 8) as u64;
        self.bytes[at..at + 8].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }
}

/// Appends `batch` to `out` as an Arrow IPC stream.
fn write_stream(out: &mut Vec<u8>, batch: &RecordBatch) -> Result<()> {
    let mut w = StreamWriter::try_new(out, batch.schema_ref()).context(|| "encoding state".into())?;
    w.write(batch).context(|| "encoding state".into())?;
    w.finish().context(|| "encoding state".into())
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

    /// Every batch of `bytes`, one after the other to its end: a spilled
    /// run's blocks, or a chunk's one batch.
    pub fn batches_alone(bytes: &[u8]) -> Result<Vec<RecordBatch>> {
        let mut d = Decoder::new(bytes);
        let mut batches = Vec::new();
        while d.at < d.bytes.len() {
            batches.push(d.batch()?);
        }
        Ok(batches)
    }

    /// [`Self::batch_alone`] with the operator's `schema`, as
    /// [`Self::batch_of`] checks it.
    pub fn batch_alone_of(bytes: &[u8], schema: &SchemaRef) -> Result<RecordBatch> {
        let mut d = Decoder::new(bytes);
        let batch = d.batch_of(schema)?;
        d.finish()?;
        Ok(batch)
    }

    /// Whether everything was read: a layout that grew a part at its end
    /// reads it only when it is there.
    pub fn at_end(&self) -> bool {
        self.at == self.bytes.len()
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
    let mut buffer = match bytes.strip_prefix(COMPRESSED) {
        Some(compressed) => Buffer::from_vec(decompress(compressed)?),
        None => Buffer::from(bytes),
    };
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

/// The IPC stream of a compressed batch: its length, then the LZ4 block.
fn decompress(compressed: &[u8]) -> Result<Vec<u8>> {
    let damaged = |why: String| EngineError::State(format!("a compressed state batch is damaged: {why}"));
    let (len, block) = compressed.split_first_chunk::<8>().ok_or_else(|| damaged("cut short".into()))?;
    let len = u64::from_le_bytes(*len);
    if len > (block.len() as u64).saturating_mul(LZ4_MAX_RATIO as u64) {
        return Err(damaged(format!("{len} bytes claimed from {} compressed", block.len())));
    }
    let stream = lz4_flex::block::decompress(block, len as usize).map_err(|e| damaged(e.to_string()))?;
    match stream.len() as u64 == len {
        true => Ok(stream),
        false => Err(damaged(format!("{} bytes where {len} were written", stream.len()))),
    }
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

    /// A compressing encoder's batch reads back as the batch, smaller when
    /// its strings repeat (as spilled rows' do), and allocated no larger
    /// than it needs; a plain and a compressed
    /// batch read back alike from one buffer.
    #[test]
    fn a_compressed_batch_reads_back_smaller() {
        use datafusion::arrow::array::StringArray;
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, true),
            Field::new("url", DataType::Utf8, true),
        ]));
        let urls: Vec<Option<String>> = (0..10_000)
            .map(|i| (i % 7 != 0).then(|| format!("https://www.nexmark.com/item.htm?query={}", i % 50)))
            .collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from_iter((0..10_000).map(|i| Some(i / 3)))), Arc::new(StringArray::from(urls))],
        )
        .unwrap();
        let (plain, compressed) =
            (Encoder::batch_alone(&batch).unwrap(), Encoder::batch_alone_compressed(&batch).unwrap());
        assert!(compressed.len() * 3 < plain.len(), "{} bytes compressed from {}", compressed.len(), plain.len());
        // Held as a chunk until stored, it takes about its length.
        assert!(compressed.capacity() * 2 < plain.len(), "{} bytes allocated", compressed.capacity());
        assert_eq!(Decoder::batch_alone(&compressed).unwrap(), batch);
        let mut both = Encoder::compressing();
        both.batch(&batch).unwrap();
        both.bytes.extend_from_slice(&plain);
        let mut d = Decoder::new(&both.bytes);
        assert_eq!((d.batch().unwrap(), d.batch().unwrap()), (batch.clone(), batch));
        d.finish().unwrap();
    }

    /// A damaged compressed batch is an error: one whose length claims
    /// more than its block can hold (refused before allocating it), one
    /// cut short, one whose block is garbage.
    #[test]
    fn a_damaged_compressed_batch_is_an_error() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..1_000))]).unwrap();
        let good = Encoder::batch_alone_compressed(&batch).unwrap();
        // The stream's length follows the batch's length and the marker.
        let mut huge = good.clone();
        huge[12..20].copy_from_slice(&(1u64 << 60).to_le_bytes());
        let mut short = good[..good.len() - 10].to_vec();
        let body = (short.len() - 8) as u64;
        short[..8].copy_from_slice(&body.to_le_bytes());
        let mut garbage = good.clone();
        for b in &mut garbage[20..] {
            *b = 0xfe;
        }
        for (what, bytes) in [("huge", huge), ("short", short), ("garbage", garbage)] {
            let decoded = Decoder::batch_alone(&bytes);
            assert!(matches!(&decoded, Err(EngineError::State(_))), "{what}: {decoded:?}");
            if what == "huge" {
                assert!(decoded.unwrap_err().to_string().contains("claimed"));
            }
        }
    }
}
