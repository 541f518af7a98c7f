//! The keys and aggregates of a saved window or group aggregate, rebuilt
//! from its signature in the manifest (`keys [k Int64]; aggregates
//! [count(Int64), avg(UInt64, Float64)]`, see `Grouping::state_signature`):
//! a savepoint holds partial states, not the query, and reading them as
//! current values takes the accumulators that made them. Each aggregate is
//! DataFusion's function of the signature's name, with the input type whose
//! state has the signature's types; the rebuilt grouping must give the
//! signature back exactly, or the state is not read.

use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::AggregateUDF;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::PhysicalExpr;

use crate::error::{EngineError, Result};
use crate::window::groups::{AggregateCall, Grouping};

/// Finds a DataFusion aggregate function by name: the session's registry,
/// so that functions the session added are found too.
pub type AggregateLookup<'a> = &'a dyn Fn(&str) -> Option<Arc<AggregateUDF>>;

/// Input types tried for an aggregate besides those its state names.
const COMMON_INPUTS: &[DataType] = &[
    DataType::Int64,
    DataType::Float64,
    DataType::Int32,
    DataType::Int16,
    DataType::Int8,
    DataType::UInt64,
    DataType::UInt32,
    DataType::Float32,
    DataType::Utf8,
    DataType::Utf8View,
    DataType::LargeUtf8,
    DataType::Boolean,
    DataType::Date32,
];

/// The grouping `signature` (a window or group aggregate's) describes.
pub fn rebuild(signature: &str, lookup: AggregateLookup) -> Result<Grouping> {
    let bad = |what: &str| EngineError::State(format!("cannot read the state signature '{signature}': {what}"));
    let at = signature.find("keys [").ok_or_else(|| bad("it names no keys"))?;
    let grouping_text = &signature[at..];
    let (keys, rest) = bracketed(&grouping_text["keys ".len()..]).ok_or_else(|| bad("unbalanced key list"))?;
    let rest = rest.strip_prefix("; aggregates ").ok_or_else(|| bad("it names no aggregates"))?;
    let (aggregates, _) = bracketed(rest).ok_or_else(|| bad("unbalanced aggregate list"))?;

    let mut key_fields = Vec::new();
    for entry in split_top(keys) {
        let (name, ty) = name_and_type(entry).ok_or_else(|| bad("a key without a type"))?;
        let ty = DataType::from_str(ty).map_err(|e| bad(&format!("key {name}: {e}")))?;
        key_fields.push(Field::new(name, ty, true));
    }
    let key_exprs: Vec<Arc<dyn PhysicalExpr>> = key_fields
        .iter()
        .enumerate()
        .map(|(i, f)| Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>)
        .collect();
    let calls =
        split_top(aggregates).enumerate().map(|(i, entry)| aggregate(i, entry, lookup)).collect::<Result<Vec<_>>>()?;
    let grouping = Grouping::new(key_exprs, key_fields, calls);
    if !grouping_text.starts_with(&grouping.state_signature()) {
        return Err(bad(&format!("rebuilt as '{}'", grouping.state_signature())));
    }
    Ok(grouping)
}

