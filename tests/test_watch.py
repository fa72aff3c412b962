"""The change feed: memory watch, memory history, retention and compaction (CLI.md §4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.conftest import gemini_flow_command
from tests.helpers import sql

KEY_ENV = {"GEMINI_FLOW_ENCRYPTION_KEY": "correct horse battery staple"}


def lines(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_watch_since_0_prints_every_kept_change_in_order(cli):
    cli("memory", "store", "a", "1")
    cli("memory", "store", "b", "1", "-n", "other")
    cli("memory", "incr", "a2")
    cli("memory", "delete", "a")
    result = cli("memory", "watch", "--since", "0", "--timeout", "1")
    assert result.exit_code == 0
    events = lines(result)
    assert [(e["revision"], e["action"], e["key"], e["version"]) for e in events] == [
        (1, "store", "a", 1), (2, "store", "b", 1), (3, "store", "a2", 1), (4, "delete", "a", 1)]
    assert set(events[0]) == {"revision", "action", "key", "namespace", "version", "at"}
    assert events[0]["at"].endswith("Z")


def test_watch_filters_by_pattern_and_namespace_and_stops_after_count(cli):
    for key, ns in (("job-1", "default"), ("other", "default"), ("job-2", "jobs"), ("job-3", "default")):
        cli("memory", "store", key, "1", "-n", ns)
    matched = lines(cli("memory", "watch", "job-*", "--since", "0", "--timeout", "1"))
    assert [e["key"] for e in matched] == ["job-1", "job-2", "job-3"]
    in_ns = lines(cli("memory", "watch", "--since", "0", "-n", "jobs", "--timeout", "1"))
    assert [e["key"] for e in in_ns] == ["job-2"]
    first = cli("memory", "watch", "--since", "0", "--count", "2")
    assert [e["revision"] for e in lines(first)] == [1, 2]
    resumed = lines(cli("memory", "watch", "--since", "2", "--count", "2"))
    assert [e["revision"] for e in resumed] == [3, 4]


def test_watch_on_a_missing_database_times_out_quietly_and_creates_nothing(cli, db_path):
    result = cli("memory", "watch", "--timeout", "1")
    assert (result.exit_code, result.stdout) == (0, "")
    assert not db_path.exists()


def test_watch_since_a_compacted_revision_exits_1_compacted(cli, frozen):
    cli("memory", "store", "a", "1")
    cli("memory", "store", "a", "2")
    frozen.now += 8 * 86400
    cli("memory", "store", "a", "3")
    cleanup = cli("memory", "cleanup")
    assert cleanup.json["compactedChanges"] == 2
    result = cli("memory", "watch", "--since", "0", "--timeout", "1")
    assert result.exit_code == 1 and result.error["code"] == "COMPACTED"
    assert [e["revision"] for e in lines(cli("memory", "watch", "--since", "2", "--timeout", "1"))] == [3]
    assert cli("config", "set", "changes.retention", "1d").exit_code == 0


def test_compaction_keeps_the_newest_change_so_revisions_never_restart(cli, frozen, db_path):
    cli("memory", "store", "a", "1")
    frozen.now += 8 * 86400
    assert cli("memory", "cleanup").json["compactedChanges"] == 0  # the newest is always kept
    cli("memory", "store", "a", "2")
    assert cli("memory", "store", "b", "1").exit_code == 0
    assert [r[0] for r in sql(db_path, "SELECT revision FROM memory_changes ORDER BY revision")] == [1, 2, 3]


def test_expiry_is_an_expire_change_when_cleanup_or_the_next_write_removes_it(cli, frozen):
    cli("memory", "store", "t1", "1", "--ttl", "5")
    cli("memory", "store", "t2", "1", "--ttl", "5")
    frozen.now += 6
    assert cli("memory", "retrieve", "t1").exit_code == 1  # reads never write: no change
    assert [e["action"] for e in lines(cli("memory", "watch", "--since", "2", "--timeout", "1"))] == []
    cli("memory", "store", "t1", "2")
    cli("memory", "cleanup")
    events = lines(cli("memory", "watch", "--since", "2", "--timeout", "1"))
    assert [(e["action"], e["key"], e["version"]) for e in events] == [
        ("expire", "t1", 1), ("store", "t1", 1), ("expire", "t2", 1)]


def test_history_lists_kept_versions_with_values(cli):
    cli("memory", "store", "k", '{"a": 1}')
    cli("memory", "store", "k", '"two"')
    cli("memory", "delete", "k")
    history = cli("memory", "history", "k").json
    assert history["key"] == "k" and history["namespace"] == "default"
    assert [(v["version"], v["action"], v["value"]) for v in history["versions"]] == [
        (1, "store", {"a": 1}), (2, "store", "two"), (2, "delete", None)]
    assert cli("memory", "history", "never").exit_code == 1


def test_encrypted_values_stay_encrypted_in_the_feed(cli, db_path):
    cli("memory", "store", "s", '"hunter2"', "--encrypt", env=KEY_ENV)
    cli("memory", "store", "s", '"hunter3"', env=KEY_ENV)
    stored = sql(db_path, "SELECT previous_value, previous_encrypted FROM memory_changes ORDER BY revision")
    assert stored[1][1] == 1 and "hunter2" not in stored[1][0]  # the value replaced, as stored
    with_key = cli("memory", "history", "s", env=KEY_ENV).json["versions"]
    assert [v["value"] for v in with_key] == ["hunter2", "hunter3"] and with_key[0]["encrypted"] is True
    without = cli("memory", "history", "s").json["versions"][0]
    assert without["value"] == stored[1][0] and without["decrypted"] is False


WRITER = r"""
import subprocess, sys, json
command, db, name, count = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
for n in range(count):
    done = subprocess.run([*command, "--db", db, "memory", "store", f"{name}-{n % 3}", str(n)], capture_output=True)
    assert done.returncode == 0, done.stderr
