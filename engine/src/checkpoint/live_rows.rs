//! Which rows of a chunk are still live, as a checkpoint lists them: one
//! bit a row. A batch written once as a chunk is then only referenced by
//! later checkpoints while its rows go (a group loaded back from a spilled
//! run, a session row purged once its session fired).

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::buffer::{BooleanBuffer, Buffer};

/// The bitmap of `live`: bit `i` set when row `i` is live.
pub(crate) fn bitmap(live: &[bool]) -> Vec<u8> {
    BooleanBuffer::from(live).sliced().as_slice()[..live.len().div_ceil(8)].to_vec()
}

/// The live rows of a chunk of `rows` rows as `bitmap` lists them, as a
/// filter; `None` when the bitmap is not that long (damaged state).
pub(crate) fn mask(bitmap: &[u8], rows: usize) -> Option<BooleanArray> {
    (bitmap.len() == rows.div_ceil(8))
        .then(|| BooleanArray::new(BooleanBuffer::new(Buffer::from(bitmap), 0, rows), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bitmap_reads_back_as_its_rows() {
        for n in [0, 1, 7, 8, 9, 100] {
            let live: Vec<bool> = (0..n).map(|i| i % 3 != 1).collect();
            let mask = mask(&bitmap(&live), n).unwrap();
            assert_eq!(mask.iter().map(Option::unwrap).collect::<Vec<_>>(), live);
            assert!(super::mask(&bitmap(&live), n + 8).is_none());
        }
    }
}
