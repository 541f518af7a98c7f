//! `PARTITIONED BY` of `CREATE TABLE`, checked where the statement can
//! point at the mistake (a column that is not a physical column of the
//! table, named twice, every column named, a connector that has no
//! partitions); the connector then lays the partitions out.

use std::collections::BTreeSet;

use crate::error::{Position, Result, SqlError};
use crate::planner::table::normalize;
use crate::statement::{ColumnKind, CreateTable};

/// The connector whose tables can be partitioned (Flink's Kafka table, for
/// one, refuses `PARTITIONED BY`).
const PARTITIONED_CONNECTOR: &str = "filesystem";

/// The partition columns of `ct` (named `table`), in `PARTITIONED BY`
/// order; none without the clause.
pub fn partition_keys(ct: &CreateTable, table: &str) -> Result<Vec<String>> {
    let Some(partitioned) = &ct.partitioned_by else {
        return Ok(Vec::new());
    };
    if let Some(connector) = ct.options.get("connector")
        && connector != PARTITIONED_CONNECTOR
    {
        return Err(SqlError::plan(
            format!(
                "table '{table}': PARTITIONED BY needs a '{PARTITIONED_CONNECTOR}' table; connector '{connector}' has no partitions"
            ),
            partitioned.position,
        ));
    }
    let mut keys = Vec::with_capacity(partitioned.columns.len());
    let mut seen = BTreeSet::new();
    for ident in &partitioned.columns {
        let name = normalize(ident);
        let at = Position::of(ident.span).or(partitioned.position);
        let Some(column) = ct.columns.iter().find(|c| normalize(&c.name) == name) else {
            let physical: Vec<String> = ct
                .columns
                .iter()
                .filter(|c| matches!(c.kind, ColumnKind::Physical { .. }))
                .map(|c| normalize(&c.name))
                .collect();
            return Err(SqlError::plan(
                format!(
                    "PARTITIONED BY '{name}': no such column in table '{table}' (its columns: {})",
                    physical.join(", ")
                ),
                at,
            ));
        };
        let kind = match column.kind {
            ColumnKind::Physical { .. } => None,
            ColumnKind::Computed(_) => Some("a computed column"),
            ColumnKind::Metadata { .. } => Some("a METADATA column"),
        };
        if let Some(kind) = kind {
            return Err(SqlError::plan(
                format!(
                    "PARTITIONED BY '{name}': {kind} cannot be a partition column (partition columns are physical columns)"
                ),
                at,
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(SqlError::plan(format!("PARTITIONED BY names '{name}' twice"), at));
        }
        keys.push(name);
    }
    let physical = ct
        .columns
        .iter()
        .filter(|c| matches!(c.kind, ColumnKind::Physical { .. }))
        .count();
    if keys.len() == physical {
        return Err(SqlError::plan(
            format!(
                "table '{table}': PARTITIONED BY names every column; its part files hold the columns that are not \
                 partition columns, so at least one is needed"
            ),
            partitioned.position,
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;
    use crate::statement::WeirStatement;

    fn keys(sql: &str) -> Result<Vec<String>> {
        let WeirStatement::CreateTable(ct) = parse_script(sql)?.remove(0).statement else {
            panic!("{sql}")
        };
        partition_keys(&ct, "t")
    }

    const FS: &str = "WITH ('connector' = 'filesystem', 'path' = '/tmp/t', 'format' = 'csv')";

    #[test]
    fn nexmark_q10_declares_two_partition_columns() {
        let sql = format!(
            "CREATE TABLE fs_sink (auction BIGINT, bidder BIGINT, price BIGINT, dateTime TIMESTAMP(3), extra VARCHAR,\n  dt STRING, hm STRING) PARTITIONED BY (dt, hm) {FS}"
        );
        assert_eq!(keys(&sql).unwrap(), vec!["dt", "hm"]);
        assert!(keys(&format!("CREATE TABLE t (a INT) {FS}")).unwrap().is_empty());
    }

    #[test]
    fn mistakes_are_placed_on_the_column() {
        let e = keys(&format!("CREATE TABLE t (a INT, b STRING)\nPARTITIONED BY (a, c) {FS}")).unwrap_err();
        assert!(
            e.to_string()
                .contains("'c': no such column in table 't' (its columns: a, b)"),
            "{e}"
        );
        assert_eq!(e.position(), Some(Position { line: 2, column: 20 }));
        let e = keys(&format!("CREATE TABLE t (a INT, b STRING) PARTITIONED BY (b, b) {FS}")).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert_eq!(e.position(), Some(Position { line: 1, column: 53 }));
        let e = keys(&format!("CREATE TABLE t (a INT, b AS a + 1) PARTITIONED BY (b) {FS}")).unwrap_err();
        assert!(e.to_string().contains("computed column"), "{e}");
        let e = keys(&format!("CREATE TABLE t (a INT, b STRING) PARTITIONED BY (a, b) {FS}")).unwrap_err();
        assert!(e.to_string().contains("every column"), "{e}");
        assert_eq!(e.position(), Some(Position { line: 1, column: 34 }));
        let e = keys("CREATE TABLE t (a INT, b STRING) PARTITIONED BY (b) WITH ('connector' = 'kafka', 'topic' = 't')")
            .unwrap_err();
        assert!(e.to_string().contains("connector 'kafka' has no partitions"), "{e}");
        assert_eq!(e.position(), Some(Position { line: 1, column: 34 }));
        let e = parse_script("CREATE TABLE t (a INT) PARTITIONED (a) WITH ()").unwrap_err();
        assert!(matches!(e, SqlError::Syntax { .. }), "{e}");
    }
}
