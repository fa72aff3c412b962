"""Backups of the database."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from gemini_flow_cli.core import clock
from gemini_flow_cli.errors import GeminiFlowError


def backups_dir(db_path: Path) -> Path:
    """``.hive-mind/backups`` beside the database, created 0700."""
    folder = db_path.parent / "backups"
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    return folder


def safety_copy(conn: sqlite3.Connection, db_path: Path, reason: str) -> Path:
    """A consistent copy of the database (SQLite's online backup API), 0600, before a risky change.

    Written to a temporary file in the same folder, fsynced, then renamed, so a crash never leaves
    a half-written file under the final name.
    """
    folder = backups_dir(db_path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock.now()))
    final = folder / f"hive-{stamp}-{reason}.db"
    n = 1
    while final.exists():
        final = folder / f"hive-{stamp}-{reason}-{n}.db"
        n += 1
    temp = final.with_name(f".{final.name}.tmp")
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    try:
        target = sqlite3.connect(temp)
        try:
            conn.backup(target)
        finally:
            target.close()
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, final)
    except (sqlite3.Error, OSError) as exc:
        temp.unlink(missing_ok=True)
        raise GeminiFlowError("BACKUP_FAILED", f"could not back up the database before {reason}: {exc}") from exc
    return final
