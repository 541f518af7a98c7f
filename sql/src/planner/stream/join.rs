//! Joins of two streams. Which kind the condition makes: equal windows of
//! the same window TVF on both sides make a window join; bounds on the
//! difference of the two rowtimes make an interval join; a versioned table
//! joined `FOR SYSTEM_TIME AS OF` the left rowtime makes a temporal join
//! (`temporal_join.rs`). Anything else is a regular join, which keeps every
//! row: an inner join of append-only streams appends; over changelogs, or
//! outer, it is the updating join, whose output is a changelog.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Join, JoinType, LogicalPlan, Operator};
use datafusion::physical_plan::joins::utils::JoinFilter;
use weir_engine::join::JoinSpec;
use weir_engine::join::interval::{IntervalJoinPlan, TimeBounds};
use weir_engine::join::updating::UpdatingJoinPlan;
use weir_engine::join::window::WindowJoinPlan;
use weir_engine::plan::{Distribution, NodeOp, OperatorPlan, Properties, StreamNode, WindowColumns};

use super::narrow::select;
use super::{Flow, StreamPlanner};
use crate::error::{Result, SqlError};
use crate::planner::window_tvf::literal_interval_ms;

/// Which side of the join an expression's columns are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

impl StreamPlanner<'_> {
    /// Plans `join`. DataFusion's optimizer (`planner/optimize.rs`) has
    /// already moved a WHERE over it into its condition, and a condition on
    /// one side alone below it, onto that side's rows.
    ///
    /// With `needed`, the consumer reads only those columns of the join's
    /// output: each side keeps and moves only them and what the condition
    /// reads, and the returned schema is of the columns kept.
    pub(super) fn join(&mut self, join: &Join, needed: Option<&BTreeSet<usize>>) -> Result<(Flow, DFSchemaRef)> {
        if let Some((table, column)) = self.versioned(&join.right) {
            return self.temporal_join(join, table, &column);
        }
        // `NOT IN` is null-aware: one NULL on the right anywhere empties the
        // answer, which no partitioned join can know.
        if join.null_aware {
            return Err(SqlError::Unsupported {
                construct: "NOT IN (subquery) over streams".into(),
                detail: Some("write NOT EXISTS (… WHERE … = …), which treats NULLs row by row".into()),
                position: self.join_position,
            });
        }
        // A subquery under OR or NOT marks each row with whether it has a
        // partner, which no window join computes.
        if matches!(join.join_type, JoinType::LeftMark | JoinType::RightMark) {
            return Err(SqlError::Unsupported {
                construct: "an IN / EXISTS subquery inside OR or NOT over streams".into(),
                detail: Some(
                    "as in Flink, such a subquery runs as a window semi or anti join: make it a condition of its own, \
                     ANDed with the rest of the WHERE"
                        .into(),
                ),
                position: self.join_position,
            });
        }
        // A semi or anti join (IN / EXISTS) yields the left side's columns.
        let needed = match join.join_type {
            JoinType::LeftSemi | JoinType::LeftAnti => None,
            _ => needed,
        };
        let mut left = self.plan(&join.left)?;
        let mut right = self.plan(&join.right)?;
        let ttl = [self.state_ttl.of_input(&join.left), self.state_ttl.of_input(&join.right)];
        for flow in [&mut left, &mut right] {
            self.materialize(flow)?;
        }
        // A changelog side (a GROUP BY's results, a CDC source) needs the
        // updating join, which takes rows back as they are.
        let updating = left.props().changelog || right.props().changelog;
        let refuse_updating = |what: &str| match updating {
            true => Err(SqlError::Unsupported {
                construct: format!("a {what} over the results of a GROUP BY without a window or a changelog source"),
                detail: Some(
                    "its rows must be final; join them with a regular join (no window, no time bound on the rowtimes)".into(),
                ),
                position: self.join_position,
            }),
            false => Ok(()),
        };
        let (ls, rs) = (join.left.schema().as_ref(), join.right.schema().as_ref());
        let mut conjuncts: Vec<Expr> = join.on.iter().map(|(l, r)| l.clone().eq(r.clone())).collect();
        if let Some(e) = &join.filter {
            conjuncts.extend(split_conjunction(e).into_iter().cloned());
        }
        let mut on = Vec::new();
        let mut rest = Vec::new();
        for c in conjuncts {
            match equi_pair(&c, ls, rs) {
                Some(pair) => on.push(pair),
                None => rest.push(c),
            }
        }
        let (ls, rs, output) = match needed {
            None => (
                Arc::clone(join.left.schema()),
                Arc::clone(join.right.schema()),
                Arc::clone(&join.schema),
            ),
            Some(needed) => {
                // Rowtimes and windows matter to the join only as its
                // condition reads them.
                let mut used = needed.clone();
                let width = ls.fields().len();
                for c in on
                    .iter()
                    .flat_map(|(l, r)| [l, r])
                    .chain(&rest)
                    .flat_map(|e| e.column_refs())
                {
                    used.extend(ls.index_of_column(c).ok());
                    used.extend(rs.index_of_column(c).ok().map(|i| width + i));
                }
                let (lkeep, rkeep): (Vec<usize>, Vec<usize>) = used.iter().partition(|i| **i < width);
                let rkeep: Vec<usize> = rkeep.iter().map(|i| i - width).collect();
                let ls = keep_columns(&mut left, join.left.schema(), &lkeep)?;
                let rs = keep_columns(&mut right, join.right.schema(), &rkeep)?;
                let output = kept_schema(&join.schema, used.iter().copied())?;
                (ls, rs, output)
            }
        };
        let (ls, rs) = (ls.as_ref(), rs.as_ref());
        let windows = window_pairs(&mut on, left.props().window, right.props().window, ls, rs)
            .map_err(|e| e.or_at(self.join_position))?;
        let bounds = match (windows, left.props().rowtime, right.props().rowtime) {
            (None, Some(lt), Some(rt)) => Some((lt, rt, time_bounds(&rest, ls, rs, lt, rt))),
            _ => None,
        };
        let physical_on = on
            .iter()
            .map(|(l, r)| Ok((self.physical(l, ls)?, self.physical(r, rs)?)))
            .collect::<Result<Vec<_>>>()?;
        let filter = conjunction(rest).map(|f| self.join_filter(&f, ls, rs)).transpose()?;
        // Both sides are partitioned by their join keys.
        let (lk, rk): (Vec<_>, Vec<_>) = physical_on.iter().cloned().unzip();
        let spec = JoinSpec {
            join_type: join.join_type,
            left_schema: Arc::new(ls.as_arrow().clone()),
            right_schema: Arc::new(rs.as_arrow().clone()),
            on: physical_on,
            filter,
            output_schema: Arc::new(output.as_arrow().clone()),
        };
        let (operator, time, windowed) = match (windows, bounds) {
            (Some((lw, rw)), _) => {
                refuse_updating("window join")?;
                let plan = WindowJoinPlan {
                    spec,
                    window_end: [lw.end, rw.end],
                };
                // The left side's window columns lead the output; with an
                // inner, semi or anti join they are every row's window.
                let windowed = matches!(
                    join.join_type,
                    JoinType::Inner | JoinType::LeftSemi | JoinType::LeftAnti
                )
                .then_some(lw);
                (OperatorPlan::new(plan), None, windowed)
            }
            (None, Some((lt, rt, (Some(lower), Some(upper))))) => {
                refuse_updating("interval join")?;
                let outer = matches!(join.join_type, JoinType::Left | JoinType::Right | JoinType::Full);
                if join.join_type != JoinType::Inner && !(outer && !lk.is_empty()) {
                    return Err(SqlError::Unsupported {
                        construct: format!(
                            "a {} interval join{}",
                            join.join_type.to_string().to_uppercase(),
                            if outer { " without an equality of the two sides' columns" } else { "" }
                        ),
                        detail: Some(
                            "inner interval joins run, and outer ones on a key (ON l.k = r.k AND r.ts BETWEEN …)".into(),
                        ),
                        position: self.join_position,
                    });
                }
                if lower > upper {
                    return Err(SqlError::plan(
                        format!(
                            "the join's time bounds leave no interval: right minus left time within [{lower}, {upper}] ms"
                        ),
                        self.join_position,
                    ));
                }
                let bounds = TimeBounds {
                    time: [lt, rt],
                    lower,
                    upper,
                };
                // The rowtime of the rows that always have one.
                let time = match join.join_type {
                    JoinType::Inner | JoinType::Left => Some(lt),
                    JoinType::Right => Some(ls.fields().len() + rt),
                    _ => None,
                };
                let plan = IntervalJoinPlan {
                    spec,
                    bounds: Some(bounds),
                    ttl: [None, None],
                };
                (OperatorPlan::new(plan), time, None)
            }
            // A regular inner join (Flink's): every row is kept, and each is
            // joined with the other side's rows so far. Over append-only
            // streams its output only appends.
            _ if join.join_type == JoinType::Inner && !updating => {
                (OperatorPlan::new(IntervalJoinPlan { spec, bounds: None, ttl }), None, None)
            }
            // Over changelogs, or outer: rows are taken back as partners
            // come and go (Flink's regular join), so the output is a
            // changelog too.
            _ if matches!(join.join_type, JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full) => {
                let plan = UpdatingJoinPlan { spec, ttl };
                let (ld, rd) = distributions(lk, rk);
                let properties = Properties {
                    changelog: true,
                    ..Properties::default()
                };
                let node = StreamNode::over(
                    NodeOp::Operator(OperatorPlan::new(plan)),
                    vec![(left.node, ld), (right.node, rd)],
                    properties,
                );
                return Ok((Flow::new(node), output));
            }
            _ if matches!(join.join_type, JoinType::LeftSemi | JoinType::LeftAnti) => {
                return Err(SqlError::Unsupported {
                    construct: "an IN / EXISTS subquery over streams outside a window".into(),
                    detail: Some(
                        "as in Flink, it runs as a window semi or anti join: both sides from the same TUMBLE or HOP, \
                         the subquery correlated on L.window_start = R.window_start AND L.window_end = R.window_end"
                            .into(),
                    ),
                    position: self.join_position,
                });
            }
            _ => {
                return Err(SqlError::Unsupported {
                    construct: format!(
                        "a {} join of two streams without a window or a time bound",
                        join.join_type.to_string().to_uppercase()
                    ),
                    detail: Some("Flink runs it only as a window join, or over a window's final rows".into()),
                    position: self.join_position,
                });
            }
        };
        let (ld, rd) = distributions(lk, rk);
        let properties = Properties {
            rowtime: time,
            window: windowed,
            ..Properties::default()
        };
        let node = StreamNode::over(
            NodeOp::Operator(operator),
            vec![(left.node, ld), (right.node, rd)],
            properties,
        );
        let flow = Flow::new(node);
        Ok((flow, output))
    }

    /// Plans `plan` for a consumer that reads only the columns `needed` of
    /// its output, and returns the schema of the rows it yields: a join
    /// drops the others before they are moved and kept.
    pub(super) fn plan_reading(&mut self, plan: &LogicalPlan, needed: &BTreeSet<usize>) -> Result<(Flow, DFSchemaRef)> {
        if let Some(join) = super::unnest::lateral(plan) {
            return self.unnest_join(join, Some(needed));
        }
        match self.stream_join(plan) {
            Some(join) => self.join(join, Some(needed)),
            None => Ok((self.plan(plan)?, Arc::clone(plan.schema()))),
        }
    }

    /// `plan` as a join of two streams: a join that is not a lookup join.
    pub(super) fn stream_join<'p>(&self, plan: &'p LogicalPlan) -> Option<&'p Join> {
        match plan {
            LogicalPlan::Join(join) if self.lookup_table(&join.right).is_none() => Some(join),
            _ => None,
        }
    }

    /// The non-equi part of the condition over the columns it uses, as
    /// DataFusion's physical planner builds it.
    pub(super) fn join_filter(&self, filter: &Expr, ls: &DFSchema, rs: &DFSchema) -> Result<JoinFilter> {
        let columns = filter.column_refs();
        let indices = |schema: &DFSchema| -> Vec<usize> {
            let mut v: Vec<usize> = columns.iter().filter_map(|c| schema.index_of_column(c).ok()).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (li, ri) = (indices(ls), indices(rs));
        let fields: Vec<_> = li
            .iter()
            .map(|i| ls.qualified_field(*i))
            .chain(ri.iter().map(|i| rs.qualified_field(*i)))
            .map(|(q, f)| (q.cloned(), Arc::clone(f)))
            .collect();
        let intermediate = DFSchema::new_with_metadata(fields, HashMap::new())?;
        let expression = self.physical(filter, &intermediate)?;
        let schema = Arc::new(Schema::new(intermediate.fields().clone()));
        Ok(JoinFilter::new(
            expression,
            JoinFilter::build_column_indices(li, ri),
            schema,
        ))
    }
}

