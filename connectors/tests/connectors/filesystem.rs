//! The filesystem connector: decoding, errors, directories and part files.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMillisecondType};
use weir_engine::source::{PARTITION_ENDED, Positions, SourceConnector, SourceEvent};

use crate::support::{
    Event, read, read_all, read_reporting, read_resumed, schema, table, files_in,
};

const TS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);
/// 2026-01-01T00:00:00Z.
const BASE: i64 = 1_767_225_600_000;

fn source(
    path: &Path,
    format: &str,
    extra: &[(&str, &str)],
    columns: &[(&str, DataType)],
) -> Arc<dyn SourceConnector> {
    let path = path.to_string_lossy();
    let mut pairs = vec![
        ("connector", "filesystem"),
        ("path", path.as_ref()),
        ("format", format),
    ];
    pairs.extend_from_slice(extra);
    table(&pairs, schema(columns)).unwrap().source.unwrap()
}

fn ids_and_times(batch: &RecordBatch) -> (Vec<Option<i64>>, Vec<Option<i64>>) {
    (
        batch.column(0).as_primitive::<Int64Type>().iter().collect(),
        batch
            .column(1)
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect(),
    )
}

#[tokio::test]
async fn json_lines_with_every_timestamp_form_and_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bids.json");
    std::fs::write(
        &file,
        concat!(
            r#"{"id": 1, "ts": "2026-01-01 00:00:00.000", "name": "a"}"#,
            "\n",
            "\n",
            r#"{"id": 2, "ts": "2026-01-01 00:00:01", "extra": [1, 2]}"#,
            "\n",
            r#"{"id": 3, "ts": "2026-01-01T00:00:00.123Z", "name": null}"#,
            "\n",
            r#"{"id": 4, "ts": "2026-01-01T01:00:02+01:00"}"#,
            "\n",
            r#"{"id": 5, "ts": 1767225603000}"#,
            "\n",
            r#"{"id": 6, "ts": "1767225604000"}"#,
            "\n",
            r#"{"ts": null}"#,
        ),
    )
    .unwrap();
    let src = source(
        &file,
        "json",
        &[],
        &[
            ("id", DataType::Int64),
            ("ts", TS),
            ("name", DataType::Utf8),
        ],
    );
    assert_eq!(src.partitions(4).unwrap(), 1);
    let (events, batch) = read(&src, vec![0], 1).await.unwrap();
    // Eight lines, the blank one and the last unterminated one included.
    assert_eq!(events, vec![Event::Batch(0, 7, 0, 8), Event::End(0)]);
    let (ids, times) = ids_and_times(&batch);
    assert_eq!(
        ids,
        vec![Some(1), Some(2), Some(3), Some(4), Some(5), Some(6), None]
    );
    assert_eq!(
        times,
        vec![
            Some(BASE),
            Some(BASE + 1000),
            Some(BASE + 123),
            Some(BASE + 2000),
            Some(BASE + 3000),
            Some(BASE + 4000),
            None
        ]
    );
    let names: Vec<_> = batch.column(2).as_string::<i32>().iter().collect();
    assert_eq!(names, vec![Some("a"), None, None, None, None, None, None]);
}

#[tokio::test]
async fn csv_columns_by_position_with_null_literal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bids.csv");
    std::fs::write(
        &file,
        "1;2026-01-01 00:00:00.000;\"a;b\"\n2;2026-01-01T00:00:01Z;N/A\n\nN/A;1767225602000;c\n3;;\n",
    )
    .unwrap();
    let src = source(
        &file,
        "csv",
        &[("csv.field-delimiter", ";"), ("csv.null-literal", "N/A")],
        &[
            ("id", DataType::Int64),
            ("ts", TS),
            ("name", DataType::Utf8),
        ],
    );
    let batch = read_all(&src).await.unwrap();
    let (ids, times) = ids_and_times(&batch);
    assert_eq!(ids, vec![Some(1), Some(2), None, Some(3)]);
    assert_eq!(
        times,
        vec![Some(BASE), Some(BASE + 1000), Some(BASE + 2000), None]
    );
    let names: Vec<_> = batch.column(2).as_string::<i32>().iter().collect();
    assert_eq!(names, vec![Some("a;b"), None, Some("c"), None]);
}

