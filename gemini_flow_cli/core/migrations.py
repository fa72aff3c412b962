"""Schema versions: one registered step per version, each paired with its reverse.

Version 1.0.3 is the seed's schema without ``neural_patterns``, and 1.0.4 is the seed's own
migration that adds it; both run the seed's SQL text verbatim (``sql/seed.sql``), so the tables,
columns and indexes are the seed's, statement for statement. Applied versions are recorded in
``schema_migrations``; a database with tables but no such record belongs to another application.

Steps are lists of SQL statements rather than functions so that ``migrate up --dry-run`` can print
exactly what would run. An ``upgrade``/``downgrade`` runs all of its steps and their records in one
transaction: a failing step leaves the version as it was.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

from gemini_flow_cli.errors import GeminiFlowError

RECORD_TABLE = "schema_migrations"
_RECORD_SQL = (
    f"CREATE TABLE IF NOT EXISTS {RECORD_TABLE} ("
    "version TEXT PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)"
)


class Migration:
    """One schema version: the SQL statements that apply it (``up``) and undo it (``down``).

    A plain class rather than a dataclass: every command imports this module, and building a
    dataclass costs about a millisecond at import.
    """

    __slots__ = ("version", "description", "up", "down")

    def __init__(self, version: str, description: str, up: tuple[str, ...], down: tuple[str, ...] = ()):
        self.version, self.description, self.up, self.down = version, description, up, down

    def _fields(self) -> tuple:
        return (self.version, self.description, self.up, self.down)

    def __eq__(self, other: object) -> bool:
        return type(other) is Migration and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"Migration({self.version!r}, {self.description!r})"


@functools.lru_cache(maxsize=1)
def _seed_statements() -> tuple[str, ...]:
    text = (Path(__file__).parent / "sql" / "seed.sql").read_text("utf-8")
    statements, buffer = [], ""
    for line in text.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip().rstrip(";"))
            buffer = ""
    return tuple(statements)


def _seed_index(name: str) -> str:
    """The seed's own CREATE INDEX statement for ``name``, so a `down` restores it verbatim."""
    return next(s for s in _seed_statements() if s.startswith(f"CREATE INDEX {name} "))


