//! Reading a file as chunks of whole lines, without blocking the runtime.

use std::ops::Range;
use std::path::Path;

use tokio::fs::File;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Large reads keep the number of blocking-pool round trips of `tokio::fs`
/// low; each refill is one of them.
const READ_BUFFER: usize = 1 << 20;

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
}

impl LineChunk {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
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
    }
}

/// An open file being read line by line.
pub(crate) struct LineReader {
    inner: BufReader<File>,
    /// Lines read so far, blank ones included.
    line: u64,
}

impl LineReader {
    pub(crate) async fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path).await?;
        Ok(Self {
            inner: BufReader::with_capacity(READ_BUFFER, file),
            line: 0,
        })
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
        while self.line < lines {
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
            let line_ends = buf.iter().enumerate().filter(|(_, b)| **b == b'\n');
            for (end, _) in line_ends {
                ends += 1;
                if ends == wanted {
                    consumed = end + 1;
                    break;
                }
            }
            partial = consumed > 0 && buf[consumed - 1] != b'\n';
            self.line += ends;
            self.inner.consume(consumed);
        }
        Ok(self.line)
    }

    /// Replaces `chunk` with the next (up to) `max_lines` non-blank lines;
    /// an empty chunk means the end of the file. Blank lines are skipped
    /// because Flink's line formats skip them.
    pub(crate) async fn fill(
        &mut self,
        chunk: &mut LineChunk,
        max_lines: usize,
    ) -> std::io::Result<()> {
        chunk.clear();
        while chunk.len() < max_lines {
            let start = chunk.bytes.len();
            if self.inner.read_until(b'\n', &mut chunk.bytes).await? == 0 {
                break;
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
}
