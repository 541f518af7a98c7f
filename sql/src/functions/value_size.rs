//! Functions whose result's size the caller picks — `repeat(s, n)`,
//! `lpad(s, n)`, `rpad(s, n)` — refuse, before they allocate it, a value
//! larger than the server allows. DataFusion's own allow 2 GiB a value,
//! which `SELECT repeat('x', 2000000000)` makes and then copies on its way
//! to the client (6 GB in all); with many rows a batch of them is larger
//! still.
//!
//! The checked functions wrap DataFusion's, under the same names, so that
//! every query of a session (batch queries, the jobs it starts, constant
//! folding while planning) uses them: in `weir run` and the REPL with
//! [`DEFAULT_MAX_VALUE_BYTES`], in `weir serve` with `--max-value-bytes`.

use std::error::Error;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::compute::kernels::length::length;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

/// The size of one value a function such as `repeat` may make. Each value
/// is copied about three times on its way to a client (the Arrow array,
/// the text encoding, the message buffer), so 64 MiB costs a query some
/// 200 MiB at most.
pub const DEFAULT_MAX_VALUE_BYTES: u32 = 64 << 20;
/// PostgreSQL's own bound on one value (`MaxAllocSize`): no client expects
/// a larger one.
pub const MAX_VALUE_BYTES: u32 = (1 << 30) - 1;

/// A value a function was asked to make beyond the limit (`54000`).
#[derive(Debug, thiserror::Error)]
#[error(
    "requested length too large: {function} would make {what} of {size} bytes, at most {limit} (weir serve --max-value-bytes; 64 MiB in weir run and the REPL)"
)]
pub struct ValueTooLarge {
    function: String,
    /// "a value", or "values" for all the values of one batch together.
    what: &'static str,
    size: u128,
    limit: usize,
}

impl ValueTooLarge {
    /// The refusal among the causes of `error`, if it is one.
    pub fn find(error: &DataFusionError) -> Option<&ValueTooLarge> {
        let mut cause: &dyn Error = error;
        loop {
            if let Some(found) = cause.downcast_ref::<ValueTooLarge>() {
                return Some(found);
            }
            cause = cause.source()?;
        }
    }
}

/// Replaces DataFusion's `repeat`, `lpad` and `rpad` in `ctx` with versions
/// that refuse a value larger than `limit` bytes (and the values of one
/// batch larger than 1 GiB together).
pub fn register(ctx: &SessionContext, limit: usize) {
    use datafusion::functions::{string, unicode};
    for (inner, growth) in [
        (string::repeat(), Growth::Repeat),
        (unicode::lpad(), Growth::Pad),
        (unicode::rpad(), Growth::Pad),
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(Checked { inner, growth, limit }));
    }
}

/// How a function's result grows with its arguments `(text, n, …)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `n` copies of the text.
    Repeat,
    /// `n` characters. Counted as bytes: a character of several bytes may
    /// make the value up to 4 times the limit, which stays bounded.
    Pad,
}

/// DataFusion's function, checked first.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Checked {
    inner: Arc<ScalarUDF>,
    growth: Growth,
    limit: usize,
}

impl Checked {
    /// Refuses arguments that ask for a value, or a batch of values, beyond
    /// the limits. Arguments it cannot read are left to the function
    /// itself to refuse.
    fn check(&self, args: &ScalarFunctionArgs) -> Result<()> {
        let [text, count, ..] = args.args.as_slice() else { return Ok(()) };
        let lengths = Column::byte_lengths(text)?;
        let counts = Column::integers(count)?;
        let rows = match (&lengths, &counts) {
            (Column::One(_), Column::One(_)) => 1,
            _ => args.number_rows,
        };
        let batch_limit = self.limit.max(MAX_VALUE_BYTES as usize);
        let mut total: u128 = 0;
        for row in 0..rows {
            let (Some(len), Some(n)) = (lengths.get(row), counts.get(row)) else { continue };
            // A negative count makes an empty value.
            let n = u128::try_from(n).unwrap_or(0);
            let size = match self.growth {
                Growth::Repeat => u128::try_from(len).unwrap_or(0) * n,
                Growth::Pad => n,
            };
            if size > self.limit as u128 {
                return Err(self.refuse("a value", size, self.limit));
            }
            total += size;
            if total > batch_limit as u128 {
                return Err(self.refuse("values", total, batch_limit));
            }
        }
        Ok(())
    }