async fn decode_error(file: &Path, contents: &str, format: &str) -> String {
    std::fs::write(file, contents).unwrap();
    let src = source(file, format, &[], &[("id", DataType::Int64), ("ts", TS)]);
    read_all(&src)
        .await
        .expect_err("the bad line must fail the read")
        .to_string()
}

#[tokio::test]
async fn a_bad_record_names_its_exact_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in");
    let path = file.display();
    let good = "{\"id\": 1, \"ts\": \"2026-01-01 00:00:00\"}\n";
    let json = format!("{good}\n{good}{good}{{\"id\": \"x\", \"ts\": 0}}\n{good}");
    assert_eq!(
        decode_error(&file, &json, "json").await,
        format!(
            "{path}:5: cannot decode record: whilst decoding field 'id': failed to parse \"x\" as Int64: {{\"id\": \"x\", \"ts\": 0}}"
        )
    );
    let json = format!("{good}{{\"id\": 2, \"ts\": \"noon\"}}\n");
    assert_eq!(
        decode_error(&file, &json, "json").await,
        format!(
            "{path}:2: cannot decode record: invalid TIMESTAMP 'noon' for column 'ts' (expected \
             'yyyy-MM-dd HH:mm:ss[.SSS]', ISO-8601 or epoch milliseconds): {{\"id\": 2, \"ts\": \"noon\"}}"
        )
    );
    let json = format!("{good}{{\"id\": 1}} {{\"id\": 2}}\n");
    assert_eq!(
        decode_error(&file, &json, "json").await,
        format!(
            "{path}:2: cannot decode record: expected exactly one JSON object per line: {{\"id\": 1}} {{\"id\": 2}}"
        )
    );
    let json = format!("{good}{{\"id\": 1,\n");
    assert!(
        decode_error(&file, &json, "json")
            .await
            .starts_with(&format!("{path}:2: cannot decode record: "))
    );
    let csv = "1,1767225600000\n2,1767225600000\n3\n";
    assert_eq!(
        decode_error(&file, csv, "csv").await,
        format!("{path}:3: cannot decode record: incorrect number of fields, expected 2 got 1: 3")
    );
    let csv = "1,1767225600000\nabc,1767225600000\n";
    assert_eq!(
        decode_error(&file, csv, "csv").await,
        format!(
            "{path}:2: cannot decode record: column 'id': Cannot cast string 'abc' to value of Int64 type: abc,1767225600000"
        )
    );
    let long = format!("1,{}\n", "x".repeat(300));
    let message = decode_error(&file, &long, "csv").await;
    assert!(
        message.starts_with(&format!(
            "{path}:1: cannot decode record: invalid TIMESTAMP"
        )),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(": 1,{}...", "x".repeat(198))),
        "{message}"
    );
}

/// Locations, texts and errors of the bad records read, for one assertion.
fn bad_records(read: &crate::support::Read) -> Vec<(String, String, String)> {
    read.bad
        .iter()
        .map(|r| {
            assert_eq!(r.partition, 0);
            (r.location.clone(), r.text.clone(), r.error.clone())
        })
        .collect()
}

/// Good lines around two bad ones (bad JSON on line 3, a wrong type on
/// line 6), with a blank line that still counts.
const JSON_WITH_TWO_BAD_LINES: &str = concat!(
    "{\"id\": 1, \"ts\": \"2026-01-01 00:00:00\"}\n",
    "{\"id\": 2, \"ts\": 1767225601000}\n",
    "{\"id\": oops}\n",
    "\n",
    "{\"id\": 3, \"ts\": \"2026-01-01 00:00:03\"}\n",
    "{\"id\": \"x\", \"ts\": 0}\n",
    "{\"id\": 4, \"ts\": \"2026-01-01T00:00:04Z\"}\n",
);

