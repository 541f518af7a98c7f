//! `/*+ OPTIONS(…) */` in a statement (`crate::hints`): each hinted table
//! is planned as a copy of itself with the hint's options over its `WITH`,
//! registered under a name of its own for as long as the statement is
//! planned and started (a job keeps what it read of it).

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::common::TableReference;
use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectNamePart, Query, TableFactor, VisitMut, VisitorMut};

use super::Session;
use crate::error::{Result, SqlError};
use crate::hints::TableHint;
use crate::planner::table::{create_table, normalize};
use crate::statement::WeirStatement;

impl Session {
    /// `statement` with its hinted tables renamed to their hinted copies,
    /// and the copies' names, to drop with [`Session::drop_hinted`].
    pub(super) fn hinted(
        &mut self,
        statement: &WeirStatement,
        hints: &[TableHint],
    ) -> Result<(WeirStatement, Vec<String>)> {
        let mut statement = statement.clone();
        let mut renames = Renames {
            session: self,
            hints,
            copies: HashMap::new(),
            error: None,
        };
        renames.statement(&mut statement);
        let Renames { copies, error, .. } = renames;
        let names: Vec<String> = copies.into_values().collect();
        if let Some(e) = error {
            self.drop_hinted(names);
            return Err(e);
        }
        if let Some(unused) = hints
            .iter()
            .find(|h| !names.iter().any(|n| n.ends_with(&copy_suffix(h))))
        {
            self.drop_hinted(names);
            return Err(SqlError::Syntax {
                message: "an OPTIONS hint must follow the name of a table the statement reads or writes".into(),
                position: unused.position,
            });
        }
        Ok((statement, names))
    }

    /// Forgets the hinted copies of a statement that has been planned.
    pub(super) fn drop_hinted(&mut self, names: Vec<String>) {
        for name in names {
            self.catalog.remove(&name);
            let _ = self.ctx.deregister_table(TableReference::bare(name.as_str()));
        }
    }

    /// Registers the copy of `table` with `hint`'s options; its name.
    fn hinted_copy(&mut self, table: &str, hint: &TableHint) -> Result<String> {
        let at = |message: String| SqlError::plan(message, hint.position);
        if self.views.get(table).is_some() {
            return Err(at(format!("OPTIONS hints are for tables; '{table}' is a view")));
        }
        let Some(def) = self.catalog.get(table) else {
            return Err(SqlError::unknown_table(table.to_string(), hint.position));
        };
        let Some(declared) = def.declared.as_ref() else {
            return Err(at(format!(
                "table '{table}' was created by Weir, not declared: it takes no OPTIONS hints"
            )));
        };
        let mut ct = declared.as_ref().clone();
        for (k, v) in &hint.options {
            ct.options.insert(k.clone(), v.clone());
        }
        let name = format!("{table}{}", copy_suffix(hint));
        ct.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('`', name.clone()))]);
        let ddl = def.ddl.clone();
        let copy = create_table(&self.ctx.state(), &ct, &ddl, &self.settings).map_err(|e| match e {
            SqlError::Connector { source, .. } => at(format!("OPTIONS of table '{table}': {source}")),
            other => other.or_at(hint.position),
        })?;
        self.register(copy)?;
        Ok(name)
    }
}

/// The end of the name of a hinted copy: where its hint is, so that two
/// hints on one table in a statement make two copies.
fn copy_suffix(hint: &TableHint) -> String {
    format!("$options@{}:{}", hint.table_at.line, hint.table_at.column)
}

/// Renames the hinted tables of a statement, stopping at the first error.
struct Renames<'a> {
    session: &'a mut Session,
    hints: &'a [TableHint],
    /// Hinted copies by the place of their hint.
    copies: HashMap<(u64, u64), String>,
    error: Option<SqlError>,
}

impl Renames<'_> {
    fn statement(&mut self, statement: &mut WeirStatement) {
        match statement {
            WeirStatement::Insert { table, query, .. } => {
                self.name(table);
                self.query(query);
            }
            WeirStatement::Query { query, .. } | WeirStatement::CreateMaterializedView { query, .. } => {
                self.query(query)
            }
            WeirStatement::Explain(inner) => self.statement(inner),
            WeirStatement::StatementSet(inserts) => inserts.iter_mut().for_each(|i| self.statement(i)),
            _ => {}
        }
    }

    fn query(&mut self, query: &mut Query) {
        let _ = query.visit(self);
    }

    /// Renames `name` to its hinted copy if a hint follows it.
    fn name(&mut self, name: &mut ObjectName) {
        if self.error.is_some() {
            return;
        }
        let Some(first) = name.0.first().and_then(|p| p.as_ident()) else {
            return;
        };
        let at = first.span.start;
        let Some(hint) = self.hints.iter().find(|h| h.table_at == at) else {
            return;
        };
        let Some(last) = name.0.last().and_then(|p| p.as_ident()) else {
            return;
        };
        let table = normalize(last);
        let copy = match self.copies.get(&(at.line, at.column)) {
            Some(copy) => Ok(copy.clone()),
            None => self.session.hinted_copy(&table, hint),
        };
        match copy {
            Ok(copy) => {
                self.copies.insert((at.line, at.column), copy.clone());
                let span = first.span;
                *name = ObjectName(vec![ObjectNamePart::Identifier(Ident {
                    value: copy,
                    quote_style: Some('`'),
                    span,
                })]);
            }
            Err(e) => self.error = Some(e),
        }
    }
}

impl VisitorMut for Renames<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, .. } = factor {
            self.name(name);
        }
        ControlFlow::Continue(())
    }
}
