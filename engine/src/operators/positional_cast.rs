//! A cast that matches ROW fields by position, as Flink's `INSERT INTO`
//! does: `ROW(k, 'x')` (fields `c0`, `c1`) into a column `ROW<a INT, b
//! STRING>` gives `a` the first and `b` the second. Arrow casts structs by
//! field name, and fails at run time when no name matches; here the
//! fields are first renamed to the target's, at every level of nesting
//! (rows in arrays, in maps, in rows), then cast as usual.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, MapArray, OffsetSizeTrait, RecordBatch, StructArray,
};
use datafusion::arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_plan::PhysicalExpr;

/// `expr` cast to `to`, ROW fields matched by position.
#[derive(Debug, Eq)]
pub struct PositionalCast {
    expr: Arc<dyn PhysicalExpr>,
    to: DataType,
}

impl PartialEq for PositionalCast {
    fn eq(&self, other: &Self) -> bool {
        self.expr.eq(&other.expr) && self.to == other.to
    }
}

impl Hash for PositionalCast {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.expr.hash(state);
        self.to.hash(state);
    }
}

impl PositionalCast {
    /// The cast of `expr` (of type `from`) to `to`, or why it cannot be.
    pub fn new(expr: Arc<dyn PhysicalExpr>, from: &DataType, to: DataType) -> std::result::Result<Self, String> {
        let renamed = renamed_type(from, &to)?;
        if !can_cast_types(&renamed, &to) {
            return Err(format!("cannot cast {from} to {to}"));
        }
        Ok(Self { expr, to })
    }
}

/// `from` with its ROW fields named as `to`'s, by position.
fn renamed_type(from: &DataType, to: &DataType) -> std::result::Result<DataType, String> {
    Ok(match (from, to) {
        (DataType::Struct(f), DataType::Struct(t)) => DataType::Struct(renamed_fields(f, t)?),
        (DataType::List(f), DataType::List(t)) => DataType::List(renamed_field(f, t)?),
        (DataType::LargeList(f), DataType::LargeList(t)) => DataType::LargeList(renamed_field(f, t)?),
        (DataType::Map(f, sorted), DataType::Map(t, _)) => DataType::Map(renamed_field(f, t)?, *sorted),
        _ => from.clone(),
    })
}

fn renamed_field(from: &FieldRef, to: &FieldRef) -> std::result::Result<FieldRef, String> {
    Ok(Arc::new(Field::new(
        to.name(),
        renamed_type(from.data_type(), to.data_type())?,
        from.is_nullable(),
    )))
}

fn renamed_fields(from: &Fields, to: &Fields) -> std::result::Result<Fields, String> {
    if from.len() != to.len() {
        let names = |f: &Fields| f.iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
        return Err(format!(
            "a ROW of {} fields ({}) cannot be written as one of {} ({})",
            from.len(),
            names(from),
            to.len(),
            names(to)
        ));
    }
    from.iter().zip(to.iter()).map(|(f, t)| renamed_field(f, t)).collect()
}

/// `array` with its ROW fields named as in `to` (same nesting, same
/// field counts: checked when the cast was planned).
fn rename(array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    Ok(match (array.data_type(), to) {
        (DataType::Struct(_), DataType::Struct(t)) => {
            let s = array.as_struct();
            let columns: Vec<ArrayRef> = s
                .columns()
                .iter()
                .zip(t.iter())
                .map(|(c, f)| rename(c, f.data_type()))
                .collect::<Result<_>>()?;
            let fields: Fields = columns
                .iter()
                .zip(s.fields().iter().zip(t.iter()))
                .map(|(c, (from, to))| Field::new(to.name(), c.data_type().clone(), from.is_nullable()))
                .collect();
            Arc::new(StructArray::try_new(fields, columns, s.nulls().cloned())?)
        }
        (DataType::List(f), DataType::List(t)) => rename_list(array.as_list::<i32>(), f, t)?,
        (DataType::LargeList(f), DataType::LargeList(t)) => rename_list(array.as_list::<i64>(), f, t)?,
        (DataType::Map(_, sorted), DataType::Map(t, _)) => {
            let m = array.as_map();
            let entries: ArrayRef = Arc::new(m.entries().clone());
            let entries = rename(&entries, t.data_type())?;
            let field = Arc::new(Field::new(t.name(), entries.data_type().clone(), false));
            Arc::new(MapArray::try_new(
                field,
                m.offsets().clone(),
                entries.as_struct().clone(),
                m.nulls().cloned(),
                *sorted,
            )?)
        }
        _ => Arc::clone(array),
    })
}

/// A list whose elements are renamed as `to`'s.
fn rename_list<O: OffsetSizeTrait>(list: &GenericListArray<O>, from: &FieldRef, to: &FieldRef) -> Result<ArrayRef> {
    let values = rename(list.values(), to.data_type())?;
    let field = Arc::new(Field::new(to.name(), values.data_type().clone(), from.is_nullable()));
    Ok(Arc::new(GenericListArray::try_new(field, list.offsets().clone(), values, list.nulls().cloned())?))
}

impl fmt::Display for PositionalCast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAST({} AS {})", self.expr, self.to)
    }
}

impl PhysicalExpr for PositionalCast {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(self.to.clone())
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.expr.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let value = self.expr.evaluate(batch)?.into_array(batch.num_rows())?;
        let renamed = rename(&value, &self.to)?;
        match cast_with_options(&renamed, &self.to, &CastOptions::default()) {
            Ok(cast) => Ok(ColumnarValue::Array(cast)),
            Err(e) => exec_err!("{self}: {e}"),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.expr]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        match children.as_slice() {
            [expr] => Ok(Arc::new(Self {
                expr: Arc::clone(expr),
                to: self.to.clone(),
            })),
            _ => exec_err!("a cast has one child"),
        }
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAST(")?;
        self.expr.fmt_sql(f)?;
        write!(f, " AS {})", self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, Int64Array, StringArray};
    use datafusion::physical_expr::expressions::Column;

    /// ROW(c0 BIGINT, c1 STRING) into ROW<a INT, b STRING>: by position,
    /// with the field's type converted.
    #[test]
    fn rows_are_written_field_by_position() {
        let from = StructArray::from(vec![
            (
                Arc::new(Field::new("c0", DataType::Int64, true)),
                Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("c1", DataType::Utf8, true)),
                Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef,
            ),
        ]);
        let schema = Arc::new(Schema::new(vec![Field::new("r", from.data_type().clone(), true)]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(from.clone())]).unwrap();
        let to = DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        let cast = PositionalCast::new(Arc::new(Column::new("r", 0)), from.data_type(), to.clone()).unwrap();
        let out = cast.evaluate(&batch).unwrap().into_array(2).unwrap();
        assert_eq!(out.data_type(), &to);
        let out = out.as_struct();
        assert_eq!(
            out.column(0).as_primitive::<datafusion::arrow::datatypes::Int32Type>(),
            &Int32Array::from(vec![1, 2])
        );
        assert_eq!(out.column(1).as_string::<i32>(), &StringArray::from(vec!["x", "y"]));
        let three = DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Utf8, true),
        ]));
        let e = PositionalCast::new(Arc::new(Column::new("r", 0)), from.data_type(), three).unwrap_err();
        assert!(
            e.contains("a ROW of 2 fields (c0, c1) cannot be written as one of 3 (a, b, c)"),
            "{e}"
        );
    }
}
