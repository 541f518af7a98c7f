//! The decoders over records as the CDC tools write them (the samples of
//! Flink's format pages), through the same decoder the sources use; each
//! test states the rows the records mean, read off the records.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit};
use weir_engine::changelog::split;

use super::metadata::MetadataKey;
use crate::filesystem::decode::RecordDecoder;
use crate::filesystem::format::Format;
use crate::filesystem::lines::LineChunk;
use crate::options::Options;

fn products() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
        Field::new("weight", DataType::Float64, true),
    ]))
}

fn format(options: &[(&str, &str)]) -> Format {
    let map: BTreeMap<String, String> = options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Format::from_options(&Options::new("filesystem", &map)).unwrap()
}

fn chunk(records: &[&str]) -> LineChunk {
    let mut chunk = LineChunk::default();
    for (i, r) in records.iter().enumerate() {
        chunk.push(r.replace('\n', " ").as_bytes(), i as u64 + 1);
    }
    chunk
}

/// (kind, id, weight) of each row.
fn rows(batch: &RecordBatch) -> Vec<(&'static str, i64, Option<f64>)> {
    let (visible, kinds) = split(batch);
    let kinds = kinds.expect("a changelog batch");
    let ids = visible.column(0).as_primitive::<Int64Type>();
    let weights = visible.column(3).as_primitive::<Float64Type>();
    (0..visible.num_rows())
        .map(|i| {
            (
                kinds.get(i).short(),
                ids.value(i),
                weights.is_valid(i).then(|| weights.value(i)),
            )
        })
        .collect()
}

const DEBEZIUM_UPDATE: &str = r#"{
  "before": {"id": 111, "name": "scooter", "description": "Big 2-wheel scooter", "weight": 5.18},
  "after": {"id": 111, "name": "scooter", "description": "Big 2-wheel scooter", "weight": 5.15},
  "source": {"version": "1.1.1.Final", "connector": "mysql", "name": "dbserver1", "ts_ms": 1589362330000,
             "snapshot": "false", "db": "inventory", "table": "products", "server_id": 223344, "gtid": null,
             "file": "mysql-bin.000003", "pos": 2090, "row": 0, "thread": 2, "query": null},
  "op": "u", "ts_ms": 1589362330904, "transaction": null}"#;

#[test]
fn debezium_operations_make_their_rows() {
    let records = [
        r#"{"before": null, "after": {"id": 101, "name": "scooter", "description": "Small 2-wheel scooter", "weight": 2.75}, "source": {"db": "inventory", "table": "products"}, "op": "r", "ts_ms": 1}"#,
        r#"{"before": null, "after": {"id": 111, "name": "scooter", "description": "Big 2-wheel scooter", "weight": 5.18}, "source": {}, "op": "c", "ts_ms": 2}"#,
        DEBEZIUM_UPDATE,
        r#"{"before": {"id": 101, "name": "scooter", "description": "Small 2-wheel scooter", "weight": 2.75}, "after": null, "source": {}, "op": "d", "ts_ms": 4}"#,
    ];
    let decoder = RecordDecoder::new(format(&[("format", "debezium-json")]), products());
    let decoded = decoder
        .decode(&chunk(&records), Path::new("cdc.json"), 0, false)
        .unwrap();
    assert_eq!(
        rows(&decoded.batch),
        [
            ("+I", 101, Some(2.75)),
            ("+I", 111, Some(5.18)),
            ("-U", 111, Some(5.18)),
            ("+U", 111, Some(5.15)),
            ("-D", 101, Some(2.75)),
        ]
    );
    // Each row is of its record's line.
    assert_eq!(decoded.kept, Some(vec![0, 1, 2, 2, 3]));
}

#[test]
fn debezium_schema_include_reads_the_payload_and_says_when_it_is_missing() {
    let wrapped =
        format!(r#"{{"schema": {{"type": "struct", "fields": [], "optional": false}}, "payload": {DEBEZIUM_UPDATE}}}"#);
    let with = RecordDecoder::new(
        format(&[("format", "debezium-json"), ("debezium-json.schema-include", "true")]),
        products(),
    );
    let decoded = with
        .decode(&chunk(&[&wrapped]), Path::new("cdc.json"), 0, false)
        .unwrap();
    assert_eq!(rows(&decoded.batch), [("-U", 111, Some(5.18)), ("+U", 111, Some(5.15))]);
    let without = RecordDecoder::new(format(&[("format", "debezium-json")]), products());
    let e = without
        .decode(&chunk(&[&wrapped]), Path::new("cdc.json"), 0, false)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("cdc.json:1") && e.contains("debezium-json.schema-include"),
        "{e}"
    );
}