/// Both sides hashed by their join keys; without keys, all rows in one
/// subtask.
fn distributions(
    lk: Vec<Arc<dyn datafusion::physical_plan::PhysicalExpr>>,
    rk: Vec<Arc<dyn datafusion::physical_plan::PhysicalExpr>>,
) -> (Distribution, Distribution) {
    match lk.is_empty() {
        true => (Distribution::Single, Distribution::Single),
        false => (Distribution::Hash(lk), Distribution::Hash(rk)),
    }
}

/// Keeps only the columns `keep` of `flow`'s rows (of `schema`), and a
/// changelog's kind column; returns the schema of what it keeps.
fn keep_columns(flow: &mut Flow, schema: &DFSchemaRef, keep: &[usize]) -> Result<DFSchemaRef> {
    if keep.len() == schema.fields().len() {
        return Ok(Arc::clone(schema));
    }
    let kept = kept_schema(schema, keep.iter().copied())?;
    match flow.props().changelog {
        true => {
            let width = schema.fields().len();
            let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(weir_engine::changelog::op_field());
            let keep: Vec<usize> = keep.iter().copied().chain([width]).collect();
            flow.push(select(&Schema::new(fields), &keep)?);
        }
        false => flow.push(select(schema.as_arrow(), keep)?),
    }
    let passthrough: Vec<Option<usize>> = keep.iter().map(|i| Some(*i)).collect();
    flow.props_mut().remap(&passthrough);
    Ok(kept)
}

