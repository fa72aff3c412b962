"""Who may open a database: ownership and mode checks, like git's ``safe.directory`` (CLI.md §9).

On a shared machine another user can plant a database where discovery will find it (a
``.hive-mind`` in ``/shared`` or ``/tmp``), with their own settings (no auto-encryption, their key
file) and a mode that lets them read what is stored. So before a database is opened:

- the database file, its folder and its ``-wal``/``-shm`` files must be owned by the user running
  the command (another user, root included, is refused), and none may be writable by group or
  others (a writable folder lets anyone swap the file or plant a ``-wal`` that SQLite replays);
- symbolic links are resolved first, and the real file and folder are the ones checked;
- discovery never walks up into a folder owned by another user (:func:`owned_by_me`).

A path listed in the user's own configuration ``security.trustedPaths`` (never the database's:
a planted database cannot vouch for itself) skips these checks. An entry names the database
file, its folder, or the folder holding ``.hive-mind``; ``DIR/*`` trusts everything under DIR,
and ``*`` everything (git's ``safe.directory = *``).

On platforms without POSIX owners (Windows) nothing is checked. Only ``os`` and ``stat`` are
imported: this runs on every command.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from gemini_flow_cli.errors import GeminiFlowError

LOOSE_BITS = stat.S_IWGRP | stat.S_IWOTH


def _uid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def owned_by_me(path: Path) -> bool:
    """True when ``path`` (not following a final symlink) is owned by this process's user, or
    when the platform has no owners. A path that cannot be examined counts as not owned."""
    uid = _uid()
    if uid is None:
        return True
    try:
        return os.lstat(path).st_uid == uid
    except OSError:
        return False


def is_trusted(path: Path, trusted: Iterable[str] | None) -> bool:
    """Whether ``security.trustedPaths`` lists ``path`` (the database), its folder or the folder
    above ``.hive-mind``; ``DIR/*`` matches everything under DIR and ``*`` matches everything."""
    entries = [e for e in (trusted or ()) if isinstance(e, str) and e]
    if not entries:
        return False
    real = Path(os.path.realpath(path))
    names = {str(path), str(real), str(path.parent), str(real.parent), str(real.parent.parent)}
    for entry in entries:
        if entry == "*":
            return True
        if entry.endswith("/*"):
            base = Path(os.path.realpath(os.path.expanduser(entry[:-2])))
            if real == base or base in real.parents:
                return True
            continue
        expanded = os.path.expanduser(entry).rstrip("/") or "/"
        if expanded in names or os.path.realpath(expanded) in names:
            return True
    return False


def check_database(path: Path, trusted: Iterable[str] | None = None) -> None:
    """Refuse (PERMISSION_DENIED, exit 4) a database another user could control.

    Checks the real (symlink-resolved) database file, its folder and its ``-wal``/``-shm``
    files, those that exist: each must be owned by the current user and not writable by group
    or others. A missing database is checked through its folder, if that exists (a database
    created in another user's folder could be swapped by them). ``trusted`` is the user
    configuration's ``security.trustedPaths``.
    """
    if _uid() is None or is_trusted(path, trusted):
        return
    real = Path(os.path.realpath(path))
    for candidate in (real.parent, real, Path(f"{real}-wal"), Path(f"{real}-shm")):
        _check_one(candidate, database=path)


def check_key_file(path: Path) -> None:
    """Refuse a key file, or a key folder, owned by another user or writable by group/others.

    A key file chosen by someone else means values encrypted under a secret they know. The
    key file's own read mode (0600) is checked by ``keys.read_key_file``.
    """
    if _uid() is None:
        return
    real = Path(os.path.realpath(path))
    for candidate in (real.parent, real):
        _check_one(candidate, key=path)


def _check_one(candidate: Path, *, database: Path | None = None, key: Path | None = None) -> None:
    try:
        info = os.stat(candidate)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise GeminiFlowError(
            "PERMISSION_DENIED", f"cannot examine {candidate}: {exc.strerror}", details={"path": str(candidate)}
        ) from exc
    uid = _uid()
    if info.st_uid == uid and not info.st_mode & LOOSE_BITS:
        return
    import shlex  # only for the message: imported when there is one (start-up, STYLE.md §6)

    what = "database" if database is not None else "key file"
    subject = database if database is not None else key
    trust_hint = (
        f"if you trust it, add it to your own configuration: gemini-flow config set --user "
        f"security.trustedPaths {shlex.quote(os.path.realpath(subject))}"
        if database is not None
        else "use a key file in a folder of your own (`gemini-flow key generate`)"
    )
    if info.st_uid != uid:
        owner = _user_name(info.st_uid)
        raise GeminiFlowError(
            "PERMISSION_DENIED",
            f"refusing to use the {what} {subject}: {candidate} is owned by {owner}, not by you "
            f"({_user_name(uid)}); another user could read or change what you store. "
            f"Use a {what} of your own, or {trust_hint}",
            details={"path": str(candidate), "owner": owner, "reason": "owner"},
        )
    if info.st_mode & LOOSE_BITS:
        mode = f"{stat.S_IMODE(info.st_mode):04o}"
        raise GeminiFlowError(
            "PERMISSION_DENIED",
            f"refusing to use the {what} {subject}: {candidate} is writable by group or others "
            f"(mode {mode}). Run: chmod go-w {shlex.quote(str(candidate))}; or {trust_hint}",
            details={"path": str(candidate), "mode": mode, "reason": "mode"},
        )


def _user_name(uid: int | None) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError, TypeError):
        return f"uid {uid}"
