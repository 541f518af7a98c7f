//! `PARTITIONED BY` on the filesystem connector, as Flink lays partitioned
//! files out: rows generated here are written through `weir run` into a
//! partitioned table, and the `k=v` directories found on disk (values
//! unescaped here, independently of Weir) must hold exactly the input rows
//! grouped by their partition values in plain Rust, without the partition
//! columns in the files; NULL and `''` go to `__DEFAULT_PARTITION__`.
//! Reading the table back through Weir gives the input rows again (the
//! default partition as NULL). Partition commits (`_SUCCESS`) follow the
//! watermark with the partition-time trigger; a job killed with SIGKILL and
//! restored loses and duplicates nothing; mistakes are errors with a place.
//! Jobs run once (`common::run_once`): the suite's kill-and-restore twin
//! reads flat sink directories; the kill test here is this file's own.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Lcg, T0, assert_rows_eq, killed_after, parse_timestamp, run_once, scratch, sql_timestamp};

/// One generated input row.
#[derive(Debug, Clone)]
struct Input {
    id: i64,
    v: i64,
    dt: Option<String>,
    hm: Option<String>,
    ts: i64,
}

impl Input {
    fn json(&self) -> String {
        let text = |s: &Option<String>| {
            s.as_ref()
                .map_or("null".to_string(), |s| serde_json::json!(s).to_string())
        };
        format!(
            "{{\"id\": {}, \"v\": {}, \"dt\": {}, \"hm\": {}, \"ts\": \"{}\"}}\n",
            self.id,
            self.v,
            text(&self.dt),
            text(&self.hm),
            sql_timestamp(self.ts)
        )
    }

    /// The data columns as the files must hold them: `id|v|ts`.
    fn data(&self) -> String {
        format!("{}|{}|{}", self.id, self.v, self.ts)
    }
}

/// `n` rows over two days and a few minutes, with NULL and empty values
/// and values a directory name cannot hold as they are (`/`, `=`, `%`).
fn inputs(n: i64, seed: u64) -> Vec<Input> {
    let mut g = Lcg(seed);
    let days = [Some("2026-01-01"), Some("2026-01-02"), None, Some("")];
    let minutes = [
        Some("10:00"),
        Some("10:01"),
        Some("10:02"),
        Some("a/b=c%"),
        None,
        Some(""),
    ];
    (0..n)
        .map(|id| Input {
            id,
            v: g.below(1000) as i64 - 500,
            dt: days[g.below(days.len() as u64) as usize].map(str::to_string),
            hm: minutes[g.below(minutes.len() as u64) as usize].map(str::to_string),
            ts: T0 + id * 7,
        })
        .collect()
}

/// Writes `rows` as JSON lines dealt round robin into `parts` files of `dir`.
fn write_inputs(dir: &Path, rows: &[Input], parts: usize) {
    std::fs::create_dir_all(dir).expect("input dir");
    for p in 0..parts {
        let text: String = rows.iter().skip(p).step_by(parts).map(Input::json).collect();
        std::fs::write(dir.join(format!("part-{p}.json")), text).expect("input file");
    }
}

/// The directory value of a partition value, as this test expects it:
/// NULL and `''` are the default partition.
fn dir_value(v: &Option<String>) -> String {
    match v.as_deref() {
        None | Some("") => "__DEFAULT_PARTITION__".to_string(),
        Some(v) => v.to_string(),
    }
}

/// Expected partitions (values joined by `/`, unescaped) → sorted rows.
fn grouped(rows: &[Input], keys: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        let values: Vec<String> = keys
            .iter()
            .map(|k| match *k {
                "dt" => dir_value(&r.dt),
                _ => dir_value(&r.hm),
            })
            .collect();
        map.entry(values.join("/")).or_default().push(r.data());
    }
    map.values_mut().for_each(|v| v.sort());
    map
}

