//! `INTERSECT` and `EXCEPT` of streams, as Flink runs them: an updating
//! result. `l INTERSECT r` is rewritten into a group aggregation over the
//! `UNION ALL` of both sides, each row tagged with its side, keeping the
//! groups seen on both (`EXCEPT`: on the left only):
//!
//! ```sql
//! SELECT c0 AS k, … FROM (SELECT *, 1, 0 FROM (l) AS `$l`(c0, …)
//!                         UNION ALL SELECT *, 0, 1 FROM (r) AS `$r`(c0, …))
//! GROUP BY c0, … HAVING sum(`$left`) > 0 AND sum(`$right`) > 0
//! ```
//!
//! A row of the right side arriving later withdraws an `EXCEPT` group (the
//! aggregation's `HAVING` retracts it), and GROUP BY treats NULLs as equal,
//! as set operations do. The column names are the left side's, read from
//! DataFusion's plan of it.
//!
//! `INTERSECT ALL` keeps each row as many times as the fewer of its sides
//! has it, `EXCEPT ALL` as many times as the left side has it more than the
//! right: the same aggregation computes that count, and an UNNEST of that
//! many elements repeats the row. Over the aggregation's changelog, a
//! count that changes withdraws the row's old copies and adds the new.

use datafusion::execution::SessionState;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Ident, Query, SetExpr, SetOperator, SetQuantifier, Statement, With};

use crate::error::{Result, SqlError};
use crate::script::parse_script;
use crate::statement::WeirStatement;

/// Rewrites every INTERSECT and EXCEPT in `query`'s body (its relations
/// must already be known to `state`).
pub async fn rewrite(query: &mut Query, state: &SessionState) -> Result<()> {
    let with = query.with.clone();
    Box::pin(rewrite_set_expr(&mut query.body, &with, state)).await
}

async fn rewrite_set_expr(body: &mut SetExpr, with: &Option<With>, state: &SessionState) -> Result<()> {
    match body {
        SetExpr::Query(q) => Box::pin(rewrite(q, state)).await,
        SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            right,
        } => {
            Box::pin(rewrite_set_expr(left, with, state)).await?;
            Box::pin(rewrite_set_expr(right, with, state)).await?;
            let (keep, copies) = match (&*op, &*set_quantifier) {
                (SetOperator::Intersect, SetQuantifier::None | SetQuantifier::Distinct) => ("> 0", None),
                (SetOperator::Except, SetQuantifier::None | SetQuantifier::Distinct) => ("= 0", None),
                (SetOperator::Intersect, SetQuantifier::All) => ("> 0", Some("LEAST(sum(`$left`), sum(`$right`))")),
                (SetOperator::Except, SetQuantifier::All) => ("< sum(`$left`)", Some("sum(`$left`) - sum(`$right`)")),
                _ => return Ok(()),
            };
            let names = column_names(left, with, state).await?;
            let cols: Vec<String> = (0..names.len()).map(|i| format!("`$c{i}`")).collect();
            let cols = cols.join(", ");
            let outs: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("`$c{i}` AS {}", Ident::with_quote('`', n.replace('`', "``"))))
                .collect();
            let sides = format!(
                "SELECT *, 1 AS `$left`, 0 AS `$right` FROM ({left}) AS `$l`({cols}) \
                 UNION ALL SELECT *, 0 AS `$left`, 1 AS `$right` FROM ({right}) AS `$r`({cols})"
            );
            let having = format!("sum(`$left`) > 0 AND sum(`$right`) {keep}");
            let outs = outs.join(", ");
            let sql = match copies {
                None => format!("SELECT {outs} FROM ({sides}) AS `$sides` GROUP BY {cols} HAVING {having}"),
                // Each row as many times as it is in the answer: a change of
                // its count withdraws the old copies and adds the new ones.
                Some(copies) => format!(
                    "SELECT {outs} FROM (SELECT {cols}, {copies} AS `$copies` FROM ({sides}) AS `$sides` \
                     GROUP BY {cols} HAVING {having}) AS `$counted` \
                     CROSS JOIN UNNEST(array_repeat(0, CAST(`$copies` AS BIGINT))) AS `$copy`(`$n`)"
                ),
            };
            let mut parsed = parse_script(&sql)?;
            let Some(WeirStatement::Query { query, .. }) = parsed.pop().map(|s| s.statement) else {
                return Err(SqlError::plan(format!("{op} could not be rewritten"), None));
            };
            *body = SetExpr::Query(query);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The names of the columns `side` produces (in a query `WITH` those
/// common tables).
async fn column_names(side: &SetExpr, with: &Option<With>, state: &SessionState) -> Result<Vec<String>> {
    let query = Query {
        with: with.clone(),
        body: Box::new(side.clone()),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: vec![],
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: vec![],
    };
    let plan = state
        .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(Box::new(query)))))
        .await?;
    Ok(plan.schema().fields().iter().map(|f| f.name().clone()).collect())
}
