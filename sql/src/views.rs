//! Views: `CREATE [TEMPORARY] VIEW v [(columns)] AS SELECT …`, expanded
//! into the statements that read them.
//!
//! A view is kept as its query's syntax tree. Before a statement is routed
//! or planned, every reference to a view becomes a subquery aliased as the
//! view (`FROM v` → `FROM (SELECT …) AS v`), views over views included, so
//! the rest of Weir — the stream planner, window TVFs inside the view,
//! joins of views, jobs that read several views — only ever sees tables.
//! A view over a stream thus runs inside each job that reads it, as in
//! Flink. A view named as a window TVF's table (`TUMBLE(TABLE v, …)`) is
//! left in place: the TVF windows the rows of the view's query
//! ([`Views::windowed`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, Query, TableAlias, TableAliasColumnDef,
    TableFactor, Visit, VisitMut, Visitor, VisitorMut,
};

use crate::dialect::TABLE_ARGUMENT;
use crate::error::{Result, SqlError};
use crate::planner::table::normalize;

/// How deep views may read views: deeper is a cycle (a view dropped and
/// created again over one that reads it) or a mistake.
const MAX_VIEW_DEPTH: usize = 64;

/// A view as declared.
#[derive(Debug, Clone)]
pub struct ViewDef {
    pub name: String,
    /// Names given to the query's columns, if any (`CREATE VIEW v (a, b)`).
    pub columns: Vec<Ident>,
    pub query: Query,
    /// The `CREATE VIEW` statement, for messages.
    pub ddl: String,
}

/// The views of a session, by normalised name.
#[derive(Debug, Default, Clone)]
pub struct Views {
    views: BTreeMap<String, ViewDef>,
}

impl Views {
    pub fn get(&self, name: &str) -> Option<&ViewDef> {
        self.views.get(name)
    }

    pub fn insert(&mut self, view: ViewDef) {
        self.views.insert(view.name.clone(), view);
    }

    pub fn remove(&mut self, name: &str) -> Option<ViewDef> {
        self.views.remove(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.views.keys()
    }

    /// The views `query` names as window TVF tables, each as the expanded
    /// query `SELECT * FROM view` (its column list applied), in order of
    /// name. `query` is expanded already: the views of views are found too.
    pub fn windowed(&self, query: &Query) -> Result<Vec<(String, Query)>> {
        let mut finder = TvfTables {
            views: self,
            found: BTreeSet::new(),
        };
        let _ = query.visit(&mut finder);
        finder
            .found
            .into_iter()
            .map(|name| {
                let mut q = crate::script::parse_script(&format!("SELECT * FROM {}", Ident::with_quote('`', &name)))?
                    .into_iter()
                    .find_map(|s| match s.statement {
                        crate::statement::WeirStatement::Query { query, .. } => Some(*query),
                        _ => None,
                    })
                    .ok_or_else(|| SqlError::plan(format!("view '{name}' cannot be read"), None))?;
                self.expand(&mut q)?;
                crate::planner::rewrite_flink_forms(&mut q)?;
                Ok((name, q))
            })
            .collect()
    }

    /// `query` with every view it reads replaced by the view's query.
    pub fn expand(&self, query: &mut Query) -> Result<()> {
        if self.views.is_empty() {
            return Ok(());
        }
        for depth in 0..=MAX_VIEW_DEPTH {
            let mut expander = Expander {
                views: self,
                expanded: 0,
            };
            let _ = query.visit(&mut expander);
            if expander.expanded == 0 {
                return Ok(());
            }
            if depth == MAX_VIEW_DEPTH {
                break;
            }
        }
        Err(SqlError::plan(
            format!("views read views more than {MAX_VIEW_DEPTH} deep: one of them reads itself"),
            None,
        ))
    }
}

/// Replaces one level of view references.
struct Expander<'a> {
    views: &'a Views,
    expanded: usize,
}

impl VisitorMut for Expander<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            alias,
            args: None,
            version: None,
            ..
        } = factor
        {
            let Some(view) = self.view(name) else {
                return ControlFlow::Continue(());
            };
            let alias = alias.clone().unwrap_or_else(|| TableAlias {
                explicit: true,
                name: Ident::new(view.name.clone()),
                columns: Vec::new(),
                at: None,
            });
            let alias = TableAlias {
                columns: match alias.columns.is_empty() {
                    true => view
                        .columns
                        .iter()
                        .map(|c| TableAliasColumnDef {
                            name: c.clone(),
                            data_type: None,
                        })
                        .collect(),
                    false => alias.columns,
                },
                ..alias
            };
            *factor = TableFactor::Derived {
                lateral: false,
                subquery: Box::new(view.query.clone()),
                alias: Some(alias),
                sample: None,
            };
            self.expanded += 1;
        }
        ControlFlow::Continue(())
    }
}

