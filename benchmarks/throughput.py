"""Bulk memory throughput and search latency, against raw sqlite3 on the same schema.

    .venv/bin/python benchmarks/throughput.py            # 1,000,000 records
    .venv/bin/python benchmarks/throughput.py 200000     # a smaller run

Prints, all from one run on this machine:
- batch store of N records through MemoryManager.batch_store vs raw sqlite3 executemany of the
  same upserts into the same schema (same pragmas, one transaction): records/s and the ratio;
- `gemini-flow memory export` and `memory import` of the same records as JSON Lines
  (records/s, and the importing process's peak RSS);
- search latency (median of repeated runs) over the N keys: literal prefix, namespace-scoped
  pattern, and --text with the FTS5 index (plus the index build time).
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gemini_flow_cli.core import fts  # noqa: E402
from gemini_flow_cli.core.db import Database  # noqa: E402
from gemini_flow_cli.core.memory import (  # noqa: E402
    _ENCODER, _TAGS_ENCODER, BULK_CACHE_KIB, INSERT_SQL, UPSERT_UNOWNED_SQL, MemoryManager,
)

CHUNK = 20_000
ROUNDS = 2
GEMINI_FLOW = Path(sys.executable).with_name("gemini-flow")


def records(n: int) -> list[dict]:
    """Keys agent-{a}/note-{i}, ~80-byte JSON values, 10 namespaces, two tags each."""
    out = []
    agents = max(1, n // 1000)
    for j in range(n):
        a, i = j % agents, j // agents
        out.append({
            "key": f"agent-{a}/note-{i}",
            "namespace": f"ns-{(a * 7 + i) % 10}",
            "value": {"agent": a, "note": i, "topic": f"topic{j % 997}", "text": "observed state ok", "v": j % 7},
            "tags": ["note", f"agent-{a}"],
        })
    return out


def raw_sqlite(path: Path, items: list[dict]) -> float:
    """The same writes with nothing but sqlite3: serialise, executemany in chunks, one transaction.

    The statement batch_store itself runs: a plain INSERT into a new database, the upsert
    (without owner columns) into one that holds the keys."""
    sql = INSERT_SQL if not path.exists() else UPSERT_UNOWNED_SQL
    if not path.exists():
        db = Database.open(path)
        with db.write():  # the first write applies the schema: the same tables and indexes
            pass
        db.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")  # the same page cache batch_store uses
    started = time.perf_counter()
    now = int(time.time())
    conn.execute("BEGIN IMMEDIATE")
    for start in range(0, len(items), CHUNK):
        rows = []
        for item in items[start:start + CHUNK]:
            text = _ENCODER.encode(item["value"])
            rows.append((item["key"], text, item["namespace"], None, None, None, now, now,
                         len(text.encode("utf-8")), _TAGS_ENCODER.encode(item["tags"]), 0))
        conn.executemany(sql, rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def api_batch(path: Path, items: list[dict]) -> float:
    db = Database.open(path)
    manager = MemoryManager(db)
    started = time.perf_counter()
    manager.batch_store(items)
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def timed_ms(fn, repeat: int = 15) -> float:
    fn()  # warm the cache
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


# Measured from a small launcher process: a child forked straight from this (large) benchmark
# process would report this process's resident memory as its own peak.
_LAUNCHER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(usage.ru_maxrss)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def cli(*args: str) -> int:
    """Run gemini-flow; returns that one process's peak RSS in KiB."""
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(GEMINI_FLOW), *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"gemini-flow {' '.join(args)} failed: {done.stderr}")
    return int(done.stdout.split()[-1])


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    folder = Path(tempfile.mkdtemp(prefix="gf-bench-"))
    try:
        print(f"records: {n:,}  (sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]})")
        items = records(n)
        # Alternate the two, each into a fresh database, so that load from other processes on the
        # machine falls on both alike; the best round of each is compared.
        raw_runs, api_runs = [], []
        for round_ in range(ROUNDS):
            for name, runs, fn in (("raw", raw_runs, raw_sqlite), ("api", api_runs, api_batch)):
                path = folder / f"{name}-{round_}.db"
                runs.append(fn(path, items))
                print(f"   round {round_ + 1} {name}: {runs[-1]:7.2f} s", flush=True)
        raw_s, api_s = min(raw_runs), min(api_runs)
        print(f"raw sqlite3 executemany upserts : {raw_s:7.2f} s  {n / raw_s:10,.0f} rec/s")
        print(f"MemoryManager.batch_store       : {api_s:7.2f} s  {n / api_s:10,.0f} rec/s")
        print(f"ratio (api / raw throughput)    : {raw_s / api_s:7.3f}   (target >= 0.85)")
        # The same again into databases that already hold every key (the upsert's update path).
        raw_u = raw_sqlite(folder / "raw-0.db", items)
        api_u = api_batch(folder / "api-0.db", items)
        print(f"update path: raw {n / raw_u:,.0f} rec/s, api {n / api_u:,.0f} rec/s, ratio {raw_u / api_u:.3f}")
        del items

        db_path = folder / "api-0.db"
        export_path = folder / "export.jsonl"
        started = time.perf_counter()
        peak = cli("--db", str(db_path), "memory", "export", "-o", str(export_path))
        export_s = time.perf_counter() - started
        print(f"memory export (CLI)             : {export_s:7.2f} s  {n / export_s:10,.0f} rec/s  "
              f"({export_path.stat().st_size / 1e6:,.0f} MB, peak RSS {peak / 1024:,.0f} MB)")
        started = time.perf_counter()
        peak = cli("--db", str(folder / "imported.db"), "memory", "import", str(export_path))
        import_s = time.perf_counter() - started
        print(f"memory import (CLI)             : {import_s:7.2f} s  {n / import_s:10,.0f} rec/s  "
              f"peak RSS {peak / 1024:,.0f} MB (target <= 150 MB)")

        db = Database.open(db_path)
        manager = MemoryManager(db)
        searches = [
            ("'agent-42/*' (all namespaces)", lambda: manager.search("agent-42/*"), "target <= 20 ms"),
            ("-n ns-3 'agent-42/*'", lambda: manager.search("agent-42/*", namespace="ns-3"), "target <= 20 ms"),
            ("-n ns-3 'agent-7*'", lambda: manager.search("agent-7*", namespace="ns-3"), "broad prefix"),
            ("-n ns-3 '*/note-7'", lambda: manager.search("*/note-7", namespace="ns-3"), "no prefix"),
        ]

        def run_searches(label: str) -> None:
            print(f"-- search, {label}")
            for name, fn, note in searches:
                print(f"   {name:32}: {timed_ms(fn):8.2f} ms  total={fn()['total']:<7} ({note})")

        run_searches("schema 1.0.9: idx_memory_namespace_key (namespace, key)")
        # The same searches on the seed's own memory indexes, which 1.0.9 replaced: the figures
        # that justify that migration (CLI.md §5).
        with db.write() as conn:
            conn.execute("CREATE INDEX idx_memory_key ON memory_store(key, namespace)")
            conn.execute("CREATE INDEX idx_memory_namespace ON memory_store(namespace)")
            conn.execute("DROP INDEX idx_memory_namespace_key")
        run_searches("the seed's indexes (idx_memory_key, idx_memory_namespace)")
        with db.write() as conn:
            conn.execute("CREATE INDEX idx_memory_namespace_key ON memory_store(namespace, key)")
            conn.execute("DROP INDEX idx_memory_key")
            conn.execute("DROP INDEX idx_memory_namespace")
        started = time.perf_counter()
        fts.enable(db)
        print(f"fts enable (index build)        : {time.perf_counter() - started:7.2f} s")
        text_ms = timed_ms(lambda: manager.search(text="topic123", limit=10))
        result = manager.search(text="topic123", limit=10)
        print(f"search --text topic123          : {text_ms:7.2f} ms  total={result['total']}  (target <= 50 ms)")
        text2 = timed_ms(lambda: manager.search(text="topic123 agent", limit=10))
        print(f"search --text 'topic123 agent'  : {text2:7.2f} ms")
        db.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
