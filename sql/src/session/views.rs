//! The statements about views, and their expansion into the statements
//! that read them (`crate::views`).

use std::borrow::Cow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::resolve::resolve_table_references;
use datafusion::sql::sqlparser::ast::{Expr, Ident, ObjectName, Query, Statement};

use super::{Outcome, Session, table_name};
use crate::error::{Result, SqlError};
use crate::statement::{WeirStatement, position_of};
use crate::views::ViewDef;

impl Session {
    /// `CREATE VIEW`: every table and view it reads must exist; its query
    /// is checked again, as part of each statement that reads it.
    pub(super) fn create_view(
        &mut self,
        name: &ObjectName,
        columns: &[Ident],
        query: &Query,
        if_not_exists: bool,
        ddl: &str,
    ) -> Result<Outcome> {
        let n = crate::catalog::names::table_part(name)?;
        if self.views.get(&n).is_some() {
            if if_not_exists {
                return Ok(Outcome::Done(format!("View '{n}' already exists.")));
            }
            return Err(SqlError::plan(format!("view '{n}' already exists"), position_of(name)));
        }
        if self.catalog.get(&n).is_some() {
            return Err(SqlError::plan(
                format!("a table named '{n}' already exists"),
                position_of(name),
            ));
        }
        // Its legacy group windows become window TVFs now, over the tables
        // and views it names: once expanded, a view read by another view's
        // group window would be a subquery, which a group window cannot
        // read (Flink's chained windows: a TUMBLE over a view's
        // TUMBLE_ROWTIME).
        let mut query = query.clone();
        crate::planner::legacy_windows::rewrite(&mut query)?;
        let mut expanded = query.clone();
        self.views.expand(&mut expanded)?;
        let statement = DfStatement::Statement(Box::new(Statement::Query(Box::new(expanded))));
        let (tables, _) = resolve_table_references(&statement, false)?;
        for t in &tables {
            if !crate::system::is_system(t.schema()) && self.catalog.get(t.table()).is_none() {
                return Err(SqlError::unknown_table(t.table(), position_of(&query)));
            }
        }
        self.views.insert(ViewDef {
            name: n.clone(),
            columns: columns.to_vec(),
            query,
            ddl: ddl.to_string(),
        });
        Ok(Outcome::Done(format!("View '{n}' created.")))
    }

    pub(super) fn drop_view(&mut self, name: &ObjectName, if_exists: bool) -> Result<Outcome> {
        let n = crate::catalog::names::table_part(name)?;
        match self.views.remove(&n) {
            Some(_) => Ok(Outcome::Done(format!("View '{n}' dropped."))),
            None if if_exists => Ok(Outcome::Done(format!("View '{n}' does not exist."))),
            None => Err(SqlError::plan(format!("view '{n}' not found"), position_of(name))),
        }
    }

    /// `statement` with the views its queries read expanded, Flink's legacy
    /// group windows written as window TVFs (`planner::legacy_windows`) and
    /// selected ROW fields named as Flink names them
    /// (`planner::field_names`); borrowed as it is when it has no query.
    pub(super) fn written_out<'s>(&self, statement: &'s WeirStatement) -> Result<Cow<'s, WeirStatement>> {
        let mut expanded = statement.clone();
        // An EXPLAIN of an INSERT or a query is written out as they are.
        let target = match &mut expanded {
            WeirStatement::Explain(inner)
                if matches!(**inner, WeirStatement::Insert { .. } | WeirStatement::Query { .. }) =>
            {
                inner.as_mut()
            }
            other => other,
        };
        let query = match target {
            WeirStatement::Insert {
                table,
                columns,
                partition,
                query,
                ..
            } => {
                self.fill_insert_columns(table, columns, partition, query)?;
                query
            }
            WeirStatement::Query { query, .. }
            | WeirStatement::CreateMaterializedView { query, .. }
            | WeirStatement::CreateTableAs { query, .. } => query,
            _ => return Ok(Cow::Borrowed(statement)),
        };
        // Group windows over a view become window TVFs over the view (the
        // view is not expanded under a TVF); those inside views' queries are
        // rewritten once the views are expanded.
        crate::catalog::names::unqualify(query);
        crate::planner::legacy_windows::rewrite(query)?;
        self.views.expand(query)?;
        // Views' own queries may qualify names too.
        crate::catalog::names::unqualify(query);
        crate::planner::rewrite_flink_forms(query)?;
        Ok(Cow::Owned(expanded))
    }

    /// An INSERT's column list and static partition written into its query
    /// (all the table's columns, the unlisted NULL:
    /// `planner::insert_columns`); an unknown table is left to the INSERT's
    /// planner to name.
    fn fill_insert_columns(
        &self,
        table: &ObjectName,
        columns: &mut Vec<Ident>,
        partition: &mut Vec<(Ident, Expr)>,
        query: &mut Box<Query>,
    ) -> Result<()> {
        if columns.is_empty() && partition.is_empty() {
            return Ok(());
        }
        let Some(def) = self.catalog.get(&table_name(table)) else {
            return Ok(());
        };
        let given = crate::planner::insert_columns::Given { listed: columns, fixed: partition };
        **query = crate::planner::insert_columns::fill(&def.name, &def.physical, &given, query.as_ref().clone())?;
        columns.clear();
        partition.clear();
        Ok(())
    }

    /// The `CREATE VIEW` statements of the views `statement` reads,
    /// directly or through other views, one per line after a newline each.
    pub(super) fn view_ddls(&self, statement: &WeirStatement) -> String {
        let WeirStatement::Insert { query, .. } = statement else {
            return String::new();
        };
        let mut seen = std::collections::BTreeMap::new();
        let mut pending = vec![query.as_ref().clone()];
        while let Some(query) = pending.pop() {
            let statement = DfStatement::Statement(Box::new(Statement::Query(Box::new(query))));
            let Ok((tables, _)) = resolve_table_references(&statement, false) else {
                continue;
            };
            for view in tables.iter().filter_map(|t| self.views.get(t.table())) {
                if seen.insert(view.name.clone(), view.ddl.clone()).is_none() {
                    pending.push(view.query.clone());
                }
            }
        }
        seen.values().map(|ddl| format!("\n{ddl}")).collect()
    }

    /// Whether `query` reads a view: it is then Weir's to run, not
    /// DataFusion's alone (which knows no views).
    pub fn reads_views(&self, query: &Query) -> bool {
        let statement = DfStatement::Statement(Box::new(Statement::Query(Box::new(query.clone()))));
        resolve_table_references(&statement, false)
            .is_ok_and(|(tables, _)| tables.iter().any(|t| self.views.get(t.table()).is_some()))
    }
}
