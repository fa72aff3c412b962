"""Every error a PostgreSQL server can send maps to an exit status by what it means (issue 16).

A condition that is the server's (a cancelled statement, a lost connection, a read-only session,
exhausted resources, a limit, a refused value, damage) must never be INTERNAL (exit 70, "a bug in
gemini-flow"); only what is our SQL's fault may be. The walk covers every SQLSTATE psycopg knows,
so a class nobody thought of fails here. No server needed (tests/test_postgres.py runs the same
conditions against one).
"""

from __future__ import annotations

import pytest

psycopg = pytest.importorskip("psycopg")
from psycopg import errors as pg_errors  # noqa: E402

from gemini_flow_cli.errors import GeminiFlowError, as_error  # noqa: E402

# PostgreSQL's documentation, Appendix A: the classes that are the server's conditions.
SERVERS = ("08", "22", "25006", "25P03", "25P04", "28", "3D", "3F", "40", "53", "54", "55", "57", "58", "XX")
# Our SQL's fault (syntax, undefined objects, a failed transaction used, a constraint the core
# should have checked): a real bug, so INTERNAL is right.
OURS = ("42601", "42P01", "42703", "42883", "0A000", "25P02", "23505")

STATES = sorted(state for state in pg_errors._sqlcodes if len(state) == 5)


def _error(state: str) -> GeminiFlowError:
    exc = pg_errors.lookup(state)(f"message of {state}")
    return as_error(exc, busy_timeout=10)


@pytest.mark.parametrize("state", [s for s in STATES if s.startswith(SERVERS)])
def test_a_condition_of_the_server_is_never_a_bug(state):
    error = _error(state)
    assert error.code != "INTERNAL", (state, error.message)
    assert error.exit_status in (2, 4, 6), (state, error.code)


@pytest.mark.parametrize("state, code, words", [
    ("57014", "CONNECTION_FAILED", "cancelled the statement"),  # statement_timeout
    ("25P03", "CONNECTION_FAILED", "connection to the PostgreSQL server was lost"),  # idle in transaction
    ("57P01", "CONNECTION_FAILED", "connection to the PostgreSQL server was lost"),  # admin shutdown
    ("25006", "CONNECTION_FAILED", "read-only"),  # a standby, default_transaction_read_only
    ("53300", "CONNECTION_FAILED", "out of resources"),  # too many connections
    ("53100", "DISK_FULL", "disk is full"),
    ("54000", "INVALID_INPUT", "beyond what the PostgreSQL server takes"),
    ("22003", "INVALID_INPUT", "refused a value"),
    ("XX001", "CONNECTION_FAILED", "damage"),
    ("40P01", "CONNECTION_FAILED", "busy"),
])
def test_each_kind_says_what_happened(state, code, words):
    error = _error(state)
    assert error.code == code and words in error.message, error.message


def test_a_key_too_long_for_the_index_says_so():
    exc = pg_errors.ProgramLimitExceeded("index row size 4112 exceeds btree version 4 maximum 2704 for index x")
    error = as_error(exc, busy_timeout=10)
    assert error.code == "INVALID_INPUT" and "key is too long" in error.message and "SQLite" not in error.message


@pytest.mark.parametrize("state", OURS)
def test_our_own_sql_errors_stay_bugs(state):
    assert _error(state).code == "INTERNAL"