fn json_two_bad_lines_expected(path: &str) -> Vec<(String, String, String)> {
    vec![
        (
            format!("{path}:3"),
            "{\"id\": oops}".into(),
            "Encountered unexpected 'o' whilst parsing value".into(),
        ),
        (
            format!("{path}:6"),
            "{\"id\": \"x\", \"ts\": 0}".into(),
            "whilst decoding field 'id': failed to parse \"x\" as Int64".into(),
        ),
    ]
}

#[tokio::test]
async fn json_ignore_parse_errors_keeps_the_good_rows_and_reports_the_bad() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    std::fs::write(&file, JSON_WITH_TWO_BAD_LINES).unwrap();
    let src = source(
        &file,
        "json",
        &[("json.ignore-parse-errors", "true")],
        &[("id", DataType::Int64), ("ts", TS)],
    );
    let read = read_reporting(&src, vec![0], 1, false).await.unwrap();
    // The bad records of a chunk come with its good rows.
    assert_eq!(read.events, vec![Event::Batch(0, 4, 2, 7), Event::End(0)]);
    let (ids, times) = ids_and_times(&read.rows);
    assert_eq!(ids, vec![Some(1), Some(2), Some(3), Some(4)]);
    assert_eq!(
        times,
        vec![Some(BASE), Some(BASE + 1000), Some(BASE + 3000), Some(BASE + 4000)]
    );
    assert_eq!(
        bad_records(&read),
        json_two_bad_lines_expected(&file.display().to_string())
    );
}

#[tokio::test]
async fn without_ignore_parse_errors_the_first_bad_line_fails_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    std::fs::write(&file, JSON_WITH_TWO_BAD_LINES).unwrap();
    for extra in [&[][..], &[("json.ignore-parse-errors", "false")][..]] {
        let src = source(&file, "json", extra, &[("id", DataType::Int64), ("ts", TS)]);
        let err = read_reporting(&src, vec![0], 1, false)
            .await
            .err()
            .expect("the bad line must fail the read")
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}:3: cannot decode record: Encountered unexpected 'o' whilst parsing value: {{\"id\": oops}}",
                file.display()
            )
        );
    }
}

#[tokio::test]
async fn a_query_with_a_side_table_gets_bad_records_reported_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    std::fs::write(&file, JSON_WITH_TWO_BAD_LINES).unwrap();
    let src = source(&file, "json", &[], &[("id", DataType::Int64), ("ts", TS)]);
    let read = read_reporting(&src, vec![0], 1, true).await.unwrap();
    assert_eq!(read.events, vec![Event::Batch(0, 4, 2, 7), Event::End(0)]);
    let (ids, _) = ids_and_times(&read.rows);
    assert_eq!(ids, vec![Some(1), Some(2), Some(3), Some(4)]);
    assert_eq!(
        bad_records(&read),
        json_two_bad_lines_expected(&file.display().to_string())
    );
}

#[tokio::test]
async fn csv_ignore_parse_errors_keeps_the_good_rows_and_reports_the_bad() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.csv");
    std::fs::write(
        &file,
        "1,2026-01-01 00:00:00\n2,1767225601000,extra\n3,2026-01-01 00:00:03\nabc,2026-01-01 00:00:04\n\n4,noon\n5,2026-01-01 00:00:05\n",
    )
    .unwrap();
    let src = source(
        &file,
        "csv",
        &[("csv.ignore-parse-errors", "TRUE")],
        &[("id", DataType::Int64), ("ts", TS)],
    );
    let read = read_reporting(&src, vec![0], 1, false).await.unwrap();
    assert_eq!(read.events, vec![Event::Batch(0, 3, 3, 7), Event::End(0)]);
    let (ids, times) = ids_and_times(&read.rows);
    assert_eq!(ids, vec![Some(1), Some(3), Some(5)]);
    assert_eq!(times, vec![Some(BASE), Some(BASE + 3000), Some(BASE + 5000)]);
    let path = file.display();
    assert_eq!(
        bad_records(&read),
        vec![
            (
                format!("{path}:2"),
                "2,1767225601000,extra".into(),
                "incorrect number of fields, expected 2 got more than 2".into()
            ),
            (
                format!("{path}:4"),
                "abc,2026-01-01 00:00:04".into(),
                "column 'id': Cannot cast string 'abc' to value of Int64 type".into()
            ),
            (
                format!("{path}:6"),
                "4,noon".into(),
                "invalid TIMESTAMP 'noon' for column 'ts' (expected 'yyyy-MM-dd HH:mm:ss[.SSS]', \
                 ISO-8601 or epoch milliseconds)"
                    .into()
            ),
        ]
    );
}

