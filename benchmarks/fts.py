"""The full-text index on both backends: building it, searching with it, and what it costs writes.

    .venv/bin/python benchmarks/fts.py [--pg URL] [--entries 100000] [--writes 20000] [--searches 21]

--pg is a PostgreSQL database where we may create a schema (default: $GEMINI_FLOW_BENCH_PG, else
postgresql://postgres@127.0.0.1:55432/postgres); the run uses a fresh schema there, dropped at the
end, and a fresh SQLite file in a temp folder. For each backend, through the core:

1. ``batch_store`` of --entries entries (~80-byte text values, benchmarks/throughput.py's shape),
   then of --writes more without the index: records/s;
2. ``fts.enable`` over them: seconds;
3. ``search(text=...)`` of a rare word (one match), a common word (1% of the entries) and a
   two-word query, limit 10: the median of --searches, in ms;
4. ``batch_store`` of --writes new entries with the index on: records/s, and its ratio to the
   same number of writes without it (step 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from gemini_flow_cli.core import fts  # noqa: E402
from gemini_flow_cli.core.db import Database  # noqa: E402
from gemini_flow_cli.core.memory import MemoryManager  # noqa: E402

DEFAULT_PG = "postgresql://postgres@127.0.0.1:55432/postgres"


def items(start: int, count: int):
    for n in range(start, start + count):
        yield {"key": f"agent-{n % 97}/note-{n}", "namespace": f"ns-{n % 10}",
               "value": f"topic{n % 100} step {n} of the rollout, agent {n % 97} reports word{n} done"}


def rate(manager: MemoryManager, start: int, count: int) -> float:
    started = time.perf_counter()
    manager.batch_store(items(start, count))
    return count / (time.perf_counter() - started)


def measure(db, entries: int, writes: int, searches: int) -> dict[str, float]:
    manager = MemoryManager(db)
    out: dict[str, float] = {}
    out["store rec/s (no index)"] = rate(manager, 0, entries)
    out[f"{writes} more, no index: rec/s"] = rate(manager, entries, writes)
    started = time.perf_counter()
    fts.enable(db)
    out["fts enable, s"] = time.perf_counter() - started
    for label, text in (("rare word", f"word{entries // 2}"), ("common word (1%)", "topic42"),
                        ("two words", "topic42 agent")):
        times = []
        for _ in range(searches):
            started = time.perf_counter()
            result = manager.search(text=text, limit=10)
            times.append((time.perf_counter() - started) * 1000)
        assert result["total"] > 0, (label, result["total"])
        out[f"search {label}, ms"] = statistics.median(times)
    out[f"{writes} more, index on: rec/s"] = rate(manager, entries + writes, writes)
    out["write ratio (on / off)"] = out[f"{writes} more, index on: rec/s"] / out[f"{writes} more, no index: rec/s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("GEMINI_FLOW_BENCH_PG", DEFAULT_PG))
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=20_000)
    parser.add_argument("--searches", type=int, default=21)
    args = parser.parse_args()

    import psycopg

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        db = Database.open(Path(folder) / "hive.db")
        try:
            results["sqlite"] = measure(db, args.entries, args.writes, args.searches)
        finally:
            db.close()
    schema = f"bench_fts_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        joiner = "&" if "?" in args.pg else "?"
        db = Database.open(f"{args.pg}{joiner}options=-csearch_path%3D{schema}")
        try:
            results["postgresql"] = measure(db, args.entries, args.writes, args.searches)
        finally:
            db.close()
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    print(f"{'measurement':36} {'SQLite':>12} {'PostgreSQL':>12}")
    for name in results["sqlite"]:
        print(f"{name:36} {results['sqlite'][name]:12.2f} {results['postgresql'][name]:12.2f}")


if __name__ == "__main__":
    main()
