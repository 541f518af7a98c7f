//! `DEFINE` conditions and `MEASURES`, evaluated over the rows of one
//! (partial) match. CEP decides row by row, so this interprets ScalarValues
//! per row: every reference to the matched rows — a variable's column,
//! `FIRST`/`LAST`/`PREV`, an aggregate over a variable's rows — is a
//! [`Navigation`] the planner cut out of the expression; its value fills
//! one column of a one-row batch, over which DataFusion's physical
//! expression computes the rest.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, new_empty_array};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::PhysicalExpr;

use crate::error::{Result, ResultExt};

/// One row fed to the pattern: its place in its partition's order, its
/// time, and its values — the input's columns, then the plan's derived
/// values.
#[derive(Debug, PartialEq)]
pub struct Row {
    /// Its place in its partition's order: how checkpoints name it.
    pub seq: u64,
    /// Its rowtime, for `WITHIN`.
    pub time: i64,
    pub values: Vec<ScalarValue>,
}

/// A matched row and the variable it was matched to.
pub type Step = (Arc<Row>, usize);

/// A value taken from the matched rows. `var: None` is every row of the
/// match (Flink's universal pattern variable); `slot` indexes
/// [`Row::values`].
#[derive(Debug, Clone)]
pub enum Navigation {
    /// `LAST(v.x, n)` (and `v.x` itself, n = 0): the n-th row of `v`
    /// counting back from its last.
    Last {
        var: Option<usize>,
        slot: usize,
        offset: usize,
    },
    /// `FIRST(v.x, n)`: the n-th row of `v` from its first.
    First {
        var: Option<usize>,
        slot: usize,
        offset: usize,
    },
    /// `PREV(x, n)`: the row n rows before the last row of the match.
    Prev { slot: usize, offset: usize },
    /// An aggregate over `slot` of `v`'s rows: the function reads one
    /// column, of the slot's type `input`.
    Aggregate {
        var: Option<usize>,
        slot: usize,
        input: DataType,
        function: Arc<AggregateFunctionExpr>,
    },
}

/// An expression over a match: its navigations, the one-row schema they
/// fill (column `i` is navigation `i`) and the expression over it.
#[derive(Debug, Clone)]
pub struct Condition {
    pub navigations: Vec<Navigation>,
    pub schema: SchemaRef,
    pub expr: Arc<dyn PhysicalExpr>,
    /// As written, for `EXPLAIN`.
    pub text: String,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The rows of a match so far, and the row being tried (as `var`) when a
/// `DEFINE` decides whether it may join them.
#[derive(Clone, Copy)]
pub struct Matched<'a> {
    pub history: &'a [Step],
    pub current: Option<(&'a Arc<Row>, usize)>,
}

impl Matched<'_> {
    fn rows(&self) -> impl DoubleEndedIterator<Item = (&Arc<Row>, usize)> {
        self.history.iter().map(|(r, v)| (r, *v)).chain(self.current)
    }

    fn of(&self, var: Option<usize>) -> impl DoubleEndedIterator<Item = &Arc<Row>> {
        self.rows()
            .filter(move |(_, v)| var.is_none_or(|x| x == *v))
            .map(|(r, _)| r)
    }
}

impl Condition {
    /// The value of the expression over `matched`.
    pub fn evaluate(&self, matched: Matched<'_>) -> Result<ScalarValue> {
        let ctx = || format!("evaluating {}", self.text);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.navigations.len());
        for (i, n) in self.navigations.iter().enumerate() {
            let null = || ScalarValue::try_from(self.schema.field(i).data_type());
            let value = match n {
                Navigation::Last { var, slot, offset } => {
                    matched.of(*var).rev().nth(*offset).map(|r| r.values[*slot].clone())
                }
                Navigation::First { var, slot, offset } => {
                    matched.of(*var).nth(*offset).map(|r| r.values[*slot].clone())
                }
                Navigation::Prev { slot, offset } => {
                    matched.of(None).rev().nth(*offset).map(|r| r.values[*slot].clone())
                }
                Navigation::Aggregate {
                    var,
                    slot,
                    input,
                    function,
                } => {
                    let values: Vec<ScalarValue> = matched.of(*var).map(|r| r.values[*slot].clone()).collect();
                    let array = match values.is_empty() {
                        true => new_empty_array(input),
                        false => ScalarValue::iter_to_array(values).context(ctx)?,
                    };
                    let mut acc = function.create_accumulator().context(ctx)?;
                    acc.update_batch(&[array]).context(ctx)?;
                    Some(acc.evaluate().context(ctx)?)
                }
            };
            let value = match value {
                Some(v) => v,
                None => null().context(ctx)?,
            };
            columns.push(value.to_array().context(ctx)?);
        }
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(1));
        let batch = RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options).context(ctx)?;
        let out = self.expr.evaluate(&batch).context(ctx)?.into_array(1).context(ctx)?;
        ScalarValue::try_from_array(&out, 0).context(ctx)
    }

    /// Whether a `DEFINE` holds (NULL does not).
    pub fn holds(&self, matched: Matched<'_>) -> Result<bool> {
        Ok(matches!(self.evaluate(matched)?, ScalarValue::Boolean(Some(true))))
    }
}
