"""Tasks: orchestration, atomic claims, dependencies, the state machine, statistics."""

from __future__ import annotations

import json
import random
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordination_fixtures import add_agent, add_swarm, execute, open_db, query, setup_swarm
from conftest import gemini_flow_command
from gemini_flow_cli.core import clock, tasks


@pytest.fixture
def swarm(db_path):
    """swarm-1 with agent-1 (database, schema), agent-2 (react, login) and agent-3 (nothing)."""
    setup_swarm(
        db_path, "swarm-1", ("agent-1", "agent-2", "agent-3"),
        capabilities={"agent-1": ["database", "schema"], "agent-2": ["react", "login"]},
    )
    return "swarm-1"


def make_task(cli, description="work", *args):
    result = cli("task", "orchestrate", description, *args)
    assert result.exit_code == 0, result
    return result.json["taskId"]


def start(cli, db_path, task_id, *args):
    """`task start`, with --agent when the task has no agent yet (a start without one is refused)."""
    assigned = query(db_path, "SELECT agent_id FROM tasks WHERE id = ?", (task_id,))
    if assigned and assigned[0][0] is None:
        execute(db_path, "INSERT OR IGNORE INTO agents (id, name, type, status, created_at) "
                         "VALUES ('agent-s', 'agent-s', 'coder', 'active', 0)")
        args = ("--agent", "agent-s", *args)
    return cli("task", "start", task_id, *args)


def status_of(db_path, task_id):
    return query(db_path, "SELECT status FROM tasks WHERE id = ?", (task_id,))[0][0]


# -- orchestrate -----------------------------------------------------------------------------


def test_orchestrate_returns_task_execution_shape_and_records_subtasks(cli, swarm, db_path):
    result = cli("task", "orchestrate", "Implement auth", "--swarm", swarm, "--priority", "high",
                 "--subtask", "Design auth schema", "--subtask", "Implement login component",
                 "--estimated-duration", "7200", "--context", '{"project": "web-app"}')
    assert result.exit_code == 0, result
    data = result.json
    assert list(data)[:5] == ["taskId", "status", "assignedAgents", "estimatedCompletion", "subtasks"]
    top, first, second = data["taskId"], data["subtasks"][0]["id"], data["subtasks"][1]["id"]
    assert all(re.fullmatch(r"task-[0-9a-z]{16}", i) for i in (top, first, second))  # unique across databases
    assert data["status"] == "pending"
    assert data["subtasks"] == [
        {"id": first, "description": "Design auth schema", "agent": "agent-1", "status": "pending"},
        {"id": second, "description": "Implement login component", "agent": "agent-2", "status": "pending"},
    ]
    assert data["assignedAgents"] == ["agent-1", "agent-2"]
    created = query(db_path, "SELECT created_at FROM tasks WHERE id = ?", (top,))[0][0]
    assert data["estimatedCompletion"] == clock.iso(created + 7200)
    rows = query(db_path, "SELECT id, parent_id, priority, context FROM tasks ORDER BY rowid")
    assert rows == [(top, None, "high", '{"project":"web-app"}'), (first, top, "high", None),
                    (second, top, "high", None)]


def test_assignment_balances_load_and_respects_max_agents(cli, swarm):
    subs = [a for s in ("alpha", "beta", "gamma", "delta") for a in ("--subtask", s)]
    data = cli("task", "orchestrate", "spread", "--swarm", swarm, *subs).json
    # no capability matches: least load first, ties by id
    assert [s["agent"] for s in data["subtasks"]] == ["agent-1", "agent-2", "agent-3", "agent-1"]
    data = cli("task", "orchestrate", "narrow", "--swarm", swarm, "--max-agents", "1", *subs).json
    # agent-1 now has 2 pending tasks, agent-2 and agent-3 one each: agent-2 is the least loaded
    assert {s["agent"] for s in data["subtasks"]} == {"agent-2"}
    assert data["assignedAgents"] == ["agent-2"]