/// The columns `keep` of `schema`, with their qualifiers.
fn kept_schema(schema: &DFSchema, keep: impl Iterator<Item = usize>) -> Result<DFSchemaRef> {
    let fields = keep
        .map(|i| {
            let (q, f) = schema.qualified_field(i);
            (q.cloned(), Arc::clone(f))
        })
        .collect();
    Ok(Arc::new(DFSchema::new_with_metadata(fields, HashMap::new())?))
}

/// The side all of `e`'s columns are on, if one.
fn side_of(e: &Expr, ls: &DFSchema, rs: &DFSchema) -> Option<Side> {
    let columns = e.column_refs();
    if columns.is_empty() {
        return None;
    }
    if columns.iter().all(|c| ls.has_column(c)) {
        Some(Side::Left)
    } else if columns.iter().all(|c| rs.has_column(c)) {
        Some(Side::Right)
    } else {
        None
    }
}

/// `l = r` with one side's columns on each side of `=`: an equi-join key,
/// left expression first.
pub(super) fn equi_pair(e: &Expr, ls: &DFSchema, rs: &DFSchema) -> Option<(Expr, Expr)> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = e
    else {
        return None;
    };
    match (side_of(left, ls, rs)?, side_of(right, ls, rs)?) {
        (Side::Left, Side::Right) => Some((left.as_ref().clone(), right.as_ref().clone())),
        (Side::Right, Side::Left) => Some((right.as_ref().clone(), left.as_ref().clone())),
        _ => None,
    }
}

