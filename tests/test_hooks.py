"""Hooks (issue 15): commands that run after a write commits, on the events it fired.

Real processes where a process matters (a hook runs as one): the hook writes what it read on
stdin to a file, and the test reads the file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemini_flow_cli.core import conditions, events
from gemini_flow_cli.core.db import Database
from gemini_flow_cli.errors import GeminiFlowError
from tests.conftest import not_on_a_server

PY = sys.executable


def recorder(path: Path, tag: str = "") -> str:
    """A --run that appends ``tag`` and the event JSON it reads on stdin to ``path``, one line."""
    code = f"import sys; open({str(path)!r}, 'a').write({tag!r} + sys.stdin.read())"
    return f"{PY} -c \"{code}\""


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def ok(result):
    assert result.exit_code == 0, result
    return result.json


# -- the condition language -------------------------------------------------------------------

EVENT = {"event": "memory.store", "key": "user-42", "namespace": "prod", "version": 3, "size": 17.5,
         "encrypted": False, "tags": ["a", "b"], "context": {"region": "eu"}, "error": None}


@pytest.mark.parametrize("text, expected", [
    ('key ~ "user-*"', True),
    ("key ~ 'admin-*'", False),
    ('namespace == "prod" and version >= 3', True),
    ('namespace == "prod" and version > 3', False),
    ('not (namespace == "dev" or encrypted)', True),
    ("tags.0 == \"a\" and tags.2 == null", True),
    ('context.region != "us"', True),
    ("missing.field == null", True),
    ("size < 18 and size <= 17.5 and size > 17 and size >= 17.5", True),
    ('version < "4"', False),  # a number and a string do not order
    ("version == 3.0", True),
    ("encrypted == 0", False),  # false is not 0
    ("error", False),
    ("tags", True),
    ('key ~ 3', False),
    ('event == "memory.store" and (key ~ "user-?2" or false)', True),
])
def test_conditions_evaluate_over_the_event(text, expected):
    assert conditions.evaluate(conditions.parse(text), EVENT) is expected


@pytest.mark.parametrize("text", [
    "__import__('os')", "key == ", "(a", "a ==== b", "a = 1", "'open", "a.", "not", "a and", "1 2",
    "a.b.(c)", "exec('x')", "a; b", "", "   ", "x" * 3000, "(" * 100 + "a" + ")" * 100, "a == 'x\\q'",
    "a == 1e999",
])
def test_a_condition_that_does_not_parse_is_invalid_input(text):
    with pytest.raises(GeminiFlowError) as caught:
        conditions.parse(text)
    assert caught.value.code == "INVALID_INPUT"


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in conditions.KEYWORDS)
literals = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
).map(conditions.Literal)
paths = st.lists(st.one_of(names, st.integers(0, 5).map(str)), min_size=0, max_size=2).flatmap(
    lambda rest: names.map(lambda first: conditions.Path((first, *rest))))
trees = st.recursive(
    st.one_of(literals, paths),
    lambda inner: st.one_of(
        inner.map(conditions.Not),
        st.tuples(st.sampled_from(("and", "or")), inner, inner).map(lambda t: conditions.Logical(*t)),
        st.tuples(st.sampled_from(conditions.COMPARISONS), inner, inner).map(lambda t: conditions.Compare(*t)),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(trees)
def test_conditions_round_trip_through_their_text(tree):
    text = conditions.format_node(tree)
    assert conditions.format_node(conditions.parse(text)) == text


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), json_values)
def test_any_text_parses_or_is_invalid_input_and_evaluation_never_raises(text, event):
    try:
        tree = conditions.parse(text)
    except GeminiFlowError as exc:
        assert exc.code == "INVALID_INPUT"
        return
    assert conditions.evaluate(tree, event) in (True, False)


@settings(max_examples=200, deadline=None)
@given(trees, json_values)
def test_evaluating_a_tree_never_raises(tree, event):
    assert conditions.evaluate(tree, {"a": event}) in (True, False)


# -- events are recorded with the transaction -------------------------------------------------


def test_events_are_kept_only_when_the_transaction_commits(db_path):
    db = Database.open(db_path)
    try:
        with db.write() as conn:
            conn.execute("INSERT INTO hooks (event_type, handler) VALUES ('memory.*', 'true')")
        with pytest.raises(RuntimeError):
            with db.write():
                events.record(db, "memory.store", {"key": "rolled-back"})
                raise RuntimeError
        assert db.events == []
        with db.write():
            events.record(db, "memory.store", {"key": "kept"})
            events.record(db, "task.failed", {"id": "nobody listens"})
        assert db.events == [("memory.store", {"key": "kept"})]
    finally:
        db.close()


def test_every_event_has_a_description_and_a_sample():
    for name, (description, sample) in events.EVENTS.items():
        assert "." in name and description and isinstance(sample, dict)
    assert {"memory.store", "memory.delete", "task.completed", "task.failed", "consensus.decided",
            "agent.spawned"} <= set(events.EVENTS)


# -- the commands -----------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["memory.stored", "--run", "true"], "unknown event"),
    (["nothing.*", "--run", "true"], "unknown event"),
    (["memory.store", "--run", "'unclosed"], "invalid --run"),
    (["memory.store", "--run", "   "], "invalid --run"),
    (["memory.store", "--run", "true", "--if", "__import__('os').system('id')"], "invalid condition"),
    (["memory.store", "--run", "true", "--timeout", "0"], "invalid --timeout"),
    (["memory.store", "--run", "true", "--timeout", "nan"], "--timeout"),
    (["memory.store", "--run", "true", "--priority", "99999999999"], "invalid --priority"),
])
def test_add_refuses_bad_input_with_exit_2_and_adds_nothing(cli, args, message):
    result = cli("hooks", "add", *args)
    assert result.exit_code == 2, result
    assert message in result.error["message"]
    assert ok(cli("hooks", "list"))["total"] == 0


def test_add_list_show_enable_disable_remove(cli):
    first = ok(cli("hooks", "add", "task.failed", "--run", "notify-send 'task failed'", "--priority", "10",
                   "--if", 'priority == "high"', "--timeout", "2.5"))
    assert first["event"] == "task.failed" and first["run"] == "notify-send 'task failed'"
    assert first["enabled"] and first["trusted"] and first["timeout"] == 2.5 and first["priority"] == 10
    assert first["condition"] == 'priority == "high"' and first["executionCount"] == 0
    second = ok(cli("hooks", "add", "*", "--run", "true", "--priority", "20"))
    assert [h["id"] for h in ok(cli("hooks", "list"))["hooks"]] == [second["id"], first["id"]]
    assert [h["id"] for h in ok(cli("hooks", "list", "--event", "task.failed"))["hooks"]] == [first["id"]]
    assert ok(cli("hooks", "disable", str(first["id"])))["enabled"] is False
    assert ok(cli("hooks", "disable", str(first["id"])))["enabled"] is False  # idempotent
    assert ok(cli("hooks", "enable", str(first["id"])))["enabled"] is True
    assert ok(cli("hooks", "show", str(first["id"])))["id"] == first["id"]
    assert ok(cli("hooks", "remove", str(first["id"])))["success"] is True
    for command in ("show", "enable", "disable", "remove", "test"):
        missing = cli("hooks", command, str(first["id"]))
        assert missing.exit_code == 1 and missing.error["code"] == "NOT_FOUND", (command, missing)
    assert cli("hooks", "show", str(2**63 - 1)).exit_code == 1
    actions = [e["action"] for e in ok(cli("audit", "list", "--entity", "hook"))["entries"]]
    assert actions.count("add") == 2 and "remove" in actions and "disable" in actions


def test_the_hooks_key_is_private_and_made_once(cli, tmp_path):
    import os

    ok(cli("hooks", "add", "memory.store", "--run", "true"))
    key = Path(os.environ["XDG_CONFIG_HOME"]) / "gemini-flow" / "hooks.key"
    assert key.stat().st_mode & 0o777 == 0o600
    before = key.read_text()
    ok(cli("hooks", "add", "memory.delete", "--run", "true"))
    assert key.read_text() == before


# -- firing (real processes) ------------------------------------------------------------------


def test_a_hook_fires_after_the_commit_with_the_event_on_stdin(run, tmp_path, db_path):
    out = tmp_path / "events.jsonl"
    assert run("hooks", "add", "memory.store", "--run", recorder(out)).returncode == 0
    stored = run("memory", "store", "user-42", '{"theme": "dark"}', "-n", "prefs", "-t", "ui", "--json")
    assert stored.returncode == 0 and stored.stderr == ""
    [event] = lines(out)
    assert event["event"] == "memory.store" and event["actor"] and event["at"].endswith("Z")
    assert event["key"] == "user-42" and event["namespace"] == "prefs" and event["version"] == 1
    assert event["tags"] == ["ui"] and event["source"] == "store" and "value" not in event
    listed = json.loads(run("hooks", "list", "--json").stdout)["hooks"][0]
    assert (listed["executionCount"], listed["successCount"], listed["failureCount"]) == (1, 1, 0)
    assert listed["lastRun"]["status"] == "ok" and listed["lastExecuted"]


def test_the_hook_sees_the_committed_data(run, tmp_path):
    """Hooks run after the commit: a hook that reads the database finds what fired it."""
    out = tmp_path / "seen.txt"
    code = f"import subprocess, sys; open({str(out)!r}, 'w').write(subprocess.run([sys.argv[1], 'memory', 'retrieve', 'k', '--json'], capture_output=True, text=True).stdout)"
    gf = str(Path(sys.executable).with_name("gemini-flow"))
    assert run("hooks", "add", "memory.store", "--run", f"{PY} -c \"{code}\" {gf}").returncode == 0
    assert run("memory", "store", "k", "committed").returncode == 0
    assert json.loads(out.read_text())["value"] == "committed"


def test_a_failing_hook_warns_and_leaves_the_command_and_its_data(run, tmp_path):
    assert run("hooks", "add", "memory.store", "--run", "sh -c 'echo broken >&2; exit 3'").returncode == 0
    stored = run("memory", "store", "k", "v", "--json")
    assert stored.returncode == 0, stored
    assert json.loads(stored.stdout)["success"] is True
    assert "warning: hook 1 (memory.store" in stored.stderr and "exit 3: broken" in stored.stderr
    assert json.loads(run("memory", "retrieve", "k", "--json").stdout)["value"] == "v"
    hook = json.loads(run("hooks", "show", "1", "--json").stdout)
    assert (hook["executionCount"], hook["successCount"], hook["failureCount"]) == (1, 0, 1)
    assert hook["lastRun"]["exitCode"] == 3 and hook["lastRun"]["stderr"] == "broken\n"


def test_a_missing_program_is_a_warning_too(run):
    assert run("hooks", "add", "memory.store", "--run", "/nonexistent/notify").returncode == 0
    stored = run("memory", "store", "k", "v")
    assert stored.returncode == 0 and "cannot run '/nonexistent/notify'" in stored.stderr


def test_a_slow_hook_is_killed_at_its_timeout_with_its_children(run, tmp_path):
    marker = tmp_path / "late"
    assert run("hooks", "add", "memory.store", "--run", f"sh -c 'sleep 30; touch {marker}'",
               "--timeout", "0.5").returncode == 0
    started = time.monotonic()
    stored = run("memory", "store", "k", "v")
    elapsed = time.monotonic() - started
    assert stored.returncode == 0 and "timed out after 0.5 s" in stored.stderr
    assert elapsed < 10, elapsed  # the hook's sleep (30 s) was not waited for
    time.sleep(0.3)
    assert not marker.exists()
    assert json.loads(run("hooks", "show", "1", "--json").stdout)["lastRun"]["status"] == "timeout"


def test_a_hook_that_prints_without_end_is_held_to_a_bounded_tail(run):
    """`yes` as a hook once took gigabytes: only the tail of its output is held (found by trying it)."""
    import resource

    assert run("hooks", "add", "memory.store", "--run", "yes", "--timeout", "1").returncode == 0
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    stored = run("memory", "store", "k", "v")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert stored.returncode == 0 and "timed out after 1 s" in stored.stderr
    if before < 200 * 1024:  # the peak of every child so far: meaningful only if theirs was lower
        assert peak_kib < 200 * 1024, peak_kib  # KiB: far below the gigabytes it took
    last = json.loads(run("hooks", "show", "1", "--json").stdout)["lastRun"]
    assert last["stdout"].endswith("y\n") and len(last["stdout"]) <= 2000


def test_interrupting_the_command_kills_a_running_hook(run, tmp_path, db_path):
    import signal
    import subprocess

    from conftest import gemini_flow_command

    marker = tmp_path / "survived"
    assert run("hooks", "add", "memory.store", "--run", f"sh -c 'sleep 3; touch {marker}'",
               "--timeout", "60").returncode == 0
    process = subprocess.Popen([*gemini_flow_command(), "--db", str(db_path), "memory", "store", "k", "v"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    time.sleep(3)
    assert not marker.exists()


def test_a_hook_whose_child_keeps_the_pipes_counts_by_its_own_exit(run):
    assert run("hooks", "add", "memory.store", "--run", "sh -c 'setsid sleep 5 & exit 0'",
               "--timeout", "3").returncode == 0
    started = time.monotonic()
    assert run("memory", "store", "k", "v").returncode == 0
    assert time.monotonic() - started < 3
    assert json.loads(run("hooks", "show", "1", "--json").stdout)["lastRun"]["status"] == "ok"


def test_a_hook_gets_the_database_as_an_absolute_path(run, tmp_path):
    out = tmp_path / "env.txt"
    rel = tmp_path / "work"
    rel.mkdir()
    assert run("--db", "rel.db", "hooks", "add", "memory.store", "--run",
               f"sh -c 'printf %s \"$GEMINI_FLOW_DB\" > {out}'", cwd=rel, db=None).returncode == 0
    assert run("--db", "rel.db", "memory", "store", "x", "1", cwd=rel, db=None).returncode == 0
    assert out.read_text() == str(rel / "rel.db")


def test_hooks_run_in_priority_order_then_oldest_first(run, tmp_path):
    out = tmp_path / "order.txt"
    for tag, priority in (("low", "-1"), ("high", "10"), ("mid-a", "0"), ("mid-b", "0")):
        code = f"open({str(out)!r}, 'a').write('{tag} ')"
        assert run("hooks", "add", "memory.delete", "--run", f"{PY} -c \"{code}\"", "--priority", priority).returncode == 0
    run("memory", "store", "k", "v")
    assert run("memory", "delete", "k").returncode == 0
    assert out.read_text().split() == ["high", "mid-a", "mid-b", "low"]


def test_a_condition_chooses_the_events_a_hook_runs_for(run, tmp_path):
    out = tmp_path / "users.jsonl"
    assert run("hooks", "add", "memory.store", "--run", recorder(out),
               "--if", 'namespace == "prod" and key ~ "user-*"').returncode == 0
    for key, namespace in (("user-1", "prod"), ("user-2", "dev"), ("order-3", "prod"), ("user-4", "prod")):
        assert run("memory", "store", key, "v", "-n", namespace).returncode == 0
    assert [e["key"] for e in lines(out)] == ["user-1", "user-4"]
    hook = json.loads(run("hooks", "show", "1", "--json").stdout)
    assert hook["executionCount"] == 2  # a false condition is not a run


def test_a_disabled_hook_does_not_run(run, tmp_path):
    out = tmp_path / "events.jsonl"
    run("hooks", "add", "memory.store", "--run", recorder(out))
    run("hooks", "disable", "1")
    run("memory", "store", "a", "1")
    assert lines(out) == []
    run("hooks", "enable", "1")
    run("memory", "store", "b", "2")
    assert [e["key"] for e in lines(out)] == ["b"]


def test_nothing_fires_when_the_command_fails(run, tmp_path):
    out = tmp_path / "events.jsonl"
    run("hooks", "add", "memory.*", "--run", recorder(out))
    run("memory", "store", "k", "v")
    assert len(lines(out)) == 1
    assert run("memory", "store", "k", "again", "--if-absent").returncode == 3
    batch = tmp_path / "batch.jsonl"
    batch.write_text('{"action": "store", "key": "x", "value": 1}\n'
                     '{"action": "delete", "key": "k"}\n'
                     '{"action": "store", "key": "x", "value": 2, "ifAbsent": true}\n')
    assert run("memory", "batch", str(batch)).returncode == 3  # rolled back whole
    assert len(lines(out)) == 1
    assert json.loads(run("memory", "retrieve", "k", "--json").stdout)["value"] == "v"


def test_a_batch_fires_one_event_per_write_in_order(run, tmp_path):
    out = tmp_path / "events.jsonl"
    run("hooks", "add", "memory.*", "--run", recorder(out))
    batch = tmp_path / "batch.jsonl"
    batch.write_text('{"action": "store", "key": "a", "value": 1}\n{"action": "store", "key": "b", "value": 2}\n'
                     '{"action": "retrieve", "key": "a"}\n{"action": "delete", "key": "a"}\n')
    assert run("memory", "batch", str(batch)).returncode == 0
    # "a" was stored, then deleted by the same batch: its store event would name a missing entry
    assert [(e["event"], e["key"], e["source"]) for e in lines(out)] == [("memory.store", "b", "batch"),
                                                                       ("memory.delete", "a", "batch")]


def test_task_agent_swarm_and_consensus_events(run, tmp_path):
    out = tmp_path / "events.jsonl"
    run("hooks", "add", "*", "--run", recorder(out))

    def j(*args):
        result = run(*args, "--json")
        assert result.returncode == 0, result
        return json.loads(result.stdout)

    swarm = j("swarm", "init", "--topology", "mesh")["id"]
    agent = j("agent", "spawn", "--type", "coder", "--swarm", swarm)["id"]
    task = j("task", "orchestrate", "build it", "--swarm", swarm, "--priority", "high")["taskId"]
    j("task", "claim", "--agent", agent)
    j("task", "fail", task, "--agent", agent, "--error", "boom")
    decision = j("consensus", "request", "--swarm", swarm, "--proposal", "ship", "--type", "majority")["decisionId"]
    j("consensus", "vote", decision, "--agent", agent, "approve")
    seen = lines(out)
    assert [e["event"] for e in seen] == [
        "swarm.created", "swarm.joined", "agent.spawned", "task.created", "task.claimed", "task.failed",
        "consensus.requested", "consensus.voted", "consensus.decided",
    ]
    failed = seen[5]
    assert failed["id"] == task and failed["status"] == "failed" and failed["error"] == "boom"
    assert failed["agentId"] == agent and failed["priority"] == "high"
    assert seen[2]["id"] == agent and seen[2]["swarms"] == [swarm] and seen[8]["decision"] == "approved" and seen[8]["decisionId"] == decision


def test_a_completed_subtask_fires_its_parents_completion(run, tmp_path):
    out = tmp_path / "events.jsonl"
    run("hooks", "add", "task.completed", "--run", recorder(out))
    agent = json.loads(run("agent", "spawn", "--type", "coder", "--json").stdout)["id"]
    parent = json.loads(run("task", "orchestrate", "p", "--subtask", "only", "--json").stdout)
    sub = parent["subtasks"][0]["id"]
    assert run("task", "start", sub, "--agent", agent).returncode == 0
    assert run("task", "complete", sub).returncode == 0
    assert [e["id"] for e in lines(out)] == [sub, parent["taskId"]]


def test_a_hook_not_added_by_this_user_never_runs(run, tmp_path):
    """A copied, cloned or restored database brings its hooks as data, never as code to run."""
    out = tmp_path / "planted"
    assert run("hooks", "add", "memory.store", "--run", f"touch {out}").returncode == 0
    stranger = {"XDG_CONFIG_HOME": str(tmp_path / "someone-else")}
    stored = run("memory", "store", "k", "v", env=stranger)
    assert stored.returncode == 0 and "not added by you" in stored.stderr
    assert not out.exists()
    assert json.loads(run("hooks", "list", "--json", env=stranger).stdout)["hooks"][0]["trusted"] is False
    assert run("hooks", "test", "1", env=stranger).returncode == 4
    assert not out.exists()
    assert run("hooks", "enable", "1", env=stranger).returncode == 0  # enabling does not make it trusted
    run("memory", "store", "k", "w", env=stranger)
    assert not out.exists()


def test_a_hook_edited_in_the_file_is_no_longer_trusted(run, tmp_path, db_path):
    import sqlite3

    out = tmp_path / "edited"
    run("hooks", "add", "memory.store", "--run", "true")
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE hooks SET handler = ?", (f"touch {out}",))
    stored = run("memory", "store", "k", "v")
    assert stored.returncode == 0 and "not added by you" in stored.stderr and not out.exists()


def test_hooks_are_never_merged_from_a_backup(run, tmp_path):
    other = tmp_path / "other" / ".hive-mind" / "hive.db"
    out = tmp_path / "from-backup"
    assert run("hooks", "add", "memory.store", "--run", f"touch {out}", db=other).returncode == 0
    backup = json.loads(run("backup", "create", "--json", db=other).stdout)["path"]
    run("memory", "store", "here", "1")
    merged = run("backup", "restore", backup, "--merge", "--yes", "--json")
    assert merged.returncode == 0, merged
    assert "1 hook(s)" in merged.stderr
    assert json.loads(run("hooks", "list", "--json").stdout)["total"] == 0
    run("memory", "store", "after", "2")
    assert not out.exists()


def test_a_hook_that_writes_fires_hooks_down_to_a_limit(run, tmp_path):
    gf = str(Path(sys.executable).with_name("gemini-flow"))
    counter = tmp_path / "count"
    run("hooks", "add", "memory.store", "--run", f"sh -c 'echo x >> {counter}; {gf} memory incr n >/dev/null'")
    stored = run("memory", "store", "k", "v")
    assert stored.returncode == 0
    assert len(counter.read_text().split()) == 3  # the command's hook, then those of the hooks' writes, 3 levels
    assert json.loads(run("memory", "retrieve", "n", "--json").stdout)["value"] == 3


def test_hooks_test_runs_one_hook_on_a_sample_without_recording(run, tmp_path):
    out = tmp_path / "tested.jsonl"
    run("hooks", "add", "task.*", "--run", recorder(out), "--if", 'status == "failed"')
    run("hooks", "disable", "1")
    result = run("hooks", "test", "1", "--json")
    assert result.returncode == 0, result
    body = json.loads(result.stdout)
    assert body["event"] == "task.created" and body["conditionMatched"] is False and body["ran"] is False
    sample = run("hooks", "test", "1", "--name", "task.failed", "--json")
    body = json.loads(sample.stdout)
    assert body["ran"] and body["ok"] and body["conditionMatched"] and body["exitCode"] == 0
    assert lines(out)[-1]["event"] == "task.failed"
    given_event = run("hooks", "test", "1", "--name", "task.completed", "--event", '{"id": "t", "status": "completed"}', "--json")
    body = json.loads(given_event.stdout)
    assert body["conditionMatched"] is False and body["ran"] is False
    hook = json.loads(run("hooks", "show", "1", "--json").stdout)
    assert hook["executionCount"] == 0 and hook["enabled"] is False
    failing = tmp_path / "db2.db"
    run("hooks", "add", "memory.store", "--run", "false", db=failing)
    body = json.loads(run("hooks", "test", "1", "--json", db=failing).stdout)
    assert body["ran"] and body["ok"] is False and body["exitCode"] == 1


def test_the_readme_lists_every_event_and_no_other():
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Hooks\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z]+\.[a-z]+)` \|", section, re.MULTILINE)
    assert listed == list(events.EVENTS)


def test_any_door_fires_the_same_hooks(cli, db_path, tmp_path):
    """A server makes one Invocation per request: its writes run the hooks as the CLI's do."""
    from gemini_flow_cli.core import tasks
    from gemini_flow_cli.core.invocation import Invocation

    out = tmp_path / "events.jsonl"
    ok(cli("hooks", "add", "*", "--run", recorder(out)))
    warnings: list[str] = []
    invocation = Invocation(db_path, actor="api-key:ci", warn=warnings.append)
    try:
        db = invocation.open_db(create=True)
        invocation.memory(db=db).store("from-http", {"x": 1})
        tasks.orchestrate(db, "from a request")
    finally:
        invocation.finish()
    assert [(e["event"], e["actor"]) for e in lines(out)] == [("memory.store", "api-key:ci"),
                                                               ("task.created", "api-key:ci")]
    assert warnings == []
