//! The right side of a lateral UNNEST as operators over the left rows.
//!
//! Every operator's rows are some of the left (outer) columns — its
//! layout — followed by the columns of the logical node it computes. A
//! projection keeps the outer columns that are read above it and computes
//! its expressions after them; an `Unnest` expands its node's columns and
//! repeats the outer ones, so outer columns read only by the arguments (the
//! array itself) are dropped before it rather than repeated per element.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{FieldRef, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column as LColumn, DFSchema, DataFusionError, TableReference};
use datafusion::logical_expr::{Expr, LogicalPlan, Unnest};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::PhysicalExpr;
use weir_engine::operators::filter::FilterPlan;
use weir_engine::operators::project::ProjectPlan;
use weir_engine::operators::unnest::UnnestPlan;
use weir_engine::plan::OperatorPlan;

use super::{LEFT_ON_TRUE, StreamPlanner, is_true};
use crate::error::{Position, Result, SqlError};

/// Plans the nodes of one lateral UNNEST's right side.
pub(super) struct Expansion<'p, 'a> {
    planner: &'p StreamPlanner<'a>,
    /// The left columns the rows enter with.
    outer: &'p DFSchema,
    /// `LEFT JOIN … ON TRUE`: a row without elements stays, once.
    keep_empty: bool,
    at: Option<Position>,
}

/// The operators computing a node, and their rows: the outer columns
/// `layout` (positions in the outer schema), then the node's columns.
pub(super) struct Step {
    ops: Vec<OperatorPlan>,
    layout: Vec<usize>,
    schema: SchemaRef,
}

impl<'p, 'a> Expansion<'p, 'a> {
    /// The expansion of rows of `outer`; `keep_empty` for a LEFT JOIN,
    /// `at` the join, for errors.
    pub(super) fn new(
        planner: &'p StreamPlanner<'a>,
        outer: &'p DFSchema,
        keep_empty: bool,
        at: Option<Position>,
    ) -> Self {
        Self {
            planner,
            outer,
            keep_empty,
            at,
        }
    }

    /// `plan`, whose consumer reads the outer columns `above`.
    pub(super) fn of(&self, plan: &LogicalPlan, above: &BTreeSet<usize>) -> Result<Step> {
        match plan {
            LogicalPlan::EmptyRelation(_) => {
                let layout: Vec<usize> = (0..self.outer.fields().len()).collect();
                let schema = self.row(&layout, &[]);
                Ok(Step {
                    ops: Vec::new(),
                    layout,
                    schema,
                })
            }
            LogicalPlan::SubqueryAlias(a) => self.of(&a.input, above),
            LogicalPlan::Subquery(s) => self.of(&s.subquery, above),
            LogicalPlan::Projection(p) => {
                let mut needs = above.clone();
                needs.extend(self.outer_refs(p.expr.iter())?);
                let mut step = self.of(&p.input, &needs)?;
                let layout: Vec<usize> = above.iter().copied().collect();
                let mut exprs = self.pick(&step, &layout)?;
                for e in &p.expr {
                    exprs.push(self.physical(e, p.input.schema(), &step.layout)?);
                }
                let schema = self.row(&layout, p.schema.fields());
                // Projections that only pick columns fold into the one below.
                if let Some(below) = step.ops.last().and_then(|op| op.downcast::<ProjectPlan>())
                    && let Some(folded) = fold(&below.exprs, &exprs)
                {
                    exprs = folded?;
                    step.ops.pop();
                }
                step.ops.push(OperatorPlan::new(ProjectPlan {
                    exprs,
                    schema: Arc::clone(&schema),
                }));
                Ok(Step {
                    ops: step.ops,
                    layout,
                    schema,
                })
            }
            // What `ON TRUE` leaves after DataFusion pushed it down.
            LogicalPlan::Filter(f) if is_true(&f.predicate) => self.of(&f.input, above),
            LogicalPlan::Filter(f) => {
                // A row whose elements the filter all drops would have to
                // stay once.
                if self.keep_empty {
                    return Err(SqlError::plan(LEFT_ON_TRUE, self.at));
                }
                let mut needs = above.clone();
                needs.extend(self.outer_refs(std::iter::once(&f.predicate))?);
                let mut step = self.of(&f.input, &needs)?;
                let predicate = self.physical(&f.predicate, f.input.schema(), &step.layout)?;
                step.ops.push(OperatorPlan::new(FilterPlan { predicate }));
                Ok(step)
            }
            LogicalPlan::Unnest(u) => self.unnest(u, above),
            other => Err(SqlError::unsupported(
                format!(
                    "{} inside UNNEST",
                    other
                        .display()
                        .to_string()
                        .split(':')
                        .next()
                        .unwrap_or("this plan node")
                ),
                self.at,
            )),
        }
    }

