"""`memory search 'prefix*'` and `memory list --limit 100` against a plain script, same run.

    .venv/bin/python benchmarks/search.py                  # 1,000,000 keys, 11 rounds
    .venv/bin/python benchmarks/search.py 200000 --runs 5
    .venv/bin/python benchmarks/search.py --db PATH        # reuse a database filled before

Fills a database with N entries (the records of benchmarks/throughput.py, through
MemoryManager.batch_store), then measures cold processes, the cases interleaved round by round:
- `gemini-flow memory search 'agent-42/*'` and `gemini-flow memory list --limit 100` (JSON);
- the floor for each: `python -c` opening the database with sqlite3 and running the page query
  and the count the command runs (the same SQL, the same parameters), printing the rows as JSON;
- `python -c "import typer"` (what any Typer command pays before its first line).
Also, in one process: the command's query work (search.run) against the same SQL alone.
Prints medians with the ratio to the floor.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gemini_flow_cli.core import clock, search  # noqa: E402
from gemini_flow_cli.core.db import Database  # noqa: E402
from gemini_flow_cli.core.memory import MemoryManager  # noqa: E402

GEMINI_FLOW = Path(sys.executable).with_name("gemini-flow")


def records(n: int):
    agents = max(1, n // 1000)
    for j in range(n):
        a, i = j % agents, j // agents
        yield {"key": f"agent-{a}/note-{i}", "namespace": f"ns-{(a * 7 + i) % 10}",
               "value": {"agent": a, "note": i, "topic": f"topic{j % 997}", "text": "observed state ok", "v": j % 7},
               "tags": ["note", f"agent-{a}"]}


def floor_script(db: Path, options: search.SearchOptions) -> str:
    """A plain script running the SQL the command runs for ``options``."""
    db_handle = Database.open(db, create=False)
    with db_handle.read() as conn:
        fast = search.few_expired(conn, int(clock.now()))
    db_handle.close()
    page, count, page_params, count_params = search.glob_queries(options, int(clock.now()), few_expired=fast)
    return (
        "import json, sqlite3, sys\n"
        f"c = sqlite3.connect({str(db)!r})\n"
        f"total = c.execute({count!r}, {count_params!r}).fetchone()[0]\n"
        f"cur = c.execute({page!r}, {page_params!r})\n"
        "names = [d[0] for d in cur.description]\n"
        "rows = [dict(zip(names, r)) for r in cur]\n"
        "sys.stdout.write(json.dumps({'results': rows, 'total': total}))\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--db", type=Path, default=None, help="a database filled by an earlier run (kept)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gf-search-"))
    env = {**os.environ, "GEMINI_FLOW_FORMAT": "json"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    try:
        db = args.db or folder / "hive.db"
        if not db.exists():
            started = time.perf_counter()
            handle = Database.open(db)
            MemoryManager(handle).batch_store(records(args.n))
            handle.close()
            print(f"filled {args.n:,} entries in {time.perf_counter() - started:.1f} s")
        subprocess.run([str(GEMINI_FLOW), "--db", str(db), "config", "set", "backup.auto.enabled", "false"],
                       check=True, capture_output=True, env=env)
        prefix = search.SearchOptions(pattern="agent-42/*", limit=100)
        listing = search.SearchOptions(pattern="*", limit=100)
        cases = {
            "python -c 'import typer'": [sys.executable, "-c", "import typer"],
            "floor: search SQL, plain script": [sys.executable, "-c", floor_script(db, prefix)],
            "gemini-flow memory search 'agent-42/*'": [str(GEMINI_FLOW), "--db", str(db), "memory", "search",
                                                      "agent-42/*"],
            "floor: list SQL, plain script": [sys.executable, "-c", floor_script(db, listing)],
            "gemini-flow memory list --limit 100": [str(GEMINI_FLOW), "--db", str(db), "memory", "list",
                                                   "--limit", "100"],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for argv in cases.values():
            subprocess.run(argv, env=env, capture_output=True, check=True)  # warm caches
        for _ in range(args.runs):
            for name, argv in cases.items():
                started = time.perf_counter()
                subprocess.run(argv, env=env, capture_output=True, check=True)
                times[name].append((time.perf_counter() - started) * 1000)
        med = {name: statistics.median(t) for name, t in times.items()}
        print(f"{args.n:,} entries, median of {args.runs} cold processes, load average {os.getloadavg()[0]:.1f}")
        for name, ms in med.items():
            floor = None
            if name.startswith("gemini-flow memory search"):
                floor = med["floor: search SQL, plain script"]
            elif name.startswith("gemini-flow memory list"):
                floor = med["floor: list SQL, plain script"]
            ratio = f"x{ms / floor:4.2f} floor" if floor else ""
            print(f"  {name:<42} {ms:7.1f} ms   {ratio}")
        # The query work alone, in one process: search.run against the same SQL.
        handle = Database.open(db, create=False)
        manager = MemoryManager(handle)
        for label, options in (("search 'agent-42/*'", prefix), ("list --limit 100", listing)):
            ours, raw = [], []
            with handle.read() as conn:
                fast = search.few_expired(conn, int(clock.now()))
            page, count, page_params, count_params = search.glob_queries(options, int(clock.now()), few_expired=fast)
            for _ in range(args.runs):
                started = time.perf_counter()
                search.run(manager, search.SearchOptions(pattern=options.pattern, limit=options.limit))
                ours.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                conn = handle.conn
                conn.execute(count, count_params).fetchone()
                json.dumps([list(r) for r in conn.execute(page, page_params)])
                raw.append((time.perf_counter() - started) * 1000)
            o, r = statistics.median(ours), statistics.median(raw)
            print(f"  in-process {label:<22} search.run {o:6.1f} ms   the SQL alone {r:6.1f} ms   x{o / r:4.2f}")
        handle.close()
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
