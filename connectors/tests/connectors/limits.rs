//! Inputs that would exhaust memory or hang a filesystem source: lines
//! longer than `'source.max-record-size'`, inputs that never end
//! (`/dev/zero`), named pipes nobody writes to, deep JSON, wide CSV, large
//! directories.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use weir_engine::source::{Positions, SourceConnector, SourceEvent};

use crate::support::{Event, assignment, read_all, read_reporting, read_resumed, schema, table};

fn source(path: &Path, format: &str, extra: &[(&str, &str)]) -> Arc<dyn SourceConnector> {
    let path = path.to_string_lossy();
    let mut pairs = vec![("connector", "filesystem"), ("path", path.as_ref()), ("format", format)];
    pairs.extend_from_slice(extra);
    table(&pairs, schema(&[("id", DataType::Int64), ("pad", DataType::Utf8)])).unwrap().source.unwrap()
}

/// A JSON line of exactly `len` bytes (without its line end) with `id`.
fn json_line(id: i64, len: usize) -> String {
    line("json", id, len)
}

/// A record of `format` of exactly `len` bytes (without its line end).
fn line(format: &str, id: i64, len: usize) -> String {
    let record = |pad: &str| match format {
        "json" => format!(r#"{{"id": {id}, "pad": "{pad}"}}"#),
        _ => format!("{id},{pad}"),
    };
    let line = record(&"x".repeat(len - record("").len()));
    assert_eq!(line.len(), len);
    line
}

const LIMIT: usize = 1024;

/// Lines of these lengths: at the limit, over it, far over it, and the
/// last one over it without a line end.
const LENGTHS: [usize; 6] = [100, LIMIT, LIMIT + 1, 50, 100 * LIMIT, LIMIT + 1];

/// Writes a file of [`LENGTHS`] lines of `format`, ids 1.., the last
/// unterminated.
fn write_lines(file: &Path, format: &str) {
    let lines: Vec<String> = (1..).zip(LENGTHS).map(|(id, len)| line(format, id, len)).collect();
    std::fs::write(file, lines.join("\n")).unwrap();
}

/// The ids of the lines within the limit, and the 1-based numbers of the
/// others: what a tolerant read must give.
fn expected(from_line: usize) -> (Vec<i64>, Vec<String>) {
    let lines = (1..).zip(LENGTHS).skip(from_line);
    let ids = lines.clone().filter(|(_, len)| *len <= LIMIT).map(|(id, _)| id).collect();
    let over = lines.filter(|(_, len)| *len > LIMIT).map(|(id, _)| id.to_string()).collect();
    (ids, over)
}

#[tokio::test]
async fn lines_over_the_maximum_record_size_are_bad_records_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    write_lines(&file, "json");
    let src = source(&file, "json", &[("source.max-record-size", "1 kb"), ("json.ignore-parse-errors", "true")]);
    let read = read_reporting(&src, vec![0], 1, false).await.unwrap();
    let ids: Vec<i64> = read.rows.column(0).as_primitive::<Int64Type>().values().to_vec();
    let (want_ids, want_lines) = expected(0);
    assert_eq!(ids, want_ids);
    let lines: Vec<String> = read.bad.iter().map(|b| b.location.rsplit(':').next().unwrap().to_string()).collect();
    assert_eq!(lines, want_lines);
    for bad in &read.bad {
        assert!(bad.location.starts_with(&file.display().to_string()), "{bad:?}");
        assert!(bad.error.contains("'source.max-record-size'"), "{bad:?}");
        assert!(bad.text.starts_with(r#"{"id": "#) && bad.text.ends_with("x..."), "{bad:?}");
        assert!(bad.text.len() <= 203, "an excerpt, not the line: {} bytes", bad.text.len());
    }
    // Every line is consumed, the oversized ones too.
    assert_eq!(read.events.iter().rev().nth(1), Some(&Event::Batch(0, 0, 1, LENGTHS.len() as u64)));

    // A read resumed after the first oversized line goes on right after it.
    let resumed = read_resumed(&src, vec![0], 1, false, &Positions::from([(0, 3)])).await.unwrap();
    let ids: Vec<i64> = resumed.rows.column(0).as_primitive::<Int64Type>().values().to_vec();
    let (want_ids, want_lines) = expected(3);
    assert_eq!(ids, want_ids);
    assert_eq!(resumed.bad.len(), want_lines.len());
}

#[tokio::test]
async fn without_ignore_parse_errors_an_oversized_line_fails_the_read_naming_line_and_option() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["json", "csv"] {
        let file = dir.path().join(format!("in.{format}"));
        write_lines(&file, format);
        let src = source(&file, format, &[("source.max-record-size", "1kb")]);
        let message = read_all(&src).await.expect_err("an oversized line must fail the read").to_string();
        let first_over = expected(0).1[0].clone();
        let at = format!("{}:{first_over}: cannot decode record: the record is longer than {LIMIT} bytes", file.display());
        assert!(message.starts_with(&at), "{message}");
        assert!(message.contains("'source.max-record-size'"), "{message}");
    }
}

#[test]
fn the_maximum_record_size_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_string_lossy().into_owned();
    for (value, reason) in [("0", "expected a size"), ("2 gb", "at most 1024 MiB"), ("many", "expected a size")] {
        let err = table(
            &[("connector", "filesystem"), ("path", &path), ("format", "json"), ("source.max-record-size", value)],
            schema(&[("id", DataType::Int64)]),
        )
        .expect_err("refused")
        .to_string();
        assert!(err.contains("'source.max-record-size'") && err.contains(reason), "{value}: {err}");
    }
}

