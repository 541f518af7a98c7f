//! Reading a file as chunks of whole lines, without blocking the runtime
//! and without ever holding more than a bounded number of bytes: a line
//! longer than the table's maximum record size is cut and reported, never
//! read into memory whole (a file with no line end, such as `/dev/zero`,
//! would otherwise grow one line without end).

use std::ops::Range;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use tokio::fs::File;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::unix::pipe;

/// Large reads keep the number of blocking-pool round trips of `tokio::fs`
/// low; each refill is one of them.
const READ_BUFFER: usize = 1 << 20;

/// A chunk stops taking lines once it holds this many bytes, whatever its
/// line count: with long lines, a batch's worth of them could otherwise
/// hold gigabytes.
const CHUNK_BYTES: usize = 16 << 20;

/// Bytes of an oversized line kept for its error message: enough for the
/// 200 characters an excerpt quotes, even of 4-byte characters.
const OVERSIZED_PREFIX: usize = 800;

/// How long a named pipe may stay quiet before the lines read from it so
/// far are handed on: rows written to a pipe held open come through within
/// this, while a writer that keeps writing fills whole chunks (and keeps
/// the pipe from other readers of the same file between its lines).
const PIPE_QUIET: std::time::Duration = std::time::Duration::from_millis(50);

/// The default `'source.max-record-size'`: it holds any sane JSON or CSV
/// record while bounding what one line can cost.
pub(crate) const DEFAULT_MAX_RECORD: usize = 16 << 20;

/// Up to a batch's worth of non-blank lines of one file, kept contiguous so
/// that a decoder can take the whole chunk in one call.
#[derive(Debug, Default)]
pub(crate) struct LineChunk {
    /// The lines, each ending in `\n`.
    bytes: Vec<u8>,
    /// End offset of every line in `bytes`.
    ends: Vec<usize>,
    /// 1-based line number of every line in its file (blank lines count).
    numbers: Vec<u64>,
    /// A line after the others that was too long to read: it ends the
    /// chunk, so that it is reported in file order.
    oversized: Option<Oversized>,
}

/// A line longer than the maximum record size: only its start is kept.
#[derive(Debug)]
pub(crate) struct Oversized {
    /// 1-based line number in its file.
    pub(crate) number: u64,
    /// The line's first bytes, for the error message.
    pub(crate) prefix: Vec<u8>,
    /// The maximum it exceeded, in bytes.
    pub(crate) limit: usize,
}

impl LineChunk {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Whether a chunk filled from a file found its end: no line, not even
    /// an oversized one.
    pub(crate) fn at_end(&self) -> bool {
        self.is_empty() && self.oversized.is_none()
    }

    /// The line after the chunk's lines that was too long to read, if any.
    pub(crate) fn oversized(&self) -> Option<&Oversized> {
        self.oversized.as_ref()
    }

    /// Lines `range` of the chunk, contiguous, each with its `\n`, so that
    /// any run of lines decodes in one call.
    pub(crate) fn lines(&self, range: Range<usize>) -> &[u8] {
        let offset = |line: usize| match line {
            0 => 0,
            i => self.ends[i - 1],
        };
        &self.bytes[offset(range.start)..offset(range.end)]
    }

    /// Line number of line `i` of the chunk in its file.
    pub(crate) fn number(&self, i: usize) -> u64 {
        self.numbers[i]
    }

    /// Appends one record as a line numbered `number` (a Kafka message and
    /// its offset), so that other line-less sources decode like files.
    pub(crate) fn push(&mut self, record: &[u8], number: u64) {
        self.bytes.extend_from_slice(record);
        if record.last() != Some(&b'\n') {
            self.bytes.push(b'\n');
        }
        self.ends.push(self.bytes.len());
        self.numbers.push(number);
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.numbers.clear();
        self.oversized = None;
    }
}

/// What reading one line found.
enum LineRead {
    /// A whole line (the last of a file may lack its `\n`).
    Line,
    /// The end of the input: nothing was read.
    End,
    /// A line longer than the maximum; `ended` says whether its end was
    /// consumed too (else the rest is still to skip).
    TooLong { ended: bool },
}

/// The bytes of a file, a named pipe or a device.
type Input = Box<dyn AsyncRead + Send + Unpin>;

/// An open file being read line by line.
pub(crate) struct LineReader {
    inner: BufReader<Input>,
    /// Lines read so far, blank ones included.
    line: u64,
    /// Offset in the file of the next byte to consume.
    offset: u64,
    /// Offset of the reader's first line.
    first_line: u64,
    /// The reader's lines are those that start before this offset (a split
    /// of the file, `split.rs`); the line that crosses it is read whole.
    end: u64,
    /// The longest line kept, in bytes without its line end.
    max_record: usize,
    /// Within a line that was too long: what is left of it is skipped
    /// before the next line is read.
    skipping: bool,
    /// A named pipe: a chunk ends when the pipe stays quiet for
    /// [`PIPE_QUIET`], since its writer may hold it open and write the rest
    /// much later.
    pipe: bool,
}

