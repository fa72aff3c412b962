"""The change feed's costs: watch latency, and batch throughput with and without the feed.

    .venv/bin/python benchmarks/watch.py              # 200 latency samples, 100,000-record batches
    .venv/bin/python benchmarks/watch.py 100 50000    # a smaller run

Prints, all from one run on this machine:
- latency from a write's commit (MemoryManager.store returned) to its line on a watcher's stdout,
  p50/p99 in ms, for `gemini-flow memory watch` (PRAGMA data_version, 2 ms backing off to 50 ms)
  and, in the same run, the same follower waking by two other mechanisms: polling the feed's
  MAX(revision) and watching the -wal file's size and mtime (same backoff), so the choice is
  measured, not assumed. Writes are spaced 20-80 ms apart, as agents' writes are;
- `MemoryManager.batch_store` of N records into a fresh database, with the feed (one change per
  record) and without it (the same upserts, no change rows), alternating, medians of 3 rounds;
  the ratio must stay >= 0.9.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gemini_flow_cli.core import changes  # noqa: E402
from gemini_flow_cli.core.db import Database  # noqa: E402
from gemini_flow_cli.core.memory import INSERT_SQL, MemoryManager  # noqa: E402

GEMINI_FLOW = Path(sys.executable).with_name("gemini-flow")

# A follower with another way of noticing commits (argv: db, count, mechanism).
FOLLOWER = r"""
import os, sys, json
sys.path.insert(0, sys.argv[4])
from gemini_flow_cli.core import changes
from gemini_flow_cli.core.db import Database
from gemini_flow_cli.core.waiting import Waiter
db_path, count, mechanism = sys.argv[1], int(sys.argv[2]), sys.argv[3]
db = Database.open(db_path, create=False)
class Other(Waiter):
    def _version(self):
        if mechanism == "table":
            return self.db.conn.execute("SELECT MAX(revision) FROM memory_changes").fetchone()[0]
        st = os.stat(db_path + "-wal")
        return (st.st_size, st.st_mtime_ns)
start = changes.start_revision(db, None)
print("ready", flush=True)
for event in changes.follow(db, start, count=count, waiter=Other(db)):
    sys.stdout.write(json.dumps(event) + "\n"); sys.stdout.flush()
"""


def latency(db_path: Path, samples: int, command: list[str]) -> list[float]:
    watcher = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1)
    seen: dict[int, float] = {}
    ready = threading.Event()

    def read() -> None:
        for line in watcher.stdout:
            if line.startswith("ready"):
                ready.set()
                continue
            seen[json.loads(line)["revision"]] = time.perf_counter()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    db = Database.open(db_path)
    manager = MemoryManager(db)
    ready.wait(5) if "ready" in " ".join(command) or command[0] == sys.executable else None
    time.sleep(1.0)  # the CLI watcher has started and read its start revision
    committed: dict[int, float] = {}
    for n in range(samples):
        time.sleep(random.uniform(0.02, 0.08))
        manager.store(f"k{n % 10}", n)
        committed[changes.current_revision(db.conn)] = time.perf_counter()
    watcher.wait(timeout=60)
    reader.join(5)
    db.close()
    return [(seen[r] - t) * 1000 for r, t in committed.items() if r in seen]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class WithoutFeed(MemoryManager):
    """The batch path without the change feed: the same statement batch_store runs for new
    entries (a plain INSERT since issue 20; the benchmark's entries are all new), no change rows."""

    def _store_rows(self, conn, rows, per_namespace, checked):
        conn.executemany(INSERT_SQL, rows)
        for row in rows:
            per_namespace[row[2]] = per_namespace.get(row[2], 0) + 1
        return len(rows)


def items(n: int) -> list[dict]:
    return [{"key": f"agent-{j % 100}/note-{j}", "namespace": f"ns-{j % 10}",
             "value": {"note": j, "text": "observed state ok", "topic": f"t{j % 97}"}, "tags": ["note"]}
            for j in range(n)]


def batch_seconds(cls, folder: Path, data: list[dict], name: str) -> float:
    path = folder / f"{name}.db"
    db = Database.open(path)
    with db.write():
        pass
    started = time.process_time()
    cls(db).batch_store(data)
    elapsed = time.process_time() - started
    db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return elapsed


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    root = str(Path(__file__).resolve().parents[1])
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db_path = folder / "watch.db"
        db = Database.open(db_path)
        MemoryManager(db).store("seed", 0)
        db.close()
        print(f"\nwatch latency, commit -> line on the watcher's stdout ({samples} writes, 20-80 ms apart)")
        runs = {
            "memory watch (data_version)": [str(GEMINI_FLOW), "--db", str(db_path), "memory", "watch",
                                            "--count", str(samples)],
            "poll MAX(revision)": [sys.executable, "-c", FOLLOWER, str(db_path), str(samples), "table", root],
            "stat the -wal file": [sys.executable, "-c", FOLLOWER, str(db_path), str(samples), "wal", root],
        }
        for name, command in runs.items():
            values = latency(db_path, samples, command)
            print(f"  {name:30s} p50 {pct(values, 50):6.1f} ms   p99 {pct(values, 99):6.1f} ms   ({len(values)} seen)")

        data = items(n)
        with_feed, without = [], []
        for round_ in range(5):
            without.append(batch_seconds(WithoutFeed, folder, data, f"without{round_}"))
            with_feed.append(batch_seconds(MemoryManager, folder, data, f"with{round_}"))
        a, b = statistics.median(with_feed), statistics.median(without)
        print(f"\nbatch_store of {n:,} records into a fresh database (median of 5, alternating)")
        print(f"  with the change feed     {n / a:10,.0f} records/s")
        print(f"  without (floor)          {n / b:10,.0f} records/s")
        print(f"  ratio                    {b / a:10.2f}x  (must be >= 0.9)")


if __name__ == "__main__":
    main()
