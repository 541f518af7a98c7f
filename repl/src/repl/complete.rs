//! Tab completion: keywords, the session's tables and their columns,
//! connector names and `WITH` option keys, and meta commands, chosen from
//! what stands before the cursor.

use weir_sql::Session;

/// The keywords of Weir's statements (Flink SQL's), offered and coloured.
const KEYWORDS: &[&str] = &[
    "ALLOWED", "AND", "AS", "ASC", "BETWEEN", "BIGINT", "BOOLEAN", "BY", "CASE", "CAST", "COUNT", "CREATE",
    "CUMULATE", "DATA", "DAY", "DECIMAL", "DESC", "DESCRIBE", "DESCRIPTOR", "DISTINCT", "DOUBLE", "DROP", "EARLY",
    "ELSE", "EMIT", "END", "EVERY", "EXISTS", "EXPLAIN", "FALSE", "FILTER", "FLOAT", "FOR", "FROM", "GROUP",
    "HAVING", "HOP", "HOUR", "IF", "IN", "INSERT", "INT", "INTEGER", "INTERVAL", "INTO", "IS", "JOBS", "JOB",
    "LATE", "LATENESS", "LIKE", "LIMIT", "MATERIALIZED", "MAX", "METADATA", "MIN", "MINUTE", "MONTH", "NOT",
    "NULL", "ON", "OR", "ORDER", "PARTITION", "RESET", "SAVEPOINT", "SECOND", "SELECT", "SESSION", "SET", "SHOW",
    "SMALLINT", "STOP", "STRING", "SUM", "TABLE", "TABLES", "THEN", "TIMESTAMP", "TIMESTAMP_LTZ", "TINYINT",
    "TRUE", "TUMBLE", "UNION", "VARCHAR", "VIEW", "VIRTUAL", "WATERMARK", "WHEN", "WHERE", "WITH", "YEAR",
];

/// The connectors `'connector' = '…'` accepts.
pub use weir_connectors::CONNECTORS;

/// `WITH` keys of each connector, as Flink spells them (Weir checks them
/// at `CREATE TABLE`; a test keeps this list to keys it accepts). Datagen's
/// `fields.<column>.<option>` keys are made from the columns declared.
const CONNECTOR_KEYS: &[(&str, &[&str])] = &[
    ("datagen", &["rows-per-second", "number-of-rows"]),
    (
        "filesystem",
        &[
            "path",
            "format",
            "sink.rolling-policy.file-size",
            "json.timestamp-format.standard",
            "json.ignore-parse-errors",
            "csv.field-delimiter",
            "csv.quote-character",
            "csv.null-literal",
            "csv.ignore-parse-errors",
            "format.ignore-parse-errors",
        ],
    ),
    (
        "kafka",
        &[
            "topic",
            "format",
            "properties.bootstrap.servers",
            "properties.group.id",
            "scan.startup.mode",
            "scan.startup.timestamp-millis",
            "scan.bounded.mode",
            "sink.delivery-guarantee",
            "sink.transactional-id-prefix",
            "key.fields",
            "key.format",
            "json.ignore-parse-errors",
            "csv.field-delimiter",
            "format.ignore-parse-errors",
        ],
    ),
    ("print", &["print-identifier", "standard-error"]),
    ("blackhole", &[]),
    ("memory", &[]),
    ("postgres", POSTGRES_KEYS),
    ("jdbc", POSTGRES_KEYS),
];

/// Keys of a `postgres` table, or a `jdbc` one (the same connector).
const POSTGRES_KEYS: &[&str] = &[
    "url",
    "table-name",
    "username",
    "password",
    "sink.buffer-flush.max-rows",
    "sink.buffer-flush.interval",
    "sink.max-retries",
    "lookup.cache",
    "lookup.cache.max-rows",
    "lookup.cache.ttl",
    "lookup.max-concurrent",
    "lookup.output-mode",
    "lookup.rate-limit",
    "lookup.max-retries",
];

/// Keys of any source, read by the SQL layer rather than the connector.
const SOURCE_KEYS: &[&str] = &[
    "scan.watermark.emit.strategy",
    "watermark.min-valid-time",
    "watermark.max-future",
    "source.idle-timeout",
];

