//! State TTL (`table.exec.state.ttl`, the `STATE_TTL` hint) end to end,
//! through the `weir` binary, on rows a `datagen` source paces at 10 per
//! second so that a key is idle for a known time: state idle longer than
//! the TTL is dropped, the key's next row starts afresh, and the row that
//! met expired state is counted in the job's summary. The expected output
//! is computed from the rows' arrival times (`oracle`), not taken from a
//! run.

use crate::common;

use std::collections::BTreeMap;

use common::*;

/// Rows per second of the generated sources.
const RATE: u64 = 10;

/// `gen` (and `gen2`): `s` = 1..=`n`, paced at [`RATE`] rows per second.
fn sources(n: u64, names: &[&str]) -> String {
    names
        .iter()
        .map(|t| {
            format!(
                "CREATE TABLE {t} (s BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '{RATE}', \
                 'number-of-rows' = '{n}', 'fields.s.kind' = 'sequence', 'fields.s.start' = '1', 'fields.s.end' = '{n}');\n"
            )
        })
        .collect()
}

/// Applies printed changes as an upsert sink keyed by the first column
/// does: `+I`/`+U` write the key's row (a group that state TTL dropped
/// starts again with `+I`), `-U`/`-D` remove it.
fn upserted(stdout: &str) -> BTreeMap<String, String> {
    let mut rows = BTreeMap::new();
    for line in stdout.lines() {
        let change = line.split_once("> ").map_or(line, |(_, rest)| rest);
        let (kind, values) = change.split_at(2);
        let values = values.trim_start_matches('[').trim_end_matches(']');
        let (key, rest) = values.split_once(", ").unwrap_or((values, ""));
        match kind {
            "+I" | "+U" => rows.insert(key.to_string(), rest.to_string()),
            "-U" | "-D" => rows.remove(key),
            other => panic!("not a change: {other} in {line}"),
        };
    }
    rows
}

/// Per key, the rows of its last run of rows arriving less than `ttl_ms`
/// apart (row `s` arrives at `(s - 1) * 1000 / RATE` ms): what its group
/// holds at the end when state idle for the TTL is dropped; and how many
/// rows came after such a gap (each met expired state).
fn oracle(keys: &[(u64, &str)], ttl_ms: u64) -> (BTreeMap<String, Vec<u64>>, u64) {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    let mut groups: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut expired = 0;
    for (s, k) in keys {
        let at = (s - 1) * 1000 / RATE;
        if let Some(before) = last.insert(k, at)
            && at - before > ttl_ms
        {
            groups.remove(*k);
            expired += 1;
        }
        groups.entry(k.to_string()).or_default().push(*s);
    }
    (groups, expired)
}

/// A GROUP BY under `table.exec.state.ttl`: key `a` is idle for 3 s, longer
/// than the 1 s TTL, so its count starts again.
#[test]
fn a_group_idle_for_the_ttl_starts_again_and_is_counted() {
    let dir = scratch();
    let key = |s: u64| if s <= 10 || s > 40 { "a" } else { "b" };
    let sql = format!(
        "SET 'table.exec.state.ttl' = '1 s';\n{}\
         CREATE TABLE out (k STRING, n BIGINT, first_s BIGINT) WITH ('connector' = 'print');\n\
         INSERT INTO out SELECT k, COUNT(*), MIN(s) FROM \
         (SELECT CASE WHEN s <= 10 OR s > 40 THEN 'a' ELSE 'b' END AS k, s FROM gen) GROUP BY k;\n",
        sources(50, &["gen"])
    );
    let run = run_once(dir.path(), &sql);
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    let keys: Vec<(u64, &str)> = (1..=50).map(|s| (s, key(s))).collect();
    let (groups, expired) = oracle(&keys, 1000);
    let want: BTreeMap<String, String> = groups
        .iter()
        .map(|(k, rows)| (k.clone(), format!("{}, {}", rows.len(), rows.iter().min().unwrap())))
        .collect();
    assert_eq!(expired, 1);
    assert_eq!(upserted(&run.stdout), want, "{}", run.stdout);
    assert_eq!(run.counted("rows that met expired state"), expired);
}

/// A regular join whose right side has a `STATE_TTL` hint: right rows of
/// key 0 come in the first half second, and expire after 1 s; the left row
/// of key 0 that comes at 4.4 s meets nothing (and is counted), the early
/// ones meet all five.
#[test]
fn a_join_side_with_a_state_ttl_hint_forgets_its_idle_keys() {
    let dir = scratch();
    let sql = format!(
        "{}CREATE TABLE out (ls BIGINT, rs BIGINT) WITH ('connector' = 'print');\n\
         INSERT INTO out SELECT /*+ STATE_TTL('r' = '1 s') */ l.s, r.s FROM \
         (SELECT s, CASE WHEN s <= 5 OR s = 45 THEN 0 ELSE s END AS k FROM gen) l \
         JOIN (SELECT s, CASE WHEN s <= 5 THEN 0 ELSE -s END AS k FROM gen2) r ON l.k = r.k;\n",
        sources(50, &["gen", "gen2"])
    );
    let run = run_once(dir.path(), &sql);
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    let (got, kinds) = apply_multiset_changelog(&run.stdout);
    // The oracle: left rows of key 0 within the TTL of the right ones.
    let right: Vec<u64> = (1..=5).collect();
    let last_right_ms = (right[right.len() - 1] - 1) * 1000 / RATE;
    let mut want: Vec<String> = Vec::new();
    let mut expired = 0;
    for l in [1, 2, 3, 4, 5, 45] {
        let at = (l - 1) * 1000 / RATE;
        match at > last_right_ms + 1000 {
            true => expired += 1,
            false => want.extend(right.iter().map(|r| format!("{l}|{r}"))),
        }
    }
    want.sort();
    let mut got = got;
    got.sort();
    assert_eq!(got, want);
    assert_eq!(
        kinds.keys().collect::<Vec<_>>(),
        ["+I"],
        "an inner join of appends only inserts"
    );
    assert_eq!(run.counted("rows that met expired state"), expired);
}

/// A hint naming no input of a join or aggregation is refused with its
/// place, as Flink refuses it; a malformed TTL too.
#[test]
fn a_state_ttl_hint_must_name_an_input() {
    let dir = scratch();
    for (query, says) in [
        (
            "SELECT /*+ STATE_TTL('nope' = '1 h') */ s, COUNT(*) FROM gen GROUP BY s",
            "job.sql:3:24: error: STATE_TTL: 'nope' is not the name or alias of an input",
        ),
        (
            "SELECT /*+ STATE_TTL('gen' = 'soon') */ s, COUNT(*) FROM gen GROUP BY s",
            "STATE_TTL('gen' = 'soon')",
        ),
    ] {
        let sql = format!(
            "{}CREATE TABLE out (s BIGINT, n BIGINT) WITH ('connector' = 'print');\nINSERT INTO out {query};\n",
            sources(5, &["gen"])
        );
        let run = run_once(dir.path(), &sql);
        assert!(!run.ok && run.stderr.contains(says), "{query}: {}", run.stderr);
    }
}
