"""Helpers shared by the test modules of the coordination groups."""

from __future__ import annotations

import sqlite3

T0 = 1_754_217_000  # 2025-08-03T10:30:00Z


def sql(db_path, statement, params=()):
    """Run one statement on the test database with plain sqlite3 and return its rows."""
    conn = sqlite3.connect(db_path)
    try:
        with conn:
            return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


def keys_tree(value):
    """The shape of a JSON document: its keys, nested, without the values."""
    if isinstance(value, dict):
        return {k: keys_tree(v) for k, v in value.items()}
    return None