def test_assignment_skips_terminated_agents_and_non_members(cli, db_path, swarm):
    db = open_db(db_path)
    add_agent(db, "agent-0", capabilities=["schema"], status="terminated")
    execute(db_path, "INSERT INTO swarm_members VALUES ('swarm-1', 'agent-0', 0)")
    add_agent(db, "outsider", capabilities=["schema"])
    db.close()
    data = cli("task", "orchestrate", "x", "--swarm", swarm, "--subtask", "schema design").json
    assert data["subtasks"][0]["agent"] == "agent-1"


def test_adaptive_assigns_only_matching_work(cli, swarm):
    data = cli("task", "orchestrate", "x", "--swarm", swarm, "--strategy", "adaptive",
               "--subtask", "login page", "--subtask", "unrelated chores").json
    assert [s["agent"] for s in data["subtasks"]] == ["agent-2", None]


def test_sequential_chains_subtasks_and_parallel_does_not(cli, db_path):
    first = make_task(cli, "before")
    seq = cli("task", "orchestrate", "s", "--strategy", "sequential", "--depends-on", first,
              "--subtask", "a", "--subtask", "b", "--subtask", "c").json
    ids = [s["id"] for s in seq["subtasks"]]
    deps = dict(query(db_path, "SELECT id, dependencies FROM tasks"))
    assert json.loads(deps[ids[0]]) == [first]
    assert json.loads(deps[ids[1]]) == [first, ids[0]]
    assert json.loads(deps[ids[2]]) == [first, ids[1]]
    par = cli("task", "orchestrate", "p", "--subtask", "a", "--subtask", "b").json
    deps = dict(query(db_path, "SELECT id, dependencies FROM tasks"))
    assert all(json.loads(deps[s["id"]]) == [] for s in par["subtasks"])


@pytest.mark.parametrize(
    "args, status, code",
    [
        (("--depends-on", "task-99"), 1, "NOT_FOUND"),
        (("--swarm", "nope"), 1, "NOT_FOUND"),
        (("--priority", "urgent"), 2, "INVALID_INPUT"),
        (("--strategy", "random"), 2, "INVALID_INPUT"),
        (("--context", "{not json"), 2, "INVALID_INPUT"),
        (("--context", "[1]"), 2, "INVALID_INPUT"),
        (("--max-agents", "0"), 2, "INVALID_INPUT"),
    ],
)
def test_orchestrate_refusals_record_nothing(cli, db_path, args, status, code):
    setup_swarm(db_path)
    result = cli("task", "orchestrate", "x", *args)
    assert result.exit_code == status and result.error["code"] == code
    assert query(db_path, "SELECT COUNT(*) FROM tasks") == [(0,)]


def test_orchestrate_into_shut_down_swarm_exits_3(cli, db_path):
    setup_swarm(db_path, status="shutdown")
    result = cli("task", "orchestrate", "x", "--swarm", "swarm-1")
    assert result.exit_code == 3
    assert query(db_path, "SELECT COUNT(*) FROM tasks") == [(0,)]


def test_dependency_on_a_cycle_exits_2_and_records_nothing(cli, db_path):
    open_db(db_path).close()
    execute(db_path, "INSERT INTO tasks (id, description, dependencies) VALUES ('a', 'a', '[\"b\"]')")
    execute(db_path, "INSERT INTO tasks (id, description, dependencies) VALUES ('b', 'b', '[\"a\"]')")
    result = cli("task", "orchestrate", "x", "--depends-on", "a", "--subtask", "y")
    assert result.exit_code == 2, result
    assert "cycle" in result.error["message"]
    assert query(db_path, "SELECT COUNT(*) FROM tasks") == [(2,)]
    assert query(db_path, "SELECT COUNT(*) FROM audit_log WHERE action = 'orchestrate'") == [(0,)]


def _has_cycle_by_brute_force(graph):
    """Reference: a node is on a cycle iff it can reach itself."""
    def reach(start):
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            node = todo.pop()
            if node == start:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False
    return any(reach(node) for node in graph)


