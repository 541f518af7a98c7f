//! State TTL (Flink's `table.exec.state.ttl` and `STATE_TTL` hint): keyed
//! state that nothing wrote for longer than the TTL is dropped, so that a
//! GROUP BY, a regular join or a deduplication over an endless key space
//! runs in bounded memory.
//!
//! As in Flink, the TTL is processing time (the wall clock), state is
//! refreshed when written (created or updated, not when only read), and
//! expired state is never used: a row whose key's state expired starts
//! afresh. Unlike Flink, Weir does not do so silently: it remembers the
//! hashes of the last [`REMEMBERED`] keys it dropped (a bounded memory, a
//! few MB, whatever the key space), and a row that meets one is counted
//! (`weir.late_events`, reason `expired_state`).
//!
//! An operator numbers its keyed state in slots (a group, a partition, a
//! join key) and tells [`Expiry`] when it writes one; each slot has one
//! entry in a heap ordered by when it was queued, so finding what is due
//! costs only the slots looked at. A slot written since it was queued is
//! queued again at its last write.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use crate::message::now_ms;

/// When a slot is vacant.
const VACANT: i64 = i64::MIN;

/// How many dropped keys an operator subtask remembers, to count the rows
/// that meet them: the most recent ones.
pub const REMEMBERED: usize = 1 << 18;

/// The idle times of an operator's keyed state, and what is due.
pub struct Expiry {
    ttl: i64,
    /// Per slot: its last write (ms), or [`VACANT`].
    last: Vec<i64>,
    /// Per slot: whether the heap holds an entry for it.
    queued: Vec<bool>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    dropped: DroppedKeys,
    #[cfg(test)]
    clock: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

impl Expiry {
    /// State idle for `ttl` expires.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1),
            last: Vec::new(),
            queued: Vec::new(),
            heap: BinaryHeap::new(),
            dropped: DroppedKeys::default(),
            #[cfg(test)]
            clock: None,
        }
    }

    /// How often an operator should look for due state: often enough that
    /// state outlives its TTL by at most a quarter of it (and a second).
    pub fn check_every(&self) -> Duration {
        Duration::from_millis((self.ttl / 4).clamp(10, 1000) as u64)
    }

    /// Processing time now (ms).
    pub fn now(&self) -> i64 {
        #[cfg(test)]
        if let Some(c) = &self.clock {
            return c.load(std::sync::atomic::Ordering::Relaxed);
        }
        now_ms()
    }

    /// Tests set the clock by hand.
    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: std::sync::Arc<std::sync::atomic::AtomicI64>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Slot `slot` was written at `now`.
    pub fn touch(&mut self, slot: u32, now: i64) {
        let s = slot as usize;
        if s >= self.last.len() {
            self.last.resize(s + 1, VACANT);
            self.queued.resize(s + 1, false);
        }
        self.last[s] = now;
        if !self.queued[s] {
            self.queued[s] = true;
            self.heap.push(Reverse((now, slot)));
        }
    }

    /// Slot `slot` holds nothing now (its state was emptied, not expired).
    pub fn vacate(&mut self, slot: u32) {
        if let Some(l) = self.last.get_mut(slot as usize) {
            *l = VACANT;
        }
    }

    /// The slots idle for the TTL at `now`, which are vacant from now on.
    pub fn due(&mut self, now: i64) -> Vec<u32> {
        let mut due = Vec::new();
        while let Some(Reverse((queued_at, slot))) = self.heap.peek().copied() {
            if queued_at.saturating_add(self.ttl) > now {
                break;
            }
            self.heap.pop();
            let s = slot as usize;
            match self.last[s] {
                VACANT => self.queued[s] = false,
                last if last.saturating_add(self.ttl) <= now => {
                    self.last[s] = VACANT;
                    self.queued[s] = false;
                    due.push(slot);
                }
                last => self.heap.push(Reverse((last, slot))),
            }
        }
        due
    }

    /// The state of the key hashing to `key` expired.
    pub fn dropped(&mut self, key: u64) {
        self.dropped.insert(key);
    }

    /// Whether the key hashing to `key` had state that expired (one of the
    /// last [`REMEMBERED`]): a row that meets it is counted, once.
    pub fn met_expired(&mut self, key: u64) -> bool {
        self.dropped.met(key)
    }
}

/// The hashes of the keys whose state expired last (at most
/// [`REMEMBERED`]): what a row meeting expired state is told by.
#[derive(Default)]
pub struct DroppedKeys {
    /// Hash → the number of its latest drop.
    at: HashMap<u64, u64>,
    /// (drop number, hash), oldest first.
    order: VecDeque<(u64, u64)>,
    drops: u64,
}

impl DroppedKeys {
    /// The state of the key hashing to `key` expired.
    pub fn insert(&mut self, key: u64) {
        self.drops += 1;
        self.at.insert(key, self.drops);
        self.order.push_back((self.drops, key));
        while self.order.len() > REMEMBERED {
            if let Some((n, old)) = self.order.pop_front()
                && self.at.get(&old) == Some(&n)
            {
                self.at.remove(&old);
            }
        }
    }

    /// Whether `key` is one of them; a key is met once.
    pub fn met(&mut self, key: u64) -> bool {
        self.at.remove(&key).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot written within the TTL stays; one idle for it is due once;
    /// a vacated slot is never due; a dropped key is met once, and
    /// forgotten after another TTL.
    #[test]
    fn slots_are_due_once_idle_for_the_ttl() {
        let mut e = Expiry::new(Duration::from_millis(100));
        e.touch(0, 0);
        e.touch(1, 0);
        e.touch(2, 0);
        e.touch(1, 60);
        e.vacate(2);
        assert!(e.due(99).is_empty());
        assert_eq!(e.due(100), vec![0]);
        assert!(e.due(159).is_empty());
        e.touch(1, 150);
        assert!(e.due(249).is_empty());
        assert_eq!(e.due(250), vec![1]);
        assert!(e.due(10_000).is_empty());
        // A slot reused after it expired is queued again.
        e.touch(0, 300);
        assert_eq!(e.due(400), vec![0]);
        e.dropped(7);
        e.dropped(8);
        assert!(e.met_expired(7));
        assert!(!e.met_expired(7));
        for k in 100..100 + REMEMBERED as u64 {
            e.dropped(k);
        }
        assert!(!e.met_expired(8), "forgotten once as many later keys were dropped");
        assert!(e.met_expired(100));
    }
}