    /// An `Unnest` node: its columns expanded, the outer ones repeated.
    fn unnest(&self, u: &Unnest, above: &BTreeSet<usize>) -> Result<Step> {
        let step = self.of(&u.input, above)?;
        let width = step.layout.len();
        let mut lists = Vec::new();
        for (i, how) in &u.list_type_columns {
            if how.depth != 1 {
                return Err(SqlError::unsupported(
                    format!(
                        "UNNEST of nested arrays into their innermost elements ({})",
                        how.output_column
                    ),
                    self.at,
                ));
            }
            lists.push(width + i);
        }
        let schema = self.row(&step.layout, u.schema.fields());
        let mut ops = step.ops;
        ops.push(OperatorPlan::new(UnnestPlan {
            lists,
            structs: u.struct_type_columns.iter().map(|i| width + i).collect(),
            keep_empty: self.keep_empty,
            input: step.schema,
            schema: Arc::clone(&schema),
        }));
        Ok(Step {
            ops,
            layout: step.layout,
            schema,
        })
    }

    /// The outer columns at `layout`, then `fields` (nullable when a row
    /// without elements is kept: they are NULL in it).
    fn row(&self, layout: &[usize], fields: &[FieldRef]) -> SchemaRef {
        let outer = layout.iter().map(|i| Arc::clone(self.outer.field(*i)));
        let inner = fields.iter().map(|f| match self.keep_empty {
            true => Arc::new(f.as_ref().clone().with_nullable(true)),
            false => Arc::clone(f),
        });
        Arc::new(Schema::new(outer.chain(inner).collect::<Vec<FieldRef>>()))
    }

    /// The outer columns `layout` of `step`'s rows.
    fn pick(&self, step: &Step, layout: &[usize]) -> Result<Vec<Arc<dyn PhysicalExpr>>> {
        layout
            .iter()
            .map(|c| {
                let at = step.place(*c)?;
                Ok(Arc::new(Column::new(self.outer.field(*c).name(), at)) as Arc<dyn PhysicalExpr>)
            })
            .collect()
    }

    /// Positions in the outer schema of the outer references in `exprs`.
    fn outer_refs<'e>(&self, exprs: impl Iterator<Item = &'e Expr>) -> Result<BTreeSet<usize>> {
        let mut read = BTreeSet::new();
        for e in exprs {
            for (_, c) in outer_columns(e)? {
                read.insert(self.outer.index_of_column(&c)?);
            }
        }
        Ok(read)
    }

    /// `e`, an expression over rows of `inner` that may read the outer row
    /// (outer references), over rows of the outer columns `layout` then
    /// `inner`'s.
    fn physical(&self, e: &Expr, inner: &DFSchema, layout: &[usize]) -> Result<Arc<dyn PhysicalExpr>> {
        // The outer columns `e` reads become columns after `inner`'s.
        let refs = outer_columns(e)?;
        let local = e
            .clone()
            .transform(|x| match x {
                Expr::OuterReferenceColumn(_, c) => Ok(Transformed::yes(Expr::Column(c))),
                other => Ok(Transformed::no(other)),
            })?
            .data;
        let mut fields: Vec<(Option<TableReference>, FieldRef)> =
            inner.iter().map(|(q, f)| (q.cloned(), Arc::clone(f))).collect();
        fields.extend(refs.iter().map(|(f, c)| (c.relation.clone(), Arc::clone(f))));
        let schema = DFSchema::new_with_metadata(fields, HashMap::new())?;
        let expr = self.planner.physical(&local, &schema)?;
        // Positions in the rows the operator sees.
        let mut places = Vec::with_capacity(refs.len());
        for (_, c) in &refs {
            let outer = self.outer.index_of_column(c)?;
            places.push(layout.iter().position(|l| *l == outer).ok_or_else(|| missing(c))?);
        }
        let (width, inner_len) = (layout.len(), inner.fields().len());
        let moved = expr.transform(|node| {
            let Some(c) = node.downcast_ref::<Column>() else {
                return Ok(Transformed::no(node));
            };
            let at = match c.index().checked_sub(inner_len) {
                None => width + c.index(),
                Some(k) => *places
                    .get(k)
                    .ok_or_else(|| DataFusionError::Plan(format!("UNNEST: no column {c}")))?,
            };
            Ok(Transformed::yes(
                Arc::new(Column::new(c.name(), at)) as Arc<dyn PhysicalExpr>
            ))
        })?;
        Ok(moved.data)
    }
}

