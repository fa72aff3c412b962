"""Many agents at once (issue 12): writers queue instead of failing, reads never wait for writers.

Real processes where a process matters: the writers run as separate `gemini-flow` processes, and
the lock is held by another connection (or the writers' queue by another descriptor) while a
command runs.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.commandtree import iter_commands
from tests.conftest import gemini_flow_command
from tests.helpers import sql
from tests.populated import argv_for, populate

# Commands that only read: named like a read (the last word of their path), plus a batch of
# retrieves only. Every one must answer while another process holds the write lock.
READ_VERBS = {"list", "show", "status", "get", "search", "retrieve", "stats", "namespaces", "health",
              "verify", "export", "types", "metrics", "history"}


class HeldLock:
    """Another writer mid-transaction: the writers' queue and SQLite's write lock both held."""

    def __init__(self, path: Path):
        from gemini_flow_cli.core.writelock import WriterQueue

        self.queue = WriterQueue(path)
        assert self.queue.try_acquire()
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("UPDATE memory_store SET value = value")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()
        self.queue.close()


@pytest.fixture
def stored(cli, db_path):
    assert cli("memory", "store", "k", '{"a": 1}').exit_code == 0
    return db_path


def test_retrieve_answers_at_once_while_another_process_holds_the_write_lock(stored, run):
    held = HeldLock(stored)
    try:
        began = time.monotonic()
        result = run("--busy-timeout", "5", "memory", "retrieve", "k")
        elapsed = time.monotonic() - began
    finally:
        held.release()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"a": 1}
    assert elapsed < 2.5, elapsed  # a process start-up on a loaded machine, not the 5 s timeout
    # The lock was taken: this access went uncounted (best effort), and nothing failed.
    assert sql(stored, "SELECT access_count FROM memory_store WHERE key = 'k'") == [(0,)]


def test_retrieve_counts_the_access_when_the_lock_is_free(stored, cli):
    assert cli("memory", "retrieve", "k").json["metadata"]["accessCount"] == 1
    assert cli("memory", "retrieve", "k").json["metadata"]["accessCount"] == 2
    assert sql(stored, "SELECT access_count FROM memory_store WHERE key = 'k'") == [(2,)]


def test_a_writer_gives_up_after_the_busy_timeout_and_says_how_long_it_waited(stored, run):
    held = HeldLock(stored)
    try:
        result = run("--json", "--busy-timeout", "1", "memory", "store", "k2", "v")
    finally:
        held.release()
    assert result.returncode == 6
    error = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "CONNECTION_FAILED"
    assert "waited 1.0 s for the write lock (--busy-timeout 1)" in error["message"]
    assert 1.0 <= error["details"]["waited"] < 2.0
    assert sql(stored, "SELECT COUNT(*) FROM memory_store WHERE key = 'k2'") == [(0,)]


def test_a_writer_outside_the_queue_is_waited_for_by_the_retry_loop(stored, run):
    """Another program holding SQLite's lock (not the queue): the store waits, then succeeds."""
    conn = sqlite3.connect(stored, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    process = subprocess.Popen([*gemini_flow_command(), "--db", str(stored), "memory", "store", "k3", "v"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    conn.execute("COMMIT")
    conn.close()
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert sql(stored, "SELECT value FROM memory_store WHERE key = 'k3'") == [('"v"',)]


def test_24_writer_processes_times_5_stores_all_succeed(stored, tmp_path):
    """The benchmark's scenario at a size that still contends on 2 cores (benchmarks/writers.py)."""
    def worker(n: int) -> list[tuple[int, str]]:
        out = []
        for i in range(5):
            done = subprocess.run([*gemini_flow_command(), "--db", str(stored), "memory", "store",
                                   f"w{n}-{i}", json.dumps({"n": n, "i": i})],
                                  capture_output=True, text=True, cwd=tmp_path, timeout=120)
            out.append((done.returncode, done.stderr))
        return out

    with ThreadPoolExecutor(24) as pool:
        results = [r for rs in pool.map(worker, range(24)) for r in rs]
    failures = [r for r in results if r[0] != 0]
    assert failures == [], failures[:3]
    assert sql(stored, "SELECT COUNT(*) FROM memory_store WHERE key LIKE 'w%'") == [(120,)]


def _is_read(path: tuple[str, ...]) -> bool:
    return path[-1] in READ_VERBS


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    from typer.testing import CliRunner

    from gemini_flow_cli.cli import build_app
    from tests.conftest import Result

    folder = tmp_path_factory.mktemp("populated")
    path = folder / ".hive-mind" / "hive.db"

    def cli(*args):
        argv = ["--json", "--db", str(path), *args]
        result = CliRunner().invoke(build_app(argv), argv, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return path, populate(cli, folder)


READS = [c for c in iter_commands() if not c.skipped and _is_read(c.path)]


def test_the_read_commands_are_found():
    names = {c.name for c in READS}
    assert {"memory retrieve", "memory search", "memory health", "task list", "audit verify"} <= names


@pytest.mark.parametrize("command", READS, ids=lambda c: c.name)
def test_no_read_command_waits_for_a_writer(command, populated, cli):
    path, ids = populated
    held = HeldLock(path)
    try:
        began = time.monotonic()
        result = cli("--busy-timeout", "3", *argv_for(command.path, ids, command.params), db=path)
        elapsed = time.monotonic() - began
    finally:
        held.release()
    assert "busy" not in result.stderr, result
    assert result.exit_code in (0, 1), result  # health may report the held lock: never a failure
    assert elapsed < 2.0, (command.name, elapsed)


def test_a_batch_of_retrieves_only_is_a_read(populated, cli):
    path, ids = populated
    held = HeldLock(path)
    try:
        result = cli("--busy-timeout", "3", "memory", "batch", ids["batch"], db=path)
    finally:
        held.release()
    assert result.exit_code == 0, result
    assert result.json["results"][0]["value"] == {"a": 1}


# Run every write command in a fresh process (forked from one that has loaded only the CLI's
# root, as `gemini-flow` has when it starts) and list the modules it imported while holding the
# writers' turn. An import there holds every other writer up (issue 12: keep the lock brief).
_HARNESS = r"""
import json, os, sys
import gemini_flow_cli.cli as cli
from gemini_flow_cli.core import writelock

commands = json.loads(sys.stdin.read())
results = {}
for name, argv in commands:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        seen = []
        acquire, release = writelock.WriterQueue.acquire, writelock.WriterQueue.release
        state = {}
        def acquire_(self, timeout):
            held = acquire(self, timeout)
            state["before"] = set(sys.modules)
            return held
        def release_(self):
            if "before" in state:
                seen.extend(sorted(set(sys.modules) - state.pop("before")))
            release(self)
        writelock.WriterQueue.acquire, writelock.WriterQueue.release = acquire_, release_
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1); os.dup2(devnull, 2)
        try:
            cli.main(argv)
        except SystemExit:
            pass
        os.write(write_end, json.dumps(seen).encode())
        os._exit(0)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    results[name] = json.loads(data or b"[]")
print(json.dumps(results))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_no_write_command_imports_a_module_while_holding_the_lock(populated, tmp_path):
    import shutil

    path, ids = populated
    copy = tmp_path / "hive.db"
    shutil.copy(path, copy)
    commands = [(c.name, ["--db", str(copy), *argv_for(c.path, ids, c.params)])
                for c in iter_commands() if not c.skipped and not _is_read(c.path)]
    done = subprocess.run([sys.executable, "-c", _HARNESS], input=json.dumps(commands), capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    imported = {name: modules for name, modules in json.loads(done.stdout).items() if modules}
    assert imported == {}


def test_an_export_into_a_stalled_pipe_does_not_pin_the_wal(db_path, tmp_path):
    """`memory export | slow-consumer`: the export lets its snapshot go before it waits on the
    pipe, so a checkpoint can restart the WAL while the consumer stalls (benchmarks/wal_growth.py
    measures the growth this prevents)."""
    from gemini_flow_cli.core.db import Database
    from gemini_flow_cli.core.memory import MemoryManager

    db = Database.open(db_path)
    MemoryManager(db).batch_store({"key": f"k{i}", "value": "v" * 200} for i in range(3000))  # >> a pipe buffer
    db.close()
    export = subprocess.Popen([*gemini_flow_command(), "--db", str(db_path), "memory", "export"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    try:
        first = export.stdout.read(1)  # the export is writing now; from here nobody reads the pipe
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=0)
        deadline = time.monotonic() + 10
        while True:
            conn.execute("INSERT OR REPLACE INTO memory_store (key, value, namespace) VALUES ('w', '1', 'default')")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy == 0 and export.poll() is None:
                break
            assert time.monotonic() < deadline, "the export kept its read transaction while the pipe was full"
            time.sleep(0.1)
        conn.close()
        assert export.poll() is None  # still blocked on the full pipe: nobody has read a byte
    finally:
        out, err = export.communicate(timeout=60)
    assert export.returncode == 0, err
    keys = [json.loads(line)["key"] for line in (first + out).splitlines()]
    assert sum(1 for k in keys if k.startswith("k")) == 3000


@pytest.mark.parametrize("where", ["main thread", "other thread"])
def test_the_writers_queue_times_out_and_an_abandoned_wait_never_keeps_the_lock(tmp_path, where):
    import threading

    from gemini_flow_cli.core.writelock import WriterQueue

    path = tmp_path / "hive.db"
    holder, waiter, later = WriterQueue(path), WriterQueue(path), WriterQueue(path)
    assert holder.try_acquire()
    outcome = {}

    def wait() -> None:
        began = time.monotonic()
        outcome["held"] = waiter.acquire(0.3)
        outcome["waited"] = time.monotonic() - began

    if where == "main thread":
        wait()
    else:
        thread = threading.Thread(target=wait)
        thread.start()
        thread.join()
    assert outcome["held"] is False and 0.3 <= outcome["waited"] < 2.0
    holder.release()
    assert later.acquire(2.0)  # the abandoned wait let go (or never took) the lock
    later.release()
    assert waiter.acquire(1.0)  # and the abandoned queue object can wait again
    for queue in (holder, waiter, later):
        queue.close()


def test_the_writers_queue_hands_the_lock_to_a_waiter_when_released(tmp_path):
    import threading

    from gemini_flow_cli.core.writelock import WriterQueue

    path = tmp_path / "hive.db"
    holder, waiter = WriterQueue(path), WriterQueue(path)
    assert holder.try_acquire()
    threading.Timer(0.2, holder.release).start()
    began = time.monotonic()
    assert waiter.acquire(5.0)
    assert 0.15 <= time.monotonic() - began < 2.0
    assert not holder.try_acquire()
    waiter.close()
    holder.close()