/// `%XX` back to the character (Flink's escaping of directory names).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(code) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(char::from(code));
            i += 3;
            continue;
        }
        let c = s[i..].chars().next().expect("a char");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// What a partitioned table's directory holds.
#[derive(Default)]
struct Found {
    /// Partition values (unescaped, joined by `/`) → sorted `id|v|ts` rows.
    rows: BTreeMap<String, Vec<String>>,
    /// Partitions with a `_SUCCESS` file.
    committed: Vec<String>,
    /// Hidden (in-progress) files anywhere under the table.
    hidden: Vec<PathBuf>,
}

/// Walks `table` down `keys.len()` levels of `key=value` directories
/// (checking each level's key) and reads the visible part files of `format`.
fn read_table(table: &Path, keys: &[&str], format: &str) -> Found {
    let mut found = Found::default();
    walk(table, keys, format, &mut Vec::new(), &mut found);
    found.rows.values_mut().for_each(|v| v.sort());
    found.committed.sort();
    found
}

fn walk(dir: &Path, keys: &[&str], format: &str, values: &mut Vec<String>, found: &mut Found) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("an entry").path();
        let name = path.file_name().expect("a name").to_string_lossy().into_owned();
        if name.starts_with('.') {
            found.hidden.push(path);
            continue;
        }
        if let Some(key) = keys.get(values.len()) {
            let value = name
                .strip_prefix(&format!("{key}="))
                .unwrap_or_else(|| panic!("{}: not {key}=…", path.display()));
            assert!(path.is_dir(), "{}: a partition is a directory", path.display());
            values.push(unescape(value));
            walk(&path, keys, format, values, found);
            values.pop();
            continue;
        }
        let partition = values.join("/");
        if name == "_SUCCESS" {
            found.committed.push(partition);
            continue;
        }
        assert!(name.starts_with("part-"), "{}: not a part file", path.display());
        let text = std::fs::read_to_string(&path).expect("a part file");
        let rows = found.rows.entry(partition).or_default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            rows.push(data_of(line, format, keys));
        }
    }
}

/// `id|v|ts` of one line of a part file, which must hold exactly the data
/// columns: the table's (`id, dt, v, hm, ts`) less the partition `keys`.
fn data_of(line: &str, format: &str, keys: &[&str]) -> String {
    let data: Vec<&str> = ["id", "dt", "v", "hm", "ts"]
        .into_iter()
        .filter(|c| !keys.contains(c))
        .collect();
    if format == "json" {
        let row: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let fields = row.as_object().expect("an object");
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let mut want = data.clone();
        names.sort_unstable();
        want.sort_unstable();
        assert_eq!(names, want, "{line}: the files hold the data columns only");
        let ts = parse_timestamp(row["ts"].as_str().expect("ts text"));
        return format!("{}|{}|{ts}", row["id"], row["v"]);
    }
    let fields: Vec<&str> = line.split(',').collect();
    assert_eq!(
        fields.len(),
        data.len(),
        "{line}: the files hold the data columns only ({data:?})"
    );
    format!(
        "{}|{}|{}",
        fields[0],
        fields[1],
        parse_timestamp(fields[fields.len() - 1].trim_matches('"'))
    )
}

/// The partitioned table's DDL: partition columns between data columns,
/// so that the files' column order (table order less the partition
/// columns) matters.
fn table_ddl(name: &str, path: &Path, keys: &[&str], format: &str, extra: &str) -> String {
    format!(
        "CREATE TABLE {name} (id BIGINT, dt STRING, v BIGINT, hm STRING, ts TIMESTAMP(3)) PARTITIONED BY ({})
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = '{format}'{extra});\n",
        keys.join(", "),
        path.display()
    )
}

fn source_ddl(path: &Path, extra: &str) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, v BIGINT, dt STRING, hm STRING, ts TIMESTAMP(3){extra})
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json'{});\n",
        path.display(),
        if extra.is_empty() {
            ""
        } else {
            ", 'scan.watermark.emit.strategy' = 'on-event'"
        }
    )
}

