//! Reading the key's columns from each record's key, for tables whose value
//! leaves them out (`'value.fields-include' = 'EXCEPT_KEY'`): the keys of a
//! batch's records are decoded with the key format, beside the values, and
//! the two are put together in the table's column order. A record without
//! a key has NULL key columns; a record whose key or value does not decode
//! is bad as a whole.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::EngineError;
use weir_engine::error::Result;

use super::layout::RecordLayout;
use crate::filesystem::decode::{DecodedChunk, RecordDecoder};
use crate::filesystem::format::Format;
use crate::filesystem::lines::LineChunk;

/// The key columns of an `EXCEPT_KEY` table and how to put rows together.
pub(super) struct KeyColumns {
    decoder: RecordDecoder,
    /// What stands for a missing key: a record of NULLs in the key format.
    missing: Vec<u8>,
    /// Positions of the key's columns among the record columns.
    key: Vec<usize>,
    /// Positions of the value's columns among the record columns.
    value: Vec<usize>,
    /// The record columns.
    record: SchemaRef,
    /// Whether a key that does not decode is skipped (with its record)
    /// rather than failing the job: `'key.<format>.ignore-parse-errors'`,
    /// or the job reports bad records.
    tolerant: bool,
}

impl KeyColumns {
    /// For `layout` over the record columns `record`, when the value does
    /// not hold every one of them.
    pub(super) fn new(layout: &RecordLayout, record: SchemaRef, report_bad_records: bool) -> Option<Self> {
        let key = layout.key.as_ref()?;
        if layout.value_is_whole(&record) {
            return None;
        }
        let missing = match &key.format {
            Format::Json(_) | Format::Changelog(_) => b"{}".to_vec(),
            Format::Csv(csv) => vec![csv.delimiter; key.columns.len().saturating_sub(1)],
        };
        Some(Self {
            decoder: RecordDecoder::new(key.format.clone(), Arc::new(key.schema.clone())),
            missing,
            key: key.columns.clone(),
            value: layout.value_columns.clone(),
            record,
            tolerant: report_bad_records || key.format.ignore_parse_errors(),
        })
    }

    /// Adds one record's key (or its absence) to `keys`.
    pub(super) fn push(&self, keys: &mut LineChunk, key: Option<&[u8]>, number: u64) {
        keys.push(key.unwrap_or(&self.missing), number);
    }

    /// The record columns of the records whose value decoded as `values`
    /// and whose key is in `keys` (the same records, in order).
    pub(super) fn merge(
        &self,
        values: DecodedChunk,
        keys: &LineChunk,
        path: &Path,
        partition: usize,
    ) -> Result<DecodedChunk> {
        let decoded = self.decoder.decode(keys, path, partition, self.tolerant)?;
        let all = keys.len();
        let value_lines = values.kept.clone().unwrap_or_else(|| (0..all).collect());
        let key_lines = decoded.kept.clone().unwrap_or_else(|| (0..all).collect());
        // The lines both decoded, and where each is in either batch.
        let (mut kept, mut in_values, mut in_keys) = (Vec::new(), Vec::new(), Vec::new());
        let (mut v, mut k) = (0, 0);
        while v < value_lines.len() && k < key_lines.len() {
            match value_lines[v].cmp(&key_lines[k]) {
                std::cmp::Ordering::Less => v += 1,
                std::cmp::Ordering::Greater => k += 1,
                std::cmp::Ordering::Equal => {
                    kept.push(value_lines[v]);
                    in_values.push(v as u32);
                    in_keys.push(k as u32);
                    (v, k) = (v + 1, k + 1);
                }
            }
        }
        let pick = |batch: &RecordBatch, rows: Vec<u32>| -> Result<Vec<ArrayRef>> {
            let rows = UInt32Array::from(rows);
            batch
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &rows, None))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| EngineError::Connector(format!("kafka: joining keys and values: {e}")))
        };
        let (value_columns, key_columns) = (pick(&values.batch, in_values)?, pick(&decoded.batch, in_keys)?);
        let mut columns: Vec<Option<ArrayRef>> = vec![None; self.record.fields().len()];
        for (place, column) in self
            .value
            .iter()
            .zip(value_columns)
            .chain(self.key.iter().zip(key_columns))
        {
            columns[*place] = Some(column);
        }
        let columns = columns
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| EngineError::Connector("kafka: a column is neither in the key nor the value".into()))?;
        let batch = RecordBatch::try_new(Arc::clone(&self.record), columns)
            .map_err(|e| EngineError::Connector(format!("kafka: joining keys and values: {e}")))?;
        let mut bad = values.bad;
        bad.extend(decoded.bad);
        let whole = kept.len() == all;
        Ok(DecodedChunk {
            batch,
            bad,
            kept: (!whole).then_some(kept),
        })
    }
}
