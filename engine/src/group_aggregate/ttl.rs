//! State TTL of a group aggregation (`crate::state_ttl`): groups nothing
//! wrote for the TTL are dropped without output, as Flink drops them; a
//! row of a dropped group starts it afresh (`+I`), and is counted.

use std::hash::BuildHasher;

use super::GroupAggregate;

impl GroupAggregate {
    /// Under a TTL, the group keeps its key, for [`GroupAggregate::expire`].
    pub(super) fn keep_key(&mut self, group: u32, key: &[u8]) {
        if self.expiry.is_some() {
            self.group(group).key = Some(key.into());
        }
    }

    /// Whether the group of `key` was dropped by the TTL lately.
    pub(super) fn met_expired(&mut self, key: &[u8]) -> bool {
        let hash = self.index.hasher().hash_one(key);
        self.expiry.as_mut().is_some_and(|e| e.met_expired(hash))
    }

    /// Drops the groups idle for the TTL.
    pub(super) fn expire(&mut self) {
        let Some(expiry) = &mut self.expiry else {
            return;
        };
        let now = expiry.now();
        for g in expiry.due(now) {
            let Some(group) = self.free_group(g) else {
                continue;
            };
            if let Some(key) = group.key {
                let hash = self.index.hasher().hash_one(&key[..]);
                self.index.remove(&key);
                if let Some(expiry) = &mut self.expiry {
                    expiry.dropped(hash);
                }
            }
        }
    }
}
