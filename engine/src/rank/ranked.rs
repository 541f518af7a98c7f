//! One partition's rows in rank order.
//!
//! Rows are kept as arrow row-format bytes, ordered by their encoded sort
//! key and then an arrival number, so that ties rank by arrival (the
//! arrival number counts down when the later row wins ties). Each row's
//! arrival number also tells it apart from an equal row: what a batch
//! changed is found by comparing the numbers at each rank before and after.
//!
//! Most partitions hold a few rows (a Top-10, a deduplicated key): they are
//! a sorted vector, a tenth of a B-tree's node for one row; a partition
//! that grows past [`SMALL`] rows (every row of a changelog is kept) moves
//! into a B-tree.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A row of a ranking: its arrival number and its encoded columns.
pub(super) type Entry = (u64, Arc<[u8]>);

/// Rows a partition keeps in a sorted vector.
const SMALL: usize = 32;

/// What a kept row costs beyond its bytes: its slot, the key box and the
/// row's reference count.
const ENTRY_OVERHEAD: usize = 48;

/// The rows of one partition, best first.
#[derive(Default)]
pub(super) struct Ranked {
    store: Store,
    bytes: usize,
}

/// A row kept: its sort key, arrival number and encoded columns.
type Kept = (Box<[u8]>, u64, Arc<[u8]>);

/// Where a kept row is in a large partition: its sort key and arrival.
type Place = (Box<[u8]>, u64);

enum Store {
    Small(Vec<Kept>),
    Large(BTreeMap<Place, Arc<[u8]>>),
}

impl Default for Store {
    fn default() -> Self {
        Store::Small(Vec::new())
    }
}

impl Ranked {
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn len(&self) -> usize {
        match &self.store {
            Store::Small(v) => v.len(),
            Store::Large(m) => m.len(),
        }
    }