graphs = st.dictionaries(
    st.integers(0, 7).map(str), st.lists(st.integers(0, 7).map(str), max_size=4), max_size=8
)


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_find_cycle_refuses_exactly_when_a_cycle_exists(graph):
    cycle = tasks.find_cycle(graph)
    assert (cycle is not None) == _has_cycle_by_brute_force(graph)
    if cycle:
        assert cycle[0] == cycle[-1]
        for a, b in zip(cycle, cycle[1:]):
            assert b in graph[a]


# -- claim -----------------------------------------------------------------------------------


def test_claim_takes_highest_priority_then_oldest(cli, db_path, monkeypatch):
    setup_swarm(db_path)
    for t, (name, prio) in enumerate([("old-low", "low"), ("old-high", "high"), ("new-critical", "critical"),
                                      ("new-high", "high")]):
        monkeypatch.setattr(clock, "now", lambda t=t: 1_000_000 + t)
        make_task(cli, name, "--priority", prio)
    order = [cli("task", "claim", "--agent", "agent-1").json["description"] for _ in range(4)]
    assert order == ["new-critical", "old-high", "new-high", "old-low"]


def test_claim_with_nothing_ready_exits_1_with_empty_stdout(cli, db_path):
    setup_swarm(db_path)
    result = cli("task", "claim", "--agent", "agent-1")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.error["code"] == "NOT_FOUND"


def test_claim_unknown_agent_exits_1_and_terminated_agent_exits_3(cli, db_path):
    setup_swarm(db_path)
    make_task(cli)
    assert cli("task", "claim", "--agent", "ghost").exit_code == 1
    execute(db_path, "UPDATE agents SET status = 'terminated' WHERE id = 'agent-1'")
    assert cli("task", "claim", "--agent", "agent-1").exit_code == 3


def test_claim_honours_assignment_and_swarm_membership(cli, db_path, swarm):
    db = open_db(db_path)
    add_agent(db, "agent-9")
    add_swarm(db, "swarm-2", members=["agent-9"])
    db.close()
    assigned = cli("task", "orchestrate", "x", "--swarm", swarm, "--subtask", "login").json["subtasks"][0]
    assert assigned["agent"] == "agent-2"
    # agent-1 may not take agent-2's task; agent-9 is not in swarm-1
    assert cli("task", "claim", "--agent", "agent-1").exit_code == 1
    assert cli("task", "claim", "--agent", "agent-9").exit_code == 1
    assert cli("task", "claim", "--agent", "agent-2").json["id"] == assigned["id"]
    # an unassigned task of swarm-1 is open to its members only
    execute(db_path, "INSERT INTO tasks (id, swarm_id, description, status, created_at) VALUES ('free', 'swarm-1', 'f', 'pending', 0)")
    assert cli("task", "claim", "--agent", "agent-9").exit_code == 1
    assert cli("task", "claim", "--agent", "agent-3", "--swarm", "swarm-2").exit_code == 1
    assert cli("task", "claim", "--agent", "agent-3", "--swarm", "swarm-1").json["id"] == "free"


def test_tasks_of_a_terminated_agent_are_open_to_its_swarm(cli, db_path, swarm):
    sub = cli("task", "orchestrate", "x", "--swarm", swarm, "--subtask", "login").json["subtasks"][0]
    execute(db_path, "UPDATE agents SET status = 'terminated' WHERE id = 'agent-2'")
    assert cli("task", "claim", "--agent", "agent-1").json["id"] == sub["id"]


def test_claim_waits_for_dependencies(cli, db_path):
    setup_swarm(db_path)
    first = make_task(cli, "first")
    second = make_task(cli, "second", "--depends-on", first, "--priority", "critical")
    assert cli("task", "claim", "--agent", "agent-1").json["id"] == first
    assert cli("task", "claim", "--agent", "agent-1").exit_code == 1
    cli("task", "complete", first)
    assert cli("task", "claim", "--agent", "agent-1").json["id"] == second


