"""Many writers at once: N processes x M `gemini-flow memory store` each, all on one database.

    python benchmarks/writers.py [--processes 64] [--stores 10] [--busy-timeout 10] [--no-queue]

Each of --processes worker processes runs --stores `gemini-flow memory store` commands one after
the other (a new process per store, as agents do), all starting together. Prints:
- failures (non-zero exits, with their messages) out of processes x stores;
- latency of one store command, process start-up included: p50, p99, max;
- the longest time one writer held the write lock (BEGIN IMMEDIATE to COMMIT), and the
  longest a writer waited for it, from GEMINI_FLOW_LOCK_LOG;
- the floor, measured in the same run: the same number of processes each running the same number
  of `python -c` stores with raw sqlite3 (WAL, synchronous=FULL, BEGIN IMMEDIATE, SQLite's own busy
  handler with the same timeout): its failures and latencies.
--no-queue runs gemini-flow without its writers' queue (GEMINI_FLOW_NO_WRITER_QUEUE=1: the
BEGIN IMMEDIATE retry loop alone), for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RAW_STORE = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=float(sys.argv[4]), isolation_level=None)
conn.execute("PRAGMA synchronous=FULL")
conn.execute("BEGIN IMMEDIATE")
now = int(time.time())
conn.execute(
    "INSERT INTO memory_store (key, value, namespace, created_at, updated_at, size_bytes) "
    "VALUES (?, ?, 'default', ?, ?, ?) ON CONFLICT (key, namespace) DO UPDATE SET value = excluded.value",
    (sys.argv[2], sys.argv[3], now, now, len(sys.argv[3])),
)
conn.execute("COMMIT")
"""


def gemini_flow() -> list[str]:
    script = Path(sys.executable).with_name("gemini-flow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gemini_flow_cli"]


def worker(argv_for, stores: int, start_at: float) -> list[tuple[float, int, str]]:
    """One process's stores, one after the other: (seconds, exit status, stderr) each."""
    while time.time() < start_at:
        time.sleep(0.001)
    out = []
    for i in range(stores):
        began = time.perf_counter()
        done = subprocess.run(argv_for(i), capture_output=True, text=True)
        out.append((time.perf_counter() - began, done.returncode, done.stderr.strip()))
    return out


def run(label: str, processes: int, stores: int, argv_for_worker, env: dict) -> list[tuple[float, int, str]]:
    os.environ.update(env)
    start_at = time.time() + 1.0
    with ThreadPoolExecutor(processes) as pool:
        futures = [pool.submit(worker, argv_for_worker(p), stores, start_at) for p in range(processes)]
        results = [r for f in futures for r in f.result()]
    for name in env:
        os.environ.pop(name, None)
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def report(label: str, results: list[tuple[float, int, str]]) -> None:
    times = [t for t, _, _ in results]
    failures = [(code, err) for _, code, err in results if code != 0]
    print(f"{label}: {len(failures)} failures of {len(results)}; latency p50 {statistics.median(times) * 1000:.0f} ms, "
          f"p99 {percentile(times, 0.99) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    for code, err in failures[:5]:
        print(f"    exit {code}: {err.splitlines()[-1] if err else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=64)
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--busy-timeout", type=float, default=10.0)
    parser.add_argument("--no-queue", action="store_true")
    parser.add_argument("--skip-floor", action="store_true")
    args = parser.parse_args()
    print(f"{args.processes} processes x {args.stores} stores, busy timeout {args.busy_timeout:g} s, "
          f"{os.cpu_count()} CPUs (load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())})")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / ".hive-mind" / "hive.db"
        subprocess.run([*gemini_flow(), "--db", str(db), "memory", "store", "warm-up", "1"], check=True,
                       capture_output=True)
        lock_log = folder / "locks.log"
        env = {"GEMINI_FLOW_LOCK_LOG": str(lock_log)}
        if args.no_queue:
            env["GEMINI_FLOW_NO_WRITER_QUEUE"] = "1"

        def cli_argv(p):
            return lambda i: [*gemini_flow(), "--db", str(db), "--busy-timeout", str(args.busy_timeout),
                              "memory", "store", f"w{p}-{i}", f'{{"worker": {p}, "store": {i}}}']

        results = run("gemini-flow", args.processes, args.stores, cli_argv, env)
        report("gemini-flow memory store" + (" (no queue)" if args.no_queue else ""), results)
        waits, holds = [], []
        for line in lock_log.read_text().splitlines():
            waited, held = map(float, line.split())
            waits.append(waited)
            holds.append(held)
        if holds:
            print(f"    write lock held: median {statistics.median(holds) * 1000:.1f} ms, "
                  f"longest {max(holds) * 1000:.0f} ms; waited for it (queue + BEGIN IMMEDIATE): median {statistics.median(waits) * 1000:.0f} ms, "
                  f"longest {max(waits) * 1000:.0f} ms ({len(holds)} writes)")
        if not args.skip_floor:
            def raw_argv(p):
                return lambda i: [sys.executable, "-c", RAW_STORE, str(db), f"raw{p}-{i}",
                                  f'{{"worker": {p}, "store": {i}}}', str(args.busy_timeout)]

            floor = run("raw", args.processes, args.stores, raw_argv, {})
            report("floor: raw sqlite3 (python -c, SQLite's busy handler)", floor)
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (the machine may be shared)")


if __name__ == "__main__":
    main()
