//! Grouped partial aggregates: group keys interned by DataFusion's
//! `GroupValues`, values folded by DataFusion's `GroupsAccumulator`s.
//!
//! This is the per-row work of a window aggregate, all of it done by
//! DataFusion's vectorised kernels; the window operator only decides which
//! rows go to which slice and when a window's groups are emitted.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};

use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::runtime::exchange::{key_groups, rows_by_key_group};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::GroupsAccumulatorAdapter;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::PhysicalExpr;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

/// One aggregate call of the query, e.g. `count(DISTINCT bidder) FILTER (WHERE …)`.
#[derive(Debug, Clone)]
pub struct AggregateCall {
    pub function: Arc<AggregateFunctionExpr>,
    pub filter: Option<Arc<dyn PhysicalExpr>>,
}

/// The group keys and aggregate calls of one windowed GROUP BY.
#[derive(Debug)]
pub struct Grouping {
    /// Group expressions other than the window columns.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Schema of the evaluated keys (empty for a global window aggregate).
    pub key_schema: SchemaRef,
    pub aggregates: Vec<AggregateCall>,
}

impl Grouping {
    pub fn new(
        keys: Vec<Arc<dyn PhysicalExpr>>,
        key_fields: Vec<Field>,
        aggregates: Vec<AggregateCall>,
    ) -> Self {
        Self {
            keys,
            key_schema: Arc::new(Schema::new(key_fields)),
            aggregates,
        }
    }

    /// Empty groups of this grouping's aggregates, keyed by columns the
    /// caller evaluates itself (`key_schema`), e.g. session bounds.
    pub fn new_groups_keyed_by(&self, key_schema: SchemaRef) -> DfResult<Groups> {
        self.groups(Some(key_schema))
    }

    /// A fresh, empty set of groups.
    pub fn new_groups(&self) -> DfResult<Groups> {
        self.groups((!self.keys.is_empty()).then(|| self.key_schema.clone()))
    }

    fn groups(&self, key_schema: Option<SchemaRef>) -> DfResult<Groups> {
        let keys = match key_schema {
            Some(schema) => Some(new_group_values(schema, &GroupOrdering::None)?),
            None => None,
        };
        let accumulators = self
            .aggregates
            .iter()
            .map(|call| new_accumulator(&call.function))
            .collect::<DfResult<_>>()?;
        Ok(Groups {
            keys,
            global_len: 0,
            accumulators,
            indices: Vec::new(),
        })
    }
}

fn new_accumulator(f: &Arc<AggregateFunctionExpr>) -> DfResult<Box<dyn GroupsAccumulator>> {
    if f.groups_accumulator_supported() {
        f.create_groups_accumulator()
    } else {
        let f = Arc::clone(f);
        Ok(Box::new(GroupsAccumulatorAdapter::new(move || f.create_accumulator())))
    }
}

/// Input columns of one batch, evaluated once and shared by all slices it
/// touches.
pub struct EvaluatedInput {
    pub keys: Vec<ArrayRef>,
    /// Per aggregate: its argument columns.
    pub args: Vec<Vec<ArrayRef>>,
    /// Per aggregate: its FILTER mask.
    pub filters: Vec<Option<BooleanArray>>,
}

/// The groups of one slice (or one window being fired).
pub struct Groups {
    /// `None` when the query has no key besides the window: one group.
    keys: Option<Box<dyn GroupValues>>,
    global_len: usize,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// Scratch buffer for group indices, reused across batches.
    indices: Vec<usize>,
}

