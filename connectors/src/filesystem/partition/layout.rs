//! Which columns of a filesystem table are its partition columns, and how
//! their values name the directories rows are written to and read from.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};

use super::path::{escape, parse_component};
use crate::error::ConnectorError;

/// Flink's `'partition.default-name'` default: the directory of rows whose
/// partition value is NULL or empty.
pub(crate) const DEFAULT_PARTITION_NAME: &str = "__DEFAULT_PARTITION__";

/// One `PARTITIONED BY` column.
#[derive(Debug, Clone)]
pub(crate) struct PartitionKey {
    pub(crate) name: String,
    /// Its position among the table's (physical) columns.
    pub(crate) index: usize,
    pub(crate) data_type: DataType,
    /// `key=` as it starts a directory name: the escaped name.
    prefix: String,
}

/// The partitioning of a table: its partition columns in `PARTITIONED BY`
/// order, and the columns its files hold — all the others, as Flink writes
/// csv and json files without the partition columns, whose values are in
/// the path.
#[derive(Debug)]
pub(crate) struct PartitionLayout {
    keys: Vec<PartitionKey>,
    /// The table's columns less the partition columns, in table order.
    data_schema: SchemaRef,
    /// Their positions among the table's columns.
    data_indices: Vec<usize>,
    /// `'partition.default-name'`.
    default_name: String,
}

impl PartitionLayout {
    /// The layout of a table with columns `schema` partitioned by `keys`;
    /// refuses keys that are not columns, named twice, of a type whose
    /// text does not read back as the same value, or that leave no column
    /// for the files.
    pub(crate) fn new(schema: &Schema, keys: &[String], default_name: String) -> Result<Self, ConnectorError> {
        let refuse = |what: String| ConnectorError::Unsupported {
            connector: "filesystem".into(),
            what,
        };
        let mut parsed: Vec<PartitionKey> = Vec::with_capacity(keys.len());
        for key in keys {
            let index = schema.index_of(key).map_err(|_| {
                let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                refuse(format!(
                    "PARTITIONED BY names '{key}', which is not a column (columns: {})",
                    columns.join(", ")
                ))
            })?;
            if parsed.iter().any(|k| k.index == index) {
                return Err(refuse(format!("PARTITIONED BY names '{key}' twice")));
            }
            let data_type = schema.field(index).data_type().clone();
            if !partitionable(&data_type) {
                return Err(refuse(format!(
                    "partition column '{key}' has type {}: partition columns are STRING (CHAR, VARCHAR), \
                     TINYINT, SMALLINT, INT, BIGINT, BOOLEAN or DATE, whose text in a directory name reads back as the same value",
                    crate::types::sql_name(&data_type)
                )));
            }
            parsed.push(PartitionKey {
                name: key.clone(),
                index,
                data_type,
                prefix: format!("{}=", escape(key)),
            });
        }
        let data_indices: Vec<usize> = (0..schema.fields().len())
            .filter(|i| parsed.iter().all(|k| k.index != *i))
            .collect();
        if data_indices.is_empty() {
            return Err(refuse(format!(
                "PARTITIONED BY names every column ({}): the part files hold the columns that are not partition columns, \
                 so at least one is needed",
                keys.join(", ")
            )));
        }
        if default_name.is_empty() {
            return Err(ConnectorError::invalid(
                "partition.default-name",
                &default_name,
                "expected a non-empty name",
            ));
        }
        let data_schema = Arc::new(schema.project(&data_indices).map_err(|e| refuse(e.to_string()))?);
        Ok(Self {
            keys: parsed,
            data_schema,
            data_indices,
            default_name,
        })
    }

    pub(crate) fn keys(&self) -> &[PartitionKey] {
        &self.keys
    }

    /// The columns of the part files.
    pub(crate) fn data_schema(&self) -> &SchemaRef {
        &self.data_schema
    }

    /// Positions of [`Self::data_schema`]'s columns in the table's row.
    pub(crate) fn data_indices(&self) -> &[usize] {
        &self.data_indices
    }

    /// `'partition.default-name'`: the directory value of NULL and `''`.
    pub(crate) fn default_name(&self) -> &str {
        &self.default_name
    }

    /// The directory, relative to the table's path, of the row at `row`
    /// of `texts` (the partition columns as Utf8, in key order):
    /// `k1=v1/k2=v2`, each name and value escaped, NULL and `''` as the
    /// default name.
    pub(crate) fn dir_of(&self, texts: &[ArrayRef], row: usize) -> String {
        let mut dir = String::new();
        for (key, text) in self.keys.iter().zip(texts) {
            if !dir.is_empty() {
                dir.push('/');
            }
            let text = text.as_string::<i32>();
            let value = match text.is_valid(row) {
                true if !text.value(row).is_empty() => text.value(row),
                _ => &self.default_name,
            };
            dir.push_str(&key.prefix);
            dir.push_str(&escape(value));
        }
        dir
    }

