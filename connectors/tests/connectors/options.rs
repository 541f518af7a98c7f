//! WITH options: what is refused at CREATE TABLE, and with which message.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use weir_connectors::{CONNECTORS, ConnectorError};

use crate::support::{schema, table};

fn columns() -> datafusion::arrow::datatypes::SchemaRef {
    schema(&[
        ("id", DataType::Int64),
        ("name", DataType::Utf8),
        ("ts", DataType::Timestamp(TimeUnit::Millisecond, None)),
    ])
}

fn error(pairs: &[(&str, &str)]) -> ConnectorError {
    table(pairs, columns()).expect_err("options must be refused")
}

#[test]
fn builds_each_connector_with_the_right_sides() {
    let fs = table(
        &[
            ("connector", "filesystem"),
            ("path", "/tmp/x"),
            ("format", "json"),
        ],
        columns(),
    )
    .unwrap();
    assert_eq!(fs.connector, "filesystem");
    assert!(fs.source.is_some() && fs.sink.is_some());
    let dg = table(&[("connector", "datagen")], columns()).unwrap();
    assert!(dg.source.is_some() && dg.sink.is_none());
    assert_eq!(
        dg.source.unwrap().describe(),
        "datagen rows-per-second=10000"
    );
    let pr = table(
        &[("connector", "print"), ("print-identifier", "p")],
        columns(),
    )
    .unwrap();
    assert!(pr.source.is_none() && pr.sink.is_some());
    let bh = table(&[("connector", "blackhole")], columns()).unwrap();
    assert_eq!(bh.sink.unwrap().describe(), "blackhole");
    let mem = table(&[("connector", "memory")], columns()).unwrap();
    assert!(mem.source.is_none() && mem.sink.is_some() && mem.batch.is_some());
    let kafka = table(
        &[
            ("connector", "kafka"),
            ("topic", "t"),
            ("properties.bootstrap.servers", "localhost:9092"),
            ("format", "json"),
        ],
        columns(),
    )
    .unwrap();
    assert!(kafka.source.is_some() && kafka.sink.is_some());
    assert_eq!(
        CONNECTORS,
        &["blackhole", "datagen", "filesystem", "jdbc", "kafka", "memory", "nexmark", "postgres", "print", "upsert-kafka"]
    );
}

#[test]
fn unknown_and_missing_connector() {
    let e = error(&[("connector", "kafkaa")]);
    assert!(matches!(e, ConnectorError::UnknownConnector { .. }));
    assert_eq!(
        e.to_string(),
        "unknown connector 'kafkaa' (known connectors: blackhole, datagen, filesystem, jdbc, kafka, memory, nexmark, postgres, print, upsert-kafka)"
    );
    let e = error(&[("path", "/tmp")]);
    assert_eq!(
        e.to_string(),
        "table 't' has no 'connector' option (known connectors: blackhole, datagen, filesystem, jdbc, kafka, memory, nexmark, postgres, print, upsert-kafka)"
    );
}

