//! `DESCRIBE t` / `SHOW COLUMNS FROM t`: a table's columns as declared, or
//! a view's as its query plans them.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::sql::sqlparser::ast::{Ident, ObjectName};

use super::{Outcome, Session, string_table};
use crate::catalog::TableDef;
use crate::catalog::names;
use crate::error::{Result, SqlError};
use crate::results;
use crate::statement::{ColumnKind, WeirStatement, position_of};
use crate::types::sql_name;

impl Session {
    pub(super) async fn describe(&self, name: &ObjectName) -> Result<Outcome> {
        let [names, types, nulls, extras] = self.describe_rows(name).await?;
        Ok(Outcome::Table(vec![string_table(results::describe(), vec![names, types, nulls, extras])]))
    }

    /// DESCRIBE's columns: name, type, null and extras, a row per column.
    pub(super) async fn describe_rows(&self, name: &ObjectName) -> Result<[Vec<String>; 4]> {
        let n = names::table_part(name)?;
        if let Some(t) = self.catalog.get(&n) {
            return Ok(table_rows(t));
        }
        if self.views.get(&n).is_some() {
            let schema = self.view_schema(&n).await.map_err(|e| e.or_at(position_of(name)))?;
            return Ok(view_rows(&schema));
        }
        Err(SqlError::unknown_table(n, position_of(name)))
    }

    /// The columns of view `name`: those of `SELECT * FROM name`, planned
    /// as a statement reading it would be.
    async fn view_schema(&self, name: &str) -> Result<SchemaRef> {
        let sql = format!("SELECT * FROM {}", Ident::with_quote('`', name));
        let statement = crate::script::parse_script(&sql)?
            .into_iter()
            .next()
            .map(|s| s.statement)
            .ok_or_else(|| SqlError::plan(format!("view '{name}' cannot be read"), None))?;
        let written = self.written_out(&statement)?;
        let WeirStatement::Query { query, .. } = written.as_ref() else {
            return Err(SqlError::plan(format!("view '{name}' cannot be read"), None));
        };
        let (plan, _) = self.logical_plan(query).await?;
        Ok(std::sync::Arc::new(plan.schema().as_arrow().clone()))
    }
}

fn table_rows(t: &TableDef) -> [Vec<String>; 4] {
    let mut rows: [Vec<String>; 4] = Default::default();
    for (i, f) in t.schema.fields().iter().enumerate() {
        rows[0].push(f.name().clone());
        rows[1].push(sql_name(f.data_type()));
        rows[2].push(if f.is_nullable() { "YES" } else { "NO" }.to_string());
        let declared = t
            .declared
            .as_ref()
            .and_then(|d| d.columns.iter().find(|c| crate::planner::table::normalize(&c.name) == *f.name()));
        let mut extra = Vec::new();
        match declared.map(|c| &c.kind) {
            // Flink's extras: how a column is made.
            Some(ColumnKind::Computed(e)) => extra.push(format!("AS {e}")),
            Some(ColumnKind::Metadata { key, is_virtual, .. }) => {
                let mut m = "METADATA".to_string();
                if let Some(k) = key {
                    m.push_str(&format!(" FROM '{}'", k.replace('\'', "''")));
                }
                if *is_virtual {
                    m.push_str(" VIRTUAL");
                }
                extra.push(m);
            }
            Some(ColumnKind::Physical { .. }) => {}
            None if t.physical.index_of(f.name()).is_err() => extra.push("computed".to_string()),
            None => {}
        }
        if t.declared.as_ref().is_some_and(|d| d.primary_key.iter().any(|k| crate::planner::table::normalize(k) == *f.name())) {
            extra.push("PRIMARY KEY".to_string());
        }
        if let Some(w) = &t.watermark
            && w.time_column == i
        {
            extra.push(format!("WATERMARK AS {}", w.display));
        }
        rows[3].push(extra.join(", "));
    }
    rows
}

fn view_rows(schema: &SchemaRef) -> [Vec<String>; 4] {
    let mut rows: [Vec<String>; 4] = Default::default();
    for f in schema.fields() {
        rows[0].push(f.name().clone());
        rows[1].push(sql_name(f.data_type()));
        rows[2].push(if f.is_nullable() { "YES" } else { "NO" }.to_string());
        rows[3].push(String::new());
    }
    rows
}
