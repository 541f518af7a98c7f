//! The hash that places a key in a key group.
//!
//! Key groups decide which subtask owns a key and how keyed state is split
//! in checkpoints, so the hash must give the same answer for as long as a
//! checkpoint may be restored: on another platform, after a Weir or a
//! DataFusion upgrade. DataFusion's `create_hashes` (foldhash) documents no
//! such promise, so Weir owns this function and records its
//! [`KEY_HASH_VERSION`] in every checkpoint; a checkpoint of another version
//! is refused (`checkpoint::identity`).
//!
//! The function, version 2: a row's hash starts at 0 and folds in each key
//! column in order, `h = xxh3_64(seed = h, bytes)` over the value's
//! canonical bytes — little-endian fixed-width integers (dates, times,
//! timestamps and durations as their stored integer, decimals as their
//! unscaled integer), floats as the bits of the value with `-0.0` read as
//! `0.0` and every NaN as one NaN (`f16` widened to `f32`), booleans as one
//! byte, strings and binaries as their bytes, a dictionary as its value, a
//! struct as its fields in order; a list (or a map, as its list of
//! entries) as its length, a `u64` little-endian, then the hash of each
//! element as `u64` little-endian, each element hashed alone from 0. A NULL
//! folds in as `xxh3_64(seed = h ^ NULL_SEED, [])`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayAccessor, ArrayRef, AsArray, GenericListArray, OffsetSizeTrait};
use datafusion::arrow::datatypes::*;
use twox_hash::XxHash3_64;

use crate::error::{EngineError, ErrorKind, Result, ResultExt};

/// The version of this function, recorded in every checkpoint. Version 1
/// was DataFusion's `create_hashes` with seed 0.
pub const KEY_HASH_VERSION: u32 = 2;

/// Mixed into the seed of a NULL, so that a NULL differs from every value.
const NULL_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Sets `hashes[i]` to the hash of row `i` of `keys` (0 without keys).
pub fn hash_keys(keys: &[ArrayRef], hashes: &mut [u64]) -> Result<()> {
    hashes.fill(0);
    for key in keys {
        fold_column(key, hashes)?;
    }
    Ok(())
}

/// Folds a NULL into a row's hash.
#[inline]
fn null(seed: u64) -> u64 {
    XxHash3_64::oneshot_with_seed(seed ^ NULL_SEED, &[])
}

/// Folds every row of `array` into its hash, each value as `bytes` gives it.
fn fold<A, B>(array: A, hashes: &mut [u64], bytes: impl Fn(A::Item) -> B)
where
    A: ArrayAccessor,
    B: AsRef<[u8]>,
{
    for (i, h) in hashes.iter_mut().enumerate() {
        *h = match array.is_null(i) {
            true => null(*h),
            false => XxHash3_64::oneshot_with_seed(*h, bytes(array.value(i)).as_ref()),
        };
    }
}

/// One float, canonical: `-0.0` is `0.0`, every NaN the same NaN.
#[inline]
fn canonical_f64(v: f64) -> [u8; 8] {
    let v = if v == 0.0 { 0.0 } else if v.is_nan() { f64::NAN } else { v };
    v.to_bits().to_le_bytes()
}

#[inline]
fn canonical_f32(v: f32) -> [u8; 4] {
    let v = if v == 0.0 { 0.0 } else if v.is_nan() { f32::NAN } else { v };
    v.to_bits().to_le_bytes()
}

