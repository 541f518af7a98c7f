//! Flink's `RAND([seed])`: a pseudorandom DOUBLE in `[0, 1)`. DataFusion's
//! `rand` (its `random()`) takes no seed; Flink's docs promise that "two
//! RAND functions will return identical sequences of numbers if they have
//! the same initial seed", so a seeded call site is its own
//! `java.util.Random(seed)` (`nextDouble()`, the JVM's sequence), as
//! `RAND_INTEGER`'s are (see `random.rs`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, AsArray, Float64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::{CALL_SITES, JavaRandom};

/// `RAND([seed])`; NULL for a NULL seed.
#[derive(Debug)]
pub(crate) struct Rand {
    signature: Signature,
    /// 0 for the registered function, else this call site's number.
    site: u64,
    /// This call site's generator, started at its first constant seed.
    generator: Mutex<Option<(i64, JavaRandom)>>,
}

impl PartialEq for Rand {
    fn eq(&self, other: &Self) -> bool {
        self.site == other.site
    }
}

impl Eq for Rand {}

impl std::hash::Hash for Rand {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.site.hash(state)
    }
}

impl Rand {
    /// The registered function (each seeded call gets its own when the
    /// query is simplified).
    pub(crate) fn new() -> Self {
        Self::at(0)
    }

    fn at(site: u64) -> Self {
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::Any(1)],
                Volatility::Volatile,
            ),
            site,
            generator: Mutex::new(None),
        }
    }
}

impl ScalarUDFImpl for Rand {
    fn name(&self) -> &str {
        "rand"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if let Some(t) = args.first()
            && !(t.is_integer() || *t == DataType::Null)
        {
            return plan_err!("RAND takes an integer seed (argument 1), not {t}");
        }
        Ok(DataType::Float64)
    }

    /// A seeded call gets a generator of its own.
    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        if self.site != 0 || args.len() != 1 {
            return Ok(ExprSimplifyResult::Original(args));
        }
        let own = Rand::at(CALL_SITES.fetch_add(1, Ordering::Relaxed));
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(ScalarUDF::new_from_impl(own)), args),
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let mut out = Float64Builder::with_capacity(rows);
        match args.args.first() {
            None => {
                for _ in 0..rows {
                    out.append_value(rand::random::<f64>());
                }
            }
            Some(ColumnarValue::Scalar(s)) => {
                let ScalarValue::Int64(seed) = s.cast_to(&DataType::Int64)? else {
                    return exec_err!("RAND: the seed is not an integer");
                };
                let Some(seed) = seed else {
                    out.append_nulls(rows);
                    return Ok(ColumnarValue::Array(Arc::new(out.finish())));
                };
                let Ok(mut generator) = self.generator.lock() else {
                    return exec_err!("RAND: the generator was poisoned");
                };
                let random = match &mut *generator {
                    Some((s, random)) if *s == seed => random,
                    slot => &mut slot.insert((seed, JavaRandom::new(seed))).1,
                };
                for _ in 0..rows {
                    out.append_value(random.next_double());
                }
            }
            Some(ColumnarValue::Array(seeds)) => {
                // A seed from a column: a new generator for each row.
                let seeds = cast(seeds, &DataType::Int64)?;
                let seeds = seeds.as_primitive::<Int64Type>();
                for row in 0..rows {
                    if seeds.is_null(row) {
                        out.append_null();
                    } else {
                        out.append_value(JavaRandom::new(seeds.value(row)).next_double());
                    }
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use crate::functions::testing::{query, query_err};

    /// Flink's docs: "Returns a pseudorandom double value in the range
    /// [0.0, 1.0) with an initial seed integer. Two RAND functions will
    /// return identical sequences of numbers if they have the same initial
    /// seed." The JVM's `new Random(42).nextDouble()` is 0.7275636800328681,
    /// then 0.6832234717598454.
    #[tokio::test]
    async fn seeded_sequences_are_the_jvms() {
        let got = query("SELECT RAND() FROM generate_series(1, 200)").await;
        assert!(
            got.iter().all(|v| (0.0..1.0).contains(&v.parse::<f64>().unwrap())),
            "{got:?}"
        );
        assert_eq!(
            query("SELECT RAND(42) FROM generate_series(1, 2)").await,
            ["0.7275636800328681", "0.6832234717598454"]
        );
        let both = query("SELECT RAND(42) = RAND(42) FROM generate_series(1, 3)").await;
        assert_eq!(both, ["true", "true", "true"]);
        assert_eq!(query("SELECT RAND(CAST(NULL AS INT))").await, ["NULL"]);
        let e = query_err("SELECT RAND('x')").await;
        assert!(e.contains("RAND") && e.contains("argument 1"), "{e}");
    }
}