/// Whether `e` is the column at `index` of `schema`.
fn is_column(e: &Expr, schema: &DFSchema, index: usize) -> bool {
    matches!(e, Expr::Column(c) if schema.index_of_column(c).ok() == Some(index))
}

/// With both sides windowed and `window_start` and `window_end` equal in
/// the condition: the window join's windows (those two pairs are taken out
/// of `on`, the windows match by construction).
fn window_pairs(
    on: &mut Vec<(Expr, Expr)>,
    left: Option<WindowColumns>,
    right: Option<WindowColumns>,
    ls: &DFSchema,
    rs: &DFSchema,
) -> Result<Option<(WindowColumns, WindowColumns)>> {
    let (Some(lw), Some(rw)) = (left, right) else {
        return Ok(None);
    };
    let find = |on: &[(Expr, Expr)], l: usize, r: usize| {
        on.iter().position(|(a, b)| is_column(a, ls, l) && is_column(b, rs, r))
    };
    let (Some(start), Some(end)) = (find(on, lw.start, rw.start), find(on, lw.end, rw.end)) else {
        return Ok(None);
    };
    if lw.spec.local_shift != 0 {
        return Err(SqlError::unsupported(
            "a window join of windows over a TIMESTAMP_LTZ rowtime in a time zone other than UTC",
            None,
        ));
    }
    if lw.spec != rw.spec {
        return Err(SqlError::plan(
            format!(
                "a window join needs the same windows on both sides: {} and {}",
                lw.spec, rw.spec
            ),
            None,
        ));
    }
    for i in [start.max(end), start.min(end)] {
        on.remove(i);
    }
    Ok(Some((lw, rw)))
}