#[tokio::test]
async fn bad_records_keep_exact_lines_and_file_order_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    // Chunk 1 (lines 1-8192) has one bad line; chunk 2 holds only bad lines;
    // chunk 3 is good again.
    let mut text: String = (1..=8192)
        .map(|i| match i {
            100 => "x,0\n".to_string(),
            _ => format!("{i},{}\n", BASE + i),
        })
        .collect();
    for _ in 0..8192 {
        text.push_str("y,0\n");
    }
    text.push_str("16385,1767225600000\n");
    std::fs::write(&file, &text).unwrap();
    let src = source(&file, "csv", &[], &[("id", DataType::Int64), ("ts", TS)]);
    let read = read_reporting(&src, vec![0], 1, true).await.unwrap();
    assert_eq!(
        read.events,
        vec![
            Event::Batch(0, 8191, 1, 8192),
            // A chunk of bad lines only still moves the position.
            Event::Batch(0, 0, 8192, 16384),
            Event::Batch(0, 1, 0, 16385),
            Event::End(0)
        ]
    );
    let locations: Vec<&str> = read.bad.iter().map(|r| r.location.as_str()).collect();
    let path = file.display().to_string();
    assert_eq!(locations[0], format!("{path}:100"));
    assert_eq!(locations[1], format!("{path}:8193"));
    assert_eq!(locations[8192], format!("{path}:16384"));
    assert!(read.bad[1..].iter().all(|r| r.text == "y,0"));
    let ids = read.rows.column(0).as_primitive::<Int64Type>();
    assert_eq!(ids.len(), 8192);
    assert_eq!((ids.value(98), ids.value(99), ids.value(8191)), (99, 101, 16385));
}

#[tokio::test]
async fn line_numbers_stay_exact_past_the_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    let mut text: String = (0..9000).map(|i| format!("{i},{}\n", BASE + i)).collect();
    text.push_str("9000,later\n");
    std::fs::write(&file, &text).unwrap();
    let src = source(&file, "csv", &[], &[("id", DataType::Int64), ("ts", TS)]);
    let mut reader = src.open(crate::support::assignment(vec![0], 1), false, &Positions::new()).unwrap();
    let first = reader.next().await.unwrap().unwrap();
    assert!(
        matches!(first, SourceEvent::Batch { partition: 0, ref batch, position: 8192, .. } if batch.num_rows() == 8192)
    );
    let err = reader.next().await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:9001: cannot decode record", file.display())),
        "{err}"
    );
}

/// Resume positions for partition 0 only.
fn at(position: u64) -> Positions {
    Positions::from([(0, position)])
}

