"""Swarms: init, membership kept as a relation, shutdown, coordinators and the seed's Swarm Status."""

from __future__ import annotations
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.helpers import T0, sql, keys_tree

# The installed console script, as conftest's `run` uses it.
_SCRIPT = Path(sys.executable).with_name("gemini-flow")
GEMINI_FLOW = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gemini_flow_cli"]

# The seed's "Swarm Status" response (GET /api/v1/swarms/swarm-5678/status), verbatim.
SEED_SWARM_STATUS = {
    "swarmId": "swarm-5678",
    "topology": "hierarchical",
    "status": "active",
    "agents": {"total": 8, "active": 6, "idle": 2, "coordinator": "agent-1234"},
    "tasks": {"total": 23, "completed": 18, "running": 3, "pending": 2, "successRate": 0.92},
    "performance": {"throughput": 12.5, "efficiency": 0.89, "coordination": 0.94},
}


def init(cli, *args):
    result = cli("swarm", "init", *args)
    assert result.exit_code == 0, result
    return result.json["id"]


def spawn(cli, agent_type="coder", *args):
    result = cli("agent", "spawn", "--type", agent_type, *args)
    assert result.exit_code == 0, result
    return result.json["id"]


def members_and_count(db_path, swarm):
    return sql(db_path, "SELECT (SELECT COUNT(*) FROM swarm_members WHERE swarm_id = ?), active_agents "
                        "FROM swarms WHERE id = ?", (swarm, swarm))[0]


def test_init_records_an_active_swarm_with_the_defaults(cli, frozen):
    result = cli("swarm", "init", "--topology", "mesh")
    assert result.exit_code == 0
    record = result.json
    assert record["id"].startswith("swarm-")
    assert {k: record[k] for k in ("topology", "strategy", "maxAgents", "status", "activeAgents", "createdAt", "config")} == {
        "topology": "mesh", "strategy": "parallel", "maxAgents": 8, "status": "active", "activeAgents": 0,
        "createdAt": "2025-08-03T10:30:00Z", "config": None,
    }
    listed = cli("swarm", "list").json
    assert [s["id"] for s in listed["swarms"]] == [record["id"]]


@pytest.mark.parametrize(
    "args",
    [["--topology", "tree"], ["--topology", "mesh", "--strategy", "random"], ["--topology", "mesh", "--max-agents", "0"],
     ["--topology", "mesh", "--config", "[1]"]],
)
def test_init_refuses_bad_arguments_with_exit_2(cli, db_path, args):
    assert cli("swarm", "init", *args).exit_code == 2
    assert cli("swarm", "list").json["total"] == 0


def test_join_and_leave_keep_active_agents_equal_to_the_membership(cli, db_path):
    swarm = init(cli, "--topology", "ring", "--strategy", "sequential", "--config", '{"r": 1}')
    a, b = spawn(cli), spawn(cli)
    assert cli("swarm", "join", swarm, a).json["activeAgents"] == 1
    assert cli("swarm", "join", swarm, b).json["activeAgents"] == 2
    assert members_and_count(db_path, swarm) == (2, 2)
    assert cli("swarm", "leave", swarm, a).json["activeAgents"] == 1
    assert members_and_count(db_path, swarm) == (1, 1)
    assert cli("swarm", "show", swarm).json["members"] == [b]


def test_join_twice_exits_3_and_leave_of_a_non_member_exits_1(cli, db_path):
    swarm = init(cli, "--topology", "mesh")
    a = spawn(cli)
    cli("swarm", "join", swarm, a)
    assert cli("swarm", "join", swarm, a).exit_code == 3
    cli("swarm", "leave", swarm, a)
    assert cli("swarm", "leave", swarm, a).exit_code == 1
    assert members_and_count(db_path, swarm) == (0, 0)


def test_join_of_missing_swarm_or_agent_exits_1(cli):
    swarm = init(cli, "--topology", "mesh")
    a = spawn(cli)
    assert cli("swarm", "join", "swarm-nope", a).exit_code == 1
    assert cli("swarm", "join", swarm, "agent-nope").exit_code == 1


def test_a_full_swarm_refuses_members_with_exit_3(cli, db_path):
    swarm = init(cli, "--topology", "mesh", "--max-agents", "2")
    spawn(cli, "coder", "--swarm", swarm)
    spawn(cli, "coder", "--swarm", swarm)
    extra = spawn(cli)
    result = cli("swarm", "join", swarm, extra)
    assert result.exit_code == 3
    assert result.error["code"] == "CONFLICT"
    assert "full" in result.error["message"]
    assert cli("agent", "spawn", "--type", "tester", "--swarm", swarm).exit_code == 3
    assert members_and_count(db_path, swarm) == (2, 2)
    assert sql(db_path, "SELECT COUNT(*) FROM agents") == [(3,)]