/// Datagen's per-column options.
const DATAGEN_FIELD_OPTIONS: &[&str] = &["kind", "min", "max", "max-past", "length", "start", "end", "null-rate"];

/// The shell's own commands, with what they do, for `\?` and completion.
pub const META: &[(&str, &str)] = &[
    ("\\?", "this help"),
    ("\\d", "list tables; \\d NAME describes one"),
    ("\\jobs", "jobs of this session: rows in and out, watermark"),
    ("\\timing", "show how long each statement takes (on|off)"),
    ("\\x", "expanded display: one line per column (on|off|auto)"),
    ("\\i", "\\i FILE.sql runs the statements of a file"),
    ("\\o", "\\o FILE sends results to a file; \\o alone back here"),
    ("\\q", "quit (or Ctrl-D)"),
];

/// Does `word` colour as a keyword?
pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// What completion knows of the session: its tables and their columns,
/// refreshed after every statement.
#[derive(Debug, Default, Clone)]
pub struct Names {
    tables: Vec<(String, Vec<String>)>,
}

impl Names {
    /// The tables of `session` now.
    pub fn of(session: &Session) -> Self {
        let tables = session
            .catalog()
            .tables()
            .map(|t| (t.name.clone(), t.schema.fields().iter().map(|f| f.name().clone()).collect()))
            .collect();
        Self { tables }
    }

    fn table_names(&self) -> impl Iterator<Item = &str> {
        self.tables.iter().map(|(n, _)| n.as_str())
    }

    fn columns_of(&self, table: &str) -> Option<&[String]> {
        self.tables
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(table))
            .map(|(_, c)| c.as_slice())
    }
}

/// Where the word being completed starts in `line`, and its candidates.
/// `before` is the statement's earlier lines (context only).
pub fn complete(names: &Names, before: &str, line: &str, pos: usize) -> (usize, Vec<String>) {
    let head = &line[..pos];
    let text = format!("{before}{head}");
    if before.trim().is_empty() && head.trim_start().starts_with('\\') {
        return meta(names, head);
    }
    if let Some(quote) = open_quote(&text) {
        // Inside a string: only WITH keys and values are worth offering.
        let start = head.len() - (text.len() - quote - 1);
        let prefix = &text[quote + 1..];
        return (start, with_option(&text[..quote], &text, prefix));
    }
    let start = head
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let prefix = &head[start..];
    let before_word = &text[..text.len() - prefix.len()];
    let mut out = Vec::new();
    if let Some(qualifier) = before_word.strip_suffix('.') {
        let table = last_word(qualifier);
        out.extend(column_candidates(names, &text, Some(table)));
        return (start, matching(out, prefix));
    }
    let previous = last_word(before_word).to_ascii_uppercase();
    let tables_only = matches!(previous.as_str(), "FROM" | "TABLE" | "INTO" | "JOIN" | "DESCRIBE" | "EXISTS");
    out.extend(names.table_names().map(str::to_string));
    if !tables_only {
        out.extend(column_candidates(names, &text, None));
        let lower = !prefix.is_empty() && prefix.chars().all(|c| !c.is_uppercase());
        out.extend(KEYWORDS.iter().map(|k| if lower { k.to_lowercase() } else { k.to_string() }));
    }
    (start, matching(out, prefix))
}

/// Meta commands, and what they take: table names, files, on/off.
fn meta(names: &Names, head: &str) -> (usize, Vec<String>) {
    let head_start = head.len() - head.trim_start().len();
    let trimmed = head.trim_start();
    match trimmed.split_once(char::is_whitespace) {
        None => (head_start, matching(META.iter().map(|(c, _)| c.to_string()).collect(), trimmed)),
        Some((command, arg)) => {
            let arg = arg.trim_start();
            let start = head.len() - arg.len();
            let options: Vec<String> = match command {
                "\\d" => names.table_names().map(str::to_string).collect(),
                "\\x" => ["on", "off", "auto"].map(String::from).to_vec(),
                "\\timing" => ["on", "off"].map(String::from).to_vec(),
                _ => Vec::new(),
            };
            (start, matching(options, arg))
        }
    }
}

