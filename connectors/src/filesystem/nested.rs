//! TIMESTAMP(3) values at any depth of ROW, ARRAY and MAP columns, to and
//! from their text: the JSON format reads every timestamp as text and
//! parses it with [`parse_timestamps`] (which accepts more forms than
//! arrow's JSON decoder), and writes every timestamp as Flink writes it,
//! nested or not.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, StructArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Fields, TimeUnit,
};
use datafusion::arrow::error::ArrowError;

use super::timestamp::parse_timestamps;
use crate::temporal::{Layout, timestamp_text};

/// Whether a value of `dt` is, or holds, a TIMESTAMP(3).
fn has_timestamp(dt: &DataType) -> bool {
    match dt {
        DataType::Timestamp(TimeUnit::Millisecond, _) => true,
        DataType::Struct(fields) => fields.iter().any(|f| has_timestamp(f.data_type())),
        DataType::List(item) | DataType::Map(item, _) => has_timestamp(item.data_type()),
        _ => false,
    }
}

/// `dt` with every TIMESTAMP(3) in it, at any depth, made text: the type
/// arrow's JSON decoder is asked for.
pub(crate) fn timestamps_as_text(dt: &DataType) -> DataType {
    match dt {
        DataType::Timestamp(TimeUnit::Millisecond, _) => DataType::Utf8,
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(text_field).collect()),
        DataType::List(item) => DataType::List(text_field(item)),
        DataType::Map(entries, sorted) => DataType::Map(text_field(entries), *sorted),
        other => other.clone(),
    }
}

fn text_field(f: &FieldRef) -> FieldRef {
    Arc::new(
        f.as_ref()
            .clone()
            .with_data_type(timestamps_as_text(f.data_type())),
    )
}

/// `text`, decoded as [`timestamps_as_text`] of `want`, as `want`:
/// every text standing for a TIMESTAMP(3) parsed. `column` names the
/// column in errors; a nested value is named by its path (`r.ts`, `a[]`,
/// `m.key`, `m.value`).
pub(crate) fn parse_nested_timestamps(
    text: &ArrayRef,
    want: &DataType,
    column: &str,
) -> Result<ArrayRef, ArrowError> {
    if !has_timestamp(want) {
        return Ok(Arc::clone(text));
    }
    rebuild(text, want, column, &mut |leaf, want, path| match want {
        DataType::Timestamp(TimeUnit::Millisecond, _) => parse_timestamps(leaf, path),
        _ => Ok(Arc::clone(leaf)),
    })
}

/// `column` with every TIMESTAMP(3) in it, at any depth, replaced by its
/// text in `layout`, so that arrow's writers emit Flink's strings.
pub(crate) fn format_nested_timestamps(
    column: &ArrayRef,
    layout: Layout,
) -> Result<ArrayRef, ArrowError> {
    let dt = column.data_type().clone();
    if !has_timestamp(&dt) {
        return Ok(Arc::clone(column));
    }
    rebuild(column, &dt, "", &mut |leaf, want, _| match want {
        DataType::Timestamp(TimeUnit::Millisecond, _) => Ok(timestamp_text(leaf, layout)),
        _ => Ok(Arc::clone(leaf)),
    })
}


/// What [`rebuild`] does to each array that is not a ROW, ARRAY or MAP:
/// given it, the type the schema wants there, and its path.
type Leaf<'a> = dyn FnMut(&ArrayRef, &DataType, &str) -> Result<ArrayRef, ArrowError> + 'a;

/// `array` rebuilt with `leaf` applied to every scalar array inside it,
/// walking `want` (the declared type) alongside: the layout (offsets,
/// nulls, names) is kept, only leaf values change type.
fn rebuild(
    array: &ArrayRef,
    want: &DataType,
    path: &str,
    leaf: &mut Leaf,
) -> Result<ArrayRef, ArrowError> {
    match (want, array.data_type()) {
        (DataType::Struct(fields), DataType::Struct(_)) => Ok(Arc::new(rebuild_struct(
            array.as_struct(),
            fields,
            path,
            leaf,
        )?)),
        (DataType::List(item), DataType::List(_)) => {
            let list = array.as_list::<i32>();
            let values = rebuild(list.values(), item.data_type(), &format!("{path}[]"), leaf)?;
            let item = Arc::new(
                item.as_ref()
                    .clone()
                    .with_data_type(values.data_type().clone()),
            );
            Ok(Arc::new(ListArray::try_new(
                item,
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?))
        }
        (DataType::Map(entries, sorted), DataType::Map(_, _)) => {
            let map = array.as_map();
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(ArrowError::SchemaError(format!(
                    "column '{path}': a MAP's entries must be a struct"
                )));
            };
            let rebuilt = rebuild_struct(map.entries(), kv, path, leaf)?;
            let entries = Arc::new(
                entries
                    .as_ref()
                    .clone()
                    .with_data_type(rebuilt.data_type().clone()),
            );
            Ok(Arc::new(MapArray::try_new(
                entries,
                map.offsets().clone(),
                rebuilt,
                map.nulls().cloned(),
                *sorted,
            )?))
        }
        _ => leaf(array, want, path),
    }
}

