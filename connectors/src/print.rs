//! The `print` connector: one line a row on standard output (or error), as
//! Flink's print sink writes them, for watching a query's results; nested
//! values as Flink writes them (`nested.rs`).

mod nested;

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use weir_engine::changelog::{self, RowKind};
use weir_engine::error::{Result, ResultExt};
use weir_engine::sink::{SinkConnector, SinkWriter};

use crate::error::ConnectorError;
use crate::options::Options;
use crate::temporal::{Layout, format_timestamps};
use crate::values;

/// Builds the sink from `'print-identifier'` and `'standard-error'`. Any
/// column type prints, via arrow's display formatting.
pub(crate) fn create(
    options: &Options,
    schema: SchemaRef,
) -> Result<Arc<dyn SinkConnector>, ConnectorError> {
    options.check_keys(&["print-identifier", "standard-error"])?;
    Ok(Arc::new(PrintSink {
        schema,
        identifier: options.get("print-identifier").map(str::to_string),
        standard_error: options
            .parse("standard-error", values::boolean)?
            .unwrap_or(false),
    }))
}

#[derive(Debug)]
struct PrintSink {
    schema: SchemaRef,
    identifier: Option<String>,
    standard_error: bool,
}

impl SinkConnector for PrintSink {
    fn describe(&self) -> String {
        let target = if self.standard_error {
            "stderr"
        } else {
            "stdout"
        };
        match &self.identifier {
            Some(id) => format!("print to {target} print-identifier={id}"),
            None => format!("print to {target}"),
        }
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Prints each row's kind (`+I`, `-U`, `+U`, `-D`) as Flink does.
    fn accepts_changes(&self) -> bool {
        true
    }

    fn open(
        &self,
        _job_id: &str,
        subtask: usize,
        parallelism: usize,
    ) -> Result<Box<dyn SinkWriter>> {
        let out: Box<dyn AsyncWrite + Send + Unpin> = if self.standard_error {
            Box::new(tokio::io::stderr())
        } else {
            Box::new(tokio::io::stdout())
        };
        Ok(Box::new(PrintWriter {
            prefix: line_prefix(self.identifier.as_deref(), subtask, parallelism),
            out,
            text: String::new(),
        }))
    }
}

/// Flink's `PrintSinkOutputWriter` prefix: `id:3> `, `3> ` or `id> `, or
/// nothing for one unnamed subtask.
fn line_prefix(identifier: Option<&str>, subtask: usize, parallelism: usize) -> String {
    let mut prefix = identifier.unwrap_or_default().to_string();
    if parallelism > 1 {
        if !prefix.is_empty() {
            prefix.push(':');
        }
        prefix.push_str(&(subtask + 1).to_string());
    }
    if !prefix.is_empty() {
        prefix.push_str("> ");
    }
    prefix
}

/// Appends one `<prefix>+I[v1, v2, …]` line per row of `batch` to `out`
/// (the row's kind for a changelog batch), with NULL as `null` like Flink's
/// row printing.
fn format_rows(batch: &RecordBatch, prefix: &str, out: &mut String) -> Result<(), ArrowError> {
    let options = FormatOptions::default().with_null("null");
    let (batch, kinds) = changelog::split(batch);
    let batch = &format_timestamps(&batch, Layout::JavaLocal)?;
    // Nested columns are written value by value; others by arrow.
    let columns = batch
        .columns()
        .iter()
        .map(|c| match nested::is_nested(c.data_type()) {
            true => Ok(None),
            false => ArrayFormatter::try_new(c.as_ref(), &options).map(Some),
        })
        .collect::<Result<Vec<_>, _>>()?;
    for row in 0..batch.num_rows() {
        out.push_str(prefix);
        out.push_str(kinds.as_ref().map_or(RowKind::Insert, |k| k.get(row)).short());
        out.push('[');
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match column {
                Some(formatter) => formatter.value(row).write(out)?,
                None => nested::write(batch.column(i), row, &options, out)?,
            }
        }
        out.push_str("]\n");
    }
    Ok(())
}

