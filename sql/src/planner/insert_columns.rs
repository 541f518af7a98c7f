//! `INSERT INTO t (c, a) SELECT …`: the query's columns go to the listed
//! columns of `t`, in the list's order, and every other column of `t` is
//! NULL, as in Flink. Written as the query of every column in the table's
//! order, which the INSERT planner takes as it takes any query:
//!
//! ```sql
//! SELECT `$c1` AS a, NULL AS b, `$c0` AS c FROM (<query>) AS `$insert`(`$c0`, `$c1`)
//! ```

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::Schema;
use datafusion::sql::sqlparser::ast::{Ident, Query, SelectItem, SetExpr, TableFactor};

use crate::error::{Position, Result, SqlError};
use crate::planner::table::normalize;
use crate::script::parse_script;
use crate::statement::{WeirStatement, position_of};

/// `query`, written to the columns `listed` of a table whose written
/// columns are `physical`, as a query of all of them in order.
pub fn fill(table: &str, physical: &Schema, listed: &[Ident], query: Query) -> Result<Query> {
    let mut places: BTreeMap<String, usize> = BTreeMap::new();
    for (i, column) in listed.iter().enumerate() {
        let name = normalize(column);
        if physical.index_of(&name).is_err() {
            let columns: Vec<&str> = physical.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(SqlError::plan(
                format!(
                    "INSERT INTO {table}: no column '{name}' (its columns: {})",
                    columns.join(", ")
                ),
                Position::of(column.span),
            ));
        }
        if places.insert(name.clone(), i).is_some() {
            return Err(SqlError::plan(
                format!("INSERT INTO {table}: column '{name}' is listed twice"),
                Position::of(column.span),
            ));
        }
    }
    if let Some(width) = width(&query.body)
        && width != listed.len()
    {
        let names: Vec<String> = listed.iter().map(normalize).collect();
        return Err(SqlError::plan(
            format!(
                "INSERT INTO {table}: the query produces {width} columns but {} are listed ({})",
                listed.len(),
                names.join(", ")
            ),
            position_of(&query),
        ));
    }
    let items: Vec<String> = physical
        .fields()
        .iter()
        .map(|f| {
            let target = Ident::with_quote('`', f.name().replace('`', "``"));
            match places.get(f.name()) {
                Some(i) => format!("`$c{i}` AS {target}"),
                None => format!("NULL AS {target}"),
            }
        })
        .collect();
    let inputs: Vec<String> = (0..listed.len()).map(|i| format!("`$c{i}`")).collect();
    // The template's subquery is replaced by `query` itself, which keeps
    // its positions for errors.
    let template = format!(
        "SELECT {} FROM (SELECT 1) AS `$insert`({})",
        items.join(", "),
        inputs.join(", ")
    );
    let mut filled = match parse_script(&template)?.pop().map(|s| s.statement) {
        Some(WeirStatement::Query { query, .. }) => *query,
        _ => {
            return Err(SqlError::plan(
                format!("INSERT INTO {table}: cannot place the column list"),
                None,
            ));
        }
    };
    let SetExpr::Select(select) = filled.body.as_mut() else {
        return Err(SqlError::plan(
            format!("INSERT INTO {table}: cannot place the column list"),
            None,
        ));
    };
    match select.from.first_mut().map(|f| &mut f.relation) {
        Some(TableFactor::Derived { subquery, .. }) => **subquery = query,
        _ => {
            return Err(SqlError::plan(
                format!("INSERT INTO {table}: cannot place the column list"),
                None,
            ));
        }
    }
    Ok(filled)
}

/// How many columns `body` produces, when the text tells (no `*`).
fn width(body: &SetExpr) -> Option<usize> {
    match body {
        SetExpr::Select(select) => select
            .projection
            .iter()
            .all(|item| matches!(item, SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }))
            .then_some(select.projection.len()),
        SetExpr::Values(values) => values.rows.first().map(|row| row.content.len()),
        SetExpr::Query(query) => width(&query.body),
        SetExpr::SetOperation { left, .. } => width(left),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field};

    fn query(sql: &str) -> Query {
        match parse_script(sql).ok().and_then(|mut s| s.pop()).map(|s| s.statement) {
            Some(WeirStatement::Query { query, .. }) => *query,
            _ => panic!("not a query: {sql}"),
        }
    }

    fn table() -> Schema {
        Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Int64, true),
        ])
    }

    #[test]
    fn listed_columns_take_the_query_in_order_and_the_rest_are_null() {
        let filled = fill(
            "t",
            &table(),
            &[Ident::new("c"), Ident::new("a")],
            query("SELECT x, y FROM s"),
        )
        .unwrap();
        assert_eq!(
            filled.to_string(),
            "SELECT `$c1` AS `a`, NULL AS `b`, `$c0` AS `c` FROM (SELECT x, y FROM s) AS `$insert` (`$c0`, `$c1`)"
        );
    }

    #[test]
    fn unknown_and_repeated_columns_are_named() {
        let e = fill("t", &table(), &[Ident::new("z")], query("SELECT 1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("INSERT INTO t: no column 'z' (its columns: a, b, c)"), "{e}");
        let e = fill("t", &table(), &[Ident::new("a"), Ident::new("a")], query("SELECT 1, 2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("column 'a' is listed twice"), "{e}");
        let e = fill("t", &table(), &[Ident::new("a"), Ident::new("b")], query("SELECT 1"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the query produces 1 columns but 2 are listed (a, b)"),
            "{e}"
        );
    }
}