/// A row read back, as `id|v|dt|hm|ts` with NULL as `-`.
fn read_back_row(row: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().map_or("-".to_string(), str::to_string);
    format!(
        "{}|{}|{}|{}|{}",
        row["id"],
        row["v"],
        text(&row["dt"]),
        text(&row["hm"]),
        parse_timestamp(row["ts"].as_str().expect("ts"))
    )
}

/// The rows of the JSON part files of the flat directory `dir`, sorted.
fn flat_rows(dir: &Path) -> Vec<String> {
    let mut rows: Vec<String> = common::read_sink(dir).iter().map(read_back_row).collect();
    rows.sort();
    rows
}

/// An input row as read back: NULL and `''` partition values as NULL.
fn expected_back(r: &Input) -> String {
    let value = |v: &Option<String>| match v.as_deref() {
        None | Some("") => "-".to_string(),
        Some(v) => v.to_string(),
    };
    format!("{}|{}|{}|{}|{}", r.id, r.v, value(&r.dt), value(&r.hm), r.ts)
}

/// One and two partition columns, csv and json, at parallelism 2 (two
/// input files, so two subtasks write into the same partitions): the rows
/// of each directory are the input's rows of those values, the files hold
/// no partition column, and reading the table back (whole, and with a
/// WHERE on a partition column, and on the default partition) gives the
/// input rows.
#[test]
fn partitions_hold_their_rows_and_read_back() {
    let rows = inputs(4_000, 7);
    for format in ["csv", "json"] {
        for keys in [&["dt"][..], &["dt", "hm"][..]] {
            let what = format!("{format}, PARTITIONED BY ({})", keys.join(", "));
            let dir = scratch();
            write_inputs(&dir.path().join("in"), &rows, 2);
            let table = dir.path().join("parted");
            let sql = format!(
                "SET 'parallelism.default' = '2';\n{}{}INSERT INTO parted SELECT id, dt, v, hm, ts FROM src;\n",
                source_ddl(&dir.path().join("in"), ""),
                table_ddl("parted", &table, keys, format, "")
            );
            let written = run_once(dir.path(), &sql);
            assert!(written.ok, "{what}: {}", written.stderr);
            assert!(
                written.stderr.contains(&format!("{} rows written", rows.len())),
                "{what}: {}",
                written.stderr
            );
            let found = read_table(&table, keys, format);
            let expected = grouped(&rows, keys);
            assert_eq!(
                found.rows.keys().collect::<Vec<_>>(),
                expected.keys().collect::<Vec<_>>(),
                "{what}: partitions"
            );
            for (partition, want) in &expected {
                assert_rows_eq(&found.rows[partition], want, &format!("{what}: {partition}"));
            }
            assert!(
                found.hidden.is_empty(),
                "{what}: in-progress files left: {:?}",
                found.hidden
            );
            assert!(found.committed.is_empty(), "{what}: no commit policy, no success files");

            // Read back through Weir into flat JSON tables.
            let back = |name: &str| {
                format!(
                    "CREATE TABLE {name} (id BIGINT, v BIGINT, dt STRING, hm STRING, ts TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
                    dir.path().join(name).display()
                )
            };
            let sql = format!(
                "SET 'parallelism.default' = '2';\n{}{}{}{}\
                 INSERT INTO whole SELECT id, v, dt, hm, ts FROM parted;\n\
                 INSERT INTO day2 SELECT id, v, dt, hm, ts FROM parted WHERE dt = '2026-01-02';\n\
                 INSERT INTO nodt SELECT id, v, dt, hm, ts FROM parted WHERE dt IS NULL;\n",
                table_ddl("parted", &table, keys, format, ""),
                back("whole"),
                back("day2"),
                back("nodt")
            );
            let read = run_once(dir.path(), &sql);
            assert!(read.ok, "{what}: reading back: {}", read.stderr);
            let mut want: Vec<String> = rows.iter().map(expected_back).collect();
            want.sort();
            if keys.len() == 1 {
                // hm is a data column here: read back as written ('' stays
                // '' in JSON; CSV writes '' and NULL alike, read as NULL).
                want = rows
                    .iter()
                    .map(|r| {
                        let dt = r.dt.as_deref().filter(|d| !d.is_empty()).unwrap_or("-");
                        let hm = match r.hm.as_deref() {
                            Some("") if format == "csv" => "-",
                            Some(hm) => hm,
                            None => "-",
                        };
                        format!("{}|{}|{dt}|{hm}|{}", r.id, r.v, r.ts)
                    })
                    .collect();
                want.sort();
            }
            let got = flat_rows(&dir.path().join("whole"));
            assert_rows_eq(&got, &want, &format!("{what}: read back whole"));
            let day2: Vec<String> = want
                .iter()
                .filter(|r| r.split('|').nth(2) == Some("2026-01-02"))
                .cloned()
                .collect();
            assert!(!day2.is_empty());
            assert_rows_eq(
                &flat_rows(&dir.path().join("day2")),
                &day2,
                &format!("{what}: WHERE dt = '2026-01-02'"),
            );
            let nodt: Vec<String> = want
                .iter()
                .filter(|r| r.split('|').nth(2) == Some("-"))
                .cloned()
                .collect();
            assert!(!nodt.is_empty());
            assert_rows_eq(
                &flat_rows(&dir.path().join("nodt")),
                &nodt,
                &format!("{what}: WHERE dt IS NULL"),
            );
        }
    }
}

