//! `ALTER TABLE` and `ALTER VIEW`. An altered table is its stored
//! declaration changed and declared again through `CREATE TABLE`'s path,
//! which validates it as it validates any table; the DDL it keeps is that
//! declaration written out (`ddl.rs`). As in Flink, a job already running
//! keeps the definition it started with; a later job reads the new one.

use std::ops::ControlFlow;

use datafusion::common::TableReference;
use datafusion::sql::sqlparser::ast::{Expr, Ident, ObjectName, visit_expressions};

use super::{Outcome, Session, ddl};
use crate::catalog::names;
use crate::error::{Position, Result, SqlError};
use crate::planner::table::{create_table, normalize};
use crate::statement::{AlterAction, AlterTable, AlterView, AlterViewAction, ColumnKind, Component, CreateTable, Place, position_of};
use crate::views::ViewDef;

fn at(ident: &Ident) -> Option<Position> {
    Position::of(ident.span)
}

impl Session {
    pub(super) fn alter_table(&mut self, a: &AlterTable) -> Result<Outcome> {
        let n = names::table_part(&a.name)?;
        let Some(def) = self.catalog.get(&n).cloned() else {
            if a.if_exists {
                return Ok(Outcome::Done(format!("Table '{n}' does not exist.")));
            }
            if self.views.get(&n).is_some() {
                return Err(SqlError::plan(format!("'{n}' is a view: ALTER VIEW {n}"), position_of(&a.name)));
            }
            return Err(SqlError::unknown_table(n, position_of(&a.name)));
        };
        let declared = def.declared.as_ref().ok_or_else(|| {
            SqlError::plan(
                format!("table '{n}' was not declared by CREATE TABLE (Weir made it): it cannot be altered"),
                position_of(&a.name),
            )
        })?;
        let mut ct = CreateTable { if_not_exists: false, like: None, ..(**declared).clone() };
        let mut new_name = n.clone();
        if let AlterAction::RenameTo(to) = &a.action {
            new_name = names::table_part(to)?;
            if self.catalog.get(&new_name).is_some() || self.views.get(&new_name).is_some() {
                return Err(SqlError::plan(format!("a table or view named '{new_name}' already exists"), position_of(to)));
            }
            let last = to.0.last().and_then(|p| p.as_ident()).cloned();
            ct.name = ObjectName::from(vec![last.unwrap_or_else(|| Ident::new(new_name.clone()))]);
        } else {
            apply(&mut ct, &a.action, &n)?;
        }
        let ddl = ddl::create_table(&ct);
        // Errors of the declaration as a whole are at the ALTER's action.
        let table = create_table(&self.ctx.state(), &ct, &ddl, &self.settings).map_err(|e| match e {
            // A connector's refusal of the options names no place.
            SqlError::Connector { .. } => SqlError::plan(e.to_string(), a.position),
            other => other.or_at(a.position),
        })?;
        self.catalog.remove(&n);
        self.ctx.deregister_table(TableReference::bare(n.as_str()))?;
        self.register(table)?;
        Ok(Outcome::Done(match new_name == n {
            true => format!("Table '{n}' altered."),
            false => format!("Table '{n}' renamed to '{new_name}'."),
        }))
    }

    pub(super) fn alter_view(&mut self, a: &AlterView) -> Result<Outcome> {
        let n = names::table_part(&a.name)?;
        let Some(old) = self.views.get(&n).cloned() else {
            if self.catalog.get(&n).is_some() {
                return Err(SqlError::plan(format!("'{n}' is a table: ALTER TABLE {n}"), position_of(&a.name)));
            }
            return Err(SqlError::plan(format!("view '{n}' not found"), position_of(&a.name)));
        };
        match &a.action {
            AlterViewAction::RenameTo(to) => {
                let new = names::table_part(to)?;
                if self.catalog.get(&new).is_some() || self.views.get(&new).is_some() {
                    return Err(SqlError::plan(format!("a table or view named '{new}' already exists"), position_of(to)));
                }
                self.views.remove(&n);
                let ddl = view_ddl(&new, &old.columns, &old.query.to_string());
                self.views.insert(ViewDef { name: new.clone(), ddl, ..old });
                Ok(Outcome::Done(format!("View '{n}' renamed to '{new}'.")))
            }
            AlterViewAction::As(query) => {
                // Checked as CREATE VIEW checks a view; the old one stays if
                // the new query is refused.
                self.views.remove(&n);
                let ddl = view_ddl(&n, &[], &query.to_string());
                let name = ObjectName::from(vec![Ident::with_quote('`', n.clone())]);
                if let Err(e) = self.create_view(&name, &[], query, false, &ddl) {
                    self.views.insert(old);
                    return Err(e.or_at(position_of(query.as_ref())));
                }
                Ok(Outcome::Done(format!("View '{n}' altered.")))
            }
        }
    }
}

