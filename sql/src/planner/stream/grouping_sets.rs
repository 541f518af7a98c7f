//! `GROUPING SETS`, `ROLLUP` and `CUBE` in a GROUP BY without a window:
//! an Expand (`engine/src/operators/expand.rs`) sends each row once per
//! set with that set's keys (the others NULL) and its grouping id, and one
//! group aggregation keyed by all of them computes every set's groups — the
//! id keeps a set's groups apart from another's whose keys happen to be
//! NULL. The id is DataFusion's (`__grouping_id`: a bit per key, set when
//! the key is not in the set, above them the ordinal of a repeated set),
//! so `GROUPING(k)` reads it as DataFusion defines it.
//!
//! In a window aggregation (`GROUP BY window_start, window_end, GROUPING
//! SETS ((k), ())`, which DataFusion folds into one set list with the
//! window columns in every set) the Expand runs before the windows are
//! assigned: it passes the rows' own columns (the rowtime among them)
//! through, and the window columns, which every set must group by, come
//! from the window aggregation as usual.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{Aggregate, Expr, GroupingSet};
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_plan::PhysicalExpr;
use weir_engine::changelog::op_field;
use weir_engine::operators::expand::ExpandPlan;
use weir_engine::plan::OperatorPlan;
use weir_engine::window::aggregate::OutputColumn;

use super::group_aggregate::op_passthrough;
use super::{Flow, StreamPlanner};
use crate::error::{Result, SqlError};

/// Most grouping sets one GROUP BY may expand to: each multiplies the rows.
const MAX_SETS: usize = 64;

/// The rows after the Expand: the input's columns, then each key, then the
/// grouping id; what the aggregation groups by.
pub(super) struct Expanded {
    pub(super) keys: Vec<Arc<dyn PhysicalExpr>>,
    pub(super) key_fields: Vec<Field>,
    pub(super) row: Vec<Field>,
    /// Where each group column of the aggregate's output comes from.
    pub(super) layout: Vec<OutputColumn>,
}

/// The sets of `gs`, each as the expressions it groups by.
fn sets(gs: &GroupingSet) -> Vec<Vec<Expr>> {
    match gs {
        GroupingSet::GroupingSets(sets) => sets.clone(),
        GroupingSet::Rollup(exprs) => (0..=exprs.len()).rev().map(|n| exprs[..n].to_vec()).collect(),
        GroupingSet::Cube(exprs) => (0..1u64 << exprs.len())
            .rev()
            .map(|mask| exprs.iter().enumerate().filter(|(i, _)| mask >> i & 1 == 1).map(|(_, e)| e.clone()).collect())
            .collect(),
    }
}

impl StreamPlanner<'_> {
    /// Puts the Expand of `gs` over `flow` (rows of `input`). With a
    /// window pending, `window` is where its columns start in `input`: the
    /// rows have only the columns before.
    pub(super) fn expand_grouping_sets(
        &self,
        agg: &Aggregate,
        gs: &GroupingSet,
        input: &DFSchema,
        window: Option<usize>,
        flow: &mut Flow,
    ) -> Result<Expanded> {
        let distinct = gs.distinct_expr();
        let sets = sets(gs);
        if sets.len() > MAX_SETS {
            return Err(SqlError::plan(format!("GROUP BY expands to {} grouping sets; at most {MAX_SETS}", sets.len()), None));
        }
        let n = distinct.len();
        let width = window.unwrap_or(input.fields().len());
        // Which distinct expression is which window column.
        let window_column = |e: &Expr| match (e, window) {
            (Expr::Column(c), Some(base)) => input.index_of_column(c).ok().filter(|i| *i >= base).map(|i| i - base),
            _ => None,
        };
        let mut layout = Vec::with_capacity(n + 1);
        let mut key_fields = Vec::new();
        for (i, e) in distinct.iter().enumerate() {
            let field = agg.schema.field(i);
            match window_column(e) {
                Some(w) => {
                    if sets.iter().any(|set| !set.contains(e)) {
                        return Err(SqlError::plan(
                            format!("every grouping set of a window aggregation must group by {e}"),
                            None,
                        ));
                    }
                    layout.push(match w {
                        0 => OutputColumn::WindowStart,
                        1 => OutputColumn::WindowEnd,
                        _ => OutputColumn::WindowTime,
                    });
                }
                None => {
                    layout.push(OutputColumn::Key(key_fields.len()));
                    key_fields.push(Field::new(field.name(), field.data_type().clone(), true));
                }
            }
        }
        // The grouping id, the last key.
        layout.push(OutputColumn::Key(key_fields.len()));
        key_fields.push(Field::new(agg.schema.field(n).name(), agg.schema.field(n).data_type().clone(), true));
        let id_type = agg.schema.field(n).data_type().clone();
        let changelog = flow.props().changelog;
        let mut projections = Vec::with_capacity(sets.len());
        for (s, set) in sets.iter().enumerate() {
            let mut exprs: Vec<Arc<dyn PhysicalExpr>> =
                (0..width).map(|i| Arc::new(Column::new(input.field(i).name(), i)) as Arc<dyn PhysicalExpr>).collect();
            let mut id = 0u64;
            for (i, e) in distinct.iter().enumerate() {
                let present = set.contains(e);
                id = (id << 1) | u64::from(!present);
                if window_column(e).is_some() {
                    continue;
                }
                exprs.push(match present {
                    true => self.physical(e, input)?,
                    false => Arc::new(Literal::new(ScalarValue::try_from(agg.schema.field(i).data_type())?)),
                });
            }
            let ordinal = sets[..s].iter().filter(|earlier| *earlier == set).count() as u64;
            let id = ScalarValue::UInt64(Some(id | ordinal << n)).cast_to(&id_type)?;
            exprs.push(Arc::new(Literal::new(id)));
            if changelog {
                exprs.push(op_passthrough(width));
            }
            projections.push(exprs);
        }
        let mut fields: Vec<Field> = input.fields().iter().take(width).map(|f| f.as_ref().clone()).collect();
        fields.extend(key_fields.iter().cloned());
        let row = fields.clone();
        if changelog {
            fields.push(op_field());
        }
        flow.push(OperatorPlan::new(ExpandPlan::new(projections, Arc::new(Schema::new(fields)))));
        let keys = key_fields
            .iter()
            .enumerate()
            .map(|(i, f)| Arc::new(Column::new(f.name(), width + i)) as Arc<dyn PhysicalExpr>)
            .collect();
        Ok(Expanded { keys, key_fields, row, layout })
    }
}
