//! Flink's `AVG`: over an integer column the result has the column's type
//! and is the sum divided by the count, truncated as Java's integer
//! division is (`AVG` of 1 and 2 is 1, of -1 and -2 is -1), where
//! DataFusion's is a DOUBLE (1.5). Flink users compare Weir's results with
//! Flink's; other input types keep DataFusion's average.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::functions_aggregate::average::Avg;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, TypeSignature, Volatility};

/// Flink's integer types, whose average keeps the type.
const INTEGERS: [DataType; 4] = [DataType::Int8, DataType::Int16, DataType::Int32, DataType::Int64];

/// `AVG` with Flink's result for integer columns.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct FlinkAvg {
    inner: Avg,
    signature: Signature,
}

impl FlinkAvg {
    pub(super) fn new() -> Self {
        let inner = Avg::new();
        // Integers exactly (DataFusion's would coerce them to DOUBLE), then
        // what DataFusion's average takes.
        let mut variants: Vec<TypeSignature> = INTEGERS.iter().map(|t| TypeSignature::Exact(vec![t.clone()])).collect();
        match &inner.signature().type_signature {
            TypeSignature::OneOf(others) => variants.extend(others.iter().cloned()),
            other => variants.push(other.clone()),
        }
        Self {
            inner,
            signature: Signature::one_of(variants, Volatility::Immutable),
        }
    }
}

fn is_integer(t: &DataType) -> bool {
    INTEGERS.contains(t)
}

impl AggregateUDFImpl for FlinkAvg {
    fn name(&self) -> &str {
        "avg"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t) if is_integer(t) => Ok(t.clone()),
            _ => self.inner.return_type(arg_types),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let input = args.expr_fields[0].data_type();
        if !is_integer(input) {
            return self.inner.accumulator(args);
        }
        let result = input.clone();
        Ok(if args.is_distinct {
            Box::new(DistinctIntegerAvg { values: HashSet::new(), result })
        } else {
            Box::new(IntegerAvg { sum: 0, count: 0, result })
        })
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        if !is_integer(args.input_fields[0].data_type()) {
            return self.inner.state_fields(args);
        }
        Ok(if args.is_distinct {
            vec![Arc::new(Field::new_list(
                format_state_name(args.name, "avg distinct"),
                Field::new_list_field(DataType::Int64, true),
                false,
            ))]
        } else {
            vec![
                Arc::new(Field::new(format_state_name(args.name, "sum"), DataType::Int64, true)),
                Arc::new(Field::new(format_state_name(args.name, "count"), DataType::Int64, true)),
            ]
        })
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !is_integer(args.expr_fields[0].data_type()) && self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn datafusion::logical_expr::GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }
}

/// The values of an integer column as BIGINT.
fn longs(values: &ArrayRef) -> Result<Int64Array> {
    Ok(cast(values, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
}

/// `sum / count` in the result type, as Flink computes it; NULL without rows.
fn average(sum: i64, count: i64, result: &DataType) -> Result<ScalarValue> {
    if count <= 0 {
        return ScalarValue::try_from(result);
    }
    ScalarValue::Int64(Some(sum / count)).cast_to(result)
}

/// Sum (wrapping, as Java's `long`) and count of the values.
#[derive(Debug)]
struct IntegerAvg {
    sum: i64,
    count: i64,
    result: DataType,
}

impl Accumulator for IntegerAvg {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = longs(&values[0])?;
        self.sum = v.iter().flatten().fold(self.sum, i64::wrapping_add);
        self.count += (v.len() - v.null_count()) as i64;
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = longs(&values[0])?;
        self.sum = v.iter().flatten().fold(self.sum, i64::wrapping_sub);
        self.count -= (v.len() - v.null_count()) as i64;
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (sums, counts) = (longs(&states[0])?, longs(&states[1])?);
        self.sum = sums.iter().flatten().fold(self.sum, i64::wrapping_add);
        self.count += counts.iter().flatten().sum::<i64>();
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.sum)), ScalarValue::Int64(Some(self.count))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        average(self.sum, self.count, &self.result)
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }
}

/// The distinct values, averaged when asked.
#[derive(Debug)]
struct DistinctIntegerAvg {
    values: HashSet<i64>,
    result: DataType,
}

impl Accumulator for DistinctIntegerAvg {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.values.extend(longs(&values[0])?.iter().flatten());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(lists) = states[0].as_any().downcast_ref::<ListArray>() else {
            return exec_err!("avg distinct: state is not a list");
        };
        for list in lists.iter().flatten() {
            self.values.extend(longs(&list)?.iter().flatten());
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.values.iter().map(|v| ScalarValue::Int64(Some(*v))).collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Int64))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let sum = self.values.iter().fold(0i64, |s, v| s.wrapping_add(*v));
        average(sum, self.values.len() as i64, &self.result)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.values.capacity() * size_of::<i64>()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    async fn run(sql: &str) -> String {
        let ctx = SessionContext::new();
        crate::functions::register(&ctx);
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    /// Flink's results: the integer type kept, the quotient truncated
    /// toward zero, NULL without values, DISTINCT over distinct values;
    /// other types as before.
    #[tokio::test]
    async fn integer_averages_are_flinks() {
        let t = "(VALUES (CAST(1 AS INT), CAST(1 AS BIGINT), 1.0), (2, 2, 2.0), (2, 2, 2.0), (-7, NULL, NULL)) t(i, b, d)";
        let out = run(&format!(
            "SELECT avg(i) AS ai, arrow_typeof(avg(i)) AS ti, avg(b) AS ab, arrow_typeof(avg(b)) AS tb, \
             avg(DISTINCT i) AS di, avg(d) AS f FROM {t}"
        ))
        .await;
        // (1 + 2 + 2 - 7) / 4 = -0.5 → 0; 5 / 3 → 1; {1, 2, -7}: -4 / 3 → -1.
        let row = out.lines().nth(3).unwrap();
        let cells: Vec<&str> = row.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(cells, ["0", "Int64", "1", "Int64", "-1", "1.6666666666666667"], "{out}");
        let int = run("SELECT avg(x) AS a, arrow_typeof(avg(x)) AS t FROM (VALUES (CAST(3 AS INT)), (CAST(-8 AS INT))) t(x)").await;
        let cells: Vec<&str> = int.lines().nth(3).unwrap().split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(cells, ["-2", "Int32"], "{int}");
        let none = run("SELECT avg(x) AS a FROM (VALUES (CAST(NULL AS BIGINT))) t(x)").await;
        assert!(none.lines().nth(3).unwrap().trim_matches(|c| c == '|' || c == ' ').is_empty(), "{none}");
    }
}