def test_dependency_order_is_honoured_through_a_dag_of_50_tasks(db_path):
    setup_swarm(db_path)
    rng = random.Random(7)
    db = open_db(db_path)
    ids, deps = [], {}
    for i in range(50):
        chosen = sorted(set(rng.sample(ids, min(len(ids), rng.randint(0, 3)))))
        view = tasks.orchestrate(db, f"node {i}", depends_on=chosen,
                                 priority=rng.choice(tasks.PRIORITIES))
        ids.append(view["taskId"])
        deps[view["taskId"]] = chosen
    done: list[str] = []
    while True:
        try:
            task = tasks.claim(db, "agent-1")
        except Exception as exc:  # noqa: BLE001
            assert getattr(exc, "code", None) == "NOT_FOUND"
            break
        assert set(deps[task["id"]]) <= set(done), task["id"]
        tasks.transition(db, task["id"], "complete")
        done.append(task["id"])
    db.close()
    assert sorted(done) == sorted(ids)


def _claim_race(db_path, processes=20):
    argv = [*gemini_flow_command(), "--db", str(db_path), "--json", "task", "claim", "--agent"]

    def one(i):
        return subprocess.run([*argv, f"agent-{i % 5}"], capture_output=True, text=True, timeout=60)

    with ThreadPoolExecutor(max_workers=processes) as pool:
        return list(pool.map(one, range(processes)))


@pytest.mark.parametrize("round_", range(3))
def test_twenty_processes_claiming_ten_tasks_get_ten_distinct_tasks(db_path, round_):
    setup_swarm(db_path, agents=tuple(f"agent-{i}" for i in range(5)))
    db = open_db(db_path)
    for i in range(10):
        tasks.orchestrate(db, f"job {i}", swarm_id="swarm-1", max_agents=1, strategy="adaptive")
    db.close()
    results = _claim_race(db_path)
    won = [r for r in results if r.returncode == 0]
    lost = [r for r in results if r.returncode != 0]
    assert len(won) == 10 and len(lost) == 10, [(r.returncode, r.stderr) for r in results]
    assert all(r.returncode == 1 and r.stdout == "" for r in lost)
    claimed = [json.loads(r.stdout)["id"] for r in won]
    assert len(set(claimed)) == 10
    rows = query(db_path, "SELECT status, COUNT(*) FROM tasks GROUP BY status")
    assert rows == [("running", 10)]
    assert query(db_path, "SELECT COUNT(*) FROM audit_log WHERE action = 'claim'") == [(10,)]


# -- the state machine -----------------------------------------------------------------------


def _task_in_state(cli, state, db_path):
    task = make_task(cli, f"in {state}")
    path = {
        "pending": [],
        "running": ["start"],
        "completed": ["start", "complete"],
        "failed": ["start", "fail"],
        "cancelled": ["cancel"],
    }[state]
    for action in path:
        moved = start(cli, db_path, task) if action == "start" else cli("task", action, task)
        assert moved.exit_code == 0, moved
    return task


ACTION_ARGS = {"start": (), "progress": ("--value", "0.5"), "complete": (), "fail": (), "retry": (), "cancel": ()}
ILLEGAL = [
    (state, action)
    for state in tasks.STATUSES
    for action in ACTION_ARGS
    if state not in tasks.TRANSITIONS[action][0]
]


@pytest.mark.parametrize("state, action", ILLEGAL)
def test_every_illegal_transition_exits_3_and_changes_nothing(cli, db_path, state, action):
    open_db(db_path).close()
    task = _task_in_state(cli, state, db_path)
    before = query(db_path, "SELECT * FROM tasks WHERE id = ?", (task,))
    result = cli("task", action, task, *ACTION_ARGS[action])
    assert result.exit_code == 3, result
    assert result.error["code"] == "CONFLICT"
    assert query(db_path, "SELECT * FROM tasks WHERE id = ?", (task,)) == before


def test_claiming_a_cancelled_task_is_impossible(cli, db_path):
    setup_swarm(db_path)
    _task_in_state(cli, "cancelled", db_path)
    assert cli("task", "claim", "--agent", "agent-1").exit_code == 1


@pytest.mark.parametrize("state, action", [(s, a) for s in tasks.STATUSES for a in ACTION_ARGS if (s, a) not in ILLEGAL])
def test_every_legal_transition_reaches_its_state(cli, db_path, state, action):
    open_db(db_path).close()
    task = _task_in_state(cli, state, db_path)
    result = (start(cli, db_path, task) if action == "start" else cli("task", action, task, *ACTION_ARGS[action]))
    assert result.exit_code == 0, result
    assert result.json["status"] == tasks.TRANSITIONS[action][1]


