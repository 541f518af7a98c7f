//! Restoring a savepoint into a changed query: state is mapped by state id
//! (`identity`), and each part's signature is checked.
//!
//! A job's own checkpoints are of the same query and are restored strictly
//! ([`Manifest::check_restore`]). A savepoint (`execution.savepoint.path`)
//! is a deliberate hand-over, as in Flink: a part of the new plan whose id
//! and signature match one of the savepoint's restores; a new part starts
//! empty; a part of the savepoint the new plan does not claim is refused,
//! unless `execution.savepoint.ignore-unclaimed-state` drops it; a part of
//! the same id and another signature is refused naming both, except a
//! source that reads other columns of the same table (its state is its
//! partitions' positions and watermarks, whatever columns it reads), and an
//! aggregate that gained aggregate columns ([`added_aggregates`]).

use std::collections::HashMap;

use crate::checkpoint::identity::{Manifest, StateId, StatefulPart};
use crate::error::{EngineError, Result};

/// The key that lets a savepoint's unclaimed state be dropped.
const IGNORE_UNCLAIMED: &str = "SET 'execution.savepoint.ignore-unclaimed-state' = 'true'";

/// How a checkpoint is matched to the job restoring it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreRules {
    /// The checkpoint is a savepoint the user chose: map state by id into a
    /// possibly changed query, rather than require the same parts.
    pub savepoint: bool,
    /// `execution.savepoint.ignore-unclaimed-state`: drop a savepoint's
    /// state no part of the new plan claims, rather than refuse.
    pub ignore_unclaimed: bool,
}

/// What a checked restore does beyond handing each part its state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evolution {
    /// What the user is told: parts started empty, state dropped,
    /// aggregates added.
    pub notes: Vec<String>,
    /// Per part whose aggregates were added to: for each of its aggregates
    /// now, the position of the saved aggregate it restores (`None`: it is
    /// new and starts from its empty state for every restored key).
    pub aggregates: HashMap<StateId, Vec<Option<usize>>>,
}

impl RestoreRules {
    /// Checks `saved` (the manifest of checkpoint `checkpoint`) against
    /// `job`, the restoring job's, and returns what the restore must do
    /// and tell the user.
    pub fn check(&self, job: &Manifest, checkpoint: u64, saved: Option<&Manifest>) -> Result<Evolution> {
        match (self.savepoint, saved) {
            (true, Some(saved)) => self.check_savepoint(job, saved),
            _ => job.check_restore(checkpoint, saved).map(|()| Evolution::default()),
        }
    }

