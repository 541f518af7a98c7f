//! Flink's built-in scalar functions in a streaming job through the real
//! `weir` binary (docs/functions.md): a Flink query using DATE_FORMAT,
//! DAYOFWEEK, MOD, SPLIT_INDEX, REGEXP_EXTRACT, IF and HASH_CODE runs
//! unchanged, and each value equals one computed here without Weir (the
//! calendar by hand, Java's `%` and `String.hashCode` by their
//! definitions).

use crate::common;

use std::collections::BTreeMap;

use common::*;

/// English day names from Sunday, as Java's `EEE` prints them.
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// One input row: a key `name-<n>`, a value, an event time (ms).
struct Input {
    k: String,
    v: Option<i64>,
    ts: Option<i64>,
}

fn inputs() -> Vec<Input> {
    let mut g = Lcg(19);
    let mut rows: Vec<Input> = (0..60)
        .map(|i| Input {
            k: format!("{}-{i}", ["alpha", "beta", "gamma"][g.below(3) as usize]),
            v: Some(g.below(200) as i64 - 100),
            // Across some ten days, at any millisecond.
            ts: Some(T0 + g.below(10 * 86_400_000) as i64),
        })
        .collect();
    rows.push(Input {
        k: "nulls-60".into(),
        v: None,
        ts: None,
    });
    rows
}

/// Writes `rows` as the JSON lines of `dir/in`.
fn write_inputs(dir: &std::path::Path, rows: &[Input]) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let mut lines = String::new();
    for r in rows {
        let ts = r.ts.map_or("null".to_string(), |t| format!("\"{}\"", sql_timestamp(t)));
        let v = r.v.map_or("null".to_string(), |v| v.to_string());
        lines.push_str(&format!("{{\"k\": \"{}\", \"v\": {v}, \"ts\": {ts}}}\n", r.k));
    }
    std::fs::write(dir.join("in/part-0.json"), lines).unwrap();
}

/// The sink row expected for `r`, as the JSON the sink writes.
fn expected(r: &Input) -> serde_json::Value {
    let text = r.ts.map(sql_timestamp); // yyyy-MM-dd HH:mm:ss.SSS
    // 1970-01-01 was a Thursday (4 days after a Sunday).
    let dow = r.ts.map(|t| (t.div_euclid(86_400_000) + 4).rem_euclid(7));
    let number = r.k.split('-').nth(1).map(str::to_string);
    serde_json::json!({
        "k": r.k,
        "d": text.as_ref().map(|t| t[..10].to_string()),
        "hm": text.as_ref().zip(dow).map(|(t, d)| format!("{} {}", DAYS[d as usize], &t[11..])),
        "compact": text.as_ref().map(|t| t[..10].replace('-', "")),
        "dow": dow.map(|d| d + 1),
        // Java's %: the sign of the dividend.
        "m": r.v.map(|v| v % 7),
        "part": number,
        "grp": number,
        "sign": r.v.map_or("pos", |v| if v < 0 { "neg" } else { "pos" }),
        "h": r.k.encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u))),
    })
}

#[test]
fn flink_functions_run_unchanged_in_a_streaming_job() {
    let dir = scratch();
    let rows = inputs();
    write_inputs(dir.path(), &rows);
    let sql = format!(
        "CREATE TABLE t (k VARCHAR, v BIGINT, ts TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, d VARCHAR, hm VARCHAR, compact VARCHAR, dow BIGINT, m BIGINT,
                  part VARCHAR, grp VARCHAR, sign VARCHAR, h INT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out
SELECT k,
       DATE_FORMAT(ts, 'yyyy-MM-dd'),
       DATE_FORMAT(ts, 'EEE HH:mm:ss.SSS'),
       DATE_FORMAT(CAST(ts AS VARCHAR), 'yyyyMMdd'),
       DAYOFWEEK(ts),
       MOD(v, 7),
       SPLIT_INDEX(k, '-', 1),
       REGEXP_EXTRACT(k, '([a-z]+)-(\\d+)', 2),
       IF(v < 0, 'neg', 'pos'),
       HASH_CODE(k)
FROM t;
",
        dir.path().join("in").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got: BTreeMap<String, serde_json::Value> = read_sink(&dir.path().join("out"))
        .into_iter()
        .map(|row| (row["k"].as_str().expect("k").to_string(), row))
        .collect();
    let want: BTreeMap<String, serde_json::Value> = rows.iter().map(|r| (r.k.clone(), expected(r))).collect();
    assert_eq!(got.len(), rows.len(), "{got:#?}");
    for (k, want) in &want {
        assert_eq!(got.get(k), Some(want), "row {k}");
    }
}

/// `CURRENT_TIMESTAMP` and `CURRENT_DATE` in a streaming job are the wall
/// clock as rows go by (Flink evaluates them per record), not the time the
/// job was planned: rows that come a second after the job started carry a
/// time at least a second after its start, within the run.
#[test]
fn the_wall_clock_is_read_as_rows_go_by() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let dir = scratch();
    let input = dir.path().join("in.json");
    assert!(Command::new("mkfifo").arg(&input).status().unwrap().success());
    let sql = format!(
        "CREATE TABLE src (k VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, t TIMESTAMP(3), d DATE) WITH ('connector' = 'print');
INSERT INTO out SELECT k, CURRENT_TIMESTAMP, CURRENT_DATE FROM src;
",
        input.display()
    );
    std::fs::write(dir.path().join("job.sql"), sql).unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = now();
    let child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg("job.sql")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = std::fs::OpenOptions::new().write(true).open(&input).unwrap();
    // The job is planned and running; its rows come a second later.
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    pipe.write_all(b"{\"k\": \"first\"}\n{\"k\": \"second\"}\n").unwrap();
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    let after = now();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stamps: BTreeMap<String, (i64, String)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("+I[")?.strip_suffix(']').map(str::to_string))
        .map(|l| {
            let cells: Vec<&str> = l.split(", ").collect();
            (
                cells[0].to_string(),
                (parse_timestamp(&cells[1].replace('T', " ")), cells[2].to_string()),
            )
        })
        .collect();
    assert_eq!(stamps.len(), 2, "{stdout}");
    for (k, (t, d)) in &stamps {
        assert!(
            (before..=after).contains(t),
            "{k}: {t} not within the run [{before}, {after}]"
        );
        let midnight = parse_timestamp(&format!("{d} 00:00:00"));
        assert!(
            (midnight..midnight + 86_400_000).contains(t),
            "{k}: CURRENT_DATE {d} is not the day of {t}"
        );
    }
    let late = stamps["first"].0 - before;
    assert!(
        late >= 1_000,
        "the rows' time is {late} ms after the job started: the clock was read when it was planned"
    );
}