#[test]
fn unknown_option_lists_the_allowed_ones() {
    let e = error(&[
        ("connector", "filesystem"),
        ("path", "/tmp"),
        ("format", "json"),
        ("paht", "x"),
    ]);
    assert_eq!(
        e.to_string(),
        "unknown option 'paht' for connector 'filesystem' (allowed: path, format, source.monitor-interval, \
         source.max-record-size, source.split-size, sink.rolling-policy.file-size, sink.rolling-policy.rollover-interval, \
         sink.rolling-policy.check-interval, partition.default-name, sink.shuffle-by-partition.enable, \
         lookup.join.cache.ttl, json.timestamp-format.standard, json.ignore-parse-errors, format.ignore-parse-errors, \
         sink.partition-commit.trigger, sink.partition-commit.delay, sink.partition-commit.policy.kind, \
         sink.partition-commit.policy.class, sink.partition-commit.success-file.name, \
         sink.partition-commit.watermark-time-zone, partition.time-extractor.kind, partition.time-extractor.class, \
         partition.time-extractor.timestamp-pattern, partition.time-extractor.timestamp-formatter, lookup.cache, lookup.full-cache.reload-strategy, \
         lookup.full-cache.periodic-reload.interval, lookup.full-cache.periodic-reload.schedule-mode, \
         lookup.full-cache.timed-reload.at-time, lookup.full-cache.timed-reload.interval-in-days)"
    );
    // Another format's options are unknown too.
    let e = error(&[
        ("connector", "filesystem"),
        ("path", "/tmp"),
        ("format", "json"),
        ("csv.field-delimiter", ";"),
    ]);
    assert!(
        matches!(e, ConnectorError::UnknownOption { ref key, .. } if key == "csv.field-delimiter"),
        "{e}"
    );
    let e = error(&[
        ("connector", "filesystem"),
        ("path", "/tmp"),
        ("format", "json"),
        ("csv.ignore-parse-errors", "true"),
    ]);
    assert!(
        matches!(e, ConnectorError::UnknownOption { ref key, .. } if key == "csv.ignore-parse-errors"),
        "{e}"
    );
    let e = error(&[("connector", "blackhole"), ("x", "1")]);
    assert_eq!(
        e.to_string(),
        "unknown option 'x' for connector 'blackhole' (allowed: only 'connector')"
    );
    let e = error(&[("connector", "datagen"), ("fields.id.knd", "sequence")]);
    assert!(
        e.to_string().starts_with(
            "unknown option 'fields.id.knd' for connector 'datagen' (allowed: rows-per-second"
        ),
        "{e}"
    );
    let e = error(&[("connector", "datagen"), ("fields.nope.kind", "random")]);
    assert!(
        e.to_string().contains("for the columns id, name, ts"),
        "{e}"
    );
}

/// The changelog formats' options are Flink's, and only the chosen
/// format's; `upsert-kafka` lists its own.
#[test]
fn changelog_format_and_upsert_kafka_options() {
    for (format, keys) in [
        (
            "debezium-json",
            "debezium-json.schema-include, debezium-json.ignore-parse-errors, debezium-json.timestamp-format.standard",
        ),
        (
            "canal-json",
            "canal-json.ignore-parse-errors, canal-json.timestamp-format.standard, canal-json.database.include, \
             canal-json.table.include",
        ),
        ("maxwell-json", "maxwell-json.ignore-parse-errors, maxwell-json.timestamp-format.standard"),
    ] {
        let e = error(&[("connector", "filesystem"), ("path", "/tmp"), ("format", format), ("json.ignore-parse-errors", "true")]);
        assert!(e.to_string().contains(keys), "{e}");
    }
    let e = error(&[
        ("connector", "filesystem"),
        ("path", "/tmp"),
        ("format", "canal-json"),
        ("canal-json.table.include", "prod(ucts"),
    ]);
    assert!(e.to_string().contains("'canal-json.table.include'"), "{e}");
    let upsert = |extra: &[(&str, &str)], key: &[String]| {
        let mut pairs = vec![
            ("connector", "upsert-kafka"),
            ("topic", "t"),
            ("properties.bootstrap.servers", "localhost:9092"),
            ("key.format", "json"),
            ("value.format", "json"),
        ];
        pairs.extend_from_slice(extra);
        weir_connectors::create_table("t", &crate::support::with(&pairs), columns(), &[], &[], key)
    };
    let key = ["id".to_string()];
    let t = upsert(&[("sink.buffer-flush.max-rows", "100"), ("sink.buffer-flush.interval", "1 s")], &key).unwrap();
    assert!(t.source.is_some_and(|s| s.changelog()) && t.sink.is_some_and(|s| s.accepts_changes()));
    let e = upsert(&[("scan.startup.mode", "latest-offset")], &key).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown option 'scan.startup.mode' for connector 'upsert-kafka' (allowed: topic, key.format, value.format, \
         key.fields-prefix, value.fields-include, scan.bounded.mode, sink.buffer-flush.max-rows, \
         sink.buffer-flush.interval, sink.delivery-guarantee, sink.transactional-id-prefix, properties.*, \
         key.json.*, value.json.*)"
    );
    assert!(upsert(&[], &[]).unwrap_err().to_string().contains("require to define a PRIMARY KEY"));
}

#[test]
fn missing_required_options() {
    let e = error(&[("connector", "filesystem"), ("format", "csv")]);
    assert_eq!(
        e.to_string(),
        "missing required option 'path' for connector 'filesystem'"
    );
    let e = error(&[("connector", "filesystem"), ("path", "/tmp")]);
    assert_eq!(
        e.to_string(),
        "missing required option 'format' for connector 'filesystem'"
    );
    let e = error(&[
        ("connector", "datagen"),
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "1"),
    ]);
    assert_eq!(
        e.to_string(),
        "missing required option 'fields.id.end' for connector 'datagen'"
    );
}

