"""Shared fixtures: a fresh database per test, the CLI through CliRunner, and as a process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gemini_flow_cli.cli import build_app

# The installed console script when there is one (the README's install puts it beside python).
_SCRIPT = Path(sys.executable).with_name("gemini-flow")
GEMINI_FLOW = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gemini_flow_cli"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path_factory):
    """No test sees the developer's environment, key or user configuration."""
    for name in list(os.environ):
        if name.startswith("GEMINI_FLOW_") or name == "NO_COLOR":
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("HOME", str(home))


# GEMINI_FLOW_TEST_DB=postgresql://...: the suite runs a second time with every test's database in
# a fresh schema of that PostgreSQL database (.ci/run starts a throwaway server). A test that uses
# its database as a local file (a Path method, sqlite3.connect on it) is skipped, saying what it did.
TEST_SERVER = os.environ.get("GEMINI_FLOW_TEST_DB")


def not_on_a_server(reason: str):
    """Mark a test of something a PostgreSQL database does not offer (README "Running on
    PostgreSQL"): skipped on the second run, saying what."""
    return pytest.mark.skipif(bool(TEST_SERVER), reason=f"not on PostgreSQL: {reason}")


class ServerDatabase(str):
    """The URL of a test's PostgreSQL schema, standing where tests expect a database file path.

    Any file operation a test asks of it (``.exists()``, ``.parent``, ``.stat()``...) skips the
    test: what it checks is what only a local file can do (README "Running on PostgreSQL")."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        pytest.skip(f"local file only: the test uses its database as a file (db_path.{name})")

    def __fspath__(self):
        pytest.skip("local file only: the test opens its database as a file")

    def __truediv__(self, other):
        pytest.skip("local file only: the test builds a path from its database")


@pytest.fixture
def db_path(tmp_path, request):
    if not TEST_SERVER:
        return tmp_path / ".hive-mind" / "hive.db"
    return _server_schema(request)


_POOL: list[str] = []  # schemas of this test process at the latest version, emptied, ready for reuse


def _server_schema(request) -> ServerDatabase:
    """A schema of the test server for one test: a pooled one, emptied after its last test (the
    migrations run once per schema, not once per test), or a new one (always for a test marked
    ``fresh_schema``: it starts from no schema at all, as from a missing file). A test that left its schema
    at another version or with other tables gets a fresh one next time."""
    import uuid

    import psycopg

    if _POOL and request.node.get_closest_marker("fresh_schema") is None:
        schema = _POOL.pop()
    else:
        schema = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(TEST_SERVER, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    # application_name: every connection of the test carries its schema's name, so that the
    # release below can end a straggler (a process the test started that is still connected).
    url = (f"{TEST_SERVER}{'&' if '?' in TEST_SERVER else '?'}options=-csearch_path%3D{schema}"
           f"&application_name={schema}")

    def release():
        # Never fails the test: a schema that cannot be emptied at once is dropped, or left behind
        # on the throwaway server, and never pooled.
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE application_name = %s AND pid <> pg_backend_pid()", (schema,))
                conn.execute("SET lock_timeout = '10s'")
                if _reusable(conn):
                    # The optional full-text index (core/fts.py) is not part of an emptied schema.
                    conn.execute("DROP INDEX IF EXISTS memory_fts")
                    conn.execute("DROP FUNCTION IF EXISTS gf_fts_document(text, text)")
                    tables = [r[0] for r in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                        "AND tablename <> 'schema_migrations'").fetchall()]
                    conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
                    _POOL.append(schema)
                else:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
        except psycopg.Error:
            pass

    request.addfinalizer(release)
    return ServerDatabase(url)


def _reusable(conn) -> bool:
    from gemini_flow_cli.core import migrations

    try:
        versions = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
    except Exception:  # noqa: BLE001 - no schema (the test never wrote): start afresh
        return False
    tables = {r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()}
    return versions == set(migrations.VERSIONS) and tables == _expected_tables()


def _expected_tables() -> set[str]:
    import sqlite3

    from gemini_flow_cli.core import migrations

    scratch = sqlite3.connect(":memory:")
    migrations.apply(scratch, migrations.plan())
    names = {r[0] for r in scratch.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    scratch.close()
    return names


def pytest_configure(config):
    config.addinivalue_line("markers", "fresh_schema: on the PostgreSQL run, start from an empty schema "
                                       "(not a pooled one at the latest version)")


@pytest.fixture(autouse=True)
def _no_sqlite_on_a_server(monkeypatch):
    """On the PostgreSQL run, a test that opens its database with sqlite3 is about the file."""
    if not TEST_SERVER:
        return
    import sqlite3

    real = sqlite3.connect

    def connect(database, *args, **kwargs):
        if str(database).startswith(("postgresql://", "postgresql:/")):  # a URL, or a Path made of one
            pytest.skip("local file only: the test reads its database with sqlite3")
        return real(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)


class Result:
    def __init__(self, exit_code: int, stdout: str, stderr: str):
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    @property
    def json(self):
        return json.loads(self.stdout)

    @property
    def error(self):
        return json.loads(self.stderr.strip().splitlines()[-1])["error"]

    def __repr__(self) -> str:
        return f"Result(exit={self.exit_code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


@pytest.fixture
def cli(db_path):
    """Run gemini-flow in-process against the test's database: ``cli("memory", "store", "k", "v")``.

    Output is JSON unless the test passes another --format.
    """

    def invoke(*args: str, input: str | None = None, env: dict | None = None, db: Path | None = db_path) -> Result:
        argv = [*(["--db", str(db)] if db is not None else []), *args]
        if not any(a in ("--format", "--json") or a.startswith("--format=") for a in args):
            argv = ["--json", *argv]
        runner = CliRunner()
        result = runner.invoke(build_app(argv), argv, input=input, env=env, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture
def run(tmp_path, db_path):
    """Run the installed ``gemini-flow`` as a real process in ``tmp_path``."""

    def call(*args: str, input: str | None = None, env: dict | None = None, cwd: Path | None = None,
             db: Path | None = db_path, timeout: float = 60) -> subprocess.CompletedProcess:
        argv = [*GEMINI_FLOW, *(["--db", str(db)] if db is not None else []), *args]
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(argv, input=input, capture_output=True, text=True, cwd=cwd or tmp_path,
                              env=full_env, timeout=timeout)

    return call


def gemini_flow_command() -> list[str]:
    return list(GEMINI_FLOW)


@pytest.fixture
def frozen(monkeypatch):
    """A settable clock: ``frozen.now = T`` moves time for the core (starts at tests.helpers.T0)."""
    from tests.helpers import T0

    class Clock:
        now = T0

    clock = Clock()
    monkeypatch.setattr("gemini_flow_cli.core.clock.now", lambda: clock.now)
    return clock


requires_groff = pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
