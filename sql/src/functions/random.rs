//! Flink's `RAND_INTEGER(bound)` and `RAND_INTEGER(seed, bound)`, which
//! DataFusion lacks: a pseudorandom INT in `[0, bound)`; and `RAND(seed)`,
//! a DOUBLE in `[0, 1)` (DataFusion's `rand` is `random()`, which takes no
//! seed), in `random/double.rs`.
//!
//! With a seed, Flink's docs promise that "two RAND_INTEGER functions will
//! return identical sequences of numbers if they have the same initial
//! seed and bound": each call site has its own `java.util.Random(seed)`, so
//! Weir does too. The generator is Java's, as its documentation specifies
//! it (a 48-bit linear congruential generator and `nextInt(bound)`'s
//! rejection loop), so the sequence is the JVM's. Each call site gets its
//! own generator when the query is simplified ([`RandInteger::simplify`]);
//! a constant seed starts it once, a seed from a column is a new generator
//! for each row (the first number of that seed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, AsArray, Int32Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

/// `java.util.Random`, as its Javadoc specifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct JavaRandom {
    seed: u64,
}

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const MASK: u64 = (1 << 48) - 1;

impl JavaRandom {
    pub(super) fn new(seed: i64) -> Self {
        Self {
            seed: (seed as u64 ^ MULTIPLIER) & MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        (self.seed >> (48 - bits)) as i32
    }

    /// `nextDouble()`: 53 random bits over 2^53.
    pub(super) fn next_double(&mut self) -> f64 {
        let high = i64::from(self.next(26)) << 27;
        let low = i64::from(self.next(27));
        (high + low) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `nextInt(bound)` for a positive bound.
    pub(super) fn next_int(&mut self, bound: i32) -> i32 {
        let mut r = self.next(31);
        let m = bound - 1;
        if bound & m == 0 {
            return ((i64::from(bound) * i64::from(r)) >> 31) as i32;
        }
        let mut u = r;
        loop {
            r = u % bound;
            // Java's int arithmetic: rejected when it overflows.
            if u.wrapping_sub(r).wrapping_add(m) >= 0 {
                return r;
            }
            u = self.next(31);
        }
    }
}

mod double;

pub(super) use double::Rand;

/// Call sites told apart (for equality, so that two are never merged).
static CALL_SITES: AtomicU64 = AtomicU64::new(1);

/// `RAND_INTEGER([seed, ]bound)`; NULL when an argument is NULL; a bound
/// that is not positive is an error (Java's `IllegalArgumentException`).
#[derive(Debug)]
pub(super) struct RandInteger {
    signature: Signature,
    /// 0 for the registered function, else this call site's number.
    site: u64,
    /// This call site's generator, started at its first constant seed.
    generator: Mutex<Option<(i64, JavaRandom)>>,
}

impl PartialEq for RandInteger {
    fn eq(&self, other: &Self) -> bool {
        self.site == other.site
    }
}

impl Eq for RandInteger {}

impl std::hash::Hash for RandInteger {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.site.hash(state)
    }
}

impl RandInteger {
    pub(super) fn new() -> Self {
        Self::at(0)
    }

    fn at(site: u64) -> Self {
        Self {
            signature: Signature::one_of(vec![TypeSignature::Any(1), TypeSignature::Any(2)], Volatility::Volatile),
            site,
            generator: Mutex::new(None),
        }
    }
}

impl ScalarUDFImpl for RandInteger {
    fn name(&self) -> &str {
        "rand_integer"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for (i, t) in args.iter().enumerate() {
            if !(t.is_integer() || *t == DataType::Null) {
                return plan_err!("RAND_INTEGER takes integers (argument {}), not {t}", i + 1);
            }
        }
        Ok(DataType::Int32)
    }