/// The keys of a `WITH (…)` list, or the values of `'connector'`,
/// `'format'` and the watermark strategy. `earlier` ends just before the
/// string's opening quote.
fn with_option(earlier: &str, text: &str, prefix: &str) -> Vec<String> {
    let earlier = earlier.trim_end();
    if let Some(key_part) = earlier.strip_suffix('=') {
        let key = key_part.trim_end().trim_end_matches('\'');
        let key = key.rsplit('\'').next().unwrap_or_default();
        let values: Vec<String> = match key {
            "connector" => CONNECTORS.iter().map(|c| c.to_string()).collect(),
            "format" | "key.format" => vec!["json".into(), "csv".into()],
            "scan.watermark.emit.strategy" => vec!["on-event".into(), "on-periodic".into()],
            "scan.startup.mode" => ["earliest-offset", "latest-offset", "group-offsets", "timestamp"]
                .map(String::from)
                .to_vec(),
            _ => Vec::new(),
        };
        return matching(values.into_iter().map(|v| format!("{v}'")).collect(), prefix);
    }
    if !(earlier.ends_with('(') || earlier.ends_with(',')) || !upper(text).contains("WITH") {
        return Vec::new();
    }
    let connector = text
        .split("'connector'")
        .nth(1)
        .and_then(|rest| rest.split('\'').nth(1))
        .map(str::to_string);
    let mut keys: Vec<String> = Vec::new();
    match connector.as_deref() {
        Some(c) => {
            keys.extend(keys_of(c).iter().map(|k| k.to_string()));
            if c != "print" && c != "blackhole" && c != "memory" {
                keys.extend(SOURCE_KEYS.iter().map(|k| k.to_string()));
            }
            if c == "datagen" {
                for column in declared_columns(text) {
                    keys.extend(DATAGEN_FIELD_OPTIONS.iter().map(|o| format!("fields.{column}.{o}")));
                }
            }
        }
        None => keys.push("connector".into()),
    }
    matching(keys.into_iter().map(|k| format!("{k}'")).collect(), prefix)
}

fn keys_of(connector: &str) -> &'static [&'static str] {
    CONNECTOR_KEYS
        .iter()
        .find(|(c, _)| *c == connector)
        .map_or(&[], |(_, keys)| keys)
}

/// The column names a `CREATE TABLE t (…)` in `text` declares: the first
/// word of each top-level item that is not `WATERMARK`.
fn declared_columns(text: &str) -> Vec<String> {
    let Some(open) = text.find('(') else {
        return Vec::new();
    };
    let mut columns = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    let mut word = String::new();
    for c in text[open + 1..].chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => break,
            ')' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && (c.is_alphanumeric() || c == '_') => word.push(c),
            _ if item_start && !word.is_empty() => {
                if !word.eq_ignore_ascii_case("WATERMARK") {
                    columns.push(std::mem::take(&mut word));
                }
                word.clear();
                item_start = false;
            }
            _ => {}
        }
    }
    columns
}

/// Columns of `table`, or of the tables the statement names, or of all.
fn column_candidates(names: &Names, text: &str, table: Option<&str>) -> Vec<String> {
    if let Some(columns) = table.and_then(|t| names.columns_of(t)) {
        return columns.to_vec();
    }
    let words: Vec<&str> = text.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
    let named: Vec<&(String, Vec<String>)> = names
        .tables
        .iter()
        .filter(|(n, _)| words.iter().any(|w| w.eq_ignore_ascii_case(n)))
        .collect();
    let chosen: Vec<&(String, Vec<String>)> = if named.is_empty() { names.tables.iter().collect() } else { named };
    let mut columns: Vec<String> = chosen.into_iter().flat_map(|(_, c)| c.clone()).collect();
    columns.sort();
    columns.dedup();
    columns
}

