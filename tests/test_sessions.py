"""`session`: start, checkpoint, resume after a crash, end, list, show; ending with the swarm (issue 15)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import gemini_flow_command
from tests.helpers import sql


def start(cli, *args):
    result = cli("session", "start", "--type", "hive-mind", *args)
    assert result.exit_code == 0, result
    return result.json


def test_start_records_the_seed_columns(cli, db_path):
    swarm = cli("swarm", "init", "--topology", "mesh").json["id"]
    made = start(cli, "--swarm", swarm, "--context", '{"goal": "ship"}', "--user", "ana", "--project", "p1",
                 "--tag", "a", "--tag", "b")
    assert made["id"].startswith("session-") and len(made["id"]) == len("session-") + 16
    assert (made["type"], made["status"], made["swarmId"], made["context"], made["tags"], made["checkpoints"]) == (
        "hive-mind", "active", swarm, {"goal": "ship"}, ["a", "b"], 0)
    row = sql(db_path, "SELECT type, status, swarm_id, context, user_id, project_id, tags, checkpoint_data "
                       "FROM sessions")
    assert row == [("hive-mind", "active", swarm, '{"goal":"ship"}', "ana", "p1", '["a","b"]', None)]
    assert cli("session", "show", made["id"]).json == made


@pytest.mark.parametrize("args, status, code", [
    (["--type", "party"], 2, "INVALID_INPUT"),
    (["--type", "batch", "--swarm", "swarm-nope"], 1, "NOT_FOUND"),
    (["--type", "batch", "--context", "{"], 2, "INVALID_INPUT"),
    (["--type", "batch", "--user", ""], 2, "INVALID_INPUT"),
])
def test_start_refuses_bad_input(cli, args, status, code):
    result = cli("session", "start", *args)
    assert result.exit_code == status and result.error["code"] == code, result


def test_checkpoints_replace_each_other_and_resume_prints_the_last(cli, tmp_path):
    session = start(cli)["id"]
    first = cli("session", "checkpoint", session, '{"step": 1}').json
    assert (first["sessionId"], first["sequence"]) == (session, 1)
    assert cli("session", "checkpoint", session, input='{"step": 2}\n').json["sequence"] == 2
    path = tmp_path / "c.json"
    path.write_text('{"step": 3, "notes": ["é"]}')
    assert cli("session", "checkpoint", session, "--file", str(path)).json["sequence"] == 3
    resumed = cli("session", "resume", session).json
    assert (resumed["sequence"], resumed["data"], resumed["status"]) == (3, {"step": 3, "notes": ["é"]}, "active")
    shown = cli("session", "show", session).json
    assert shown["checkpoints"] == 3 and shown["lastCheckpointAt"] == resumed["createdAt"]
    table = cli("session", "resume", session, "--format", "table")
    assert json.loads(table.stdout) == {"step": 3, "notes": ["é"]}


def test_resume_without_a_checkpoint_exits_1(cli):
    session = start(cli)["id"]
    result = cli("session", "resume", session)
    assert result.exit_code == 1 and result.error["code"] == "NOT_FOUND"
    assert result.error["details"]["reason"] == "no checkpoint" and result.stdout == ""


@pytest.mark.parametrize("command", [["show"], ["resume"], ["end"], ["checkpoint", "{}"]])
def test_unknown_sessions_exit_1(cli, command):
    result = cli("session", command[0], "session-nope", *command[1:])
    assert result.exit_code == 1 and result.error["code"] == "NOT_FOUND"
    assert result.error["details"] == {"sessionId": "session-nope"}


def test_a_checkpoint_is_size_limited_like_a_memory_value(cli):
    session = start(cli)["id"]
    cli("session", "checkpoint", session, '{"step": 1}')
    assert cli("config", "set", "memory.maxValueSize", "1KB").exit_code == 0
    result = cli("session", "checkpoint", session, json.dumps({"blob": "x" * 2000}))
    assert result.exit_code == 5 and result.error["code"] == "VALUE_TOO_LARGE"
    assert cli("session", "resume", session).json["data"] == {"step": 1}


@pytest.mark.parametrize("data", ["{", "NaN", "[" * 300 + "]" * 300, '"\\ud83d"'])
def test_a_checkpoint_that_is_not_json_exits_2_and_keeps_the_last(cli, data):
    session = start(cli)["id"]
    cli("session", "checkpoint", session, '{"step": 1}')
    result = cli("session", "checkpoint", session, data)
    assert result.exit_code == 2 and result.error["code"] == "INVALID_INPUT"
    assert cli("session", "resume", session).json["data"] == {"step": 1}


def test_end_is_once_and_an_ended_session_takes_no_checkpoint(cli):
    session = start(cli)["id"]
    cli("session", "checkpoint", session, '{"step": 1}')
    ended = cli("session", "end", session).json
    assert (ended["status"], ended["endedBy"]) == ("ended", "end") and ended["endedAt"]
    again = cli("session", "end", session)
    assert again.exit_code == 3 and again.error["code"] == "CONFLICT"
    late = cli("session", "checkpoint", session, '{"step": 2}')
    assert late.exit_code == 3
    assert cli("session", "resume", session).json["data"] == {"step": 1}, "an ended session still resumes"


def test_sessions_of_a_swarm_end_with_its_shutdown(cli, db_path):
    swarm = cli("swarm", "init", "--topology", "mesh").json["id"]
    other = cli("swarm", "init", "--topology", "ring").json["id"]
    mine = [start(cli, "--swarm", swarm)["id"] for _ in range(2)]
    already = start(cli, "--swarm", swarm)["id"]
    cli("session", "end", already)
    elsewhere = start(cli, "--swarm", other)["id"]
    free = start(cli)["id"]
    shut = cli("swarm", "shutdown", swarm).json
    assert shut["endedSessions"] == mine
    for sid in mine:
        shown = cli("session", "show", sid).json
        assert (shown["status"], shown["endedBy"]) == ("ended", "swarm-shutdown")
    assert cli("session", "show", already).json["endedBy"] == "end"
    assert {cli("session", "show", s).json["status"] for s in (elsewhere, free)} == {"active"}
    late = cli("session", "start", "--type", "batch", "--swarm", swarm)
    assert late.exit_code == 3 and late.error["code"] == "CONFLICT"
    # the same transaction: the swarm's audit row names the sessions it ended
    details = sql(db_path, "SELECT details FROM audit_log WHERE entity_type = 'swarm' AND action = 'shutdown'")
    assert json.loads(details[0][0]) == {"endedSessions": mine}


def test_list_filters_by_status_type_and_swarm(cli):
    swarm = cli("swarm", "init", "--topology", "mesh").json["id"]
    a = start(cli, "--swarm", swarm)["id"]
    b = cli("session", "start", "--type", "batch").json["id"]
    cli("session", "end", b)
    ids = lambda *args: [s["id"] for s in cli("session", "list", *args).json["sessions"]]  # noqa: E731
    assert ids() == [a, b]
    assert ids("--status", "active") == [a] and ids("--status", "ended") == [b]
    assert ids("--type", "batch") == [b] and ids("--swarm", swarm) == [a]
    assert cli("session", "list", "--status", "paused").exit_code == 2
    assert cli("session", "list", "--swarm", "swarm-nope").exit_code == 1


def _agent(db_path, session: str, steps: int) -> subprocess.Popen:
    """An agent process that checkpoints after each step, then hangs in its next step."""
    script = (
        "import subprocess, sys, time\n"
        f"cmd = {gemini_flow_command()!r} + ['--db', {str(db_path)!r}, '-q', 'session', 'checkpoint', {session!r}]\n"
        f"for step in range(1, {steps} + 1):\n"
        "    subprocess.run(cmd + ['{\"step\": %d}' % step], check=True, stdout=subprocess.DEVNULL)\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_an_agent_killed_mid_run_resumes_from_its_last_checkpoint(run, db_path):
    session = json.loads(run("--json", "session", "start", "--type", "interactive").stdout)["id"]
    agent = _agent(db_path, session, 3)
    try:
        assert agent.stdout.readline().strip() == "ready"
    finally:
        agent.kill()
        agent.wait()
    resumed = run("--json", "session", "resume", session)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["data"] == {"step": 3}


def test_a_checkpoint_killed_while_it_reads_leaves_the_last_one(run, db_path):
    session = json.loads(run("--json", "session", "start", "--type", "batch").stdout)["id"]
    assert run("session", "checkpoint", session, '{"step": 1}').returncode == 0
    writer = subprocess.Popen([*gemini_flow_command(), "--db", str(db_path), "session", "checkpoint", session, "-"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    writer.stdin.write(b'{"step": 2, "partial": "')
    writer.stdin.flush()
    time.sleep(0.5)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert json.loads(run("--json", "session", "resume", session).stdout)["data"] == {"step": 1}
