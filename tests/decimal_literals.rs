//! Flink types a numeric literal with a point as an exact DECIMAL (`0.908`
//! is DECIMAL(3, 3)), not a DOUBLE: `price * 0.908` keeps every digit and a
//! sum of cents adds up exactly. Checked through the binary against integer
//! arithmetic in thousandths over the same rows, in a projection and in a
//! window's SUM (so also through the kill/restore twin of `weir_run`). The
//! values are cast to STRING, where a DOUBLE would show its rounding
//! (`0.30000000000000004`, `907999999999.9999`).

use crate::common;

use std::collections::BTreeMap;

use common::*;

/// `n` thousandths as a decimal with three places: `6356` → `6.356`.
fn thousandths(n: i128) -> String {
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}.{:03}", n.abs() / 1000, n.abs() % 1000)
}

/// The lines of every visible part file under `dir`, sorted.
fn sink_lines(dir: &std::path::Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).expect("sink dir") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("part file");
        lines.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    lines.sort();
    lines
}

#[test]
fn decimal_literals_are_exact_in_projections_and_window_sums() {
    let mut g = Lcg(19);
    let rows: Vec<Row> = (0..2000)
        .map(|i| Row {
            k: Some(format!("k{}", g.below(4))),
            // Prices up to 10^12: a DOUBLE product loses the last digits.
            v: Some(g.below(1_000_000_000_000) as i64),
            ts: Some(T0 + i * 37),
        })
        .collect();
    let dir = scratch();
    write_json(&dir.path().join("in.json"), &rows);
    let sql = format!(
        "CREATE TABLE src (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
           WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
         CREATE TABLE projected (k STRING, v BIGINT, euros STRING, tip STRING)
           WITH ('connector' = 'filesystem', 'path' = '{projected}', 'format' = 'csv');
         CREATE TABLE sums (k STRING, window_start TIMESTAMP(3), total STRING, third STRING)
           WITH ('connector' = 'filesystem', 'path' = '{sums}', 'format' = 'csv');
         EXECUTE STATEMENT SET BEGIN
         INSERT INTO projected SELECT k, v, CAST(v * 0.908 AS STRING), CAST(v * 0.908 + 0.1 + 0.2 AS STRING) FROM src;
         INSERT INTO sums
           SELECT k, window_start, CAST(SUM(v * 0.001) AS STRING), CAST(0.1 + 0.2 AS STRING)
           FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND))
           GROUP BY k, window_start, window_end;
         END;",
        input = dir.path().join("in.json").display(),
        projected = dir.path().join("projected").display(),
        sums = dir.path().join("sums").display(),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);

    let mut projected: Vec<String> = rows
        .iter()
        .map(|r| {
            let (k, v) = (r.k.as_deref().unwrap_or_default(), r.v.unwrap_or_default() as i128);
            format!("{k},{v},{},{}", thousandths(v * 908), thousandths(v * 908 + 300))
        })
        .collect();
    projected.sort();
    assert_rows_eq(&sink_lines(&dir.path().join("projected")), &projected, "projection");

    let mut sums: BTreeMap<(String, i64), i128> = BTreeMap::new();
    for r in &rows {
        let ts = r.ts.unwrap_or_default();
        let start = ts - (ts - T0).rem_euclid(10_000);
        *sums.entry((r.k.clone().unwrap_or_default(), start)).or_default() += r.v.unwrap_or_default() as i128;
    }
    let mut expected: Vec<String> = sums
        .into_iter()
        .map(|((k, start), total)| format!("{k},{},{},0.3", &sql_timestamp(start)[..19], thousandths(total)))
        .collect();
    expected.sort();
    assert!(expected.len() > 20, "too few windows to be a test: {}", expected.len());
    assert_rows_eq(&sink_lines(&dir.path().join("sums")), &expected, "window sums");
}

/// A literal with an exponent is a DOUBLE in Flink (`1.5e3`, `2E-1`), one
/// with only a point a DECIMAL: a view's DESCRIBE shows both types, and
/// the DOUBLE's arithmetic is floating point (`2E-1 * 3` is the DOUBLE
/// product `0.6000000000000001`, where the DECIMAL `0.2 * 3` is `0.6`).
#[test]
fn literals_with_an_exponent_are_doubles() {
    let dir = scratch();
    let sql = "CREATE VIEW v AS SELECT 1.5e3 AS d, 2E-1 * 3 AS p, 0.2 * 3 AS q FROM (VALUES (1)) AS t(a);
DESCRIBE v;
SELECT CAST(d AS STRING) AS d, CAST(p AS STRING) AS p, CAST(q AS STRING) AS q FROM v;
";
    let run = weir_run(dir.path(), sql);
    assert!(run.ok, "{}", run.stderr);
    let row = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.split('|').nth(1).map(str::trim) == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {}", run.stdout))
            .to_string()
    };
    assert!(row("d").contains("DOUBLE") && row("p").contains("DOUBLE"), "{}", run.stdout);
    assert!(row("q").contains("DECIMAL"), "{}", run.stdout);
    let product = (0.2f64 * 3.0).to_string();
    assert_ne!(product, "0.6");
    let values = run.stdout.lines().find(|l| l.contains("1500")).unwrap_or_else(|| panic!("{}", run.stdout));
    let cells: Vec<&str> = values.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells, ["1500.0", product.as_str(), "0.6"], "{values}");
}
