//! Grouped partial aggregates: group keys interned by DataFusion's
//! `GroupValues`, values folded by DataFusion's `GroupsAccumulator`s.
//!
//! This is the per-row work of a window aggregate, all of it done by
//! DataFusion's vectorised kernels; the window operator only decides which
//! rows go to which slice and when a window's groups are emitted.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::checkpoint::identity::typed_columns;

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
    pub fn new(keys: Vec<Arc<dyn PhysicalExpr>>, key_fields: Vec<Field>, aggregates: Vec<AggregateCall>) -> Self {
        Self { keys, key_schema: Arc::new(Schema::new(key_fields)), aggregates }
    }

    /// What partial aggregates are stored as: the key columns and each
    /// aggregate function with the types of its state (not its alias:
    /// renaming an output column keeps the state).
    pub fn state_signature(&self) -> String {
        let aggregates: Vec<String> = self
            .aggregates
            .iter()
            .map(|c| {
                let state = c
                    .function
                    .state_fields()
                    .map(|fields| fields.iter().map(|f| f.data_type().to_string()).collect::<Vec<_>>().join(", "))
                    .unwrap_or_else(|e| format!("unknown state: {e}"));
                format!("{}({state})", c.function.fun().name())
            })
            .collect();
        format!("keys {}; aggregates [{}]", typed_columns(&self.key_schema), aggregates.join(", "))
    }

    /// True when every aggregate gives the same result whatever order
    /// partial states are merged in, so later groups may absorb earlier
    /// ones. FIRST_VALUE, LAST_VALUE, LISTAGG and the like keep arrival
    /// order and are not listed.
    pub fn merges_in_any_order(&self) -> bool {
        const ANY_ORDER: [&str; 15] = [
            "count",
            "sum",
            "avg",
            "min",
            "max",
            "stddev",
            "stddev_pop",
            "stddev_samp",
            "var_samp",
            "var_pop",
            "var",
            "bool_and",
            "bool_or",
            "approx_distinct",
            "collect",
        ];
        self.aggregates
            .iter()
            .all(|c| c.function.order_bys().is_empty() && ANY_ORDER.contains(&c.function.fun().name()))
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
        let accumulators =
            self.aggregates.iter().map(|call| new_accumulator(&call.function)).collect::<DfResult<_>>()?;
        Ok(Groups { keys, global_len: 0, accumulators, indices: Vec::new() })
    }

    /// Refuses partial state read back from a checkpoint unless its
    /// columns have the types of this grouping's keys and of its
    /// aggregates' state fields (which DataFusion's partial aggregation
    /// also holds them to): accumulators downcast what they merge and would
    /// panic on columns of another type.
    pub fn check_state(&self, state: &PartialState) -> Result<()> {
        let same = |a: &DataType, b: &DataType| a.equals_datatype(b);
        let keys = state.keys.len() == self.key_schema.fields().len()
            && self.key_schema.fields().iter().zip(&state.keys).all(|(f, k)| same(f.data_type(), k.data_type()));
        let mut aggregates = state.states.len() == self.aggregates.len();
        for (call, columns) in self.aggregates.iter().zip(&state.states) {
            let fields = call.function.state_fields().context(|| "checking window state".into())?;
            aggregates &= fields.len() == columns.len()
                && fields.iter().zip(columns).all(|(f, c)| same(f.data_type(), c.data_type()));
        }
        if keys && aggregates {
            Ok(())
        } else {
            Err(EngineError::State("window state has columns of other types than the query's".into()))
        }
    }
}

impl Grouping {
    /// `state`, saved by a query whose aggregates were those of this
    /// grouping that `saved` maps to (`saved[i]`: the saved aggregate that
    /// aggregate `i` restores), with each new aggregate's empty state for
    /// every group: a savepoint restored into a query that added aggregate
    /// columns (`checkpoint::evolution`).
    pub fn adding_aggregates(&self, state: PartialState, saved: &[Option<usize>]) -> Result<PartialState> {
        let mut old: Vec<Option<Vec<ArrayRef>>> = state.states.into_iter().map(Some).collect();
        let expected = saved.iter().flatten().count();
        if saved.len() != self.aggregates.len() || old.len() != expected {
            return Err(EngineError::State(format!(
                "window state has {} aggregates, the savepoint's manifest {expected}",
                old.len()
            )));
        }
        let states = self
            .aggregates
            .iter()
            .zip(saved)
            .map(|(call, from)| match from {
                Some(i) => old
                    .get_mut(*i)
                    .and_then(Option::take)
                    .ok_or_else(|| EngineError::State(format!("window state has no aggregate {i}"))),
                None => empty_states(&call.function, state.rows),
            })
            .collect::<Result<_>>()?;
        Ok(PartialState { keys: state.keys, states, rows: state.rows })
    }
}