#[test]
fn invalid_values_say_what_is_expected() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("connector", "datagen"), ("rows-per-second", "abc")],
            "invalid value 'abc' for option 'rows-per-second': expected a positive integer",
        ),
        (
            &[
                ("connector", "filesystem"),
                ("path", "/tmp"),
                ("format", "xml"),
            ],
            "invalid value 'xml' for option 'format': expected one of 'json', 'csv', 'debezium-json', 'canal-json', 'maxwell-json'",
        ),
        (
            &[
                ("connector", "filesystem"),
                ("path", "/tmp"),
                ("format", "csv"),
                ("csv.field-delimiter", ";;"),
            ],
            "invalid value ';;' for option 'csv.field-delimiter': expected a single ASCII character (or '\\t' for a tab)",
        ),
        (
            &[
                ("connector", "filesystem"),
                ("path", "/tmp"),
                ("format", "json"),
                ("json.ignore-parse-errors", "yes"),
            ],
            "invalid value 'yes' for option 'json.ignore-parse-errors': expected 'true' or 'false'",
        ),
        (
            &[
                ("connector", "filesystem"),
                ("path", "/tmp"),
                ("format", "csv"),
                ("csv.ignore-parse-errors", "1"),
            ],
            "invalid value '1' for option 'csv.ignore-parse-errors': expected 'true' or 'false'",
        ),
        (
            &[
                ("connector", "filesystem"),
                ("path", "/tmp"),
                ("format", "json"),
                ("sink.rolling-policy.file-size", "big"),
            ],
            "invalid value 'big' for option 'sink.rolling-policy.file-size': expected a size like '128MB', '64 kb' or '1048576' (bytes)",
        ),
        (
            &[("connector", "print"), ("standard-error", "yes")],
            "invalid value 'yes' for option 'standard-error': expected 'true' or 'false'",
        ),
        (
            &[
                ("connector", "datagen"),
                ("fields.id.kind", "sequence"),
                ("fields.id.start", "10"),
                ("fields.id.end", "1"),
            ],
            "invalid value '1' for option 'fields.id.end': must not be less than the start, 10",
        ),
        (
            &[
                ("connector", "datagen"),
                ("fields.id.min", "10"),
                ("fields.id.max", "1"),
            ],
            "invalid value '1' for option 'fields.id.max': must not be less than the min",
        ),
        (
            &[("connector", "datagen"), ("fields.id.length", "10")],
            "invalid value '10' for option 'fields.id.length': applies only to VARCHAR, ARRAY and MAP fields (column 'id' is BIGINT)",
        ),
        (
            &[("connector", "datagen"), ("fields.ts.kind", "sequence")],
            "invalid value 'sequence' for option 'fields.ts.kind': needs an integer or VARCHAR column (column 'ts' is TIMESTAMP(3))",
        ),
        (
            &[("connector", "datagen"), ("fields.name.null-rate", "1.5")],
            "invalid value '1.5' for option 'fields.name.null-rate': expected a number from 0 to 1",
        ),
        (
            &[
                ("connector", "datagen"),
                ("fields.ts.max-past", "5 parsecs"),
            ],
            "invalid value '5 parsecs' for option 'fields.ts.max-past': expected a duration like '200 ms', '5 s' or '1 min'",
        ),
    ];
    for (pairs, message) in cases {
        assert_eq!(error(pairs).to_string(), *message);
    }
}

#[test]
fn unsupported_features_and_types() {
    let e = error(&[
        ("connector", "filesystem"),
        ("path", "/tmp"),
        ("format", "json"),
        ("source.monitor-interval", "10 s"),
    ]);
    assert_eq!(
        e.to_string(),
        "connector 'filesystem': continuous directory monitoring ('source.monitor-interval') is not supported yet"
    );
    let odd = schema(&[("t", DataType::Time64(TimeUnit::Microsecond))]);
    let e = table(&[("connector", "datagen")], odd).unwrap_err();
    assert!(matches!(e, ConnectorError::Unsupported { .. }));
    assert!(
        e.to_string().starts_with(
            "connector 'datagen': column 't' has type Time64(µs) (Arrow), which is not supported"
        ),
        "{e}"
    );
}
