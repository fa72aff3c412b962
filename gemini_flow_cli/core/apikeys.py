"""API keys of the HTTP server (CLI.md §9): who may call it, with which role, where.

A token is ``gf_`` followed by 43 URL-safe base64 characters: 256 bits from :func:`secrets.token_bytes`.
It is shown once, by :func:`create`; the ``api_keys`` table (schema 1.0.13) keeps only its SHA-256.
A fast hash is enough because the token is random and long (nothing to guess from a dictionary),
and it keeps authentication to one indexed lookup per request.

Roles, in increasing power:

- ``reader``: every read (retrieve, search, list, stats, agents, swarms, tasks, decisions);
- ``writer``: reads and every write of memory and coordination records (store, delete, batch,
  orchestrate, claim, vote, ...);
- ``admin``: everything, including clearing whole namespaces, cleanup and the audit log.

A key may be limited to namespaces (memory outside them is 403, lists are filtered to them) and
bound to an agent (it votes, claims, heartbeats and reports task results only as that agent).
Every write made with a key has the key's name as the audit actor.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from gemini_flow_cli.core import clock
from gemini_flow_cli.errors import GeminiFlowError

ROLES = ("reader", "writer", "admin")
TOKEN_PREFIX = "gf_"
TOKEN_BYTES = 32  # 256 bits
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_TOKEN = re.compile(r"gf_[A-Za-z0-9_-]{43}")


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def validate_name(name: str) -> str:
    """A key name: 1 to 128 letters, digits, ``.``, ``_``, ``:``, ``-`` (first a letter or digit),
    else INVALID_INPUT. Names appear in the audit log as actors, so they are plain words."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"invalid API key name {name!r}: 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
        )
    return name


@dataclass(frozen=True)
class ApiKey:
    """An authenticated key: its name (the audit actor), role, namespaces (None: all) and agent."""

    name: str
    role: str
    namespaces: tuple[str, ...] | None = None
    agent_id: str | None = None

    def require_role(self, role: str) -> None:
        """PERMISSION_DENIED unless this key's role is ``role`` or above."""
        if ROLES.index(self.role) < ROLES.index(role):
            raise GeminiFlowError(
                "PERMISSION_DENIED",
                f"API key {self.name!r} has role {self.role}; this needs {role} or above",
                details={"role": self.role, "required": role},
            )

    def require_namespace(self, namespace: str) -> None:
        """PERMISSION_DENIED when this key is limited to namespaces and ``namespace`` is not one."""
        if self.namespaces is not None and namespace not in self.namespaces:
            raise GeminiFlowError(
                "PERMISSION_DENIED",
                f"API key {self.name!r} may not use namespace {namespace!r}",
                details={"namespace": namespace, "allowed": list(self.namespaces)},
            )

    def agent_for(self, agent_id: str | None) -> str | None:
        """The agent a vote, claim or heartbeat acts as: the bound agent when none is given;
        another agent than the bound one is PERMISSION_DENIED."""
        if self.agent_id is None:
            return agent_id
        if agent_id is not None and agent_id != self.agent_id:
            raise GeminiFlowError(
                "PERMISSION_DENIED",
                f"API key {self.name!r} is bound to agent {self.agent_id!r} and may not act as {agent_id!r}",
                details={"agentId": agent_id, "boundAgent": self.agent_id},
            )
        return self.agent_id