    /// Bytes of the rows and sort keys held.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    fn last(&self) -> Option<(&[u8], u64)> {
        match &self.store {
            Store::Small(v) => v.last().map(|(s, q, _)| (s.as_ref(), *q)),
            Store::Large(m) => m.last_key_value().map(|((s, q), _)| (s.as_ref(), *q)),
        }
    }

    /// Whether a row with `sort` and arrival `seq` would rank among the
    /// first `capacity` (always, without a capacity).
    pub(super) fn enters(&self, sort: &[u8], seq: u64, capacity: Option<usize>) -> bool {
        match capacity {
            Some(c) if self.len() >= c => self.last().is_some_and(|worst| (sort, seq) < worst),
            _ => true,
        }
    }

    /// Adds a row, then drops the rows ranked past `capacity`.
    pub(super) fn insert(&mut self, sort: &[u8], seq: u64, row: Arc<[u8]>, capacity: Option<usize>) {
        self.bytes += sort.len() + row.len() + ENTRY_OVERHEAD;
        match &mut self.store {
            Store::Small(v) => {
                let at = v.partition_point(|(s, q, _)| (s.as_ref(), *q) < (sort, seq));
                v.insert(at, (sort.into(), seq, row));
                if v.len() > SMALL && capacity.is_none_or(|c| c > SMALL) {
                    let rows = std::mem::take(v).into_iter().map(|(s, q, r)| ((s, q), r)).collect();
                    self.store = Store::Large(rows);
                }
            }
            Store::Large(m) => {
                m.insert((sort.into(), seq), row);
            }
        }
        if let Some(c) = capacity {
            while self.len() > c {
                let dropped = match &mut self.store {
                    Store::Small(v) => v.pop().map(|(s, _, r)| (s, r)),
                    Store::Large(m) => m.pop_last().map(|((s, _), r)| (s, r)),
                };
                if let Some((s, r)) = dropped {
                    self.bytes -= s.len() + r.len() + ENTRY_OVERHEAD;
                }
            }
        }
    }

    /// Sets the encoded columns of the row `(sort, seq)` if it is still
    /// here (rows of a batch are encoded once the batch has ranked them).
    pub(super) fn fill(&mut self, sort: &[u8], seq: u64, row: &Arc<[u8]>) {
        let slot = match &mut self.store {
            Store::Small(v) => v.iter_mut().find(|(s, q, _)| *q == seq && s.as_ref() == sort).map(|(_, _, r)| r),
            Store::Large(m) => m.get_mut(&(Box::from(sort), seq)),
        };
        if let Some(slot) = slot {
            self.bytes = self.bytes - slot.len() + row.len();
            *slot = Arc::clone(row);
        }
    }

    /// Takes away the row `(sort, seq)` (a re-fired result's old row).
    pub(super) fn remove(&mut self, sort: &[u8], seq: u64) -> bool {
        let removed = match &mut self.store {
            Store::Small(v) => v
                .iter()
                .position(|(s, q, _)| *q == seq && s.as_ref() == sort)
                .map(|i| v.remove(i))
                .map(|(s, _, r)| (s, r)),
            Store::Large(m) => m.remove_entry(&(Box::from(sort), seq)).map(|((s, _), r)| (s, r)),
        };
        match removed {
            Some((s, r)) => {
                self.bytes -= s.len() + r.len() + ENTRY_OVERHEAD;
                true
            }
            None => false,
        }
    }

    /// Takes away one row equal to `row` (sorted at `sort`); false when
    /// there is none.
    pub(super) fn retract(&mut self, sort: &[u8], row: &[u8]) -> bool {
        let removed = match &mut self.store {
            Store::Small(v) => v
                .iter()
                .position(|(s, _, r)| s.as_ref() == sort && r.as_ref() == row)
                .map(|i| v.remove(i))
                .map(|(s, _, r)| (s, r)),
            Store::Large(m) => {
                let from: Place = (sort.into(), 0);
                let to: Place = (sort.into(), u64::MAX);
                let found = m.range(from..=to).find(|(_, r)| r.as_ref() == row).map(|(k, _)| k.clone());
                found.and_then(|k| m.remove_entry(&k)).map(|((s, _), r)| (s, r))
            }
        };
        match removed {
            Some((s, r)) => {
                self.bytes -= s.len() + r.len() + ENTRY_OVERHEAD;
                true
            }
            None => false,
        }
    }

    /// The first `n` rows, best first.
    pub(super) fn top(&self, n: usize) -> Vec<Entry> {
        match &self.store {
            Store::Small(v) => v.iter().take(n).map(|(_, q, r)| (*q, Arc::clone(r))).collect(),
            Store::Large(m) => m.iter().take(n).map(|((_, q), r)| (*q, Arc::clone(r))).collect(),
        }
    }

    /// Every row with its arrival number, best first (for checkpoints and
    /// spills, which walk millions of partitions: no list is made).
    pub(super) fn entries(&self) -> impl Iterator<Item = (u64, &Arc<[u8]>)> {
        let (small, large) = match &self.store {
            Store::Small(v) => (Some(v.iter().map(|(_, q, r)| (*q, r))), None),
            Store::Large(m) => (None, Some(m.iter().map(|((_, q), r)| (*q, r)))),
        };
        small.into_iter().flatten().chain(large.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: u8) -> Arc<[u8]> {
        Arc::from(vec![v])
    }

    fn seqs(r: &Ranked) -> Vec<u64> {
        r.top(usize::MAX).iter().map(|(s, _)| *s).collect()
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

    /// Past the small vector the rows move into a B-tree, in the same
    /// order, and stay retractable and fillable there.
    #[test]
    fn a_large_partition_ranks_as_a_small_one() {
        let mut r = Ranked::default();
        let n = (SMALL * 3) as u64;
        for seq in 0..n {
            let sort = [(seq * 37 % 251) as u8];
            r.insert(&sort, seq, Arc::from(Vec::new()), None);
            r.fill(&sort, seq, &row(sort[0]));
        }
        assert!(matches!(r.store, Store::Large(_)));
        let top: Vec<u8> = r.top(usize::MAX).iter().map(|(_, row)| row[0]).collect();
        let mut want: Vec<u8> = (0..n).map(|s| (s * 37 % 251) as u8).collect();
        want.sort();
        assert_eq!(top, want);
        assert!(r.retract(&[want[5]], &[want[5]]));
        assert_eq!(r.top(usize::MAX).len(), n as usize - 1);
    }
}
