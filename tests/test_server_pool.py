"""core/pool.py: the server's reused connections are never stale (issue 14).

A reused connection must behave as a fresh one would: the file it opened is still the file at the
path, the schema did not change, the file is still trusted, the configuration's pragmas and the
user configuration are the current ones, and a connection left inside a transaction is not reused.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading

import pytest

from tests.conftest import TEST_SERVER

# The pool's checks of a file (device, inode, modes, synchronous); a server's connections are kept by
# schema version (tests/test_postgres.py runs the HTTP server on one).
pytestmark = pytest.mark.skipif(bool(TEST_SERVER), reason="not on PostgreSQL: the pool's checks of a local file")

from gemini_flow_cli.core.invocation import Invocation
from gemini_flow_cli.core.pool import ConnectionPool, PooledInvocation
from gemini_flow_cli.errors import GeminiFlowError


def store(db_path, key, value, namespace="team"):
    invocation = Invocation(db_path)
    invocation.memory(namespace, db=invocation.open_db(create=True)).store(key, value)
    invocation.finish()


def read(pool, db_path, key, namespace="team"):
    """One pooled operation: retrieve ``key``; returns (value, the Database object used)."""
    invocation = PooledInvocation(pool, db_path)
    try:
        db = invocation.open_db(create=False)
        return invocation.memory(namespace, db=db).retrieve(key, count=False)["value"], db
    finally:
        invocation.finish()


@pytest.fixture
def pool():
    pool = ConnectionPool()
    yield pool
    pool.close()


def test_operations_one_after_another_share_one_connection(db_path, pool):
    store(db_path, "k", 1)
    used = {id(read(pool, db_path, "k")[1]) for _ in range(20)}
    assert used == {next(iter(used))}
    assert (pool.opened, pool.reused) == (1, 19)


def test_a_connection_serves_one_operation_at_a_time(db_path, pool):
    store(db_path, "k", 1)
    first, second = PooledInvocation(pool, db_path), PooledInvocation(pool, db_path)
    assert first.open_db(create=False) is not second.open_db(create=False)
    first.finish()
    second.finish()
    assert pool.idle == 2


def test_writes_through_the_pool_run_as_the_cli_s(db_path, pool):
    store(db_path, "k", 0)

    def add():
        for _ in range(25):
            invocation = PooledInvocation(pool, db_path)
            invocation.memory("team", db=invocation.open_db(create=True)).incr("k", 1)
            invocation.finish()

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read(pool, db_path, "k")[0] == 100
    assert pool.opened <= 5


def test_a_replaced_file_is_opened_afresh(db_path, tmp_path, pool):
    store(db_path, "k", "old")
    other = tmp_path / "other" / ".hive-mind" / "hive.db"
    store(other, "k", "new")
    assert read(pool, db_path, "k")[0] == "old"
    os.replace(other, db_path)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{other}{suffix}"):
            os.replace(f"{other}{suffix}", f"{db_path}{suffix}")
    assert read(pool, db_path, "k")[0] == "new"
    assert pool.opened == 2


def test_a_removed_file_is_not_read_through_an_old_connection(db_path, pool):
    store(db_path, "k", 1)
    read(pool, db_path, "k")
    shutil.rmtree(db_path.parent)
    with pytest.raises(GeminiFlowError) as caught:
        read(pool, db_path, "k")
    assert caught.value.code == "NOT_FOUND"


def test_a_schema_change_means_a_fresh_open(db_path, pool):
    store(db_path, "k", 1)
    read(pool, db_path, "k")
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE scratch (x)")
    read(pool, db_path, "k")
    assert pool.opened == 2


def test_the_stored_synchronous_setting_applies_to_a_reused_connection(db_path, pool):
    store(db_path, "k", 1)
    _, db = read(pool, db_path, "k")
    assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL, the default
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO configuration (key, value, updated_at) VALUES ('database.synchronous', '\"normal\"', 0)")
    _, again = read(pool, db_path, "k")
    assert again is db and db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_a_folder_made_writable_by_others_is_refused_on_reuse(db_path, pool):
    store(db_path, "k", 1)
    read(pool, db_path, "k")
    os.chmod(db_path.parent, 0o777)
    try:
        with pytest.raises(GeminiFlowError) as caught:
            read(pool, db_path, "k")
        assert caught.value.code == "PERMISSION_DENIED"
    finally:
        os.chmod(db_path.parent, 0o700)


def test_a_changed_user_configuration_is_read_again(db_path, pool, tmp_path):
    from gemini_flow_cli.core import config

    store(db_path, "k", 1)
    os.chmod(db_path.parent, 0o777)
    try:
        with pytest.raises(GeminiFlowError):
            read(pool, db_path, "k")
        user_file = config.user_file_path(os.environ)
        user_file.parent.mkdir(parents=True, exist_ok=True)
        user_file.write_text(json.dumps({"security.trustedPaths": [str(db_path)]}))
        assert read(pool, db_path, "k")[0] == 1
    finally:
        os.chmod(db_path.parent, 0o700)
        config.load_user_file(tmp_path / "none.json")


def test_a_connection_left_in_a_transaction_is_closed_not_reused(db_path, pool):
    store(db_path, "k", 1)
    invocation = PooledInvocation(pool, db_path)
    db = invocation.open_db(create=False)
    db.conn.execute("BEGIN")
    invocation.finish()
    assert pool.idle == 0
    assert read(pool, db_path, "k")[1] is not db


def test_a_missing_file_is_an_empty_store_and_is_not_kept(db_path, pool):
    with pytest.raises(GeminiFlowError) as caught:
        read(pool, db_path, "k")
    assert caught.value.code == "NOT_FOUND"
    assert pool.idle == 0 and not db_path.exists()


def test_each_operation_gets_its_own_actor_and_a_clean_state(db_path, pool):
    store(db_path, "k", 1)
    invocation = PooledInvocation(pool, db_path)
    db = invocation.open_db(create=True)
    db.actor = "key-one"
    invocation.memory("team", db=db).store("k", 2)
    assert db.wrote
    invocation.finish()
    again = PooledInvocation(pool, db_path, actor="agent-2")
    assert again.open_db(create=False) is db
    assert db.actor == "agent-2" and not db.wrote and db.events == []
    again.finish()
    third = PooledInvocation(pool, db_path)
    assert third.open_db(create=False).actor != "key-one"
    third.finish()


def test_closing_the_pool_closes_its_connections(db_path, pool):
    store(db_path, "k", 1)
    _, db = read(pool, db_path, "k")
    pool.close()
    with pytest.raises(sqlite3.ProgrammingError):
        db.conn.execute("SELECT 1")
    read(pool, db_path, "k")  # still works, without keeping anything
    assert pool.idle == 0


def test_no_read_of_the_server_leaves_its_connection_on_an_old_snapshot(db_path):
    """A cursor left half-read keeps its connection's snapshot (core/pool.py): after each reading
    endpoint, the next request on the same connection must see a write made elsewhere since."""
    pytest.importorskip("starlette")
    from gemini_flow_cli.core import apikeys
    from gemini_flow_cli.server.app import Server
    from gemini_flow_cli.server.operations import OPERATIONS

    store(db_path, "k", 0)
    invocation = Invocation(db_path)
    token = apikeys.create(invocation.open_db(create=True), "reader", role="admin")["token"]
    invocation.finish()
    server = Server(db_path)
    retrieve = next(op for op in OPERATIONS if op.operation_id == "retrieve")
    reads = [op for op in OPERATIONS if op.method == "GET" and not any(p.required for p in op.params)]
    assert len(reads) >= 10
    for n, op in enumerate(reads, start=1):
        status, _ = server.execute(op, token, {}, "test")
        assert status in (200, 503), op.path
        store(db_path, "k", n)
        status, result = server.execute(retrieve, token, {"key": "k", "namespace": "team"}, "test")
        assert (status, result["value"]) == (200, n), op.path
    server.pool.close()


def test_a_database_of_another_kind_is_closed_not_kept(pool):
    closed = []

    class Elsewhere:  # e.g. a server database: none of a SQLite file's attributes
        def close(self):
            closed.append(True)

    pool.release(Elsewhere())
    assert (pool.idle, closed) == (0, [True])
