"""Concurrent writers as real processes: no increment is ever lost (CLI.md §4 "Versions and
compare-and-set")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import gemini_flow_command

# A worker: runs gemini-flow in a loop; argv: db, count, mode ("incr" or "cas").
WORKER = r"""
import json, subprocess, sys
command, db, count, mode = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
def gf(*args):
    return subprocess.run([*command, "--db", db, "--json", *args], capture_output=True, text=True)
conflicts = 0
for _ in range(count):
    if mode == "incr":
        done = gf("memory", "incr", "counter")
        assert done.returncode == 0, done.stderr
        continue
    while True:
        read = gf("memory", "retrieve", "counter")
        if read.returncode == 1:
            value, version = 0, 0
        else:
            assert read.returncode == 0, read.stderr
            envelope = json.loads(read.stdout)
            value, version = envelope["value"], envelope["version"]
        write = gf("memory", "store", "counter", str(value + 1), "--if-version", str(version))
        if write.returncode == 0:
            break
        assert write.returncode == 3, write.stderr
        conflicts += 1
print(conflicts)
"""


def _workers(db_path, processes: int, count: int, mode: str) -> list[str]:
    command = json.dumps(gemini_flow_command())
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, command, str(db_path), str(count), mode],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        for _ in range(processes)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def test_8_processes_each_incrementing_25_times_count_exactly_200(run, db_path):
    assert run("memory", "store", "counter", "0").returncode == 0
    _workers(db_path, 8, 25, "incr")
    result = run("--json", "memory", "retrieve", "counter")
    envelope = json.loads(result.stdout)
    assert envelope["value"] == 200
    assert envelope["version"] == 201


def test_6_processes_doing_compare_and_set_retry_loops_lose_no_increment(run, db_path):
    conflicts = _workers(db_path, 6, 4, "cas")
    envelope = json.loads(run("--json", "memory", "retrieve", "counter").stdout)
    assert envelope["value"] == 24
    assert envelope["version"] == 24
    assert all(c.isdigit() for c in conflicts)  # each loop reports how often it had to retry
