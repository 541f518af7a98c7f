//! Each key group's first session to fire, as the session aggregate
//! publishes it for `weir.pending_windows`, against an oracle that builds
//! the sessions from the rows themselves (rows closer than the gap chained,
//! per key), not from the operator's state.

use std::collections::BTreeMap;

use datafusion::arrow::array::{ArrayRef, Int64Array};

use super::*;
use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::metrics::JobMetrics;
use crate::window::aggregate::pending_tests::published;
use crate::window::aggregate::tests::{count_per_key, keyed, keyed_schema};

const GAP: i64 = 100;

/// `SELECT window_start, window_end, k, count(k)` over SESSION(ts, GAP)
/// partitioned by k.
fn operator() -> (SessionAggregate, Arc<OperatorMetrics>) {
    let plan =
        SessionAggregatePlan { gap: GAP, aggregation: count_per_key(), input_schema: keyed_schema(), emit_rows: None };
    let metrics = JobMetrics::default().register("s", 0);
    (SessionAggregate::new(Arc::new(plan), "s".into(), Arc::clone(&metrics), None).unwrap(), metrics)
}

fn batch(rows: &[(i64, i64)]) -> StreamBatch {
    let (keys, times): (Vec<i64>, Vec<i64>) = rows.iter().copied().unzip();
    keyed(&times, &keys)
}

/// Per key group, the sessions (start, end) not yet fired at watermark `wm`
/// that end first: the operator may name any of them.
fn oracle(rows: &[(i64, i64)], wm: i64) -> BTreeMap<usize, Vec<(i64, i64)>> {
    let keys: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()));
    let groups = key_groups(&[keys], rows.len(), &mut Vec::new()).unwrap();
    let mut by_key: BTreeMap<i64, (usize, Vec<i64>)> = BTreeMap::new();
    for ((k, ts), g) in rows.iter().zip(groups) {
        by_key.entry(*k).or_insert((g, Vec::new())).1.push(*ts);
    }
    let mut out: BTreeMap<usize, Vec<(i64, i64)>> = BTreeMap::new();
    for (group, mut times) in by_key.into_values() {
        times.sort_unstable();
        let mut sessions: Vec<(i64, i64)> = Vec::new();
        for t in times {
            match sessions.last_mut() {
                Some((_, end)) if t <= *end => *end = (*end).max(t + GAP),
                _ => sessions.push((t, t + GAP)),
            }
        }
        for s in sessions.into_iter().filter(|(_, end)| end - 1 > wm) {
            let best = out.entry(group).or_default();
            match best.first() {
                Some((_, end)) if *end < s.1 => {}
                Some((_, end)) if *end == s.1 => best.push(s),
                _ => *best = vec![s],
            }
        }
    }
    out
}

fn assert_matches(published: BTreeMap<usize, (i64, i64)>, oracle: BTreeMap<usize, Vec<(i64, i64)>>, at: &str) {
    assert_eq!(published.keys().collect::<Vec<_>>(), oracle.keys().collect::<Vec<_>>(), "{at}: key groups");
    for (g, session) in published {
        assert!(oracle[&g].contains(&session), "{at}: key group {g} names {session:?}, not one of {:?}", oracle[&g]);
    }
}

/// Random batches (rows out of order, sessions merging) and watermarks:
/// after each, every key group's first session to fire is the oracle's; a
/// restored operator publishes the same; once every session fired, none.
#[test]
fn each_key_groups_first_session_to_fire_is_the_oracles() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut below = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for keys in [3, 1_000] {
        let (mut op, metrics) = operator();
        let mut out = Collector::default();
        let mut fed = Vec::new();
        let mut wm = WATERMARK_MIN;
        for round in 0..60_i64 {
            // Never behind the watermark (a late row's session would have
            // fired): the oracle chains every row.
            let floor = if wm == WATERMARK_MIN { 0 } else { wm + 2 };
            let rows: Vec<(i64, i64)> = (0..1 + below(40))
                .map(|_| (below(keys) as i64, (round * 40 + below(300) as i64 - 100).max(floor)))
                .collect();
            op.on_batch(batch(&rows), &mut out).unwrap();
            fed.extend(rows);
            assert_matches(published(&metrics), oracle(&fed, wm), &format!("{keys} keys, batch {round}"));
            if round % 3 == 2 {
                wm = round * 40 - 150;
                op.on_watermark(wm, &mut out).unwrap();
                assert_matches(published(&metrics), oracle(&fed, wm), &format!("{keys} keys, watermark {wm}"));
            }
        }
        assert!(!published(&metrics).is_empty());

        let mut chunks = ChunkWriter::default();
        let state = op.snapshot(1, &mut chunks).unwrap().unwrap();
        let (mut restored, restored_metrics) = operator();
        restored.restore(&[&state], &ChunkMap::of(chunks.new).unwrap(), &|_| true).unwrap();
        assert_matches(published(&restored_metrics), oracle(&fed, wm), &format!("{keys} keys, restored"));

        op.on_watermark(i64::MAX - 1, &mut out).unwrap();
        assert!(metrics.pending_windows.lock().unwrap().is_empty(), "{keys} keys: every session fired");
    }
}