/// `/dev/zero` is one line that never ends: reported once as a bad record
/// as soon as it passes the limit; after that the reader skips the rest of
/// it, and stays cancellable.
#[tokio::test]
async fn dev_zero_is_one_oversized_record_read_in_bounded_memory() {
    let zero = Path::new("/dev/zero");
    let strict = source(zero, "json", &[]);
    let message = read_all(&strict).await.expect_err("a line that never ends").to_string();
    assert!(message.starts_with("/dev/zero:1: cannot decode record: the record is longer than 16777216 bytes"), "{message}");
    // The excerpt shows the NUL bytes, escaped.
    assert!(message.ends_with(&format!(": {}...", "\\0".repeat(200))), "{message}");

    let src = source(zero, "json", &[("json.ignore-parse-errors", "true")]);
    let mut reader = src.open(assignment(vec![0], 1), false, &Positions::new()).unwrap();
    let Some(SourceEvent::Batch { batch, bad_records, position, .. }) = reader.next().await.unwrap() else {
        panic!("expected a batch with the bad record");
    };
    assert_eq!((batch.num_rows(), bad_records.len(), position), (0, 1, 1));
    assert_eq!(bad_records[0].location, "/dev/zero:1");
    // The rest of the line never ends: the next event never comes (that it
    // costs no memory meanwhile, tests/limits.rs checks on the process).
    let next = tokio::time::timeout(Duration::from_millis(500), reader.next()).await;
    assert!(next.is_err(), "the line has no end, so no event can follow");
}

/// A named pipe waits for its writer without a blocking thread, reads what
/// it writes, and ends when it closes.
#[tokio::test]
async fn a_named_pipe_is_read_until_its_writer_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("in.pipe");
    assert!(Command::new("mkfifo").arg(&pipe).status().unwrap().success());
    let src = source(&pipe, "json", &[]);
    let mut reader = src.open(assignment(vec![0], 1), false, &Positions::new()).unwrap();
    // Nobody writes yet: no event, the read just waits.
    let waited = tokio::time::timeout(Duration::from_millis(300), reader.next()).await;
    assert!(waited.is_err(), "a pipe without a writer has no rows and has not ended");
    drop(reader);
    let writer = {
        let pipe = pipe.clone();
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(&pipe).unwrap();
            for id in 1..=3 {
                writeln!(w, "{}", json_line(id, 40)).unwrap();
            }
        })
    };
    let read = crate::support::read(&src, vec![0], 1).await.unwrap();
    writer.join().unwrap();
    let ids: Vec<i64> = read.1.column(0).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(read.0.last(), Some(&Event::End(0)));
}

/// A chunk of lines stops at a byte budget as well as at a line count, so
/// that a batch of long lines is not gigabytes: 40 lines of 1 MiB come in
/// batches of at most 17 (16 MiB and the line that passes it).
#[tokio::test]
async fn long_lines_come_in_batches_of_bounded_bytes() {
    const LINE: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    let lines: Vec<String> = (1..=40).map(|id| json_line(id, LINE)).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let src = source(&file, "json", &[("source.max-record-size", "2 mb")]);
    let read = read_reporting(&src, vec![0], 1, false).await.unwrap();
    let ids: Vec<i64> = read.rows.column(0).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(ids, (1..=40).collect::<Vec<i64>>());
    for event in &read.events {
        if let Event::Batch(_, rows, _, _) = event {
            assert!(*rows <= (16 << 20) / LINE + 1, "{:?}", read.events);
        }
    }
}

/// JSON nested 100 000 deep, in a column the table declares or not, is a
/// bad record naming its line (arrow's decoder would overflow the stack
/// describing it), as Jackson refuses more than 1000 levels; 1000 levels
/// are decoded; the next line is read.
#[tokio::test]
async fn deeply_nested_json_is_a_bad_record_not_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let lines = [
        format!(r#"{{"id": 1, "other": {}}}"#, nested(100_000)),
        format!(r#"{{"id": 2, "pad": {}}}"#, nested(100_000)),
        format!(r#"{{"id": 3, "pad": "{}", "x": {}"#, "[".repeat(5000), "[".repeat(100_000)),
        format!(r#"{{"id": 4, "other": {}}}"#, nested(999)),
        r#"{"id": 5, "pad": "x"}"#.to_string(),
        format!(r#"{{"id": 6, "pad": {}}}"#, nested(999)),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let src = source(&file, "json", &[("json.ignore-parse-errors", "true")]);
    let read = read_reporting(&src, vec![0], 1, false).await.unwrap();
    let ids: Vec<i64> = read.rows.column(0).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(ids, vec![4, 5]);
    let bad: Vec<(&str, &str)> = read.bad.iter().map(|b| (b.location.rsplit(':').next().unwrap(), b.error.as_str())).collect();
    let deep = "nested deeper than 1000 levels";
    assert_eq!(bad[..3], [("1", deep), ("2", deep), ("3", deep)]);
    // A nested value where a VARCHAR is due is a bad record of its own.
    assert_eq!(bad.len(), 4, "{bad:?}");
    assert_eq!(bad[3].0, "6");
}

/// A CSV line of a million fields is one bad record, refused for its field
/// count; the next line is read.
#[tokio::test]
async fn a_csv_line_of_a_million_fields_is_one_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.csv");
    let wide = format!("1,{}", vec!["7"; 1_000_000].join(","));
    std::fs::write(&file, format!("{wide}\n2,x\n")).unwrap();
    let src = source(&file, "csv", &[("csv.ignore-parse-errors", "true")]);
    let read = read_reporting(&src, vec![0], 1, false).await.unwrap();
    let ids: Vec<i64> = read.rows.column(0).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(ids, vec![2]);
    assert_eq!(read.bad.len(), 1);
    assert!(read.bad[0].location.ends_with(":1") && read.bad[0].error.contains("incorrect number of fields"), "{:?}", read.bad[0]);
}
