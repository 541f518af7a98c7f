//! The statements the sink writes with, and how a batch of changes goes
//! through them: rows to write in chunks of `sink.buffer-flush.max-rows`
//! through one `INSERT … SELECT … FROM unnest(…)` (with `ON CONFLICT (key)
//! DO UPDATE` on a table with a primary key), rows to delete through one
//! `DELETE … USING unnest(…)`. The changes hold one row per key
//! (`collapse.rs`), so deletes and writes touch different rows and their
//! order does not matter.

use datafusion::arrow::array::{AsArray, Int8Array, RecordBatch};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{filter_record_batch, not};
use datafusion::arrow::datatypes::{Int8Type, Schema};
use tokio_postgres::types::ToSql;
use weir_engine::changelog::RowKind;

use super::failure::{Failure, classify};
use super::options::{Connection, ident};
use super::params::{self, Param};

/// The SQL text of the sink's statements for one table.
#[derive(Debug, Clone)]
pub(super) struct Statements {
    /// Writes rows: an insert, or an upsert on the primary key.
    pub write: String,
    /// Deletes rows by primary key; `None` for an append-only table.
    pub delete: Option<String>,
    /// The primary key's columns (empty: append only).
    pub key: Vec<usize>,
}

/// `unnest($1::int8[], …) AS d(c0, …)` over `columns`, and the element
/// expression of each (cast where the parameter is text).
fn unnest(schema: &Schema, columns: &[usize]) -> (String, Vec<String>) {
    let mut arrays = Vec::new();
    let mut exprs = Vec::new();
    for (n, c) in columns.iter().enumerate() {
        let Param { array_type, cast } = params::param(schema.field(*c).data_type()).unwrap_or(Param {
            array_type: "text[]",
            cast: None,
        });
        arrays.push(format!("${}::{array_type}", n + 1));
        exprs.push(match cast {
            Some(t) => format!("d.c{n}::{t}"),
            None => format!("d.c{n}"),
        });
    }
    let aliases: Vec<String> = (0..columns.len()).map(|n| format!("c{n}")).collect();
    (
        format!("unnest({}) AS d({})", arrays.join(", "), aliases.join(", ")),
        exprs,
    )
}

impl Statements {
    /// The statements of `table` with columns `schema` and primary key
    /// `key` (column indices).
    pub(super) fn new(table: &Connection, schema: &Schema, key: &[usize]) -> Self {
        let name = table.quoted_table();
        let all: Vec<usize> = (0..schema.fields().len()).collect();
        let columns: Vec<String> = schema.fields().iter().map(|f| ident(f.name())).collect();
        let (rows, exprs) = unnest(schema, &all);
        let mut write = format!(
            "INSERT INTO {name} ({}) SELECT {} FROM {rows}",
            columns.join(", "),
            exprs.join(", ")
        );
        if !key.is_empty() {
            let keys: Vec<&str> = key.iter().map(|k| columns[*k].as_str()).collect();
            let rest: Vec<String> = all
                .iter()
                .filter(|c| !key.contains(c))
                .map(|c| format!("{0} = EXCLUDED.{0}", columns[*c]))
                .collect();
            write.push_str(&format!(" ON CONFLICT ({}) ", keys.join(", ")));
            write.push_str(&match rest.is_empty() {
                true => "DO NOTHING".to_string(),
                false => format!("DO UPDATE SET {}", rest.join(", ")),
            });
        }
        let delete = (!key.is_empty()).then(|| {
            let (rows, exprs) = unnest(schema, key);
            let matches: Vec<String> = key
                .iter()
                .zip(&exprs)
                .map(|(k, e)| format!("w.{} = {e}", columns[*k]))
                .collect();
            format!("DELETE FROM {name} AS w USING {rows} WHERE {}", matches.join(" AND "))
        });
        Self {
            write,
            delete,
            key: key.to_vec(),
        }
    }

    /// Prepares the statements on `client` (once per connection).
    pub(super) async fn prepare(&self, client: &tokio_postgres::Client) -> Result<Prepared, Failure> {
        let write = client.prepare(&self.write).await.map_err(classify)?;
        let delete = match &self.delete {
            Some(d) => Some(client.prepare(d).await.map_err(classify)?),
            None => None,
        };
        Ok(Prepared { write, delete })
    }

    /// Writes `changes` (the table's columns and the changelog column: `+I`
    /// rows are written, `-D` rows deleted) inside the open transaction
    /// `tx`, `max_rows` rows per statement.
    pub(super) async fn apply(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        prepared: &Prepared,
        changes: &RecordBatch,
        max_rows: usize,
    ) -> Result<(), Failure> {
        let op = changes.num_columns() - 1;
        let visible: Vec<usize> = (0..op).collect();
        let writes = match &prepared.delete {
            Some(delete) => {
                let kinds = changes.column(op).as_primitive::<Int8Type>();
                let deleted = eq(kinds, &Int8Array::new_scalar(RowKind::Delete as i8)).map_err(data)?;
                let deletes = filter_record_batch(changes, &deleted).map_err(data)?;
                run(tx, delete, &deletes.project(&self.key).map_err(data)?, max_rows).await?;
                filter_record_batch(changes, &not(&deleted).map_err(data)?).map_err(data)?
            }
            None => changes.clone(),
        };
        run(tx, &prepared.write, &writes.project(&visible).map_err(data)?, max_rows).await
    }
}

/// The statements prepared on one connection.
pub(super) struct Prepared {
    write: tokio_postgres::Statement,
    delete: Option<tokio_postgres::Statement>,
}

/// Rows that cannot be sent (a type the sink does not map).
fn data(e: impl std::fmt::Display) -> Failure {
    Failure::Final(e.to_string())
}

/// Runs `statement` over `rows`, `max_rows` at a time, one array parameter
/// per column.
async fn run(
    tx: &tokio_postgres::Transaction<'_>,
    statement: &tokio_postgres::Statement,
    rows: &RecordBatch,
    max_rows: usize,
) -> Result<(), Failure> {
    let mut offset = 0;
    while offset < rows.num_rows() {
        let chunk = rows.slice(offset, max_rows.min(rows.num_rows() - offset));
        let values = chunk
            .columns()
            .iter()
            .map(params::value)
            .collect::<Result<Vec<_>, String>>()
            .map_err(Failure::Final)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect();
        tx.execute(statement, &refs).await.map_err(classify)?;
        offset += chunk.num_rows();
    }
    Ok(())
}
