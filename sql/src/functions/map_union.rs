//! Flink's `MAP_UNION(map1, map2, …)`, which DataFusion lacks: one map of
//! every entry of the maps, a key repeated in a later map taking that
//! map's value; NULL when any map is NULL. The maps must share one map
//! type.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, MapArray, StructArray, new_empty_array};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

/// `MAP_UNION(map, …)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct MapUnion {
    signature: Signature,
}

impl MapUnion {
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MapUnion {
    fn name(&self) -> &str {
        "map_union"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let mut map_type: Option<&DataType> = None;
        for (i, t) in args.iter().enumerate() {
            match (t, map_type) {
                (DataType::Null, _) => {}
                (DataType::Map(..), None) => map_type = Some(t),
                (DataType::Map(..), Some(m)) if m.equals_datatype(t) => {}
                (DataType::Map(..), Some(m)) => {
                    return plan_err!("MAP_UNION takes maps of one type: argument {} is {t}, not {m}", i + 1);
                }
                _ => return plan_err!("MAP_UNION takes maps (argument {}), not {t}", i + 1),
            }
        }
        match map_type {
            Some(t) => Ok(t.clone()),
            None => plan_err!("MAP_UNION takes at least one map"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let target = args.return_field.data_type().clone();
        let DataType::Map(entries_field, sorted) = &target else {
            return exec_err!("MAP_UNION returns a map, not {target}");
        };
        let DataType::Struct(entry_fields) = entries_field.data_type() else {
            return exec_err!("MAP_UNION: a map's entries are not a struct");
        };
        let maps: Vec<Option<ArrayRef>> = args
            .args
            .iter()
            .map(|a| {
                let array = a.to_array(rows)?;
                Ok(match array.data_type() {
                    DataType::Null => None,
                    _ => Some(array),
                })
            })
            .collect::<Result<_>>()?;
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        let mut offsets = vec![0i32];
        let mut valid = Vec::with_capacity(rows);
        for row in 0..rows {
            let mut entries: Vec<(ScalarValue, ScalarValue)> = Vec::new();
            let mut null = false;
            for map in &maps {
                let Some(map) = map.as_ref().filter(|m| !m.is_null(row)) else {
                    null = true;
                    break;
                };
                let map = map.as_map().value(row);
                for i in 0..map.len() {
                    let key = ScalarValue::try_from_array(map.column(0), i)?;
                    let value = ScalarValue::try_from_array(map.column(1), i)?;
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some(entry) => entry.1 = value,
                        None => entries.push((key, value)),
                    }
                }
            }
            valid.push(!null);
            if !null {
                for (k, v) in entries {
                    keys.push(k);
                    values.push(v);
                }
            }
            let end = i32::try_from(keys.len()).map_err(|_| {
                datafusion::error::DataFusionError::Execution("MAP_UNION: the result is too large".into())
            })?;
            offsets.push(end);
        }
        let column = |scalars: Vec<ScalarValue>, t: &DataType| -> Result<ArrayRef> {
            if scalars.is_empty() {
                Ok(new_empty_array(t))
            } else {
                Ok(datafusion::arrow::compute::cast(
                    &ScalarValue::iter_to_array(scalars)?,
                    t,
                )?)
            }
        };
        let keys = column(keys, entry_fields[0].data_type())?;
        let values = column(values, entry_fields[1].data_type())?;
        let entries = StructArray::try_new(entry_fields.clone(), vec![keys, values], None)?;
        let map = MapArray::try_new(
            entries_field.clone(),
            OffsetBuffer::new(offsets.into()),
            entries,
            Some(NullBuffer::from(valid)),
            *sorted,
        )?;
        Ok(ColumnarValue::Array(Arc::new(map)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's docs: `MAP_UNION(MAP['key1', 'value1', 'key2', 'value2'],
    /// MAP['key3', 'value3', 'key2', 'value4'])` is `{key1=value1,
    /// key2=value4, key3=value3}`; NULL when a map is NULL.
    #[tokio::test]
    async fn later_maps_win() {
        assert_eq!(
            query(
                "SELECT MAP_UNION(make_map('key1', 'value1', 'key2', 'value2'), \
                 make_map('key3', 'value3', 'key2', 'value4'))"
            )
            .await,
            ["{key1: value1, key2: value4, key3: value3}"]
        );
        assert_eq!(query("SELECT MAP_UNION(make_map('a', 1), NULL)").await, ["NULL"]);
        assert_eq!(query("SELECT MAP_UNION(make_map('a', 1))").await, ["{a: 1}"]);
        let e = query_err("SELECT MAP_UNION(make_map('a', 1), make_map(1, 'a'))").await;
        assert!(e.contains("MAP_UNION takes maps of one type: argument 2"), "{e}");
        let e = query_err("SELECT MAP_UNION(1)").await;
        assert!(e.contains("MAP_UNION takes maps (argument 1)"), "{e}");
    }
}
