"""Hooks: what events cost a write when no hook listens, and what a hook run costs.

    python benchmarks/hooks.py [--stores 2000] [--runs 50] [--rounds 5]

Prints, each a median of --rounds rounds, beside a floor measured in the same run:
- the per-transaction question "does a hook listen?" (one indexed SELECT on `hooks`) next to the
  cheapest statement SQLite runs (`SELECT 1`), in microseconds;
- in-process `memory store` (synchronous=NORMAL, so the disk's flush does not drown the figure),
  ms per store: no hooks at all; an enabled hook on another event (the question is asked, no event
  is built); a hook on memory.store whose condition is false (the event is built and recorded, the
  condition evaluated after the commit, no process started);
- one hook run after the commit (`true` with the event on stdin, through core/hooks.fire) next to
  `subprocess.run(["true"])` alone, in ms: what the hook machinery adds to starting a process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gemini_flow_cli.core import hooks  # noqa: E402
from gemini_flow_cli.core.db import Database  # noqa: E402
from gemini_flow_cli.core.memory import MemoryManager  # noqa: E402


def median(values: list[float]) -> float:
    return statistics.median(values)


def fresh(folder: Path, name: str) -> Database:
    return Database.open(folder / name / "hive.db", synchronous="normal")


def manager(db: Database) -> MemoryManager:
    return MemoryManager(db, namespace="default", max_value_size=1 << 20, auto_encrypt_patterns=[], cipher=None)


def add_hook(db: Database, key: bytes, event: str, run: str, condition: str | None = None) -> None:
    hooks.add(db, event, run, key=key, condition=condition)


def per_store(db: Database, count: int, prefix: str) -> float:
    memory = manager(db)
    started = time.perf_counter()
    for i in range(count):
        memory.store(f"{prefix}{i}", i)
    elapsed = (time.perf_counter() - started) * 1000 / count
    db.events.clear()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gf-hooks-bench-"))
    key = hooks.ensure_key(folder / "hooks.key")

    # 1. the question each write transaction asks
    db = fresh(folder, "question")
    add_hook(db, key, "task.failed", "true")
    asked, floor = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for _ in range(10_000):
            db._listened = None
            db.listens("memory.store")
        asked.append((time.perf_counter() - started) * 1e6 / 10_000)
        started = time.perf_counter()
        for _ in range(10_000):
            db.conn.execute("SELECT 1").fetchone()
        floor.append((time.perf_counter() - started) * 1e6 / 10_000)
    db.close()
    print(f"does a hook listen? {median(asked):.2f} us per write transaction "
          f"(floor: SELECT 1, {median(floor):.2f} us)")

    # 2. memory store with no hook / a hook on another event / a false condition (rounds interleaved)
    cases = {"no hooks": [], "a hook on another event": [], "memory.store hook, condition false": []}
    dbs = {name: fresh(folder, f"store-{i}") for i, name in enumerate(cases)}
    add_hook(dbs["a hook on another event"], key, "task.failed", "true")
    add_hook(dbs["memory.store hook, condition false"], key, "memory.store", "true", 'namespace == "never"')
    quiet: list[str] = []
    for round_ in range(args.rounds):
        for name, db in dbs.items():
            memory = manager(db)
            started = time.perf_counter()
            for i in range(args.stores):
                memory.store(f"r{round_}-{i}", i)
            recorded, db.events = db.events, []
            hooks.fire(db, recorded, key=key, environ=os.environ, warn=quiet.append)
            cases[name].append((time.perf_counter() - started) * 1000 / args.stores)
    for db in dbs.values():
        db.close()
    base = median(cases["no hooks"])
    for name, values in cases.items():
        print(f"memory store, {name}: {median(values):.4f} ms per store ({median(values) / base:.2f}x no hooks)")

    # 3. one hook run next to starting the same process
    db = fresh(folder, "runs")
    add_hook(db, key, "memory.store", "true")
    fired, spawned = [], []
    for round_ in range(args.rounds):
        recorded = [("memory.store", {"key": f"k{i}", "namespace": "default"}) for i in range(args.runs)]
        started = time.perf_counter()
        summary = hooks.fire(db, recorded, key=key, environ=os.environ, warn=quiet.append)
        fired.append((time.perf_counter() - started) * 1000 / summary["runs"])
        started = time.perf_counter()
        for _ in range(args.runs):
            subprocess.run(["true"], input=b"{}\n", capture_output=True)
        spawned.append((time.perf_counter() - started) * 1000 / args.runs)
    db.close()
    print(f"one hook run (true, event on stdin, counts recorded): {median(fired):.2f} ms "
          f"(floor: subprocess.run(['true']), {median(spawned):.2f} ms)")
    if quiet:
        print(f"warnings: {quiet[:3]}")


if __name__ == "__main__":
    main()
