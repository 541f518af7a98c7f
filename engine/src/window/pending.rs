//! Which windows a window aggregate still waits to fire, per key group: what
//! `weir.pending_windows` shows to answer "why is there no output?".
//!
//! Each slice notes the key groups of its groups as they first appear
//! (`Slice::update`: one hash per new group, none once a slice holds every
//! key group), so that the operator can tell, whenever its open windows
//! change, each key group's oldest open window without touching a row.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::compute::take;

use crate::error::{Result, ResultExt};
use crate::message::EventTime;
use crate::runtime::exchange::{KEY_GROUPS, key_groups};
use crate::window::aggregate::SliceKey;
use crate::window::spec::WindowSpec;

const WORDS: usize = KEY_GROUPS.div_ceil(64);

/// A set of key groups (`0..KEY_GROUPS`), as bits: small enough to keep per
/// slice and to copy into the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyGroupSet([u64; WORDS]);

impl KeyGroupSet {
    /// Adds `group`; whether it was new. A group out of range (never made by
    /// the key hash; only damaged state could name one) is ignored.
    pub fn insert(&mut self, group: usize) -> bool {
        if group >= KEY_GROUPS {
            return false;
        }
        let bit = 1u64 << (group % 64);
        let word = &mut self.0[group / 64];
        let new = *word & bit == 0;
        *word |= bit;
        new
    }

    pub fn contains(&self, group: usize) -> bool {
        self.0.get(group / 64).is_some_and(|w| w & (1u64 << (group % 64)) != 0)
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// Every key group is in: a slice that holds them all needs no more
    /// hashing.
    pub fn is_full(&self) -> bool {
        self.len() >= KEY_GROUPS
    }

    /// The groups of `self` not in `other`.
    pub fn without(&self, other: &KeyGroupSet) -> KeyGroupSet {
        let mut out = *self;
        for (w, o) in out.0.iter_mut().zip(other.0) {
            *w &= !o;
        }
        out
    }

    pub fn union_with(&mut self, other: &KeyGroupSet) {
        for (w, o) in self.0.iter_mut().zip(other.0) {
            *w |= o;
        }
    }

    /// The key groups, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..KEY_GROUPS).filter(|g| self.contains(*g))
    }
}

/// The key groups of the groups numbered `before..total`, which the rows of
/// one batch (`row_groups`: each row's group number, `keys` their key
/// columns) added: the keys of each new group's first row, hashed once. A
/// group seen before costs nothing; group numbers need not follow row order.
pub fn key_groups_of_new_groups(
    row_groups: &[usize],
    before: usize,
    total: usize,
    keys: &[ArrayRef],
    hashes: &mut Vec<u64>,
    name: &str,
) -> Result<Vec<usize>> {
    let mut firsts = vec![u32::MAX; total.saturating_sub(before)];
    let mut left = firsts.len();
    for (row, g) in row_groups.iter().enumerate() {
        if left == 0 {
            break;
        }
        if let Some(first) = g.checked_sub(before).and_then(|i| firsts.get_mut(i))
            && *first == u32::MAX
        {
            *first = row as u32;
            left -= 1;
        }
    }
    // Every new group has a row; a row missing would be no key at all.
    firsts.retain(|r| *r != u32::MAX);
    let firsts = UInt32Array::from(firsts);
    let keys = keys
        .iter()
        .map(|k| take(k.as_ref(), &firsts, None))
        .collect::<std::result::Result<Vec<_>, _>>()
        .context(|| format!("{name}: keys of new groups"))?;
    key_groups(&keys, firsts.len(), hashes)
}

/// The oldest open window of some key groups of one window operator
/// subtask, as it publishes them in its metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenWindow {
    /// The window's bounds on the watermark's time line (ms since the
    /// epoch, UTC); it fires when the watermark reaches `end - 1`.
    pub start: EventTime,
    pub end: EventTime,
    /// The key groups whose oldest open window this is.
    pub key_groups: KeyGroupSet,
}

/// Per key group, the earliest window still to fire (`pending`) among the
/// windows of the slices that hold its groups; one entry per distinct
/// window, in the order they fire. `slices` are the operator's slices
/// (start, first window end their rows count toward) with their key groups.
pub fn oldest_open_windows(
    slices: impl Iterator<Item = (SliceKey, KeyGroupSet)>,
    window: &WindowSpec,
    pending: &BTreeSet<EventTime>,
) -> Vec<OpenWindow> {
    let mut by_end: BTreeMap<EventTime, KeyGroupSet> = BTreeMap::new();
    for ((start, min_end), groups) in slices {
        if groups.is_empty() {
            continue;
        }
        let first = window.window_ends_of_slice(start).filter(|e| *e >= min_end).find(|e| pending.contains(e));
        if let Some(end) = first {
            by_end.entry(end).or_default().union_with(&groups);
        }
    }
    let mut seen = KeyGroupSet::default();
    let mut out = Vec::new();
    for (end, groups) in by_end {
        let new = groups.without(&seen);
        if new.is_empty() {
            continue;
        }
        seen.union_with(&new);
        out.push(OpenWindow { start: window.window_start(end), end, key_groups: new });
        if seen.is_full() {
            break;
        }
    }
    out
}

/// Per key group, the session that fires first among `pending` (sessions
/// as (end, key id, start), in the order they fire), with `key_group` of
/// each key id; sessions of different keys that share their bounds share
/// an entry. The walk stops once every key group in `present` (those with
/// a pending session) has its session.
pub fn oldest_open_sessions<'a>(
    pending: impl Iterator<Item = &'a (EventTime, u32, EventTime)>,
    key_group: &[u8],
    present: &KeyGroupSet,
) -> Vec<OpenWindow> {
    let mut seen = KeyGroupSet::default();
    let mut out: Vec<OpenWindow> = Vec::new();
    let wanted = present.len();
    for &(end, key, start) in pending {
        if seen.len() >= wanted {
            break;
        }
        let Some(&group) = key_group.get(key as usize) else { continue };
        if !seen.insert(group as usize) {
            continue;
        }
        match out.iter_mut().rev().take_while(|w| w.end == end).find(|w| w.start == start) {
            Some(w) => {
                w.key_groups.insert(group as usize);
            }
            None => {
                let mut key_groups = KeyGroupSet::default();
                key_groups.insert(group as usize);
                out.push(OpenWindow { start, end, key_groups });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_of_key_groups_counts_each_once_and_ignores_groups_out_of_range() {
        let mut s = KeyGroupSet::default();
        assert!(s.is_empty());
        assert!(s.insert(0) && s.insert(127) && s.insert(64));
        assert!(!s.insert(64), "already in");
        assert!(!s.insert(KEY_GROUPS) && !s.insert(usize::MAX), "out of range");
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 64, 127]);
        assert_eq!(s.len(), 3);
        let mut other = KeyGroupSet::default();
        other.insert(64);
        assert_eq!(s.without(&other).iter().collect::<Vec<_>>(), vec![0, 127]);
        for g in 0..KEY_GROUPS {
            s.insert(g);
        }
        assert!(s.is_full());
    }
}
