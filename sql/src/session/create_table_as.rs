//! `CREATE [OR REPLACE] TABLE t WITH (…) AS SELECT …`, Flink's CTAS and
//! RTAS: the table is declared with the query's columns (names and types,
//! as `DESCRIBE` would show them) and the options given, then the query
//! runs as `INSERT INTO t`. The table stays if the job fails to start only
//! when it was there before.

use datafusion::common::TableReference;
use datafusion::sql::sqlparser::ast::{Ident, Query};

use super::{Outcome, Session, table_name};
use crate::error::{Result, SqlError};
use crate::script::{ParsedStatement, parse_script};
use crate::statement::{CreateTable, WeirStatement, WindowClauses, position_of};
use crate::types::sql_name;

impl Session {
    /// Runs CTAS `create … AS query` (`query` written out already), from
    /// statement `s` as written.
    pub(super) async fn create_table_as(
        &mut self,
        create: &CreateTable,
        query: &Query,
        replace: bool,
        s: &ParsedStatement,
    ) -> Result<Outcome> {
        let at = position_of(&create.name);
        if !create.columns.is_empty()
            || create.watermark.is_some()
            || !create.primary_key.is_empty()
            || create.like.is_some()
        {
            return Err(SqlError::unsupported(
                "columns, a WATERMARK, a PRIMARY KEY or LIKE in CREATE TABLE … AS SELECT (the table takes the query's columns)",
                at,
            ));
        }
        let name = table_name(&create.name);
        if self.catalog.get(&name).is_some() {
            if create.if_not_exists && !replace {
                return Ok(Outcome::Done(format!("Table '{name}' already exists.")));
            }
            if !replace {
                return Err(SqlError::plan(format!("table '{name}' already exists"), at));
            }
            self.catalog.remove(&name);
            self.ctx.deregister_table(TableReference::bare(name.as_str()))?;
        }
        let (logical, _) = self.logical_plan(query).await?;
        let columns: Vec<String> = logical
            .schema()
            .fields()
            .iter()
            .map(|f| format!("{} {}", quoted(f.name()), sql_name(f.data_type())))
            .collect();
        let options: Vec<String> = create
            .options
            .iter()
            .map(|(k, v)| format!("'{}' = '{}'", k.replace('\'', "''"), v.replace('\'', "''")))
            .collect();
        let ddl = format!("CREATE TABLE {} ({}) WITH ({})", quoted(&name), columns.join(", "), options.join(", "));
        let declared = parse_script(&ddl)?
            .pop()
            .ok_or_else(|| SqlError::plan(format!("CREATE TABLE {name} AS: cannot declare the table"), at))?;
        Box::pin(self.run(&ParsedStatement { start: s.start, ..declared })).await?;
        // The query as written: the INSERT writes it out again.
        let written = match &s.statement {
            WeirStatement::CreateTableAs { query, .. } => query.clone(),
            _ => Box::new(query.clone()),
        };
        let insert = ParsedStatement {
            statement: WeirStatement::Insert {
                table: create.name.clone(),
                columns: Vec::new(),
                partition: Vec::new(),
                query: written,
                clauses: WindowClauses::default(),
            },
            text: s.text.clone(),
            start: s.start,
            hints: s.hints.clone(),
            state_ttl: s.state_ttl.clone(),
        };
        let outcome = Box::pin(self.run(&insert)).await;
        if outcome.is_err() {
            self.catalog.remove(&name);
            let _ = self.ctx.deregister_table(TableReference::bare(name.as_str()));
        }
        outcome
    }
}

fn quoted(name: &str) -> String {
    Ident::with_quote('`', name.replace('`', "``")).to_string()
}