def test_start_refuses_unmet_dependencies(cli, db_path):
    open_db(db_path).close()
    first = make_task(cli)
    second = make_task(cli, "x", "--depends-on", first)
    assert start(cli, db_path, second).exit_code == 3


def test_progress_outside_0_to_1_exits_2(cli, db_path):
    open_db(db_path).close()
    task = _task_in_state(cli, "running", db_path)
    assert cli("task", "progress", task, "--value", "1.5").exit_code == 2
    assert cli("task", "progress", task, "--value", "0.25").json["progress"] == 0.25


def test_retry_counts_and_resets_the_attempt(cli, db_path):
    open_db(db_path).close()
    task = _task_in_state(cli, "failed", db_path)
    data = cli("task", "retry", task).json
    assert (data["status"], data["retryCount"], data["startedAt"], data["error"]) == ("pending", 1, None, None)
    start(cli, db_path, task)
    cli("task", "fail", task)
    assert cli("task", "retry", task).json["retryCount"] == 2


def test_complete_records_times_and_result(cli, db_path, monkeypatch):
    setup_swarm(db_path)
    monkeypatch.setattr(clock, "now", lambda: 1_000_000)
    task = make_task(cli)
    cli("task", "claim", "--agent", "agent-1")
    monkeypatch.setattr(clock, "now", lambda: 1_000_042)
    data = cli("task", "complete", task, "--result", '{"ok": true}').json
    assert data["completedAt"] == clock.iso(1_000_042)
    assert data["actualDuration"] == 42 and data["result"] == {"ok": True} and data["progress"] == 1.0


def test_completion_updates_agent_score_and_swarm_statistics(cli, db_path, swarm):
    # agent-1: 3 completed, 1 failed, 1 retried-then-completed -> S = 4, F = 2 -> 4/6
    for i in range(6):
        make_task(cli, f"t{i}", "--swarm", swarm)
    mine = []
    for _ in range(5):
        execute(db_path, "UPDATE tasks SET agent_id = NULL WHERE status = 'pending'")
        mine.append(cli("task", "claim", "--agent", "agent-1").json["id"])
    for t in mine[:3]:
        cli("task", "complete", t)
    cli("task", "fail", mine[3])
    cli("task", "fail", mine[4])
    cli("task", "retry", mine[4])
    start(cli, db_path, mine[4])
    cli("task", "complete", mine[4])
    assert query(db_path, "SELECT performance_score FROM agents WHERE id = 'agent-1'") == [(4 / 6,)]
    assert query(db_path, "SELECT completed_tasks, success_rate FROM swarms WHERE id = 'swarm-1'") == [(4, 4 / 6)]


# -- subtasks --------------------------------------------------------------------------------


def test_parent_status_follows_subtasks(cli, db_path):
    setup_swarm(db_path)
    data = cli("task", "orchestrate", "p", "--subtask", "a", "--subtask", "b").json
    parent, (a, b) = data["taskId"], [s["id"] for s in data["subtasks"]]
    assert cli("task", "claim", "--agent", "agent-1").json["id"] == a  # the parent is never claimed
    assert status_of(db_path, parent) == "running"
    cli("task", "complete", a)
    start(cli, db_path, b)
    cli("task", "fail", b)
    assert status_of(db_path, parent) == "failed"
    cli("task", "retry", b)
    start(cli, db_path, b)
    data = cli("task", "complete", b).json
    assert status_of(db_path, parent) == "completed"
    shown = cli("task", "show", parent).json
    assert shown["progress"] == 1.0 and [s["status"] for s in shown["subtasks"]] == ["completed", "completed"]