impl Groups {
    pub fn len(&self) -> usize {
        match &self.keys {
            Some(k) => k.len(),
            None => self.global_len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn intern(&mut self, keys: &[ArrayRef], rows: usize) -> DfResult<()> {
        match &mut self.keys {
            Some(k) => k.intern(keys, &mut self.indices),
            None => {
                self.indices.clear();
                self.indices.resize(rows, 0);
                self.global_len = 1;
                Ok(())
            }
        }
    }

    /// Folds rows into their groups.
    pub fn update(&mut self, input: &EvaluatedInput, rows: usize) -> DfResult<()> {
        self.intern(&input.keys, rows)?;
        let total = self.len();
        for (i, acc) in self.accumulators.iter_mut().enumerate() {
            acc.update_batch(&input.args[i], &self.indices, input.filters[i].as_ref(), total)?;
        }
        Ok(())
    }

    /// Folds partial states (as produced by [`Groups::take_state`]) into
    /// their groups.
    pub fn merge(&mut self, state: &PartialState) -> DfResult<()> {
        self.intern(&state.keys, state.rows)?;
        let total = self.len();
        for (i, acc) in self.accumulators.iter_mut().enumerate() {
            acc.merge_batch(&state.states[i], &self.indices, total)?;
        }
        Ok(())
    }

    /// Empties the groups into their partial states, to be merged elsewhere.
    pub fn take_state(&mut self) -> DfResult<PartialState> {
        let rows = self.len();
        let keys = self.emit_keys()?;
        let states = self
            .accumulators
            .iter_mut()
            .map(|a| a.state(EmitTo::All))
            .collect::<DfResult<_>>()?;
        Ok(PartialState { keys, states, rows })
    }

    /// Empties the groups into final values: the keys, then one column per
    /// aggregate.
    pub fn take_final(&mut self) -> DfResult<(Vec<ArrayRef>, Vec<ArrayRef>, usize)> {
        let rows = self.len();
        let keys = self.emit_keys()?;
        let values = self
            .accumulators
            .iter_mut()
            .map(|a| a.evaluate(EmitTo::All))
            .collect::<DfResult<_>>()?;
        Ok((keys, values, rows))
    }

    fn emit_keys(&mut self) -> DfResult<Vec<ArrayRef>> {
        match &mut self.keys {
            Some(k) => k.emit(EmitTo::All),
            None => {
                self.global_len = 0;
                Ok(vec![])
            }
        }
    }

    /// Bytes held, for metrics and memory accounting.
    pub fn size(&self) -> usize {
        self.keys.as_ref().map_or(0, |k| k.size())
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }
}

/// Partial aggregate states of some groups: the form in which slices are
/// merged into windows (and, later, checkpointed).
#[derive(Debug, Clone)]
pub struct PartialState {
    pub keys: Vec<ArrayRef>,
    /// Per aggregate: its state columns.
    pub states: Vec<Vec<ArrayRef>>,
    pub rows: usize,
}

impl PartialState {
    /// Writes the state as one Arrow batch (keys, then each aggregate's
    /// state columns) with the shape needed to split it again.
    pub fn encode(&self, e: &mut Encoder) -> Result<()> {
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            fields.push(Field::new(format!("k{i}"), k.data_type().clone(), true));
            columns.push(Arc::clone(k));
        }
        e.u64(self.keys.len() as u64);
        e.u64(self.states.len() as u64);
        for (a, cols) in self.states.iter().enumerate() {
            e.u64(cols.len() as u64);
            for (j, c) in cols.iter().enumerate() {
                fields.push(Field::new(format!("a{a}_{j}"), c.data_type().clone(), true));
                columns.push(Arc::clone(c));
            }
        }
        e.u64(self.rows as u64);
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        let batch = RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
            .context(|| "encoding window state".into())?;
        e.batch(&batch)
    }

    /// Splits the state by the key group of each group's keys.
    pub fn split_by_key_group(&self, hashes: &mut Vec<u64>) -> Result<Vec<(usize, PartialState)>> {
        let groups = key_groups(&self.keys, self.rows, hashes)?;
        let mut out = Vec::new();
        for (g, idx) in rows_by_key_group(&groups) {
            let t = |a: &ArrayRef| take(a.as_ref(), &idx, None).context(|| "splitting window state".into());
            out.push((
                g,
                PartialState {
                    keys: self.keys.iter().map(t).collect::<Result<_>>()?,
                    states: self
                        .states
                        .iter()
                        .map(|cols| cols.iter().map(t).collect::<Result<_>>())
                        .collect::<Result<_>>()?,
                    rows: idx.len(),
                },
            ));
        }
        Ok(out)
    }

    /// Reads what [`PartialState::encode`] wrote.
    pub fn decode(d: &mut Decoder) -> Result<Self> {
        let n_keys = d.u64()? as usize;
        let n_aggs = d.u64()? as usize;
        let mut widths = Vec::with_capacity(n_aggs);
        for _ in 0..n_aggs {
            widths.push(d.u64()? as usize);
        }
        let rows = d.u64()? as usize;
        let batch = d.batch()?;
        if batch.num_columns() != n_keys + widths.iter().sum::<usize>() {
            return Err(EngineError::State("window state has the wrong number of columns".into()));
        }
        let mut columns = batch.columns().iter().cloned();
        let keys = columns.by_ref().take(n_keys).collect();
        let states = widths.iter().map(|w| columns.by_ref().take(*w).collect()).collect();
        Ok(Self { keys, states, rows })
    }
}
