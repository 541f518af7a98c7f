//! The versions of the versioned table, per key, in time order: what a
//! left row is joined with. A version is a right row in arrow's row format
//! (or a deletion from its time on). Versions that no left row still to
//! come can need are dropped as the watermark passes the next version.

use std::collections::{BTreeSet, HashMap};

use datafusion::common::hash_utils::RandomState;

use crate::message::EventTime;

/// Not the exchange's seed, whose hashes the keys of one subtask share
/// bits of.
const SEED: u64 = 0x7465_6d70_6f72_616c;

/// One version of a key's row.
pub(super) struct Version {
    pub(super) time: EventTime,
    /// A deletion: no row from `time` on (its row is the deleted one).
    pub(super) deleted: bool,
    pub(super) row: Box<[u8]>,
}

/// A key's versions, oldest first, never two at the same time.
struct Keyed {
    key: Box<[u8]>,
    list: Vec<Version>,
}

/// Every key's versions, with a timer per version at which older ones may
/// go.
pub(super) struct Versions {
    index: HashMap<Box<[u8]>, u32, RandomState>,
    slots: Vec<Option<Keyed>>,
    free: Vec<u32>,
    /// (version time, slot): once the watermark reaches a version's time,
    /// the versions before it are no use to left rows to come.
    timers: BTreeSet<(EventTime, u32)>,
    bytes: usize,
}

impl Default for Versions {
    fn default() -> Self {
        Self {
            index: HashMap::with_hasher(RandomState::with_seed(SEED)),
            slots: Vec::new(),
            free: Vec::new(),
            timers: BTreeSet::new(),
            bytes: 0,
        }
    }
}

impl Versions {
    /// Adds a version of `key` at `time`; a version already at that time is
    /// replaced (the later arrival wins, as in Flink's state by time).
    pub(super) fn insert(&mut self, key: &[u8], time: EventTime, deleted: bool, row: &[u8]) {
        let slot = match self.index.get(key) {
            Some(s) => *s,
            None => {
                let keyed = Keyed { key: key.into(), list: Vec::new() };
                self.bytes += key.len();
                let s = match self.free.pop() {
                    Some(s) => {
                        self.slots[s as usize] = Some(keyed);
                        s
                    }
                    None => {
                        self.slots.push(Some(keyed));
                        (self.slots.len() - 1) as u32
                    }
                };
                self.index.insert(key.into(), s);
                s
            }
        };
        let Some(keyed) = self.slots[slot as usize].as_mut() else {
            return;
        };
        let version = Version { time, deleted, row: row.into() };
        let at = keyed.list.partition_point(|v| v.time < time);
        self.bytes += row.len();
        match keyed.list.get_mut(at) {
            Some(v) if v.time == time => {
                self.bytes -= v.row.len();
                *v = version;
            }
            _ => keyed.list.insert(at, version),
        }
        self.timers.insert((time, slot));
    }

    /// The row of `key` current at `time`: its latest version at or before
    /// it, unless that is a deletion.
    pub(super) fn at(&self, key: &[u8], time: EventTime) -> Option<&[u8]> {
        let keyed = self.slots[*self.index.get(key)? as usize].as_ref()?;
        let n = keyed.list.partition_point(|v| v.time <= time);
        let v = keyed.list.get(n.checked_sub(1)?)?;
        (!v.deleted).then_some(&v.row[..])
    }

    /// Drops what no left row after `watermark` can need: of the versions
    /// at or before it, all but the newest, and that one too when it is a
    /// deletion (no version and a deletion join alike).
    pub(super) fn expire(&mut self, watermark: EventTime) {
        while let Some(&(time, slot)) = self.timers.first() {
            if time > watermark {
                break;
            }
            self.timers.pop_first();
            let Some(keyed) = self.slots[slot as usize].as_mut() else {
                continue;
            };
            let n = keyed.list.partition_point(|v| v.time <= watermark);
            let mut gone = n.saturating_sub(1);
            if keyed.list.get(gone).is_some_and(|v| v.deleted && v.time <= watermark) {
                gone += 1;
            }
            for v in keyed.list.drain(..gone) {
                self.bytes -= v.row.len();
            }
            if keyed.list.is_empty() {
                self.bytes -= keyed.key.len();
                self.index.remove(&keyed.key);
                self.slots[slot as usize] = None;
                self.free.push(slot);
            }
        }
    }

    /// Every version held, key by key, oldest first (for checkpoints).
    pub(super) fn iter(&self) -> impl Iterator<Item = &Version> {
        self.slots.iter().flatten().flat_map(|k| k.list.iter())
    }

    /// Bytes of keys and rows held.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keys whose versions are held.
    pub(super) fn keys(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Versions;

    #[test]
    fn the_newest_version_at_or_before_the_watermark_stays() {
        let mut v = Versions::default();
        v.insert(b"k", 10, false, b"a");
        v.insert(b"k", 20, false, b"b");
        v.insert(b"k", 30, false, b"c");
        assert_eq!(v.at(b"k", 9), None);
        assert_eq!(v.at(b"k", 25), Some(&b"b"[..]));
        v.expire(25);
        assert_eq!(v.iter().count(), 2, "20 and 30 stay");
        assert_eq!(v.at(b"k", 26), Some(&b"b"[..]));
        v.insert(b"k", 30, true, b"c");
        assert_eq!(v.at(b"k", 31), None, "a deletion at 30");
        v.expire(40);
        assert_eq!(v.iter().count(), 0, "a deletion at the watermark leaves nothing");
        assert_eq!(v.bytes(), 0);
        v.insert(b"j", 5, false, b"x");
        assert_eq!(v.at(b"j", 5), Some(&b"x"[..]));
    }
}