/// The `CREATE VIEW` text of a renamed or altered view.
fn view_ddl(name: &str, columns: &[Ident], query: &str) -> String {
    let name = Ident::with_quote('`', name);
    match columns.is_empty() {
        true => format!("CREATE VIEW {name} AS {query}"),
        false => {
            let cols: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
            format!("CREATE VIEW {name} ({}) AS {query}", cols.join(", "))
        }
    }
}

/// Whether `expr` reads column `name`.
fn reads(expr: &Expr, name: &str) -> bool {
    visit_expressions(expr, |e| match e {
        Expr::Identifier(i) if normalize(i) == name => ControlFlow::Break(()),
        Expr::CompoundIdentifier(parts) if parts.last().is_some_and(|i| normalize(i) == name) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// What reads column `name` besides itself: a computed column or the
/// watermark, named for the error.
fn reader(ct: &CreateTable, name: &str) -> Option<String> {
    for c in &ct.columns {
        if let ColumnKind::Computed(e) = &c.kind
            && normalize(&c.name) != name
            && reads(e, name)
        {
            return Some(format!("computed column '{}'", normalize(&c.name)));
        }
    }
    match &ct.watermark {
        Some(w) if normalize(&w.column) == name || reads(&w.expr, name) => Some("the WATERMARK".into()),
        _ => None,
    }
}

fn index(ct: &CreateTable, name: &Ident, table: &str) -> Result<usize> {
    let n = normalize(name);
    ct.columns
        .iter()
        .position(|c| normalize(&c.name) == n)
        .ok_or_else(|| SqlError::plan(format!("column '{n}' not found in table '{table}'"), at(name)))
}

/// `ct` changed by `action` (all but RENAME TO, which changes its name).
fn apply(ct: &mut CreateTable, action: &AlterAction, table: &str) -> Result<()> {
    match action {
        AlterAction::RenameTo(_) => {}
        AlterAction::Set(options) => ct.options.extend(options.clone()),
        AlterAction::Reset(keys) => {
            for (k, position) in keys {
                if k == "connector" {
                    return Err(SqlError::plan("'connector' cannot be RESET: SET it to another connector", *position));
                }
                ct.options.remove(k);
            }
        }
        AlterAction::Add(components) => {
            for c in components {
                add(ct, c, table)?;
            }
        }
        AlterAction::Modify(components) => {
            for c in components {
                modify(ct, c, table)?;
            }
        }
        AlterAction::RenameColumn { from, to } => {
            let i = index(ct, from, table)?;
            let (old, new) = (normalize(from), normalize(to));
            if ct.columns.iter().any(|c| normalize(&c.name) == new) {
                return Err(SqlError::plan(format!("column '{new}' already exists in table '{table}'"), at(to)));
            }
            if let Some(r) = reader(ct, &old) {
                return Err(SqlError::plan(format!("column '{old}' cannot be renamed: {r} reads it"), at(from)));
            }
            if partitions_by(ct, &old) {
                return Err(SqlError::plan(
                    format!("column '{old}' cannot be renamed: it is a partition key, the name of its directories"),
                    at(from),
                ));
            }
            ct.columns[i].name = to.clone();
            for k in ct.primary_key.iter_mut().filter(|k| normalize(k) == old) {
                *k = to.clone();
            }
        }
        AlterAction::DropColumns(columns) => {
            for name in columns {
                let i = index(ct, name, table)?;
                let n = normalize(name);
                if let Some(r) = reader(ct, &n) {
                    return Err(SqlError::plan(format!("column '{n}' cannot be dropped: {r} reads it"), at(name)));
                }
                if ct.primary_key.iter().any(|k| normalize(k) == n) {
                    return Err(SqlError::plan(format!("column '{n}' cannot be dropped: it is in the PRIMARY KEY"), at(name)));
                }
                if partitions_by(ct, &n) {
                    return Err(SqlError::plan(format!("column '{n}' cannot be dropped: it is a partition key"), at(name)));
                }
                ct.columns.remove(i);
            }
        }
        AlterAction::DropWatermark => {
            if ct.watermark.take().is_none() {
                return Err(SqlError::plan(format!("table '{table}' has no WATERMARK to drop"), None));
            }
        }
        AlterAction::DropPrimaryKey => {
            if ct.primary_key.is_empty() {
                return Err(SqlError::plan(format!("table '{table}' has no PRIMARY KEY to drop"), None));
            }
            ct.primary_key.clear();
        }
    }
    Ok(())
}

/// Whether the table is `PARTITIONED BY` the column `name`: its files
/// lie in directories named after it, so it stays as it is.
fn partitions_by(ct: &CreateTable, name: &str) -> bool {
    ct.partitioned_by.as_ref().is_some_and(|p| p.columns.iter().any(|k| normalize(k) == name))
}

fn add(ct: &mut CreateTable, c: &Component, table: &str) -> Result<()> {
    match c {
        Component::Column { spec, place } => {
            let n = normalize(&spec.name);
            if ct.columns.iter().any(|c| normalize(&c.name) == n) {
                return Err(SqlError::plan(
                    format!("column '{n}' already exists in table '{table}': MODIFY changes it"),
                    spec.position,
                ));
            }
            let i = place_of(ct, place.as_ref(), ct.columns.len(), table)?;
            ct.columns.insert(i, spec.clone());
        }
        Component::Watermark(w) => {
            if ct.watermark.is_some() {
                return Err(SqlError::plan(
                    format!("table '{table}' already has a WATERMARK: MODIFY WATERMARK FOR … changes it"),
                    w.position,
                ));
            }
            ct.watermark = Some(w.clone());
        }
        Component::PrimaryKey { columns, position } => {
            if !ct.primary_key.is_empty() {
                return Err(SqlError::plan(
                    format!("table '{table}' already has a PRIMARY KEY: MODIFY PRIMARY KEY changes it"),
                    *position,
                ));
            }
            for k in columns {
                index(ct, k, table)?;
            }
            ct.primary_key = columns.clone();
        }
    }
    Ok(())
}

fn modify(ct: &mut CreateTable, c: &Component, table: &str) -> Result<()> {
    match c {
        Component::Column { spec, place } => {
            let i = index(ct, &spec.name, table)?;
            ct.columns.remove(i);
            let to = match place {
                None => i,
                Some(p) => place_of(ct, Some(p), i, table)?,
            };
            ct.columns.insert(to, spec.clone());
        }
        Component::Watermark(w) => {
            if ct.watermark.is_none() {
                return Err(SqlError::plan(format!("table '{table}' has no WATERMARK: ADD one"), w.position));
            }
            ct.watermark = Some(w.clone());
        }
        Component::PrimaryKey { columns, position } => {
            if ct.primary_key.is_empty() {
                return Err(SqlError::plan(format!("table '{table}' has no PRIMARY KEY: ADD one"), *position));
            }
            for k in columns {
                index(ct, k, table)?;
            }
            ct.primary_key = columns.clone();
        }
    }
    Ok(())
}

/// Where a column goes: first, after another, or at `default`.
fn place_of(ct: &CreateTable, place: Option<&Place>, default: usize, table: &str) -> Result<usize> {
    Ok(match place {
        None => default,
        Some(Place::First) => 0,
        Some(Place::After(c)) => index(ct, c, table)? + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;
    use crate::statement::WeirStatement;

    fn table(sql: &str) -> CreateTable {
        match parse_script(sql).unwrap().remove(0).statement {
            WeirStatement::CreateTable(ct) => ct,
            other => panic!("{other:?}"),
        }
    }

    fn altered(ct: &CreateTable, sql: &str) -> Result<CreateTable> {
        let WeirStatement::AlterTable(a) = parse_script(sql).unwrap().remove(0).statement else { panic!() };
        let mut ct = ct.clone();
        apply(&mut ct, &a.action, "t")?;
        Ok(ct)
    }

    fn columns(ct: &CreateTable) -> Vec<String> {
        ct.columns.iter().map(|c| c.name.value.clone()).collect()
    }

    #[test]
    fn schema_changes_rewrite_the_declaration() {
        let ct = table("CREATE TABLE t (a INT, b BIGINT, ts TIMESTAMP(3), c AS a + 1, WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen')");
        assert_eq!(columns(&altered(&ct, "ALTER TABLE t ADD (x INT FIRST, y INT AFTER b, z INT)").unwrap()), ["x", "a", "b", "y", "ts", "c", "z"]);
        assert_eq!(columns(&altered(&ct, "ALTER TABLE t MODIFY b DOUBLE FIRST").unwrap()), ["b", "a", "ts", "c"]);
        assert_eq!(columns(&altered(&ct, "ALTER TABLE t RENAME b TO bb").unwrap()), ["a", "bb", "ts", "c"]);
        assert_eq!(columns(&altered(&ct, "ALTER TABLE t DROP (b, c)").unwrap()), ["a", "ts"]);
        assert!(altered(&ct, "ALTER TABLE t DROP WATERMARK").unwrap().watermark.is_none());
        let o = altered(&ct, "ALTER TABLE t SET ('number-of-rows' = '5')").unwrap().options;
        assert_eq!(o["number-of-rows"], "5");
        assert!(altered(&ct, "ALTER TABLE t RESET ('number-of-rows')").unwrap().options.get("number-of-rows").is_none());
    }

    #[test]
    fn bad_schema_changes_say_what_and_where() {
        let ct = table("CREATE TABLE t (a INT, b BIGINT, ts TIMESTAMP(3), c AS a + 1, WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen')");
        for (sql, needle, column) in [
            ("ALTER TABLE t ADD a INT", "column 'a' already exists", Some(19)),
            ("ALTER TABLE t ADD x INT AFTER nope", "column 'nope' not found in table 't'", Some(31)),
            ("ALTER TABLE t MODIFY nope INT", "column 'nope' not found", Some(22)),
            ("ALTER TABLE t DROP ts", "column 'ts' cannot be dropped: the WATERMARK reads it", Some(20)),
            ("ALTER TABLE t DROP a", "computed column 'c' reads it", Some(20)),
            ("ALTER TABLE t RENAME a TO b", "column 'b' already exists", Some(27)),
            ("ALTER TABLE t ADD WATERMARK FOR b AS b", "already has a WATERMARK", Some(19)),
            ("ALTER TABLE t RESET ('connector')", "'connector' cannot be RESET", Some(22)),
            ("ALTER TABLE t DROP PRIMARY KEY", "has no PRIMARY KEY", None),
        ] {
            let e = altered(&ct, sql).unwrap_err();
            assert!(e.to_string().contains(needle), "{sql}: {e}");
            assert_eq!(e.position().map(|p| p.column), column, "{sql}: {e}");
        }
    }

    #[test]
    fn the_ddl_written_back_declares_the_same_table() {
        let ct = table("CREATE TABLE t (a INT NOT NULL, o BIGINT METADATA FROM 'offset' VIRTUAL, c AS a + 1, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND, PRIMARY KEY (a) NOT ENFORCED) WITH ('connector' = 'datagen', 'x' = 'it''s')");
        let ddl = ddl::create_table(&ct);
        let again = table(&ddl);
        assert_eq!(ddl::create_table(&again), ddl);
        assert_eq!(again.options["x"], "it's");
        assert_eq!(columns(&again), ["a", "o", "c", "ts"]);
    }

    #[test]
    fn a_partitioned_table_keeps_its_partition_keys() {
        let ct = table("CREATE TABLE t (a INT, dt STRING, hm STRING) PARTITIONED BY (dt, hm) WITH ('connector' = 'filesystem')");
        let set = altered(&ct, "ALTER TABLE t SET ('format' = 'csv')").unwrap();
        let again = table(&ddl::create_table(&set));
        let keys = |ct: &CreateTable| -> Vec<String> {
            ct.partitioned_by.iter().flat_map(|p| p.columns.iter().map(|k| k.value.clone())).collect()
        };
        assert_eq!(keys(&again), ["dt", "hm"]);
        assert_eq!(columns(&altered(&ct, "ALTER TABLE t ADD b INT").unwrap()), ["a", "dt", "hm", "b"]);
        for (sql, needle, column) in [
            ("ALTER TABLE t DROP hm", "column 'hm' cannot be dropped: it is a partition key", 20),
            ("ALTER TABLE t RENAME dt TO day", "column 'dt' cannot be renamed: it is a partition key", 22),
        ] {
            let e = altered(&ct, sql).unwrap_err();
            assert!(e.to_string().contains(needle), "{sql}: {e}");
            assert_eq!(e.position().map(|p| p.column), Some(column), "{sql}: {e}");
        }
    }
}