#[tokio::test]
async fn a_resumed_file_continues_after_its_position_with_exact_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    std::fs::write(&file, JSON_WITH_TWO_BAD_LINES).unwrap();
    let src = source(&file, "json", &[], &[("id", DataType::Int64), ("ts", TS)]);
    let path = file.display().to_string();
    let all_bad = json_two_bad_lines_expected(&path);
    // (position, ids after it, bad records after it): line 3 is bad, line 4
    // blank, line 6 bad.
    let cases = [
        (2, vec![3, 4], &all_bad[..]),
        (3, vec![3, 4], &all_bad[1..]),
        (4, vec![3, 4], &all_bad[1..]),
        (5, vec![4], &all_bad[1..]),
        (6, vec![4], &all_bad[..0]),
    ];
    for (position, ids, bad) in cases {
        let read = read_resumed(&src, vec![0], 1, true, &at(position))
            .await
            .unwrap();
        assert_eq!(
            read.events,
            vec![Event::Batch(0, ids.len(), bad.len(), 7), Event::End(0)],
            "resumed at {position}"
        );
        let read_ids: Vec<i64> = read
            .rows
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec();
        assert_eq!(read_ids, ids, "resumed at {position}");
        assert_eq!(bad_records(&read), bad, "resumed at {position}");
    }
    // At the end, the partition just ends.
    let read = read_resumed(&src, vec![0], 1, true, &at(7)).await.unwrap();
    assert_eq!(read.events, vec![Event::End(0)]);
    // A failing bad line names its line in the file, not in the rest of it.
    let strict = read_resumed(&src, vec![0], 1, false, &at(4))
        .await
        .err()
        .expect("line 6 must fail the read")
        .to_string();
    assert!(
        strict.starts_with(&format!("{path}:6: cannot decode record")),
        "{strict}"
    );
}

#[tokio::test]
async fn a_last_line_without_terminator_counts_when_resuming() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    std::fs::write(&file, "{\"id\": 1}\n\n{\"id\": 2}").unwrap();
    let src = source(&file, "json", &[], &[("id", DataType::Int64)]);
    let fresh = read_reporting(&src, vec![0], 1, false).await.unwrap();
    assert_eq!(fresh.events, vec![Event::Batch(0, 2, 0, 3), Event::End(0)]);
    let read = read_resumed(&src, vec![0], 1, false, &at(2)).await.unwrap();
    assert_eq!(read.events, vec![Event::Batch(0, 1, 0, 3), Event::End(0)]);
    assert_eq!(read.rows.column(0).as_primitive::<Int64Type>().value(0), 2);
    let read = read_resumed(&src, vec![0], 1, false, &at(3)).await.unwrap();
    assert_eq!(read.events, vec![Event::End(0)]);
    // Past the end the file must have changed: its rows cannot be delivered
    // exactly once any more.
    let err = read_resumed(&src, vec![0], 1, false, &at(4))
        .await
        .err()
        .expect("a position past the end must fail")
        .to_string();
    assert_eq!(
        err,
        format!(
            "'{}' has 3 lines but the checkpoint resumes it after line 4: \
             the file changed since the checkpoint",
            file.display()
        )
    );
}

/// A CSV file of `lines` lines of about 120 bytes, every fifth one blank,
/// the others `<line number>,<time>,<padding>`: large enough that skipping
/// crosses the reader's 1 MiB buffer.
fn padded_csv(lines: i64) -> String {
    let pad = "p".repeat(100);
    (1..=lines)
        .map(|i| match i % 5 {
            0 => "\n".to_string(),
            _ => format!("{i},{},{pad}\n", BASE + i),
        })
        .collect()
}

#[tokio::test]
async fn positions_are_cumulative_line_counts_and_resume_exactly_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    std::fs::write(&file, padded_csv(20_000)).unwrap();
    let columns = [("id", DataType::Int64), ("ts", TS), ("pad", DataType::Utf8)];
    let src = source(&file, "csv", &[], &columns);
    let fresh = read_reporting(&src, vec![0], 1, false).await.unwrap();
    // 8192 records end on line 10239 (every fifth line is blank); the blank
    // line 10240 belongs to the next chunk, which reaches the end.
    assert_eq!(
        fresh.events,
        vec![
            Event::Batch(0, 8192, 0, 10_239),
            Event::Batch(0, 7808, 0, 20_000),
            Event::End(0)
        ]
    );
    let fresh_ids = fresh.rows.column(0).as_primitive::<Int64Type>();
    // Resuming at the first event's position reads exactly the rest.
    let resumed = read_resumed(&src, vec![0], 1, false, &at(10_239))
        .await
        .unwrap();
    assert_eq!(
        resumed.events,
        vec![Event::Batch(0, 7808, 0, 20_000), Event::End(0)]
    );
    let ids = resumed.rows.column(0).as_primitive::<Int64Type>();
    assert_eq!(ids.values()[..], fresh_ids.values()[8192..]);
    assert_eq!(ids.value(0), 10_241);
    // Anywhere else, reading goes on from the next line.
    let resumed = read_resumed(&src, vec![0], 1, false, &at(12_345))
        .await
        .unwrap();
    assert_eq!(
        resumed.events,
        vec![Event::Batch(0, 6124, 0, 20_000), Event::End(0)]
    );
    assert_eq!(
        resumed.rows.column(0).as_primitive::<Int64Type>().value(0),
        12_346
    );
}

