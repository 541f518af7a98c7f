//! A table's declaration written back as Flink's `CREATE TABLE`: the DDL
//! an altered table keeps (for `SHOW CREATE TABLE`, and as part of the
//! identity of the durable jobs that read or write it).

use std::fmt::Write;

use crate::statement::{ColumnKind, CreateTable};

/// `'value'` with its quotes doubled.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The `CREATE TABLE` statement declaring `ct`.
pub(super) fn create_table(ct: &CreateTable) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in &ct.columns {
        parts.push(match &c.kind {
            ColumnKind::Physical { data_type, not_null } => {
                format!("{} {data_type}{}", c.name, if *not_null { " NOT NULL" } else { "" })
            }
            ColumnKind::Computed(e) => format!("{} AS {e}", c.name),
            ColumnKind::Metadata { data_type, key, is_virtual } => {
                let mut s = format!("{} {data_type} METADATA", c.name);
                if let Some(k) = key {
                    let _ = write!(s, " FROM {}", quoted(k));
                }
                if *is_virtual {
                    s.push_str(" VIRTUAL");
                }
                s
            }
        });
    }
    if let Some(w) = &ct.watermark {
        parts.push(format!("WATERMARK FOR {} AS {}", w.column, w.expr));
    }
    if !ct.primary_key.is_empty() {
        let keys: Vec<String> = ct.primary_key.iter().map(|k| k.to_string()).collect();
        parts.push(format!("PRIMARY KEY ({}) NOT ENFORCED", keys.join(", ")));
    }
    let mut ddl = format!("CREATE TABLE {} (\n  {}\n)", ct.name, parts.join(",\n  "));
    if let Some(p) = &ct.partitioned_by {
        let keys: Vec<String> = p.columns.iter().map(|k| k.to_string()).collect();
        let _ = write!(ddl, " PARTITIONED BY ({})", keys.join(", "));
    }
    if !ct.options.is_empty() {
        let options: Vec<String> = ct.options.iter().map(|(k, v)| format!("{} = {}", quoted(k), quoted(v))).collect();
        let _ = write!(ddl, " WITH (\n  {}\n)", options.join(",\n  "));
    }
    ddl
}