/// Known digests (RFC 1321's MD5 suite, FIPS 180-4's examples) of the
/// texts the next job hashes: (text, MD5, SHA-1, SHA-256).
const DIGESTS: [(&str, &str, &str, &str); 2] = [
    (
        "abc",
        "900150983cd24fb0d6963f7d28e17f72",
        "a9993e364706816aba3e25717850c26c9cd0d89d",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    ),
    (
        "",
        "d41d8cd98f00b204e9800998ecf8427e",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ),
];

/// Where Flink and DataFusion share a name, a streaming job gets Flink's
/// meaning: CONCAT, GREATEST and LEAST are NULL when an argument is, CHR
/// takes the code modulo 256, MD5/SHA1/SHA256/SHA2 are hex strings, and
/// TO_DATE/TO_TIMESTAMP read Java patterns. Each value is computed here
/// from the definitions.
#[test]
fn flinks_meaning_of_shared_names_wins() {
    let dir = scratch();
    let mut g = Lcg(23);
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let mut lines = String::new();
    let mut want: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for i in 0..50 {
        let k = format!("k{i}");
        let b = (g.below(4) != 0).then(|| format!("b{}", g.below(100)));
        let n = (g.below(5) != 0).then(|| g.below(700) as i64 - 50);
        let m = (g.below(5) != 0).then(|| g.below(700) as i64 - 50);
        let (h, md5, sha1, sha256) = DIGESTS[g.below(2) as usize];
        // A time in Java's patterns' pieces: dd/MM/yyyy, HH:mm:ss.SSS.
        let ts = T0 + g.below(400 * 86_400_000) as i64;
        let text = sql_timestamp(ts); // yyyy-MM-dd HH:mm:ss.SSS
        let (y, mo, d) = (&text[..4], &text[5..7], &text[8..10]);
        let date_text = format!("{d}/{mo}/{y}");
        let time_text = format!("{d}.{mo}.{y} {}", &text[11..]);
        let json_opt = |v: &Option<String>| v.as_ref().map_or("null".to_string(), |v| format!("\"{v}\""));
        let num_opt = |v: Option<i64>| v.map_or("null".to_string(), |v| v.to_string());
        lines.push_str(&format!(
            "{{\"k\": \"{k}\", \"b\": {}, \"n\": {}, \"m\": {}, \"h\": \"{h}\", \"d\": \"{date_text}\", \"t\": \"{time_text}\"}}\n",
            json_opt(&b),
            num_opt(n),
            num_opt(m)
        ));
        want.insert(
            k.clone(),
            serde_json::json!({
                "k": k,
                "c": b.as_ref().map(|b| format!("{k}-{b}")),
                "g": n.zip(m).map(|(n, m)| n.max(m)),
                "l": n.zip(m).map(|(n, m)| n.min(m)),
                // Java's (char) (code & 0xFF), "" for a negative code.
                "ch": n.map(|n| if n < 0 { String::new() } else { char::from((n & 0xff) as u8).to_string() }),
                "md5": md5,
                "sha1": sha1,
                "sha256": sha256,
                "sha2": sha256,
                "day": &text[..10],
                "time": text,
            }),
        );
    }
    std::fs::write(dir.path().join("in/part-0.json"), lines).unwrap();
    let sql = format!(
        "CREATE TABLE t (k VARCHAR, b VARCHAR, n BIGINT, m BIGINT, h VARCHAR, d VARCHAR, t VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, c VARCHAR, g BIGINT, l BIGINT, ch VARCHAR, md5 VARCHAR, sha1 VARCHAR,
                  sha256 VARCHAR, sha2 VARCHAR, `day` VARCHAR, `time` VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out
SELECT k,
       CONCAT(k, '-', b),
       GREATEST(n, m),
       LEAST(n, m),
       CHR(n),
       MD5(h),
       SHA1(h),
       SHA256(h),
       SHA2(h, 256),
       DATE_FORMAT(TO_DATE(d, 'dd/MM/yyyy'), 'yyyy-MM-dd'),
       DATE_FORMAT(TO_TIMESTAMP(t, 'dd.MM.yyyy HH:mm:ss.SSS'), 'yyyy-MM-dd HH:mm:ss.SSS')
FROM t;
",
        dir.path().join("in").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got: BTreeMap<String, serde_json::Value> = read_sink(&dir.path().join("out"))
        .into_iter()
        .map(|row| (row["k"].as_str().expect("k").to_string(), row))
        .collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (k, want) in &want {
        assert_eq!(got.get(k), Some(want), "row {k}");
    }
}

/// Standard Base64 (RFC 4648), padded: the oracle of TO_BASE64.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Flink's string, JSON, URL and number functions that DataFusion lacks
/// run in a streaming job: STR_TO_MAP, JSON_VALUE, JSON_QUERY, JSON_EXISTS,
/// PARSE_URL, LOCATE, REGEXP, TO_BASE64/FROM_BASE64, BIN, HEX, TRUNCATE,
/// IS_ALPHA/IS_DIGIT/IS_DECIMAL and RAND_INTEGER. Each value is computed
/// here from Flink's documented semantics.
#[test]
fn flinks_string_json_and_number_functions_run_in_a_streaming_job() {
    let dir = scratch();
    let mut g = Lcg(31);
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let mut lines = String::new();
    let mut want: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let words = ["abc", "123", "-4.5e2", "x1", "", "Zz"];
    for i in 0..60 {
        let k = format!("{}-{i}", ["alpha", "beta", "gamma"][g.below(3) as usize]);
        // Pairs `p<j>=<v>`, sometimes a key twice (the last value wins).
        let pairs: Vec<(String, u64)> = (0..1 + g.below(4))
            .map(|_| (format!("p{}", g.below(3)), g.below(100)))
            .collect();
        let kv = pairs
            .iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let p1 = pairs.iter().rev().find(|(p, _)| p == "p1").map(|(_, v)| v.to_string());
        let tags: Vec<String> = (0..g.below(3)).map(|t| format!("t{t}{}", g.below(9))).collect();
        let opt = g.below(2) == 0;
        let mut doc = serde_json::Map::new();
        doc.insert("name".into(), serde_json::json!(k));
        doc.insert("tags".into(), serde_json::json!(tags));
        if opt {
            // A value: JSON null would be no value to JSON_EXISTS.
            doc.insert("opt".into(), serde_json::json!(1));
        }
        let doc = serde_json::Value::Object(doc).to_string();
        let id = g.below(1000);
        let url = format!("https://h{}.example.com/p/{i}?id={id}&x=y#f", g.below(5));
        let n = g.below(100_000) as i64 - 50_000;
        let milli = g.below(2_000_000) as i64 - 1_000_000;
        let word = words[g.below(words.len() as u64) as usize];
        let row = serde_json::json!({"k": k, "kv": kv, "doc": doc, "url": url, "n": n, "x": milli as f64 / 1000.0, "w": word});
        lines.push_str(&format!("{row}\n"));
        // TRUNCATE(x, 1): the decimal text cut after one place.
        let x = format!("{:.3}", milli as f64 / 1000.0);
        let x1: f64 = x[..x.len() - 2].parse().unwrap();
        want.insert(
            k.clone(),
            serde_json::json!({
                "k": k,
                "p1": p1,
                "name": k,
                "tag0": tags.first(),
                "tags": if tags.is_empty() { "[]".to_string() } else { serde_json::json!(tags).to_string() },
                "has_opt": opt,
                "host": url[8..].split('/').next(),
                "id": id.to_string(),
                "dash": k.find('-').map_or(0, |p| p + 1),
                "is_alpha": k.starts_with("al"),
                "b64": base64(k.as_bytes()),
                "back": k,
                "bin": format!("{:b}", n as u64),
                "hex": format!("{:X}", n as u64),
                "x1": if x1 == 0.0 { 0.0 } else { x1 },
                "alpha": !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic()),
                "digit": !word.is_empty() && word.chars().all(|c| c.is_ascii_digit()),
                "dec": word.parse::<f64>().is_ok(),
                "r_ok": true,
            }),
        );
    }
    std::fs::write(dir.path().join("in/part-0.json"), lines).unwrap();
    let sql = format!(
        "CREATE TABLE t (k VARCHAR, kv VARCHAR, doc VARCHAR, url VARCHAR, n BIGINT, x DOUBLE, w VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, p1 VARCHAR, name VARCHAR, tag0 VARCHAR, tags VARCHAR, has_opt BOOLEAN,
                  host VARCHAR, id VARCHAR, dash INT, is_alpha BOOLEAN, b64 VARCHAR, back VARCHAR,
                  bin VARCHAR, hex VARCHAR, x1 DOUBLE, alpha BOOLEAN, digit BOOLEAN, dec BOOLEAN,
                  r_ok BOOLEAN)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out
SELECT k,
       STR_TO_MAP(kv)['p1'],
       JSON_VALUE(doc, '$.name'),
       JSON_VALUE(doc, '$.tags[0]'),
       COALESCE(JSON_QUERY(doc, '$.tags'), 'none'),
       JSON_EXISTS(doc, 'lax $.opt'),
       PARSE_URL(url, 'HOST'),
       PARSE_URL(url, 'QUERY', 'id'),
       LOCATE('-', k),
       REGEXP(k, '^al'),
       TO_BASE64(k),
       FROM_BASE64(TO_BASE64(k)),
       BIN(n),
       HEX(n),
       TRUNCATE(x, 1),
       IS_ALPHA(w),
       IS_DIGIT(w),
       IS_DECIMAL(w),
       RAND_INTEGER(10) BETWEEN 0 AND 9
FROM t;
",
        dir.path().join("in").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got: BTreeMap<String, serde_json::Value> = read_sink(&dir.path().join("out"))
        .into_iter()
        .map(|row| (row["k"].as_str().expect("k").to_string(), row))
        .collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (k, want) in &want {
        assert_eq!(got.get(k), Some(want), "row {k}");
    }
}