#[tokio::test]
async fn an_ended_partition_is_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    for (name, id) in [("a.json", 1), ("b.json", 2)] {
        std::fs::write(dir.path().join(name), format!("{{\"id\": {id}}}\n")).unwrap();
    }
    let src = source(dir.path(), "json", &[], &[("id", DataType::Int64)]);
    assert_eq!(src.partitions(1).unwrap(), 2);
    let read = read_resumed(&src, vec![0, 1], 1, false, &at(PARTITION_ENDED))
        .await
        .unwrap();
    // Not even its end is reported again.
    assert_eq!(read.events, vec![Event::Batch(1, 1, 0, 1), Event::End(1)]);
    let ended = Positions::from([(0, PARTITION_ENDED), (1, PARTITION_ENDED)]);
    let read = read_resumed(&src, vec![0, 1], 1, false, &ended)
        .await
        .unwrap();
    assert!(read.events.is_empty(), "{:?}", read.events);
}

#[tokio::test]
async fn a_directory_reads_visible_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    for (name, id) in [
        ("b.json", 2),
        ("a.json", 1),
        (".hidden", 9),
        ("_SUCCESS", 8),
        ("c.json", 3),
    ] {
        std::fs::write(
            dir.path().join(name),
            format!("{{\"id\": {id}}}\n{{\"id\": {}}}\n", id * 10),
        )
        .unwrap();
    }
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let src = source(dir.path(), "json", &[], &[("id", DataType::Int64)]);
    assert_eq!(src.partitions(2).unwrap(), 3);
    // A subtask reads its partitions one file after another.
    let (events, batch) = read(&src, vec![0, 2], 2).await.unwrap();
    assert_eq!(
        events,
        vec![
            Event::Batch(0, 2, 0, 2),
            Event::End(0),
            Event::Batch(2, 2, 0, 2),
            Event::End(2)
        ]
    );
    let ids: Vec<_> = batch
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    assert_eq!(ids, vec![1, 10, 3, 30]);
    let all = read_all(&src).await.unwrap();
    assert_eq!(
        all.column(0).as_primitive::<Int64Type>().values().to_vec(),
        vec![1, 10, 2, 20, 3, 30]
    );
}

#[tokio::test]
async fn a_missing_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let src = source(&missing, "json", &[], &[("id", DataType::Int64)]);
    let err = src.partitions(1).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("filesystem source '{}': ", missing.display())),
        "{err}"
    );
}

