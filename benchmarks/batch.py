"""`memory batch` through the CLI against raw sqlite3 writing the same rows, in the same run.

    .venv/bin/python benchmarks/batch.py                 # 200,000 stores, 5 rounds
    .venv/bin/python benchmarks/batch.py 1000000 --runs 1 --rss-only
    .venv/bin/python benchmarks/batch.py --before /tmp/before   # and an older checkout, same rounds

Each round, interleaved so that a change of the machine's load weighs on both alike, on a fresh
copy of the same empty database (schema applied):
- `gemini-flow memory batch FILE` of N stores given as JSON Lines (the records of
  benchmarks/throughput.py: ~80-byte JSON values, 10 namespaces, two tags), wall time of the
  process and its peak RSS;
- the floor: a plain `python` process reading the same file line by line with `json.loads`,
  encoding each value and tag list as the CLI stores them (compact values: the same bytes),
  writing the same memory rows with `executemany` (a plain INSERT, chunks of 20,000), the same
  change-feed rows (one INSERT ... SELECT per chunk, as the CLI does) and one audit row, in one
  transaction with the same pragmas (WAL, synchronous FULL, foreign keys on, 64 MiB cache).
Each round checks that both sides stored the same bytes (entries and change feed, times aside).
Prints the median of each side (wall and CPU time), the ratio (records/s of the CLI over the
floor's; also of CPU time, which other jobs on a shared machine disturb less) and the CLI's peak
RSS (largest of the rounds).
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

ROOT = Path(__file__).resolve().parents[1]
GEMINI_FLOW = Path(sys.executable).with_name("gemini-flow")

RAW = r'''
import hashlib, json, sqlite3, sys, time
path, db = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL"); conn.execute("PRAGMA synchronous=FULL")
conn.execute("PRAGMA foreign_keys=ON"); conn.execute("PRAGMA cache_size=-65536")
INSERT = ("INSERT INTO memory_store (key, value, namespace, agent_id, swarm_id, ttl, created_at, updated_at, "
          "access_count, size_bytes, tags, encrypted, version, ttl_seconds) "
          "VALUES (?1, ?2, ?3, NULL, NULL, NULL, ?4, ?4, 0, ?5, ?6, 0, 1, NULL)")
FEED = ("INSERT INTO memory_changes (action, key, namespace, version, previous_value, previous_encrypted, at) "
        "SELECT 'store', key, namespace, version, NULL, 0, ? FROM memory_store WHERE id > ? ORDER BY id")
encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # values: compact, as stored
tags_text = json.JSONEncoder(ensure_ascii=False).encode  # tags: as `memory store` writes them
now = int(time.time())
conn.execute("BEGIN IMMEDIATE")
rows, n = [], 0
def flush():
    last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM memory_store").fetchone()[0]
    conn.executemany(INSERT, rows)
    conn.execute(FEED, (now, last))
    rows.clear()
with open(path, "rb") as f:
    for line in f:
        op = json.loads(line)
        text = encode(op["value"])
        rows.append((op["key"], text, op["namespace"], now, len(text.encode("utf-8")), tags_text(op["tags"])))
        n += 1
        if len(rows) >= 20000:
            flush()
if rows:
    flush()
details = json.dumps({"stored": n})
digest = hashlib.sha256(details.encode()).hexdigest()
conn.execute("INSERT INTO audit_log (entity_type, entity_id, action, actor_id, details, timestamp, success, row_hash) "
             "VALUES ('memory', 'batch', 'batch', 'bench', ?, ?, 1, ?)", (details, now, digest))
conn.execute("COMMIT")
conn.close()
'''

# Peak RSS of the measured process alone: a child forked straight from this benchmark would
# report this process's resident memory as its own peak.
_LAUNCHER = (
    "import os, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(time.perf_counter() - t, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


# What both sides stored, for checking that they wrote the same bytes: a digest of the entries
# (their times too, with --times: an import keeps the file's) and of the change feed, and the
# number of change rows.
_STORED = (
    "import hashlib, sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1])\n"
    "times = ', created_at, updated_at' if sys.argv[2:] == ['--times'] else ''\n"
    "h = hashlib.sha256()\n"
    "for row in c.execute('SELECT key, value, namespace, agent_id, swarm_id, ttl, access_count, size_bytes, tags, '\n"
    "                     'encrypted, version, ttl_seconds' + times + ' FROM memory_store ORDER BY id'):\n"
    "    h.update(repr(row).encode())\n"
    "for row in c.execute('SELECT action, key, namespace, version, previous_value, previous_encrypted '\n"
    "                     'FROM memory_changes ORDER BY revision'):\n"
    "    h.update(repr(row).encode())\n"
    "print(c.execute('SELECT COUNT(*) FROM memory_changes').fetchone()[0], h.hexdigest())\n"
)


def stored(db: Path, *, times: bool = False) -> tuple[int, str]:
    """(change rows, digest of the entries and the feed) of the database at ``db``."""
    out = subprocess.run([sys.executable, "-c", _STORED, str(db), *(["--times"] if times else [])],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), out[1]


def gemini_flow(checkout: Path | None) -> list[str]:
    """The command that runs gemini-flow: this checkout's installed entry point, or (``checkout``)
    an older checkout's code run by the same interpreter (its folder first on the path)."""
    if checkout is None:
        return [str(GEMINI_FLOW)]
    code = (f"import sys; sys.path.insert(0, {str(checkout)!r}); import runpy; "
            "runpy.run_module('gemini_flow_cli', run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", code]


