//! Flink's JSON aggregates, which DataFusion lacks:
//!
//! - `JSON_ARRAYAGG(item [{NULL | ABSENT} ON NULL])`: the items as a JSON
//!   array, in the order they came; NULL items left out by default
//!   (`ABSENT ON NULL`), written as `null` with `NULL ON NULL`.
//! - `JSON_OBJECTAGG([KEY] k VALUE v [{NULL | ABSENT} ON NULL])`: a JSON
//!   object of each key to its value; a NULL value is `null` by default
//!   (`NULL ON NULL`), its entry left out with `ABSENT ON NULL`. A key that
//!   comes twice, or a NULL key, is an error, as in Flink (its keys are
//!   typed NOT NULL). Entries are written sorted by key.
//!
//! Both return a STRING (`[]` or `{}` for a group without entries). The
//! dialect (`dialect/json.rs`) reads the syntax into `json_arrayagg(flags,
//! item)` and `json_objectagg(flags, k, v)`, `flags` as for `JSON_ARRAY`:
//! the `ON NULL` behaviour and `J` when the value is itself a JSON
//! constructor, whose text goes in as JSON (`V` otherwise). Values are
//! written as `JSON_ARRAY` writes them (`json_build.rs`), and kept as that
//! text, which is also their state.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};
use datafusion::physical_expr::expressions::Literal;

use super::date_format::is_text;
use super::json_build::value_texts;

/// `json_arrayagg` and `json_objectagg`, to register.
pub(super) fn functions() -> Vec<AggregateUDF> {
    [(false, "json_arrayagg", 2), (true, "json_objectagg", 3)]
        .into_iter()
        .map(|(object, name, args)| {
            AggregateUDF::from(JsonAgg {
                object,
                name,
                signature: Signature::any(args, Volatility::Immutable),
            })
        })
        .collect()
}

/// One of the two aggregates.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonAgg {
    /// `JSON_OBJECTAGG` (keys and values) rather than `JSON_ARRAYAGG`.
    object: bool,
    name: &'static str,
    signature: Signature,
}

impl JsonAgg {
    fn sql_name(&self) -> &'static str {
        if self.object { "JSON_OBJECTAGG" } else { "JSON_ARRAYAGG" }
    }
}

/// What the flags (`NULL:V`, `ABSENT:J`, …) say.
#[derive(Debug)]
struct Flags {
    absent_on_null: bool,
    /// The value is JSON text of a constructor.
    json: bool,
}

fn flags(args: &AccumulatorArgs, name: &str) -> Result<Flags> {
    let text = args
        .exprs
        .first()
        .and_then(|e| e.downcast_ref::<Literal>())
        .and_then(|l| match l.value() {
            ScalarValue::Utf8(Some(t)) => Some(t.clone()),
            _ => None,
        });
    let Some((on_null, kinds)) = text.as_deref().and_then(|t| t.split_once(':')) else {
        return plan_err!("{name}: its first argument is not what the SQL reader writes");
    };
    Ok(Flags {
        absent_on_null: on_null == "ABSENT",
        json: kinds == "J",
    })
}

fn text_list(name: String) -> FieldRef {
    Arc::new(Field::new_list(name, Field::new_list_field(DataType::Utf8, true), true))
}

impl AggregateUDFImpl for JsonAgg {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if self.object && !arg_types.get(1).is_some_and(is_text) {
            return plan_err!("JSON_OBJECTAGG: its key is a {}, not a string", arg_types.get(1).unwrap_or(&DataType::Null));
        }
        Ok(DataType::Utf8)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let flags = flags(&args, self.sql_name())?;
        Ok(if self.object {
            Box::new(ObjectAgg { flags, entries: BTreeMap::new(), bytes: 0 })
        } else {
            Box::new(ArrayAgg { flags, items: Vec::new(), bytes: 0 })
        })
    }

    /// The JSON text of each item, or each key and the JSON text of its
    /// value, as lists of strings.
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(if self.object {
            vec![text_list(format_state_name(args.name, "keys")), text_list(format_state_name(args.name, "values"))]
        } else {
            vec![text_list(format_state_name(args.name, "items"))]
        })
    }

    /// No rows: the empty array or object, as Flink's.
    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Utf8(Some(if self.object { "{}" } else { "[]" }.into())))
    }
}

/// The strings of one row of a list-of-strings state column.
fn strings_of(lists: &ListArray, row: usize) -> Result<Vec<Option<String>>> {
    if lists.is_null(row) {
        return Ok(Vec::new());
    }
    let values = cast(&lists.value(row), &DataType::Utf8)?;
    Ok(values.as_string::<i32>().iter().map(|s| s.map(String::from)).collect())
}