fn fold_column(array: &ArrayRef, hashes: &mut [u64]) -> Result<()> {
    macro_rules! int {
        ($t:ty) => {
            fold(array.as_primitive::<$t>(), hashes, |v| v.to_le_bytes())
        };
    }
    match array.data_type() {
        DataType::Boolean => fold(array.as_boolean(), hashes, |v| [u8::from(v)]),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Float16 => fold(array.as_primitive::<Float16Type>(), hashes, |v| canonical_f32(v.to_f32())),
        DataType::Float32 => fold(array.as_primitive::<Float32Type>(), hashes, canonical_f32),
        DataType::Float64 => fold(array.as_primitive::<Float64Type>(), hashes, canonical_f64),
        DataType::Decimal32(..) => int!(Decimal32Type),
        DataType::Decimal64(..) => int!(Decimal64Type),
        DataType::Decimal128(..) => int!(Decimal128Type),
        DataType::Decimal256(..) => int!(Decimal256Type),
        DataType::Date32 => int!(Date32Type),
        DataType::Date64 => int!(Date64Type),
        DataType::Time32(TimeUnit::Second) => int!(Time32SecondType),
        DataType::Time32(_) => int!(Time32MillisecondType),
        DataType::Time64(TimeUnit::Microsecond) => int!(Time64MicrosecondType),
        DataType::Time64(_) => int!(Time64NanosecondType),
        DataType::Timestamp(TimeUnit::Second, _) => int!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => int!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => int!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => int!(TimestampNanosecondType),
        DataType::Duration(TimeUnit::Second) => int!(DurationSecondType),
        DataType::Duration(TimeUnit::Millisecond) => int!(DurationMillisecondType),
        DataType::Duration(TimeUnit::Microsecond) => int!(DurationMicrosecondType),
        DataType::Duration(TimeUnit::Nanosecond) => int!(DurationNanosecondType),
        DataType::Interval(IntervalUnit::YearMonth) => int!(IntervalYearMonthType),
        DataType::Interval(IntervalUnit::DayTime) => {
            fold(array.as_primitive::<IntervalDayTimeType>(), hashes, |v| {
                let mut b = [0; 8];
                b[..4].copy_from_slice(&v.days.to_le_bytes());
                b[4..].copy_from_slice(&v.milliseconds.to_le_bytes());
                b
            })
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            fold(array.as_primitive::<IntervalMonthDayNanoType>(), hashes, |v| {
                let mut b = [0; 16];
                b[..4].copy_from_slice(&v.months.to_le_bytes());
                b[4..8].copy_from_slice(&v.days.to_le_bytes());
                b[8..].copy_from_slice(&v.nanoseconds.to_le_bytes());
                b
            })
        }
        DataType::Utf8 => fold(array.as_string::<i32>(), hashes, |v| v),
        DataType::LargeUtf8 => fold(array.as_string::<i64>(), hashes, |v| v),
        DataType::Utf8View => fold(array.as_string_view(), hashes, |v| v),
        DataType::Binary => fold(array.as_binary::<i32>(), hashes, |v| v),
        DataType::LargeBinary => fold(array.as_binary::<i64>(), hashes, |v| v),
        DataType::BinaryView => fold(array.as_binary_view(), hashes, |v| v),
        DataType::FixedSizeBinary(_) => fold(array.as_fixed_size_binary(), hashes, |v| v),
        DataType::Dictionary(_, values) => {
            let plain = datafusion::arrow::compute::cast(array, values).context(|| "hashing a dictionary key".into())?;
            fold_column(&plain, hashes)?;
        }
        DataType::Struct(_) => {
            let s = array.as_struct();
            let seeds = s.nulls().map(|_| hashes.to_vec());
            for field in s.columns() {
                fold_column(&Arc::clone(field), hashes)?;
            }
            if let Some(seeds) = seeds {
                for (i, h) in hashes.iter_mut().enumerate() {
                    if s.is_null(i) {
                        *h = null(seeds[i]);
                    }
                }
            }
        }
        DataType::List(_) => fold_lists(array.as_list::<i32>(), hashes)?,
        DataType::LargeList(_) => fold_lists(array.as_list::<i64>(), hashes)?,
        DataType::Map(..) => {
            let map = array.as_map();
            let entries: ArrayRef = Arc::new(map.entries().clone());
            let lists = GenericListArray::<i32>::try_new(
                Arc::new(Field::new("entries", entries.data_type().clone(), false)),
                map.offsets().clone(),
                entries,
                map.nulls().cloned(),
            )
            .context(|| "hashing a map key".into())?;
            fold_lists(&lists, hashes)?;
        }
        other => {
            return Err(EngineError::Task {
                task: "key exchange".into(),
                message: format!("cannot partition rows by a key of type {other}: key by a column of a scalar type"),
                kind: ErrorKind::User,
            });
        }
    }
    Ok(())
}

