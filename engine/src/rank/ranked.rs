//! One partition's rows in rank order.
//!
//! Rows are kept as arrow row-format bytes, ordered by their encoded sort
//! key and then an arrival number, so that ties rank by arrival (the
//! arrival number counts down when the later row wins ties). Each row's
//! arrival number also tells it apart from an equal row: what a batch
//! changed is found by comparing the numbers at each rank before and after.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A row of a ranking: its arrival number and its encoded columns.
pub(super) type Entry = (u64, Arc<[u8]>);

/// The rows of one partition, best first.
#[derive(Default)]
pub(super) struct Ranked {
    rows: BTreeMap<(Box<[u8]>, u64), Arc<[u8]>>,
    bytes: usize,
}

impl Ranked {
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Bytes of the rows and sort keys held.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a row with `sort` and arrival `seq` would rank among the
    /// first `capacity` (always, without a capacity).
    pub(super) fn enters(&self, sort: &[u8], seq: u64, capacity: Option<usize>) -> bool {
        match capacity {
            Some(c) if self.rows.len() >= c => self
                .rows
                .last_key_value()
                .is_some_and(|((worst, worst_seq), _)| (sort, seq) < (worst.as_ref(), *worst_seq)),
            _ => true,
        }
    }

    /// Adds a row, then drops the rows ranked past `capacity`.
    pub(super) fn insert(&mut self, sort: &[u8], seq: u64, row: Arc<[u8]>, capacity: Option<usize>) {
        self.bytes += sort.len() + row.len() + ENTRY_OVERHEAD;
        self.rows.insert((sort.into(), seq), row);
        if let Some(c) = capacity {
            while self.rows.len() > c {
                if let Some(((s, _), r)) = self.rows.pop_last() {
                    self.bytes -= s.len() + r.len() + ENTRY_OVERHEAD;
                }
            }
        }
    }

    /// Takes away one row equal to `row` (sorted at `sort`); false when
    /// there is none.
    pub(super) fn retract(&mut self, sort: &[u8], row: &[u8]) -> bool {
        let from: (Box<[u8]>, u64) = (sort.into(), 0);
        let to: (Box<[u8]>, u64) = (sort.into(), u64::MAX);
        let found = self
            .rows
            .range(from..=to)
            .find(|(_, r)| r.as_ref() == row)
            .map(|(k, _)| k.clone());
        match found.and_then(|k| self.rows.remove_entry(&k)) {
            Some(((s, _), r)) => {
                self.bytes -= s.len() + r.len() + ENTRY_OVERHEAD;
                true
            }
            None => false,
        }
    }

    /// The first `n` rows, best first.
    pub(super) fn top(&self, n: usize) -> impl Iterator<Item = Entry> + '_ {
        self.rows.iter().take(n).map(|((_, seq), row)| (*seq, Arc::clone(row)))
    }

    /// Every row with its arrival number, best first (for checkpoints).
    pub(super) fn entries(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.rows.iter().map(|((_, seq), row)| (*seq, row.as_ref()))
    }
}

/// What a kept row costs beyond its bytes: the tree's share, the key box
/// and the row's reference count.
const ENTRY_OVERHEAD: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: u8) -> Arc<[u8]> {
        Arc::from(vec![v])
    }

    fn seqs(r: &Ranked) -> Vec<u64> {
        r.top(usize::MAX).map(|(s, _)| s).collect()
    }

    #[test]
    fn a_full_ranking_takes_only_rows_better_than_its_last() {
        let mut r = Ranked::default();
        for (seq, sort) in [(1, 5u8), (2, 3), (3, 5), (4, 9)] {
            if r.enters(&[sort], seq, Some(2)) {
                r.insert(&[sort], seq, row(sort), Some(2));
            }
        }
        // 3 and the first 5 (ties rank by arrival); 9 never entered.
        assert_eq!(seqs(&r), vec![2, 1]);
        assert!(!r.enters(&[5], 5, Some(2)));
        assert!(r.enters(&[4], 5, Some(2)));
    }

    #[test]
    fn a_retraction_takes_away_one_equal_row() {
        let mut r = Ranked::default();
        r.insert(&[1], 1, row(7), None);
        r.insert(&[1], 2, row(7), None);
        r.insert(&[1], 3, row(8), None);
        assert!(r.retract(&[1], &[8]));
        assert!(r.retract(&[1], &[7]));
        assert_eq!(seqs(&r), vec![2]);
        assert!(!r.retract(&[2], &[7]));
        assert!(r.retract(&[1], &[7]));
        assert!(r.is_empty());
        assert_eq!(r.bytes(), 0);
    }
}
