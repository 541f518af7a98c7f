#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus under fuzz/seeds/<target>/.

sql:        every queries/**/*.sql file, and every SQL string literal of
            tests/*.rs (statements the integration tests run).
pgwire:     client message streams (simple and extended protocol, Weir's
            statements and a PostgreSQL client's) to follow the startup.
records:    JSON and CSV records, good and bad, under every format option.
checkpoint: real operator and source states, written by the engine
            (cargo run -p weir-engine --example checkpoint_seeds).

Run from anywhere: scripts/fuzz_seeds.py. Seeds are named by their content's
hash, so running it again changes nothing unless the sources did.
"""

import hashlib
import pathlib
import re
import struct
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
# Inputs past the SQL targets' -max_len would be cut by libFuzzer anyway.
MAX_LEN = 4096

SQL_WORDS = re.compile(r"\b(CREATE TABLE|SELECT|INSERT INTO|EXPLAIN|SET '|DESCRIBE|SHOW|STOP JOB)\b", re.I)
# Rust string literals: raw (r"…", r#"…"#) and plain ("…" with escapes).
RAW = re.compile(r'r(#*)"(.*?)"\1', re.S)
PLAIN = re.compile(r'(?<![r#\w])"((?:[^"\\]|\\.)*)"', re.S)
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


# Known and reported, not the fuzzers' to find again each run: DataFusion's
# planner folds constants, so planning this alone takes gigabytes (issue 17's
# "memory of one value").
KNOWN = ["repeat('x', 2000000000)"]


def unescape(s):
    """A plain Rust literal's text: escapes resolved, and a backslash at a
    line end dropping the line break and the next line's indentation."""
    s = re.sub(r"\\\n\s*", "", s)
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(0)), s)


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    if not data or len(data) > MAX_LEN:
        return
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def sql_seeds():
    for path in sorted(ROOT.glob("queries/**/*.sql")):
        write("sql", path.read_text())
    for path in sorted(ROOT.glob("tests/*.rs")):
        text = path.read_text()
        literals = [m.group(2) for m in RAW.finditer(text)]
        literals += [unescape(m.group(1)) for m in PLAIN.finditer(RAW.sub("", text))]
        for literal in literals:
            if SQL_WORDS.search(literal) and not any(k in literal for k in KNOWN):
                write("sql", literal)


def message(kind, body):
    """A frontend message: type byte, then length (itself included)."""
    return kind + struct.pack("!i", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def pgwire_seeds():
    query = lambda sql: message(b"Q", cstr(sql))
    parse = lambda sql: message(b"P", cstr("") + cstr(sql) + struct.pack("!h", 0))
    bind = message(b"B", cstr("") + cstr("") + struct.pack("!hhh", 0, 0, 0))
    describe = message(b"D", b"P" + cstr(""))
    execute = message(b"E", cstr("") + struct.pack("!i", 0))
    sync = message(b"S", b"")
    terminate = message(b"X", b"")
    write("pgwire", query("SELECT 1;") + terminate)
    write("pgwire", query("SET extra_float_digits = 3; SHOW search_path; BEGIN; COMMIT;"))
    write("pgwire", query("CREATE TABLE t (a BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) "
                          "WITH ('connector' = 'datagen', 'number-of-rows' = '10'); SHOW TABLES; SHOW JOBS;"))
    write("pgwire", query("SELECT * FROM pg_catalog.pg_type WHERE oid = 23"))
    write("pgwire", parse("SELECT $1::int + 1") + bind + describe + execute + sync)
    write("pgwire", parse("EXPLAIN SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE t, "
                          "DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end") + sync)
    write("pgwire", message(b"p", cstr("secret")) + query("SELECT 1"))
    write("pgwire", message(b"d", b"1,2\n") + message(b"c", b"") + message(b"f", cstr("stop")))
    write("pgwire", message(b"C", b"S" + cstr("s")) + message(b"H", b""))


# The records target's first byte: bit 0 CSV, bit 1 tolerant, bits 2-3 the
# CSV delimiter (, ; | tab) or bit 2 JSON's ISO-8601 timestamps, bit 4 quote
# ', bit 5 null literal NULL, bit 6 Kafka messages (NUL-separated).
CSV, TOLERANT, ISO, SEMICOLON, QUOTE, NULL_LITERAL, KAFKA = 1, 2, 4, 4, 16, 32, 64

JSON_RECORDS = [
    '{"id": 1, "tiny": 1, "small": 300, "int": 70000, "real": 1.5, "double": 2.25, "flag": true, '
    '"name": "a", "price": 12.34, "day": "2026-01-01", "ts": "2026-01-01 00:00:00.000"}',
    '{"id": 2, "ts": "2026-01-01T00:00:01.500Z", "name": 42}',
    '{"id": 3, "ts": 1767225600000, "price": "99.99", "day": null}',
    '{"id": 4, "tiny": 300}',
    '{"id": null}',
    '{"id": 5} {"id": 6}',
    '[1, 2, 3]',
    '{"id": 7, "ts": "not a time"',
]

CSV_RECORDS = [
    "1,1,300,70000,1.5,2.25,true,a,12.34,2026-01-01,2026-01-01 00:00:00.000",
    "2,,,,,,,,,,1767225600000",
    '3,1,2,3,4,5,false,"quoted, with comma",1.5,2026-02-28,2026-01-01T00:00:01Z',
    "4,999,1,1,1,1,maybe,x,1,2026-13-01,yesterday",
    "5,1,2",
    '6,1,2,3,4,5,true,"open quote',
    "NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL",
]


def records_seeds():
    json_lines = "\n".join(JSON_RECORDS).encode()
    csv_lines = "\n".join(CSV_RECORDS).encode()
    for flags in [0, TOLERANT, ISO | TOLERANT]:
        write("records", bytes([flags]) + json_lines)
        write("records", bytes([flags | KAFKA]) + "\0".join(JSON_RECORDS).encode())
    for flags in [CSV, CSV | TOLERANT, CSV | TOLERANT | NULL_LITERAL, CSV | TOLERANT | QUOTE]:
        write("records", bytes([flags]) + csv_lines)
        write("records", bytes([flags | KAFKA]) + "\0".join(CSV_RECORDS).encode())
    write("records", bytes([CSV | TOLERANT | SEMICOLON]) + csv_lines.replace(b",", b";"))
    write("records", bytes([KAFKA | TOLERANT]) + b"\0\0")


def checkpoint_seeds():
    subprocess.run(
        ["cargo", "run", "--quiet", "-p", "weir-engine", "--example", "checkpoint_seeds", "--",
         str(SEEDS / "checkpoint")],
        cwd=ROOT, check=True)


if __name__ == "__main__":
    sql_seeds()
    pgwire_seeds()
    records_seeds()
    checkpoint_seeds()
    for d in sorted(SEEDS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")
