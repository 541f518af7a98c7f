//! `GROUPING SETS`, `ROLLUP` and `CUBE` in a GROUP BY without a window:
//! an Expand (`engine/src/operators/expand.rs`) sends each row once per
//! set with that set's keys (the others NULL) and its grouping id, and one
//! group aggregation keyed by all of them computes every set's groups — the
//! id keeps a set's groups apart from another's whose keys happen to be
//! NULL. The id is DataFusion's (`__grouping_id`: a bit per key, set when
//! the key is not in the set, above them the ordinal of a repeated set),
//! so `GROUPING(k)` reads it as DataFusion defines it.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{Aggregate, Expr, GroupingSet};
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_plan::PhysicalExpr;
use weir_engine::changelog::op_field;
use weir_engine::operators::expand::ExpandPlan;
use weir_engine::plan::OperatorPlan;

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
    /// Puts the Expand of `gs` over `flow` (rows of `input`).
    pub(super) fn expand_grouping_sets(
        &self,
        agg: &Aggregate,
        gs: &GroupingSet,
        input: &DFSchema,
        flow: &mut Flow,
    ) -> Result<Expanded> {
        let distinct = gs.distinct_expr();
        let sets = sets(gs);
        if sets.len() > MAX_SETS {
            return Err(SqlError::plan(format!("GROUP BY expands to {} grouping sets; at most {MAX_SETS}", sets.len()), None));
        }
        let n = distinct.len();
        // The aggregate's output: the keys, the grouping id, the aggregates.
        let key_fields: Vec<Field> =
            (0..=n).map(|i| Field::new(agg.schema.field(i).name(), agg.schema.field(i).data_type().clone(), true)).collect();
        let id_type = key_fields[n].data_type().clone();
        let width = input.fields().len();
        let changelog = flow.props().changelog;
        let mut projections = Vec::with_capacity(sets.len());
        for (s, set) in sets.iter().enumerate() {
            let mut exprs: Vec<Arc<dyn PhysicalExpr>> =
                (0..width).map(|i| Arc::new(Column::new(input.field(i).name(), i)) as Arc<dyn PhysicalExpr>).collect();
            let mut id = 0u64;
            for (i, e) in distinct.iter().enumerate() {
                let present = set.contains(e);
                id = (id << 1) | u64::from(!present);
                exprs.push(match present {
                    true => self.physical(e, input)?,
                    false => Arc::new(Literal::new(ScalarValue::try_from(key_fields[i].data_type())?)),
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
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(key_fields.iter().cloned());
        let row = fields.clone();
        if changelog {
            fields.push(op_field());
        }
        flow.push(OperatorPlan::new(ExpandPlan::new(projections, Arc::new(Schema::new(fields)))));
        let keys = (0..=n)
            .map(|i| Arc::new(Column::new(key_fields[i].name(), width + i)) as Arc<dyn PhysicalExpr>)
            .collect();
        Ok(Expanded { keys, key_fields, row })
    }
}
