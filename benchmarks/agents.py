"""Benchmark: spawning agents and listing them.

    .venv/bin/python benchmarks/agents.py [--agents 10000] [--cli-spawns 1000] [--processes 20]

Measures, on a fresh database file (WAL, synchronous=FULL, the defaults):

1. 10,000 spawns through the Python API, one transaction each (`agents.spawn`), and the same number
   in one transaction (`agents.spawn_many`); raw sqlite3 inserts of the same rows, one transaction
   each, for the ratio.
2. `gemini-flow agent spawn` run by 20 concurrent lanes of CLI processes: wall time per spawn
   (throughput) and the median latency of one invocation; then one process at a time, beside the
   start-up cost of `gemini-flow --version`.
3. `gemini-flow agent list --json` over the 10,000 agents (median of 3 runs).

Seed figures to beat: agent spawn 78 ms; 10K agents spawn 3.2 s.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gemini_flow_cli.core import agent_types, agents
from gemini_flow_cli.core.db import Database

_SCRIPT = Path(sys.executable).with_name("gemini-flow")
GEMINI_FLOW = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gemini_flow_cli"]
TYPES = list(agent_types.AGENT_TYPES)


def api_single(path: Path, n: int) -> float:
    with Database.open(path) as db:
        start = time.perf_counter()
        for i in range(n):
            agents.spawn(db, TYPES[i % len(TYPES)], capabilities=["python"])
        return time.perf_counter() - start


def api_bulk(path: Path, n: int) -> float:
    with Database.open(path) as db:
        start = time.perf_counter()
        agents.spawn_many(db, [{"type": TYPES[i % len(TYPES)], "capabilities": ["python"]} for i in range(n)])
        return time.perf_counter() - start


def raw_sqlite(path: Path, n: int) -> float:
    with Database.open(path) as db:  # the schema
        with db.write():
            pass
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO agents (id, name, type, status, capabilities, created_at, last_activity) "
            "VALUES (?, ?, ?, 'active', '[\"python\"]', 0, 0)",
            (f"agent-{i}", f"{TYPES[i % len(TYPES)]}-{i}", TYPES[i % len(TYPES)]),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def cli_spawns(path: Path, total: int, lanes: int) -> tuple[float, float]:
    env = {**os.environ, "GEMINI_FLOW_DB": str(path)}
    latencies: list[float] = []

    def lane(index: int) -> None:
        for i in range(index, total, lanes):
            start = time.perf_counter()
            proc = subprocess.run(
                [*GEMINI_FLOW, "--json", "agent", "spawn", "--type", TYPES[i % len(TYPES)]],
                capture_output=True, env=env,
            )
            latencies.append(time.perf_counter() - start)
            if proc.returncode:
                raise SystemExit(f"spawn failed: {proc.stderr.decode()}")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=lanes) as pool:
        list(pool.map(lane, range(lanes)))
    return time.perf_counter() - start, statistics.median(latencies)


def cli_serial(path: Path, runs: int = 20) -> tuple[float, float]:
    """Median wall time of one `agent spawn` alone, and of `--version` (the interpreter's start-up)."""
    env = {**os.environ, "GEMINI_FLOW_DB": str(path)}

    def median_of(argv):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, env=env, check=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return median_of([*GEMINI_FLOW, "--json", "agent", "spawn", "--type", "coder"]), median_of([*GEMINI_FLOW, "--version"])


def cli_list(path: Path, runs: int = 3) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run([*GEMINI_FLOW, "--db", str(path), "--json", "agent", "list"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
        size = len(proc.stdout)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--cli-spawns", type=int, default=1_000)
    parser.add_argument("--processes", type=int, default=20)
    args = parser.parse_args()
    n = args.agents
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        single = api_single(tmp / "single.db", n)
        print(f"API spawn, one transaction each: {n} agents in {single:.2f} s = {single / n * 1000:.3f} ms/spawn")
        bulk = api_bulk(tmp / "bulk.db", n)
        print(f"API spawn_many, one transaction:  {n} agents in {bulk:.2f} s = {bulk / n * 1000:.3f} ms/agent")
        raw = raw_sqlite(tmp / "raw.db", n)
        print(f"raw sqlite3 INSERT, one transaction each: {raw:.2f} s; API/raw = {single / raw:.1f}x")
        wall, median = cli_spawns(tmp / "single.db", args.cli_spawns, args.processes)
        print(
            f"CLI spawn, {args.processes} concurrent lanes: {args.cli_spawns} spawns in {wall:.2f} s = "
            f"{wall / args.cli_spawns * 1000:.1f} ms/spawn wall; median invocation {median * 1000:.0f} ms"
        )
        alone, startup = cli_serial(tmp / "single.db")
        print(f"CLI spawn, one process at a time: median {alone * 1000:.0f} ms (`--version` alone: {startup * 1000:.0f} ms)")
        listing, size = cli_list(tmp / "single.db")
        total = n + args.cli_spawns + 20
        print(f"CLI agent list --json over {total} agents: {listing:.2f} s ({size / 1e6:.1f} MB)")
    print("seed: agent spawn 78 ms; 10K agents spawn 3.2 s")


if __name__ == "__main__":
    main()
