"""A stalled reader and the WAL: `memory export` piped into a slow consumer while writers write.

    python benchmarks/wal_growth.py [--entries 20000] [--writers 4] [--seconds 20]

A database of --entries entries is exported to stdout through a pipe whose reader takes one line
every 10 ms (a slow consumer), while --writers processes store values in a loop. Prints the size
of the -wal file every 2 seconds and its peak, twice: for `gemini-flow memory export` (which reads
into a spool first), and for the same export streamed straight from its read transaction into the
pipe (core.transfer.export_lines on stdout, as `memory export` did before issue 12). SQLite can only
restart the WAL from its beginning once no reader still uses a snapshot older than the last
checkpoint, so an export that keeps its read transaction open while it waits on the pipe lets the
WAL grow for as long as the consumer is slow.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gemini_flow_cli.core.db import Database  # noqa: E402
from gemini_flow_cli.core.memory import MemoryManager  # noqa: E402


def gemini_flow() -> list[str]:
    script = Path(sys.executable).with_name("gemini-flow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gemini_flow_cli"]


WRITER = """
import sys, time
from gemini_flow_cli.core.db import Database
from gemini_flow_cli.core.memory import MemoryManager
db = Database.open(sys.argv[1])
manager = MemoryManager(db)
end = time.time() + float(sys.argv[3])
i = 0
while time.time() < end:
    manager.store(f"writer-{sys.argv[2]}-{i % 200}", "x" * 2000)
    i += 1
db.close()
"""


STREAMED = """
import sys
from gemini_flow_cli.core import transfer
from gemini_flow_cli.core.db import Database
transfer.export_lines(Database.open(sys.argv[1], create=False), sys.stdout)
"""


def trial(label: str, export_argv: list[str], path: Path, args) -> None:
    export = subprocess.Popen(export_argv, stdout=subprocess.PIPE)
    lines = [0]

    def consume() -> None:
        for _ in export.stdout:
            lines[0] += 1
            time.sleep(0.01)

    threading.Thread(target=consume, daemon=True).start()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n), str(args.seconds)])
               for n in range(args.writers)]
    wal = Path(f"{path}-wal")
    started = time.monotonic()
    peak = 0
    print(label)
    while any(w.poll() is None for w in writers):
        time.sleep(2)
        size = wal.stat().st_size if wal.exists() else 0
        peak = max(peak, size)
        print(f"  {time.monotonic() - started:5.1f} s: WAL {size / 1e6:6.1f} MB, export lines read {lines[0]}")
    export.kill()
    export.wait()
    print(f"  WAL peak {peak / 1e6:.1f} MB over {args.seconds:g} s with {args.writers} writers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hive.db"
        db = Database.open(path)
        MemoryManager(db).batch_store({"key": f"entry-{i}", "value": {"n": i, "text": "y" * 100}}
                                      for i in range(args.entries))
        db.close()
        for label, argv in (
            ("gemini-flow memory export (spooled)", [*gemini_flow(), "--db", str(path), "memory", "export"]),
            ("streamed from the read transaction (before)", [sys.executable, "-c", STREAMED, str(path)]),
        ):
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            trial(label, argv, path, args)
    print(f"export of {args.entries} entries read at 100 lines/s; load average {os.getloadavg()[0]:.1f} "
          "(the machine may be shared)")


if __name__ == "__main__":
    main()