/// `e` as a rowtime plus a constant: the side whose rowtime it is, and the
/// constant in milliseconds.
fn time_term(e: &Expr, ls: &DFSchema, rs: &DFSchema, lt: usize, rt: usize) -> Option<(Side, i64)> {
    match e {
        Expr::Column(_) if is_column(e, ls, lt) => Some((Side::Left, 0)),
        Expr::Column(_) if is_column(e, rs, rt) => Some((Side::Right, 0)),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: op @ (Operator::Plus | Operator::Minus),
            right,
        }) => {
            let (side, base) = time_term(left, ls, rs, lt, rt)?;
            let ms = literal_interval_ms(right)?;
            Some((side, if *op == Operator::Plus { base + ms } else { base - ms }))
        }
        Expr::Cast(c) => time_term(&c.expr, ls, rs, lt, rt),
        _ => None,
    }
}

/// The bounds `[lower, upper]` that the conjuncts put on `right time - left
/// time` (each `None` when unbounded that way). The conjuncts stay in the
/// join's filter: the bounds only say how long rows are kept.
fn time_bounds(conjuncts: &[Expr], ls: &DFSchema, rs: &DFSchema, lt: usize, rt: usize) -> (Option<i64>, Option<i64>) {
    let mut lower: Option<i64> = None;
    let mut upper: Option<i64> = None;
    let mut compare = |a: &Expr, op: Operator, b: &Expr| {
        let (Some((sa, oa)), Some((sb, ob))) = (time_term(a, ls, rs, lt, rt), time_term(b, ls, rs, lt, rt)) else {
            return;
        };
        // As `right - left  op  c`.
        let (op, c) = match (sa, sb) {
            (Side::Right, Side::Left) => (op, ob - oa),
            (Side::Left, Side::Right) => (op.swap().unwrap_or(op), oa - ob),
            _ => return,
        };
        match op {
            Operator::GtEq => lower = Some(lower.map_or(c, |l| l.max(c))),
            Operator::Gt => lower = Some(lower.map_or(c + 1, |l| l.max(c + 1))),
            Operator::LtEq => upper = Some(upper.map_or(c, |u| u.min(c))),
            Operator::Lt => upper = Some(upper.map_or(c - 1, |u| u.min(c - 1))),
            _ => {}
        }
    };
    for e in conjuncts {
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => compare(left, *op, right),
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                compare(expr, Operator::GtEq, low);
                compare(expr, Operator::LtEq, high);
            }
            _ => {}
        }
    }
    (lower, upper)
}
