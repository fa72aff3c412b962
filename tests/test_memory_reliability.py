"""Reliability of the memory group as real processes: kill -9 mid-write, concurrency, busy locks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import gemini_flow_command
from tests.conftest import not_on_a_server

N = 100_000


def count_and_check(db_path: Path) -> int:
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT COUNT(*) FROM memory_store").fetchone()[0]
    finally:
        conn.close()


def kill_mid_write(argv: list[str], db_path: Path) -> bool:
    """Start a writer, SIGKILL it once its transaction has written >= 256 KiB to the WAL.

    Returns True when the process was killed while still running (mid-transaction).
    """
    wal = Path(f"{db_path}-wal")
    base = wal.stat().st_size if wal.exists() else 0
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if wal.exists() and wal.stat().st_size > base + (256 << 10):
            break
        time.sleep(0.005)
    killed = process.poll() is None
    if killed:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return killed


@pytest.fixture
def seeded(db_path, run):
    assert run("memory", "store", "before", "1").returncode == 0
    return db_path


@not_on_a_server("the kill lands by timing a local file's transaction")
def test_kill_9_mid_batch_leaves_all_or_nothing(seeded, tmp_path):
    ops = tmp_path / "ops.jsonl"
    with ops.open("w") as handle:
        for i in range(N):
            handle.write(json.dumps({"action": "store", "key": f"agent-{i % 100}/note-{i}",
                                     "value": {"i": i, "text": "observed state ok"}, "tags": ["bulk"]}) + "\n")
    argv = [*gemini_flow_command(), "--db", str(seeded), "memory", "batch", str(ops)]
    killed = [kill_mid_write(argv, seeded) for _ in range(3)]
    assert any(killed), "no run was killed mid-transaction: the test did not test anything"
    # Every run was either killed (none of it) or finished (all of it; later runs upsert the same keys).
    assert count_and_check(seeded) in (1, 1 + N)


@not_on_a_server("the kill lands by timing a local file's transaction")
def test_kill_9_mid_import_leaves_all_or_nothing(seeded, tmp_path):
    lines = tmp_path / "import.jsonl"
    with lines.open("w") as handle:
        for i in range(N):
            handle.write(json.dumps({"key": f"k-{i}", "namespace": "imp", "value": {"i": i, "pad": "x" * 40},
                                     "tags": ["a"], "createdAt": "2025-08-03T10:30:00Z"}) + "\n")
    argv = [*gemini_flow_command(), "--db", str(seeded), "memory", "import", str(lines), "--on-conflict", "replace"]
    killed = [kill_mid_write(argv, seeded) for _ in range(3)]
    assert any(killed), "no run was killed mid-transaction: the test did not test anything"
    assert count_and_check(seeded) in (1, 1 + N)


WORKERS = 8
CALLS = 16


def test_concurrent_processes_all_succeed_and_contents_are_exact(db_path, run):
    assert run("memory", "store", "init", "0").returncode == 0
    failures: list[str] = []
    expected: dict[str, dict] = {}
    lock = threading.Lock()

    def worker(w: int) -> None:
        for i in range(CALLS):
            step = i % 4
            if step == 0:
                args = ["memory", "store", f"w{w}-{i}", json.dumps({"w": w, "i": i}), "-n", f"ns{w % 3}"]
            elif step == 1:
                args = ["memory", "retrieve", f"w{w}-{i - 1}", "-n", f"ns{w % 3}"]
            elif step == 2:
                args = ["memory", "search", f"w{w}-*", "-n", f"ns{w % 3}"]
            else:
                args = ["memory", "batch", "-"]
            stdin = None
            if step == 3:
                stdin = json.dumps({"operations": [
                    {"action": "store", "key": f"w{w}-{i}", "value": i, "namespace": f"ns{w % 3}"},
                    {"action": "delete", "key": f"w{w}-{i - 3}", "namespace": f"ns{w % 3}"} if i % 8 == 3 else
                    {"action": "retrieve", "key": f"w{w}-{i}", "namespace": f"ns{w % 3}"},
                ]})
            result = run(*args, input=stdin)
            with lock:
                if result.returncode != 0 or "locked" in result.stderr:
                    failures.append(f"{args}: exit {result.returncode} {result.stderr.strip()}")
                if step == 1 and result.returncode == 0 and json.loads(result.stdout) != {"w": w, "i": i - 1}:
                    failures.append(f"{args}: read {result.stdout!r}")
                if step == 2 and result.returncode == 0:
                    found = json.loads(result.stdout)["total"]
                    if found < 1:
                        failures.append(f"{args}: search saw {found}")
        with lock:
            for i in range(CALLS):
                ns = f"ns{w % 3}"
                if i % 4 == 0:
                    expected[f"{ns}/w{w}-{i}"] = {"w": w, "i": i}
                elif i % 4 == 3:
                    expected[f"{ns}/w{w}-{i}"] = i
                    if i % 8 == 3:
                        expected.pop(f"{ns}/w{w}-{i - 3}", None)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    conn = sqlite3.connect(db_path)
    actual = {f"{ns}/{key}": json.loads(value) for key, ns, value in
              conn.execute("SELECT key, namespace, value FROM memory_store WHERE key != 'init'")}
    assert actual == expected
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@not_on_a_server("holds SQLite's lock with sqlite3 (tests/test_postgres.py holds the advisory lock)")
def test_a_writer_held_past_busy_timeout_exits_6_and_writes_nothing(db_path, run):
    assert run("memory", "store", "seed", "1").returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(db_path)!r}, isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE')\n"
         "print('locked', flush=True)\n"
         "time.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        batch = json.dumps({"operations": [{"action": "store", "key": "x", "value": 1}]})
        for args, stdin in ((["memory", "store", "blocked", "1"], None), (["memory", "batch", "-"], batch),
                            (["memory", "clear", "--all", "--yes"], None)):
            started = time.monotonic()
            result = run("--busy-timeout", "0.5", *args, input=stdin)
            assert result.returncode == 6, result
            assert "busy" in result.stderr
            assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    conn = sqlite3.connect(db_path)
    assert [r[0] for r in conn.execute("SELECT key FROM memory_store")] == ["seed"]


API_WORKER = r"""
import json, sys, time
from gemini_flow_cli.core.db import Database
from gemini_flow_cli.core.memory import MemoryManager