def _build() -> list[Migration]:
    seed = _seed_statements()
    neural = tuple(s for s in seed if "neural_patterns" in s)
    base = tuple(s for s in seed if "neural_patterns" not in s)
    return [
        Migration("1.0.3", "The seed's schema: 11 tables and their indexes", base),
        Migration(
            "1.0.4",
            "Add neural patterns table",
            neural,
            ("DROP TABLE neural_patterns",),
        ),
        Migration(
            "1.0.5",
            "Chain audit log rows with SHA-256 hashes (tamper evidence)",
            (
                "ALTER TABLE audit_log ADD COLUMN prev_hash TEXT",
                "ALTER TABLE audit_log ADD COLUMN row_hash TEXT",
            ),
            (
                "ALTER TABLE audit_log DROP COLUMN row_hash",
                "ALTER TABLE audit_log DROP COLUMN prev_hash",
            ),
        ),
        Migration(
            "1.0.6",
            "Swarm membership as a relation",
            (
                "CREATE TABLE swarm_members (\n"
                "    swarm_id TEXT NOT NULL REFERENCES swarms(id),\n"
                "    agent_id TEXT NOT NULL REFERENCES agents(id),\n"
                "    joined_at INTEGER NOT NULL,\n"
                "    PRIMARY KEY (swarm_id, agent_id)\n"
                ")",
                "CREATE INDEX idx_swarm_members_agent_id ON swarm_members(agent_id)",
            ),
            ("DROP TABLE swarm_members",),
        ),
        Migration(
            "1.0.7",
            "Subtasks, task creation time and context",
            (
                # No REFERENCES on parent_id: SQLite cannot DROP a column that is in a foreign
                # key, and `down` must be able to remove it. The core checks the parent exists.
                "ALTER TABLE tasks ADD COLUMN parent_id TEXT",
                "ALTER TABLE tasks ADD COLUMN created_at INTEGER",
                "ALTER TABLE tasks ADD COLUMN context TEXT",
                "CREATE INDEX idx_tasks_parent_id ON tasks(parent_id)",
            ),
            (
                "DROP INDEX idx_tasks_parent_id",
                "ALTER TABLE tasks DROP COLUMN context",
                "ALTER TABLE tasks DROP COLUMN created_at",
                "ALTER TABLE tasks DROP COLUMN parent_id",
            ),
        ),
        Migration(
            "1.0.8",
            "Index pending tasks in claim order",
            (
                # The expression is the claim query's priority rank (core/tasks.py), so SQLite
                # walks pending tasks in claim order and stops at the first eligible one instead
                # of sorting every pending task on each claim: 206 -> 1,393 claims/s with 8
                # competing processes over 10,000 tasks (benchmarks/coordination.py).
                "CREATE INDEX idx_tasks_claim ON tasks(status, (CASE priority WHEN 'critical' THEN 0 "
                "WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END), created_at)",
            ),
            ("DROP INDEX idx_tasks_claim",),
        ),
        Migration(
            "1.0.9",
            "Index memory by (namespace, key) in place of two redundant seed indexes",
            (
                # A namespace-scoped pattern search over 1M keys took 151 ms with the seed's
                # indexes and 1.1 ms with this one (benchmarks/throughput.py). The two seed
                # indexes it replaces are redundant under CLI.md §5: UNIQUE(key, namespace)
                # leads with the columns of idx_memory_key, and this index leads with those of
                # idx_memory_namespace, so every query they served stays indexed.
                "CREATE INDEX idx_memory_namespace_key ON memory_store(namespace, key)",
                "DROP INDEX idx_memory_key",
                "DROP INDEX idx_memory_namespace",
            ),
            (
                _seed_index("idx_memory_key"),
                _seed_index("idx_memory_namespace"),
                "DROP INDEX idx_memory_namespace_key",
            ),
        ),
        Migration(
            "1.0.10",
            "Entry versions and a change feed (database revision) for compare-and-set and watch",
            (
                # Existing entries start at version 1, as if just created.
                "ALTER TABLE memory_store ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
                # One row per write to memory_store, in the writer's transaction. The revision is
                # the database-wide change counter: AUTOINCREMENT never reuses a number, even
                # after compaction deleted the rows that held it (PostgreSQL: an identity column).
                "CREATE TABLE memory_changes (\n"
                "    revision INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                "    action TEXT NOT NULL,\n"
                "    key TEXT,\n"
                "    namespace TEXT,\n"
                "    version INTEGER,\n"
                # The value this change replaced or removed, as stored (see core/changes.py).
                "    previous_value TEXT,\n"
                "    previous_encrypted INTEGER NOT NULL DEFAULT 0,\n"
                "    at INTEGER NOT NULL\n"
                ")",
                # No index on (namespace, key): `memory history` scans the kept feed instead, because
                # that index cost batch writes about 5% of their speed (measured with
                # benchmarks/watch.py) and history is the rare reader.
            ),
            (
                "DROP TABLE memory_changes",
                "ALTER TABLE memory_store DROP COLUMN version",
            ),
        ),
        Migration(
            "1.0.11",
            "Sliding TTLs and task leases: a claim's deadline, claims counted against a maximum, lapses per agent",
            (
                # The TTL as given, in seconds, so `retrieve --touch` can restart it (sliding
                # expiry); NULL for entries stored before: their TTL is ttl - updated_at.
                "ALTER TABLE memory_store ADD COLUMN ttl_seconds INTEGER",
                "ALTER TABLE tasks ADD COLUMN lease_expires_at INTEGER",
                "ALTER TABLE tasks ADD COLUMN lease_seconds INTEGER",
                "ALTER TABLE tasks ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
                "ALTER TABLE tasks ADD COLUMN max_attempts INTEGER",
                # One row per lease that lapsed: the retry it caused counts against that agent.
                "CREATE TABLE task_lapses (\n"
                "    task_id TEXT NOT NULL,\n"
                "    agent_id TEXT,\n"
                "    lapsed_at INTEGER NOT NULL,\n"
                "    attempt INTEGER NOT NULL\n"
                ")",
                "CREATE INDEX idx_task_lapses_agent_id ON task_lapses(agent_id)",
                "CREATE INDEX idx_task_lapses_task_id ON task_lapses(task_id)",
                # Every claim looks for lapsed leases first: only leased tasks are in this index.
                "CREATE INDEX idx_tasks_lease ON tasks(lease_expires_at) WHERE lease_expires_at IS NOT NULL",
            ),
            (
                "DROP INDEX idx_tasks_lease",
                "DROP TABLE task_lapses",
                "ALTER TABLE tasks DROP COLUMN max_attempts",
                "ALTER TABLE tasks DROP COLUMN attempts",
                "ALTER TABLE tasks DROP COLUMN lease_seconds",
                "ALTER TABLE tasks DROP COLUMN lease_expires_at",
                "ALTER TABLE memory_store DROP COLUMN ttl_seconds",
            ),
        ),
        Migration(
            "1.0.12",
            "Index encrypted entries, so bulk writes can tell cheaply whether they re-store a secret",
            (
                # Only encrypted rows are in it: a batch asks "is any entry encrypted?" and "which
                # of these keys are?" without scanning memory_store, and a database with no
                # secrets pays nothing per write (CLI.md §4: re-storing keeps encryption).
                "CREATE INDEX idx_memory_encrypted ON memory_store(namespace, key) WHERE encrypted = 1",
            ),
            ("DROP INDEX idx_memory_encrypted",),
        ),
        Migration(
            "1.0.13",
            "API keys for the HTTP server: hashed tokens, roles, namespace scopes, agent binding, expiry",
            (
                # Only the SHA-256 of a token is kept (core/apikeys.py): a token is 256 random
                # bits, so a fast hash is as safe as a slow one and costs nothing per request.
                "CREATE TABLE api_keys (\n"
                "    name TEXT PRIMARY KEY,\n"
                "    token_hash TEXT NOT NULL UNIQUE,\n"
                "    role TEXT NOT NULL,\n"
                "    namespaces TEXT,\n"
                "    agent_id TEXT,\n"
                "    created_at INTEGER NOT NULL,\n"
                "    expires_at INTEGER\n"
                ")",
            ),
            ("DROP TABLE api_keys",),
        ),
        Migration(
            "1.0.14",
            "Workflow executions: the task that runs one execution names its workflow",
            (
                # Set only on an execution's top task (core/workflows.py): a workflow's
                # execution_count and success_rate are counted from these rows, so only they are
                # in the index.
                "ALTER TABLE tasks ADD COLUMN workflow_id TEXT",
                "CREATE INDEX idx_tasks_workflow_id ON tasks(workflow_id) WHERE workflow_id IS NOT NULL",
            ),
            (
                "DROP INDEX idx_tasks_workflow_id",
                "ALTER TABLE tasks DROP COLUMN workflow_id",
            ),
        ),
    ]