impl<'a> Expander<'a> {
    fn view(&self, name: &ObjectName) -> Option<&'a ViewDef> {
        let last = name.0.last()?.as_ident()?;
        self.views.get(&normalize(last))
    }
}

/// Finds the views named by window TVFs' `TABLE v` arguments.
struct TvfTables<'a> {
    views: &'a Views,
    found: BTreeSet<String>,
}

impl Visitor for TvfTables<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::TableFunction {
            expr: Expr::Function(f),
            ..
        } = factor
            && let FunctionArguments::List(list) = &f.args
        {
            for arg in &list.args {
                let (FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Prefixed { prefix, value }))
                | FunctionArg::Named {
                    arg: FunctionArgExpr::Expr(Expr::Prefixed { prefix, value }),
                    ..
                }) = arg
                else {
                    continue;
                };
                if !prefix.value.eq_ignore_ascii_case(TABLE_ARGUMENT) {
                    continue;
                }
                // `TABLE v`, or `TABLE v PARTITION BY k` (a tuple of both).
                let table = match value.as_ref() {
                    Expr::Tuple(parts) => parts.first(),
                    other => Some(other),
                };
                if let Some(Expr::CompoundIdentifier(parts)) = table
                    && let Some(name) = parts.last()
                    && self.views.get(&normalize(name)).is_some()
                {
                    self.found.insert(normalize(name));
                }
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;
    use crate::statement::WeirStatement;

    fn query(sql: &str) -> Query {
        match parse_script(sql).unwrap().remove(0).statement {
            WeirStatement::Query { query, .. } => *query,
            other => panic!("{other:?}"),
        }
    }

    fn view(name: &str, columns: &[&str], sql: &str) -> ViewDef {
        ViewDef {
            name: name.into(),
            columns: columns.iter().map(|c| Ident::new(*c)).collect(),
            query: query(sql),
            ddl: String::new(),
        }
    }

    /// A view becomes a subquery under its own name (or the reader's
    /// alias), with its column list; views over views all the way down.
    #[test]
    fn views_expand_into_aliased_subqueries() {
        let mut views = Views::default();
        views.insert(view("a", &[], "SELECT k, v FROM t WHERE v > 1"));
        views.insert(view("b", &["key"], "SELECT k FROM a"));
        let mut q = query("SELECT key FROM b JOIN a AS x ON b.key = x.k");
        views.expand(&mut q).unwrap();
        assert_eq!(
            q.to_string(),
            "SELECT key FROM (SELECT k FROM (SELECT k, v FROM t WHERE v > 1) AS a) AS b (key) \
             JOIN (SELECT k, v FROM t WHERE v > 1) AS x ON b.key = x.k"
        );
        let mut untouched = query("SELECT * FROM t");
        views.expand(&mut untouched).unwrap();
        assert_eq!(untouched.to_string(), "SELECT * FROM t");
    }

    /// A view named as a TVF's table stays in place; its rows are the
    /// expanded `SELECT * FROM view`, views of views included.
    #[test]
    fn a_view_as_a_window_tvf_table_is_found_not_expanded() {
        let mut views = Views::default();
        views.insert(view("a", &["key", "time"], "SELECT k, ts FROM t"));
        views.insert(view(
            "b",
            &[],
            "SELECT * FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(time), INTERVAL '1' SECOND))",
        ));
        let mut q =
            query("SELECT * FROM TABLE(SESSION(TABLE a PARTITION BY key, DESCRIPTOR(time), INTERVAL '1' SECOND)), b");
        views.expand(&mut q).unwrap();
        assert!(
            q.to_string().starts_with("SELECT * FROM TABLE(SESSION(TABLE (a, key)"),
            "{q}"
        );
        let windowed = views.windowed(&q).unwrap();
        assert_eq!(windowed.len(), 1);
        assert_eq!(windowed[0].0, "a");
        assert_eq!(
            windowed[0].1.to_string(),
            "SELECT * FROM (SELECT k, ts FROM t) AS a (key, time)"
        );
    }
}
