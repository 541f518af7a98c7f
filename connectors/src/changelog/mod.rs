//! Flink's changelog formats, `debezium-json`, `canal-json` and
//! `maxwell-json`: each record a CDC tool wrote for one change of a
//! database table becomes the rows of that change, each with its kind
//! (`+I`, `-U`/`+U`, `-D`) in Weir's changelog column
//! (`weir_engine::changelog`).
//!
//! A record is decoded as its envelope (`envelope.rs`: the before and
//! after rows and the fields that say what happened) by the JSON
//! decoder of the `json` format, so bad lines are found and reported the
//! same way; `expand.rs` then turns whole batches of envelopes into rows;
//! `metadata.rs` reads the envelope fields a `METADATA` column asks for.
//! See docs/changelog-formats.md.

mod envelope;
pub(crate) mod expand;
pub(crate) mod metadata;
mod old_nulls;
#[cfg(test)]
mod tests;

use regex::Regex;

use crate::error::ConnectorError;
use crate::filesystem::format::{JsonFormat, TimestampStandard};
use crate::options::Options;
use metadata::MetadataKey;

/// The tool whose records a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Debezium: `{"before", "after", "op": "c"|"r"|"u"|"d", "source", "ts_ms"}`,
    /// optionally inside `{"schema", "payload"}`.
    Debezium,
    /// Alibaba Canal: `{"data": [rows], "old": [changed fields], "type": "INSERT"|"UPDATE"|"DELETE", …}`.
    Canal,
    /// Maxwell: `{"data": row, "old": changed fields, "type": "insert"|"update"|"delete", …}`.
    Maxwell,
}

impl Protocol {
    /// The `'format'` value that names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Debezium => "debezium-json",
            Self::Canal => "canal-json",
            Self::Maxwell => "maxwell-json",
        }
    }

    /// The protocol `'format'` names, if it names one.
    pub(crate) fn named(format: &str) -> Option<Self> {
        [Self::Debezium, Self::Canal, Self::Maxwell]
            .into_iter()
            .find(|p| p.name() == format)
    }

    /// Flink's option keys of the format (reading ones only: Weir does not
    /// write these formats).
    pub(crate) fn option_keys(self) -> &'static [&'static str] {
        match self {
            Self::Debezium => &[
                "debezium-json.schema-include",
                "debezium-json.ignore-parse-errors",
                "debezium-json.timestamp-format.standard",
            ],
            Self::Canal => &[
                "canal-json.ignore-parse-errors",
                "canal-json.timestamp-format.standard",
                "canal-json.database.include",
                "canal-json.table.include",
            ],
            Self::Maxwell => &[
                "maxwell-json.ignore-parse-errors",
                "maxwell-json.timestamp-format.standard",
            ],
        }
    }
}

/// A changelog format with its options.
#[derive(Debug, Clone)]
pub(crate) struct ChangelogFormat {
    pub(crate) protocol: Protocol,
    /// `'debezium-json.schema-include'`: records are wrapped in
    /// `{"schema": …, "payload": …}` (Kafka Connect's JSON converter with
    /// schemas enabled).
    pub(crate) schema_include: bool,
    /// `'<format>.ignore-parse-errors'`.
    pub(crate) ignore_parse_errors: bool,
    /// `'<format>.timestamp-format.standard'` (the reader accepts both).
    pub(crate) timestamp_standard: TimestampStandard,
    /// `'canal-json.database.include'` and `'canal-json.table.include'`:
    /// records of other databases or tables are skipped (whole-name
    /// regular expressions, as Java's `Pattern.matches`).
    pub(crate) database: Option<Regex>,
    pub(crate) table: Option<Regex>,
    /// `METADATA` columns the format fills: (column of the decoded schema,
    /// key), set by the connector that knows its columns.
    pub(crate) metadata: Vec<(usize, MetadataKey)>,
}

impl ChangelogFormat {
    /// Reads the options of `protocol` (only those: the caller rejects
    /// keys it does not list).
    pub(crate) fn from_options(
        options: &Options,
        protocol: Protocol,
        ignore_parse_errors: bool,
    ) -> Result<Self, ConnectorError> {
        let name = protocol.name();
        let timestamp_standard = options
            .parse(&format!("{name}.timestamp-format.standard"), |v| {
                match v.to_ascii_uppercase().as_str() {
                    "SQL" => Ok(TimestampStandard::Sql),
                    "ISO-8601" => Ok(TimestampStandard::Iso8601),
                    _ => Err("expected 'SQL' or 'ISO-8601'".to_string()),
                }
            })?
            .unwrap_or(TimestampStandard::Sql);
        let schema_include = options
            .parse("debezium-json.schema-include", crate::values::boolean)?
            .unwrap_or(false);
        let pattern = |key: &str| {
            options.parse(key, |v| {
                Regex::new(&format!("^(?:{v})$")).map_err(|e| format!("not a regular expression: {e}"))
            })
        };
        Ok(Self {
            protocol,
            schema_include,
            ignore_parse_errors,
            timestamp_standard,
            database: pattern("canal-json.database.include")?,
            table: pattern("canal-json.table.include")?,
            metadata: Vec::new(),
        })
    }

    /// The `json` format that decodes the envelopes.
    pub(crate) fn json(&self) -> JsonFormat {
        JsonFormat {
            timestamp_standard: self.timestamp_standard,
            ignore_parse_errors: self.ignore_parse_errors,
        }
    }
}