MIGRATIONS: list[Migration] = _build()
VERSIONS = [m.version for m in MIGRATIONS]
LATEST = VERSIONS[-1]
FIRST = VERSIONS[0]


class SchemaState:
    """What a database has applied: its versions, whether it is another program's file
    (tables but no record of versions), and versions this program does not know."""

    __slots__ = ("applied", "foreign", "unknown")

    def __init__(self, applied: list[str], foreign: bool, unknown: list[str]):
        self.applied, self.foreign, self.unknown = applied, foreign, unknown

    @property
    def current(self) -> str | None:
        known = [v for v in VERSIONS if v in self.applied]
        return known[-1] if known else None


def inspect(conn: sqlite3.Connection) -> SchemaState:
    """What is applied, and whether the database is someone else's or from a newer program."""
    tables = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
    }
    if RECORD_TABLE not in tables:
        return SchemaState([], foreign=bool(tables), unknown=[])
    applied = [row[0] for row in conn.execute(f"SELECT version FROM {RECORD_TABLE}")]
    unknown = [v for v in applied if v not in VERSIONS]
    return SchemaState(applied, foreign=False, unknown=unknown)


def current_version(conn: sqlite3.Connection) -> str | None:
    return inspect(conn).current


def pending(conn: sqlite3.Connection, to: str | None = None) -> list[Migration]:
    """The steps that would bring the database up to ``to`` (default: the latest)."""
    target = _index(to or LATEST)
    applied = set(inspect(conn).applied)
    return [m for m in MIGRATIONS[: target + 1] if m.version not in applied]


