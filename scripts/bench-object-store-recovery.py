#!/usr/bin/env python3
"""Recovery time of a window over N keys, checkpoints on the local disk
(sled under state.dir) and on an S3 server (moto on loopback).

A job counts rows per key in a one-hour TUMBLE window; its input is N rows
of N distinct keys inside the window, then a named pipe that keeps the job
running. Once a checkpoint holds the whole window state (a checkpoint that
writes no new chunk after ones that did), the job is killed with SIGKILL
and started again at once. Measured from the kill:

- resumed: the start line saying it resumed from the checkpoint (process
  start, planning, reading and decoding the state; "state MB" is what the
  checkpoints wrote before the kill);
- first output: a row past the window is written to the pipe as soon as
  the job resumed, the window fires and its N rows are committed (at the
  end of input, when the pipe closes).

Usage: scripts/bench-object-store-recovery.py [keys ...]  (default 10000 1000000)
Builds weir in release mode unless WEIR names a binary; needs python3 with
venv (moto is installed into target/moto-venv, as the tests do).
"""

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIR = os.environ.get("WEIR") or os.path.join(ROOT, "target/release/weir")
VENV = os.path.join(ROOT, "target/moto-venv")
T0 = datetime.datetime(2026, 1, 1)


def moto():
    server = os.path.join(VENV, "bin/moto_server")
    if not os.path.exists(server):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([os.path.join(VENV, "bin/pip"), "install", "-q", "moto[server]==5.2.6"], check=True)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/bench", method="PUT"))
    env = {"AWS_ENDPOINT": f"http://127.0.0.1:{port}", "AWS_ALLOW_HTTP": "true",
           "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    return proc, env


def stamp(seconds):
    return (T0 + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def job(dir, checkpoints):
    at = f"SET 'state.checkpoints.dir' = '{checkpoints}';\n" if checkpoints else ""
    return f"""SET 'execution.checkpointing.interval' = '1 s';
{at}CREATE TABLE t (k VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'filesystem', 'path' = '{dir}/in', 'format' = 'json');
CREATE TABLE out (window_start TIMESTAMP(3), k VARCHAR, c BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{dir}/out', 'format' = 'json');
INSERT INTO out SELECT window_start, k, count(*) AS c
FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' HOUR)) GROUP BY window_start, window_end, k;
"""


def spawn(dir, env, lines):
    proc = subprocess.Popen([WEIR, "run", os.path.join(dir, "job.sql")], cwd=dir,
                            env={**os.environ, **env, "WEIR_LOG": "warn,weir_engine::checkpoint=debug"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def read():
        for line in proc.stderr:
            lines.append((time.monotonic(), re.sub(r"\x1b\[[0-9;]*m", "", line)))
    threading.Thread(target=read, daemon=True).start()
    return proc


def wait(lines, pattern, start, limit=600):
    deadline = time.monotonic() + limit
    seen = 0
    while time.monotonic() < deadline:
        while seen < len(lines):
            at, line = lines[seen]
            seen += 1
            m = re.search(pattern, line)
            if m and at >= start:
                return at, m
        time.sleep(0.005)
    raise SystemExit(f"no line matching {pattern!r}:\n" + "".join(l for _, l in lines[-20:]))


def measure(keys, checkpoints, env):
    with tempfile.TemporaryDirectory() as dir:
        os.mkdir(f"{dir}/in")
        with open(f"{dir}/in/a.json", "w") as f:
            for i in range(keys):
                f.write(json.dumps({"k": f"key-{i}", "ts": stamp(i * 3000 / keys)}) + "\n")
        os.mkfifo(f"{dir}/in/zz.pipe")
        with open(f"{dir}/job.sql", "w") as f:
            f.write(job(dir, checkpoints))
        lines = []
        first = spawn(dir, env, lines)
        # The whole state is in a checkpoint once one writes (almost)
        # nothing new after some that wrote chunks.
        start, wrote, state = time.monotonic(), False, 0
        while True:
            at, m = wait(lines, r"checkpoint complete.*bytes=(\d+)", start)
            start = at + 1e-6
            big = int(m.group(1)) > 64 * 1024
            if wrote and not big:
                break
            wrote |= big
            state += int(m.group(1))
        first.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        first.wait()
        lines.clear()
        second = spawn(dir, env, lines)
        resumed, _ = wait(lines, r"resumed from checkpoint", killed)
        with open(f"{dir}/in/zz.pipe", "w") as pipe:
            pipe.write(json.dumps({"k": "late", "ts": stamp(7200)}) + "\n")
        os.makedirs(f"{dir}/out", exist_ok=True)
        while not any(n.startswith("part-") for n in os.listdir(f"{dir}/out")):
            time.sleep(0.005)
        output = time.monotonic()
        second.wait()
        rows = sum(1 for n in os.listdir(f"{dir}/out") if n.startswith("part-")
                   for _ in open(f"{dir}/out/{n}"))
        assert rows >= keys, f"{rows} rows for {keys} keys"
        return state, resumed - killed, output - killed


def main():
    keys = [int(k) for k in sys.argv[1:]] or [10_000, 1_000_000]
    if "WEIR" not in os.environ:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "weir", "--bin", "weir"], cwd=ROOT, check=True)
    server, env = moto()
    try:
        print(f"{'keys':>9} {'state MB':>9} {'store':>6} {'resumed s':>10} {'first output s':>15}")
        for n in keys:
            for name, checkpoints, e in [("local", "", {}), ("s3", "s3://bench/ckpt", env)]:
                state, resumed, output = measure(n, checkpoints, e)
                print(f"{n:>9} {state / 1e6:>9.1f} {name:>6} {resumed:>10.2f} {output:>15.2f}", flush=True)
    finally:
        server.kill()


if __name__ == "__main__":
    main()