/// Aggregate `i`, `name(state types)`: the function with the first input
/// type (and DISTINCT or not) whose state has those types.
fn aggregate(i: usize, entry: &str, lookup: AggregateLookup) -> Result<AggregateCall> {
    let unreadable = |why: &str| EngineError::State(format!("cannot read aggregate {i}, {entry}: {why}"));
    let (name, state) = entry
        .split_once('(')
        .and_then(|(n, s)| Some((n, s.strip_suffix(')')?)))
        .ok_or_else(|| unreadable("not a function and its state types"))?;
    let udaf = lookup(name).ok_or_else(|| unreadable("no aggregate function of that name"))?;
    let state_types = split_top(state)
        .map(|t| DataType::from_str(t).map_err(|e| unreadable(&e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    for input in candidate_inputs(&state_types) {
        for distinct in [false, true] {
            let schema = Arc::new(Schema::new(vec![Field::new("x", input.clone(), true)]));
            let arg: Arc<dyn PhysicalExpr> = Arc::new(Column::new("x", 0));
            let Ok(function) = AggregateExprBuilder::new(Arc::clone(&udaf), vec![arg])
                .schema(schema)
                .alias(format!("{name}_{i}"))
                .with_distinct(distinct)
                .build()
            else {
                continue;
            };
            let same = function.state_fields().is_ok_and(|fields| {
                fields.len() == state_types.len()
                    && fields.iter().zip(&state_types).all(|(f, t)| f.data_type().to_string() == t.to_string())
            });
            // A builder takes input types its accumulator then refuses
            // (an average of integers, which the planner casts to floats).
            if same && function.create_accumulator().is_ok() {
                return Ok(AggregateCall { function: Arc::new(function), filter: None });
            }
        }
    }
    Err(unreadable("no input type of the function gives that state"))
}

/// The state's own types and what they hold (a DISTINCT aggregate keeps a
/// list of its inputs), decimals of every precision at their scale (a
/// decimal sum or average widens its input's), then the usual types.
fn candidate_inputs(state: &[DataType]) -> Vec<DataType> {
    let mut out: Vec<DataType> = Vec::new();
    let mut push = |t: DataType| {
        if !out.contains(&t) {
            out.push(t);
        }
    };
    for t in state {
        push(t.clone());
        if let DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) = t {
            push(f.data_type().clone());
        }
    }
    for t in state {
        if let DataType::Decimal128(_, scale) = t {
            for precision in 1..=38 {
                push(DataType::Decimal128(precision, *scale));
            }
        }
    }
    COMMON_INPUTS.iter().cloned().for_each(push);
    out
}

/// The text inside the bracket `text` starts with, and what follows it.
fn bracketed(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('[')?;
    let mut depth = 0usize;
    for (i, c) in inner.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | '}' => depth = depth.checked_sub(1)?,
            ']' if depth == 0 => return Some((&inner[..i], &inner[i + 1..])),
            ']' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `name Type`, split at the last space outside parentheses (a name may
/// hold spaces, a type's parameters too).
fn name_and_type(entry: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    let mut last = None;
    for (i, c) in entry.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ' ' if depth == 0 => last = Some(i),
            _ => {}
        }
    }
    last.map(|i| (&entry[..i], &entry[i + 1..]))
}

/// `text` split at the `, ` outside any parentheses or brackets.
fn split_top(text: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 && bytes.get(i + 1) == Some(&b' ') => {
                parts.push(&text[start..i]);
                start = i + 2;
            }
            _ => {}
        }
    }
    if !text.is_empty() {
        parts.push(&text[start..]);
    }
    parts.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::functions_aggregate::{average::avg_udaf, count::count_udaf, min_max::max_udaf, sum::sum_udaf};

    fn lookup(name: &str) -> Option<Arc<AggregateUDF>> {
        [count_udaf(), sum_udaf(), avg_udaf(), max_udaf()].into_iter().find(|f| f.name() == name)
    }

    fn call(f: Arc<AggregateUDF>, input: DataType, distinct: bool) -> AggregateCall {
        let schema = Arc::new(Schema::new(vec![Field::new("v", input, true)]));
        let arg: Arc<dyn PhysicalExpr> = Arc::new(Column::new("v", 0));
        let function =
            AggregateExprBuilder::new(f, vec![arg]).schema(schema).alias("a").with_distinct(distinct).build().unwrap();
        AggregateCall { function: Arc::new(function), filter: None }
    }

    /// A grouping written by `Grouping::state_signature` is rebuilt with the
    /// same keys (names and types) and aggregates (state and result types).
    #[test]
    fn signature_round_trips() {
        let ts = DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, Some("UTC".into()));
        let keys = vec![Field::new("user id", DataType::Utf8, true), Field::new("at", ts, true)];
        let exprs: Vec<Arc<dyn PhysicalExpr>> =
            vec![Arc::new(Column::new("user id", 0)), Arc::new(Column::new("at", 1))];
        let calls = vec![
            call(count_udaf(), DataType::Utf8, false),
            call(count_udaf(), DataType::Int64, true),
            call(sum_udaf(), DataType::Decimal128(12, 2), false),
            call(avg_udaf(), DataType::Float64, false),
            call(max_udaf(), DataType::Utf8View, false),
        ];
        let original = Grouping::new(exprs, keys, calls);
        let signature = format!("TUMBLE(size 1 s); {}", original.state_signature());
        let rebuilt = rebuild(&signature, &lookup).unwrap();
        assert_eq!(rebuilt.state_signature(), original.state_signature());
        assert_eq!(rebuilt.key_schema.field(0).name(), "user id");
        for (a, b) in rebuilt.aggregates.iter().zip(&original.aggregates) {
            assert_eq!(a.function.field().data_type(), b.function.field().data_type(), "{}", b.function.fun().name());
        }
        let global = Grouping::new(vec![], vec![], vec![call(sum_udaf(), DataType::Int64, false)]);
        let signature = format!("{}; appending", global.state_signature());
        assert_eq!(rebuild(&signature, &lookup).unwrap().state_signature(), global.state_signature());
    }

    /// An unknown function or a garbled signature is an error naming it.
    #[test]
    fn unreadable_signatures_are_errors() {
        let err = rebuild("keys [k Int64]; aggregates [nosuch(Int64)]", &lookup).unwrap_err().to_string();
        assert!(err.contains("nosuch(Int64)") && err.contains("no aggregate function"), "{err}");
        for bad in [
            "rows [a Int64]",
            "keys [k Int64",
            "keys [k Nonsense]; aggregates []",
            "keys [k Int64]; aggregates [count(Int64]",
        ] {
            assert!(rebuild(bad, &lookup).is_err(), "{bad}");
        }
    }
}