def plan(to: str | None = None) -> list[Migration]:
    """Every step up to ``to`` (default: the latest), as for a database that has none."""
    return MIGRATIONS[: _index(to or LATEST) + 1]


def to_undo(conn: sqlite3.Connection, to: str) -> list[Migration]:
    """The steps, newest first, whose reverse brings the database down to ``to``."""
    target = _index(to)
    applied = set(inspect(conn).applied)
    return [m for m in reversed(MIGRATIONS[target + 1 :]) if m.version in applied]


def apply(conn: sqlite3.Connection, steps: list[Migration], *, now: int = 0) -> None:
    """Run ``steps`` and record them, inside whatever transaction the caller holds."""
    conn.execute(_RECORD_SQL)
    for step in steps:
        for statement in step.up:
            conn.execute(statement)
        conn.execute(
            f"INSERT INTO {RECORD_TABLE} (version, description, applied_at) VALUES (?, ?, ?)",
            (step.version, step.description, now),
        )


def revert(conn: sqlite3.Connection, steps: list[Migration]) -> None:
    """Run the reverse of ``steps`` (newest first) and remove their records."""
    for step in steps:
        if not step.down:
            raise GeminiFlowError("MIGRATION_FAILED", f"version {step.version} cannot be reverted")
        for statement in step.down:
            conn.execute(statement)
        conn.execute(f"DELETE FROM {RECORD_TABLE} WHERE version = ?", (step.version,))


def upgrade(conn: sqlite3.Connection, steps: list[Migration] | None = None, *, now: int | None = None, then=None) -> list[str]:
    """Apply pending steps in one ``BEGIN IMMEDIATE`` transaction; a failure rolls back whole.

    ``then(versions)`` runs inside the same transaction (to write the audit row).
    """
    return _run(conn, lambda: pending(conn) if steps is None else steps, apply, now, then)


def downgrade(conn: sqlite3.Connection, to: str, *, now: int | None = None, then=None) -> list[str]:
    """Revert to ``to`` in one transaction; a failure rolls back whole."""
    return _run(conn, lambda: to_undo(conn, to), lambda c, s, now: revert(c, s), now, then)


def _run(conn, choose, action, now, then=None) -> list[str]:
    from gemini_flow_cli.core import clock

    stamp = int(clock.now()) if now is None else now
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Chosen again under the write lock: another process may have migrated meanwhile.
        steps = choose()
        steps = [s for s in steps if _still_needed(conn, s, action is apply)]
        action(conn, steps, now=stamp)
        if then is not None and steps:
            then([s.version for s in steps])
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        if "locked" in str(exc) or "busy" in str(exc):
            raise
        raise GeminiFlowError(
            "MIGRATION_FAILED", f"migration failed and was rolled back, the version is unchanged: {exc}"
        ) from exc
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return [s.version for s in steps]


def _still_needed(conn: sqlite3.Connection, step: Migration, going_up: bool) -> bool:
    applied = set(inspect(conn).applied)
    return (step.version not in applied) if going_up else (step.version in applied)


def plan_sql(steps: list[Migration], *, down: bool = False) -> str:
    """The SQL that ``upgrade``/``downgrade`` would run, for ``--dry-run``."""
    out = []
    for step in steps:
        out.append(f"-- {step.version}: {step.description}{' (down)' if down else ''}")
        out.extend(f"{s};" for s in (step.down if down else step.up))
    return "\n".join(out)


def _index(version: str) -> int:
    try:
        return VERSIONS.index(version)
    except ValueError:
        raise GeminiFlowError(
            "INVALID_INPUT", f"unknown schema version {version!r}; known: {', '.join(VERSIONS)}"
        ) from None