def test_a_shut_down_swarm_takes_no_new_members(cli, db_path, frozen):
    swarm = init(cli, "--topology", "mesh")
    a = spawn(cli, "coder", "--swarm", swarm)
    frozen.now = T0 + 3600
    result = cli("swarm", "shutdown", swarm)
    assert result.exit_code == 0
    assert (result.json["status"], result.json["shutdownAt"]) == ("shutdown", "2025-08-03T11:30:00Z")
    b = spawn(cli)
    assert cli("swarm", "join", swarm, b).exit_code == 3
    assert cli("agent", "spawn", "--type", "coder", "--swarm", swarm).exit_code == 3
    assert cli("swarm", "shutdown", swarm).exit_code == 3
    assert cli("swarm", "status", swarm).json["status"] == "shutdown"
    assert cli("swarm", "leave", swarm, a).exit_code == 0  # leaving is still allowed
    assert [s["id"] for s in cli("swarm", "list", "--status", "shutdown").json["swarms"]] == [swarm]


def test_a_terminated_agent_cannot_join(cli):
    swarm = init(cli, "--topology", "mesh")
    a = spawn(cli)
    cli("agent", "terminate", a)
    assert cli("swarm", "join", swarm, a).exit_code == 3


def test_hierarchical_coordinator_is_the_first_coordinator_type_member(cli):
    swarm = init(cli, "--topology", "hierarchical")
    coder = spawn(cli, "coder", "--swarm", swarm)
    assert cli("swarm", "status", swarm).json["agents"]["coordinator"] == coder  # else the first member
    spawn(cli, "tester", "--swarm", swarm)
    lead = spawn(cli, "training-coordinator", "--swarm", swarm)  # ends with -coordinator
    second = spawn(cli, "mesh-coordinator", "--swarm", swarm)
    assert cli("swarm", "status", swarm).json["agents"]["coordinator"] == lead
    cli("swarm", "leave", swarm, lead)
    assert cli("swarm", "status", swarm).json["agents"]["coordinator"] == second


def test_mesh_and_ring_swarms_have_no_coordinator(cli):
    for topology in ("mesh", "ring"):
        swarm = init(cli, "--topology", topology)
        spawn(cli, "hierarchical-coordinator", "--swarm", swarm)
        assert cli("swarm", "status", swarm).json["agents"]["coordinator"] is None


def test_status_has_the_seed_shape_and_counts_from_rows(cli, db_path, frozen):
    swarm = init(cli, "--topology", "hierarchical")
    a = spawn(cli, "coder", "--swarm", swarm)
    b = spawn(cli, "tester", "--swarm", swarm)
    c = spawn(cli, "reviewer", "--swarm", swarm)
    cli("agent", "update", c, "--status", "idle")
    cli("agent", "update", b, "--status", "busy")
    rows = [
        ("t1", a, "completed", T0, T0 + 100, 100, None),  # estimated 100, took 100
        ("t2", a, "completed", T0, T0 + 300, 100, 200),   # estimated 100, actual_duration 200
        ("t3", b, "failed", T0, T0 + 50, None, None),
        ("t4", b, "running", T0, None, None, None),
        ("t5", None, "pending", None, None, None, None),
    ]
    for task_id, agent, status, started, completed, estimated, actual in rows:
        sql(db_path, "INSERT INTO tasks (id, swarm_id, agent_id, description, status, started_at, completed_at, "
                     "estimated_duration, actual_duration) VALUES (?, ?, ?, 'x', ?, ?, ?, ?, ?)",
            (task_id, swarm, agent, status, started, completed, estimated, actual))
    frozen.now = T0 + 7200  # two hours of life; a and c last seen at T0, more than 5 minutes ago
    cli("agent", "heartbeat", b)
    status = cli("swarm", "status", swarm).json
    seed, ours = keys_tree(SEED_SWARM_STATUS), keys_tree(status)
    assert ours == {**ours, **seed} | {"tasks": {**seed["tasks"], "failed": None, "cancelled": None}}
    assert status == {
        "swarmId": swarm,
        "topology": "hierarchical",
        "status": "active",
        "agents": {"total": 3, "active": 2, "idle": 1, "coordinator": a},
        "tasks": {"total": 5, "completed": 2, "running": 1, "pending": 1, "failed": 1, "cancelled": 0,
                  "successRate": 0.6667},
        "performance": {"throughput": 1.0, "efficiency": 0.6667, "coordination": 0.3333},
    }


def test_status_of_a_new_swarm_invents_nothing(cli):
    swarm = init(cli, "--topology", "star")
    assert cli("swarm", "status", swarm).json == {
        "swarmId": swarm,
        "topology": "star",
        "status": "active",
        "agents": {"total": 0, "active": 0, "idle": 0, "coordinator": None},
        "tasks": {"total": 0, "completed": 0, "running": 0, "pending": 0, "failed": 0, "cancelled": 0,
                  "successRate": 0.0},
        "performance": {"throughput": None, "efficiency": None, "coordination": None},
    }