def create(
    db,
    name: str,
    *,
    role: str,
    namespaces: list[str] | tuple[str, ...] = (),
    agent_id: str | None = None,
    expires_in: int | None = None,
) -> dict[str, Any]:
    """Create a key; return its description plus ``"token"``, the only time the token is shown.

    ``expires_in``: seconds from now (None: never). An unknown role or a bad name or namespace is
    INVALID_INPUT; an existing name is CONFLICT; an agent that does not exist is NOT_FOUND.
    """
    from gemini_flow_cli.core import agents, audit
    from gemini_flow_cli.core.durations import after
    from gemini_flow_cli.core.listing import check_choice
    from gemini_flow_cli.core.memory import validate_namespace

    validate_name(name)
    check_choice(role, ROLES, "--role")
    scoped = sorted({validate_namespace(ns) for ns in namespaces}) or None
    now = int(clock.now())
    expires_at = after(now, expires_in, what="--expires") if expires_in is not None else None
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    with db.write() as conn:
        if agent_id is not None:
            agents.require(conn, agent_id)
        if conn.execute("SELECT 1 FROM api_keys WHERE name = ?", (name,)).fetchone():
            raise GeminiFlowError("CONFLICT", f"an API key named {name!r} exists; revoke it first or choose another name",
                                  details={"name": name})
        conn.execute(
            "INSERT INTO api_keys (name, token_hash, role, namespaces, agent_id, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, hash_token(token), role, json.dumps(scoped) if scoped else None, agent_id, now, expires_at),
        )
        view = _view((name, role, json.dumps(scoped) if scoped else None, agent_id, now, expires_at), now)
        audit.record(db, "api_key", name, "create", after=view)
    return {"success": True, **view, "token": token}


def list_keys(db, *, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """``{"keys": [...], "total", "limit", "offset"}``, by name; never a token or its hash."""
    from gemini_flow_cli.core.listing import page_query

    now = int(clock.now())
    with db.read() as conn:
        if not _has_table(conn):
            rows, total = [], 0
        else:
            rows, total = page_query(
                conn, "SELECT name, role, namespaces, agent_id, created_at, expires_at FROM api_keys ORDER BY name",
                (), limit, offset,
            )
    keys = [_view(tuple(row.values()), now) for row in rows]
    return {"keys": keys, "total": total, "limit": limit, "offset": offset}


def revoke(db, name: str) -> dict[str, Any]:
    """Delete the key named ``name`` (its token stops working at once); NOT_FOUND if none."""
    from gemini_flow_cli.core import audit

    with db.write() as conn:
        row = conn.execute(
            "SELECT name, role, namespaces, agent_id, created_at, expires_at FROM api_keys WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise GeminiFlowError("NOT_FOUND", f"no API key named {name!r}", details={"name": name})
        conn.execute("DELETE FROM api_keys WHERE name = ?", (name,))
        audit.record(db, "api_key", name, "revoke", before=_view(row, int(clock.now())))
    return {"success": True, "name": name, "revoked": True}


def count(db) -> int:
    """How many keys exist (expired ones included)."""
    with db.read() as conn:
        if not _has_table(conn):
            return 0
        return conn.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0]


def authenticate(conn, token: str | None) -> ApiKey:
    """The live key whose token is ``token``, or PERMISSION_DENIED (never naming the token).

    The lookup is by the token's hash; the stored hash is then compared in constant time, so the
    answer's timing tells nothing about how close a guess was. An expired key is refused.
    """
    if not token:
        raise GeminiFlowError("PERMISSION_DENIED", "authentication required: send Authorization: Bearer TOKEN",
                              details={"reason": "missing"})
    digest = hash_token(token)
    row = None
    if _TOKEN.fullmatch(token):
        row = conn.execute(
            "SELECT name, role, namespaces, agent_id, expires_at, token_hash FROM api_keys WHERE token_hash = ?",
            (digest,),
        ).fetchone()
    if row is None or not hmac.compare_digest(row[5], digest):
        raise GeminiFlowError("PERMISSION_DENIED", "invalid API key", details={"reason": "invalid"})
    name, role, namespaces, agent_id, expires_at, _ = row
    if expires_at is not None and expires_at <= clock.now():
        raise GeminiFlowError("PERMISSION_DENIED", f"API key {name!r} has expired", details={"reason": "expired", "name": name})
    return ApiKey(name, role, tuple(json.loads(namespaces)) if namespaces else None, agent_id)


def _has_table(conn) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'api_keys'").fetchone() is not None


def _view(row: tuple, now: int) -> dict[str, Any]:
    name, role, namespaces, agent_id, created_at, expires_at = row
    return {
        "name": name,
        "role": role,
        "namespaces": json.loads(namespaces) if namespaces else None,
        "agent": agent_id,
        "createdAt": clock.iso(created_at),
        "expiresAt": clock.iso(expires_at),
        "expired": expires_at is not None and expires_at <= now,
    }
