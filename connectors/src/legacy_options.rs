//! Flink's legacy connector options, still in old DDL (Nexmark q13's side
//! input): `'connector.type' = 'filesystem'`, `'connector.path'`,
//! `'format.type' = 'csv'`. A filesystem table declared so is read as one
//! declared with today's options; a legacy key without a counterpart here,
//! or another legacy connector, is an error naming it and what to write
//! instead.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::error::ConnectorError;

/// The key that marks a table declared with legacy options.
const LEGACY_CONNECTOR: &str = "connector.type";

/// Legacy keys that only versioned the descriptor or asked to derive the
/// format's schema from the table's (what Weir always does).
const IGNORED: &[&str] = &["connector.property-version", "format.property-version", "format.derive-schema"];

/// `options` with legacy keys written as today's, when they are legacy.
pub(crate) fn translate(options: &BTreeMap<String, String>) -> Result<Cow<'_, BTreeMap<String, String>>, ConnectorError> {
    let Some(kind) = options.get(LEGACY_CONNECTOR) else {
        return Ok(Cow::Borrowed(options));
    };
    if kind != "filesystem" {
        return Err(ConnectorError::Unsupported {
            connector: kind.clone(),
            what: format!(
                "Flink's legacy options ('{LEGACY_CONNECTOR}' = '{kind}'): declare the table with today's \
                 options ('connector' = '{kind}', …)"
            ),
        });
    }
    let format = options.get("format.type").cloned().unwrap_or_default();
    let mut out = BTreeMap::new();
    for (key, value) in options {
        let new = match key.as_str() {
            LEGACY_CONNECTOR => "connector".to_string(),
            "connector.path" => "path".to_string(),
            "format.type" => "format".to_string(),
            "format.field-delimiter" => "csv.field-delimiter".to_string(),
            "format.ignore-parse-errors" => format!("{format}.ignore-parse-errors"),
            k if IGNORED.contains(&k) => continue,
            k if k.starts_with("connector.") || k.starts_with("format.") => {
                return Err(ConnectorError::Unsupported {
                    connector: "filesystem".into(),
                    what: format!(
                        "the legacy option '{k}' (Weir reads 'connector.type', 'connector.path', 'format.type', \
                         'format.field-delimiter' and 'format.ignore-parse-errors'; write the others as today's options)"
                    ),
                });
            }
            // Today's keys beside legacy ones are checked as usual.
            k => k.to_string(),
        };
        if out.insert(new.clone(), value.clone()).is_some() {
            return Err(ConnectorError::Unsupported {
                connector: "filesystem".into(),
                what: format!("'{new}' is given twice, once as a legacy option"),
            });
        }
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn legacy_filesystem_options_are_todays() {
        let legacy = map(&[
            ("connector.type", "filesystem"),
            ("connector.path", "file:///tmp/side_input.txt"),
            ("format.type", "csv"),
            ("format.field-delimiter", ";"),
            ("connector.property-version", "1"),
        ]);
        let today = translate(&legacy).unwrap().into_owned();
        assert_eq!(
            today,
            map(&[
                ("connector", "filesystem"),
                ("path", "file:///tmp/side_input.txt"),
                ("format", "csv"),
                ("csv.field-delimiter", ";"),
            ])
        );
        let plain = map(&[("connector", "filesystem")]);
        assert!(matches!(translate(&plain).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn what_has_no_counterpart_is_named() {
        let e = translate(&map(&[("connector.type", "kafka")])).unwrap_err().to_string();
        assert!(e.contains("'connector.type' = 'kafka'") && e.contains("'connector' = 'kafka'"), "{e}");
        let e = translate(&map(&[("connector.type", "filesystem"), ("format.fields.0.name", "a")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'format.fields.0.name'"), "{e}");
        let e = translate(&map(&[("connector.type", "filesystem"), ("connector.path", "a"), ("path", "b")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'path' is given twice"), "{e}");
    }
}