impl LineReader {
    /// Opens `path`; lines longer than `max_record` bytes are cut.
    ///
    /// A named pipe is read through the reactor rather than the blocking
    /// pool: opening one blocks until a writer comes, and reading one until
    /// it writes, possibly never; a blocking thread in either would outlive
    /// a stopped job and, repeated, exhaust the pool. The pipe lasts until
    /// its writers have come and gone, as it does read blocking.
    ///
    /// With `bytes`, only the lines that start within that range of the
    /// file are read (a split, `split.rs`): the reader starts after the
    /// first line end at or after `bytes.start - 1`, so that a line cut by
    /// the start belongs to the split before.
    pub(crate) async fn open(path: &Path, max_record: usize, bytes: Option<Range<u64>>) -> std::io::Result<Self> {
        // One trip to the blocking pool per file, not two: a directory of
        // many small files costs a round trip or so each.
        let owned = path.to_path_buf();
        let start = bytes.as_ref().map_or(0, |b| b.start);
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<Option<std::fs::File>> {
            if std::fs::metadata(&owned)?.file_type().is_fifo() {
                return Ok(None);
            }
            let mut file = std::fs::File::open(&owned)?;
            // From the byte before the start: a line end there means the
            // split's first line starts right at it.
            if start > 0 {
                file.seek(SeekFrom::Start(start - 1))?;
            }
            Ok(Some(file))
        })
        .await
        .map_err(std::io::Error::other)??;
        let pipe = file.is_none();
        let input: Input = match file {
            Some(file) => Box::new(File::from_std(file)),
            None => Box::new(pipe::OpenOptions::new().open_receiver(path)?),
        };
        let mut reader = Self {
            inner: BufReader::with_capacity(READ_BUFFER, input),
            line: 0,
            offset: start.saturating_sub(1),
            first_line: 0,
            end: bytes.map_or(u64::MAX, |b| b.end),
            max_record,
            skipping: start > 0,
            pipe,
        };
        // The end of the line the split's start cuts, which the split
        // before reads.
        reader.skip_rest_of_line().await?;
        reader.first_line = reader.offset;
        Ok(reader)
    }

    /// Consumes `n` bytes of the read buffer.
    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.offset += n as u64;
    }

    /// Whether the next line starts past the reader's range.
    fn past_end(&self) -> bool {
        self.offset >= self.end
    }

    /// Where the reader's first line starts in the file: 0, or for a split
    /// the byte after the line end its start cut.
    pub(crate) fn first_line(&self) -> u64 {
        self.first_line
    }

    /// Lines consumed so far, blank and bad ones included: reopening the
    /// file and skipping this many lines continues right after them.
    pub(crate) fn position(&self) -> u64 {
        self.line
    }

    /// Consumes the first `lines` lines without keeping them, so that a
    /// resumed read continues where a checkpoint left off and its line
    /// numbers stay those of the file. Returns how many lines there were,
    /// fewer than `lines` only when the file ends first.
    ///
    /// Counts line ends in the read buffer rather than copying lines, so
    /// that skipping a large file costs no allocation per line.
    pub(crate) async fn skip(&mut self, lines: u64) -> std::io::Result<u64> {
        // Bytes of a line already consumed whose end is not read yet.
        let mut partial = false;
        while self.line < lines && (partial || !self.past_end()) {
            // Bytes before the range's end: a line starting there is the
            // reader's last.
            let before_end = usize::try_from(self.end.saturating_sub(self.offset)).unwrap_or(usize::MAX);
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                // A last line without terminator is a line, as in `fill`.
                if partial {
                    self.line += 1;
                }
                break;
            }
            let wanted = lines - self.line;
            let mut consumed = buf.len();
            let mut ends = 0;
            for end in memchr::memchr_iter(b'\n', buf) {
                ends += 1;
                // The next line starts past the range: this one is the last.
                if ends == wanted || end + 1 >= before_end {
                    consumed = end + 1;
                    break;
                }
            }
            partial = consumed > 0 && buf[consumed - 1] != b'\n';
            self.line += ends;
            self.consume(consumed);
        }
        Ok(self.line)
    }

    /// Replaces `chunk` with the next (up to) `max_lines` non-blank lines;
    /// a chunk [`LineChunk::at_end`] means the end of the file. Blank lines are skipped
    /// because Flink's line formats skip them. A line longer than the
    /// maximum record size ends the chunk as its oversized line.
    pub(crate) async fn fill(
        &mut self,
        chunk: &mut LineChunk,
        max_lines: usize,
    ) -> std::io::Result<()> {
        chunk.clear();
        self.skip_rest_of_line().await?;
        while chunk.len() < max_lines && chunk.bytes.len() < CHUNK_BYTES {
            if self.pipe && !chunk.is_empty() && self.inner.buffer().is_empty() {
                // Cancel-safe: a timed-out `fill_buf` has read nothing.
                match tokio::time::timeout(PIPE_QUIET, self.inner.fill_buf()).await {
                    Err(_) => break,
                    Ok(read) => {
                        read?;
                    }
                }
            }
            let start = chunk.bytes.len();
            match self.read_line(&mut chunk.bytes).await? {
                LineRead::End => break,
                LineRead::TooLong { ended } => {
                    self.line += 1;
                    let prefix = chunk.bytes[start..].iter().take(OVERSIZED_PREFIX).copied().collect();
                    chunk.bytes.truncate(start);
                    chunk.oversized = Some(Oversized {
                        number: self.line,
                        prefix,
                        limit: self.max_record,
                    });
                    // Reported before the rest is skipped: the rest of a
                    // line may never end (`/dev/zero`).
                    self.skipping = !ended;
                    break;
                }
                LineRead::Line => {}
            }
            self.line += 1;
            if chunk.bytes[start..].iter().all(u8::is_ascii_whitespace) {
                chunk.bytes.truncate(start);
                continue;
            }
            // The last line of a file may lack its terminator; decoders want
            // every record terminated.
            if chunk.bytes.last() != Some(&b'\n') {
                chunk.bytes.push(b'\n');
            }
            chunk.ends.push(chunk.bytes.len());
            chunk.numbers.push(self.line);
        }
        Ok(())
    }

    /// Appends the next line to `out`, with its `\n` if it has one, unless
    /// it is longer than the maximum: then `out` gets only its first bytes
    /// (at most the maximum), and as much of it is consumed as was looked
    /// at.
    async fn read_line(&mut self, out: &mut Vec<u8>) -> std::io::Result<LineRead> {
        let start = out.len();
        if self.past_end() {
            return Ok(LineRead::End);
        }
        loop {
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                return Ok(if out.len() > start { LineRead::Line } else { LineRead::End });
            }
            let (len, ended) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            // The line end is not part of the record.
            let record = out.len() - start + len - usize::from(ended);
            if record > self.max_record {
                let wanted = OVERSIZED_PREFIX.saturating_sub(out.len() - start).min(len);
                out.extend_from_slice(&buf[..wanted]);
                self.consume(len);
                return Ok(LineRead::TooLong { ended });
            }
            out.extend_from_slice(&buf[..len]);
            self.consume(len);
            if ended {
                return Ok(LineRead::Line);
            }
        }
    }

    /// Consumes what is left of an oversized line, up to and with its end.
    async fn skip_rest_of_line(&mut self) -> std::io::Result<()> {
        while self.skipping {
            let buf = self.inner.fill_buf().await?;
            let (len, ended) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), buf.is_empty()),
            };
            self.consume(len);
            self.skipping = !ended;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line `reader` gives, with its number, to the end.
    async fn all_lines(reader: &mut LineReader) -> Vec<(u64, String)> {
        let mut chunk = LineChunk::default();
        let mut lines = Vec::new();
        loop {
            reader.fill(&mut chunk, 3).await.unwrap();
            if chunk.at_end() {
                return lines;
            }
            for i in 0..chunk.len() {
                lines.push((chunk.number(i), String::from_utf8(chunk.lines(i..i + 1).to_vec()).unwrap()));
            }
        }
    }

    /// Read in splits of any size, a file gives each of its lines once, in
    /// order; a split resumed after any count of its lines gives the rest.
    #[tokio::test]
    async fn splits_of_every_size_read_each_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        let text = "a\n\nbb\nccc\n\n\ndddd\ne\nffffff\ng";
        std::fs::write(&path, text).unwrap();
        let whole = all_lines(&mut LineReader::open(&path, 100, None).await.unwrap()).await;
        assert_eq!(whole.len(), 7);
        let size = text.len() as u64;
        for split in 1..=size + 1 {
            let count = size.div_ceil(split);
            let mut read = Vec::new();
            for k in 0..count {
                let end = if k + 1 == count { u64::MAX } else { (k + 1) * split };
                let bytes = k * split..end;
                let mut reader = LineReader::open(&path, 100, Some(bytes.clone())).await.unwrap();
                let lines = all_lines(&mut reader).await;
                let total = reader.position();
                for resumed_at in 0..=total {
                    let mut again = LineReader::open(&path, 100, Some(bytes.clone())).await.unwrap();
                    assert_eq!(again.skip(resumed_at).await.unwrap(), resumed_at);
                    let rest: Vec<String> = all_lines(&mut again).await.into_iter().map(|l| l.1).collect();
                    let expected: Vec<String> =
                        lines.iter().filter(|l| l.0 > resumed_at).map(|l| l.1.clone()).collect();
                    assert_eq!(rest, expected, "split {bytes:?} of {split} resumed at {resumed_at}");
                }
                // Skipping past the split's end stops at its last line.
                let mut past = LineReader::open(&path, 100, Some(bytes.clone())).await.unwrap();
                assert_eq!(past.skip(total + 5).await.unwrap(), total, "split {bytes:?} of {split}");
                read.extend(lines.into_iter().map(|l| l.1));
            }
            let expected: Vec<String> = whole.iter().map(|l| l.1.clone()).collect();
            assert_eq!(read, expected, "splits of {split} bytes");
        }
    }
}