/// Minutes 10:00 … 10:09 of one day, `per` rows each, and a few rows with
/// no day (a partition whose time cannot be extracted).
fn minute_rows(per: i64) -> Vec<Input> {
    let mut rows = Vec::new();
    for m in 0..10 {
        for i in 0..per {
            let id = m * per + i;
            rows.push(Input {
                id,
                v: i,
                dt: Some("2026-01-01".into()),
                hm: Some(format!("10:{m:02}")),
                ts: T0 + (10 * 60 + m) * 60_000 + i * (60_000 / per),
            });
        }
    }
    let last = rows.last().map_or(T0, |r| r.ts);
    rows.push(Input {
        id: 10 * per,
        v: 0,
        dt: None,
        hm: Some("10:00".into()),
        ts: last,
    });
    rows
}

/// `'sink.partition-commit.trigger' = 'partition-time'` with a one-minute
/// delay and Nexmark q10's extractor pattern: while the job runs (its input
/// a named pipe held open after the rows), a minute's partition has its
/// `_SUCCESS` only once the watermark (the latest row time, 10:09:50) is
/// past the minute's start plus the delay, so 10:00 … 10:08 and not 10:09,
/// nor the default partition, whose time cannot be extracted. When the
/// input ends every partition is committed.
#[test]
fn partition_time_commits_follow_the_watermark() {
    let rows = minute_rows(6);
    let dir = scratch();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).expect("in/");
    let fifo = input.join("part-0.json");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let table = dir.path().join("parted");
    let commit = ", 'sink.partition-commit.trigger' = 'partition-time', 'sink.partition-commit.delay' = '1 min', \
        'sink.partition-commit.policy.kind' = 'success-file', 'partition.time-extractor.timestamp-pattern' = '$dt $hm:00'";
    let sql = format!(
        "SET 'execution.checkpointing.interval' = '50 ms';\n{}{}INSERT INTO parted SELECT id, dt, v, hm, ts FROM src;\n",
        source_ddl(&input, ", WATERMARK FOR ts AS ts"),
        table_ddl("parted", &table, &["dt", "hm"], "csv", commit)
    );
    let file = dir.path().join("job.sql");
    std::fs::write(&file, sql).expect("job.sql");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&file)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weir");
    let text: String = rows.iter().map(Input::json).collect();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut pipe = std::fs::OpenOptions::new()
                .write(true)
                .open(&fifo)
                .expect("open the pipe");
            pipe.write_all(text.as_bytes()).expect("write the rows");
            pipe
        })
    };
    let early: Vec<String> = (0..9).map(|m| format!("2026-01-01/10:{m:02}")).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = read_table_if_there(&table);
    while found.committed != early && Instant::now() < deadline {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the job ended while its input was open"
        );
        std::thread::sleep(Duration::from_millis(50));
        found = read_table_if_there(&table);
    }
    // Several more checkpoints: nothing else is committed while the
    // watermark stays.
    std::thread::sleep(Duration::from_millis(500));
    let found = read_table_if_there(&table);
    assert_eq!(found.committed, early, "committed while the watermark is at 10:09:50");
    let expected = grouped(&rows, &["dt", "hm"]);
    for partition in &early {
        assert_rows_eq(&found.rows[partition], &expected[partition], partition);
    }
    drop(writer.join().expect("the writer"));
    let out = child.wait_with_output().expect("weir");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let found = read_table(&table, &["dt", "hm"], "csv");
    let all: Vec<String> = expected.keys().cloned().collect();
    assert_eq!(
        found.committed, all,
        "at the end of the input every partition is committed"
    );
    assert_eq!(found.rows, expected);
}