/// `ts` plus `n` calendar months, the day clamped to the month's last (the
/// oracle of TIMESTAMPADD(MONTH, …)), in epoch milliseconds.
fn plus_months(ts: i64, n: i64) -> i64 {
    let text = sql_timestamp(ts);
    let (y, m, d): (i64, i64, i64) = (
        text[..4].parse().unwrap(),
        text[5..7].parse().unwrap(),
        text[8..10].parse().unwrap(),
    );
    let total = y * 12 + (m - 1) + n;
    let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let first = |y: i64, m: i64| parse_timestamp(&format!("{y:04}-{m:02}-01 00:00:00"));
    let next = if m == 12 { first(y + 1, 1) } else { first(y, m + 1) };
    let days_in_month = (next - first(y, m)) / 86_400_000;
    parse_timestamp(&format!("{y:04}-{m:02}-{:02} {}", d.min(days_in_month), &text[11..]))
}

/// The most whole months that can be added to `a` without passing `b`
/// (negative when `b` is earlier): the oracle of TIMESTAMPDIFF(MONTH, …).
fn months_between(a: i64, b: i64) -> i64 {
    if b < a {
        return -months_between(b, a);
    }
    let mut m = 0;
    while plus_months(a, m + 1) <= b {
        m += 1;
    }
    m
}