/// A batch with every supported type, NULLs included.
fn every_type() -> RecordBatch {
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "i8",
            Arc::new(Int8Array::from(vec![Some(-8), None, Some(8)])),
        ),
        (
            "i16",
            Arc::new(Int16Array::from(vec![Some(-16), Some(16), None])),
        ),
        (
            "i32",
            Arc::new(Int32Array::from(vec![None, Some(32), Some(-32)])),
        ),
        (
            "i64",
            Arc::new(Int64Array::from(vec![Some(i64::MAX), Some(-64), None])),
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![Some(1.5), None, Some(-0.25)])),
        ),
        (
            "f64",
            Arc::new(Float64Array::from(vec![Some(2.5e10), Some(-1.0), None])),
        ),
        (
            "b",
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ),
        (
            "s",
            Arc::new(StringArray::from(vec![
                Some("plain"),
                Some("quote \" and, comma"),
                None,
            ])),
        ),
        (
            "d",
            Arc::new(
                Decimal128Array::from(vec![Some(12345), None, Some(-5)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        (
            "day",
            Arc::new(Date32Array::from(vec![Some(20454), None, Some(0)])),
        ),
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(BASE + 123),
                None,
                Some(BASE),
            ])),
        ),
    ];
    let fields: Vec<(&str, DataType)> = columns
        .iter()
        .map(|(n, a)| (*n, a.data_type().clone()))
        .collect();
    RecordBatch::try_new(
        schema(&fields),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

async fn round_trip(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let batch = every_type();
    let path = out.to_string_lossy();
    let t = table(
        &[
            ("connector", "filesystem"),
            ("path", path.as_ref()),
            ("format", format),
        ],
        batch.schema(),
    )
    .unwrap();
    let mut writer = t.sink.unwrap().open("job1", 0, 1).unwrap();
    writer.write(batch.slice(0, 2)).await.unwrap();
    writer.write(batch.slice(2, 1)).await.unwrap();
    assert_eq!(files_in(&out), vec![".part-job1-0-0.inprogress"]);
    writer.finish().await.unwrap();
    assert_eq!(files_in(&out), vec!["part-job1-0-0"]);
    let back = read_all(&t.source.unwrap()).await.unwrap();
    assert_eq!(back, batch, "{format} round trip");
}

#[tokio::test]
async fn json_part_files_read_back_identically() {
    round_trip("json").await;
}

#[tokio::test]
async fn csv_part_files_read_back_identically() {
    round_trip("csv").await;
}

#[tokio::test]
async fn json_sink_writes_sql_or_iso_timestamps_and_explicit_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let batch = RecordBatch::try_new(
        schema(&[("id", DataType::Int64), ("ts", TS)]),
        vec![
            Arc::new(Int64Array::from(vec![Some(1), None])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(BASE + 5),
                Some(BASE),
            ])),
        ],
    )
    .unwrap();
    for (standard, expected) in [
        (
            "SQL",
            "{\"id\":1,\"ts\":\"2026-01-01 00:00:00.005\"}\n{\"id\":null,\"ts\":\"2026-01-01 00:00:00\"}\n",
        ),
        (
            "ISO-8601",
            "{\"id\":1,\"ts\":\"2026-01-01T00:00:00.005\"}\n{\"id\":null,\"ts\":\"2026-01-01T00:00:00\"}\n",
        ),
    ] {
        let out = dir.path().join(standard);
        let path = out.to_string_lossy();
        let options = [
            ("connector", "filesystem"),
            ("path", path.as_ref()),
            ("format", "json"),
            ("json.timestamp-format.standard", standard),
        ];
        let mut writer = table(&options, batch.schema())
            .unwrap()
            .sink
            .unwrap()
            .open("j", 3, 4)
            .unwrap();
        writer.write(batch.clone()).await.unwrap();
        writer.finish().await.unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("part-j-3-0")).unwrap(),
            expected
        );
    }
}

#[tokio::test]
async fn part_files_roll_at_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_string_lossy();
    let batch = every_type();
    let options = [
        ("connector", "filesystem"),
        ("path", path.as_ref()),
        ("format", "csv"),
        ("sink.rolling-policy.file-size", "1 b"),
    ];
    let t = table(&options, batch.schema()).unwrap();
    let mut writer = t.sink.unwrap().open("r", 1, 2).unwrap();
    writer.write(batch.slice(0, 1)).await.unwrap();
    writer.write(batch.slice(1, 2)).await.unwrap();
    // Both parts were closed on reaching the limit, but only a checkpoint
    // or the end of the input makes them visible.
    assert_eq!(
        files_in(dir.path()),
        vec![".part-r-1-0.inprogress", ".part-r-1-1.inprogress"]
    );
    writer.finish().await.unwrap();
    assert_eq!(files_in(dir.path()), vec!["part-r-1-0", "part-r-1-1"]);
    assert_eq!(read_all(&t.source.unwrap()).await.unwrap(), batch);
}