fn read_table_if_there(table: &Path) -> Found {
    match table.exists() {
        true => read_table(table, &["dt", "hm"], "csv"),
        false => Found::default(),
    }
}

/// A partitioned job checkpointing every 100 ms at parallelism 2, killed
/// with SIGKILL several times and run again each time, finally commits
/// exactly the input rows in their partitions (none lost, none twice),
/// leaves no in-progress file, and every partition has its success file
/// (process-time trigger, no delay).
#[test]
fn killed_and_restored_loses_and_duplicates_nothing() {
    let rows = inputs(300_000, 11);
    let commit = ", 'sink.partition-commit.policy.kind' = 'success-file'";
    let job = |dir: &Path| {
        format!(
            "SET 'execution.checkpointing.interval' = '100 ms';\nSET 'parallelism.default' = '2';\n{}{}\
             INSERT INTO parted SELECT id, dt, v, hm, ts FROM src;\n",
            source_ddl(&dir.join("in"), ""),
            table_ddl("parted", &dir.join("parted"), &["dt", "hm"], "json", commit)
        )
    };
    // An uninterrupted run, timed, to place the kills.
    let clean = scratch();
    write_inputs(&clean.path().join("in"), &rows, 2);
    let started = Instant::now();
    let ran = run_once(clean.path(), &job(clean.path()));
    let took = started.elapsed();
    assert!(ran.ok, "{}", ran.stderr);
    let expected = grouped(&rows, &["dt", "hm"]);
    assert_eq!(
        read_table(&clean.path().join("parted"), &["dt", "hm"], "json").rows,
        expected,
        "uninterrupted"
    );

    let dir = scratch();
    write_inputs(&dir.path().join("in"), &rows, 2);
    let file = dir.path().join("job.sql");
    std::fs::write(&file, job(dir.path())).expect("job.sql");
    let budget = (took.as_millis() as u64 / 4).max(300);
    let mut g = Lcg(5);
    let mut kills = 0;
    while kills < 4
        && killed_after(
            dir.path(),
            &file,
            Duration::from_millis(200 + g.below(budget)),
            &mut || {},
        )
    {
        kills += 1;
    }
    assert!(kills > 0, "the job finished before the first kill");
    let last = run_once(dir.path(), &job(dir.path()));
    assert!(last.ok, "{}", last.stderr);
    let found = read_table(&dir.path().join("parted"), &["dt", "hm"], "json");
    assert_eq!(
        found.rows.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "partitions after {kills} kills"
    );
    for (partition, want) in &expected {
        assert_rows_eq(
            &found.rows[partition],
            want,
            &format!("after {kills} kills: {partition}"),
        );
    }
    assert!(found.hidden.is_empty(), "in-progress files left: {:?}", found.hidden);
    let all: Vec<String> = expected.keys().cloned().collect();
    assert_eq!(found.committed, all, "every partition committed");
}