"""


def test_a_watcher_since_r_sees_every_change_after_r_once_in_order_while_4_writers_run(run, db_path):
    assert run("memory", "store", "before", "1").returncode == 0
    start = 1
    command = gemini_flow_command()
    per_writer = 8
    watcher = subprocess.Popen(
        [*command, "--db", str(db_path), "memory", "watch", "--since", str(start), "--count", str(4 * per_writer),
         "--timeout", "300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, json.dumps(command), str(db_path), f"w{i}", str(per_writer)],
                         env=os.environ.copy())
        for i in range(4)
    ]
    for writer in writers:
        assert writer.wait(timeout=300) == 0
    out, err = watcher.communicate(timeout=300)
    assert watcher.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["revision"] for e in events] == list(range(start + 1, start + 1 + 4 * per_writer))
    kept = sql(db_path, "SELECT revision, key, version FROM memory_changes WHERE revision > ? ORDER BY revision", (start,))
    assert [(e["revision"], e["key"], e["version"]) for e in events] == kept


# -- retrieve --touch and delete --pattern ----------------------------------------------------------


def test_touch_restarts_the_ttl_it_was_stored_with_and_keeps_the_version(cli, frozen):
    cli("memory", "store", "session", '"s"', "--ttl", "100")
    frozen.now += 60
    touched = cli("memory", "retrieve", "session", "--touch")
    assert touched.exit_code == 0 and touched.json["value"] == "s"
    assert touched.json["metadata"]["expiresAt"] == "2025-08-03T10:32:40Z"  # T0 + 60 + 100
    assert touched.json["version"] == 1
    frozen.now += 90  # past the first expiry, within the restarted one
    assert cli("memory", "retrieve", "session").exit_code == 0
    events = lines(cli("memory", "watch", "--since", "0", "--timeout", "1"))
    assert [(e["action"], e["version"]) for e in events] == [("store", 1), ("touch", 1)]
    frozen.now += 20
    assert cli("memory", "retrieve", "session", "--touch").exit_code == 1  # expired: nothing to touch


def test_touch_of_a_missing_key_exits_1_and_writes_nothing(cli, db_path):
    assert cli("memory", "retrieve", "nope", "--touch").exit_code == 1
    assert not db_path.exists()


def test_delete_pattern_deletes_matching_live_entries_in_one_go(cli, frozen):
    cli("memory", "store", "tmp-1", "1")
    cli("memory", "store", "tmp-2", "1", "-n", "other")
    cli("memory", "store", "tmp-old", "1", "--ttl", "5")
    cli("memory", "store", "keep", "1")
    frozen.now += 6
    one_ns = cli("memory", "delete", "--pattern", "tmp-*", "-n", "other").json
    assert one_ns["deleted"] == [{"key": "tmp-2", "namespace": "other"}]
    everywhere = cli("memory", "delete", "--pattern", "tmp-*").json
    assert everywhere["deleted"] == [{"key": "tmp-1", "namespace": "default"}]  # expired ones are not live
    assert cli("memory", "delete", "--pattern", "tmp-*").exit_code == 1
    assert cli("memory", "delete", "--pattern", "tmp-*", "--missing-ok").exit_code == 0
    assert cli("memory", "delete", "--pattern", "").exit_code == 2
    assert cli("memory", "delete", "k", "--pattern", "x").exit_code == 2
    assert cli("memory", "delete").exit_code == 2
    refused = cli("memory", "delete", "--pattern", "*")
    assert refused.exit_code == 2 and cli("memory", "retrieve", "keep").exit_code == 0
    assert cli("memory", "delete", "--pattern", "*", "--yes").json["total"] == 1


def test_a_watcher_on_an_older_schema_sees_the_writes_that_migrate_it(run, db_path):
    assert run("memory", "store", "a", "1").returncode == 0
    assert run("migrate", "down", "--to", "1.0.9", "--yes").returncode == 0
    command = gemini_flow_command()
    watcher = subprocess.Popen([*command, "--db", str(db_path), "memory", "watch", "--count", "1", "--timeout", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # the watcher reads through an upgraded copy of the 1.0.9 file
    assert run("memory", "store", "b", "2").returncode == 0  # migrates the file, then writes
    out, err = watcher.communicate(timeout=120)
    assert watcher.returncode == 0, err
    assert [json.loads(line)["key"] for line in out.splitlines()] == ["b"]
