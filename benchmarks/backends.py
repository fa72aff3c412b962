"""The same benchmarks on the SQLite and the PostgreSQL backend, side by side in one run.

    .venv/bin/python benchmarks/backends.py [--pg URL] [--runs 15] [--stores 20000] [--rounds 3]
                                            [--tasks 300] [--workers 8] [--quick]

--pg is a server where we may CREATE DATABASE (default: $GEMINI_FLOW_BENCH_PG, else
postgresql://postgres@127.0.0.1:55432/postgres); each measurement gets a fresh database there,
dropped at the end, and a fresh SQLite file in a private (0700) temp folder. Measured:

1. cold `gemini-flow memory store` and `memory retrieve` processes: the median of --runs, the
   backends alternating run by run (and which goes first alternating too), so that a change of
   the machine's load weighs on both alike; beside them the floor of each backend, a plain
   `python -c` that opens the same database with its driver (sqlite3, psycopg) and selects the row;
2. `gemini-flow memory batch` of --stores stores as JSON Lines on stdin (the records of
   benchmarks/batch.py): stores/s, the median of --rounds rounds, each into a fresh database,
   the backends alternating; every round checks that all the rows are there;
3. claims: --tasks tasks made up front through the core (tasks.orchestrate, in one transaction,
   as benchmarks/coordination.py does), then --workers loops of `gemini-flow task claim --agent A`
   processes until nothing is left: claims/s, and the number of tasks claimed twice (must be 0).

Prints one table: backend, measurement, median, and the ratio PostgreSQL / SQLite of the figure
(of a time: above 1 means PostgreSQL is slower; of a rate: above 1 means PostgreSQL is faster).
A PostgreSQL (or SQLite) command that exits non-zero is reported with its command line, exit
status and stderr, and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from batch import records  # noqa: E402  the same JSON Lines records as benchmarks/batch.py
from coordination import make_swarm  # noqa: E402  the same agents and swarm as benchmarks/coordination.py

from gemini_flow_cli.core import tasks  # noqa: E402
from gemini_flow_cli.core.db import Database  # noqa: E402

DEFAULT_PG = "postgresql://postgres@127.0.0.1:55432/postgres"
BACKENDS = ("sqlite", "postgresql")
FAILURES: list[str] = []


def gemini_flow() -> list[str]:
    script = Path(sys.executable).with_name("gemini-flow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gemini_flow_cli"]


def failed(argv: list[str], result: subprocess.CompletedProcess) -> None:
    err = result.stderr if isinstance(result.stderr, str) else result.stderr.decode(errors="replace")
    FAILURES.append(f"$ {' '.join(argv)}\n  exit {result.returncode}\n  stderr: {err.strip()[-2000:]}")


class Places:
    """Fresh databases: SQLite files in private folders, PostgreSQL databases on the server."""

    def __init__(self, pg: str):
        self.pg = pg
        self.tmp = Path(tempfile.mkdtemp(prefix="gf-backends-"))
        self.made: list[str] = []
        self.n = 0

    def fresh(self, backend: str, label: str) -> str:
        self.n += 1
        if backend == "sqlite":
            folder = self.tmp / f"{label}-{self.n}"
            folder.mkdir(mode=0o700)
            return str(folder / "hive.db")
        name = f"bench_{os.getpid()}_{label}_{self.n}".replace("-", "_")
        with psycopg.connect(self.pg, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        parts = urlsplit(self.pg)
        return urlunsplit(parts._replace(path="/" + name))

    def count(self, db: str, sql: str) -> int:
        if db.startswith("postgresql://"):
            with psycopg.connect(db) as conn:
                return conn.execute(sql).fetchone()[0]
        import sqlite3

        conn = sqlite3.connect(db)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()

    def drop(self, db: str) -> None:
        if db.startswith("postgresql://"):
            name = urlsplit(db).path.lstrip("/")
            with psycopg.connect(self.pg, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.made.remove(name)
        else:
            shutil.rmtree(Path(db).parent, ignore_errors=True)

    def cleanup(self) -> None:
        with psycopg.connect(self.pg, autocommit=True) as admin:
            for name in self.made:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(self.tmp, ignore_errors=True)


def env_for() -> dict:
    env = {**os.environ, "GEMINI_FLOW_FORMAT": "json"}
    for name in ("GEMINI_FLOW_DB", "PYTHONDONTWRITEBYTECODE", "NO_COLOR"):
        env.pop(name, None)
    return env


# -- 1. cold processes ----------------------------------------------------------------------

FLOOR = {
    "sqlite": "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
              "c.execute(\"SELECT value FROM memory_store WHERE key = 'bench-key'\").fetchone()",
    "postgresql": "import psycopg, sys; c = psycopg.connect(sys.argv[1]); "
                  "c.execute(\"SELECT value FROM memory_store WHERE key = 'bench-key'\").fetchone()",
}


def bench_cold(places: Places, runs: int, env: dict) -> dict[tuple[str, str], float]:
    gf = gemini_flow()
    dbs = {b: places.fresh(b, "cold") for b in BACKENDS}
    cases: dict[tuple[str, str], list[str]] = {}
    for b, db in dbs.items():
        first = [*gf, "--db", db, "memory", "store", "bench-key", '{"theme": "dark", "n": 1}']
        result = subprocess.run(first, env=env, capture_output=True, cwd=places.tmp)
        if result.returncode:
            failed(first, result)
        cases[(b, "floor: python -c driver select (ms)")] = [sys.executable, "-c", FLOOR[b], db]
        cases[(b, "cold memory store (ms)")] = [*gf, "--db", db, "memory", "store", "bench-key",
                                                '{"theme": "dark", "n": 2}']
        cases[(b, "cold memory retrieve (ms)")] = [*gf, "--db", db, "memory", "retrieve", "bench-key"]
    for argv in cases.values():  # warm: bytecode and page cache
        subprocess.run(argv, env=env, capture_output=True, cwd=places.tmp)
    times: dict[tuple[str, str], list[float]] = {k: [] for k in cases}
    for run in range(runs):
        order = BACKENDS if run % 2 == 0 else BACKENDS[::-1]
        for what in ("floor: python -c driver select (ms)", "cold memory store (ms)", "cold memory retrieve (ms)"):
            for b in order:
                argv = cases[(b, what)]
                start = time.perf_counter()
                result = subprocess.run(argv, env=env, capture_output=True, cwd=places.tmp)
                elapsed = (time.perf_counter() - start) * 1000
                if result.returncode:
                    failed(argv, result)
                else:
                    times[(b, what)].append(elapsed)
    for db in dbs.values():
        places.drop(db)
    return {k: statistics.median(v) if v else float("nan") for k, v in times.items()}


# -- 2. memory batch ------------------------------------------------------------------------

def bench_batch(places: Places, stores: int, rounds: int, env: dict) -> dict[tuple[str, str], float]:
    gf = gemini_flow()
    payload = "".join(json.dumps(op) + "\n" for op in records(stores)).encode()
    rates: dict[str, list[float]] = {b: [] for b in BACKENDS}
    for round_ in range(rounds):
        for b in (BACKENDS if round_ % 2 == 0 else BACKENDS[::-1]):
            db = places.fresh(b, "batch")
            setup = [*gf, "--db", db, "config", "set", "backup.auto.enabled", "false"]  # as batch.py does
            result = subprocess.run(setup, env=env, capture_output=True, cwd=places.tmp)
            if result.returncode:
                failed(setup, result)
            argv = [*gf, "--db", db, "memory", "batch"]
            start = time.perf_counter()
            result = subprocess.run(argv, input=payload, env=env, capture_output=True, cwd=places.tmp)
            elapsed = time.perf_counter() - start
            if result.returncode:
                failed([*argv, f"< ({stores} JSON Lines stores)"], result)
            else:
                stored = places.count(db, "SELECT COUNT(*) FROM memory_store")
                if stored != stores:
                    FAILURES.append(f"{b}: memory batch of {stores} stores left {stored} rows")
                else:
                    rates[b].append(stores / elapsed)
            places.drop(db)
    return {(b, f"memory batch of {stores:,} (stores/s)"): statistics.median(v) if v else float("nan")
            for b, v in rates.items()}


# -- 3. task claims -------------------------------------------------------------------------

def bench_claims(places: Places, count: int, workers: int, env: dict) -> dict[tuple[str, str], float]:
    gf = gemini_flow()
    out: dict[tuple[str, str], float] = {}
    for b in BACKENDS:
        db = places.fresh(b, "claims")
        names = make_swarm(db, workers)  # Database.open takes a path or a postgresql:// URL
        handle = Database.open(db)
        with handle.write():  # one transaction for the whole set-up
            for i in range(count):
                tasks.orchestrate(handle, f"job {i}", swarm_id="swarm-1", strategy="adaptive")
        handle.close()
        argv = [*gf, "--db", db, "--json", "task", "claim", "--agent"]

        def loop(agent: str) -> list[str]:
            got, errors = [], 0
            while True:
                result = subprocess.run([*argv, agent], env=env, capture_output=True, text=True, cwd=places.tmp)
                if result.returncode == 0:
                    got.append(json.loads(result.stdout)["id"])
                    errors = 0
                elif result.returncode == 1 and not result.stdout.strip():
                    return got  # nothing ready
                else:
                    failed([*argv, agent], result)
                    errors += 1
                    if errors >= 3:
                        return got

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            got = list(pool.map(loop, names))
        elapsed = time.perf_counter() - start
        flat = [t for g in got for t in g]
        duplicates = len(flat) - len(set(flat))
        running = places.count(db, "SELECT COUNT(*) FROM tasks WHERE status = 'running'")
        if len(set(flat)) != count or running != count:
            FAILURES.append(f"{b}: {count} tasks, {len(set(flat))} distinct claimed, {running} running in the "
                            f"database; per process {[len(g) for g in got]}")
        out[(b, f"task claim, {workers} loops over {count} tasks (claims/s)")] = len(flat) / elapsed
        out[(b, "tasks claimed twice (must be 0)")] = duplicates
        places.drop(db)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("GEMINI_FLOW_BENCH_PG") or DEFAULT_PG,
                        help="a PostgreSQL server URL where we may CREATE DATABASE")
    parser.add_argument("--runs", type=int, default=15, help="cold processes of each kind and backend")
    parser.add_argument("--stores", type=int, default=20_000, help="stores in each memory batch")
    parser.add_argument("--rounds", type=int, default=3, help="memory batch rounds per backend")
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.stores, args.rounds, args.tasks = 3, 500, 1, 24
    env = env_for()
    places = Places(args.pg)
    started = time.perf_counter()
    results: dict[tuple[str, str], float] = {}
    try:
        results.update(bench_cold(places, args.runs, env))
        results.update(bench_batch(places, args.stores, args.rounds, env))
        results.update(bench_claims(places, args.tasks, args.workers, env))
    finally:
        places.cleanup()
    with psycopg.connect(args.pg) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    print(f"SQLite (temp file) vs PostgreSQL {server} ({urlsplit(args.pg).hostname}), Python "
          f"{sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"cold: median of {args.runs}; batch: median of {args.rounds}; {time.perf_counter() - started:.0f} s")
    measurements = list(dict.fromkeys(what for _, what in results))
    print(f"  {'backend':<11} {'measurement':<50} {'median':>12}   {'PostgreSQL/SQLite':>17}")
    for what in measurements:
        lite, pg = results.get(("sqlite", what)), results.get(("postgresql", what))
        for b in BACKENDS:
            value = results.get((b, what))
            shown = f"{value:12,.1f}" if isinstance(value, float) else f"{value:12d}"
            ratio = ""
            if b == "postgresql" and lite and pg == pg and lite == lite and "twice" not in what:
                ratio = f"x{pg / lite:.2f}"
            print(f"  {b:<11} {what:<50} {shown}   {ratio:>17}")
    if FAILURES:
        print(f"\n{len(FAILURES)} failure(s):")
        for f in FAILURES:
            print(f)
        sys.exit(1)


if __name__ == "__main__":
    main()