impl Step {
    /// Where outer column `c` is in the step's rows.
    fn place(&self, c: usize) -> Result<usize> {
        self.layout
            .iter()
            .position(|l| *l == c)
            .ok_or_else(|| SqlError::plan(format!("UNNEST: outer column {c} was dropped before it is read"), None))
    }

    /// The step's operators, ending in rows of the outer columns `keep`
    /// then the node's, then outer column `last` (a changelog's kind), of
    /// `schema` (the join's names and nullability).
    pub(super) fn finish(self, keep: &[usize], last: Option<usize>, schema: SchemaRef) -> Result<Vec<OperatorPlan>> {
        let mut ops = self.ops;
        if last.is_none() && self.layout == keep && self.schema.fields() == schema.fields() {
            return Ok(ops);
        }
        let width = self.layout.len();
        let mut exprs = Vec::new();
        for (i, c) in keep.iter().enumerate() {
            let at = self.layout.iter().position(|l| l == c).ok_or_else(|| {
                SqlError::plan(
                    format!("UNNEST: outer column {} was dropped", schema.field(i).name()),
                    None,
                )
            })?;
            exprs.push(Arc::new(Column::new(schema.field(i).name(), at)) as Arc<dyn PhysicalExpr>);
        }
        for (j, f) in self.schema.fields().iter().skip(width).enumerate() {
            exprs.push(Arc::new(Column::new(f.name(), width + j)) as Arc<dyn PhysicalExpr>);
        }
        if let Some(c) = last {
            let at = self
                .layout
                .iter()
                .position(|l| *l == c)
                .ok_or_else(|| SqlError::plan("UNNEST: a changelog's kind column was dropped", None))?;
            exprs.push(Arc::new(Column::new(self.schema.field(at).name(), at)) as Arc<dyn PhysicalExpr>);
        }
        if let Some(below) = ops.last().and_then(|op| op.downcast::<ProjectPlan>())
            && let Some(folded) = fold(&below.exprs, &exprs)
        {
            exprs = folded?;
            ops.pop();
        }
        ops.push(OperatorPlan::new(ProjectPlan { exprs, schema }));
        Ok(ops)
    }
}

/// The outer references in `e`, each once, with their fields.
fn outer_columns(e: &Expr) -> Result<Vec<(FieldRef, LColumn)>> {
    let mut refs: Vec<(FieldRef, LColumn)> = Vec::new();
    e.apply(|x| {
        if let Expr::OuterReferenceColumn(field, c) = x
            && !refs.iter().any(|(_, seen)| seen == c)
        {
            refs.push((Arc::clone(field), c.clone()));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(refs)
}

/// An outer reference to a column the rows no longer carry (a planning bug).
fn missing(c: &LColumn) -> DataFusionError {
    DataFusionError::Plan(format!("UNNEST: outer column {c} is not in the rows that read it"))
}

/// `upper` over the results of `lower`, as one projection, when either
/// only picks columns: `None` when both compute.
fn fold(
    lower: &[Arc<dyn PhysicalExpr>],
    upper: &[Arc<dyn PhysicalExpr>],
) -> Option<Result<Vec<Arc<dyn PhysicalExpr>>>> {
    let picks = |exprs: &[Arc<dyn PhysicalExpr>]| exprs.iter().all(|e| e.downcast_ref::<Column>().is_some());
    if !picks(lower) && !picks(upper) {
        return None;
    }
    let folded = upper.iter().map(|e| {
        let moved = Arc::clone(e).transform(|node| {
            let Some(c) = node.downcast_ref::<Column>() else {
                return Ok(Transformed::no(node));
            };
            match lower.get(c.index()) {
                Some(below) => Ok(Transformed::yes(Arc::clone(below))),
                None => Err(DataFusionError::Plan(format!(
                    "UNNEST: column {c} is not computed below"
                ))),
            }
        })?;
        Ok(moved.data)
    });
    Some(
        folded
            .collect::<std::result::Result<Vec<_>, DataFusionError>>()
            .map_err(SqlError::from),
    )
}