#[tokio::test]
async fn a_subtask_without_rows_leaves_only_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("empty");
    let path = out.to_string_lossy();
    let t = table(
        &[
            ("connector", "filesystem"),
            ("path", path.as_ref()),
            ("format", "json"),
        ],
        schema(&[("id", DataType::Int64)]),
    )
    .unwrap();
    let mut writer = t.sink.unwrap().open("e", 0, 1).unwrap();
    writer.finish().await.unwrap();
    assert!(files_in(&out).is_empty());
    assert_eq!(read_all(&t.source.unwrap()).await.unwrap().num_rows(), 0);
}


/// A file bigger than `'source.split-size'` is several partitions: read
/// by subtasks at any parallelism, its splits give each record once, and a
/// split resumed from any position its reader reported gives the rest; a
/// bad record in a later split is named by the byte its split starts at
/// and its line in the split.
#[tokio::test]
async fn a_big_file_is_read_in_splits_by_several_subtasks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    // Lines of 122 bytes, every fifth blank; line 7 001 bad.
    let mut text = padded_csv(10_000);
    text = text.replacen(&format!("7001,{},", BASE + 7001), "7001,not a time,", 1);
    assert!(text.contains("not a time"));
    std::fs::write(&file, &text).unwrap();
    let columns = [("id", DataType::Int64), ("ts", TS), ("pad", DataType::Utf8)];
    let whole = source(&file, "csv", &[], &columns);
    assert_eq!(whole.partitions(2).unwrap(), 1);
    let expected = read_reporting(&whole, vec![0], 1, true).await.unwrap();
    let ids = |read: &crate::support::Read| -> Vec<i64> {
        read.rows.column(0).as_primitive::<Int64Type>().values().to_vec()
    };
    let src = source(&file, "csv", &[("source.split-size", "100 kb")], &columns);
    let splits = src.partitions(3).unwrap();
    assert_eq!(splits as u64, (text.len() as u64).div_ceil(100 << 10));
    for parallelism in [1, 2, 3] {
        let mut all = Vec::new();
        let mut bad = Vec::new();
        for subtask in 0..parallelism {
            let mine: Vec<usize> = (0..splits).filter(|p| p % parallelism == subtask).collect();
            let read = read_reporting(&src, mine, parallelism, true).await.unwrap();
            all.extend(ids(&read));
            bad.extend(read.bad.into_iter().map(|b| b.location));
        }
        all.sort_unstable();
        assert_eq!(all, ids(&expected), "parallelism {parallelism}");
        assert_eq!(bad.len(), 1, "{bad:?}");
        // Named by where the split's first line starts, counted from there.
        let start = text.find("7001,not").unwrap() / (100 << 10) * (100 << 10);
        let first_line = start + text[start - 1..].find('\n').unwrap();
        let line = 7001 - lines_before(&text, start);
        assert_eq!(bad[0], format!("{} (from byte {first_line}):{line}", file.display()));
        assert!(text[first_line..].lines().nth(line - 1).unwrap().starts_with("7001,not"));
    }
    // Split 1 resumed after any count of its lines; ids are line numbers.
    let first = lines_before(&text, 100 << 10) as i64;
    let split = ids(&read_reporting(&src, vec![1], 1, true).await.unwrap());
    assert_eq!(split[0], first + 1);
    for position in [0, 1, 4, 5, 333, split.len() as u64 * 5 / 4] {
        let resumed = read_resumed(&src, vec![1], 1, true, &Positions::from([(1, position)])).await.unwrap();
        let rest: Vec<i64> = split.iter().copied().filter(|id| *id > first + position as i64).collect();
        assert_eq!(ids(&resumed), rest, "resumed at {position}");
    }
}

/// Lines of `text` that start before byte `start`.
fn lines_before(text: &str, start: usize) -> usize {
    1 + text[..start - 1].matches('\n').count()
}
