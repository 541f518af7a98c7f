//! A VARCHAR column written in place: generators append bytes straight to
//! its values buffer, with no string per row.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::error::ArrowError;

/// Values and offsets of a VARCHAR column being built.
pub(crate) struct Text {
    pub(crate) values: Vec<u8>,
    offsets: Vec<i32>,
}

impl Text {
    /// Room for `rows` values of about `bytes_per_row` bytes.
    pub(crate) fn with_capacity(rows: usize, bytes_per_row: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            values: Vec::with_capacity(rows * bytes_per_row),
            offsets,
        }
    }

    /// Ends the current value: the bytes appended since the last call.
    #[inline]
    pub(crate) fn end_value(&mut self) {
        // A batch holds far less than 2 GiB of text.
        self.offsets.push(self.values.len() as i32);
    }

    #[inline]
    pub(crate) fn push(&mut self, value: &[u8]) {
        self.values.extend_from_slice(value);
        self.end_value();
    }

    /// The column; the generators write ASCII only, which arrow checks.
    pub(crate) fn finish(self) -> Result<ArrayRef, ArrowError> {
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        Ok(Arc::new(StringArray::try_new(
            offsets,
            Buffer::from_vec(self.values),
            None,
        )?))
    }
}
