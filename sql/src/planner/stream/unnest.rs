//! Lateral UNNEST: `FROM t CROSS JOIN UNNEST(t.arr) AS u(x)` (and
//! `FROM t, UNNEST(…)`, `LEFT JOIN UNNEST(…) ON TRUE`).
//!
//! DataFusion plans it as a join whose right side expands one row of the
//! left: projections, filters and `Unnest` nodes over the one-row empty
//! relation, reading the left row through outer references (`relation.rs`
//! builds that side for Flink's forms of UNNEST). Nothing is joined on a
//! stream: each node of the right side becomes a stateless operator over
//! the left rows, which carry the left columns first and the right side's
//! columns after them. A projection computes its expressions beside the
//! left columns; an `Unnest` expands them, repeating the left columns. The
//! left columns keep their places, so the rowtime and window columns pass
//! through and a window TVF or a window aggregation can follow.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, FieldRef, Schema};
use datafusion::common::{DFSchema, DFSchemaRef, ScalarValue, TableReference};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan};
use weir_engine::operators::filter::FilterPlan;
use weir_engine::plan::OperatorPlan;

use super::{Flow, StreamPlanner};
use crate::error::{Result, SqlError};
use expansion::Expansion;

mod expansion;
mod relation;

pub use relation::{UnnestRelations, register};

/// Why a LEFT JOIN UNNEST with a condition is refused: a row whose elements
/// the condition all rejects would need to be kept once with NULLs.
const LEFT_ON_TRUE: &str = "LEFT JOIN UNNEST(…) takes ON TRUE only: filter the expanded rows with WHERE";

/// `plan` as a lateral UNNEST: a join whose right side expands one row.
pub(super) fn lateral(plan: &LogicalPlan) -> Option<&Join> {
    match plan {
        LogicalPlan::Join(join) if expands_one_row(&join.right) => Some(join),
        _ => None,
    }
}

/// Whether `plan` is projections, filters and at least one `Unnest` over
/// the one-row empty relation.
fn expands_one_row(plan: &LogicalPlan) -> bool {
    fn walk(plan: &LogicalPlan, unnests: &mut usize) -> bool {
        match plan {
            LogicalPlan::EmptyRelation(e) => e.produce_one_row && e.schema.fields().is_empty(),
            LogicalPlan::SubqueryAlias(a) => walk(&a.input, unnests),
            LogicalPlan::Subquery(s) => walk(&s.subquery, unnests),
            LogicalPlan::Projection(p) => walk(&p.input, unnests),
            LogicalPlan::Filter(f) => walk(&f.input, unnests),
            LogicalPlan::Unnest(u) => {
                *unnests += 1;
                walk(&u.input, unnests)
            }
            _ => false,
        }
    }
    let mut unnests = 0;
    walk(plan, &mut unnests) && unnests > 0
}

impl StreamPlanner<'_> {
    /// Plans the lateral UNNEST `join` (see [`lateral`]) as operators over
    /// its left side's rows. With `needed`, its consumer reads only those
    /// columns of the join's output: the left columns it does not read are
    /// dropped before the expansion repeats them, and the returned schema
    /// is of the columns kept.
    pub(super) fn unnest_join(&mut self, join: &Join, needed: Option<&BTreeSet<usize>>) -> Result<(Flow, DFSchemaRef)> {
        let at = self.join_position;
        let keep_empty = match join.join_type {
            JoinType::Inner => false,
            JoinType::Left if join.on.is_empty() && join.filter.as_ref().is_none_or(is_true) => true,
            JoinType::Left => return Err(SqlError::plan(LEFT_ON_TRUE, at)),
            other => {
                return Err(SqlError::unsupported(
                    format!(
                        "{other} JOIN UNNEST(…) (UNNEST expands rows with CROSS JOIN, a comma, or LEFT JOIN … ON TRUE)"
                    ),
                    at,
                ));
            }
        };
        let mut flow = self.plan(&join.left)?;
        self.materialize(&mut flow)?;
        // Over a changelog each change expands into as many changes of its
        // kind (a retraction withdraws every row its row expanded into):
        // the kind column rides through as one more outer column and ends
        // up last again.
        let changelog = flow.props().changelog;
        let mut conjuncts: Vec<Expr> = join.on.iter().map(|(l, r)| l.clone().eq(r.clone())).collect();
        conjuncts.extend(join.filter.clone().filter(|f| !is_true(f)));
        let left = join.left.schema();
        let width = left.fields().len();
        // The left columns the output keeps: those read above it, and by
        // the join's condition.
        let keep: BTreeSet<usize> = match needed {
            None => (0..width).collect(),
            Some(needed) => {
                let mut keep: BTreeSet<usize> = needed.iter().copied().filter(|i| *i < width).collect();
                for c in conjuncts.iter().flat_map(|e| e.column_refs()) {
                    keep.extend(left.index_of_column(c).ok());
                }
                keep
            }
        };
        // The expansion's first projection drops the others, before its
        // `Unnest` would repeat them for every element.
        let with_kind;
        let (outer, kind) = match changelog {
            true => {
                let mut fields: Vec<(Option<TableReference>, FieldRef)> =
                    left.iter().map(|(q, f)| (q.cloned(), Arc::clone(f))).collect();
                fields.push((None, Arc::new(weir_engine::changelog::op_field())));
                with_kind = DFSchema::new_with_metadata(fields, HashMap::new())?;
                (&with_kind, Some(width))
            }
            false => (left.as_ref(), None),
        };
        let expansion = Expansion::new(self, outer, keep_empty, at);
        let kept: Vec<usize> = keep.iter().copied().collect();
        let step = expansion.of(&join.right, &keep.iter().copied().chain(kind).collect())?;
        // The join's own names and nullability (a LEFT join's right side
        // may be NULL), for the columns kept.
        let output = kept_schema(
            &join.schema,
            keep.iter().copied().chain(width..join.schema.fields().len()),
        )?;
        let mut rows = output.as_arrow().clone();
        if changelog {
            let mut fields: Vec<Field> = rows.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(weir_engine::changelog::op_field());
            rows = Schema::new(fields);
        }
        for op in step.finish(&kept, kind, Arc::new(rows))? {
            flow.push(op);
        }
        let right = join.schema.fields().len() - width;
        let passthrough: Vec<Option<usize>> = keep
            .iter()
            .map(|p| Some(*p))
            .chain(std::iter::repeat_n(None, right))
            .collect();
        flow.props_mut().remap(&passthrough);
        // A row of the left side is several rows now: its key no longer
        // tells them apart.
        flow.props_mut().unique_key = None;
        if let Some(predicate) = conjunction(conjuncts) {
            let predicate = self.physical(&predicate, &output)?;
            flow.push(OperatorPlan::new(FilterPlan { predicate }));
        }
        Ok((flow, output))
    }
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

/// `e` is the literal TRUE.
pub(super) fn is_true(e: &Expr) -> bool {
    matches!(e, Expr::Literal(ScalarValue::Boolean(Some(true)), _))
}
