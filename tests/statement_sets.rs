//! Statement sets (Flink's `EXECUTE STATEMENT SET BEGIN … END` and the SQL
//! client's `BEGIN STATEMENT SET;` … `END;`): several INSERTs run as one
//! job, each sink writing exactly what its INSERT alone writes — also
//! after the job is killed and restored (`weir_run`'s restored twin).

use crate::common;

use std::path::Path;

use common::*;

fn tables(dir: &Path) -> String {
    format!(
        "CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE counts (ws TIMESTAMP(3), k VARCHAR, n BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{counts}', 'format' = 'json');
CREATE TABLE big (k VARCHAR, v BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{big}', 'format' = 'json');
",
        input = dir.join("in").display(),
        counts = dir.join("counts").display(),
        big = dir.join("big").display(),
    )
}

const COUNTS: &str = "INSERT INTO counts SELECT window_start, k, count(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY window_start, window_end, k";
const BIG: &str = "INSERT INTO big SELECT k, v FROM src WHERE v > 95";

fn input(dir: &Path) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let mut g = Lcg(3);
    let rows: Vec<Row> = (0..6_000)
        .map(|i| Row { k: Some(format!("k{}", g.below(5))), v: Some(g.below(100) as i64), ts: Some(T0 + i * 5) })
        .collect();
    write_json(&dir.join("in/part-0.json"), &rows);
}

fn sink(dir: &Path, table: &str) -> Vec<String> {
    // Whole rows (serde_json orders an object's keys).
    let mut rows: Vec<String> = read_sink(&dir.join(table)).iter().map(|r| r.to_string()).collect();
    rows.sort();
    rows
}

/// Runs `statements` after the tables; the outputs of both sinks, and
/// how many jobs started.
fn run(statements: &str) -> (Vec<String>, Vec<String>, usize) {
    let dir = scratch();
    input(dir.path());
    let run = weir_run(dir.path(), &format!("{}{statements}", tables(dir.path())));
    assert!(run.ok, "{}", run.stderr);
    let jobs = run.stderr.matches(" started").count();
    (sink(dir.path(), "counts"), sink(dir.path(), "big"), jobs)
}

#[test]
fn a_statement_set_writes_what_each_insert_alone_writes() {
    let (counts, _, _) = run(&format!("{COUNTS};\n"));
    let (_, big, _) = run(&format!("{BIG};\n"));
    assert!(counts.len() > 20 && big.len() > 20, "too few rows: {} {}", counts.len(), big.len());
    for set in [
        format!("EXECUTE STATEMENT SET BEGIN\n{COUNTS};\n{BIG};\nEND;\n"),
        format!("BEGIN STATEMENT SET;\n{COUNTS};\n{BIG};\nEND;\n"),
    ] {
        let (got_counts, got_big, jobs) = run(&set);
        assert_eq!(jobs, 1, "{set}: one job");
        assert_rows_eq(&got_counts, &counts, &set);
        assert_rows_eq(&got_big, &big, &set);
    }
}

/// What a statement set refuses, at its place.
#[test]
fn statement_set_errors() {
    let dir = scratch();
    input(dir.path());
    for (statements, why) in [
        ("EXECUTE STATEMENT SET BEGIN\nSELECT 1;\nEND;\n", "a statement set holds INSERT statements up to END"),
        ("EXECUTE STATEMENT SET BEGIN END;\n", "a statement set needs at least one INSERT"),
        ("END;\n", "END without BEGIN STATEMENT SET"),
        ("BEGIN STATEMENT SET;\nSHOW TABLES;\n", "statements other than INSERT inside BEGIN STATEMENT SET"),
    ] {
        let run = weir_run(dir.path(), &format!("{}{statements}", tables(dir.path())));
        assert!(!run.ok, "{statements} succeeded");
        assert!(run.stderr.contains(why) && run.stderr.contains("job.sql:"), "{statements}: {}", run.stderr);
    }
}