/// Candidates starting with `prefix` (ignoring case), sorted, once each.
fn matching(mut candidates: Vec<String>, prefix: &str) -> Vec<String> {
    let p = prefix.to_lowercase();
    candidates.retain(|c| c.to_lowercase().starts_with(&p));
    candidates.sort();
    candidates.dedup();
    candidates
}

/// The byte index of the quote that opens the string the text ends in.
fn open_quote(text: &str) -> Option<usize> {
    let mut open = None;
    for (i, c) in text.char_indices() {
        if c == '\'' {
            open = if open.is_some() { None } else { Some(i) };
        }
    }
    open
}

fn last_word(text: &str) -> &str {
    text.trim_end()
        .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or_default()
}

fn upper(text: &str) -> String {
    text.to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn names() -> Names {
        Names {
            tables: vec![
                ("bids".into(), vec!["auction".into(), "price".into(), "ts".into()]),
                ("orders".into(), vec!["channel".into(), "amount".into()]),
            ],
        }
    }

    fn done(line: &str) -> Vec<String> {
        complete(&names(), "", line, line.len()).1
    }

    #[test]
    fn tables_after_from_and_columns_of_the_tables_named() {
        assert_eq!(done("SELECT * FROM b"), vec!["bids"]);
        assert_eq!(done("SELECT pr"), vec!["price"]);
        assert_eq!(done("SELECT a FROM orders WHERE am"), vec!["amount"]);
        let a = done("SELECT a FROM orders WHERE a");
        assert!(a.contains(&"amount".into()) && a.contains(&"and".into()) && !a.contains(&"auction".into()), "{a:?}");
        assert_eq!(done("SELECT bids.a"), vec!["auction"]);
        let (start, c) = complete(&names(), "SELECT window_start\n", "FROM TABLE(TUM", 14);
        assert_eq!((start, c), (11, vec!["TUMBLE".to_string()]));
    }

    #[test]
    fn with_keys_follow_the_connector_and_values_follow_the_key() {
        assert_eq!(done("CREATE TABLE t (a INT) WITH ('connector' = 'data"), vec!["datagen'"]);
        let keys = done("CREATE TABLE t (a INT, ts TIMESTAMP(3)) WITH ('connector' = 'datagen', 'fields.a");
        assert!(keys.contains(&"fields.a.kind'".to_string()), "{keys:?}");
        assert!(!keys.iter().any(|k| k.starts_with("fields.ts")), "{keys:?}");
        assert_eq!(done("CREATE TABLE t (a INT) WITH ('connector' = 'filesystem', 'pa"), vec!["path'"]);
        assert_eq!(done("CREATE TABLE t (a INT) WITH ('co"), vec!["connector'"]);
        assert_eq!(done("\\d o"), vec!["orders"]);
        assert_eq!(done("\\ti"), vec!["\\timing"]);
    }

    /// Every key offered is one its connector accepts (or, for the source
    /// keys, one the SQL layer reads), so completion never suggests a
    /// mistake.
    #[test]
    fn every_offered_key_is_accepted_by_its_connector() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let base = |c: &str| -> BTreeMap<String, String> {
            let mut m = BTreeMap::from([("connector".to_string(), c.to_string())]);
            match c {
                "filesystem" => {
                    m.insert("path".into(), "/nonexistent".into());
                    m.insert("format".into(), "json".into());
                }
                "kafka" => {
                    m.insert("topic".into(), "t".into());
                    m.insert("format".into(), "json".into());
                    m.insert("properties.bootstrap.servers".into(), "localhost:1".into());
                }
                _ => {}
            }
            m
        };
        for (connector, keys) in CONNECTOR_KEYS {
            assert!(CONNECTORS.contains(connector));
            for key in *keys {
                let mut options = base(connector);
                if key.starts_with("csv.") {
                    options.insert("format".into(), "csv".into());
                }
                options.entry(key.to_string()).or_insert_with(|| "x".into());
                if let Err(weir_connectors::ConnectorError::UnknownOption { .. }) =
                    weir_connectors::create_table("t", &options, Arc::clone(&schema), &[], &[], &[])
                {
                    panic!("{connector} does not know '{key}'");
                }
            }
        }
    }
}
