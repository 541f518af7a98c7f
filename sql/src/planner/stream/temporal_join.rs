//! Event-time temporal joins: `JOIN rates FOR SYSTEM_TIME AS OF
//! o.order_time AS r ON …`, whose versioned table `planner/lookup.rs`
//! checked and marked (its [`TEMPORAL`] alias) so that DataFusion planned an
//! ordinary equi-join. Here that join becomes one two-input operator
//! (`engine/src/temporal_join/`): both sides spread by the join keys, the
//! left rows' columns and rowtime kept in the output, which appends.

use std::sync::Arc;

use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan};
use weir_engine::plan::{Distribution, NodeOp, OperatorPlan, Properties, StreamNode};
use weir_engine::temporal_join::TemporalJoinPlan;

use super::join::equi_pair;
use super::{Flow, StreamPlanner};
use crate::catalog::TableDef;
use crate::error::{Result, SqlError};
use crate::planner::lookup::TEMPORAL;
use crate::planner::table::normalize;

impl StreamPlanner<'_> {
    /// When `plan` is the versioned table of a temporal join: the table,
    /// and the left rowtime the join is AS OF.
    pub(super) fn versioned(&self, plan: &LogicalPlan) -> Option<(Arc<TableDef>, String)> {
        match plan {
            LogicalPlan::SubqueryAlias(a) => match a.alias.table().strip_prefix(TEMPORAL) {
                Some(column) => {
                    let LogicalPlan::TableScan(scan) = a.input.as_ref() else {
                        return None;
                    };
                    Some((
                        Arc::clone(self.catalog.get(scan.table_name.table())?),
                        column.to_string(),
                    ))
                }
                None => self.versioned(&a.input),
            },
            LogicalPlan::Projection(p) => self.versioned(&p.input),
            LogicalPlan::Filter(f) => self.versioned(&f.input),
            _ => None,
        }
    }

    /// Plans `join`, whose right side is the versioned table `table`, AS
    /// OF the left side's rowtime `column`.
    pub(super) fn temporal_join(
        &mut self,
        join: &Join,
        table: Arc<TableDef>,
        column: &str,
    ) -> Result<(Flow, DFSchemaRef)> {
        let at = self.join_position;
        let outer = match join.join_type {
            JoinType::Inner => false,
            JoinType::Left => true,
            other => {
                return Err(SqlError::Unsupported {
                    construct: format!("a {} temporal join", other.to_string().to_uppercase()),
                    detail: Some(
                        "as in Flink, an event-time temporal join is INNER or LEFT, with the versioned table on the right"
                            .into(),
                    ),
                    position: at,
                });
            }
        };
        let mut left = self.plan(&join.left)?;
        left.refuse_changelog("a temporal JOIN", at)?;
        self.materialize(&mut left)?;
        let mut right = self.plan(unwrapped(&join.right))?;
        self.materialize(&mut right)?;
        let (ls, rs) = (join.left.schema().as_ref(), join.right.schema().as_ref());
        let Some(left_time) = left.props().rowtime.filter(|t| ls.field(*t).name() == column) else {
            return Err(SqlError::plan(
                format!(
                    "FOR SYSTEM_TIME AS OF {column}: '{column}' is not the rowtime of the join's left side; an event-time temporal join is AS OF the left side's WATERMARK column, selected unchanged"
                ),
                at,
            ));
        };
        let Some(right_time) = right.props().rowtime else {
            return Err(SqlError::plan(
                format!(
                    "versioned table '{}' has lost its rowtime before the join: select its WATERMARK column unchanged",
                    table.name
                ),
                at,
            ));
        };
        let mut conjuncts: Vec<Expr> = join.on.iter().map(|(l, r)| l.clone().eq(r.clone())).collect();
        if let Some(f) = &join.filter {
            conjuncts.extend(split_conjunction(f).into_iter().cloned());
        }
        let mut on = Vec::new();
        for c in conjuncts {
            match equi_pair(&c, ls, rs) {
                Some(pair) => on.push(pair),
                None => {
                    return Err(SqlError::Unsupported {
                        construct: format!("the condition {c} in a temporal join's ON"),
                        detail: Some(format!(
                            "ON equates the primary key of '{}' with columns of the left side; filter the joined rows in WHERE",
                            table.name
                        )),
                        position: at,
                    });
                }
            }
        }
        check_primary_key(&table, &on, rs).map_err(|e| e.or_at(at))?;
        let left_keys = on
            .iter()
            .map(|(l, _)| self.physical(l, ls))
            .collect::<Result<Vec<_>>>()?;
        let right_keys = on
            .iter()
            .map(|(_, r)| self.physical(r, rs))
            .collect::<Result<Vec<_>>>()?;
        let plan = TemporalJoinPlan {
            outer,
            left_schema: Arc::new(ls.as_arrow().clone()),
            right_schema: Arc::new(rs.as_arrow().clone()),
            output_schema: Arc::new(join.schema.as_arrow().clone()),
            left_keys: left_keys.clone(),
            right_keys: right_keys.clone(),
            left_time,
            right_time,
            right_changelog: right.props().changelog,
            table: table.name.clone(),
        };
        // The left rows pass through whole, first: their rowtime and
        // windows keep their places. The output only appends.
        let properties = Properties {
            rowtime: Some(left_time),
            window: left.props().window,
            ..Properties::default()
        };
        let node = StreamNode::over(
            NodeOp::Operator(OperatorPlan::new(plan)),
            vec![
                (left.node, Distribution::Hash(left_keys)),
                (right.node, Distribution::Hash(right_keys)),
            ],
            properties,
        );
        Ok((Flow::new(node), Arc::clone(&join.schema)))
    }
}

