"""`memory export` against an older checkout on the same database, in the same run.

    git archive main | tar -x -C /tmp/before      # the code to compare with (any checkout)
    .venv/bin/python benchmarks/export.py --before /tmp/before            # 1,000,000 entries
    .venv/bin/python benchmarks/export.py 200000 --before /tmp/before --runs 5

Fills one database with N entries (the records of benchmarks/throughput.py; every 50th one
encrypted, every 7th with a TTL, unicode in some values), then exports it to a file with this
checkout and with the older one, each a cold `python -m gemini_flow_cli` process with its
checkout first on sys.path, the two interleaved round by round. Checks that the files are
byte-identical and prints the medians and the speed-up.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gemini_flow_cli.core import crypto  # noqa: E402
from gemini_flow_cli.core.db import Database  # noqa: E402
from gemini_flow_cli.core.memory import MemoryManager  # noqa: E402

KEY = "benchmark-export-key"


def records(n: int):
    agents = max(1, n // 1000)
    for j in range(n):
        a, i = j % agents, j // agents
        yield {"key": f"agent-{a}/note-{i}", "namespace": f"ns-{(a * 7 + i) % 10}",
               "value": {"agent": a, "note": i, "topic": f"topic{j % 997}", "v": j % 7,
                         "text": "état observé ✓" if j % 5 == 0 else "observed state ok"},
               "tags": ["note", f"agent-{a}"], "ttl": 86_400 if j % 7 == 0 else None,
               "encrypted": j % 50 == 0}


def export_argv(checkout: Path, db: Path, out: Path) -> list[str]:
    code = (f"import sys; sys.path.insert(0, {str(checkout)!r}); import runpy; "
            "runpy.run_module('gemini_flow_cli', run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", code, "--db", str(db), "memory", "export", "-o", str(out), "--force"]


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--before", type=Path, required=True, help="the older checkout")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", type=Path, default=None, help="a database filled by an earlier run (kept)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gf-export-"))
    env = {**os.environ, "GEMINI_FLOW_ENCRYPTION_KEY": KEY, "GEMINI_FLOW_FORMAT": "json"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        db = args.db or folder / "hive.db"
        if not db.exists():
            started = time.perf_counter()
            handle = Database.open(db)
            MemoryManager(handle, cipher=lambda: crypto.Cipher(handle, KEY)).batch_store(records(args.n))
            handle.close()
            print(f"filled {args.n:,} entries in {time.perf_counter() - started:.1f} s")
        sides = {"now": ROOT, "before": args.before.resolve()}
        times: dict[str, list[float]] = {name: [] for name in sides}
        digests: dict[str, set[str]] = {name: set() for name in sides}
        for _ in range(args.runs):
            for name, checkout in sides.items():
                out = folder / f"{name}.jsonl"
                started = time.perf_counter()
                subprocess.run(export_argv(checkout, db, out), env=env, check=True, capture_output=True)
                times[name].append(time.perf_counter() - started)
                digests[name].add(digest(out))
                out.unlink()
        identical = len(digests["now"] | digests["before"]) == 1
        now, before = (statistics.median(times[name]) for name in ("now", "before"))
        print(f"memory export of {args.n:,} entries, median of {args.runs} cold processes each, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"  this checkout    {now:7.2f} s")
        print(f"  before           {before:7.2f} s")
        print(f"  speed-up         {before / now:7.2f}x   byte-identical: {'yes' if identical else 'NO'}")
        if not identical:
            raise SystemExit(1)
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