/// Folds every list of `lists` into its row's hash: its length, then its
/// elements' own hashes.
fn fold_lists<O: OffsetSizeTrait>(lists: &GenericListArray<O>, hashes: &mut [u64]) -> Result<()> {
    let mut elements = vec![0; lists.values().len()];
    hash_keys(std::slice::from_ref(lists.values()), &mut elements)?;
    let offsets = lists.value_offsets();
    for (i, h) in hashes.iter_mut().enumerate() {
        if lists.is_null(i) {
            *h = null(*h);
            continue;
        }
        let (start, end) = (offsets[i].as_usize(), offsets[i + 1].as_usize());
        *h = XxHash3_64::oneshot_with_seed(*h, &((end - start) as u64).to_le_bytes());
        for e in &elements[start..end] {
            *h = XxHash3_64::oneshot_with_seed(*h, &e.to_le_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray, StructArray, TimestampMillisecondArray};

    use super::*;

    fn hashes(keys: Vec<ArrayRef>) -> Vec<u64> {
        let mut h = vec![1; keys[0].len()];
        hash_keys(&keys, &mut h).expect("hashable");
        h
    }

    /// The hashes of known keys, as computed by the reference xxHash
    /// library (Python's `xxhash`, `xxh3_64_intdigest(bytes, seed=h)`): a
    /// change here moves keys between key groups, so it needs a new
    /// KEY_HASH_VERSION.
    #[test]
    fn known_keys_hash_to_pinned_values() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(0), Some(42), Some(-1), None]));
        let strings: ArrayRef = Arc::new(StringArray::from(vec![Some(""), Some("auction-7"), Some("北京"), None]));
        let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![Some(0), Some(1_767_225_600_000), None, Some(5)]));
        assert_eq!(
            hashes(vec![Arc::clone(&ints)]),
            vec![0xc77b3abb6f87acd9, 0xd5a6f8c838df27c8, 0x5111c7e47d784413, 0x602b0e2cd6662c8b]
        );
        assert_eq!(
            hashes(vec![Arc::clone(&strings)]),
            vec![0x2d06800538d394c2, 0x83a0eb5bbcba806d, 0x25e0bd0fa0da6684, 0x602b0e2cd6662c8b]
        );
        assert_eq!(
            hashes(vec![ints, strings, ts]),
            vec![0x83904dbbec664c49, 0xbc804c4d257f5668, 0x530e57a77c8180fe, 0xb54d7e388122986c]
        );
    }

    /// The definition in the module's doc, computed independently.
    #[test]
    fn a_row_folds_its_columns_in_order() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), None]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["x", "y"]));
        let first = XxHash3_64::oneshot_with_seed(0, &7i64.to_le_bytes());
        let row0 = XxHash3_64::oneshot_with_seed(first, b"x");
        let null = XxHash3_64::oneshot_with_seed(NULL_SEED, &[]);
        let row1 = XxHash3_64::oneshot_with_seed(null, b"y");
        assert_eq!(hashes(vec![a, b]), vec![row0, row1]);
    }

    #[test]
    fn equal_floats_hash_alike() {
        let f: ArrayRef = Arc::new(Float64Array::from(vec![0.0, -0.0, f64::NAN, -f64::NAN, 1.5]));
        let h = hashes(vec![f]);
        assert_eq!(h[0], h[1]);
        assert_eq!(h[2], h[3]);
        assert_ne!(h[0], h[4]);
    }

    #[test]
    fn a_null_struct_is_a_null() {
        let fields = Fields::from(vec![Field::new("a", DataType::Int64, true)]);
        let inner: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(1)]));
        let s: ArrayRef = Arc::new(StructArray::new(
            fields,
            vec![inner],
            Some(datafusion::arrow::buffer::NullBuffer::from(vec![true, false])),
        ));
        let plain: ArrayRef = Arc::new(Int64Array::from(vec![Some(1)]));
        let h = hashes(vec![s]);
        assert_eq!(h[0], hashes(vec![plain])[0]);
        assert_eq!(h[1], null(0));
    }

    /// A list is its length, then its elements' own hashes: computed here
    /// from the definition.
    #[test]
    fn a_list_folds_its_length_and_elements() {
        let list: ArrayRef = Arc::new(datafusion::arrow::array::ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![]),
            None,
        ]));
        let element = |v: i64| XxHash3_64::oneshot_with_seed(0, &v.to_le_bytes());
        let mut row0 = XxHash3_64::oneshot_with_seed(0, &2u64.to_le_bytes());
        for v in [1, 2] {
            row0 = XxHash3_64::oneshot_with_seed(row0, &element(v).to_le_bytes());
        }
        let row1 = XxHash3_64::oneshot_with_seed(0, &0u64.to_le_bytes());
        assert_eq!(hashes(vec![list]), vec![row0, row1, null(0)]);
    }

    #[test]
    fn unions_are_refused_with_their_type() {
        let fields = UnionFields::try_new(vec![0], vec![Field::new("a", DataType::Int64, true)]).expect("union fields");
        let union: ArrayRef = Arc::new(
            datafusion::arrow::array::UnionArray::try_new(
                fields,
                vec![0].into(),
                None,
                vec![Arc::new(Int64Array::from(vec![1])) as ArrayRef],
            )
            .expect("a union"),
        );
        let err = hash_keys(&[union], &mut [0]).expect_err("unions are not keys");
        assert!(err.to_string().contains("cannot partition rows by a key of type Union"), "{err}");
    }
}
