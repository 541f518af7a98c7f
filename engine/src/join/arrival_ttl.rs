//! The state TTL of a regular inner join of appends (`interval.rs` without
//! time bounds): a held row is written once, when it comes, so it expires
//! a TTL (processing time) after it came, as in Flink. Held batches are in
//! arrival order, so what expires is always some batches at the front,
//! dropped as an interval join drops its late batches. The keys of dropped
//! rows are remembered (`crate::state_ttl::DroppedKeys`) so that a row of
//! the other side meeting one is counted.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::physical_plan::PhysicalExpr;

use crate::error::{Result, ResultExt};
use crate::message::now_ms;
use crate::operators::evaluate::columns;
use crate::state_ttl::DroppedKeys;

/// Not the exchange's seed, nor the join index's.
const SEED: u64 = 0x7474_6c5f_6a6f_696e;

/// When each side's held batches came, and the keys dropped lately.
pub(crate) struct ArrivalTtl {
    /// Per side (left, right), in ms; `i64::MAX`: its rows never expire.
    ttl: [i64; 2],
    /// Per side, per held batch (front first): when it came (ms).
    arrived: [Vec<i64>; 2],
    /// Per side: the keys of its rows dropped lately.
    dropped: [DroppedKeys; 2],
    hashes: Vec<u64>,
}

impl ArrivalTtl {
    /// `None` when neither side has a TTL.
    pub(crate) fn new(ttl: [Option<Duration>; 2]) -> Option<Self> {
        if ttl.iter().all(Option::is_none) {
            return None;
        }
        let ms = |t: Option<Duration>| t.map_or(i64::MAX, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX).max(1));
        Some(Self {
            ttl: [ms(ttl[0]), ms(ttl[1])],
            arrived: [Vec::new(), Vec::new()],
            dropped: [DroppedKeys::default(), DroppedKeys::default()],
            hashes: Vec::new(),
        })
    }

    /// How often the join should look for expired batches.
    pub(crate) fn check_every(&self) -> Duration {
        let shortest = self.ttl[0].min(self.ttl[1]);
        Duration::from_millis((shortest / 4).clamp(10, 1000) as u64)
    }

    /// A batch was held on `side` now (a restored one counts as new).
    pub(crate) fn held(&mut self, side: usize) {
        self.arrived[side].push(now_ms());
    }

    /// How many of `side`'s front batches expired now.
    pub(crate) fn due(&self, side: usize) -> usize {
        let now = now_ms();
        let ttl = self.ttl[side];
        self.arrived[side].iter().take_while(|at| at.saturating_add(ttl) <= now).count()
    }

    /// `side`'s first `batches` (joined on `keys`) are dropped: their keys
    /// are remembered.
    pub(crate) fn dropped(
        &mut self,
        side: usize,
        batches: &[RecordBatch],
        keys: &[Arc<dyn PhysicalExpr>],
        name: &str,
    ) -> Result<()> {
        self.arrived[side].drain(..batches.len());
        for batch in batches {
            self.hash(batch, keys, name)?;
            for h in &self.hashes {
                self.dropped[side].insert(*h);
            }
        }
        Ok(())
    }

    /// How many rows of `batch` (of side `side`, joined on `keys`) meet
    /// rows the other side dropped.
    pub(crate) fn met(
        &mut self,
        side: usize,
        batch: &RecordBatch,
        keys: &[Arc<dyn PhysicalExpr>],
        name: &str,
    ) -> Result<u64> {
        if self.dropped[1 - side].is_empty() {
            return Ok(0);
        }
        self.hash(batch, keys, name)?;
        let other = &mut self.dropped[1 - side];
        Ok(self.hashes.iter().filter(|h| other.met(**h)).count() as u64)
    }

    fn hash(&mut self, batch: &RecordBatch, keys: &[Arc<dyn PhysicalExpr>], name: &str) -> Result<()> {
        let key_columns = columns(keys, batch).context(|| format!("{name}: join keys"))?;
        self.hashes.clear();
        self.hashes.resize(batch.num_rows(), 0);
        create_hashes(&key_columns, &RandomState::with_seed(SEED), &mut self.hashes)
            .context(|| format!("{name}: hashing join keys"))?;
        Ok(())
    }
}
