//! `INSERT INTO t (c, a) SELECT …` and `INSERT INTO t PARTITION (dt =
//! '…') SELECT …`: the query's columns go to the listed columns of `t` (by
//! default, those the PARTITION clause does not give), in order; the
//! PARTITION clause's columns take its values; every other column of `t` is
//! NULL, as in Flink. Written as the query of every column in the table's
//! order, which the INSERT planner takes as it takes any query:
//!
//! ```sql
//! SELECT `$c1` AS a, NULL AS b, `$c0` AS c, '2019-08-30' AS dt FROM (<query>) AS `$insert`(`$c0`, `$c1`)
//! ```

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::Schema;
use datafusion::sql::sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr, TableFactor};

use crate::error::{Position, Result, SqlError};
use crate::planner::table::normalize;
use crate::script::parse_script;
use crate::statement::{WeirStatement, position_of};

/// What an INSERT says about its table's columns.
pub struct Given<'a> {
    /// The column list (empty: every column the PARTITION clause does not
    /// give, in the table's order).
    pub listed: &'a [Ident],
    /// `PARTITION (col = value, …)`.
    pub fixed: &'a [(Ident, Expr)],
}

/// `query`, written to the columns `given` of a table whose written
/// columns are `physical`, as a query of all of them in order.
pub fn fill(table: &str, physical: &Schema, given: &Given, query: Query) -> Result<Query> {
    let known = |column: &Ident| -> Result<String> {
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
        Ok(name)
    };
    let mut fixed: BTreeMap<String, &Expr> = BTreeMap::new();
    for (column, value) in given.fixed {
        if fixed.insert(known(column)?, value).is_some() {
            return Err(SqlError::plan(
                format!(
                    "INSERT INTO {table}: PARTITION gives column '{}' twice",
                    normalize(column)
                ),
                Position::of(column.span),
            ));
        }
    }
    let listed: Vec<Ident> = match given.listed.is_empty() {
        true => physical
            .fields()
            .iter()
            .filter(|f| !fixed.contains_key(f.name()))
            .map(|f| Ident::new(f.name()))
            .collect(),
        false => given.listed.to_vec(),
    };
    let mut places: BTreeMap<String, usize> = BTreeMap::new();
    for (i, column) in listed.iter().enumerate() {
        let name = known(column)?;
        if fixed.contains_key(&name) {
            return Err(SqlError::plan(
                format!("INSERT INTO {table}: column '{name}' is both listed and given by PARTITION"),
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
            match (places.get(f.name()), fixed.get(f.name())) {
                (Some(i), _) => format!("`$c{i}` AS {target}"),
                (None, Some(value)) => format!("{value} AS {target}"),
                (None, None) => format!("NULL AS {target}"),
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

    fn listed(columns: &[Ident]) -> Given<'_> {
        Given {
            listed: columns,
            fixed: &[],
        }
    }

    #[test]
    fn a_static_partition_gives_its_columns_and_the_query_the_others() {
        let fixed = [(
            Ident::new("b"),
            Expr::value(datafusion::sql::sqlparser::ast::Value::SingleQuotedString("x".into())),
        )];
        let given = Given {
            listed: &[],
            fixed: &fixed,
        };
        assert_eq!(
            fill("t", &table(), &given, query("SELECT p, q FROM s"))
                .unwrap()
                .to_string(),
            "SELECT `$c0` AS `a`, 'x' AS `b`, `$c1` AS `c` FROM (SELECT p, q FROM s) AS `$insert` (`$c0`, `$c1`)"
        );
        let e = fill("t", &table(), &given, query("SELECT p FROM s"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the query produces 1 columns but 2 are listed (a, c)"),
            "{e}"
        );
        let both = [Ident::new("b")];
        let e = fill(
            "t",
            &table(),
            &Given {
                listed: &both,
                fixed: &fixed,
            },
            query("SELECT 1"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("column 'b' is both listed and given by PARTITION"), "{e}");
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
            &listed(&[Ident::new("c"), Ident::new("a")]),
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
        let e = fill("t", &table(), &listed(&[Ident::new("z")]), query("SELECT 1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("INSERT INTO t: no column 'z' (its columns: a, b, c)"), "{e}");
        let e = fill(
            "t",
            &table(),
            &listed(&[Ident::new("a"), Ident::new("a")]),
            query("SELECT 1, 2"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("column 'a' is listed twice"), "{e}");
        let e = fill(
            "t",
            &table(),
            &listed(&[Ident::new("a"), Ident::new("b")]),
            query("SELECT 1"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("the query produces 1 columns but 2 are listed (a, b)"),
            "{e}"
        );
    }
}