def records(n: int):
    agents = max(1, n // 1000)
    for j in range(n):
        a, i = j % agents, j // agents
        yield {"action": "store", "key": f"agent-{a}/note-{i}", "namespace": f"ns-{(a * 7 + i) % 10}",
               "value": {"agent": a, "note": i, "topic": f"topic{j % 997}", "text": "observed state ok", "v": j % 7},
               "tags": ["note", f"agent-{a}"]}


def measured(argv: list[str], env: dict) -> tuple[float, float, int]:
    """(seconds, CPU seconds, peak RSS in KiB) of one process."""
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    seconds, cpu, rss = done.stdout.split()[-3:]
    return float(seconds), float(cpu), int(rss)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rss-only", action="store_true", help="only the CLI, for its peak RSS")
    parser.add_argument("--before", type=Path, default=None,
                        help="an older checkout (e.g. `git archive COMMIT | tar -x -C /tmp/before`) measured "
                        "in the same rounds")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gf-batch-"))
    env = {**os.environ, "GEMINI_FLOW_FORMAT": "json"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        ops = folder / "ops.jsonl"
        with open(ops, "w", encoding="utf-8") as f:
            for op in records(args.n):
                f.write(json.dumps(op) + "\n")
        template = folder / "template" / "hive.db"
        template.parent.mkdir()
        subprocess.run([str(GEMINI_FLOW), "--db", str(template), "config", "set", "backup.auto.enabled", "false"],
                       check=True, capture_output=True, env=env)
        raw = folder / "raw.py"
        raw.write_text(RAW)
        before_s, before_cpu = [], []
        cli_s, raw_s, rss, cli_cpu, raw_cpu = [], [], [], [], []
        digests: dict[int, set[str]] = {}
        for round_ in range(args.runs):
            sides = ("cli",) if args.rss_only else ("cli", "raw") if args.before is None else ("cli", "before", "raw")
            for side in sides:
                work = folder / f"{side}-{round_}"
                shutil.copytree(template.parent, work)
                db = work / "hive.db"
                if side == "cli":
                    seconds, cpu, peak = measured([str(GEMINI_FLOW), "--db", str(db), "memory", "batch", str(ops)], env)
                    cli_s.append(seconds)
                    cli_cpu.append(cpu)
                    rss.append(peak)
                elif side == "before":
                    seconds, cpu, _ = measured([*gemini_flow(args.before.resolve()), "--db", str(db), "memory", "batch",
                                                str(ops)], env)
                    before_s.append(seconds)
                    before_cpu.append(cpu)
                else:
                    seconds, cpu, _ = measured([sys.executable, str(raw), str(ops), str(db)], env)
                    raw_s.append(seconds)
                    raw_cpu.append(cpu)
                count, digest = stored(db)
                if count < args.n:
                    raise SystemExit(f"{side}: {count} change rows, expected {args.n}")
                digests.setdefault(round_, set()).add(digest)
                if len(digests[round_]) > 1:
                    raise SystemExit(f"round {round_}: the CLI and the floor stored different rows")
                shutil.rmtree(work)
        size = ops.stat().st_size / 1e6
        print(f"memory batch of {args.n:,} stores as JSON Lines ({size:.0f} MB), median of {len(cli_s)} rounds, "
              f"load average {os.getloadavg()[0]:.1f}")
        cli_med = statistics.median(cli_s)
        print(f"  gemini-flow memory batch        {cli_med:7.2f} s  {args.n / cli_med:9,.0f} stores/s  "
              f"CPU {statistics.median(cli_cpu):6.2f} s  peak RSS {max(rss) / 1024:.0f} MB")
        if raw_s:
            raw_med = statistics.median(raw_s)
            print(f"  floor: raw sqlite3 executemany  {raw_med:7.2f} s  {args.n / raw_med:9,.0f} stores/s  "
                  f"CPU {statistics.median(raw_cpu):6.2f} s")
            print(f"  ratio (CLI / floor, stores/s)   {raw_med / cli_med:7.2f}x  "
                  f"(CPU time: {statistics.median(raw_cpu) / statistics.median(cli_cpu):.2f}x; on a shared "
                  "machine the CPU ratio is the steadier one)")
            if before_s:
                before_med = statistics.median(before_s)
                print(f"  before ({args.before})  {before_med:7.2f} s  {args.n / before_med:9,.0f} stores/s  "
                      f"CPU {statistics.median(before_cpu):6.2f} s  ratio {raw_med / before_med:.2f}x "
                      f"(CPU time: {statistics.median(raw_cpu) / statistics.median(before_cpu):.2f}x)")
            print("  the same entries and change rows stored by every side, every round (digest checked)")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
