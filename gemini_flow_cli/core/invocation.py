"""One operation's access to the database, whichever door it came through.

A CLI command, an HTTP request and an MCP tool call each make one :class:`Invocation`: it opens
the database the way the CLI always has (the user's configuration, trusted paths, ``synchronous``,
reads of an older schema without migrating it), builds the memory API with the settings'
precedence of CLI.md §1, and after the operation runs what must follow a write that committed
(the automatic backup, hooks) before closing. The doors differ only in how they report: the CLI
passes its stderr printers as ``warn``/``message``; a server passes a logger.

Nothing here knows Typer, Rich or HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _ignore(text: str) -> None:
    pass


class Invocation:
    """The settings of one operation, and the database it opened (once).

    ``db_path``: the database file (None: GEMINI_FLOW_DB is resolved by the door; else discovery
    finds the nearest ``.hive-mind/hive.db``). ``busy_timeout``: seconds a write waits for the
    writers' queue. ``actor``: who the audit log names (an agent id, an API key's name).
    ``warn``/``message``: where non-fatal problems and notices go (text, no markup).
    """

    def __init__(self, db_path: Path | None = None, *, busy_timeout: float = 10.0,
                 actor: str | None = None, session_id: str | None = None,
                 warn: Callable[[str], None] | None = None,
                 message: Callable[[str], None] | None = None) -> None:
        self.db_path = db_path
        self.busy_timeout = busy_timeout
        self.actor = actor
        self.session_id = session_id if session_id is not None else os.environ.get("GEMINI_FLOW_SESSION")
        self.warn = warn or _ignore
        self.message = message or _ignore
        self.db: Any = None
        # Run in order after a command whose write committed, each given (invocation, database).
        self.after_write: list[Callable[[Invocation, Any], None]] = [automatic_backup, run_hooks]

    def open_db(self, *, create: bool = True, actor: str | None = None, migrate: bool = True):
        """The database of this invocation, opened once (core/db.py ``Database``).

        ``create=False`` for operations that only read: a missing database is then an empty one,
        nothing is created on disk, and a database at an older schema is read without migrating
        it (CLI.md §4, "Reads and bookkeeping"). Raises what ``Database.open`` raises
        (PERMISSION_DENIED for an untrusted path, SCHEMA_MISMATCH, DATABASE_LOCKED, ...).
        """
        from gemini_flow_cli.core.db import Database

        actor = actor or self.actor
        if self.db is not None:
            if create:
                self.db.creatable = True
            if actor:
                self.db.actor = actor
            return self.db
        self.db = Database.open(
            self.db_path,
            create=create,
            busy_timeout=self.busy_timeout,
            # flag/env > the database's configuration > the user file > FULL (CLI.md §1)
            synchronous=os.environ.get("GEMINI_FLOW_SYNCHRONOUS") or None,
            synchronous_fallback=_load_user_configuration(),
            trusted_paths=_trusted_paths(),
            actor=actor,
            session_id=self.session_id,
            auto_migrate=migrate,
            upgraded_reads=not create,
        )
        return self.db

    def memory(self, namespace: str | None = None, db=None):
        """The memory API over ``db`` (default: this invocation's, opened read-only): see
        :func:`memory_api`."""
        return memory_api(db if db is not None else self.open_db(create=False), namespace)

    def finish(self) -> None:
        """After the operation: run the after-write actions if a write committed, then close.

        An after-write action must not raise (each reports through ``warn``); if one does, the
        database is still closed (or given back, :meth:`release`).
        """
        db, self.db = self.db, None
        if db is None:
            return
        try:
            if db.wrote and not db.ephemeral:
                for action in self.after_write:
                    action(self, db)
        finally:
            self.release(db)

    def release(self, db) -> None:
        """Done with ``db``: close it (a pooled invocation, core/pool.py, gives it back instead)."""
        db.close()


def memory_api(db, namespace: str | None = None):
    """The memory API (core/memory.py ``MemoryManager``) over ``db``.

    Namespace: the argument > GEMINI_FLOW_NAMESPACE > memory.defaultNamespace (database > user
    file > 'default'); likewise memory.maxValueSize and security.autoEncryptPatterns (CLI.md §1).
    The cipher is built only when a value must be encrypted or decrypted (core/keys.py
    ``cipher_for``), so plain operations never import cryptography.
    """
    from gemini_flow_cli.core import config
    from gemini_flow_cli.core.memory import MemoryManager

    if namespace is None:
        namespace = os.environ.get("GEMINI_FLOW_NAMESPACE") or config.get(db, "memory.defaultNamespace")

    def cipher():
        from gemini_flow_cli.core.keys import cipher_for

        return cipher_for(db)

    return MemoryManager(
        db,
        namespace=namespace,
        max_value_size=config.get(db, "memory.maxValueSize"),
        auto_encrypt_patterns=config.get(db, "security.autoEncryptPatterns"),
        cipher=cipher,
    )


def automatic_backup(invocation: Invocation, db) -> None:
    """After-write action: take the automatic backup if it is due (core/autobackup.py).

    Never fails the operation it follows: any problem becomes a warning.
    """
    try:
        from gemini_flow_cli.core.autobackup import automatic_backup as take

        info = take(db)
    except Exception as exc:  # noqa: BLE001 - an automatic backup must not fail the command it follows
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        invocation.warn(f"automatic backup failed: {message}")
        return
    if info is not None:
        invocation.message(f"Automatic backup: {info['path']}")


def run_hooks(invocation: Invocation, db) -> None:
    """After-write action: run the hooks of the events the operation's commits recorded
    (core/hooks.py), whichever door wrote. Costs nothing when no hook listened: no event was
    recorded then, and core/hooks.py is not even imported.

    Never fails the operation it follows: any problem becomes a warning.
    """
    if not db.events:
        return
    from gemini_flow_cli.core import hooks

    recorded, db.events = db.events, []
    try:
        hooks.fire(db, recorded, key=hooks.load_key(hooks.key_path(os.environ)), environ=os.environ,
                   warn=invocation.warn)
    except Exception as exc:  # noqa: BLE001 - a hook must never fail the command it follows
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        invocation.warn(f"hooks were not run: {message}")


def _load_user_configuration() -> str | None:
    """Load the user configuration file (below the database's own configuration in precedence)
    and return its ``database.synchronous``, the fallback when neither env nor database set one."""
    from gemini_flow_cli.core import config

    config.load_user_file(config.user_file_path(os.environ))
    return config.user_value("database.synchronous")


def _trusted_paths() -> list[str]:
    """``security.trustedPaths`` from the user file (already loaded): never from a database."""
    from gemini_flow_cli.core import config

    return config.user_value("security.trustedPaths") or []
