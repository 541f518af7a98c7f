//! Where a Kafka record holds a table's columns, with Flink's options:
//! the value in `'format'` or `'value.format'` (its options `json.*` or
//! `value.json.*`), the `'key.fields'` in `'key.format'` (its options
//! `key.json.*`), named in the key without `'key.fields-prefix'`, and in
//! the value too unless `'value.fields-include'` is `EXCEPT_KEY`.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::{Field, Schema};

use crate::error::ConnectorError;
use crate::filesystem::format::Format;
use crate::options::Options;
use crate::types;

/// Options of the layout itself, besides the formats' own.
pub(super) const LAYOUT_OPTIONS: &[&str] = &[
    "format",
    "value.format",
    "key.fields",
    "key.format",
    "key.fields-prefix",
    "value.fields-include",
];

/// The record's parts, over the table's record columns (`values`: the
/// columns that are not metadata).
#[derive(Debug, Clone)]
pub(crate) struct RecordLayout {
    pub(crate) value_format: Format,
    /// The columns the value holds: every one, or all but the key's.
    pub(crate) value_columns: Vec<usize>,
    pub(crate) key: Option<KeyLayout>,
}

/// The message key's columns.
#[derive(Debug, Clone)]
pub(crate) struct KeyLayout {
    pub(crate) columns: Vec<usize>,
    pub(crate) format: Format,
    /// The key's own schema: the columns named without the prefix.
    pub(crate) schema: Schema,
}

impl RecordLayout {
    /// Reads the layout from `options` over the record columns `values`,
    /// and returns it with the format option keys it accepts.
    pub(super) fn from_options(options: &Options, values: &Schema) -> Result<(Self, Vec<String>), ConnectorError> {
        let (value_format, mut allowed) = match (options.get("format"), options.get("value.format")) {
            (Some(_), Some(_)) => {
                return Err(ConnectorError::invalid(
                    "value.format",
                    options.get("value.format").unwrap_or_default(),
                    "'format' already names the value's format: give one of them",
                ));
            }
            (None, Some(name)) => prefixed_format(options, "value.", name)?,
            _ => {
                let format = Format::from_options(options)?;
                let keys = format.option_keys().iter().map(|k| k.to_string()).collect();
                (format, keys)
            }
        };
        let except_key = match options.get("value.fields-include").unwrap_or("ALL") {
            v if v.eq_ignore_ascii_case("ALL") => false,
            v if v.eq_ignore_ascii_case("EXCEPT_KEY") => true,
            other => {
                return Err(ConnectorError::invalid(
                    "value.fields-include",
                    other,
                    "expected 'ALL' or 'EXCEPT_KEY'",
                ));
            }
        };
        let prefix = options.get("key.fields-prefix").unwrap_or("");
        let key = match options.get("key.fields") {
            None => {
                for option in ["key.format", "key.fields-prefix"] {
                    if let Some(v) = options.get(option) {
                        return Err(ConnectorError::invalid(option, v, "needs 'key.fields'"));
                    }
                }
                if except_key {
                    return Err(ConnectorError::invalid(
                        "value.fields-include",
                        "EXCEPT_KEY",
                        "needs 'key.fields'",
                    ));
                }
                None
            }
            Some(fields) => {
                if !prefix.is_empty() && !except_key {
                    return Err(ConnectorError::invalid(
                        "key.fields-prefix",
                        prefix,
                        "needs 'value.fields-include' = 'EXCEPT_KEY' (with ALL the value would hold the key's columns too)",
                    ));
                }
                let mut columns = Vec::new();
                let mut named = Vec::new();
                for name in fields.split(';').map(str::trim) {
                    let i = values.index_of(name).map_err(|_| {
                        ConnectorError::invalid("key.fields", fields, format!("the table has no column '{name}'"))
                    })?;
                    let unprefixed = name.strip_prefix(prefix).filter(|n| !n.is_empty()).ok_or_else(|| {
                        ConnectorError::invalid(
                            "key.fields",
                            fields,
                            format!("column '{name}' does not start with 'key.fields-prefix' '{prefix}'"),
                        )
                    })?;
                    columns.push(i);
                    named.push(Field::new(unprefixed, values.field(i).data_type().clone(), true));
                }
                let format = match options.get("key.format") {
                    None => value_format.clone(),
                    Some(name) => {
                        let (format, keys) = prefixed_format(options, "key.", name)?;
                        allowed.extend(keys);
                        format
                    }
                };
                let schema = Schema::new(named);
                if format.is_changelog() {
                    return Err(ConnectorError::invalid(
                        "key.format",
                        format.name(),
                        "a key holds columns, not changes: use 'json' or 'csv'",
                    ));
                }
                types::check_format_schema(options.connector(), format.family(), &schema)?;
                Some(KeyLayout {
                    columns,
                    format,
                    schema,
                })
            }
        };
        let value_columns: Vec<usize> = (0..values.fields().len())
            .filter(|i| !except_key || key.as_ref().is_none_or(|k| !k.columns.contains(i)))
            .collect();
        let value_schema = values
            .project(&value_columns)
            .map_err(|e| ConnectorError::Unsupported {
                connector: options.connector().into(),
                what: format!("the value's columns: {e}"),
            })?;
        if except_key && value_format.is_changelog() {
            return Err(ConnectorError::Unsupported {
                connector: options.connector().into(),
                what: format!("'value.fields-include' = 'EXCEPT_KEY' with format '{}' (not yet)", value_format.name()),
            });
        }
        types::check_format_schema(options.connector(), value_format.family(), &value_schema)?;
        Ok((
            RecordLayout {
                value_format,
                value_columns,
                key,
            },
            allowed,
        ))
    }

    /// Whether the value holds every record column.
    pub(crate) fn value_is_whole(&self, values: &Schema) -> bool {
        self.value_columns.len() == values.fields().len()
    }
}

/// The format `name` of `'<prefix>format'`, with its options
/// `'<prefix><name>.*'`, and those keys as written.
fn prefixed_format(options: &Options, prefix: &str, name: &str) -> Result<(Format, Vec<String>), ConnectorError> {
    let mut map = BTreeMap::from([("format".to_string(), name.to_string())]);
    for (key, value) in options.entries() {
        if let Some(rest) = key.strip_prefix(prefix)
            && rest.starts_with(&format!("{name}."))
        {
            map.insert(rest.to_string(), value.to_string());
        }
    }
    let format = Format::from_options(&Options::new(options.connector(), &map)).map_err(|e| match e {
        ConnectorError::InvalidOption { key, value, reason } if key == "format" => {
            ConnectorError::invalid(&format!("{prefix}format"), &value, reason)
        }
        other => other,
    })?;
    let keys = format.option_keys().iter().map(|k| format!("{prefix}{k}")).collect();
    Ok((format, keys))
}
