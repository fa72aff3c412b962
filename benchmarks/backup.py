"""Backup and restore of a 1M-entry database in each format, against SQLite's own VACUUM INTO.

    .venv/bin/python benchmarks/backup.py [--entries 1000000] [--dir /tmp/bench]

Prints, per format: backup seconds and MB/s (database bytes per second), backup file size, restore
(verify + migrate check + one-transaction replace into an empty database) seconds and MB/s. Then the
sqlite-format backup (uncompressed, SQLite's online backup API plus fsync and manifest) timed against
``VACUUM INTO`` on the same file in the same run: ratio = VACUUM INTO time / our time (target >= 0.8).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gemini_flow_cli.core import backup as core  # noqa: E402
from gemini_flow_cli.core.db import Database  # noqa: E402


def build(path: Path, entries: int) -> None:
    db = Database.open(path)
    with db.write():
        pass  # schema
    db.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    now = int(time.time())
    batch = 50_000
    for start in range(0, entries, batch):
        conn.executemany(
            "INSERT INTO memory_store (key, value, namespace, created_at, updated_at, size_bytes, tags) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (f"key-{i:08d}", json.dumps({"n": i, "text": f"value number {i}", "ok": i % 3 == 0}),
                 f"ns{i % 10}", now, now, 60, '["bench"]')
                for i in range(start, min(start + batch, entries))
            ),
        )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--formats", default="sqlite,sqlite+gz,json,json+gz,sql,sql+gz")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gf-bench-backup-", dir=args.dir))
    try:
        source = work / "src" / "hive.db"
        seconds, _ = timed(lambda: build(source, args.entries))
        size = source.stat().st_size
        mb = size / 1e6
        print(f"database: {args.entries} entries, {mb:.1f} MB, built in {seconds:.1f} s")

        # sqlite-format backup vs VACUUM INTO, same file, same run, alternating, best of 3.
        ours, theirs = [], []
        for i in range(3):
            db = Database.open(source, create=False)
            t, info = timed(lambda: core.backup(db, work / f"ours{i}.db"))
            db.close()
            ours.append(t)
            os.remove(info["path"])
            os.remove(info["manifest"])
            conn = sqlite3.connect(source, isolation_level=None)
            target = work / f"vacuum{i}.db"
            theirs.append(timed(lambda: conn.execute("VACUUM INTO ?", (str(target),)))[0])
            conn.close()
            os.remove(target)
        print(f"sqlite backup (online backup API + fsync + manifest): {min(ours):.2f} s; "
              f"VACUUM INTO: {min(theirs):.2f} s; ratio VACUUM INTO / ours = {min(theirs) / min(ours):.2f} (target >= 0.8)")
        # What the source check costs (PRAGMA quick_check, O(database), run by every backup since
        # issue 19 so that a damaged database is refused rather than preserved), same file.
        checks = []
        for _ in range(3):
            conn = sqlite3.connect(source, isolation_level=None)
            checks.append(timed(lambda: conn.execute("PRAGMA quick_check").fetchall())[0])
            conn.close()
        print(f"  of which the source check, PRAGMA quick_check: {min(checks):.2f} s "
              f"({min(checks) / min(ours):.0%} of the backup; {mb / min(checks):.0f} MB/s)")

        print(f"{'format':<10} {'backup s':>9} {'MB/s':>7} {'file MB':>8} {'restore s':>10} {'MB/s':>7}")
        for spec in args.formats.split(","):
            fmt, _, z = spec.partition("+")
            compress = z == "gz"
            db = Database.open(source, create=False)
            t_backup, info = timed(lambda: core.backup(db, work / f"b.{spec}", format=fmt, compress=compress))
            db.close()
            target = work / f"restore-{spec}" / "hive.db"
            target_db = Database.open(target)
            t_restore, _ = timed(lambda: core.restore(target_db, info["path"], keep_copy=False))
            count = target_db.conn.execute("SELECT count(*) FROM memory_store").fetchone()[0]
            target_db.close()
            assert count == args.entries, count
            print(f"{spec:<10} {t_backup:>9.2f} {mb / t_backup:>7.1f} {info['size'] / 1e6:>8.1f} "
                  f"{t_restore:>10.2f} {mb / t_restore:>7.1f}")
            os.remove(info["path"])
            shutil.rmtree(target.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