fn lists(state: &ArrayRef, name: &str) -> Result<ListArray> {
    match state.as_list_opt::<i32>() {
        Some(l) => Ok(l.clone()),
        None => exec_err!("{name}: its state is not a list but {}", state.data_type()),
    }
}

fn text_list_value(texts: impl IntoIterator<Item = String>) -> ScalarValue {
    let array: ArrayRef = Arc::new(StringArray::from_iter_values(texts));
    ScalarValue::List(Arc::new(datafusion::common::utils::SingleRowListArrayBuilder::new(array).with_nullable(true).build_list_array()))
}

/// `JSON_ARRAYAGG`: the JSON text of each item, in arrival order.
#[derive(Debug)]
struct ArrayAgg {
    flags: Flags,
    items: Vec<String>,
    bytes: usize,
}

impl ArrayAgg {
    /// The items of `values` this aggregate holds: NULL as `null`, or
    /// left out with `ABSENT ON NULL`.
    fn texts(&self, values: &ArrayRef) -> Result<Vec<String>> {
        let absent = self.flags.absent_on_null;
        Ok(value_texts(values, self.flags.json)?
            .into_iter()
            .filter_map(|t| match t {
                Some(t) => Some(t),
                None if absent => None,
                None => Some("null".into()),
            })
            .collect())
    }

    fn push(&mut self, items: impl IntoIterator<Item = String>) {
        for item in items {
            self.bytes += item.len();
            self.items.push(item);
        }
    }
}

impl Accumulator for ArrayAgg {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let items = self.texts(&values[1])?;
        self.push(items);
        Ok(())
    }

    /// Takes out the first equal item, as Flink's list view does.
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for item in self.texts(&values[1])? {
            if let Some(at) = self.items.iter().position(|i| *i == item) {
                self.bytes -= self.items.remove(at).len();
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = lists(&states[0], "JSON_ARRAYAGG")?;
        for row in 0..lists.len() {
            let items = strings_of(&lists, row)?.into_iter().flatten();
            self.push(items);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![text_list_value(self.items.iter().cloned())])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Utf8(Some(format!("[{}]", self.items.join(",")))))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.bytes + self.items.capacity() * size_of::<String>()
    }
}

/// `JSON_OBJECTAGG`: each key with the JSON text of its value.
#[derive(Debug)]
struct ObjectAgg {
    flags: Flags,
    entries: BTreeMap<String, String>,
    bytes: usize,
}

impl ObjectAgg {
    /// The entries of `keys` and `values` this aggregate holds (a NULL
    /// value as `null`, or left out with `ABSENT ON NULL`); a NULL key is
    /// an error.
    fn pairs(&self, keys: &ArrayRef, values: &ArrayRef) -> Result<Vec<(String, String)>> {
        let keys = cast(keys, &DataType::Utf8)?;
        let keys = keys.as_string::<i32>();
        let values = value_texts(values, self.flags.json)?;
        let mut out = Vec::with_capacity(values.len());
        for (key, value) in keys.iter().zip(values) {
            let Some(key) = key else {
                return exec_err!("JSON_OBJECTAGG: a key is NULL (its keys must not be)");
            };
            match value {
                Some(v) => out.push((key.to_string(), v)),
                None if self.flags.absent_on_null => {}
                None => out.push((key.to_string(), "null".into())),
            }
        }
        Ok(out)
    }

    fn insert(&mut self, pairs: Vec<(String, String)>) -> Result<()> {
        for (key, value) in pairs {
            if self.entries.contains_key(&key) {
                return exec_err!("JSON_OBJECTAGG: key '{key}' occurs more than once (its keys must be unique)");
            }
            self.bytes += key.len() + value.len();
            self.entries.insert(key, value);
        }
        Ok(())
    }
}