    /// Whether `name` can be the directory of partition column `level`
    /// (`key=…` with this key).
    pub(crate) fn is_level(&self, level: usize, name: &str) -> bool {
        self.keys
            .get(level)
            .is_some_and(|k| name.strip_prefix(&k.prefix).is_some_and(|v| !v.is_empty()))
    }

    /// The partition values a directory `rel` (relative to the table's
    /// path) stands for, unescaped and in key order, the default name kept
    /// as it is written; `None` unless it is one `key=value` level per
    /// partition column, with this table's keys.
    pub(crate) fn values_of(&self, rel: &str) -> Option<Vec<String>> {
        let components: Vec<&str> = rel.split('/').collect();
        if components.len() != self.keys.len() {
            return None;
        }
        components
            .iter()
            .zip(&self.keys)
            .map(|(c, key)| match parse_component(c) {
                Some((k, v)) if k == key.name.as_str() && self.is_level_exact(key, c) => Some(v.into_owned()),
                _ => None,
            })
            .collect()
    }

    /// `component` starts with `key`'s escaped name and `=`, as written.
    fn is_level_exact(&self, key: &PartitionKey, component: &str) -> bool {
        component
            .strip_prefix(&key.prefix)
            .is_some_and(|v| !v.is_empty() && !v.contains('='))
    }
}

/// Types whose text, as arrow casts it, reads back as the same value.
fn partitionable(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Boolean
            | DataType::Date32
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::Field;

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("v", DataType::Int64, true),
            Field::new("dt", DataType::Utf8, true),
            Field::new("hm", DataType::Utf8, true),
            Field::new(
                "ts",
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None),
                true,
            ),
        ])
    }

    fn layout(keys: &[&str]) -> Result<PartitionLayout, ConnectorError> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        PartitionLayout::new(&schema(), &keys, DEFAULT_PARTITION_NAME.into())
    }

    #[test]
    fn data_columns_are_the_others_in_table_order() {
        let l = layout(&["hm", "dt"]).unwrap();
        assert_eq!(l.data_indices(), &[0, 3]);
        assert_eq!(l.data_schema().fields().len(), 2);
        assert_eq!(l.keys().iter().map(|k| k.index).collect::<Vec<_>>(), vec![2, 1]);
    }

    #[test]
    fn directories_escape_values_and_name_the_default_partition() {
        let l = layout(&["dt", "hm"]).unwrap();
        let dt: ArrayRef = Arc::new(StringArray::from(vec![Some("2024-01-01"), None, Some("")]));
        let hm: ArrayRef = Arc::new(StringArray::from(vec![Some("10:05"), Some("a/b"), None]));
        let texts = [dt, hm];
        assert_eq!(l.dir_of(&texts, 0), "dt=2024-01-01/hm=10%3A05");
        assert_eq!(l.dir_of(&texts, 1), "dt=__DEFAULT_PARTITION__/hm=a%2Fb");
        assert_eq!(l.dir_of(&texts, 2), "dt=__DEFAULT_PARTITION__/hm=__DEFAULT_PARTITION__");
        assert_eq!(
            l.values_of("dt=2024-01-01/hm=10%3A05").unwrap(),
            vec!["2024-01-01", "10:05"]
        );
        for bad in [
            "dt=2024-01-01",
            "hm=1/dt=2",
            "dt=1/hm=2/x=3",
            "dt=/hm=1",
            "../hm=1",
            "dt=1/hm=a=b",
        ] {
            assert!(l.values_of(bad).is_none(), "{bad}");
        }
        assert!(l.is_level(0, "dt=x") && !l.is_level(0, "hm=x") && !l.is_level(0, "dt=") && !l.is_level(2, "x=1"));
    }

    #[test]
    fn refusals_name_the_column() {
        let e = layout(&["nope"]).unwrap_err().to_string();
        assert!(e.contains("'nope'") && e.contains("v, dt, hm, ts"), "{e}");
        let e = layout(&["dt", "dt"]).unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
        let e = layout(&["ts"]).unwrap_err().to_string();
        assert!(e.contains("'ts'") && e.contains("TIMESTAMP"), "{e}");
        let one = Schema::new(vec![Field::new("dt", DataType::Utf8, true)]);
        let e = PartitionLayout::new(&one, &["dt".into()], DEFAULT_PARTITION_NAME.into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("every column"), "{e}");
    }
}