/// Mistakes in a partitioned table are errors naming the file, line and
/// column where the statement can point, and never a panic.
#[test]
fn mistakes_are_errors_with_a_place() {
    let fs = "'connector' = 'filesystem', 'path' = 'out', 'format' = 'csv'";
    let cases = [
        (
            format!("CREATE TABLE t (a INT, b STRING)\n  PARTITIONED BY (a, c) WITH ({fs});\n"),
            "job.sql:2:22: error:",
            "'c': no such column in table 't' (its columns: a, b)",
        ),
        (
            format!("CREATE TABLE t (a INT, b STRING)\n  PARTITIONED BY (b, b) WITH ({fs});\n"),
            "job.sql:2:22:",
            "twice",
        ),
        (
            format!("CREATE TABLE t (a INT, b STRING) PARTITIONED BY (a, b) WITH ({fs});\n"),
            "job.sql:1:34:",
            "every column",
        ),
        (
            format!("CREATE TABLE t (a INT, ts TIMESTAMP(3)) PARTITIONED BY (ts) WITH ({fs});\n"),
            "job.sql: error: table 't':",
            "partition column 'ts' has type TIMESTAMP",
        ),
        (
            "CREATE TABLE t (a INT, b STRING) PARTITIONED BY (b)\n  WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'json');\n".to_string(),
            "job.sql:1:34:",
            "connector 'kafka' has no partitions",
        ),
        (
            "CREATE TABLE t (a INT, b STRING) PARTITIONED BY (b) WITH ('connector' = 'datagen');\n".to_string(),
            "job.sql:1:34:",
            "connector 'datagen' has no partitions",
        ),
        (
            format!("CREATE TABLE t (a INT, b STRING) PARTITIONED BY (b) WITH ({fs}, 'sink.partition-commit.trigger' = 'event-time');\n"),
            "job.sql: error: table 't':",
            "'event-time'",
        ),
        (
            format!("CREATE TABLE t (a INT, b STRING) PARTITIONED BY (b) WITH ({fs}, 'sink.partition-commit.policy.kind' = 'metastore');\n"),
            "job.sql: error: table 't':",
            "metastore",
        ),
        (
            format!("CREATE TABLE t (a INT, b STRING) PARTITIONED BY (b) WITH ({fs}, 'sink.partition-commit.delay' = 'soon');\n"),
            "job.sql: error: table 't':",
            "'soon'",
        ),
        (
            format!("CREATE TABLE t (a INT, b STRING) PARTITIONED BY (b) WITH ({fs}, 'sink.partition-commit.policy.kind' = 'succes-file');\n"),
            "job.sql: error: table 't':",
            "'succes-file'",
        ),
        (
            format!("CREATE TABLE t (a INT, b STRING) PARTITIONED BY (b) WITH ({fs}, 'partition.time-extractor.kind' = 'custom');\n"),
            "job.sql: error: table 't':",
            "partition.time-extractor.kind",
        ),
        (
            format!("CREATE TABLE t (a INT, b STRING) PARTITIONED (b) WITH ({fs});\n"),
            "job.sql:1:46:",
            "BY",
        ),
    ];
    for (sql, place, message) in cases {
        let dir = scratch();
        let ran = run_once(dir.path(), &sql);
        assert!(!ran.ok, "{sql}: accepted");
        assert!(!ran.stderr.contains("panicked"), "{sql}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(place),
            "{sql}: expected {place:?} in {}",
            ran.stderr
        );
        assert!(
            ran.stderr.contains(message),
            "{sql}: expected {message:?} in {}",
            ran.stderr
        );
    }
}