    fn check_savepoint(&self, job: &Manifest, saved: &Manifest) -> Result<Evolution> {
        let written = format!(
            "written by Weir {} for plan {}",
            saved.weir_version, saved.plan_fingerprint
        );
        let refuse = |why: String| {
            Err(EngineError::Incompatible(format!(
                "{why} ({written}, this plan {}). The savepoint was left as it is",
                job.plan_fingerprint
            )))
        };
        if saved.format != job.format {
            return refuse(format!(
                "it has state format {}, this Weir reads format {}",
                saved.format, job.format
            ));
        }
        if saved.key_hash != job.key_hash {
            return refuse(format!(
                "its keys were spread with key hash version {}, this Weir uses version {}",
                saved.key_hash, job.key_hash
            ));
        }
        let mut notes = Vec::new();
        let mut dropped = Vec::new();
        let mut aggregates = HashMap::new();
        for part in &saved.parts {
            match job.parts.iter().find(|p| p.id == part.id) {
                None if self.ignore_unclaimed => dropped.push(format!("{} ({})", part.id, part.signature)),
                None => {
                    return refuse(format!(
                        "it holds state of {} ({}), which no operator of this query claims: give the operator that \
                         should take it the state id '{}' (a UID hint), or {IGNORE_UNCLAIMED} to drop that state",
                        part.id, part.signature, part.id
                    ));
                }
                Some(mine) if mine.signature == part.signature || same_source(part, mine) => {}
                Some(mine) => {
                    let added = added_aggregates(&part.signature, &mine.signature);
                    let map = match added {
                        Ok(map) => map,
                        Err(why) => return refuse(format!("the state of {} cannot be restored: {why}", part.id)),
                    };
                    let Some(map) = map else {
                        return refuse(format!(
                            "the state of {} was saved as {}, and this query's {} keeps {}: {}",
                            part.id,
                            part.signature,
                            part.id,
                            mine.signature,
                            difference(&part.signature, &mine.signature)
                        ));
                    };
                    let added: Vec<String> = aggregate_list(&mine.signature)
                        .map(|(_, list, _)| list)
                        .unwrap_or_default()
                        .into_iter()
                        .zip(&map)
                        .filter(|(_, from)| from.is_none())
                        .map(|(call, _)| call.to_string())
                        .collect();
                    notes.push(format!(
                        "{}'s added aggregates {} start empty for the keys it restored",
                        part.id,
                        added.join(", ")
                    ));
                    aggregates.insert(part.id.clone(), map);
                }
            }
        }
        if !dropped.is_empty() {
            notes.push(format!(
                "the savepoint's state of {} was dropped (no operator claims it)",
                dropped.join(", ")
            ));
        }
        let empty: Vec<String> = job
            .parts
            .iter()
            .filter(|p| !saved.parts.iter().any(|s| s.id == p.id))
            .map(|p| p.id.to_string())
            .collect();
        if !empty.is_empty() {
            notes.push(format!(
                "{} had no state in the savepoint and started empty",
                empty.join(", ")
            ));
        }
        Ok(Evolution { notes, aggregates })
    }
}

