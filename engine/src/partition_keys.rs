//! The `PARTITION BY` of a keyed operator (a ranking, an OVER window): its
//! expressions evaluated per batch, encoded in arrow's row format to index
//! partitions, and decoded back into columns when a checkpoint writes the
//! keys of partitions that hold no rows of their own.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Field, SchemaRef};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::physical_plan::PhysicalExpr;

use crate::error::{Result, ResultExt};
use crate::operators::evaluate::columns;

/// A `PARTITION BY` over rows of one schema; without expressions every row
/// is in one partition, whose key is empty.
pub struct PartitionKeys {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    converter: Option<RowConverter>,
    name: String,
}

impl PartitionKeys {
    /// The keys of `exprs` over rows of `input`, for operator `name`.
    pub fn new(exprs: &[Arc<dyn PhysicalExpr>], input: &SchemaRef, name: &str) -> Result<Self> {
        let ctx = || format!("{name}: partition keys");
        let converter = match exprs.is_empty() {
            true => None,
            false => {
                let fields = exprs
                    .iter()
                    .map(|e| e.data_type(input).map(SortField::new))
                    .collect::<datafusion::error::Result<Vec<_>>>()
                    .context(ctx)?;
                Some(RowConverter::new(fields).context(ctx)?)
            }
        };
        Ok(Self {
            exprs: exprs.to_vec(),
            converter,
            name: name.to_string(),
        })
    }

    /// The same keys over rows of `input` with an encoder of their own: a
    /// snapshot's job evaluates them off the task loop (arrow's
    /// `RowConverter` cannot be cloned).
    pub fn again(&self, input: &SchemaRef) -> Result<Self> {
        Self::new(&self.exprs, input, &self.name)
    }

    /// The key columns of `rows` (how the exchange and a checkpoint's key
    /// groups see them).
    pub fn columns(&self, rows: &RecordBatch) -> Result<Vec<ArrayRef>> {
        columns(&self.exprs, rows).context(|| format!("{}: partition keys", self.name))
    }

    /// The encoded keys of `rows`; `None` without `PARTITION BY`.
    pub fn encode(&self, rows: &RecordBatch) -> Result<Option<Rows>> {
        let Some(c) = &self.converter else { return Ok(None) };
        let columns = self.columns(rows)?;
        Ok(Some(
            c.convert_columns(&columns)
                .context(|| format!("{}: partition keys", self.name))?,
        ))
    }

    /// Keys stored as columns (by [`PartitionKeys::decode`]), encoded again.
    pub fn encode_columns(&self, columns: &[ArrayRef]) -> Result<Option<Rows>> {
        let Some(c) = &self.converter else { return Ok(None) };
        Ok(Some(
            c.convert_columns(columns)
                .context(|| format!("{}: stored partition keys", self.name))?,
        ))
    }

    /// Encoded keys as columns `k0`, `k1`, … (none without `PARTITION BY`).
    pub fn decode<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) -> Result<(Vec<ArrayRef>, Vec<Field>)> {
        let Some(c) = &self.converter else {
            return Ok((Vec::new(), Vec::new()));
        };
        let parser = c.parser();
        let columns = c
            .convert_rows(keys.map(|k| parser.parse(k)))
            .context(|| format!("{}: partition keys", self.name))?;
        let fields = columns
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("k{i}"), c.data_type().clone(), true))
            .collect();
        Ok((columns, fields))
    }

    /// The number of key columns.
    pub fn len(&self) -> usize {
        self.exprs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exprs.is_empty()
    }
}
