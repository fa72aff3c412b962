"""Dynamic shell completion: namespaces and keys read from the current database.

These callbacks run on every <TAB>, inside the shell's completion call, so they must be cheap
and harmless: they open the discovered database read-only (``mode=ro`` URI, which can never
create the file or its folder), run one indexed query, and return ``[]`` on any error at all (no
database, a locked or foreign file, an old schema): a completion that prints a traceback into
the user's command line is worse than none.

The two queries live here rather than in ``core/`` on purpose: they must not go through
``Database.open`` (which may migrate, takes the write path's pragmas and can create files), and
they read only the seed's ``memory_store`` columns that every schema version has.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import typer

LIMIT = 200  # a shell menu longer than this is no help, and the query stays fast


def _database_path(ctx: typer.Context) -> Path | None:
    """The database this command line would use: --db, GEMINI_FLOW_DB, or the discovered one."""
    from gemini_flow_cli.core.db import discover

    given = ctx.find_root().params.get("db") or os.environ.get("GEMINI_FLOW_DB")
    path = Path(given).expanduser() if given else discover()
    return path if path.is_file() else None


def _query(ctx: typer.Context, sql: str, params: tuple) -> list[str]:
    try:
        path = _database_path(ctx)
        if path is None:
            return []
        from gemini_flow_cli.core import config, trust

        # An untrusted database (another user's, or writable by others) offers no completions:
        # its key names are theirs to choose, control characters included.
        config.load_user_file(config.user_file_path(os.environ))
        trust.check_database(path, config.user_value("security.trustedPaths"))
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0.2)
        try:
            return [row[0] for row in conn.execute(sql, params)]
        finally:
            conn.close()
    except Exception:  # noqa: BLE001 - completion never fails loudly (see the module docstring)
        return []


def _prefix_params(incomplete: str) -> tuple[str, int, str]:
    # `x >= prefix AND substr(x, 1, n) = prefix` is a case-sensitive prefix match that can use
    # the index on the column (LIKE is case-insensitive and GLOB would need escaping).
    return incomplete, len(incomplete), incomplete


def complete_namespace(ctx: typer.Context, incomplete: str) -> list[str]:
    """Namespaces that hold at least one entry and start with what was typed."""
    return _query(
        ctx,
        "SELECT DISTINCT namespace FROM memory_store WHERE namespace >= ? AND substr(namespace, 1, ?) = ? "
        "ORDER BY namespace LIMIT " + str(LIMIT),
        _prefix_params(incomplete),
    )


def complete_key(ctx: typer.Context, incomplete: str) -> list[str]:
    """Unexpired keys of the command line's namespace (-n, GEMINI_FLOW_NAMESPACE or 'default')."""
    namespace = ctx.params.get("namespace") or os.environ.get("GEMINI_FLOW_NAMESPACE") or "default"
    from gemini_flow_cli.core import clock

    now = int(clock.now())
    return _query(
        ctx,
        "SELECT key FROM memory_store WHERE namespace = ? AND (ttl IS NULL OR ttl > ?) "
        "AND key >= ? AND substr(key, 1, ?) = ? ORDER BY key LIMIT " + str(LIMIT),
        (namespace, now, *_prefix_params(incomplete)),
    )