    fn refuse(&self, what: &'static str, size: u128, limit: usize) -> DataFusionError {
        let function = self.inner.name().to_string();
        DataFusionError::External(Box::new(ValueTooLarge { function, what, size, limit }))
    }
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args)?;
        self.inner.invoke_with_args(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// One argument's numbers: a constant is read once, never spread over the
/// batch (a long constant text times the rows would be the very
/// allocation this avoids).
enum Column {
    One(Option<i64>),
    Many(Int64Array),
}

impl Column {
    /// The byte length of each text.
    fn byte_lengths(arg: &ColumnarValue) -> Result<Column> {
        Ok(match arg {
            ColumnarValue::Scalar(s) => {
                Column::One(s.try_as_str().flatten().map(|t| i64::try_from(t.len()).unwrap_or(i64::MAX)))
            }
            ColumnarValue::Array(a) => Column::Many(cast(&length(a.as_ref())?, &DataType::Int64)?.as_primitive::<Int64Type>().clone()),
        })
    }

    /// Each integer.
    fn integers(arg: &ColumnarValue) -> Result<Column> {
        Ok(match arg {
            ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(n) => Column::One(n),
                _ => Column::One(None),
            },
            ColumnarValue::Array(a) => Column::Many(cast(a, &DataType::Int64)?.as_primitive::<Int64Type>().clone()),
        })
    }

    fn get(&self, row: usize) -> Option<i64> {
        match self {
            Column::One(v) => *v,
            Column::Many(a) => (row < a.len() && a.is_valid(row)).then(|| a.value(row)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(ctx: &SessionContext, sql: &str) -> Result<usize> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(batches.iter().map(|b| b.num_rows()).sum())
    }

    #[tokio::test]
    async fn values_beyond_the_limit_are_refused_before_they_are_made() {
        let ctx = SessionContext::new();
        register(&ctx, 1000);
        assert_eq!(run(&ctx, "SELECT repeat('ab', 500), lpad('x', 1000), rpad('x', 1000, 'yz')").await.unwrap(), 1);
        for sql in [
            "SELECT repeat('ab', 501)",
            "SELECT repeat('x', 2000000000)",
            "SELECT lpad('x', 1001)",
            "SELECT rpad('x', 2000000000, 'y')",
            // Per row, from columns.
            "SELECT repeat(s, n) FROM (VALUES ('a', 1), ('bb', 600)) AS t(s, n)",
        ] {
            let e = run(&ctx, sql).await.unwrap_err();
            let refused = ValueTooLarge::find(&e).unwrap_or_else(|| panic!("{sql}: {e}"));
            assert!(refused.to_string().contains("at most 1000"), "{refused}");
        }
        // NULLs and negative counts make nothing.
        assert_eq!(run(&ctx, "SELECT repeat(NULL, 5000), repeat('x', -5000), lpad('x', NULL)").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_batch_of_values_is_bounded_too() {
        let ctx = SessionContext::new();
        register(&ctx, MAX_VALUE_BYTES as usize);
        // 8 rows of 200 MB each: each allowed, together too many.
        let rows = ["('x')"; 8].join(", ");
        let e = run(&ctx, &format!("SELECT repeat(s, 200000000) FROM (VALUES {rows}) AS t(s)")).await.unwrap_err();
        assert!(ValueTooLarge::find(&e).is_some_and(|r| r.what == "values"), "{e}");
    }
}
