"""Automatic backups, without a daemon: after a command that wrote, take one if it is due.

This runs after every writing command, so deciding whether a backup is due stays cheap (a
directory scan and two settings); the backup module itself is imported only when one is taken.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gemini_flow_cli.core import clock, migrations
from gemini_flow_cli.errors import GeminiFlowError

LOCK_NAME = ".auto-backup.lock"
_STAMP = re.compile(r"(\d{8}T\d{6}Z)")

def _seconds(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise GeminiFlowError("INVALID_INPUT", f"invalid {what} {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    from gemini_flow_cli.core.durations import parse_duration

    return parse_duration(str(value), what=what)


def newest_auto_backup(folder: Path) -> float | None:
    """When the newest automatic backup was made (from its name), or None."""
    newest = None
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith("hive-auto-") and not entry.name.endswith(".manifest.json"):
                match = _STAMP.search(entry.name)
                if match:
                    import calendar  # only with a backup to date: every write checks, few have one

                    ts = float(calendar.timegm(time.strptime(match.group(1), "%Y%m%dT%H%M%SZ")))
                    newest = ts if newest is None else max(newest, ts)
    return newest


def _created_at(db) -> float | None:
    row = db.conn.execute(f"SELECT min(applied_at) FROM {migrations.RECORD_TABLE}").fetchone()
    return float(row[0]) if row and row[0] else None


def automatic_backup(db) -> dict[str, Any] | None:
    """Take the automatic backup if it is due; return it (with ``pruned``), or None.

    Due when the newest automatic backup, or the database's creation when there is none, is older
    than ``backup.auto.interval``. A lock file (``flock``) makes concurrent processes take one
    backup, not several: the loser skips, and whoever takes the lock later checks again.
    """
    from gemini_flow_cli.core import config

    if db.ephemeral or not config.get(db, "backup.auto.enabled"):
        return None
    interval = _seconds(config.get(db, "backup.auto.interval"), "backup.auto.interval")
    retention = _seconds(config.get(db, "backup.auto.retention"), "backup.auto.retention")
    folder = Path(db.path).parent / "backups"

    def due() -> bool:
        last = newest_auto_backup(folder)
        if last is None:
            last = _created_at(db)
        return last is not None and clock.now() - last >= interval

    if not due():
        return None
    from gemini_flow_cli.core.backup import backups_dir

    folder = backups_dir(Path(db.path))
    with _exclusive(folder / LOCK_NAME) as locked:
        if not locked or not due():
            return None
        from gemini_flow_cli.core import backup

        info = backup.backup(db, None, format="sqlite", compress=True, origin="auto")
        info["pruned"] = backup.prune(folder, retention, origin="auto")
    return info


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[bool]:
    """A non-blocking exclusive lock: yields False when another process holds it."""
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield True
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