/// Flink's TIMESTAMPADD and TIMESTAMPDIFF with their unit keywords, and
/// JSON_VALUE … RETURNING, run unchanged in a streaming job (the planner
/// writes the keywords and the clause as DataFusion takes them); each value
/// is computed here by calendar arithmetic.
#[test]
fn timestampadd_timestampdiff_and_json_returning_run_unchanged() {
    let dir = scratch();
    let mut g = Lcg(41);
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let mut lines = String::new();
    let mut want: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for i in 0..50 {
        let k = format!("k{i}");
        // Month ends are the interesting days: some rows start on them.
        let ts = if g.below(3) == 0 {
            parse_timestamp(&format!(
                "2026-{:02}-31 10:20:30.456",
                [1, 3, 5, 8, 10, 12][g.below(6) as usize]
            ))
        } else {
            T0 + g.below(400 * 86_400_000) as i64
        };
        let ts2 = ts + g.below(200 * 86_400_000) as i64 - 100 * 86_400_000;
        let (h, m, w) = (
            g.below(100) as i64 - 50,
            g.below(30) as i64 - 15,
            g.below(10) as i64 - 5,
        );
        let (doc, v) = match g.below(3) {
            0 => (format!("{{\"v\": {}}}", 1000 + i), Some(1000 + i)),
            1 => (format!("{{\"v\": {}.{}}}", 7 + i, g.below(10)), Some(7 + i)),
            _ => ("{\"v\": \"word\"}".to_string(), None),
        };
        let row = serde_json::json!({"k": k, "ts": sql_timestamp(ts), "ts2": sql_timestamp(ts2), "h": h, "m": m, "w": w, "doc": doc});
        lines.push_str(&format!("{row}\n"));
        let day = ts.div_euclid(86_400_000) * 86_400_000;
        want.insert(
            k.clone(),
            serde_json::json!({
                "k": k,
                "plus_h": sql_timestamp(ts + h * 3_600_000),
                "plus_m": sql_timestamp(plus_months(ts, m)),
                "plus_w": &sql_timestamp(day + w * 7 * 86_400_000)[..10],
                "minutes": (ts2 - ts) / 60_000,
                "months": months_between(ts, ts2),
                "v": v,
            }),
        );
    }
    std::fs::write(dir.path().join("in/part-0.json"), lines).unwrap();
    let sql = format!(
        "CREATE TABLE t (k VARCHAR, ts TIMESTAMP(3), ts2 TIMESTAMP(3), h INT, m INT, w INT, doc VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, plus_h VARCHAR, plus_m VARCHAR, plus_w VARCHAR, minutes INT, months INT, v INT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out
SELECT k,
       DATE_FORMAT(TIMESTAMPADD(HOUR, h, ts), 'yyyy-MM-dd HH:mm:ss.SSS'),
       DATE_FORMAT(TIMESTAMPADD(MONTH, m, ts), 'yyyy-MM-dd HH:mm:ss.SSS'),
       DATE_FORMAT(TIMESTAMPADD(WEEK, w, CAST(ts AS DATE)), 'yyyy-MM-dd'),
       TIMESTAMPDIFF(MINUTE, ts, ts2),
       TIMESTAMPDIFF(MONTH, ts, ts2),
       JSON_VALUE(doc, '$.v' RETURNING INT)
FROM t;
",
        dir.path().join("in").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got: BTreeMap<String, serde_json::Value> = read_sink(&dir.path().join("out"))
        .into_iter()
        .map(|row| (row["k"].as_str().expect("k").to_string(), row))
        .collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (k, want) in &want {
        assert_eq!(got.get(k), Some(want), "row {k}");
    }
}

/// Flink's JSON constructors and predicate (read by Weir's dialect),
/// CONVERT_TZ, ELEMENT and TYPEOF in a streaming job through the binary:
/// each value equals one built here with serde_json and by hand.
#[test]
fn json_constructors_and_zone_conversion_run_unchanged() {
    let dir = scratch();
    let rows = inputs();
    write_inputs(dir.path(), &rows);
    let sql = format!(
        "CREATE TABLE t (k VARCHAR, v BIGINT, ts TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, obj VARCHAR, arr VARCHAR, is_obj BOOLEAN, not_json BOOLEAN, la VARCHAR,
                  one BIGINT, ty VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out
SELECT k,
       JSON_OBJECT(KEY 'k' VALUE k, 'v' VALUE v, 'inner' VALUE JSON_ARRAY(v, k) ABSENT ON NULL),
       JSON_ARRAY(v, 'x' NULL ON NULL),
       JSON_OBJECT('k' VALUE k) IS JSON OBJECT,
       k IS NOT JSON,
       CONVERT_TZ(DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm:ss'), 'UTC', 'PST'),
       ELEMENT(ARRAY[v]),
       TYPEOF(v)
FROM t;
",
        dir.path().join("in").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got: BTreeMap<String, serde_json::Value> = read_sink(&dir.path().join("out"))
        .into_iter()
        .map(|row| (row["k"].as_str().expect("k").to_string(), row))
        .collect();
    assert_eq!(got.len(), rows.len(), "{got:#?}");
    for r in &rows {
        let v = r.v.map_or(serde_json::Value::Null, serde_json::Value::from);
        // ABSENT ON NULL leaves a NULL value out; the inner array leaves
        // out its NULLs (JSON_ARRAY's default) and is JSON, not a string.
        let mut obj = serde_json::Map::new();
        obj.insert("k".into(), r.k.clone().into());
        if r.v.is_some() {
            obj.insert("v".into(), v.clone());
        }
        let inner: Vec<serde_json::Value> = [v.clone(), r.k.clone().into()]
            .into_iter()
            .filter(|x| !x.is_null())
            .collect();
        obj.insert("inner".into(), inner.into());
        // Los Angeles in the ten days after 2026-01-01: UTC-8 (standard
        // time until 8 March).
        let la = r.ts.map(|t| {
            assert!(t < T0 + 60 * 86_400_000, "an input time in summer time");
            let local = t - 8 * 3_600_000;
            sql_timestamp(local)[..19].to_string()
        });
        let want = serde_json::json!({
            "k": r.k,
            "obj": serde_json::Value::Object(obj),
            "arr": serde_json::Value::from(vec![v.clone(), "x".into()]).to_string(),
            "is_obj": true,
            "not_json": true,
            "la": la,
            "one": r.v,
            "ty": "BIGINT",
        });
        // Keys in the order written (serde_json's map sorts them).
        let mut row = got.get(&r.k).cloned().expect("every key written");
        let text = row["obj"].as_str().expect("obj is text").to_string();
        assert!(text.starts_with(&format!("{{\"k\":\"{}\"", r.k)), "{text}");
        row["obj"] = serde_json::from_str(&text).expect("obj is JSON");
        assert_eq!(row, want, "row {}", r.k);
    }
}

/// A computed column may call TIMESTAMPADD with its unit keyword, as a
/// query may (the cookbook's interval-join recipe declares its order and
/// shipment times so): each row's time a day and two hours later.
#[test]
fn timestampadd_in_a_computed_column() {
    let dir = scratch();
    let rows = inputs();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let mut lines = String::new();
    for r in rows.iter().filter(|r| r.ts.is_some()) {
        lines.push_str(&format!(
            "{{\"k\": \"{}\", \"ts\": \"{}\"}}\n",
            r.k,
            sql_timestamp(r.ts.unwrap())
        ));
    }
    std::fs::write(dir.path().join("in/part-0.json"), lines).unwrap();
    let sql = format!(
        "CREATE TABLE t (k VARCHAR, ts TIMESTAMP(3), later AS TIMESTAMPADD(HOUR, 2, TIMESTAMPADD(DAY, 1, ts)))
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, later TIMESTAMP(3)) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out SELECT k, later FROM t;
",
        dir.path().join("in").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got: BTreeMap<String, serde_json::Value> = read_sink(&dir.path().join("out"))
        .into_iter()
        .map(|row| {
            // The json format writes milliseconds without trailing zeros.
            let t = row["later"].as_str().expect("later").to_string();
            let (whole, fraction) = t.split_once('.').unwrap_or((&t, ""));
            (
                row["k"].as_str().expect("k").to_string(),
                format!("{whole}.{fraction:0<3}").into(),
            )
        })
        .collect();
    let want: BTreeMap<String, serde_json::Value> = rows
        .iter()
        .filter_map(|r| r.ts.map(|t| (r.k.clone(), sql_timestamp(t + 26 * 3_600_000).into())))
        .collect();
    assert_eq!(got, want);
}

/// SQL's three-valued AND and OR, the oracle of the predicates below.
fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// `x BETWEEN lo AND hi` in three-valued logic.
fn between3(x: Option<i64>, lo: Option<i64>, hi: Option<i64>) -> Option<bool> {
    let ge = |a: Option<i64>, b: Option<i64>| a.zip(b).map(|(a, b)| a >= b);
    and3(ge(x, lo), ge(hi, x))
}

/// Flink's standard SQL forms that sqlparser did not read run in a
/// streaming job: `BETWEEN [A]SYMMETRIC` (Flink's docs: "12 BETWEEN
/// SYMMETRIC 15 AND 12 returns TRUE", NULL bounds UNKNOWN), a simple
/// `CASE` with a list of values per `WHEN`, interval literals with range
/// qualifiers (`DAY TO SECOND`, `YEAR TO MONTH`, `HOUR TO MINUTE`) and
/// `OVERLAPS` of a period given by its length. Each value is computed here
/// from the standard's definitions and calendar arithmetic.
#[test]
fn between_symmetric_case_lists_interval_ranges_and_overlaps_run_unchanged() {
    let dir = scratch();
    let mut g = Lcg(53);
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let mut lines = String::new();
    let mut want: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let opt = |g: &mut Lcg| (g.below(6) != 0).then(|| g.below(10) as i64);
    for i in 0..60 {
        let k = format!("k{i}");
        let (x, a, b) = (opt(&mut g), opt(&mut g), opt(&mut g));
        let ts = T0 + g.below(400 * 86_400_000) as i64;
        let ts2 = ts + g.below(4 * 3_600_000) as i64 - 2 * 3_600_000;
        let num = |v: Option<i64>| v.map_or(serde_json::Value::Null, serde_json::Value::from);
        let row = serde_json::json!({"k": k, "x": num(x), "a": num(a), "b": num(b),
            "ts": sql_timestamp(ts), "ts2": sql_timestamp(ts2)});
        lines.push_str(&format!("{row}\n"));
        let symmetric = or3(between3(x, a, b), between3(x, b, a));
        want.insert(
            k.clone(),
            serde_json::json!({
                "k": k,
                "sym": symmetric,
                "nsym": symmetric.map(|s| !s),
                "asym": between3(x, a, b),
                "nasym": between3(x, a, b).map(|s| !s),
                "cs": match x { Some(1 | 2) => "low", Some(3) => "three", _ => "other" },
                "dts": sql_timestamp(ts + 86_400_000 + 2 * 3_600_000 + 3 * 60_000 + 4_005),
                "ym": sql_timestamp(plus_months(ts, 14)),
                "hm": sql_timestamp(ts - 90 * 60_000),
                "ov": ts + 3_600_000 >= ts2 && ts2 + 30 * 60_000 >= ts,
            }),
        );
    }
    std::fs::write(dir.path().join("in/part-0.json"), lines).unwrap();
    let sql = format!(
        "CREATE TABLE t (k VARCHAR, x BIGINT, a BIGINT, b BIGINT, ts TIMESTAMP(3), ts2 TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, sym BOOLEAN, nsym BOOLEAN, asym BOOLEAN, nasym BOOLEAN, cs VARCHAR,
                  dts VARCHAR, ym VARCHAR, hm VARCHAR, ov BOOLEAN)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out
SELECT k,
       x BETWEEN SYMMETRIC a AND b,
       x NOT BETWEEN SYMMETRIC a AND b,
       x BETWEEN ASYMMETRIC a AND b,
       x NOT BETWEEN ASYMMETRIC a AND b,
       CASE x WHEN 1, 2 THEN 'low' WHEN 3 THEN 'three' ELSE 'other' END,
       DATE_FORMAT(ts + INTERVAL '1 02:03:04.005' DAY TO SECOND, 'yyyy-MM-dd HH:mm:ss.SSS'),
       DATE_FORMAT(ts + INTERVAL '1-2' YEAR TO MONTH, 'yyyy-MM-dd HH:mm:ss.SSS'),
       DATE_FORMAT(ts - INTERVAL '1:30' HOUR TO MINUTE, 'yyyy-MM-dd HH:mm:ss.SSS'),
       (ts, INTERVAL '1' HOUR) OVERLAPS (ts2, INTERVAL '30' MINUTE)
FROM t;
",
        dir.path().join("in").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got: BTreeMap<String, serde_json::Value> = read_sink(&dir.path().join("out"))
        .into_iter()
        .map(|row| (row["k"].as_str().expect("k").to_string(), row))
        .collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (k, want) in &want {
        assert_eq!(got.get(k), Some(want), "row {k}");
    }
}

/// What a query Weir cannot run says: `weir run`'s message, with the
/// statement's line and column, for a script holding `SELECT <expr>`.
fn refused(expr: &str) -> String {
    let dir = scratch();
    let run = weir_run(dir.path(), &format!("SELECT 1;\nSELECT {expr} AS r;\n"));
    assert!(!run.ok, "{expr} ran: {}", run.stdout);
    run.stderr
}

/// Bad interval texts and qualifiers are errors at the literal, saying
/// what the qualifier expects.
#[test]
fn bad_interval_ranges_are_errors_at_the_literal() {
    let e = refused("INTERVAL '10' DAY TO SECOND");
    assert!(
        e.contains(":2:17:") && e.contains("expected '[+|-]d h:m:s[.fff]'"),
        "{e}"
    );
    let e = refused("INTERVAL '1:60' HOUR TO MINUTE");
    assert!(e.contains(":2:17:") && e.contains("MINUTE 60 is out of range"), "{e}");
    let e = refused("INTERVAL '1-2' YEAR TO DAY");
    assert!(e.contains(":2:17:") && e.contains("YEAR TO DAY"), "{e}");
}

/// `java.util.Random(seed)`'s `nextDouble()` sequence, by its Javadoc's
/// definition: the oracle of `RAND(seed)`.
fn java_doubles(seed: i64, n: usize) -> Vec<f64> {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut state = (seed as u64 ^ MULTIPLIER) & MASK;
    let mut next = |bits: u32| {
        state = state.wrapping_mul(MULTIPLIER).wrapping_add(0xB) & MASK;
        (state >> (48 - bits)) as i64
    };
    (0..n)
        .map(|_| {
            let high = next(26) << 27;
            ((high + next(27)) as f64) / (1u64 << 53) as f64
        })
        .collect()
}

/// `RAND(seed)` is the JVM's sequence of that seed, row after row;
/// `CURRENT_DATABASE()` and `CURRENT_CATALOG()` are Flink's default names;
/// `U&'…'` strings read their escapes (also with `UESCAPE`); `LOCALTIME`
/// is the wall clock's time of day, whole seconds, in the session's zone
/// (Tokyo, nine hours ahead of UTC), read while the job runs.
#[test]
fn seeded_rand_catalog_names_unicode_strings_and_localtime() {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("k{i:02}")).collect();
    let lines: String = keys.iter().map(|k| format!("{{\"k\": \"{k}\"}}\n")).collect();
    std::fs::write(dir.path().join("in/part-0.json"), lines).unwrap();
    let sql = format!(
        "SET 'table.local-time-zone' = 'Asia/Tokyo';
CREATE TABLE t (k VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, r DOUBLE, db VARCHAR, cat VARCHAR, u VARCHAR, ue VARCHAR, lt VARCHAR, lts VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out
SELECT k, RAND(42), CURRENT_DATABASE(), CURRENT_CATALOG(), U&'\\0041\\0042', U&'#0043##' UESCAPE '#',
       CAST(LOCALTIME AS VARCHAR), DATE_FORMAT(LOCALTIMESTAMP, 'HH:mm:ss')
FROM t;
",
        dir.path().join("in").display(),
        dir.path().join("out").display()
    );
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let before = now();
    let run = weir_run(dir.path(), &sql);
    let after = now();
    assert!(run.ok, "{}", run.stderr);
    let rows = read_sink(&dir.path().join("out"));
    assert_eq!(rows.len(), keys.len(), "{rows:#?}");
    let doubles = java_doubles(42, keys.len());
    // Tokyo's second of the day at `t` (no summer time there).
    let tokyo = |t: i64| (t + 9 * 3_600).rem_euclid(86_400);
    let (lo, hi) = (tokyo(before), tokyo(after));
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["k"], keys[i].as_str(), "rows in input order");
        // serde_json reads decimals to within an ulp.
        let r = row["r"].as_f64().expect("r");
        assert!((r - doubles[i]).abs() < 1e-15, "row {i}: {r} is not {}", doubles[i]);
        assert_eq!(row["db"], "default_database");
        assert_eq!(row["cat"], "default_catalog");
        assert_eq!(row["u"], "AB");
        assert_eq!(row["ue"], "C#");
        let lt = row["lt"].as_str().expect("lt");
        let parts: Vec<i64> = lt.split(':').map(|p| p.parse().expect("whole seconds")).collect();
        let second = parts[0] * 3_600 + parts[1] * 60 + parts[2];
        let within = if lo <= hi {
            (lo..=hi).contains(&second)
        } else {
            second >= lo || second <= hi
        };
        assert!(within, "LOCALTIME {lt} is not Tokyo's time during the run");
        let lts = row["lts"].as_str().expect("lts");
        assert!(
            lts[..5] == lt[..5] || lo > hi || hi - lo > 60,
            "LOCALTIME {lt} vs LOCALTIMESTAMP {lts}"
        );
    }
}

/// Flink's JSON function clauses in a streaming job: `JSON_EXISTS … ON
/// ERROR`, `JSON_VALUE … RETURNING … ON EMPTY / ON ERROR` with defaults,
/// `JSON_QUERY`'s wrappers and `EMPTY ARRAY` / `EMPTY OBJECT` behaviours,
/// over documents where the path finds a number, a word, nothing, an
/// array, JSON null, or the text is not JSON. Each expected value is
/// worked out here from Flink's rules: no mode is strict; strict mode makes
/// a missing member or bad text an error, lax mode makes them empty; JSON
/// null is empty.
#[test]
fn json_function_clauses_run_unchanged() {
    let dir = scratch();
    let mut g = Lcg(61);
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let mut lines = String::new();
    let mut want: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for i in 0..60 {
        let k = format!("k{i}");
        let n = g.below(1000) as i64;
        let shape = g.below(6);
        let doc = match shape {
            0 => format!("{{\"b\": {n}}}"),
            1 => "{\"b\": \"word\"}".to_string(),
            2 => "{}".to_string(),
            3 => format!("{{\"b\": [{n}, {}]}}", n + 1),
            4 => "oops".to_string(),
            _ => "{\"b\": null}".to_string(),
        };
        lines.push_str(&format!("{}\n", serde_json::json!({"k": k, "doc": doc})));
        let pair = format!("[{n},{}]", n + 1);
        let (ex_true, ex_unknown, v_def, v_strict, q_wrap, q_uncond, q_plain) = match shape {
            0 => (
                Some(true),
                Some(true),
                Some(n),
                Some(n.to_string()),
                Some(format!("[{n}]")),
                Some(format!("[{n}]")),
                Some("[]".to_string()),
            ),
            1 => (
                Some(true),
                Some(true),
                None,
                Some("word".into()),
                Some("[\"word\"]".into()),
                Some("[\"word\"]".into()),
                Some("[]".into()),
            ),
            2 => (
                Some(true),
                None,
                Some(-1),
                Some("bad".into()),
                None,
                Some("[]".into()),
                Some("[]".into()),
            ),
            3 => (
                Some(true),
                Some(true),
                Some(-1),
                Some("bad".into()),
                Some(pair.clone()),
                Some(format!("[{pair}]")),
                Some(pair),
            ),
            4 => (
                Some(true),
                None,
                Some(-1),
                Some("bad".into()),
                None,
                Some("[]".into()),
                Some("[]".into()),
            ),
            _ => (
                Some(false),
                Some(false),
                Some(-1),
                Some("none".into()),
                None,
                Some("{}".into()),
                None,
            ),
        };
        want.insert(
            k.clone(),
            serde_json::json!({"k": k, "arr": if shape == 3 { format!("{n}|{}", n + 1) } else { String::new() },
                "ex_true": ex_true, "ex_unknown": ex_unknown, "v_def": v_def,
                "v_strict": v_strict, "q_wrap": q_wrap, "q_uncond": q_uncond, "q_plain": q_plain}),
        );
    }
    std::fs::write(dir.path().join("in/part-0.json"), lines).unwrap();
    let sql = format!(
        "CREATE TABLE t (k VARCHAR, doc VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, ex_true BOOLEAN, ex_unknown BOOLEAN, v_def INT, v_strict VARCHAR, q_wrap VARCHAR,
                  q_uncond VARCHAR, q_plain VARCHAR, arr VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out
SELECT k,
       JSON_EXISTS(doc, 'strict $.b' TRUE ON ERROR),
       JSON_EXISTS(doc, 'strict $.b' UNKNOWN ON ERROR),
       JSON_VALUE(doc, 'lax $.b' RETURNING INT DEFAULT -1 ON EMPTY DEFAULT -2 ON ERROR),
       JSON_VALUE(doc, '$.b' DEFAULT 'none' ON EMPTY DEFAULT 'bad' ON ERROR),
       JSON_QUERY(doc, 'lax $.b' WITH CONDITIONAL ARRAY WRAPPER),
       JSON_QUERY(doc, '$.b' WITH UNCONDITIONAL ARRAY WRAPPER EMPTY OBJECT ON EMPTY EMPTY ARRAY ON ERROR),
       JSON_QUERY(doc, 'strict $.b' EMPTY ARRAY ON ERROR),
       ARRAY_JOIN(JSON_QUERY(doc, 'lax $.b' RETURNING ARRAY<STRING> EMPTY ARRAY ON EMPTY), '|')
FROM t;
",
        dir.path().join("in").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got: BTreeMap<String, serde_json::Value> = read_sink(&dir.path().join("out"))
        .into_iter()
        .map(|row| (row["k"].as_str().expect("k").to_string(), row))
        .collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (k, want) in &want {
        assert_eq!(got.get(k), Some(want), "row {k}");
    }
}

/// A misplaced JSON clause is a syntax error at it; `ERROR ON ERROR`
/// fails the job naming the function and what went wrong.
#[test]
fn json_clause_errors_are_clear() {
    let e = refused("JSON_VALUE('{}', '$.b' ON ERROR)");
    assert!(e.contains(":2:31:") && e.contains("ON EMPTY, ON ERROR or )"), "{e}");
    let e = refused("JSON_QUERY('{}', '$' WITH ARRAY)");
    assert!(e.contains(":2:39:") && e.contains("WRAPPER"), "{e}");
    let e = refused("JSON_VALUE('{\"a\": 1}', 'strict $.b' ERROR ON ERROR)");
    assert!(e.contains("JSON_VALUE: no value at 'strict $.b'"), "{e}");
}

/// Java's `URLEncoder.encode(s, UTF_8)`, by its definition: the oracle of
/// URL_ENCODE.
fn form_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => char::from(b).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Flink's newer string and collection functions in a streaming job:
/// SPLIT, ELT, STARTSWITH, URL_ENCODE / URL_DECODE, JSON_QUOTE /
/// JSON_UNQUOTE, REGEXP_EXTRACT_ALL, REGEXP_SUBSTR, ARRAY_PREPEND,
/// ARRAY_SLICE, ARRAY_SORT (descending), UNHEX, PRINTF and SIMILAR TO; each value is computed here from Flink's
/// documented meaning.
#[test]
fn newer_string_and_collection_functions_run_unchanged() {
    let dir = scratch();
    let mut g = Lcg(67);
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let mut lines = String::new();
    let mut want: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let words = ["plain", "a b&c", "café/bar", "quote\"d", "x=1?y"];
    for i in 0..60 {
        let k = format!("k{i}");
        let pieces: Vec<String> = (0..1 + g.below(4))
            .map(|_| match g.below(3) {
                0 => format!("{}{}", char::from(b'a' + g.below(26) as u8), g.below(1000)),
                1 => "xyz".to_string(),
                _ => String::new(),
            })
            .collect();
        let s = pieces.join(",");
        let n = g.below(5) as i64;
        let a = words[g.below(words.len() as u64) as usize];
        lines.push_str(&format!("{}\n", serde_json::json!({"k": k, "s": s, "n": n, "a": a})));
        let mut descending = pieces.clone();
        descending.sort_by(|a, b| b.cmp(a));
        let elt = ["one", "two", "three"].get((n as usize).wrapping_sub(1)).copied();
        let digits: Vec<&str> = pieces
            .iter()
            .filter(|p| p.len() > 1 && p != &"xyz")
            .map(|p| &p[1..])
            .collect();
        want.insert(
            k.clone(),
            serde_json::json!({
                "k": k,
                "parts": pieces.join("|"),
                "cnt": pieces.len(),
                "elt": elt,
                "sw": s.starts_with("xyz"),
                "enc": form_encoded(a),
                "dec": a,
                "quoted": serde_json::to_string(a).unwrap().replace('/', "\\/"),
                "unq": a,
                "nums": digits.join("|"),
                "first": digits.first().copied(),
                "pre": format!("first|{}", pieces.join("|")),
                "tail": pieces[1..].join("|"),
                "gap": s.contains(",,"),
                "desc": descending.join("|"),
                "rt": a,
                "pf": format!("{a}={n:03}|{:>6}", format!("{n}.3")),
            }),
        );
    }
    std::fs::write(dir.path().join("in/part-0.json"), lines).unwrap();
    let sql = format!(
        "CREATE TABLE t (k VARCHAR, s VARCHAR, n INT, a VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, parts VARCHAR, cnt INT, elt VARCHAR, sw BOOLEAN, enc VARCHAR, dec VARCHAR,
                  quoted VARCHAR, unq VARCHAR, nums VARCHAR, `first` VARCHAR, pre VARCHAR, tail VARCHAR, gap BOOLEAN,
                  `desc` VARCHAR, rt VARCHAR, pf VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out
SELECT k,
       ARRAY_JOIN(SPLIT(s, ','), '|'),
       CARDINALITY(SPLIT(s, ',')),
       ELT(n, 'one', 'two', 'three'),
       STARTSWITH(s, 'xyz'),
       URL_ENCODE(a),
       URL_DECODE(URL_ENCODE(a)),
       JSON_QUOTE(a),
       JSON_UNQUOTE(JSON_QUOTE(a)),
       ARRAY_JOIN(REGEXP_EXTRACT_ALL(s, '[a-z]([0-9]+)'), '|'),
       REGEXP_SUBSTR(s, '[0-9]+'),
       ARRAY_JOIN(ARRAY_PREPEND(SPLIT(s, ','), 'first'), '|'),
       ARRAY_JOIN(ARRAY_SLICE(SPLIT(s, ','), 2), '|'),
       s SIMILAR TO '%,,%',
       ARRAY_JOIN(ARRAY_SORT(SPLIT(s, ','), FALSE), '|'),
       DECODE(UNHEX(HEX(a)), 'UTF-8'),
       PRINTF('%s=%03d|%6.1f', a, n, n + 0.3)
FROM t;
",
        dir.path().join("in").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got: BTreeMap<String, serde_json::Value> = read_sink(&dir.path().join("out"))
        .into_iter()
        .map(|row| (row["k"].as_str().expect("k").to_string(), row))
        .collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (k, want) in &want {
        assert_eq!(got.get(k), Some(want), "row {k}");
    }
}

/// MAP_UNION in a streaming job: a key of the second map takes its value
/// there, other keys keep the first map's (Flink's docs); computed here by
/// reading the pairs in order.
#[test]
fn map_union_runs_unchanged() {
    let dir = scratch();
    let mut g = Lcg(71);
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let mut lines = String::new();
    let mut want: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let pairs = |g: &mut Lcg| -> Vec<(String, u64)> {
        (0..1 + g.below(3))
            .map(|_| (format!("p{}", g.below(3)), g.below(100)))
            .collect()
    };
    for i in 0..40 {
        let k = format!("k{i}");
        let (a, b) = (pairs(&mut g), pairs(&mut g));
        let text = |p: &[(String, u64)]| p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        lines.push_str(&format!(
            "{}\n",
            serde_json::json!({"k": k, "a": text(&a), "b": text(&b)})
        ));
        let last = |key: &str| {
            b.iter()
                .rev()
                .chain(a.iter().rev())
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.to_string())
        };
        want.insert(
            k.clone(),
            serde_json::json!({"k": k, "p0": last("p0"), "p1": last("p1"), "p2": last("p2")}),
        );
    }
    std::fs::write(dir.path().join("in/part-0.json"), lines).unwrap();
    let sql = format!(
        "CREATE TABLE t (k VARCHAR, a VARCHAR, b VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, p0 VARCHAR, p1 VARCHAR, p2 VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out
SELECT k, m['p0'], m['p1'], m['p2']
FROM (SELECT k, MAP_UNION(STR_TO_MAP(a), STR_TO_MAP(b)) AS m FROM t);
",
        dir.path().join("in").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got: BTreeMap<String, serde_json::Value> = read_sink(&dir.path().join("out"))
        .into_iter()
        .map(|row| (row["k"].as_str().expect("k").to_string(), row))
        .collect();
    assert_eq!(got, want);
}

/// Interval range qualifiers wherever Flink takes an interval: a
/// watermark's delay (`MINUTE TO SECOND`), an interval join's bound (`DAY
/// TO MINUTE`) and a HOP window's slide and size (`HOUR TO MINUTE`). The
/// rows are few and the answers worked out by hand: `x` meets its match
/// 30 minutes later, `y`'s comes two hours later, outside the hour; the
/// two 10:00 rows fall in the hop windows starting 9:30 and 10:00.
#[test]
fn interval_ranges_in_watermarks_joins_and_windows() {
    let dir = scratch();
    for (table, rows) in [
        ("a", ["x 2026-01-01 10:00:00", "y 2026-01-01 10:00:00"]),
        ("b", ["x 2026-01-01 10:30:00", "y 2026-01-01 12:00:00"]),
    ] {
        std::fs::create_dir_all(dir.path().join(table)).unwrap();
        let lines: String = rows
            .iter()
            .map(|r| {
                let (k, ts) = r.split_once(' ').unwrap();
                format!("{}\n", serde_json::json!({"k": k, "ts": ts}))
            })
            .collect();
        std::fs::write(dir.path().join(table).join("part-0.json"), lines).unwrap();
    }
    let path = |p: &str| dir.path().join(p).display().to_string();
    let sql = format!(
        "CREATE TABLE a (k VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '0:05' MINUTE TO SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE b (k VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE joined (k VARCHAR, t VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE hops (ws VARCHAR, n BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO joined
SELECT a.k, DATE_FORMAT(b.ts, 'HH:mm') FROM a JOIN b
  ON a.k = b.k AND b.ts BETWEEN a.ts AND a.ts + INTERVAL '0 01:00' DAY TO MINUTE;
INSERT INTO hops
SELECT DATE_FORMAT(window_start, 'HH:mm'), COUNT(*)
FROM TABLE(HOP(TABLE a, DESCRIPTOR(ts), INTERVAL '0:30' HOUR TO MINUTE, INTERVAL '1:00' HOUR TO MINUTE))
GROUP BY window_start, window_end;
",
        path("a"),
        path("b"),
        path("joined"),
        path("hops")
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        read_sink(&dir.path().join("joined")),
        [serde_json::json!({"k": "x", "t": "10:30"})]
    );
    let mut hops = read_sink(&dir.path().join("hops"));
    hops.sort_by_key(|r| r["ws"].as_str().map(str::to_string));
    assert_eq!(
        hops,
        [
            serde_json::json!({"ws": "09:30", "n": 2}),
            serde_json::json!({"ws": "10:00", "n": 2})
        ]
    );
}