/// A signature's aggregate list (`aggregates [count(Int64), avg(UInt64,
/// Float64)]`) as what comes before it, its calls, and what follows it.
fn aggregate_list(signature: &str) -> Option<(&str, Vec<&str>, &str)> {
    const OPEN: &str = "aggregates [";
    let start = signature.find(OPEN)? + OPEN.len();
    let mut depth = 0usize;
    let mut calls = Vec::new();
    let mut from = start;
    for (i, c) in signature[start..].char_indices().map(|(i, c)| (i + start, c)) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ']' if depth == 0 => {
                if i > from {
                    calls.push(signature[from..i].trim());
                }
                return Some((&signature[..start], calls, &signature[i..]));
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                calls.push(signature[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// Whether a window or group aggregate saved as `saved` can be restored
/// by one keeping `mine`: the same window, keys and input, and the saved
/// aggregates (each a function with the types of its state) are, in order,
/// among the new ones. For each aggregate now, the saved one it restores.
/// A saved list that fits the new one in more than one way (a `count`
/// added before a `count`) is refused: which state is whose is not known.
/// Session windows keep their input rows, not aggregates, and are not
/// evolved.
pub fn added_aggregates(saved: &str, mine: &str) -> std::result::Result<Option<Vec<Option<usize>>>, String> {
    let (Some((before, old, after)), Some((now_before, new, now_after))) =
        (aggregate_list(saved), aggregate_list(mine))
    else {
        return Ok(None);
    };
    if before != now_before || after != now_after || saved.starts_with("gap ") || old.len() >= new.len() {
        return Ok(None);
    }
    // The first and the last placement of the saved calls among the new
    // ones: the same when there is only one.
    let place = |calls: Vec<(usize, &str)>, wanted: Vec<&str>| -> Option<Vec<usize>> {
        let mut calls = calls.into_iter();
        wanted
            .into_iter()
            .map(|want| calls.find(|(_, c)| *c == want).map(|(i, _)| i))
            .collect()
    };
    let Some(first) = place(new.iter().copied().enumerate().collect(), old.clone()) else {
        return Ok(None);
    };
    let mut last = place(
        new.iter().copied().enumerate().rev().collect(),
        old.iter().rev().copied().collect(),
    )
    .unwrap_or_default();
    last.reverse();
    if first != last {
        return Err(format!(
            "the saved aggregates [{}] fit this query's [{}] in more than one way: which state is whose is not \
             known (add the new aggregate after the ones of the same function)",
            old.join(", "),
            new.join(", ")
        ));
    }
    let mut map = vec![None; new.len()];
    for (saved_at, now_at) in first.into_iter().enumerate() {
        map[now_at] = Some(saved_at);
    }
    Ok(Some(map))
}

/// Whether two source parts read one table, their positions counted
/// alike (`SourceConnector::positions`): a source's state is its
/// partitions' positions and watermarks, whichever columns it reads.
fn same_source(saved: &StatefulPart, mine: &StatefulPart) -> bool {
    let table = |s: &str| {
        s.strip_prefix("table ")
            .and_then(|t| t.split_once("; columns "))
            .map(|(t, _)| t.to_string())
    };
    let positions = |s: &str| s.split_once("; positions ").map(|(_, p)| p.to_string());
    saved.id.as_str().starts_with("Source")
        && table(&saved.signature).is_some_and(|t| Some(t) == table(&mine.signature))
        && positions(&saved.signature) == positions(&mine.signature)
}

/// The first element of two signatures (parts split at `; `) that differs,
/// for the message.
fn difference(saved: &str, mine: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (saved.split("; ").collect(), mine.split("; ").collect());
    match a.iter().zip(&b).find(|(x, y)| x != y) {
        Some((x, y)) => format!("{x} became {y}"),
        None if a.len() > b.len() => format!("{} is gone", a[b.len()..].join("; ")),
        None => format!("{} is new", b[a.len()..].join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::identity::test_manifest as manifest;

    const SAVEPOINT: RestoreRules = RestoreRules {
        savepoint: true,
        ignore_unclaimed: false,
    };

    fn refusal(rules: RestoreRules, job: &Manifest, saved: &Manifest) -> String {
        match rules.check(job, 3, Some(saved)) {
            Err(EngineError::Incompatible(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// A savepoint maps state by id: new parts start empty (and say so),
    /// a source reading other columns of its table keeps its positions.
    #[test]
    fn a_savepoint_restores_by_id_into_a_changed_query() {
        let saved = manifest(&[
            ("Source#0", "table t; columns [k Utf8]"),
            ("clicks", "keys [k Utf8]; aggregates [count()]"),
        ]);
        let job = manifest(&[
            ("Source#0", "table t; columns [k Utf8, v Int64]"),
            ("GroupAggregate#0", "keys [v Int64]; aggregates [sum(Int64)]"),
            ("clicks", "keys [k Utf8]; aggregates [count()]"),
        ]);
        let notes = SAVEPOINT.check(&job, 3, Some(&saved)).unwrap().notes;
        assert_eq!(
            notes,
            ["GroupAggregate#0 had no state in the savepoint and started empty"]
        );
        let strict = RestoreRules::default();
        assert!(
            strict.check(&job, 3, Some(&saved)).is_err(),
            "a job's own checkpoints stay strict"
        );
        let other_table = manifest(&[
            ("Source#0", "table u; columns [k Utf8]"),
            ("clicks", "keys [k Utf8]; aggregates [count()]"),
        ]);
        let m = refusal(SAVEPOINT, &other_table, &saved);
        assert!(
            m.contains("Source#0 was saved as table t; columns [k Utf8]") && m.contains("table t became table u"),
            "{m}"
        );
        // Positions counted otherwise (a file read whole, now in splits)
        // would be misread.
        let split = manifest(&[
            ("Source#0", "table t; columns [k Utf8]; positions lines of each file or split of 1024 bytes"),
            ("clicks", "keys [k Utf8]; aggregates [count()]"),
        ]);
        let m = refusal(SAVEPOINT, &split, &saved);
        assert!(m.contains("positions lines of each file or split of 1024 bytes is new"), "{m}");
    }

    /// State no part claims is refused naming the part, or dropped with a
    /// note when the user says so; a changed part names the difference.
    #[test]
    fn unclaimed_and_changed_state_is_refused_naming_the_operator() {
        let saved = manifest(&[
            ("Source#0", "table t; columns [k Utf8]"),
            ("GroupAggregate#0", "keys [k Utf8]; aggregates [count()]"),
        ]);
        let without = manifest(&[("Source#0", "table t; columns [k Utf8]")]);
        let m = refusal(SAVEPOINT, &without, &saved);
        assert!(
            m.contains("state of GroupAggregate#0")
                && m.contains("no operator of this query claims")
                && m.contains("ignore-unclaimed-state"),
            "{m}"
        );
        let ignore = RestoreRules {
            savepoint: true,
            ignore_unclaimed: true,
        };
        let notes = ignore.check(&without, 3, Some(&saved)).unwrap().notes;
        assert!(
            notes[0].contains("GroupAggregate#0 (keys [k Utf8]; aggregates [count()]) was dropped"),
            "{notes:?}"
        );

        let changed = manifest(&[
            ("Source#0", "table t; columns [k Utf8]"),
            ("GroupAggregate#0", "keys [k Int64]; aggregates [count()]"),
        ]);
        let m = refusal(ignore, &changed, &saved);
        assert!(
            m.contains("GroupAggregate#0 was saved as") && m.contains("keys [k Utf8] became keys [k Int64]"),
            "{m}"
        );
        let mut format = saved.clone();
        format.format += 1;
        assert!(refusal(SAVEPOINT, &saved, &format).contains("state format"));
    }

    /// Aggregates added among the saved ones are mapped to them by
    /// function, state types and order; a removed or changed one, another
    /// key, or a placement that is not unique is not an addition.
    #[test]
    fn added_aggregates_map_to_the_saved_ones() {
        let sig = |aggs: &str| format!("TUMBLE(size 10 s); keys [k Utf8]; aggregates [{aggs}]");
        let saved = sig("count(Int64), avg(UInt64, Float64)");
        let map = |mine: &str| added_aggregates(&saved, &sig(mine));
        assert_eq!(
            map("count(Int64), sum(Int64), avg(UInt64, Float64)").unwrap(),
            Some(vec![Some(0), None, Some(1)])
        );
        assert_eq!(
            map("count(Int64), avg(UInt64, Float64), max(Int64)").unwrap(),
            Some(vec![Some(0), Some(1), None])
        );
        assert_eq!(
            map("avg(UInt64, Float64), count(Int64), max(Int64)").unwrap(),
            None,
            "reordered"
        );
        assert_eq!(map("count(Int64)").unwrap(), None, "removed");
        assert_eq!(
            added_aggregates(
                &saved,
                &sig("count(Int64), avg(UInt64, Float64)").replace("Utf8", "Int64")
            )
            .unwrap(),
            None
        );
        let e = map("count(Int64), count(Int64), avg(UInt64, Float64)").unwrap_err();
        assert!(e.contains("more than one way"), "{e}");

        let job = manifest(&[(
            "WindowAggregate#0",
            &sig("count(Int64), sum(Int64), avg(UInt64, Float64)"),
        )]);
        let evolution = SAVEPOINT
            .check(&job, 3, Some(&manifest(&[("WindowAggregate#0", &saved)])))
            .unwrap();
        assert_eq!(
            evolution.notes,
            ["WindowAggregate#0's added aggregates sum(Int64) start empty for the keys it restored"]
        );
        assert_eq!(
            evolution.aggregates[&StateId::parse("WindowAggregate#0")],
            vec![Some(0), None, Some(1)]
        );
        let group = |aggs: &str| format!("keys [k Utf8]; aggregates [{aggs}]; appending");
        assert!(
            added_aggregates(&group("count(Int64)"), &group("count(Int64), sum(Int64)"))
                .unwrap()
                .is_some()
        );
        let session = |aggs: &str| format!("gap 1000 ms; rows [k Utf8]; keys [k Utf8]; aggregates [{aggs}]");
        assert_eq!(
            added_aggregates(&session("count(Int64)"), &session("count(Int64), sum(Int64)")).unwrap(),
            None
        );
    }
}