impl Accumulator for ObjectAgg {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let pairs = self.pairs(&values[1], &values[2])?;
        self.insert(pairs)
    }

    /// Takes the key out, as Flink's map view does.
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for (key, _) in self.pairs(&values[1], &values[2])? {
            if let Some(value) = self.entries.remove(&key) {
                self.bytes -= key.len() + value.len();
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (keys, values) = (lists(&states[0], "JSON_OBJECTAGG")?, lists(&states[1], "JSON_OBJECTAGG")?);
        for row in 0..keys.len() {
            let (k, v) = (strings_of(&keys, row)?, strings_of(&values, row)?);
            if k.len() != v.len() {
                return exec_err!("JSON_OBJECTAGG: its state has {} keys and {} values", k.len(), v.len());
            }
            let pairs = k.into_iter().zip(v).filter_map(|(k, v)| Some((k?, v?))).collect();
            self.insert(pairs)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            text_list_value(self.entries.keys().cloned()),
            text_list_value(self.entries.values().cloned()),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let keys: ArrayRef = Arc::new(StringArray::from_iter_values(self.entries.keys()));
        let keys = value_texts(&keys, false)?;
        let mut out = String::from("{");
        for (i, (key, value)) in keys.into_iter().zip(self.entries.values()).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key.as_deref().unwrap_or("null"));
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
        Ok(ScalarValue::Utf8(Some(out)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.bytes + self.entries.len() * 2 * size_of::<String>()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's documented examples and the `ON NULL` behaviours, over
    /// VALUES (calls as the dialect writes Flink's syntax).
    #[tokio::test]
    async fn json_aggregates_as_flinks_docs() {
        let orders = "(VALUES ('Apple', 2), ('Banana', 17), ('Orange', 0)) t(product, cnt)";
        assert_eq!(
            query(&format!("SELECT json_objectagg('NULL:V', product, cnt) FROM {orders}")).await,
            [r#"{"Apple":2,"Banana":17,"Orange":0}"#]
        );
        assert_eq!(
            query(&format!("SELECT json_arrayagg('ABSENT:V', product) FROM {orders}")).await,
            [r#"["Apple","Banana","Orange"]"#]
        );
        let nulls = "(VALUES ('a', CAST(1 AS INT)), ('b', NULL), ('c', 3)) t(k, v)";
        for (call, want) in [
            ("json_arrayagg('ABSENT:V', v)", "[1,3]"),
            ("json_arrayagg('NULL:V', v)", "[1,null,3]"),
            ("json_objectagg('NULL:V', k, v)", r#"{"a":1,"b":null,"c":3}"#),
            ("json_objectagg('ABSENT:V', k, v)", r#"{"a":1,"c":3}"#),
            ("json_arrayagg('ABSENT:J', json_object('NULL:V', 'k', k))", r#"[{"k":"a"},{"k":"b"},{"k":"c"}]"#),
        ] {
            assert_eq!(query(&format!("SELECT {call} FROM {nulls}")).await, [want], "{call}");
        }
        assert_eq!(
            query(&format!("SELECT json_arrayagg('ABSENT:V', v) FROM {nulls} WHERE k = 'x'")).await,
            ["[]"]
        );
    }

    #[tokio::test]
    async fn a_repeated_or_null_key_is_an_error() {
        let e = query_err("SELECT json_objectagg('NULL:V', k, v) FROM (VALUES ('a', 1), ('a', 2)) t(k, v)").await;
        assert!(e.contains("key 'a' occurs more than once"), "{e}");
        let e = query_err("SELECT json_objectagg('NULL:V', k, v) FROM (VALUES (CAST(NULL AS VARCHAR), 1)) t(k, v)").await;
        assert!(e.contains("a key is NULL"), "{e}");
    }

    /// Retraction takes out an item (the first equal one) or a key; a state
    /// merged into a fresh accumulator gives the same result.
    #[test]
    fn retraction_and_state() {
        use super::*;
        use datafusion::arrow::array::Int64Array;
        let flags = || Flags { absent_on_null: false, json: false };
        let unused: ArrayRef = Arc::new(StringArray::from(vec!["NULL:V"; 3]));
        let keys: ArrayRef = Arc::new(StringArray::from(vec!["b", "a", "c"]));
        let values: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(1)]));
        let mut array = ArrayAgg { flags: flags(), items: Vec::new(), bytes: 0 };
        array.update_batch(&[Arc::clone(&unused), Arc::clone(&values)]).unwrap();
        array.retract_batch(&[Arc::clone(&unused), values.slice(0, 1)]).unwrap();
        assert_eq!(array.evaluate().unwrap(), ScalarValue::Utf8(Some("[null,1]".into())));
        let state = array.state().unwrap()[0].to_array().unwrap();
        let mut restored = ArrayAgg { flags: flags(), items: Vec::new(), bytes: 0 };
        restored.merge_batch(&[state]).unwrap();
        assert_eq!(restored.evaluate().unwrap(), array.evaluate().unwrap());

        let mut object = ObjectAgg { flags: flags(), entries: BTreeMap::new(), bytes: 0 };
        object.update_batch(&[Arc::clone(&unused), Arc::clone(&keys), Arc::clone(&values)]).unwrap();
        object.retract_batch(&[unused.slice(0, 1), keys.slice(0, 1), values.slice(0, 1)]).unwrap();
        assert_eq!(object.evaluate().unwrap(), ScalarValue::Utf8(Some(r#"{"a":null,"c":1}"#.into())));
        let state: Vec<ArrayRef> = object.state().unwrap().iter().map(|s| s.to_array().unwrap()).collect();
        let mut restored = ObjectAgg { flags: flags(), entries: BTreeMap::new(), bytes: 0 };
        restored.merge_batch(&state).unwrap();
        assert_eq!(restored.evaluate().unwrap(), object.evaluate().unwrap());
    }
}
