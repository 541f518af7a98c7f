//! The columns of Weir's statements that answer with rows. They are fixed,
//! so they are known before a statement runs: the Postgres extended
//! protocol describes a prepared statement's columns before executing it.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::statement::{Show, WeirStatement};

/// Text columns named `names`.
fn text(names: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(names.iter().map(|n| Field::new(*n, DataType::Utf8, false)).collect::<Vec<_>>()))
}

/// `SET` without a value: every setting.
pub fn settings() -> SchemaRef {
    text(&["key", "value"])
}

/// `SHOW TABLES`.
pub fn tables() -> SchemaRef {
    text(&["table name"])
}

/// `SHOW VIEWS`: a row per view.
pub fn views() -> SchemaRef {
    text(&["view name"])
}

/// `DESCRIBE t`: a row per column.
pub fn describe() -> SchemaRef {
    text(&["name", "type", "null", "extras"])
}

/// Flink's `SHOW …` statements, with the columns Flink names.
pub fn show(s: &Show) -> SchemaRef {
    match s {
        Show::Catalogs { .. } => text(&["catalog name"]),
        Show::CurrentCatalog => text(&["current catalog name"]),
        Show::Databases { .. } => text(&["database name"]),
        Show::CurrentDatabase => text(&["current database name"]),
        Show::Tables { .. } => tables(),
        Show::Views { .. } => views(),
        Show::Columns { .. } => describe(),
        Show::CreateTable(_) | Show::CreateView(_) => text(&["result"]),
        Show::Functions { .. } => text(&["function name"]),
        Show::Modules { full: false } => text(&["module name"]),
        Show::Modules { full: true } => Arc::new(Schema::new(vec![
            Field::new("module name", DataType::Utf8, false),
            Field::new("used", DataType::Boolean, false),
        ])),
        Show::Jars => text(&["jars"]),
    }
}

/// `EXPLAIN`: a row per line of the streaming plan, as PostgreSQL's.
pub fn explain() -> SchemaRef {
    text(&["QUERY PLAN"])
}

/// `SHOW JOBS`.
pub fn jobs() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("job id", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("rows out", DataType::UInt64, false),
        Field::new("rows in", DataType::UInt64, false),
        Field::new("rows not used", DataType::UInt64, false),
        Field::new("watermark", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("diagnosis", DataType::Utf8, true),
        Field::new("statement", DataType::Utf8, false),
    ]))
}

/// The columns `statement` answers with, if it answers with rows of its
/// own (a query's are DataFusion's).
pub fn of(statement: &WeirStatement) -> Option<SchemaRef> {
    match statement {
        WeirStatement::Set { value: None, .. } => Some(settings()),
        WeirStatement::Show(s) => Some(show(s)),
        WeirStatement::Describe { .. } => Some(describe()),
        WeirStatement::Explain(_) => Some(explain()),
        WeirStatement::ShowJobs => Some(jobs()),
        _ => None,
    }
}
