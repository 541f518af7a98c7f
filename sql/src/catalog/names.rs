//! The one catalog and database Weir has, under Flink's default names, and
//! the checks of names qualified with them: `default_catalog.default_database.t`
//! is `t`; any other catalog or database is an error rather than a silent
//! fall-back to `t`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Ident, ObjectName, Query, visit_relations_mut};

use crate::error::{Position, Result, SqlError};
use crate::planner::table::normalize;
use crate::statement::position_of;

/// Flink's name of the catalog a session starts in: Weir's only one.
pub const CATALOG: &str = "default_catalog";
/// Flink's name of the database a session starts in: Weir's only one.
pub const DATABASE: &str = "default_database";

/// Why Weir refuses to make or drop catalogs and databases.
pub const ONE_CATALOG: &str = "Weir has one catalog and database (default_catalog.default_database)";

fn at(ident: &Ident) -> Option<Position> {
    Position::of(ident.span)
}

/// `query` with the tables it names as `default_catalog.default_database.t`
/// or `default_database.t` named `t`, as the session's DataFusion holds
/// them. Other qualified names (`weir.jobs`, `pg_catalog.…`) are left to
/// DataFusion, which knows them or says it does not. (Registering Flink's
/// names as DataFusion schemas would list every table three times in
/// `information_schema`, which clients such as Grafana read.)
pub fn unqualify(query: &mut Query) {
    let _ = visit_relations_mut(query, |name| {
        let idents: Option<Vec<&Ident>> = name.0.iter().map(|p| p.as_ident()).collect();
        if let Some(idents) = idents
            && let Some((last, qualifiers)) = idents.split_last()
            && !qualifiers.is_empty()
        {
            let qualifiers: Vec<Ident> = qualifiers.iter().map(|i| (*i).clone()).collect();
            if check_database(&qualifiers, name).is_ok() {
                *name = ObjectName::from(vec![(*last).clone()]);
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `name` must be the one catalog.
pub fn check_catalog(name: &Ident) -> Result<()> {
    let n = normalize(name);
    if n == CATALOG {
        return Ok(());
    }
    Err(SqlError::plan(format!("catalog '{n}' does not exist: Weir has one catalog, {CATALOG}"), at(name)))
}

/// `[catalog.]database` must name the one database.
pub fn check_database(parts: &[Ident], whole: &ObjectName) -> Result<()> {
    match parts {
        [db] => check_db(db),
        [catalog, db] => {
            check_catalog(catalog)?;
            check_db(db)
        }
        _ => Err(SqlError::plan(
            format!("'{whole}' is not a database name ([catalog.]database)"),
            position_of(whole),
        )),
    }
}

fn check_db(db: &Ident) -> Result<()> {
    let n = normalize(db);
    if n == DATABASE {
        return Ok(());
    }
    Err(SqlError::plan(
        format!("database '{n}' does not exist: Weir has one database, {CATALOG}.{DATABASE}"),
        at(db),
    ))
}

/// The table part of `[[catalog.]database.]table`, its qualifiers checked.
pub fn table_part(name: &ObjectName) -> Result<String> {
    let idents: Option<Vec<&Ident>> = name.0.iter().map(|p| p.as_ident()).collect();
    let Some((last, qualifiers)) = idents.as_deref().and_then(|i| i.split_last()) else {
        return Err(SqlError::plan(format!("'{name}' is not a table name"), position_of(name)));
    };
    let qualifiers: Vec<Ident> = qualifiers.iter().map(|i| (*i).clone()).collect();
    if !qualifiers.is_empty() {
        check_database(&qualifiers, name)?;
    }
    Ok(normalize(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(parts: &[&str]) -> ObjectName {
        ObjectName::from(parts.iter().map(|p| Ident::new(*p)).collect::<Vec<_>>())
    }

    #[test]
    fn qualified_names_resolve_to_the_table_or_say_what_does_not_exist() {
        assert_eq!(table_part(&name(&["t"])).unwrap(), "t");
        assert_eq!(table_part(&name(&["default_database", "t"])).unwrap(), "t");
        assert_eq!(table_part(&name(&["default_catalog", "default_database", "t"])).unwrap(), "t");
        let e = table_part(&name(&["other", "t"])).unwrap_err().to_string();
        assert!(e.contains("database 'other' does not exist"), "{e}");
        let e = table_part(&name(&["cat", "default_database", "t"])).unwrap_err().to_string();
        assert!(e.contains("catalog 'cat' does not exist: Weir has one catalog, default_catalog"), "{e}");
        assert!(table_part(&name(&["a", "b", "c", "t"])).is_err());
    }
}
