"""Agents, swarms and memberships made with plain SQL, for the tests of tasks and consensus.

These tests do not depend on the agent and swarm commands: they set up exactly the rows the
coordination primitives read (``agents``, ``swarms``, ``swarm_members``).
"""

from __future__ import annotations

import json
from pathlib import Path

from gemini_flow_cli.core.db import Database


def open_db(path: Path) -> Database:
    """The test database at the latest schema (created on first write)."""
    db = Database.open(path, create=True)
    with db.write():
        pass
    return db


def add_agent(db: Database, agent_id: str, *, capabilities=(), status: str = "active",
              performance_score: float = 0.0, agent_type: str = "coder") -> str:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO agents (id, name, type, status, capabilities, performance_score, created_at, last_activity) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, 0)",
            (agent_id, agent_id, agent_type, status, json.dumps(list(capabilities)), performance_score),
        )
    return agent_id


def add_swarm(db: Database, swarm_id: str, *, members=(), status: str = "active", max_agents: int = 8) -> str:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO swarms (id, topology, max_agents, status, created_at) VALUES (?, 'mesh', ?, ?, 0)",
            (swarm_id, max_agents, status),
        )
        for agent in members:
            conn.execute("INSERT INTO swarm_members (swarm_id, agent_id, joined_at) VALUES (?, ?, 0)", (swarm_id, agent))
    return swarm_id


def setup_swarm(path: Path, swarm_id: str = "swarm-1", agents=("agent-1",), *, capabilities=None,
                scores=None, status: str = "active", max_agents: int = 8) -> None:
    """A swarm with the given member agents (created too), in the database at ``path``."""
    db = open_db(path)
    try:
        for agent in agents:
            add_agent(
                db, agent,
                capabilities=(capabilities or {}).get(agent, ()),
                performance_score=(scores or {}).get(agent, 0.0),
            )
        add_swarm(db, swarm_id, members=agents, status=status, max_agents=max_agents)
    finally:
        db.close()


def query(path: Path, sql: str, params=()):
    db = Database.open(path, create=False)
    try:
        return db.conn.execute(sql, params).fetchall()
    finally:
        db.close()


def execute(path: Path, sql: str, params=()) -> None:
    db = Database.open(path, create=True)
    try:
        with db.write() as conn:
            conn.execute(sql, params)
    finally:
        db.close()