path, w, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
while time.time() < start_at:  # start together
    time.sleep(0.001)
memory = MemoryManager(Database.open(path), namespace=f"ns{w % 3}")
for i in range(200):
    step = i % 4
    if step == 0:
        memory.store(f"w{w}-{i}", {"w": w, "i": i}, tags=[f"w{w}"])
    elif step == 1:
        assert memory.retrieve(f"w{w}-{i - 1}")["value"] == {"w": w, "i": i - 1}
    elif step == 2:
        assert memory.search(f"w{w}-*")["total"] >= 1
    elif i % 8 == 3:
        assert memory.delete([f"w{w}-{i - 3}"]) == [f"w{w}-{i - 3}"]
    else:
        memory.store(f"w{w}-{i}", i)
print("ok")
"""


def test_eight_processes_of_200_mixed_api_calls_all_land(db_path, tmp_path):
    """8 OS processes x 200 store/retrieve/search/delete calls at once, each its own connection:
    every call succeeds (no "database is locked") and the final contents are exactly as expected."""
    from gemini_flow_cli.core.db import Database

    db = Database.open(db_path)
    with db.write():  # create and migrate before the race
        pass
    db.close()
    script = tmp_path / "worker.py"
    script.write_text(API_WORKER)
    start_at = time.time() + 1.5
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, str(script), str(db_path), str(w), str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for w in range(8)]
    outputs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert (p.returncode, out.strip()) == (0, "ok"), err
        assert "locked" not in err
    expected = {}
    for w in range(8):
        for i in range(200):
            if i % 4 == 0:
                expected[(f"ns{w % 3}", f"w{w}-{i}")] = {"w": w, "i": i}
            elif i % 4 == 3:
                if i % 8 == 3:
                    expected.pop((f"ns{w % 3}", f"w{w}-{i - 3}"))
                else:
                    expected[(f"ns{w % 3}", f"w{w}-{i}")] = i
    conn = sqlite3.connect(db_path)
    actual = {(ns, key): json.loads(value) for key, ns, value in
              conn.execute("SELECT key, namespace, value FROM memory_store")}
    assert actual == expected
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
