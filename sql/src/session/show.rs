//! Flink's `SHOW …` statements and the catalog statements (`USE`, `CREATE
//! DATABASE`), answered from Weir's one catalog and database
//! (`crate::catalog::names`).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use datafusion::sql::sqlparser::ast::{Ident, ObjectName};

use super::{Outcome, Session, string_table};
use crate::catalog::names::{self, CATALOG, DATABASE, ONE_CATALOG};
use crate::error::{Result, SqlError};
use crate::results;
use crate::statement::{CatalogStatement, LikeFilter, Show, position_of};

/// The module Weir's functions belong to, as Flink's built-ins do.
const CORE_MODULE: &str = "core";

/// `names` kept by `like`, if any.
fn filtered(names: impl IntoIterator<Item = String>, like: &Option<LikeFilter>) -> Vec<String> {
    names.into_iter().filter(|n| like.as_ref().is_none_or(|l| l.keeps(n))).collect()
}

fn one_column(schema: datafusion::arrow::datatypes::SchemaRef, names: Vec<String>) -> Outcome {
    Outcome::Table(vec![string_table(schema, vec![names])])
}

impl Session {
    pub(super) async fn show(&self, s: &Show) -> Result<Outcome> {
        let schema = results::show(s);
        Ok(match s {
            Show::Catalogs { like } => one_column(schema, filtered([CATALOG.to_string()], like)),
            Show::CurrentCatalog => one_column(schema, vec![CATALOG.to_string()]),
            Show::Databases { like } => one_column(schema, filtered([DATABASE.to_string()], like)),
            Show::CurrentDatabase => one_column(schema, vec![DATABASE.to_string()]),
            Show::Tables { from, like } => {
                check_from(from)?;
                one_column(schema, filtered(self.catalog.tables().map(|t| t.name.clone()), like))
            }
            Show::Views { from, like } => {
                check_from(from)?;
                one_column(schema, filtered(self.views.names().cloned(), like))
            }
            Show::Columns { table, like } => {
                let [names, types, nulls, extras] = self.describe_rows(table).await?;
                let keep: Vec<bool> = names.iter().map(|n| like.as_ref().is_none_or(|l| l.keeps(n))).collect();
                let pick = |c: Vec<String>| c.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| v).collect();
                Outcome::Table(vec![string_table(schema, vec![pick(names), pick(types), pick(nulls), pick(extras)])])
            }
            Show::CreateTable(name) => {
                let n = names::table_part(name)?;
                let Some(t) = self.catalog.get(&n) else {
                    if self.views.get(&n).is_some() {
                        return Err(SqlError::plan(format!("'{n}' is a view: SHOW CREATE VIEW {n}"), position_of(name)));
                    }
                    return Err(SqlError::unknown_table(n, position_of(name)));
                };
                one_column(schema, vec![t.ddl.clone()])
            }
            Show::CreateView(name) => {
                let n = names::table_part(name)?;
                let Some(v) = self.views.get(&n) else {
                    if self.catalog.get(&n).is_some() {
                        return Err(SqlError::plan(format!("'{n}' is a table: SHOW CREATE TABLE {n}"), position_of(name)));
                    }
                    return Err(SqlError::plan(format!("view '{n}' not found"), position_of(name)));
                };
                one_column(schema, vec![v.ddl.clone()])
            }
            Show::Functions { user: true, like } => one_column(schema, filtered(Vec::new(), like)),
            Show::Functions { user: false, like } => one_column(schema, filtered(self.function_names(), like)),
            Show::Modules { full: false } => one_column(schema, vec![CORE_MODULE.to_string()]),
            Show::Modules { full: true } => {
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(StringArray::from(vec![CORE_MODULE])),
                    Arc::new(BooleanArray::from(vec![true])),
                ];
                Outcome::Table(vec![RecordBatch::try_new(schema, columns).expect("columns match the schema")])
            }
            Show::Jars => one_column(schema, Vec::new()),
        })
    }

    /// The functions a query can call: DataFusion's built-ins and Weir's
    /// own (Flink's), scalar, aggregate and window, by name. Weir's
    /// internal helpers (`__…`) are left out.
    fn function_names(&self) -> Vec<String> {
        let state = self.ctx.state();
        let mut names: Vec<String> = state
            .scalar_functions()
            .keys()
            .chain(state.aggregate_functions().keys())
            .chain(state.window_functions().keys())
            .filter(|n| !n.starts_with("__"))
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// `USE …` and `CREATE DATABASE`: the one catalog and database can be
    /// named, no other.
    pub(super) fn catalog_statement(&self, s: &CatalogStatement) -> Result<Outcome> {
        match s {
            CatalogStatement::UseCatalog(name) => {
                names::check_catalog(name)?;
                Ok(Outcome::Done(format!("Catalog '{CATALOG}' in use.")))
            }
            CatalogStatement::UseDatabase(name) => {
                names::check_database(&idents(name)?, name)?;
                Ok(Outcome::Done(format!("Database '{CATALOG}.{DATABASE}' in use.")))
            }
            CatalogStatement::UseModules(modules) => {
                for m in modules {
                    if m.value != CORE_MODULE {
                        return Err(SqlError::plan(
                            format!("module '{}' is not loaded: Weir has the {CORE_MODULE} module only", m.value),
                            crate::error::Position::of(m.span),
                        ));
                    }
                }
                Ok(Outcome::Done(format!("Module '{CORE_MODULE}' in use.")))
            }
            CatalogStatement::CreateDatabase { name, if_not_exists } => {
                if names::check_database(&idents(name)?, name).is_err() {
                    return Err(SqlError::Unsupported {
                        construct: "CREATE DATABASE".into(),
                        detail: Some(ONE_CATALOG.into()),
                        position: position_of(name),
                    });
                }
                if *if_not_exists {
                    return Ok(Outcome::Done(format!("Database '{DATABASE}' already exists.")));
                }
                Err(SqlError::plan(format!("database '{DATABASE}' already exists"), position_of(name)))
            }
        }
    }
}

/// `FROM [catalog.]database` of SHOW TABLES and SHOW VIEWS.
fn check_from(from: &Option<ObjectName>) -> Result<()> {
    match from {
        Some(name) => names::check_database(&idents(name)?, name),
        None => Ok(()),
    }
}

fn idents(name: &ObjectName) -> Result<Vec<Ident>> {
    name.0
        .iter()
        .map(|p| p.as_ident().cloned())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| SqlError::plan(format!("'{name}' is not a name"), position_of(name)))
}