/// Two INSERTs of a statement set reading one datagen table without a
/// seed (each reader draws its own random rows) see the same rows: the
/// table is read once and both are fed from it, as in Flink.
#[test]
fn inserts_reading_one_table_see_the_same_rows() {
    let dir = scratch();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let sql = format!(
        "SET 'parallelism.default' = '2';
CREATE TABLE gen (a BIGINT, b BIGINT)
  WITH ('connector' = 'datagen', 'number-of-rows' = '4000',
        'fields.a.min' = '0', 'fields.a.max' = '1000000000', 'fields.b.min' = '0', 'fields.b.max' = '1000000000');
CREATE TABLE all_rows (a BIGINT, b BIGINT) WITH ('connector' = 'filesystem', 'path' = '{all}', 'format' = 'json');
CREATE TABLE even (a BIGINT, s BIGINT) WITH ('connector' = 'filesystem', 'path' = '{even}', 'format' = 'json');
EXECUTE STATEMENT SET BEGIN
INSERT INTO all_rows SELECT a, b FROM gen;
INSERT INTO even SELECT a, a + b FROM gen WHERE a % 2 = 0;
END;
",
        all = out("all_rows"),
        even = out("even"),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let all = read_sink(&dir.path().join("all_rows"));
    assert_eq!(all.len(), 4000, "every generated row once");
    // The second sink, computed here from the first one's rows.
    let mut expected: Vec<String> = all
        .iter()
        .filter_map(|r| {
            let (a, b) = (r["a"].as_i64()?, r["b"].as_i64()?);
            (a % 2 == 0).then(|| serde_json::json!({"a": a, "s": a + b}).to_string())
        })
        .collect();
    expected.sort();
    assert!(expected.len() > 1000, "too few even rows: {}", expected.len());
    assert_rows_eq(&sink(dir.path(), "even"), &expected, "the filter of all_rows");
}

/// A file two INSERTs read is read once: its undecodable records are
/// counted once, and `EXPLAIN` of the set shows one source stage that both
/// INSERTs' stages read.
#[test]
fn a_file_two_inserts_read_is_read_once() {
    let dir = scratch();
    let good = |v: i64| format!("{{\"k\": \"k{}\", \"v\": {v}}}\n", v % 3);
    let mut input: String = (0..300).map(good).collect();
    input.push_str("not json\n{\"k\": \"a\", \"v\": \"one\"}\n");
    input.extend((300..600).map(good));
    std::fs::write(dir.path().join("in.json"), input).unwrap();
    let tables = format!(
        "SET 'parallelism.default' = '2';
CREATE TABLE src (k VARCHAR, v BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'format.ignore-parse-errors' = 'true');
CREATE TABLE copy (k VARCHAR, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{copy}', 'format' = 'json');
CREATE TABLE small (v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{small}', 'format' = 'json');
",
        input = dir.path().join("in.json").display(),
        copy = dir.path().join("copy").display(),
        small = dir.path().join("small").display(),
    );
    let set = "EXECUTE STATEMENT SET BEGIN
INSERT INTO copy SELECT k, v FROM src;
INSERT INTO small SELECT v FROM src WHERE v < 100;
END;
";
    let explain = weir_run(dir.path(), &format!("{tables}EXPLAIN {set}"));
    assert!(explain.ok, "{}", explain.stderr);
    assert_eq!(explain.stdout.matches("Source: src").count(), 1, "{}", explain.stdout);
    assert!(explain.stdout.contains("Shared: read by stages"), "{}", explain.stdout);
    assert_eq!(explain.stdout.matches("Sink: ").count(), 2, "{}", explain.stdout);

    let run = weir_run(dir.path(), &format!("{tables}{set}"));
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.counted("records that could not be decoded"), 2, "one reader");
    assert_eq!(run.counted("rows written"), 700);
    assert_eq!(read_sink(&dir.path().join("copy")).len(), 600);
    assert_eq!(read_sink(&dir.path().join("small")).len(), 100);
}

/// A statement set whose INSERTs share a source, killed with SIGKILL at
/// random moments and run again each time (at parallelism 1, 2, 3: state
/// and sinks move between subtasks), commits in both sinks exactly what an
/// uninterrupted run commits: no row lost, none duplicated.
#[test]
fn a_shared_source_survives_kill_9_without_loss_or_duplicates() {
    let big_input = |dir: &Path| {
        std::fs::create_dir_all(dir.join("in")).unwrap();
        let mut g = Lcg(11);
        let rows: Vec<Row> = (0..200_000)
            .map(|i| Row {
                k: Some(format!("k{}", g.below(7))),
                v: Some(g.below(100) as i64),
                ts: Some(T0 + i * 3),
            })
            .collect();
        write_json(&dir.join("in/part-0.json"), &rows);
    };
    let job = |dir: &Path, parallelism: usize| {
        format!(
            "SET 'execution.checkpointing.interval' = '50 ms';\nSET 'parallelism.default' = '{parallelism}';\n{}\
             EXECUTE STATEMENT SET BEGIN\n{COUNTS};\n{BIG};\nEND;\n",
            tables(dir)
        )
    };
    let clean = scratch();
    big_input(clean.path());
    let started = std::time::Instant::now();
    let run = weir_run(clean.path(), &job(clean.path(), 1));
    let budget = (started.elapsed().as_millis() as u64 / 4).max(200);
    assert!(run.ok, "{}", run.stderr);
    let (counts, big) = (sink(clean.path(), "counts"), sink(clean.path(), "big"));
    assert!(
        counts.len() > 100 && big.len() > 1000,
        "too few rows: {} {}",
        counts.len(),
        big.len()
    );

    let dir = scratch();
    big_input(dir.path());
    let file = dir.path().join("job.sql");
    let mut g = Lcg(5);
    let mut kills = 0;
    while kills < 4 {
        std::fs::write(&file, job(dir.path(), [1, 2, 3][kills % 3])).unwrap();
        if !killed_after(
            dir.path(),
            &file,
            std::time::Duration::from_millis(100 + g.below(budget)),
            &mut || {},
        ) {
            break;
        }
        kills += 1;
    }
    assert!(kills >= 2, "the job finished before it could be killed twice");
    let last = weir_run(dir.path(), &job(dir.path(), 2));
    assert!(last.ok, "{}", last.stderr);
    assert_rows_eq(&sink(dir.path(), "counts"), &counts, "counts after kills");
    assert_rows_eq(&sink(dir.path(), "big"), &big, "big after kills");
    assert!(
        hidden_files(&dir.path().join("big")).is_empty(),
        "uncommitted files left behind"
    );
}
