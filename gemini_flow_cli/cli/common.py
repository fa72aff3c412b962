"""What every command shares: the invocation's settings, the database, the output."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from gemini_flow_cli.errors import GeminiFlowError
from gemini_flow_cli.output import Output


@dataclass
class State:
    """The global options of one invocation (CLI.md §1), and the database it opened."""

    db_path: Path | None = None
    busy_timeout: float = 10.0
    debug: bool = False
    out: Output = field(default_factory=Output)
    db: Any = None
    hooks_after_write: list = field(default_factory=lambda: [_automatic_backup])

    def open_db(self, *, create: bool = True, actor: str | None = None, migrate: bool = True):
        """The database of this invocation, opened once.

        ``create=False`` for commands that only read: a missing database is then an empty one,
        and nothing is created on disk.
        """
        from gemini_flow_cli.core.db import Database

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
            session_id=os.environ.get("GEMINI_FLOW_SESSION"),
            auto_migrate=migrate,
            # A command that only reads answers from a database at an older schema too (CLI.md §4,
            # "Reads and bookkeeping"), without migrating it: see Database.open.
            upgraded_reads=not create,
        )
        return self.db

    def finish(self) -> None:
        """After a command: run what must follow a write (automatic backups), then close."""
        db, self.db = self.db, None
        if db is None:
            return
        try:
            if db.wrote and not db.ephemeral:
                for hook in self.hooks_after_write:
                    hook(self, db)
        finally:
            db.close()


def _automatic_backup(state: State, db) -> None:
    """Hook: take the automatic backup if it is due (core/autobackup.py).

    Never fails the user's command: any problem becomes a warning on stderr.
    """
    try:
        from gemini_flow_cli.core.autobackup import automatic_backup

        info = automatic_backup(db)
    except Exception as exc:  # noqa: BLE001 - an automatic backup must not fail the command it follows
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        state.out.warn(f"automatic backup failed: {message}")
        return
    if info is not None:
        state.out.message(f"Automatic backup: {info['path']}")


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


def state() -> State:
    """The current invocation's state (set by the root callback)."""
    # Typer 0.28 vendors its own click: the current context lives there, not in `click`.
    from typer._click.globals import get_current_context

    ctx = get_current_context()
    obj = ctx.find_root().obj
    if obj is None:  # a sub-app invoked on its own (tests of one group)
        obj = ctx.find_root().obj = State()
    return obj


def read_input(value: str | None, file: Path | None) -> str:
    """A value from the argument, ``--file``, or standard input (absent or ``-``)."""
    if file is not None:
        if value is not None:
            raise GeminiFlowError("INVALID_INPUT", "give the value or --file, not both")
        try:
            return file.read_text("utf-8")
        except OSError as exc:
            raise GeminiFlowError("INVALID_INPUT", f"cannot read {file}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise GeminiFlowError("INVALID_INPUT", f"{file} is not UTF-8 text") from exc
    if value is None or value == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise GeminiFlowError(
                "INVALID_INPUT", "no value given: pass VALUE, --file PATH, or pipe it on standard input"
            )
        text = sys.stdin.read()
        return text[:-1] if text.endswith("\n") else text
    return value


def confirm_or_refuse(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, ``--yes`` is required (else INVALID_INPUT, nothing done)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise GeminiFlowError("INVALID_INPUT", f"{question} Refusing without a terminal; pass --yes to confirm")
    if not typer.confirm(question, default=False, err=True):
        raise GeminiFlowError("INVALID_INPUT", "not confirmed; nothing was changed")


def memory_manager(db, namespace: str | None = None):
    """The memory API over ``db``, with this invocation's settings (CLI.md §1 precedence).

    Namespace: -n > GEMINI_FLOW_NAMESPACE > memory.defaultNamespace (database > user file >
    'default'); likewise memory.maxValueSize and security.autoEncryptPatterns. The cipher is
    built only when a value must be encrypted or decrypted, from GEMINI_FLOW_ENCRYPTION_KEY or
    the key file (cli/key.py), so plain commands never import cryptography.
    """
    from gemini_flow_cli.core import config
    from gemini_flow_cli.core.memory import MemoryManager

    if namespace is None:
        namespace = os.environ.get("GEMINI_FLOW_NAMESPACE") or config.get(db, "memory.defaultNamespace")

    def cipher():
        from gemini_flow_cli.cli.key import cipher_for

        return cipher_for(db)

    return MemoryManager(
        db,
        namespace=namespace,
        max_value_size=config.get(db, "memory.maxValueSize"),
        auto_encrypt_patterns=config.get(db, "security.autoEncryptPatterns"),
        cipher=cipher,
    )
