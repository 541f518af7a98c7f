//! The `upsert-kafka` source's changelog: Flink's `ChangelogNormalize`
//! in the reader. A compacted topic holds each key's latest row (a
//! message without a value deletes the key); the reader keeps the last
//! row of every key of its partitions and turns each message into the
//! change it makes: `+I` for a new key, `-U`/`+U` for a new row of a
//! known key, `-D` for a tombstone of a known key, nothing for a row equal
//! to the key's current one or a tombstone of an unknown key.
//!
//! Keys are the message keys' bytes, as Kafka's compaction compares them.
//! The rows are not checkpointed: the topic holds them. A reader resumed
//! from a checkpoint reads its partitions again from their beginning up to
//! the checkpoint's offsets to rebuild them, without emitting those
//! changes (`replay`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int8Array, RecordBatch};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use weir_engine::EngineError;
use weir_engine::changelog::{RowKind, op_field};
use weir_engine::error::Result;

/// One message of a batch, in offset order.
pub(crate) struct Upsert {
    pub(crate) offset: i64,
    /// The message key (`None`: a message without one, keyed as empty).
    pub(crate) key: Option<Vec<u8>>,
    /// The line of the batch's chunk its value is; `None` for a tombstone.
    pub(crate) line: Option<usize>,
}

/// The latest row of each key of one reader's partitions.
pub(crate) struct Normalizer {
    converter: RowConverter,
    /// The rows made: the table's columns and the changelog column.
    output: SchemaRef,
    latest: HashMap<Vec<u8>, OwnedRow>,
    /// Per partition resumed from a checkpoint, the offset before which
    /// messages only rebuild `latest`.
    replay: BTreeMap<usize, i64>,
}