/// `plan` without the aliases and the `SELECT *` the versioned table is
/// wrapped in (the same columns in the same order): no projection runs.
fn unwrapped(plan: &LogicalPlan) -> &LogicalPlan {
    match plan {
        LogicalPlan::SubqueryAlias(a) => unwrapped(&a.input),
        LogicalPlan::Projection(p)
            if p.expr.len() == p.input.schema().fields().len()
                && p.expr.iter().enumerate().all(
                    |(i, e)| matches!(e, Expr::Column(c) if p.input.schema().index_of_column(c).ok() == Some(i)),
                ) =>
        {
            unwrapped(&p.input)
        }
        _ => plan,
    }
}

/// The ON clause must equate every column of the versioned table's primary
/// key: a version is the row of one key.
fn check_primary_key(table: &TableDef, on: &[(Expr, Expr)], rs: &DFSchema) -> Result<()> {
    let key: Vec<String> = table
        .declared
        .as_ref()
        .map(|d| d.primary_key.iter().map(normalize).collect())
        .unwrap_or_default();
    let equated: Vec<&str> = on.iter().filter_map(|(_, r)| column_name(r, rs)).collect();
    if !key.is_empty() && key.iter().all(|k| equated.contains(&k.as_str())) {
        return Ok(());
    }
    let equations: Vec<String> = key.iter().map(|k| format!("… = {}.{k}", table.name)).collect();
    Err(SqlError::plan(
        format!(
            "a temporal join's ON must equate the whole primary key of versioned table '{}' (PRIMARY KEY ({})) with columns of the left side: ON {}",
            table.name,
            key.join(", "),
            equations.join(" AND ")
        ),
        None,
    ))
}

/// The name of the versioned table's column `e` is (under any casts).
fn column_name<'a>(e: &Expr, rs: &'a DFSchema) -> Option<&'a str> {
    match e {
        Expr::Column(c) => rs.index_of_column(c).ok().map(|i| rs.field(i).name().as_str()),
        Expr::Cast(c) => column_name(&c.expr, rs),
        Expr::TryCast(c) => column_name(&c.expr, rs),
        _ => None,
    }
}
