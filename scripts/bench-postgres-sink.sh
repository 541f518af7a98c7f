#!/usr/bin/env bash
# PostgreSQL sink throughput: a job upserts N rows with distinct keys (each
# row one INSERT … ON CONFLICT DO UPDATE of its own key: nothing collapses)
# into a table with a primary key, exactly once (a checkpoint a second), at
# several 'sink.buffer-flush.max-rows' (rows per statement); then the same
# into a blackhole sink, to subtract reading and decoding the input. The
# table is emptied before each run, and a second pass over a full table
# measures updates rather than inserts.
#
# Usage: scripts/bench-postgres-sink.sh [rows, default 200000]
# Needs Debian's postgresql package (scripts/test.sh installs it) and a
# release build of weir (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-200000}

cargo build --release -p weir --bin weir -q
weir=$PWD/target/release/weir
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d)
trap 'runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg" stop -m immediate >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
chown postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
runuser -u postgres -- "$bin/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
psql() { command psql -h 127.0.0.1 -p "$port" -U postgres -qAt "$@"; }
psql -c "CREATE TABLE totals (k bigint PRIMARY KEY, name text, amount numeric(12, 2), at timestamp(3))"
mkdir -p "$work/in"
python3 -c "
import sys
for i in range($rows):
    sys.stdout.write('{\"k\": %d, \"name\": \"customer %d\", \"amount\": %d.%02d, \"at\": \"2026-01-01 00:00:%02d.%03d\"}\n' % (i, i % 1000, i % 9999, i % 100, i % 60, i % 1000))
" > "$work/in/part-0.json"

job() { # sink options
  cat <<SQL
SET 'execution.checkpointing.interval' = '1 s';
CREATE TABLE src (k BIGINT, name VARCHAR, amount DECIMAL(12, 2), at TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '$work/in', 'format' = 'json');
CREATE TABLE totals (k BIGINT, name VARCHAR, amount DECIMAL(12, 2), at TIMESTAMP(3), PRIMARY KEY (k) NOT ENFORCED)
  WITH ($1);
INSERT INTO totals SELECT * FROM src;
SQL
}

timed() { # sql file → seconds
  local start end
  start=$(date +%s.%N)
  (cd "$work" && "$weir" run "$1" >/dev/null 2>"$work/err.log") || { cat "$work/err.log" >&2; exit 1; }
  end=$(date +%s.%N)
  python3 -c "print($end - $start)"
}

job "'connector' = 'blackhole'" > "$work/blackhole.sql"
base=$(timed "$work/blackhole.sql")
printf 'input alone (blackhole): %d rows in %.2f s\n\n' "$rows" "$base"
printf '%-9s %-8s %9s %12s %22s\n' max-rows pass seconds rows/s 'rows/s (less input)'
for max in 100 1000 10000; do
  job "'connector' = 'jdbc', 'url' = 'jdbc:postgresql://127.0.0.1:$port/postgres?user=postgres',
       'table-name' = 'totals', 'sink.buffer-flush.max-rows' = '$max'" > "$work/pg-$max.sql"
  psql -c "TRUNCATE totals"
  for pass in insert update; do
    s=$(timed "$work/pg-$max.sql")
    [ "$(psql -c 'SELECT count(*) FROM totals')" = "$rows" ] || { echo "row count mismatch" >&2; exit 1; }
    python3 -c "s=$s; b=$base; print('%-9s %-8s %9.2f %12.0f %22.0f' % ('$max', '$pass', s, $rows / s, $rows / max(s - b, 1e-9)))"
  done
done
