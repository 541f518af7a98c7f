//! State TTL of a Top-N or deduplication (`crate::state_ttl`): a partition
//! nothing wrote for the TTL is dropped without output, as Flink drops
//! it; a row of a dropped partition starts it afresh, and is counted. A
//! keep-first row still waiting for the watermark is never dropped (it
//! would be lost): its partition stays until it has left.

use std::hash::BuildHasher;

use super::operator::Rank;
use crate::metrics::DropReason;

impl Rank {
    /// Partition `p` is written now (a row entered, left, or was ranked).
    pub(super) fn written(&mut self, p: u32) {
        if let Some(idle) = &mut self.idle {
            idle.touch(p, self.idle_now);
        }
    }

    /// A new partition of `key`: counted if its state expired lately.
    pub(super) fn created(&mut self, key: &[u8]) {
        let hash = self.index.hasher().hash_one(key);
        if self.idle.as_mut().is_some_and(|i| i.met_expired(hash)) {
            self.metrics.add_dropped(DropReason::ExpiredState, 1);
        }
    }

    /// Reads the clock for the writes of a batch.
    pub(super) fn start_batch(&mut self) {
        if let Some(idle) = &self.idle {
            self.idle_now = idle.now();
        }
    }

    /// Drops the partitions idle for the TTL.
    pub(super) fn expire_idle(&mut self) {
        let Some(idle) = &mut self.idle else {
            return;
        };
        let now = idle.now();
        self.idle_now = now;
        for p in idle.due(now) {
            let Some(part) = self.partitions[p as usize].as_ref() else {
                continue;
            };
            if part.pending.is_some() {
                idle.touch(p, now);
                continue;
            }
            idle.dropped(self.index.hasher().hash_one(&part.key[..]));
            if let Some(part) = self.partitions[p as usize].take() {
                self.index.remove(&part.key);
                self.free.push(p);
            }
        }
    }
}
