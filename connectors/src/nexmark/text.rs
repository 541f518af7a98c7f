//! A VARCHAR column being built: arrow's string builder, fed `&str`s that
//! are valid by construction, so that finishing a batch checks nothing
//! again.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder};

/// Values of a VARCHAR column being built.
pub(crate) struct Text(StringBuilder);

impl Text {
    /// Room for `rows` values of about `bytes_per_row` bytes.
    pub(crate) fn with_capacity(rows: usize, bytes_per_row: usize) -> Self {
        Self(StringBuilder::with_capacity(rows, rows * bytes_per_row))
    }

    #[inline]
    pub(crate) fn push(&mut self, value: &str) {
        self.0.append_value(value);
    }

    /// Appends `piece` to the value being built, which `end_value` ends.
    #[inline]
    pub(crate) fn write(&mut self, piece: &str) {
        // Writing to a builder's buffer cannot fail.
        let _ = self.0.write_str(piece);
    }

    #[inline]
    pub(crate) fn end_value(&mut self) {
        self.0.append_value("");
    }

    pub(crate) fn finish(mut self) -> ArrayRef {
        Arc::new(self.0.finish())
    }
}
