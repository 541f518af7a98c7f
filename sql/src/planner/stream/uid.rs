//! State ids the user sets: `/*+ UID('GroupAggregate' = 'clicks_per_user') */`
//! (Flink's `uid()` of the DataStream API, which Flink SQL lacks).
//!
//! A stateful operator's derived id is its kind and ordinal in plan order
//! (`GroupAggregate#1`), which moves when a changed query plans another
//! operator of that kind before it. A UID hint names the operator in the
//! plan of the statement it is written in — by its kind when the plan has
//! one stateful operator of that kind, else by the derived id `EXPLAIN`
//! shows — and gives it an id that stays wherever the operator moves, so
//! that a savepoint's state finds it. Hints apply to the job's whole plan
//! (every INSERT of a statement set), once it is planned.

use datafusion::sql::sqlparser::tokenizer::Tokenizer;
use weir_engine::checkpoint::identity::{check_uid, check_unique_ids, state_ids};
use weir_engine::plan::StreamPlan;

use crate::dialect::WeirDialect;
use crate::error::{Result, SqlError};
use crate::hints::uid_hints;

/// `plan` with the state ids the `UID` hints of statement `text` set.
/// A hint naming no stateful operator, or several, or giving an id two
/// operators would share, is refused; the error is placed at the statement
/// (the hint's place in `text` is not the script's), and quotes the hint.
pub fn apply_uids(mut plan: StreamPlan, text: &str) -> Result<StreamPlan> {
    let tokens = Tokenizer::new(&WeirDialect::default(), text)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| SqlError::plan(e.to_string(), None))?;
    let hints = uid_hints(&tokens).map_err(|e| match e {
        SqlError::Syntax { message, .. } => SqlError::Syntax {
            message,
            position: None,
        },
        e => e,
    })?;
    if hints.is_empty() {
        return Ok(plan);
    }
    let (ids, parts) = state_ids(&plan);
    // (stage, operator, derived id) of every stateful operator.
    let operators: Vec<(usize, usize, String)> = ids
        .iter()
        .enumerate()
        .flat_map(|(s, stage)| {
            stage
                .operators
                .iter()
                .enumerate()
                .filter_map(move |(o, id)| Some((s, o, id.as_ref()?.to_string())))
        })
        .collect();
    let listed = || parts.iter().map(|p| p.id.to_string()).collect::<Vec<_>>().join(", ");
    for hint in &hints {
        for (key, uid) in &hint.uids {
            let place = format!("UID('{key}' = '{uid}')");
            check_uid(uid).map_err(|why| SqlError::plan(format!("{place}: {why}"), None))?;
            let kind = |id: &str| id.split_once('#').map_or(id.to_string(), |(k, _)| k.to_string());
            let named: Vec<&(usize, usize, String)> = operators
                .iter()
                .filter(|(_, _, id)| match key.contains('#') {
                    true => id.eq_ignore_ascii_case(key),
                    false => kind(id).eq_ignore_ascii_case(key),
                })
                .collect();
            match named.as_slice() {
                [(s, o, id)] => {
                    let op = &mut plan.stages[*s].chain[*o];
                    if let Some(set) = op.uid() {
                        return Err(SqlError::plan(
                            format!("{place}: {id} was already given the id '{set}'"),
                            None,
                        ));
                    }
                    *op = op.clone().with_uid(uid);
                }
                [] if kind(key).eq_ignore_ascii_case("Source") => {
                    return Err(SqlError::unsupported(
                        format!("{place}: a source's state id cannot be set (sources are numbered in plan order)"),
                        None,
                    ));
                }
                [] => {
                    return Err(SqlError::plan(
                        format!(
                            "{place}: this query has no stateful operator '{key}' (its stateful parts: {})",
                            listed()
                        ),
                        None,
                    ));
                }
                several => {
                    let ids: Vec<&str> = several.iter().map(|(_, _, id)| id.as_str()).collect();
                    return Err(SqlError::plan(
                        format!(
                            "{place} is ambiguous: this query has {} {key} operators ({}); name one by its id as \
                             EXPLAIN shows it, e.g. UID('{}' = '{uid}')",
                            several.len(),
                            ids.join(", "),
                            ids[0]
                        ),
                        None,
                    ));
                }
            }
        }
    }
    check_unique_ids(&plan).map_err(|e| SqlError::plan(e.to_string(), None))?;
    Ok(plan)
}
