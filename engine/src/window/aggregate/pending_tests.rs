//! Each key group's oldest open window, as the window aggregate publishes
//! it for `weir.pending_windows`, against an oracle over the rows it was
//! given: the windows are computed from their definitions, not from the
//! operator's slices.

use std::collections::BTreeMap;

use datafusion::arrow::array::{ArrayRef, Int64Array};

use super::tests::{keyed, operator};
use super::*;
use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::runtime::exchange::key_groups;
use crate::window::spec::WindowKind;

/// The windows (start, end) holding a row at `ts`.
fn windows_of(kind: WindowKind, ts: i64) -> Vec<(i64, i64)> {
    match kind {
        WindowKind::Tumble { size } => {
            let start = ts.div_euclid(size) * size;
            vec![(start, start + size)]
        }
        WindowKind::Hop { slide, size } => {
            let mut out = Vec::new();
            let mut start = ts.div_euclid(slide) * slide;
            while start > ts - size {
                out.push((start, start + size));
                start -= slide;
            }
            out
        }
        WindowKind::Cumulate { step, max_size } => {
            let cycle = ts.div_euclid(max_size) * max_size;
            (1..=max_size / step).map(|k| (cycle, cycle + k * step)).filter(|(_, end)| *end > ts).collect()
        }
    }
}

/// Per key group, the earliest window of any row of it that the watermark
/// `wm` has not fired (a window ending at `e` fires at `e - 1`).
fn oracle(kind: WindowKind, rows: &[(i64, i64)], wm: i64) -> BTreeMap<usize, (i64, i64)> {
    let keys: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()));
    let groups = key_groups(&[keys], rows.len(), &mut Vec::new()).expect("int keys hash");
    let mut out: BTreeMap<usize, (i64, i64)> = BTreeMap::new();
    for ((_, ts), g) in rows.iter().zip(groups) {
        for (start, end) in windows_of(kind, *ts) {
            if end - 1 > wm && out.get(&g).is_none_or(|(_, best)| end < *best) {
                out.insert(g, (start, end));
            }
        }
    }
    out
}

/// What a window operator published, per key group; each key group once.
pub(crate) fn published(metrics: &OperatorMetrics) -> BTreeMap<usize, (i64, i64)> {
    let mut out = BTreeMap::new();
    for w in metrics.pending_windows.lock().unwrap().iter() {
        for g in w.key_groups.iter() {
            assert!(out.insert(g, (w.start, w.end)).is_none(), "key group {g} listed twice");
        }
    }
    out
}

/// Random batches (some rows late, some keys new, a few keys or many) and
/// watermarks: after each, every key group's oldest open window is the
/// oracle's; a restored operator publishes the same; once every window
/// fired, nothing is open.
#[test]
fn each_key_groups_oldest_open_window_is_the_oracles() {
    let kinds = [
        WindowKind::Tumble { size: 100 },
        WindowKind::Hop { slide: 50, size: 200 },
        WindowKind::Cumulate { step: 50, max_size: 200 },
    ];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut below = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for kind in kinds {
        for keys in [3, 1_000] {
            let (mut op, metrics) = operator(kind);
            let mut out = Collector::default();
            let mut fed = Vec::new();
            let mut wm = WATERMARK_MIN;
            for round in 0..60_i64 {
                let n = 1 + below(40) as usize;
                let rows: Vec<(i64, i64)> =
                    (0..n).map(|_| (below(keys) as i64, round * 30 + below(160) as i64 - 40)).collect();
                let (k, ts): (Vec<i64>, Vec<i64>) = rows.iter().copied().unzip();
                op.on_batch(keyed(&ts, &k), &mut out).unwrap();
                fed.extend(rows);
                assert_eq!(published(&metrics), oracle(kind, &fed, wm), "{kind:?}, {keys} keys, batch {round}");
                if round % 3 == 2 {
                    wm = round * 30 - 20;
                    op.on_watermark(wm, &mut out).unwrap();
                    assert_eq!(metrics.watermark.load(Ordering::Relaxed), wm);
                    assert_eq!(published(&metrics), oracle(kind, &fed, wm), "{kind:?}, {keys} keys, watermark {wm}");
                }
            }
            assert!(!published(&metrics).is_empty());

            let mut chunks = ChunkWriter::default();
            let state = op.snapshot(1, &mut chunks).unwrap().unwrap();
            let (mut restored, restored_metrics) = operator(kind);
            restored.restore(&[&state], &ChunkMap::of(chunks.new).unwrap(), &|_| true).unwrap();
            assert_eq!(published(&restored_metrics), oracle(kind, &fed, wm), "{kind:?}, {keys} keys, restored");

            op.on_watermark(i64::MAX - 1, &mut out).unwrap();
            assert!(metrics.pending_windows.lock().unwrap().is_empty(), "{kind:?}: every window fired");
        }
    }
}