/// A struct rebuilt field by field (see [`rebuild`]); a field's path is
/// `path.name`.
fn rebuild_struct(
    array: &StructArray,
    want: &Fields,
    path: &str,
    leaf: &mut Leaf,
) -> Result<StructArray, ArrowError> {
    if array.num_columns() != want.len() {
        return Err(ArrowError::SchemaError(format!(
            "column '{path}': expected {} ROW fields",
            want.len()
        )));
    }
    let mut fields = Vec::with_capacity(want.len());
    let mut children = Vec::with_capacity(want.len());
    for (field, child) in want.iter().zip(array.columns()) {
        let child = rebuild(
            child,
            field.data_type(),
            &format!("{path}.{}", field.name()),
            leaf,
        )?;
        fields.push(Field::new(
            field.name(),
            child.data_type().clone(),
            field.is_nullable(),
        ));
        children.push(child);
    }
    StructArray::try_new(fields.into(), children, array.nulls().cloned())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Builder, ListBuilder, StringArray, StructBuilder};
    use datafusion::arrow::array::{
        MapBuilder, StringBuilder as Strings, TimestampMillisecondArray,
    };
    use datafusion::arrow::datatypes::TimestampMillisecondType;

    use super::*;

    const TS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

    fn row_type() -> DataType {
        DataType::Struct(Fields::from(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("ts", TS, true),
        ]))
    }

    /// ROW<id BIGINT, ts TIMESTAMP(3)> with its timestamps as `ts` texts.
    fn text_rows(ts: &[Option<&str>]) -> ArrayRef {
        let DataType::Struct(fields) = timestamps_as_text(&row_type()) else {
            unreachable!()
        };
        let mut b = StructBuilder::from_fields(fields, ts.len());
        for (i, t) in ts.iter().enumerate() {
            b.field_builder::<Int64Builder>(0)
                .unwrap()
                .append_value(i as i64);
            b.field_builder::<Strings>(1).unwrap().append_option(*t);
            b.append(true);
        }
        Arc::new(b.finish())
    }

    #[test]
    fn parses_timestamps_in_rows_in_every_form() {
        let text = text_rows(&[
            Some("2026-01-01 00:00:00.250"),
            Some("2026-01-01T00:00:00Z"),
            Some("1767225600000"),
            None,
        ]);
        let parsed = parse_nested_timestamps(&text, &row_type(), "r").unwrap();
        assert_eq!(parsed.data_type(), &row_type());
        let ts = parsed
            .as_struct()
            .column(1)
            .as_primitive::<TimestampMillisecondType>()
            .clone();
        let base = 1_767_225_600_000;
        assert_eq!(
            ts.iter().collect::<Vec<_>>(),
            vec![Some(base + 250), Some(base), Some(base), None]
        );
    }

    #[test]
    fn names_the_nested_field_of_a_bad_timestamp() {
        let err =
            parse_nested_timestamps(&text_rows(&[Some("noon")]), &row_type(), "r").unwrap_err();
        assert!(err.to_string().contains("column 'r.ts'"), "{err}");
    }

    #[test]
    fn formats_timestamps_in_arrays_and_maps() {
        let mut list = ListBuilder::new(Int64Builder::new());
        list.values().append_value(1);
        list.append(true);
        let list: ArrayRef = Arc::new(list.finish());
        assert!(
            Arc::ptr_eq(
                &format_nested_timestamps(&list, Layout::Sql).unwrap(),
                &list
            ),
            "nothing to convert"
        );

        let times = Arc::new(TimestampMillisecondArray::from(vec![
            Some(1_767_225_600_500),
            None,
        ]));
        let offsets = datafusion::arrow::buffer::OffsetBuffer::from_lengths([2]);
        let item = Arc::new(Field::new_list_field(TS, true));
        let array: ArrayRef = Arc::new(ListArray::try_new(item, offsets, times, None).unwrap());
        let text = format_nested_timestamps(&array, Layout::Iso8601).unwrap();
        let values = text.as_list::<i32>().values().as_string::<i32>().clone();
        assert_eq!(
            values,
            StringArray::from(vec![Some("2026-01-01T00:00:00.5"), None])
        );

        let mut map = MapBuilder::new(None, Strings::new(), Int64Builder::new());
        map.keys().append_value("a");
        map.values().append_value(1);
        map.append(true).unwrap();
        let map: ArrayRef = Arc::new(map.finish());
        assert_eq!(
            format_nested_timestamps(&map, Layout::Sql)
                .unwrap()
                .data_type(),
            map.data_type()
        );
    }
}
