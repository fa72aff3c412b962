"""Task leases (CLI.md §7): claim --lease, heartbeat, reclaim of lapsed leases at the next claim,
--max-attempts, and a lapsed agent's complete/fail/heartbeat refused."""

from __future__ import annotations

import json
import time

from tests.coordination_fixtures import setup_swarm
from tests.helpers import sql


def task_id(cli, *args):
    return cli("task", "orchestrate", "build it", "--swarm", "swarm-1", *args).json["taskId"]


def test_a_lapsed_lease_is_claimed_by_the_next_agent_and_counted_against_the_first(cli, db_path, frozen):
    setup_swarm(db_path, agents=("agent-1", "agent-2"))
    task = task_id(cli)
    first = cli("task", "claim", "--agent", "agent-1", "--lease", "60").json
    assert first["id"] == task and first["leaseExpiresAt"] == "2025-08-03T10:31:00Z" and first["attempts"] == 1
    assert cli("task", "claim", "--agent", "agent-2").exit_code == 1  # held: nothing ready
    frozen.now += 30
    assert cli("task", "heartbeat", task, "--agent", "agent-1").json["leaseExpiresAt"] == "2025-08-03T10:31:30Z"
    frozen.now += 61
    second = cli("task", "claim", "--agent", "agent-2", "--lease", "60").json
    assert (second["id"], second["agentId"], second["retryCount"], second["attempts"]) == (task, "agent-2", 1, 2)
    for action in (("task", "heartbeat", task, "--agent", "agent-1"),
                   ("task", "complete", task, "--agent", "agent-1"),
                   ("task", "fail", task, "--agent", "agent-1")):
        refused = cli(*action)
        assert refused.exit_code == 3, (action, refused)
    assert cli("task", "complete", task, "--agent", "agent-2").exit_code == 0
    # The retry is agent-1's failure, not agent-2's: agent-2 has one success and no failure.
    assert sql(db_path, "SELECT performance_score FROM agents WHERE id = 'agent-2'") == [(1.0,)]
    assert sql(db_path, "SELECT task_id, agent_id FROM task_lapses") == [(task, "agent-1")]


def test_the_last_allowed_claim_lapsing_fails_the_task_with_the_reason(cli, db_path, frozen):
    setup_swarm(db_path, agents=("agent-1",))
    task = task_id(cli, "--max-attempts", "2")
    for _ in range(2):
        assert cli("task", "claim", "--agent", "agent-1", "--lease", "10").json["id"] == task
        frozen.now += 11
    assert cli("task", "claim", "--agent", "agent-1").exit_code == 1
    failed = cli("task", "show", task).json
    assert failed["status"] == "failed" and "attempt 2 of 2" in failed["error"]


def test_heartbeat_without_a_lease_or_for_an_unknown_task(cli, db_path):
    setup_swarm(db_path, agents=("agent-1",))
    task = task_id(cli)
    cli("task", "claim", "--agent", "agent-1")
    assert cli("task", "heartbeat", task, "--agent", "agent-1").exit_code == 3
    assert cli("task", "heartbeat", "task-nope", "--agent", "agent-1").exit_code == 1
    assert cli("task", "claim", "--agent", "agent-1", "--lease", "0").exit_code == 2


def test_a_task_claimed_with_a_1s_lease_by_an_idle_agent_is_taken_over_by_another_process(run, db_path):
    setup_swarm(db_path, agents=("agent-1", "agent-2"))
    task = json.loads(run("--json", "task", "orchestrate", "idle work", "--swarm", "swarm-1").stdout)["taskId"]
    claimed = run("--json", "task", "claim", "--agent", "agent-1", "--lease", "1s")
    assert claimed.returncode == 0 and json.loads(claimed.stdout)["id"] == task
    time.sleep(2.1)  # agent-1 does nothing: no heartbeat
    taken = run("--json", "task", "claim", "--agent", "agent-2")
    assert taken.returncode == 0, taken.stderr
    view = json.loads(taken.stdout)
    assert (view["id"], view["agentId"], view["retryCount"]) == (task, "agent-2", 1)
    late = run("--json", "task", "complete", task, "--agent", "agent-1")
    assert late.returncode == 3
    assert run("task", "complete", task, "--agent", "agent-2").returncode == 0