def test_throughput_stops_at_shutdown(cli, db_path, frozen):
    swarm = init(cli, "--topology", "mesh")
    sql(db_path, "INSERT INTO tasks (id, swarm_id, description, status) VALUES ('t1', ?, 'x', 'completed'), "
                 "('t2', ?, 'y', 'completed')", (swarm, swarm))
    frozen.now = T0 + 7200
    cli("swarm", "shutdown", swarm)
    frozen.now = T0 + 86400
    assert cli("swarm", "status", swarm).json["performance"]["throughput"] == 1.0


def test_throughput_is_null_from_less_than_an_hour_of_life(cli, db_path, frozen):
    swarm = init(cli, "--topology", "mesh")
    sql(db_path, "INSERT INTO tasks (id, swarm_id, description, status) VALUES ('t1', ?, 'x', 'completed'), "
                 "('t2', ?, 'y', 'completed'), ('t3', ?, 'z', 'cancelled')", (swarm, swarm, swarm))
    frozen.now = T0 + 12  # two tasks in 12 s is not 600 an hour
    status = cli("swarm", "status", swarm).json
    assert status["performance"]["throughput"] is None
    assert (status["tasks"]["cancelled"], status["tasks"]["failed"]) == (1, 0)
    frozen.now = T0 + 3600
    assert cli("swarm", "status", swarm).json["performance"]["throughput"] == 2.0


def test_status_of_a_missing_swarm_exits_1(cli):
    assert cli("swarm", "status", "swarm-nope").exit_code == 1
    assert cli("swarm", "shutdown", "swarm-nope").exit_code == 1


def test_membership_changes_are_audited_with_the_agent_as_actor(cli, db_path):
    swarm = init(cli, "--topology", "mesh")
    a = spawn(cli)
    cli("swarm", "join", swarm, a)
    cli("swarm", "leave", swarm, a)
    cli("swarm", "shutdown", swarm)
    rows = sql(db_path, "SELECT action, actor_id FROM audit_log WHERE entity_type = 'swarm' ORDER BY id")
    assert [r[0] for r in rows] == ["init", "join", "leave", "shutdown"]
    assert rows[1][1] == a and rows[2][1] == a


def test_eight_concurrent_joins_keep_active_agents_equal_to_the_membership(run, db_path, tmp_path):
    created = run("--json", "swarm", "init", "--topology", "mesh", "--max-agents", "5")
    swarm = json.loads(created.stdout)["id"]
    agents = [json.loads(run("--json", "agent", "spawn", "--type", "coder").stdout)["id"] for _ in range(8)]
    command = [*GEMINI_FLOW, "--db", str(db_path), "--json", "swarm", "join", swarm]

    def join(agent):
        return subprocess.run([*command, agent], capture_output=True, text=True, cwd=tmp_path, timeout=60)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(join, agents))
    codes = sorted(r.returncode for r in results)
    assert codes == [0] * 5 + [3] * 3, [r.stderr for r in results]
    for result in results:
        if result.returncode == 3:
            assert json.loads(result.stderr)["error"]["code"] == "CONFLICT"
    assert members_and_count(db_path, swarm) == (5, 5)
    joined = {agent for agent, r in zip(agents, results) if r.returncode == 0}
    assert {r[0] for r in sql(db_path, "SELECT agent_id FROM swarm_members")} == joined


def test_figures_agree_with_the_columns_the_task_commands_maintain(cli, db_path):
    swarm = init(cli, "--topology", "mesh")
    agent = spawn(cli, "coder", "--swarm", swarm)
    assert cli("task", "orchestrate", "build", "--swarm", swarm, "--subtask", "one", "--subtask", "two",
               "--subtask", "three").exit_code == 0

    def claim():
        result = cli("task", "claim", "--agent", agent)
        assert result.exit_code == 0, result
        return result.json["id"]

    assert cli("task", "complete", claim()).exit_code == 0
    failed = claim()
    assert cli("task", "fail", failed, "--error", "no").exit_code == 0
    assert cli("task", "retry", failed).exit_code == 0
    running = claim()
    status = cli("swarm", "status", swarm).json
    assert status["tasks"]["total"] == 3  # the parent is a roll-up of its three subtasks
    score, rate = sql(db_path, "SELECT a.performance_score, s.success_rate FROM agents a, swarms s")[0]
    assert cli("agent", "list").json["agents"][0]["performanceScore"] == round(score, 4)
    assert status["tasks"]["successRate"] == round(rate, 4)
    # Terminating the agent hands its running task back to the queue.
    assert running in cli("agent", "terminate", agent).json["requeuedTasks"]
    assert sql(db_path, "SELECT status, agent_id FROM tasks WHERE id = ?", (running,)) == [("pending", None)]