#[test]
fn bad_changes_fail_naming_the_line_or_are_skipped_and_reported() {
    let records = [
        DEBEZIUM_UPDATE,
        r#"{"before": null, "after": {"id": 1}, "op": "x"}"#,
        r#"{"before": null, "after": {"id": 2}, "op": "u"}"#,
        r#"not json"#,
        r#"{"before": null, "after": {"id": 3, "weight": 1.5}, "op": "c"}"#,
    ];
    let strict = RecordDecoder::new(format(&[("format", "debezium-json")]), products());
    let e = strict
        .decode(&chunk(&records), Path::new("cdc.json"), 0, false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cdc.json:"), "{e}");
    let tolerant = RecordDecoder::new(
        format(&[
            ("format", "debezium-json"),
            ("debezium-json.ignore-parse-errors", "true"),
        ]),
        products(),
    );
    let decoded = tolerant
        .decode(&chunk(&records), Path::new("cdc.json"), 0, true)
        .unwrap();
    assert_eq!(
        rows(&decoded.batch),
        [("-U", 111, Some(5.18)), ("+U", 111, Some(5.15)), ("+I", 3, Some(1.5))]
    );
    let mut bad: Vec<(String, String)> = decoded
        .bad
        .iter()
        .map(|b| (b.location.clone(), b.error.clone()))
        .collect();
    bad.sort();
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert_eq!(bad[0].0, "cdc.json:2");
    assert!(bad[0].1.contains("unknown \"op\" value \"x\""), "{bad:?}");
    assert_eq!(bad[1].0, "cdc.json:3");
    assert!(bad[1].1.contains("REPLICA IDENTITY FULL"), "{bad:?}");
    assert_eq!(bad[2].0, "cdc.json:4");
}

/// Canal writes every value as text, a transaction's rows in one `data`
/// array and only the changed columns in `old`.
#[test]
fn canal_transactions_updates_and_ddl() {
    let records = [
        r#"{"data": [{"id": "111", "name": "scooter", "description": "Big 2-wheel scooter", "weight": "5.18"},
                     {"id": "112", "name": "car battery", "description": "12V car battery", "weight": "8.1"}],
            "database": "inventory", "es": 1589373515000, "id": 3, "isDdl": false,
            "mysqlType": {"id": "INTEGER", "name": "VARCHAR(255)", "description": "VARCHAR(512)", "weight": "FLOAT"},
            "old": null, "pkNames": ["id"], "sql": "", "sqlType": {"id": 4, "name": 12, "description": 12, "weight": 7},
            "table": "products", "ts": 1589373515477, "type": "INSERT"}"#,
        r#"{"data": [{"id": "111", "name": "scooter", "description": "Big 2-wheel scooter", "weight": "5.15"},
                     {"id": "112", "name": "car battery", "description": "12V car battery", "weight": "8.1"}],
            "database": "inventory", "es": 1589373560000, "id": 9, "isDdl": false,
            "old": [{"weight": "5.18"}, {"description": "12V battery"}], "pkNames": ["id"],
            "table": "products", "ts": 1589373560798, "type": "UPDATE"}"#,
        r#"{"data": null, "database": "inventory", "es": 1589373600000, "id": 10, "isDdl": true, "old": null,
            "pkNames": null, "sql": "ALTER TABLE products ADD COLUMN color VARCHAR(20)", "table": "products",
            "ts": 1589373600100, "type": "ALTER"}"#,
        r#"{"data": [{"id": "7", "weight": "1.0"}], "database": "other", "isDdl": false, "table": "products", "type": "INSERT"}"#,
        r#"{"data": [{"id": "112", "name": "car battery", "description": "12V car battery", "weight": "8.1"}],
            "database": "inventory", "es": 1589373620000, "id": 11, "isDdl": false, "old": null,
            "table": "products", "ts": 1589373620200, "type": "DELETE"}"#,
    ];
    let decoder = RecordDecoder::new(
        format(&[("format", "canal-json"), ("canal-json.database.include", "inv.*")]),
        products(),
    );
    let decoded = decoder
        .decode(&chunk(&records), Path::new("canal.json"), 0, false)
        .unwrap();
    assert_eq!(
        rows(&decoded.batch),
        [
            ("+I", 111, Some(5.18)),
            ("+I", 112, Some(8.1)),
            ("-U", 111, Some(5.18)),
            ("+U", 111, Some(5.15)),
            ("-U", 112, Some(8.1)),
            ("+U", 112, Some(8.1)),
            ("-D", 112, Some(8.1)),
        ]
    );
    // The before image of row 112 has the old description.
    let (visible, _) = split(&decoded.batch);
    let descriptions = visible.column(2).as_string::<i32>();
    assert_eq!(descriptions.value(4), "12V battery");
    assert_eq!(descriptions.value(5), "12V car battery");
}