struct PrintWriter {
    prefix: String,
    out: Box<dyn AsyncWrite + Send + Unpin>,
    /// The current batch's lines, reused between batches.
    text: String,
}

#[async_trait::async_trait]
impl SinkWriter for PrintWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.text.clear();
        format_rows(&batch, &self.prefix, &mut self.text)
            .context(|| "print: formatting rows".into())?;
        // One write per batch keeps a batch's lines together when several
        // subtasks print at once.
        self.out
            .write_all(self.text.as_bytes())
            .await
            .context(|| "print: writing".into())?;
        self.out.flush().await.context(|| "print: flushing".into())
    }

    async fn finish(&mut self) -> Result<()> {
        self.out.flush().await.context(|| "print: flushing".into())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        ArrayRef, Decimal128Array, Int64Array, StringArray, TimestampMillisecondArray,
    };
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    #[test]
    fn prefixes_follow_flink() {
        assert_eq!(line_prefix(None, 0, 1), "");
        assert_eq!(line_prefix(None, 2, 4), "3> ");
        assert_eq!(line_prefix(Some("bids"), 0, 1), "bids> ");
        assert_eq!(line_prefix(Some("bids"), 1, 2), "bids:2> ");
    }

    #[test]
    fn rows_print_like_flink() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("price", DataType::Decimal128(10, 2), true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), None])),
            Arc::new(StringArray::from(vec![Some("a b"), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(150), None])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_767_225_610_000),
                Some(1_767_225_610_123),
            ])),
        ];
        let batch = RecordBatch::try_new(schema, columns).unwrap();
        let mut out = String::new();
        format_rows(&batch, "2> ", &mut out).unwrap();
        assert_eq!(
            out,
            "2> +I[1, a b, 1.50, 2026-01-01T00:00:10]\n2> +I[null, null, null, 2026-01-01T00:00:10.123]\n"
        );
    }

    /// ROW as a nested `+I[…]`, MAP as `{k=v}`, ARRAY as `[…]`, a
    /// timestamp inside them as at the top, NULLs as `null` at every level.
    #[test]
    fn nested_values_print_like_flink() {
        use datafusion::arrow::array::{Array, Int32Array, ListArray, MapArray, StructArray};
        use datafusion::arrow::buffer::OffsetBuffer;
        use datafusion::arrow::datatypes::{Fields, Int32Type};
        let row = StructArray::from(vec![
            (Arc::new(Field::new("a", DataType::Int32, true)), Arc::new(Int32Array::from(vec![Some(1), None])) as ArrayRef),
            (
                Arc::new(Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true)),
                Arc::new(TimestampMillisecondArray::from(vec![Some(1_767_225_600_000), None])) as ArrayRef,
            ),
        ]);
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), None, Some(3)]), None]);
        let entries = StructArray::from(vec![
            (Arc::new(Field::new("key", DataType::Utf8, false)), Arc::new(StringArray::from(vec!["k", "j"])) as ArrayRef),
            (Arc::new(Field::new("value", DataType::Int32, true)), Arc::new(Int32Array::from(vec![Some(2), None])) as ArrayRef),
        ]);
        let entries_field = Arc::new(Field::new("entries", DataType::Struct(Fields::from(entries.fields().to_vec())), false));
        let map = MapArray::new(entries_field, OffsetBuffer::new(vec![0, 2, 2].into()), entries, None, false);
        let schema = Arc::new(Schema::new(vec![
            Field::new("r", row.data_type().clone(), true),
            Field::new("l", list.data_type().clone(), true),
            Field::new("m", map.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(row), Arc::new(list), Arc::new(map)]).unwrap();
        let mut out = String::new();
        format_rows(&batch, "", &mut out).unwrap();
        assert_eq!(
            out,
            "+I[+I[1, 2026-01-01T00:00], [1, null, 3], {k=2, j=null}]\n+I[+I[null, null], null, {}]\n"
        );
    }
}
