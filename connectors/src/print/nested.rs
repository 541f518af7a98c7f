//! Nested values as Flink's print sink writes them: it prints the external
//! Java objects of a row, so a ROW is a `Row` (`+I[a, b]`), a MAP a
//! `java.util.Map` (`{k=v, …}`), an ARRAY a Java array (`[a, b]`), NULL
//! `null`, and a timestamp inside them a `LocalDateTime`
//! (`2026-01-01T10:00`), as at the top of the row.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, OffsetSizeTrait};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::temporal::{Layout, write_timestamp};

/// Whether values of `data_type` print otherwise than arrow displays them.
pub(super) fn is_nested(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Struct(_) | DataType::Map(..) | DataType::List(_) | DataType::LargeList(_))
}

/// Appends the text of value `i` of `array` to `out`.
pub(super) fn write(array: &ArrayRef, i: usize, options: &FormatOptions, out: &mut String) -> Result<(), ArrowError> {
    if array.is_null(i) {
        out.push_str("null");
        return Ok(());
    }
    match array.data_type() {
        DataType::Struct(_) => {
            out.push_str("+I[");
            for (k, field) in array.as_struct().columns().iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                write(field, i, options, out)?;
            }
            out.push(']');
        }
        DataType::Map(..) => {
            let map = array.as_map();
            let (keys, values) = (map.keys(), map.values());
            let offsets = map.value_offsets();
            out.push('{');
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                if j > offsets[i] as usize {
                    out.push_str(", ");
                }
                write(keys, j, options, out)?;
                out.push('=');
                write(values, j, options, out)?;
            }
            out.push('}');
        }
        DataType::List(_) => write_list::<i32>(array, i, options, out)?,
        DataType::LargeList(_) => write_list::<i64>(array, i, options, out)?,
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            write_timestamp(out, array.as_primitive::<TimestampMillisecondType>().value(i), Layout::JavaLocal);
        }
        _ => ArrayFormatter::try_new(array.as_ref(), options)?.value(i).write(out)?,
    }
    Ok(())
}

fn write_list<O: OffsetSizeTrait>(
    array: &ArrayRef,
    i: usize,
    options: &FormatOptions,
    out: &mut String,
) -> Result<(), ArrowError> {
    let list = array.as_list::<O>();
    let elements = list.values();
    let offsets = list.value_offsets();
    let (from, to) = (offsets[i].as_usize(), offsets[i + 1].as_usize());
    out.push('[');
    for j in from..to {
        if j > from {
            out.push_str(", ");
        }
        write(elements, j, options, out)?;
    }
    out.push(']');
    Ok(())
}
