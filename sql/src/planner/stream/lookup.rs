//! Lookup joins: a join whose right side is a table that rows are looked
//! up in (a `postgres` table, or a `filesystem` table under its lookup
//! twin's name, named with `FOR SYSTEM_TIME AS OF`; see
//! `planner/lookup.rs` for the rewrite that lets DataFusion plan it).
//! It becomes one operator chained after the stream side, with the
//! logical join's output: no second input, no exchange.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan};
use weir_engine::join::JoinSpec;
use weir_engine::lookup::LookupJoinPlan;
use weir_engine::plan::OperatorPlan;

use super::join::equi_pair;
use super::{Flow, StreamPlanner};
use crate::catalog::TableDef;
use crate::error::{Result, SqlError};

/// The row-number column the operator appends to the stream's rows to put
/// the join's output back in input order.
const ROW_NUMBER: &str = "__weir_lookup_row";

impl StreamPlanner<'_> {
    /// The lookup table `plan` scans, if it is one.
    pub(super) fn lookup_table(&self, plan: &LogicalPlan) -> Option<Arc<TableDef>> {
        match plan {
            LogicalPlan::SubqueryAlias(a) => self.lookup_table(&a.input),
            LogicalPlan::TableScan(scan) => {
                let name = scan.table_name.table();
                if let Some(base) = name.strip_prefix(crate::planner::lookup::LOOKUP_TWIN) {
                    return self.catalog.get(base).filter(|t| t.connector.lookup.is_some()).cloned();
                }
                let table = self.catalog.get(name)?;
                (table.connector.lookup.is_some() && table.connector.source.is_none()).then(|| Arc::clone(table))
            }
            _ => None,
        }
    }

    /// Plans `join`, whose right side is the lookup table `table`.
    pub(super) fn lookup_join(&mut self, join: &Join, table: Arc<TableDef>) -> Result<Flow> {
        let at = self.join_position;
        let source = table.connector.lookup.clone().ok_or_else(|| SqlError::plan(format!("table '{}' is not a lookup table", table.name), at))?;
        if !matches!(join.join_type, JoinType::Inner | JoinType::Left) {
            return Err(SqlError::unsupported(
                format!("{} lookup joins (lookup joins are INNER or LEFT, with the lookup table on the right)", join.join_type),
                at,
            ));
        }
        let mut flow = self.plan(&join.left)?;
        flow.refuse_changelog("a lookup JOIN", self.join_position)?;
        self.materialize(&mut flow)?;
        let (ls, rs) = (join.left.schema().as_ref(), join.right.schema().as_ref());
        if rs.fields().len() != source.schema().fields().len() {
            return Err(SqlError::plan(
                format!("lookup table '{}' cannot have computed columns", table.name),
                at,
            ));
        }
        let mut conjuncts: Vec<Expr> = join.on.iter().map(|(l, r)| l.clone().eq(r.clone())).collect();
        if let Some(f) = &join.filter {
            conjuncts.extend(split_conjunction(f).into_iter().cloned());
        }
        // Equalities of a table column with an expression of the stream are
        // the lookup's key; the rest of ON filters the looked-up rows.
        let mut on = Vec::new();
        let mut key_columns = Vec::new();
        let mut rest = Vec::new();
        for c in conjuncts {
            match equi_pair(&c, ls, rs).and_then(|(l, r)| Some((l, r.clone(), table_column(&r, rs)?))) {
                Some((l, r, column)) => {
                    on.push((l, r));
                    key_columns.push(column);
                }
                None => rest.push(c),
            }
        }
        if on.is_empty() {
            return Err(SqlError::plan(
                format!(
                    "a lookup join needs ON to equate columns of '{}' with expressions of the stream (e.g. ON s.user_id = {}.id): the table is looked up by those columns",
                    table.name, table.name
                ),
                at,
            ));
        }
        let keys = on.iter().map(|(l, _)| self.physical(l, ls)).collect::<Result<Vec<_>>>()?;
        let physical_on = on
            .iter()
            .map(|(l, r)| Ok((self.physical(l, ls)?, self.physical(r, rs)?)))
            .collect::<Result<Vec<_>>>()?;
        let filter = conjunction(rest).map(|f| self.join_filter(&f, ls, rs)).transpose()?;
        let number = Arc::new(Field::new(ROW_NUMBER, DataType::UInt32, false));
        let mut left = ls.as_arrow().fields().to_vec();
        left.push(Arc::clone(&number));
        let out = join.schema.as_arrow().fields();
        let mut output = out[..ls.fields().len()].to_vec();
        output.push(number);
        output.extend(out[ls.fields().len()..].iter().cloned());
        let spec = JoinSpec {
            join_type: join.join_type,
            left_schema: Arc::new(Schema::new(left)),
            right_schema: source.schema(),
            on: physical_on,
            filter,
            output_schema: Arc::new(Schema::new(output)),
        };
        flow.push(OperatorPlan::new(LookupJoinPlan {
            spec,
            keys,
            key_columns,
            source,
            table: table.name.clone(),
        }));
        // A stream row may meet several rows of the table: whatever
        // identified an output row before does no longer. The stream's
        // columns keep their places, so its rowtime and windows stay.
        flow.props_mut().unique_key = None;
        Ok(flow)
    }
}

/// The table column `e` is (under any casts DataFusion added to compare it
/// with the stream's type).
fn table_column(e: &Expr, rs: &datafusion::common::DFSchema) -> Option<usize> {
    match e {
        Expr::Column(c) => rs.index_of_column(c).ok(),
        Expr::Cast(c) => table_column(&c.expr, rs),
        Expr::TryCast(c) => table_column(&c.expr, rs),
        _ => None,
    }
}
