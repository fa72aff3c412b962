"""Leftovers (issue 18 case 5): temporary files are cleaned on SIGTERM/SIGINT, and those of a
run killed with -9 are found and removed by the next run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import GEMINI_FLOW

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and process ids")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def spools(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("gemini-flow-import-"))


def start_import(db_path, tmp_path, temp):
    env = {**os.environ, "TMPDIR": str(temp)}
    # SIGINT as a terminal delivers it: a suite started from a background job of a shell inherits
    # it ignored, and so would the import (it would then finish instead of being interrupted).
    proc = subprocess.Popen([*GEMINI_FLOW, "--db", str(db_path), "memory", "import", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    proc.stdin.write(b'{"key": "a", "value": 1}\n')
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while not spools(temp) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spools(temp), "the import spools standard input"
    time.sleep(0.2)
    return proc, env


@pytest.fixture
def temp(tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir(mode=0o700)
    return folder


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_terminated_import_removes_its_spool(run, db_path, tmp_path, temp, sig, status):
    assert run("memory", "store", "k", "v").returncode == 0
    proc, _ = start_import(db_path, tmp_path, temp)
    proc.send_signal(sig)
    proc.stdin.close()
    assert proc.wait(timeout=30) == status, proc.stderr.read()
    assert spools(temp) == []


def test_the_spool_of_a_killed_import_is_removed_by_the_next_run(run, db_path, tmp_path, temp):
    assert run("memory", "store", "k", "v").returncode == 0
    proc, env = start_import(db_path, tmp_path, temp)
    proc.kill()
    proc.wait(timeout=30)
    left = spools(temp)
    assert left and str(proc.pid) in left[0]
    nxt = run("memory", "import", "-", input='{"key": "b", "value": 2}\n', env={"TMPDIR": str(temp)})
    assert nxt.returncode == 0, nxt.stderr
    assert spools(temp) == []
    assert "left by an interrupted run" in nxt.stderr


def test_backup_leftovers_of_a_killed_run_are_listed_then_removed(run, db_path):
    assert run("memory", "store", "k", "v").returncode == 0
    backups = db_path.parent / "backups"
    backups.mkdir(mode=0o700)
    pid = dead_pid()
    stray = backups / f".hive-20260101T000000Z.db.{pid}.0.tmp"
    stray.write_bytes(b"partial")
    scratch = backups / f".gemini-flow-restore-{pid}-abcd"
    scratch.mkdir()
    (scratch / "backup.db").write_bytes(b"x" * 100)
    alive = backups / f".hive-20260101T000000Z.db.{os.getppid()}.0.tmp"  # a running process's
    alive.write_bytes(b"in progress")

    listed = run("backup", "list")
    assert listed.returncode == 0
    assert str(stray) in listed.stderr and str(scratch) in listed.stderr
    assert stray.exists(), "listing removes nothing"

    pruned = run("backup", "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert not stray.exists() and not scratch.exists()
    assert alive.exists(), "a file whose process is alive is never touched"
    assert json.loads(run("backup", "list").stdout)["total"] == 0
