"""`memory import` through the CLI against a raw sqlite3 script writing the same rows, in the same run.

    .venv/bin/python benchmarks/memory_import.py                  # 1,000,000 records, 5 rounds
    .venv/bin/python benchmarks/memory_import.py 200000 --runs 3
    .venv/bin/python benchmarks/memory_import.py --before /tmp/before   # and an older checkout, same rounds

The file is a `memory export` of N entries (the records of benchmarks/batch.py: ~80-byte JSON
values, 10 namespaces, two tags, times). Each round, interleaved so that a change of the machine's
load weighs on both alike, on a fresh copy of the same empty database (schema applied):
- `gemini-flow memory import FILE`: wall and CPU time of the process, and its peak RSS;
- the floor: a plain `python` process reading the same file line by line with `json.loads`,
  encoding each value and tag list as the CLI stores them, turning the ISO times into epoch
  seconds (cached per distinct text, as the CLI does), writing the same memory rows with
  `executemany` (chunks of 20,000), the same change-feed rows (one INSERT ... SELECT per chunk)
  and one audit row, in one transaction with the same pragmas (WAL, synchronous FULL, foreign keys
  on, 64 MiB cache). It reads the file once and checks nothing; the CLI validates every record
  before it writes any (a first pass over the file) and applies them in a second.
Each round checks that both sides stored the same bytes (entries with their times, change feed).
Prints the median of each side, the ratios (records/s, and CPU time, which other jobs on a shared
machine disturb less) and the CLI's peak RSS (largest of the rounds).
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch import GEMINI_FLOW, gemini_flow, measured, records, stored  # noqa: E402

RAW = r'''
import calendar, hashlib, json, sqlite3, sys, time
from datetime import datetime
path, db = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL"); conn.execute("PRAGMA synchronous=FULL")
conn.execute("PRAGMA foreign_keys=ON"); conn.execute("PRAGMA cache_size=-65536")
INSERT = ("INSERT INTO memory_store (key, value, namespace, agent_id, swarm_id, ttl, created_at, updated_at, "
          "access_count, size_bytes, tags, encrypted, version) VALUES (?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, ?, 0, ?)")
FEED = ("INSERT INTO memory_changes (action, key, namespace, version, previous_value, previous_encrypted, at) "
        "SELECT 'store', key, namespace, version, NULL, 0, ? FROM memory_store WHERE id > ? ORDER BY id")
compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
tags_text = json.JSONEncoder(ensure_ascii=False).encode
times = {}
def seconds(text):
    if text is None:
        return None
    value = times.get(text)
    if value is None:
        value = times[text] = calendar.timegm(datetime.fromisoformat(text[:-1]).timetuple())
    return value
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
        r = json.loads(line)
        text = compact(r["value"])
        rows.append((r["key"], text, r["namespace"], seconds(r["expiresAt"]), seconds(r["createdAt"]),
                     seconds(r["updatedAt"]), r["accessCount"], len(text.encode("utf-8")),
                     tags_text(r["tags"]) if r["tags"] else None, r["version"]))
        n += 1
        if len(rows) >= 20000:
            flush()
if rows:
    flush()
details = json.dumps({"records": n})
digest = hashlib.sha256(details.encode()).hexdigest()
conn.execute("INSERT INTO audit_log (entity_type, entity_id, action, actor_id, details, timestamp, success, row_hash) "
             "VALUES ('memory', 'import', 'import', 'bench', ?, ?, 1, ?)", (details, now, digest))
conn.execute("COMMIT")
conn.close()
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", type=Path, default=None,
                        help="an older checkout (e.g. `git archive COMMIT | tar -x -C /tmp/before`) measured "
                        "in the same rounds")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gf-import-"))
    env = {**os.environ, "GEMINI_FLOW_FORMAT": "json", "PYTHONPYCACHEPREFIX": str(folder / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        template = folder / "template" / "hive.db"
        template.parent.mkdir()
        gf = [str(GEMINI_FLOW), "--db", str(template)]
        subprocess.run([*gf, "config", "set", "backup.auto.enabled", "false"], check=True, capture_output=True, env=env)
        # The export file: the batch benchmark's records stored once, then exported.
        source = folder / "source" / "hive.db"
        shutil.copytree(template.parent, source.parent)
        ops = folder / "ops.jsonl"
        with open(ops, "w", encoding="utf-8") as f:
            for op in records(args.n):
                f.write(json.dumps(op) + "\n")
        subprocess.run([str(GEMINI_FLOW), "--db", str(source), "memory", "batch", str(ops)], check=True,
                       stdout=subprocess.DEVNULL, env=env)
        exported = folder / "export.jsonl"
        subprocess.run([str(GEMINI_FLOW), "--db", str(source), "memory", "export", "-o", str(exported)], check=True,
                       capture_output=True, env=env)
        ops.unlink()
        shutil.rmtree(source.parent)
        raw = folder / "raw.py"
        raw.write_text(RAW)
        before_s, before_cpu = [], []
        cli_s, raw_s, cli_cpu, raw_cpu, rss = [], [], [], [], []
        digests: dict[int, set[str]] = {}
        for round_ in range(args.runs):
            for side in ("cli", "raw") if args.before is None else ("cli", "before", "raw"):
                work = folder / f"{side}-{round_}"
                shutil.copytree(template.parent, work)
                db = work / "hive.db"
                if side == "cli":
                    seconds, cpu, peak = measured([str(GEMINI_FLOW), "--db", str(db), "memory", "import",
                                                   str(exported)], env)
                    cli_s.append(seconds)
                    cli_cpu.append(cpu)
                    rss.append(peak)
                elif side == "before":
                    seconds, cpu, _ = measured([*gemini_flow(args.before.resolve()), "--db", str(db), "memory",
                                                "import", str(exported)], env)
                    before_s.append(seconds)
                    before_cpu.append(cpu)
                else:
                    seconds, cpu, _ = measured([sys.executable, str(raw), str(exported), str(db)], env)
                    raw_s.append(seconds)
                    raw_cpu.append(cpu)
                count, digest = stored(db, times=True)
                if count != args.n:
                    raise SystemExit(f"{side}: {count} change rows, expected {args.n}")
                digests.setdefault(round_, set()).add(digest)
                if len(digests[round_]) > 1:
                    raise SystemExit(f"round {round_}: the CLI and the floor stored different rows")
                shutil.rmtree(work)
        size = exported.stat().st_size / 1e6
        cli_med, raw_med = statistics.median(cli_s), statistics.median(raw_s)
        print(f"memory import of {args.n:,} records ({size:.0f} MB export), median of {args.runs} rounds, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"  gemini-flow memory import       {cli_med:7.2f} s  {args.n / cli_med:9,.0f} rec/s  "
              f"CPU {statistics.median(cli_cpu):6.2f} s  peak RSS {max(rss) / 1024:.0f} MB")
        print(f"  floor: raw sqlite3 script       {raw_med:7.2f} s  {args.n / raw_med:9,.0f} rec/s  "
              f"CPU {statistics.median(raw_cpu):6.2f} s")
        print(f"  ratio (CLI / floor, rec/s)      {raw_med / cli_med:7.2f}x  "
              f"(CPU time: {statistics.median(raw_cpu) / statistics.median(cli_cpu):.2f}x)")
        if before_s:
            before_med = statistics.median(before_s)
            print(f"  before ({args.before})  {before_med:7.2f} s  {args.n / before_med:9,.0f} rec/s  "
                  f"CPU {statistics.median(before_cpu):6.2f} s  ratio {raw_med / before_med:.2f}x "
                  f"(CPU time: {statistics.median(raw_cpu) / statistics.median(before_cpu):.2f}x)")
        print("  the same entries (times included) and change rows stored by every side, every round "
              "(digest checked)")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
