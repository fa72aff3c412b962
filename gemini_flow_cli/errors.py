"""The error codes of the spec (CLI.md §3) and the one mapping to exit statuses.

The core raises :class:`GeminiFlowError` with a code; only the CLI layer turns it into an exit status.
"""

from __future__ import annotations

from typing import Any

EXIT_STATUS: dict[str, int] = {
    "NOT_FOUND": 1,
    "TTL_EXPIRED": 1,
    "NAMESPACE_NOT_FOUND": 1,
    "COMPACTED": 1,
    "INVALID_KEY": 2,
    "INVALID_INPUT": 2,
    "USAGE": 2,
    "CONFLICT": 3,
    "PERMISSION_DENIED": 4,
    "ENCRYPTION_FAILED": 4,
    "VALUE_TOO_LARGE": 5,
    "QUOTA_EXCEEDED": 5,
    "CONNECTION_FAILED": 6,
    "DISK_FULL": 6,
    "BACKUP_FAILED": 7,
    "MIGRATION_FAILED": 7,
    "INTERNAL": 70,
}

# The HTTP status of each exit status (CLI.md §9), for `gemini-flow serve`. Exit 4 is 401 when the
# request carried no valid token and 403 when a valid token lacks the right: see http_status.
HTTP_STATUS: dict[int, int] = {1: 404, 2: 400, 3: 409, 4: 403, 5: 413, 6: 503, 7: 500, 70: 500}


def http_status(error: GeminiFlowError, *, authenticated: bool = True) -> int:
    """The HTTP status answering ``error``: the one mapping beside the exit statuses."""
    if error.exit_status == 4 and not authenticated:
        return 401
    return HTTP_STATUS[error.exit_status]


# Codes a caller can do something about by retrying or changing its input.
UNRECOVERABLE = {"CONNECTION_FAILED", "DISK_FULL", "INTERNAL", "MIGRATION_FAILED", "BACKUP_FAILED"}


class GeminiFlowError(Exception):
    """The one failure type of gemini-flow: a spec error code, a message, optional details."""

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None):
        if code not in EXIT_STATUS:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.code]

    @property
    def recoverable(self) -> bool:
        return self.code not in UNRECOVERABLE

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "recoverable": self.recoverable,
        }
        if self.details:
            error["details"] = self.details
        return {"success": False, "error": error}


# The package each optional extra adds (pyproject.toml), for `pipx inject`.
_EXTRA_PACKAGES = {"postgres": "psycopg[binary]>=3.1", "server": "starlette uvicorn httptools",
                   "mcp": "mcp tomlkit", "yaml": "pyyaml"}


def install_extra_hint(extra: str) -> str:
    """How to add the optional ``extra`` to the environment gemini-flow runs in (README "Optional
    extras"): from a checkout with pip or pipx, or into a pipx install with ``pipx inject``. Not
    ``pip install 'gemini-flow[extra]'``, which would look the name up on PyPI."""
    return (f"from a checkout, pip install '.[{extra}]' (pipx: pipx install --force '.[{extra}]'); "
            f"for a pipx install, pipx inject gemini-flow {_EXTRA_PACKAGES[extra]}")


def not_found(message: str, **details: Any) -> GeminiFlowError:
    return GeminiFlowError("NOT_FOUND", message, details=details)


def invalid(message: str, **details: Any) -> GeminiFlowError:
    return GeminiFlowError("INVALID_INPUT", message, details=details)


def conflict(message: str, **details: Any) -> GeminiFlowError:
    return GeminiFlowError("CONFLICT", message, details=details)


# A path that is missing, a folder, not a folder, too long, unreadable or unwritable: a problem
# with what the user gave (CLI.md §3: exit 2), not a bug, wherever in the program it surfaces.
_PATH_ERRNOS = frozenset(
    "ENOENT EACCES EPERM EISDIR ENOTDIR ENAMETOOLONG ELOOP EROFS EEXIST ENXIO ENODEV ETXTBSY".split()
)


def from_os_error(exc: OSError) -> GeminiFlowError:
    """The spec's error for an ``OSError`` that reached the surface: INVALID_INPUT naming the path
    for the path errors above, else INTERNAL (a bug: the failing code should have said more)."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    if exc.filename is not None and name in _PATH_ERRNOS:
        target = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        return GeminiFlowError(
            "INVALID_INPUT", f"cannot use {target}: {exc.strerror}", details={"path": str(exc.filename)}
        )
    return GeminiFlowError(
        "INTERNAL",
        f"internal error ({type(exc).__name__}: {exc}); this is a bug in gemini-flow, please report it "
        "with the output of --debug",
    )


def as_error(exc: BaseException, busy_timeout: float | None = None) -> GeminiFlowError:
    """The spec's error for any exception that reached a door (the CLI, the HTTP server, an MCP
    tool): itself for a GeminiFlowError; SQLite's errors translated (core/db.py: busy, full disk,
    damaged, read-only, limits); a full disk anywhere DISK_FULL; a path the user gave that cannot
    be used INVALID_INPUT (:func:`from_os_error`); a PostgreSQL server's errors as its statements'
    are; anything else INTERNAL, a bug."""
    import errno
    import sqlite3
    import sys

    if isinstance(exc, GeminiFlowError):
        return exc
    psycopg = sys.modules.get("psycopg")  # loaded only when a command runs on a server
    if psycopg is not None and isinstance(exc, psycopg.Error):
        # A server's error that left the storage layer untranslated (a catalog query of its own):
        # the same translation as every statement's (core/storage/postgres.py).
        from gemini_flow_cli.core.storage.postgres import as_sqlite_error

        exc = as_sqlite_error(exc)
        if isinstance(exc, GeminiFlowError):
            return exc
    if isinstance(exc, sqlite3.Error):
        from gemini_flow_cli.core.db import translate_sqlite_error

        return translate_sqlite_error(exc, busy_timeout)
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            from gemini_flow_cli.core.db import disk_full_error

            return disk_full_error(exc.filename)
        return from_os_error(exc)
    return GeminiFlowError(
        "INTERNAL",
        f"internal error ({type(exc).__name__}: {exc}); this is a bug in gemini-flow, please report it "
        "with the output of --debug",
    )
