//! Access to one table's WITH options on behalf of one connector.

use std::collections::BTreeMap;

use crate::error::ConnectorError;

/// The key every table has; the SQL layer passes it along with the rest.
pub(crate) const CONNECTOR_KEY: &str = "connector";

/// A table's WITH options as seen by the connector named in them.
///
/// Every lookup goes through here so that errors consistently name the
/// connector, the key and the offending value.
pub(crate) struct Options<'a> {
    connector: &'static str,
    map: &'a BTreeMap<String, String>,
}

impl<'a> Options<'a> {
    pub(crate) fn new(connector: &'static str, map: &'a BTreeMap<String, String>) -> Self {
        Self { connector, map }
    }

    pub(crate) fn connector(&self) -> &'static str {
        self.connector
    }

    /// All options but `'connector'`, for connectors that check their own
    /// key patterns (datagen's per-field keys).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.map
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .filter(|(k, _)| *k != CONNECTOR_KEY)
    }

    /// Rejects the first key not in `allowed`, since a misspelt key would
    /// otherwise be silently ignored and its default used.
    pub(crate) fn check_keys(&self, allowed: &[&str]) -> Result<(), ConnectorError> {
        match self
            .entries()
            .map(|(k, _)| k)
            .find(|k| !allowed.contains(k))
        {
            Some(key) if allowed.is_empty() => Err(self.unknown(key, "only 'connector'".into())),
            Some(key) => Err(self.unknown(key, allowed.join(", "))),
            None => Ok(()),
        }
    }

    /// The error for a key this connector does not know.
    pub(crate) fn unknown(&self, key: &str, allowed: String) -> ConnectorError {
        ConnectorError::UnknownOption {
            connector: self.connector.to_string(),
            key: key.to_string(),
            allowed,
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).map(String::as_str)
    }

    pub(crate) fn required(&self, key: &str) -> Result<&'a str, ConnectorError> {
        self.get(key).ok_or_else(|| ConnectorError::MissingOption {
            connector: self.connector.to_string(),
            key: key.to_string(),
        })
    }

    /// Parses `key` if present; `parse` says what was expected when the
    /// value is unusable.
    pub(crate) fn parse<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConnectorError> {
        self.get(key)
            .map(|value| parse(value).map_err(|reason| ConnectorError::invalid(key, value, reason)))
            .transpose()
    }
}
