"""Temporary files a killed process left behind, found and removed by the next run (issue 18).

A backup, restore, export or import writes through temporary files: a backup's content beside
its final name (``.NAME.PID.N.tmp`` / ``.db``), a restore's scratch folder
(``.gemini-flow-restore-PID-*``), an import's spool of standard input in the temp folder
(``gemini-flow-import-PID-*.jsonl``), an export's ``.NAME.PID.tmp``. SIGTERM and SIGINT unwind
through the code that deletes them (cli/__init__.py turns SIGTERM into an exception); ``kill -9``
cannot, so each name carries the process id of its writer and :func:`sweep` removes those whose
process is gone. A name whose process is alive (its writer, or a recycled id) is left alone: the
sweep never races a running command.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

# (pattern, where): "beside" for folders of the database and its backups, "temp" for the
# system's temp folder. Every pattern has a `pid` group.
_PATTERNS = (
    (re.compile(r"\..+\.(?P<pid>\d+)\.\d+\.(?:tmp|db)"), "beside"),
    (re.compile(r"\..+\.(?P<pid>\d+)\.tmp"), "beside"),
    (re.compile(r"\.?gemini-flow-restore-(?P<pid>\d+)-.+"), "both"),
    (re.compile(r"gemini-flow-import-(?P<pid>\d+)-.+\.jsonl"), "temp"),
)


def restore_prefix() -> str:
    """The name prefix of a restore's scratch folder (carries this process's id)."""
    return f".gemini-flow-restore-{os.getpid()}-"


def import_prefix() -> str:
    """The name prefix of an import's spool file (carries this process's id)."""
    return f"gemini-flow-import-{os.getpid()}-"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: leave it
    return True


def find(folders: list[Path], *, include_temp: bool = True) -> list[Path]:
    """Leftovers in ``folders`` (the database's folder, the backups folder) and, with
    ``include_temp``, the system temp folder: files and folders named as above, owned by this
    user, whose process is no longer running."""
    places = [(Path(f), "beside") for f in folders]
    if include_temp:
        places.append((Path(tempfile.gettempdir()), "temp"))
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    found: list[Path] = []
    seen: set[Path] = set()
    for folder, kind in places:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            for pattern, where in _PATTERNS:
                if where not in (kind, "both"):
                    continue
                match = pattern.fullmatch(entry.name)
                if not match:
                    continue
                path = Path(entry.path)
                try:
                    owner = entry.stat(follow_symlinks=False).st_uid
                except OSError:
                    break
                if (uid is None or owner == uid) and not _alive(int(match["pid"])) and path not in seen:
                    seen.add(path)
                    found.append(path)
                break
    return sorted(found)


def sweep(folders: list[Path], *, include_temp: bool = True) -> list[str]:
    """Remove what :func:`find` finds; returns the paths removed. Never raises."""
    removed = []
    for path in find(folders, include_temp=include_temp):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(str(path))
    return removed
