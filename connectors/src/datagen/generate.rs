//! Whole columns of generated values, one batch at a time.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, ArrowPrimitiveType, new_null_array, BooleanArray, Date32Array, Int64Array, ListArray, MapArray, PrimitiveArray,
    StringArray, StructArray, TimestampMillisecondArray,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, nullif};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
};
use datafusion::arrow::error::ArrowError;
use rand::Rng;
use rand::distr::Distribution;
use rand::rngs::SmallRng;

use super::field::{FieldGen, Kind, Random};

const MS_PER_DAY: i64 = 86_400_000;

impl FieldGen {
    /// The next `rows` values of this column. A sequence continues from
    /// `next`, its value for the first row; random times are relative to
    /// `now_ms`.
    pub(crate) fn generate(
        &self,
        rng: &mut SmallRng,
        rows: usize,
        next: i64,
        now_ms: i64,
    ) -> Result<ArrayRef, ArrowError> {
        let values: ArrayRef = match &self.kind {
            Kind::Sequence { .. } => {
                // Counting up from `next` stays within the range: a batch
                // never passes the sequence's end.
                let numbers: ArrayRef = Arc::new(Int64Array::from_iter_values((0..rows as i64).map(|i| next + i)));
                match self.data_type {
                    DataType::Int64 => numbers,
                    _ => cast(&numbers, &self.data_type)?,
                }
            }
            Kind::Random(random) => random.generate(rng, rows, now_ms, &self.data_type)?,
            Kind::Unread => return Ok(new_null_array(&self.data_type, rows)),
        };
        match &self.null_rate {
            Some(rate) => {
                let nulls = BooleanArray::new(BooleanBuffer::collect_bool(rows, |_| rate.sample(rng)), None);
                nullif(&values, &nulls)
            }
            None => Ok(values),
        }
    }
}

impl Random {
    fn generate(&self, rng: &mut SmallRng, rows: usize, now_ms: i64, dt: &DataType) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Self::Int8(d) => Arc::new(sample::<Int8Type>(d, rng, rows)),
            Self::Int16(d) => Arc::new(sample::<Int16Type>(d, rng, rows)),
            Self::Int32(d) => Arc::new(sample::<Int32Type>(d, rng, rows)),
            Self::Int64(d) => Arc::new(sample::<Int64Type>(d, rng, rows)),
            Self::Float32(d) => Arc::new(sample::<Float32Type>(d, rng, rows)),
            Self::Float64(d) => Arc::new(sample::<Float64Type>(d, rng, rows)),
            Self::Decimal {
                unscaled,
                precision,
                scale,
            } => Arc::new(sample::<Decimal128Type>(unscaled, rng, rows).with_precision_and_scale(*precision, *scale)?),
            Self::Boolean => Arc::new(BooleanArray::new(
                BooleanBuffer::collect_bool(rows, |_| rng.random()),
                None,
            )),
            Self::Text { length, var_len: false } => {
                Arc::new(hex_strings(rng, rows, std::iter::repeat_n(*length, rows))?)
            }
            Self::Text { length, var_len: true } => {
                let lengths: Vec<usize> = (0..rows).map(|_| rng.random_range(1..=(*length).max(1))).collect();
                Arc::new(hex_strings(rng, rows, lengths.into_iter())?)
            }
            Self::Row(fields) => {
                let DataType::Struct(names) = dt else {
                    return Err(ArrowError::SchemaError(format!("datagen: a ROW generator for {dt}")));
                };
                let columns = fields
                    .iter()
                    .map(|f| f.generate(rng, rows, 0, now_ms))
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(StructArray::try_new(names.clone(), columns, None)?)
            }
            Self::List { element, length } => {
                let DataType::List(item) = dt else {
                    return Err(ArrowError::SchemaError(format!("datagen: an ARRAY generator for {dt}")));
                };
                let values = element.generate(rng, rows * length, 0, now_ms)?;
                let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(*length, rows));
                Arc::new(ListArray::try_new(Arc::clone(item), offsets, values, None)?)
            }
            Self::Map { key, value, length } => {
                let DataType::Map(entries, sorted) = dt else {
                    return Err(ArrowError::SchemaError(format!("datagen: a MAP generator for {dt}")));
                };
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err(ArrowError::SchemaError(format!(
                        "datagen: MAP entries of type {}",
                        entries.data_type()
                    )));
                };
                let keys = key.generate(rng, rows * length, 0, now_ms)?;
                let values = value.generate(rng, rows * length, 0, now_ms)?;
                let entry_rows = StructArray::try_new(kv.clone(), vec![keys, values], None)?;
                let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(*length, rows));
                Arc::new(MapArray::try_new(
                    Arc::clone(entries),
                    offsets,
                    entry_rows,
                    None,
                    *sorted,
                )?)
            }
            Self::Time { past_ms } => {
                let mut millis = vec![now_ms; rows];
                if let Some(past) = past_ms {
                    for (ms, back) in millis.iter_mut().zip(past.sample_iter(&mut *rng)) {
                        *ms -= back;
                    }
                }
                match dt {
                    DataType::Date32 => Arc::new(Date32Array::from_iter_values(
                        millis.iter().map(|ms| ms.div_euclid(MS_PER_DAY) as i32),
                    )),
                    _ => Arc::new(TimestampMillisecondArray::from(millis)),
                }
            }
        })
    }
}

fn sample<T: ArrowPrimitiveType>(
    dist: &impl Distribution<T::Native>,
    rng: &mut SmallRng,
    rows: usize,
) -> PrimitiveArray<T> {
    PrimitiveArray::from_iter_values(dist.sample_iter(rng).take(rows))
}

/// `rows` strings of random hexadecimal digits, of `lengths`, built as
/// one values buffer.
fn hex_strings(
    rng: &mut SmallRng,
    rows: usize,
    lengths: impl Iterator<Item = usize> + Clone,
) -> Result<StringArray, ArrowError> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = vec![0u8; lengths.clone().take(rows).sum()];
    rng.fill(&mut bytes[..]);
    for b in &mut bytes {
        *b = HEX[usize::from(*b & 0x0f)];
    }
    let offsets = OffsetBuffer::from_lengths(lengths.take(rows));
    StringArray::try_new(offsets, Buffer::from_vec(bytes), None)
}