#[test]
fn maxwell_updates_take_unchanged_columns_from_data() {
    let records = [
        r#"{"database": "test", "table": "e", "type": "insert", "ts": 1477053217, "xid": 23396, "commit": true,
            "data": {"id": 111, "name": "scooter", "description": "Big 2-wheel scooter", "weight": 5.18}}"#,
        r#"{"database": "test", "table": "e", "type": "update", "ts": 1477053218, "xid": 23397, "commit": true,
            "data": {"id": 111, "name": "scooter", "description": "Big 2-wheel scooter", "weight": 5.15},
            "old": {"weight": 5.18}}"#,
        r#"{"database": "test", "table": "e", "type": "delete", "ts": 1477053219,
            "data": {"id": 111, "name": "scooter", "description": "Big 2-wheel scooter", "weight": 5.15}}"#,
        r#"{"database": "test", "table": "e", "type": "table-create", "ts": 1477053220}"#,
        // A column changed from NULL: the before image has it NULL.
        r#"{"database": "test", "table": "e", "type": "update", "ts": 1477053221,
            "data": {"id": 112, "name": null, "description": "new", "weight": 1.5}, "old": {"weight": null}}"#,
    ];
    let decoder = RecordDecoder::new(
        format(&[("format", "maxwell-json"), ("maxwell-json.ignore-parse-errors", "true")]),
        products(),
    );
    let decoded = decoder
        .decode(&chunk(&records), Path::new("maxwell.json"), 0, true)
        .unwrap();
    assert_eq!(
        rows(&decoded.batch),
        [
            ("+I", 111, Some(5.18)),
            ("-U", 111, Some(5.18)),
            ("+U", 111, Some(5.15)),
            ("-D", 111, Some(5.15)),
            ("-U", 112, None),
            ("+U", 112, Some(1.5))
        ]
    );
    assert_eq!(decoded.bad.len(), 1);
    assert!(decoded.bad[0].error.contains("table-create"), "{:?}", decoded.bad);
}

#[test]
fn metadata_comes_from_each_rows_record() {
    let Format::Changelog(mut changelog) = format(&[("format", "debezium-json")]) else {
        unreachable!()
    };
    let mut fields: Vec<Field> = products().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("origin_table", DataType::Utf8, true));
    fields.push(Field::new(
        "ingested",
        DataType::Timestamp(TimeUnit::Millisecond, None),
        true,
    ));
    changelog.metadata = vec![(4, MetadataKey::Table), (5, MetadataKey::IngestionTimestamp)];
    let decoder = RecordDecoder::new(Format::Changelog(changelog), Arc::new(Schema::new(fields)));
    let records = [
        r#"{"after": {"id": 1}, "source": {"table": "a"}, "op": "c", "ts_ms": 1000}"#,
        DEBEZIUM_UPDATE,
    ];
    let decoded = decoder
        .decode(&chunk(&records), Path::new("cdc.json"), 0, false)
        .unwrap();
    let (visible, _) = split(&decoded.batch);
    let tables = visible.column(4).as_string::<i32>();
    assert_eq!(
        (0..3).map(|i| tables.value(i)).collect::<Vec<_>>(),
        ["a", "products", "products"]
    );
    let ingested = visible
        .column(5)
        .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
    assert_eq!(ingested.values().to_vec(), [1000, 1589362330904, 1589362330904]);
}

/// Canal's `ts` and `es` are milliseconds, Maxwell's `ts` seconds (Flink
/// multiplies it by 1000); `database` and `table` are the record's.
#[test]
fn canal_and_maxwell_metadata() {
    let ms = |v: &RecordBatch, c: usize| {
        v.column(c)
            .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>()
            .values()
            .to_vec()
    };
    for (name, record, keys, want_ms) in [
        (
            "canal-json",
            r#"{"data": [{"id": "1"}, {"id": "2"}], "database": "inventory", "table": "products", "ts": 1589373515477,
                "es": 1589373515000, "isDdl": false, "type": "INSERT"}"#,
            [
                MetadataKey::Database,
                MetadataKey::IngestionTimestamp,
                MetadataKey::SourceTimestamp,
            ],
            vec![1589373515477, 1589373515477],
        ),
        (
            "maxwell-json",
            r#"{"database": "test", "table": "e", "type": "insert", "ts": 1477053217, "data": {"id": 1}}"#,
            [
                MetadataKey::Database,
                MetadataKey::IngestionTimestamp,
                MetadataKey::Table,
            ],
            vec![1477053217000],
        ),
    ] {
        let Format::Changelog(mut changelog) = format(&[("format", name)]) else {
            unreachable!()
        };
        let mut fields: Vec<Field> = products().fields().iter().map(|f| f.as_ref().clone()).collect();
        for (i, key) in keys.iter().enumerate() {
            fields.push(Field::new(format!("m{i}"), key.data_type(), true));
            changelog.metadata.push((4 + i, *key));
        }
        let decoder = RecordDecoder::new(Format::Changelog(changelog), Arc::new(Schema::new(fields)));
        let decoded = decoder
            .decode(&chunk(&[record]), Path::new("cdc.json"), 0, false)
            .unwrap();
        let (visible, _) = split(&decoded.batch);
        let database = visible.column(4).as_string::<i32>();
        assert!(
            (0..visible.num_rows())
                .all(|i| database.value(i) == if name == "canal-json" { "inventory" } else { "test" })
        );
        assert_eq!(ms(&visible, 5), want_ms, "{name}");
    }
}