    /// A seeded call gets a generator of its own.
    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        if self.site != 0 || args.len() != 2 {
            return Ok(ExprSimplifyResult::Original(args));
        }
        let own = RandInteger::at(CALL_SITES.fetch_add(1, Ordering::Relaxed));
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(ScalarUDF::new_from_impl(own)), args),
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let seeded = args.args.len() == 2;
        let bounds = cast(&args.args[args.args.len() - 1].to_array(rows)?, &DataType::Int64)?;
        let bounds = bounds.as_primitive::<Int64Type>();
        let mut out = Int32Builder::with_capacity(rows);
        let bound_of = |row: usize| -> Result<Option<i32>> {
            if bounds.is_null(row) {
                return Ok(None);
            }
            match i32::try_from(bounds.value(row)) {
                Ok(b) if b > 0 => Ok(Some(b)),
                _ => exec_err!(
                    "RAND_INTEGER: the bound (argument {}) must be positive, not {}",
                    args.args.len(),
                    bounds.value(row)
                ),
            }
        };
        if !seeded {
            for row in 0..rows {
                out.append_option(bound_of(row)?.map(|b| rand::random_range(0..b)));
            }
            return Ok(ColumnarValue::Array(std::sync::Arc::new(out.finish())));
        }
        let seeds = &args.args[0];
        if let ColumnarValue::Scalar(s) = seeds {
            let seed = match s.cast_to(&DataType::Int64)? {
                datafusion::common::ScalarValue::Int64(Some(seed)) => Some(seed),
                _ => None,
            };
            let Ok(mut generator) = self.generator.lock() else {
                return exec_err!("RAND_INTEGER: the generator was poisoned");
            };
            for row in 0..rows {
                let (Some(seed), Some(bound)) = (seed, bound_of(row)?) else {
                    out.append_null();
                    continue;
                };
                let random = match &mut *generator {
                    Some((s, random)) if *s == seed => random,
                    slot => &mut slot.insert((seed, JavaRandom::new(seed))).1,
                };
                out.append_value(random.next_int(bound));
            }
        } else {
            let seeds = cast(&seeds.to_array(rows)?, &DataType::Int64)?;
            let seeds = seeds.as_primitive::<Int64Type>();
            for row in 0..rows {
                let bound = bound_of(row)?;
                match (seeds.is_null(row), bound) {
                    (false, Some(b)) => out.append_value(JavaRandom::new(seeds.value(row)).next_int(b)),
                    _ => out.append_null(),
                }
            }
        }
        Ok(ColumnarValue::Array(std::sync::Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};
    use super::JavaRandom;

    /// From the JVM's well-known `nextInt()` sequences (`new Random(42)`:
    /// -1170105035, 234785527, -1360544799, 205897768, 1325939940; `new
    /// Random(0)`: -1155484576), whose 31 high bits `nextInt(bound)` takes:
    /// `nextInt(10)` of seed 42 is 0, 3, 8, 4, 0; `nextInt(100)` of seed 0
    /// is 60; a power-of-two bound scales them: `nextInt(16)` of seed 42 is
    /// 11 (16 × 1562431130 >> 31), then 0.
    #[test]
    fn the_sequence_is_javas() {
        let mut r = JavaRandom::new(42);
        let got: Vec<i32> = (0..5).map(|_| r.next_int(10)).collect();
        assert_eq!(got, [0, 3, 8, 4, 0]);
        assert_eq!(JavaRandom::new(0).next_int(100), 60);
        let mut r = JavaRandom::new(42);
        assert_eq!((r.next_int(16), r.next_int(16)), (11, 0));
        // `new Random(42).nextDouble()`, twice, on the JVM.
        let mut r = JavaRandom::new(42);
        assert_eq!(
            (r.next_double(), r.next_double()),
            (0.7275636800328681, 0.6832234717598454)
        );
    }

    /// Flink's docs: "Returns a pseudorandom integer value in the range [0,
    /// INT)"; "Two RAND_INTEGER functions will return identical sequences
    /// of numbers if they have the same initial seed and bound."
    #[tokio::test]
    async fn within_the_bound_and_seeded_sequences_repeat() {
        let got = query("SELECT RAND_INTEGER(10) FROM generate_series(1, 200)").await;
        assert!(
            got.iter().all(|v| (0..10).contains(&v.parse::<i32>().unwrap())),
            "{got:?}"
        );
        let a = query("SELECT RAND_INTEGER(42, 10) FROM generate_series(1, 5)").await;
        assert_eq!(a, ["0", "3", "8", "4", "0"]);
        // Two call sites: two generators, the same sequence.
        let both = query(
            "SELECT CONCAT(CAST(RAND_INTEGER(42, 10) AS VARCHAR), ',', CAST(RAND_INTEGER(42, 10) AS VARCHAR)) \
             FROM generate_series(1, 3)",
        )
        .await;
        assert_eq!(both, ["0,0", "3,3", "8,8"]);
        assert_eq!(query("SELECT RAND_INTEGER(CAST(NULL AS INT))").await, ["NULL"]);
        let e = query_err("SELECT RAND_INTEGER(0)").await;
        assert!(e.contains("RAND_INTEGER") && e.contains("argument 1"), "{e}");
    }
}