/// The state columns of `function` for `rows` groups that saw no row: what
/// an aggregate added to a restored query starts from.
pub fn empty_states(function: &AggregateFunctionExpr, rows: usize) -> Result<Vec<ArrayRef>> {
    let ctx = || format!("the empty state of {}", function.fun().name());
    let mut accumulator = function.create_accumulator().context(ctx)?;
    let values = accumulator.state().context(ctx)?;
    values.iter().map(|v| v.to_array_of_size(rows).context(ctx)).collect()
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

    /// The group number of each row of the last [`Groups::update`].
    pub fn row_groups(&self) -> &[usize] {
        &self.indices
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
        let states = self.accumulators.iter_mut().map(|a| a.state(EmitTo::All)).collect::<DfResult<_>>()?;
        Ok(PartialState { keys, states, rows })
    }

    /// Empties the groups into final values: the keys, then one column per
    /// aggregate.
    pub fn take_final(&mut self) -> DfResult<(Vec<ArrayRef>, Vec<ArrayRef>, usize)> {
        let rows = self.len();
        let keys = self.emit_keys()?;
        let values = self.accumulators.iter_mut().map(|a| a.evaluate(EmitTo::All)).collect::<DfResult<_>>()?;
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
        self.keys.as_ref().map_or(0, |k| k.size()) + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
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
        // Counts come from the stored bytes, which may be damaged: nothing
        // is allocated or summed from them before they are checked.
        let n_aggs = d.u64()?;
        let mut widths = Vec::new();
        for _ in 0..n_aggs {
            widths.push(d.u64()? as usize);
        }
        let rows = d.u64()? as usize;
        let batch = d.batch()?;
        let columns = widths.iter().try_fold(n_keys, |n, w| n.checked_add(*w));
        if columns != Some(batch.num_columns()) {
            return Err(EngineError::State("window state has the wrong number of columns".into()));
        }
        if rows != batch.num_rows() {
            return Err(EngineError::State("window state has the wrong number of rows".into()));
        }
        let mut columns = batch.columns().iter().cloned();
        let keys = columns.by_ref().take(n_keys).collect();
        let states = widths.iter().map(|w| columns.by_ref().take(*w).collect()).collect();
        Ok(Self { keys, states, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partial state whose columns have other types than the query's keys
    /// and aggregate states is refused before DataFusion's group values and
    /// accumulators, which downcast, see it.
    #[test]
    fn state_of_other_types_is_refused() {
        use datafusion::arrow::array::{Int64Array, StringArray};
        use datafusion::functions_aggregate::count::count_udaf;
        use datafusion::physical_expr::aggregate::AggregateExprBuilder;
        use datafusion::physical_expr::expressions::Column;
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let k: Arc<dyn PhysicalExpr> = Arc::new(Column::new("k", 0));
        let count =
            AggregateExprBuilder::new(count_udaf(), vec![Arc::clone(&k)]).schema(schema).alias("c").build().unwrap();
        let call = AggregateCall { function: Arc::new(count), filter: None };
        let grouping = Grouping::new(vec![k], vec![Field::new("k", DataType::Int64, true)], vec![call]);
        let good = PartialState {
            keys: vec![Arc::new(Int64Array::from(vec![1]))],
            states: vec![vec![Arc::new(Int64Array::from(vec![3]))]],
            rows: 1,
        };
        grouping.check_state(&good).unwrap();
        let key = PartialState { keys: vec![Arc::new(StringArray::from(vec!["1"]))], ..good.clone() };
        assert!(grouping.check_state(&key).is_err(), "a key of another type");
        let aggregate = PartialState { states: vec![vec![Arc::new(StringArray::from(vec!["3"]))]], ..good.clone() };
        assert!(grouping.check_state(&aggregate).is_err(), "an aggregate state of another type");
        let missing = PartialState { states: vec![], ..good };
        assert!(grouping.check_state(&missing).is_err(), "an aggregate missing");
    }

    /// Counts read from damaged state are checked before anything is
    /// allocated or summed from them (a huge aggregate count made
    /// `Vec::with_capacity` panic, a huge width overflowed the sum).
    #[test]
    fn damaged_counts_are_errors() {
        for (n_keys, widths) in [(0, vec![u64::MAX]), (u64::MAX, vec![2]), (1, vec![u64::MAX, u64::MAX])] {
            let mut e = Encoder::default();
            e.u64(n_keys);
            e.u64(widths.len() as u64);
            for w in &widths {
                e.u64(*w);
            }
            e.u64(0);
            let batch = RecordBatch::try_new_with_options(
                Arc::new(Schema::empty()),
                vec![],
                &RecordBatchOptions::new().with_row_count(Some(0)),
            )
            .unwrap();
            e.batch(&batch).unwrap();
            assert!(PartialState::decode(&mut Decoder::new(&e.bytes)).is_err());
        }
        let mut e = Encoder::default();
        e.u64(0);
        e.u64(u64::MAX);
        assert!(PartialState::decode(&mut Decoder::new(&e.bytes)).is_err(), "a count beyond the bytes");
    }
}