def test_parent_cannot_be_moved_by_hand_but_cancel_cascades(cli, db_path):
    open_db(db_path).close()
    data = cli("task", "orchestrate", "p", "--subtask", "a", "--subtask", "b").json
    parent, (a, b) = data["taskId"], [s["id"] for s in data["subtasks"]]
    assert start(cli, db_path, parent).exit_code == 3
    start(cli, db_path, a)
    cli("task", "complete", a)
    assert cli("task", "cancel", parent).json["status"] == "cancelled"
    assert [status_of(db_path, t) for t in (a, b)] == ["completed", "cancelled"]


# -- list, show, wait ------------------------------------------------------------------------


def test_list_filters_and_show_missing(cli, db_path, swarm):
    make_task(cli, "a", "--swarm", swarm)
    make_task(cli, "b")
    cli("task", "claim", "--agent", "agent-1")
    assert [t["description"] for t in cli("task", "list", "--status", "running").json["tasks"]] == ["a"]
    assert cli("task", "list", "--swarm", swarm).json["total"] == 1
    assert cli("task", "list", "--agent", "agent-1").json["tasks"][0]["agentId"] == "agent-1"
    assert cli("task", "list", "--status", "weird").exit_code == 2
    assert cli("task", "show", "task-99").exit_code == 1


def test_reading_a_missing_database_creates_nothing(cli, db_path):
    assert cli("task", "list").json == {"tasks": [], "total": 0, "limit": 100, "offset": 0}
    assert cli("task", "show", "task-1").exit_code == 1
    assert not db_path.exists()


def test_wait_returns_when_the_task_finishes_and_times_out_with_exit_1(cli, db_path, run):
    open_db(db_path).close()
    task = _task_in_state(cli, "running", db_path)
    timed_out = run("--json", "task", "wait", task, "--timeout", "0.3")
    assert timed_out.returncode == 1 and "did not finish" in timed_out.stderr
    waiter = subprocess.Popen([*gemini_flow_command(), "--db", str(db_path), "--json", "task", "wait", task,
                               "--timeout", "30"], stdout=subprocess.PIPE, text=True)
    cli("task", "complete", task)
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0 and json.loads(out)["status"] == "completed"


def canonical_ids(text: str, prefix: str, seen: dict[str, str]) -> str:
    """``text`` with each random id replaced by its order of first appearance (ids are random by design)."""
    return re.sub(rf"{prefix}-[0-9a-z]{{16}}", lambda m: seen.setdefault(m.group(0), f"{prefix}-#{len(seen) + 1}"), text)


def test_same_inputs_give_same_outputs(tmp_path, cli, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_000)
    outputs = []
    for name in ("one", "two"):
        path = tmp_path / name / "hive.db"
        setup_swarm(path, agents=("agent-1", "agent-2"), capabilities={"agent-2": ["docs"]})
        seen: dict[str, str] = {}
        made = cli("task", "orchestrate", "x", "--swarm", "swarm-1", "--subtask", "docs", "--subtask", "code", db=path)
        seq = [
            ("task", "claim", "--agent", "agent-1"),
            ("task", "complete", made.json["subtasks"][1]["id"]),
            ("task", "list"),
        ]
        outputs.append([canonical_ids(out, "task", seen) for out in
                        [made.stdout, *(cli(*args, db=path).stdout for args in seq)]])
    assert outputs[0] == outputs[1]


def test_every_write_leaves_an_audit_row(cli, db_path):
    setup_swarm(db_path)
    task = make_task(cli)
    cli("task", "claim", "--agent", "agent-1")
    cli("task", "progress", task, "--value", "0.5")
    cli("task", "complete", task)
    actions = [r[0] for r in query(db_path, "SELECT action FROM audit_log WHERE entity_type = 'task' ORDER BY id")]
    assert actions == ["orchestrate", "claim", "progress", "complete"]


def test_start_without_an_agent_is_refused_when_none_is_assigned(cli, db_path):
    open_db(db_path).close()
    task = make_task(cli)
    before = query(db_path, "SELECT * FROM tasks WHERE id = ?", (task,))
    result = cli("task", "start", task)
    assert result.exit_code == 2 and "--agent" in result.error["message"]
    assert query(db_path, "SELECT * FROM tasks WHERE id = ?", (task,)) == before
    assert start(cli, db_path, task).json["agentId"] == "agent-s"
