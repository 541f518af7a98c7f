//! Which keys of a keyed exchange carry the most rows: a Space-Saving
//! sketch (Metwally et al.) fed a few rows of each batch, so that finding a
//! hot key costs a handful of comparisons per batch, never work per row.

/// Keys tracked per sketch: enough to hold the few keys that matter (a hot
/// key holds a large share, so it cannot be pushed out by rarer ones).
const CAPACITY: usize = 32;

/// Rows of each batch the sketch sees; each stands for `rows / SAMPLE` rows
/// of its batch.
pub const SAMPLE: usize = 8;

/// One tracked key.
#[derive(Debug, Clone)]
struct Counter {
    hash: u64,
    key: String,
    /// Estimated rows (an overestimate by at most `error`).
    rows: u64,
    error: u64,
}

/// The sketch of one upstream subtask of a keyed exchange.
#[derive(Debug, Default, Clone)]
pub struct HotKeys {
    counters: Vec<Counter>,
    /// Every row that crossed the exchange, sampled or not.
    rows: u64,
}

/// A key and its estimated share, as `weir.hot_keys` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HotKey {
    /// The key's columns, rendered as text and joined with `, `.
    pub key: String,
    /// Estimated rows with this key.
    pub rows: u64,
    /// Estimated fraction of all the exchange's rows.
    pub share: f64,
    /// The key's rows over the mean rows of the keys tracked: about 1 for
    /// evenly spread keys; with fewer distinct keys than the sketch holds,
    /// exactly the key's rows over the mean per key.
    pub skew_ratio: f64,
}

impl HotKeys {
    /// Counts `rows` rows that crossed the exchange (sampled or not).
    pub fn add_rows(&mut self, rows: u64) {
        self.rows += rows;
    }

    /// Counts `weight` rows for the key hashed to `hash`; `key` renders it
    /// and is called only when the key starts being tracked.
    pub fn offer(&mut self, hash: u64, weight: u64, key: impl FnOnce() -> String) {
        if let Some(c) = self.counters.iter_mut().find(|c| c.hash == hash) {
            c.rows += weight;
            return;
        }
        if self.counters.len() < CAPACITY {
            self.counters.push(Counter { hash, key: key(), rows: weight, error: 0 });
            return;
        }
        // Space-Saving: the new key replaces the least counted one and
        // inherits its count as its possible error.
        if let Some(min) = self.counters.iter_mut().min_by_key(|c| c.rows) {
            let floor = min.rows;
            *min = Counter { hash, key: key(), rows: floor + weight, error: floor };
        }
    }

    /// Adds another subtask's sketch of the same exchange.
    pub fn merge(&mut self, other: &HotKeys) {
        self.rows += other.rows;
        for c in &other.counters {
            match self.counters.iter_mut().find(|m| m.hash == c.hash) {
                Some(m) => {
                    m.rows += c.rows;
                    m.error += c.error;
                }
                None => self.counters.push(c.clone()),
            }
        }
    }

    /// The `k` keys with the most rows, most first.
    pub fn top(&self, k: usize) -> Vec<HotKey> {
        let mut counters: Vec<&Counter> = self.counters.iter().collect();
        counters.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.key.cmp(&b.key)));
        let tracked: u64 = counters.iter().map(|c| c.rows).sum();
        let mean = tracked as f64 / counters.len().max(1) as f64;
        counters
            .into_iter()
            .take(k)
            .map(|c| HotKey {
                key: c.key.clone(),
                rows: c.rows,
                share: if self.rows == 0 { 0.0 } else { c.rows as f64 / self.rows as f64 },
                skew_ratio: if mean > 0.0 { c.rows as f64 / mean } else { 0.0 },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_with_half_the_rows_stays_on_top_among_many_rare_ones() {
        let mut s = HotKeys::default();
        for i in 0..10_000u64 {
            s.add_rows(2);
            s.offer(u64::MAX, 1, || "hot".into());
            s.offer(i % 1000, 1, || format!("k{}", i % 1000));
        }
        let top = s.top(3);
        assert_eq!(top[0].key, "hot");
        assert_eq!(top[0].rows, 10_000);
        assert!((top[0].share - 0.5).abs() < 1e-9);
        assert!(top[0].skew_ratio > 5.0, "{top:?}");
    }

    #[test]
    fn evenly_spread_keys_have_a_skew_ratio_of_one() {
        let mut s = HotKeys::default();
        for i in 0..400u64 {
            s.add_rows(1);
            s.offer(i % 4, 1, || format!("k{}", i % 4));
        }
        let mut other = HotKeys::default();
        other.add_rows(4);
        for i in 0..4u64 {
            other.offer(i, 1, || format!("k{i}"));
        }
        s.merge(&other);
        for k in s.top(10) {
            assert_eq!(k.rows, 101);
            assert!((k.skew_ratio - 1.0).abs() < 1e-9);
            assert!((k.share - 0.25).abs() < 1e-9);
        }
    }
}