impl Normalizer {
    /// For rows of `schema`; `replay` as the reader resumes.
    pub(crate) fn new(schema: &Schema, replay: BTreeMap<usize, i64>) -> Result<Self> {
        let fields = schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields).map_err(|e| EngineError::Connector(format!("upsert-kafka: {e}")))?;
        let mut output: Vec<_> = schema.fields().iter().cloned().collect();
        output.push(Arc::new(op_field()));
        Ok(Self {
            converter,
            output: Arc::new(Schema::new(output)),
            latest: HashMap::new(),
            replay,
        })
    }

    /// The offset partition `partition` replays up to (exclusive), if it
    /// replays.
    pub(crate) fn replays_until(&self, partition: usize) -> Option<i64> {
        self.replay.get(&partition).copied()
    }

    /// The changes `messages` of `partition` make, whose values decoded to
    /// `rows` (row `i` from chunk line `lines[i]`; lines missing there were
    /// bad records, and change nothing).
    pub(crate) fn changes(
        &mut self,
        partition: usize,
        rows: &RecordBatch,
        lines: &[usize],
        messages: &[Upsert],
    ) -> Result<RecordBatch> {
        let error = |e: datafusion::arrow::error::ArrowError| EngineError::Connector(format!("upsert-kafka: {e}"));
        let encoded = self.converter.convert_columns(rows.columns()).map_err(error)?;
        let mut row_of_line: HashMap<usize, usize> = HashMap::with_capacity(lines.len());
        row_of_line.extend(lines.iter().enumerate().map(|(row, line)| (*line, row)));
        let replay_until = self.replays_until(partition).unwrap_or(i64::MIN);
        // (0: a row of `rows`, 1: a previous row in `olds`; its index).
        let mut picks: Vec<(usize, usize)> = Vec::new();
        let mut kinds: Vec<i8> = Vec::new();
        let mut olds: Vec<OwnedRow> = Vec::new();
        for m in messages {
            let emit = m.offset >= replay_until;
            let key = m.key.as_deref().unwrap_or_default();
            match m.line {
                Some(line) => {
                    let Some(&row) = row_of_line.get(&line) else { continue };
                    let new = encoded.row(row);
                    match self.latest.get_mut(key) {
                        Some(old) if old.row() == new => {}
                        Some(old) => {
                            let previous = std::mem::replace(old, new.owned());
                            if emit {
                                picks.push((1, olds.len()));
                                olds.push(previous);
                                kinds.push(RowKind::UpdateBefore as i8);
                                picks.push((0, row));
                                kinds.push(RowKind::UpdateAfter as i8);
                            }
                        }
                        None => {
                            self.latest.insert(key.to_vec(), new.owned());
                            if emit {
                                picks.push((0, row));
                                kinds.push(RowKind::Insert as i8);
                            }
                        }
                    }
                }
                None => {
                    if let Some(previous) = self.latest.remove(key)
                        && emit
                    {
                        picks.push((1, olds.len()));
                        olds.push(previous);
                        kinds.push(RowKind::Delete as i8);
                    }
                }
            }
        }
        if messages.last().is_some_and(|m| m.offset + 1 >= replay_until) {
            self.replay.remove(&partition);
        }
        let previous = self
            .converter
            .convert_rows(olds.iter().map(|r| r.row()))
            .map_err(error)?;
        let mut columns: Vec<ArrayRef> = rows
            .columns()
            .iter()
            .zip(&previous)
            .map(|(new, old)| interleave(&[new.as_ref(), old.as_ref()], &picks))
            .collect::<std::result::Result<_, _>>()
            .map_err(error)?;
        columns.push(Arc::new(Int8Array::from(kinds)));
        RecordBatch::try_new(Arc::clone(&self.output), columns).map_err(error)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
    use weir_engine::changelog::split;

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ])
    }

    /// Messages of keys and values (`None`: a tombstone) at offsets 0, 1,
    /// …, and the rows the values decode to.
    fn batch(messages: &[(&str, Option<i64>)]) -> (RecordBatch, Vec<usize>, Vec<Upsert>) {
        let values: Vec<(usize, &str, i64)> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, (k, v))| v.map(|v| (i, *k, v)))
            .collect();
        let rows = RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(StringArray::from_iter_values(values.iter().map(|v| v.1))),
                Arc::new(Int64Array::from_iter_values(values.iter().map(|v| v.2))),
            ],
        )
        .unwrap();
        let mut lines = Vec::new();
        let upserts = messages
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Upsert {
                offset: i as i64,
                key: Some(k.as_bytes().to_vec()),
                line: v.map(|_| {
                    lines.push(lines.len());
                    lines.len() - 1
                }),
            })
            .collect();
        (rows, lines, upserts)
    }

    fn changes(batch: &RecordBatch) -> Vec<String> {
        let (visible, kinds) = split(batch);
        let kinds = kinds.unwrap();
        let keys = visible.column(0).as_string::<i32>();
        let values = visible.column(1).as_primitive::<Int64Type>();
        (0..visible.num_rows())
            .map(|i| format!("{}{}={}", kinds.get(i).short(), keys.value(i), values.value(i)))
            .collect()
    }

    #[test]
    fn upserts_and_tombstones_become_the_changes_they_make() {
        let messages = [
            ("a", Some(1)),
            ("b", Some(2)),
            ("a", Some(1)),
            ("a", Some(3)),
            ("b", None),
            ("c", None),
        ];
        let (rows, lines, upserts) = batch(&messages);
        let mut n = Normalizer::new(&schema(), BTreeMap::new()).unwrap();
        let out = n.changes(0, &rows, &lines, &upserts).unwrap();
        // a new key, another, the same row again (nothing), a new row of a
        // known key, a tombstone of a known key, of an unknown one (nothing).
        assert_eq!(changes(&out), ["+Ia=1", "+Ib=2", "-Ua=1", "+Ua=3", "-Db=2"]);
    }

    #[test]
    fn a_resumed_reader_rebuilds_its_rows_without_emitting_them() {
        let messages = [("a", Some(1)), ("b", Some(2)), ("a", Some(5)), ("b", None), ("a", None)];
        let (rows, lines, upserts) = batch(&messages);
        // The checkpoint covered offsets 0..3.
        let mut n = Normalizer::new(&schema(), BTreeMap::from([(0, 3)])).unwrap();
        assert_eq!(n.replays_until(0), Some(3));
        let out = n.changes(0, &rows, &lines, &upserts).unwrap();
        assert_eq!(changes(&out), ["-Db=2", "-Da=5"]);
        assert_eq!(n.replays_until(0), None);
    }
}
