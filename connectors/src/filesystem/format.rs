//! The `'format'` option of a filesystem table and the options it brings.

use crate::changelog::{ChangelogFormat, Protocol};
use crate::error::ConnectorError;
use crate::temporal::Layout;
use crate::options::Options;

/// How records are laid out in a table's files.
#[derive(Debug, Clone)]
pub(crate) enum Format {
    /// Flink's `json`: one object per line.
    Json(JsonFormat),
    /// Flink's `csv`: no header, columns by position.
    Csv(CsvFormat),
    /// Flink's `debezium-json`, `canal-json` and `maxwell-json`: one CDC
    /// record per line, read as a changelog (`crate::changelog`).
    Changelog(ChangelogFormat),
}

/// Options of the `json` format.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonFormat {
    /// How the sink writes TIMESTAMP values (the reader accepts both).
    pub(crate) timestamp_standard: TimestampStandard,
    /// `'json.ignore-parse-errors'`.
    pub(crate) ignore_parse_errors: bool,
}

/// `'json.timestamp-format.standard'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampStandard {
    /// `2026-01-01 00:00:00.000`, Flink's default.
    Sql,
    /// `2026-01-01T00:00:00.000`.
    Iso8601,
}

impl TimestampStandard {
    /// The chrono pattern the JSON writer formats TIMESTAMP(3) with.
    pub(crate) fn layout(self) -> Layout {
        match self {
            Self::Sql => Layout::Sql,
            Self::Iso8601 => Layout::Iso8601,
        }
    }
}

/// Options of the `csv` format.
#[derive(Debug, Clone)]
pub(crate) struct CsvFormat {
    pub(crate) delimiter: u8,
    pub(crate) quote: u8,
    /// Text that stands for NULL, both ways. Without it NULL is written as an
    /// empty field and an empty field reads as NULL (so an empty string does
    /// not survive a round trip).
    pub(crate) null_literal: Option<String>,
    /// `'csv.ignore-parse-errors'`.
    pub(crate) ignore_parse_errors: bool,
}

const FORMATS: &str = "'json', 'csv', 'debezium-json', 'canal-json', 'maxwell-json'";
/// SQL.md's name for `'<format>.ignore-parse-errors'`, accepted for either
/// format.
const ANY_FORMAT_IGNORE: &str = "format.ignore-parse-errors";
const JSON_OPTIONS: &[&str] = &[
    "json.timestamp-format.standard",
    "json.ignore-parse-errors",
    ANY_FORMAT_IGNORE,
];
const CSV_OPTIONS: &[&str] = &[
    "csv.field-delimiter",
    "csv.quote-character",
    "csv.null-literal",
    "csv.ignore-parse-errors",
    ANY_FORMAT_IGNORE,
];

/// `'<format>.ignore-parse-errors'` or `'format.ignore-parse-errors'`;
/// both given with different values is an error.
fn ignore_parse_errors(options: &Options, key: &str) -> Result<bool, ConnectorError> {
    let specific = options.parse(key, crate::values::boolean)?;
    let generic = options.parse(ANY_FORMAT_IGNORE, crate::values::boolean)?;
    match (specific, generic) {
        (Some(a), Some(b)) if a != b => Err(ConnectorError::invalid(
            ANY_FORMAT_IGNORE,
            &b.to_string(),
            format!("contradicts '{key}'"),
        )),
        (a, b) => Ok(a.or(b).unwrap_or(false)),
    }
}

impl Format {
    /// Reads `'format'` and the options of that format (only those: another
    /// format's options are unknown keys, as in Flink).
    pub(crate) fn from_options(options: &Options) -> Result<Self, ConnectorError> {
        let name = options.required("format")?;
        match name {
            "json" => {
                let timestamp_standard = options
                    .parse("json.timestamp-format.standard", |v| {
                        match v.to_ascii_uppercase().as_str() {
                            "SQL" => Ok(TimestampStandard::Sql),
                            "ISO-8601" => Ok(TimestampStandard::Iso8601),
                            _ => Err("expected 'SQL' or 'ISO-8601'".to_string()),
                        }
                    })?
                    .unwrap_or(TimestampStandard::Sql);
                let ignore_parse_errors = ignore_parse_errors(options, "json.ignore-parse-errors")?;
                Ok(Self::Json(JsonFormat {
                    timestamp_standard,
                    ignore_parse_errors,
                }))
            }
            "csv" => {
                let delimiter = options
                    .parse("csv.field-delimiter", crate::values::ascii_char)?
                    .unwrap_or(b',');
                let quote = options
                    .parse("csv.quote-character", crate::values::ascii_char)?
                    .unwrap_or(b'"');
                if delimiter == quote {
                    return Err(ConnectorError::invalid(
                        "csv.quote-character",
                        &(quote as char).to_string(),
                        "must differ from 'csv.field-delimiter'",
                    ));
                }
                let null_literal = options.get("csv.null-literal").map(str::to_string);
                let ignore_parse_errors = ignore_parse_errors(options, "csv.ignore-parse-errors")?;
                Ok(Self::Csv(CsvFormat {
                    delimiter,
                    quote,
                    null_literal,
                    ignore_parse_errors,
                }))
            }
            other => match Protocol::named(other) {
                Some(protocol) => {
                    let ignore = ignore_parse_errors(options, &format!("{other}.ignore-parse-errors"))?;
                    Ok(Self::Changelog(ChangelogFormat::from_options(options, protocol, ignore)?))
                }
                None => Err(ConnectorError::invalid("format", other, format!("expected one of {FORMATS}"))),
            },
        }
    }

    /// The option keys this format accepts.
    pub(crate) fn option_keys(&self) -> &'static [&'static str] {
        match self {
            Self::Json(_) => JSON_OPTIONS,
            Self::Csv(_) => CSV_OPTIONS,
            Self::Changelog(c) => c.protocol.option_keys(),
        }
    }

    /// `'<format>.ignore-parse-errors'`: whether a record that cannot be
    /// decoded is skipped (and reported) rather than failing the job.
    pub(crate) fn ignore_parse_errors(&self) -> bool {
        match self {
            Self::Json(json) => json.ignore_parse_errors,
            Self::Csv(csv) => csv.ignore_parse_errors,
            Self::Changelog(c) => c.ignore_parse_errors,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Json(_) => "json",
            Self::Csv(_) => "csv",
            Self::Changelog(c) => c.protocol.name(),
        }
    }

    /// The format whose column types it holds: the changelog formats hold
    /// JSON values.
    pub(crate) fn family(&self) -> &'static str {
        match self {
            Self::Csv(_) => "csv",
            Self::Json(_) | Self::Changelog(_) => "json",
        }
    }

    /// Whether its records are changes (`+I`/`-U`/`+U`/`-D`) rather
    /// than rows to append.
    pub(crate) fn is_changelog(&self) -> bool {
        matches!(self, Self::Changelog(_))
    }
}
