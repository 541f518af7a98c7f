#!/usr/bin/env bash
# Lookup-join throughput against a real PostgreSQL: every input row looks
# up a distinct key (no cache hit), through a view that adds 1 ms or 10 ms
# of latency (pg_sleep) per lookup, at 1, 16 and 64 concurrent lookups.
#
# Usage: scripts/bench-lookup.sh [rows per lookup slot, default 100]
# Needs Debian's postgresql package (scripts/test.sh installs it) and a
# release build of weir (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
per_slot=${1:-100}

cargo build --release -p weir --bin weir -q
weir=$PWD/target/release/weir
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d)
trap 'runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg" stop -m immediate >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
chown postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
runuser -u postgres -- "$bin/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
psql() { command psql -h 127.0.0.1 -p "$port" -U postgres -qAt "$@"; }
psql -c "CREATE TABLE users (id bigint PRIMARY KEY, name text)"
psql -c "INSERT INTO users SELECT g, 'user ' || g FROM generate_series(0, 199999) g"
psql -c "CREATE VIEW users_1ms AS SELECT id, name FROM users, pg_sleep(0.001)"
psql -c "CREATE VIEW users_10ms AS SELECT id, name FROM users, pg_sleep(0.01)"

printf '%-8s %-11s %8s %9s %12s\n' latency concurrent rows seconds lookups/s
for latency in 1ms 10ms; do
  for concurrent in 1 16 64; do
    rows=$((per_slot * concurrent))
    [ "$latency" = 10ms ] && rows=$((rows / 4))
    dir=$work/run-$latency-$concurrent
    mkdir -p "$dir/in"
    python3 -c "import sys; sys.stdout.write(''.join('{\"k\": %d}\n' % i for i in range($rows)))" > "$dir/in/part-0.json"
    cat > "$dir/job.sql" <<SQL
SET 'execution.checkpointing.interval' = '0';
CREATE TABLE s (k BIGINT, proc_time AS PROCTIME())
  WITH ('connector' = 'filesystem', 'path' = '$dir/in', 'format' = 'json');
CREATE TABLE users (id BIGINT, name VARCHAR) WITH ('connector' = 'postgres',
  'url' = 'postgres://postgres@127.0.0.1:$port/postgres', 'table' = 'users_$latency',
  'lookup.max-concurrent' = '$concurrent', 'lookup.output-mode' = 'unordered',
  'lookup.cache.max-rows' = '0');
CREATE TABLE out (k BIGINT, name VARCHAR) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT s.k, u.name FROM s JOIN users FOR SYSTEM_TIME AS OF s.proc_time AS u ON s.k = u.id;
SQL
    start=$(date +%s.%N)
    (cd "$dir" && "$weir" run job.sql >/dev/null 2>"$dir/err.log") || { cat "$dir/err.log" >&2; exit 1; }
    end=$(date +%s.%N)
    python3 -c "s=$end-$start; print('%-8s %-11s %8d %9.2f %12.0f' % ('$latency', '$concurrent', $rows, s, $rows / s))"
  done
done
