"""The one list contract (issue 21): paging, filter values and referenced ids, for every list.

Every list command takes ``--limit`` (default :data:`DEFAULT_LIMIT`) and ``--offset``; its
``total`` counts every match before the limit and offset are applied; a filter value outside
its known set is INVALID_INPUT (exit 2), and a filter naming an agent, swarm, task or decision
that does not exist is NOT_FOUND (exit 1), as it is wherever else an id is referenced (CLI.md
§3). Core lists call these helpers instead of checking in their own words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gemini_flow_cli.errors import GeminiFlowError

DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000

# What each referenced id names, for NOT_FOUND messages and details: table, noun, details key.
_ID_TABLES = {
    "agent": ("agents", "agentId"),
    "swarm": ("swarms", "swarmId"),
    "task": ("tasks", "taskId"),
    "decision": ("consensus_decisions", "decisionId"),
}


def check_page(limit: int, offset: int) -> None:
    """``limit`` in 0..MAX_LIMIT and ``offset`` >= 0, else INVALID_INPUT (exit 2)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
        raise GeminiFlowError("INVALID_INPUT", f"invalid --limit {limit!r}: 0 to {MAX_LIMIT}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise GeminiFlowError("INVALID_INPUT", f"invalid --offset {offset!r}: 0 or more")


def page_rows(rows: Sequence[Any], limit: int, offset: int) -> tuple[list[Any], int]:
    """``(rows[offset:offset + limit], len(rows))``: the page and the total before paging."""
    check_page(limit, offset)
    return list(rows[offset:offset + limit]), len(rows)


def page_query(conn, sql: str, params: Sequence[Any], limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Run ``sql`` (a SELECT with its ORDER BY) for one page; returns (rows as dicts by column
    name, total matches). The total is a COUNT over the same query, so it is exact whatever the page.
    """
    check_page(limit, offset)
    total = conn.execute(f"SELECT COUNT(*) FROM ({sql})", list(params)).fetchone()[0]
    cursor = conn.execute(f"{sql} LIMIT ? OFFSET ?", [*params, limit, offset])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()], total


def check_choice(value: str | None, allowed: Iterable[str], option: str) -> str | None:
    """``value`` if it is one of ``allowed`` (or None); else INVALID_INPUT naming the choices."""
    allowed = tuple(allowed)
    if value is not None and value not in allowed:
        choices = (f"use one of {', '.join(allowed)}" if len(allowed) <= 12
                   else f"not one of the {len(allowed)} known values (error.details.allowed lists them)")
        raise GeminiFlowError(
            "INVALID_INPUT", f"invalid {option} {value!r}: {choices}",
            details={"option": option, "value": value, "allowed": list(allowed)},
        )
    return value


def require_id(conn, kind: str, value: str | None) -> str | None:
    """``value`` if the ``kind`` (agent, swarm, task, decision) it names exists (or it is None);
    else NOT_FOUND (exit 1) with the id in ``details`` under the seed's name (``agentId``...)."""
    if value is None:
        return None
    table, field = _ID_TABLES[kind]
    if conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (value,)).fetchone() is None:
        raise GeminiFlowError("NOT_FOUND", f"no {kind} {value!r}", details={field: value})
    return value
