"""Waiting for another process to write, without a daemon: the one mechanism behind
``memory watch``, ``task wait`` and ``consensus wait``.

The waiter asks SQLite's ``PRAGMA data_version`` whether any other connection committed since it
last looked. In WAL mode that reads a counter in the shared-memory WAL index: no table read, no
disk access and no lock, so it can be asked every few milliseconds for a fraction of a percent of
a core. The waiter starts fast after a change and backs off while nothing happens, so an idle
watcher stays cheap and a busy one reacts within milliseconds. ``benchmarks/watch.py`` measures
the commit-to-line latency of this against polling the changes table and watching the ``-wal``
file's size and time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

FASTEST = 0.002   # seconds between looks right after a change
SLOWEST = 0.05    # seconds between looks when idle for a while (bounds the idle latency)


class Waiter:
    """``wait(deadline)`` returns True when another connection committed (or may have: the
    database file appeared), False when ``deadline`` (a ``monotonic()`` value, or None for
    never) passed first."""

    def __init__(self, db, *, fastest: float = FASTEST, slowest: float = SLOWEST,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic):
        self.db = db
        self.fastest = fastest
        self.slowest = slowest
        self.sleep = sleep
        self.monotonic = monotonic
        self._interval = fastest
        self._seen = self._version()

    def _version(self):
        if self.db.ephemeral:
            # No file yet: "changed" means it now exists (the caller reopens it).
            target = getattr(self.db, "target", None)
            return ("exists", bool(target is not None and target.exists()))
        # A read of a file at an older schema goes through an upgraded in-memory copy (core/db.py),
        # which no other process writes: watch the file itself.
        conn = getattr(self.db, "_file_conn", None) or self.db.conn
        return conn.execute("PRAGMA data_version").fetchone()[0]

    def changed(self) -> bool:
        """Whether another connection committed since the last look (never blocks)."""
        now = self._version()
        if now != self._seen:
            self._seen = now
            self._interval = self.fastest
            self._refresh_copy()
            return True
        return False

    def _refresh_copy(self) -> None:
        """After a commit to a file read through an upgraded copy, read the file again: directly
        when the writer migrated it (as every write does), else through a fresh copy."""
        if getattr(self.db, "_file_conn", None) is None:
            return
        from gemini_flow_cli.core import migrations

        self.db._back_to_the_file()
        if migrations.pending(self.db.conn):
            self.db._read_through_upgraded_copy()

    def wait(self, deadline: float | None) -> bool:
        while True:
            if self.changed():
                return True
            left = None if deadline is None else deadline - self.monotonic()
            if left is not None and left <= 0:
                return False
            self.sleep(self._interval if left is None else min(self._interval, left))
            self._interval = min(self.slowest, self._interval * 1.5)


def until(check: Callable[[], object], db, *, timeout: float | None,
          monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
          recheck: float = 1.0):
    """Call ``check()`` now and after every commit by another process until it returns something
    truthy (returned), or ``timeout`` seconds pass (returns None). ``check`` also runs every
    ``recheck`` seconds without a commit, for conditions that change with time alone (a deadline)."""
    deadline = None if timeout is None else monotonic() + timeout
    waiter = Waiter(db, sleep=sleep, monotonic=monotonic)
    while True:
        found = check()
        if found:
            return found
        now = monotonic()
        if deadline is not None and now >= deadline:
            return None
        slice_end = now + recheck if deadline is None else min(deadline, now + recheck)
        waiter.wait(slice_end)
