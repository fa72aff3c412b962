"""The agent registry: spawn, list, show, update, heartbeat, terminate, and the seed's JSON shapes."""

from __future__ import annotations

import pytest

from gemini_flow_cli.core import agent_types
from tests.helpers import T0, sql

# The seed's "Agent Registry" response (GET /api/v1/agents), verbatim.
SEED_AGENT_REGISTRY = {
    "agents": [
        {
            "id": "agent-1234",
            "name": "primary-coder",
            "type": "coder",
            "status": "active",
            "capabilities": ["typescript", "react", "testing"],
            "createdAt": "2025-08-03T10:30:00Z",
            "lastActivity": "2025-08-03T10:35:00Z",
            "performanceScore": 0.87,
            "resourceUsage": {"memory": 67108864, "cpu": 0.45},
        }
    ],
    "total": 12,
    "active": 8,
    "performance": {"averageScore": 0.84, "totalTasks": 156, "successRate": 0.94},
}


def assert_same_shape(actual, expected, path="$"):
    """Same keys at every level; numbers where the seed has numbers, strings where it has strings."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert set(actual) == set(expected), f"{path}: {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_same_shape(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), path
        for item in actual:
            assert_same_shape(item, expected[0], f"{path}[]")
    elif isinstance(expected, (int, float)):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), f"{path}: {actual!r}"
    else:
        assert isinstance(actual, type(expected)), f"{path}: {actual!r}"


def spawn(cli, agent_type="coder", *args):
    result = cli("agent", "spawn", "--type", agent_type, *args)
    assert result.exit_code == 0, result
    return result.json


def test_agent_types_lists_the_66_types_in_16_categories(cli):
    result = cli("agent", "types")
    assert result.exit_code == 0
    data = result.json
    assert data["total"] == 66 and len(data["types"]) == 66
    assert data["categories"] == 16
    assert {"type": "coder", "category": "core-development"} in data["types"]
    assert {"type": "experiment-tracker", "category": "ai-ml-operations"} in data["types"]


def test_spawn_accepts_every_one_of_the_66_types(cli, db_path):
    for agent_type, category in agent_types.AGENT_TYPES.items():
        record = spawn(cli, agent_type)
        assert record["type"] == agent_type
        assert record["category"] == category
        assert record["name"] == f"{agent_type}-1"
        assert record["status"] == "active"
        assert record["id"].startswith("agent-")
    rows = sql(db_path, "SELECT type, COUNT(*) FROM agents GROUP BY type")
    assert dict(rows) == {t: 1 for t in agent_types.AGENT_TYPES}


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [("codr", "coder"), ("mesh-coordinater", "mesh-coordinator"), ("Tester", "tester")],
)
def test_unknown_type_exits_2_and_names_the_closest_types(cli, db_path, typed, suggested):
    result = cli("agent", "spawn", "--type", typed)
    assert result.exit_code == 2
    assert result.error["code"] == "INVALID_INPUT"
    assert suggested in result.error["message"]
    assert suggested in result.error["details"]["suggestions"]
    assert not db_path.exists() or sql(db_path, "SELECT COUNT(*) FROM agents") == [(0,)]


def test_default_name_is_the_next_free_number_for_the_type(cli):
    assert spawn(cli, "coder")["name"] == "coder-1"
    assert spawn(cli, "coder")["name"] == "coder-2"
    assert spawn(cli, "tester")["name"] == "tester-1"
    assert spawn(cli, "coder", "--name", "coder-7")["name"] == "coder-7"
    assert spawn(cli, "coder", "--name", "lead")["name"] == "lead"
    assert spawn(cli, "coder")["name"] == "coder-8"


def test_spawn_records_capabilities_and_metadata(cli):
    record = spawn(cli, "coder", "-c", "python,testing", "-c", "rust", "-c", "python", "--metadata", '{"host": "ci"}')
    assert record["capabilities"] == ["python", "testing", "rust"]
    assert record["metadata"] == {"host": "ci"}


def test_spawn_refuses_metadata_that_is_not_a_json_object(cli, db_path):
    result = cli("agent", "spawn", "--type", "coder", "--metadata", "[1, 2]")
    assert result.exit_code == 2
    assert cli("agent", "list").json["total"] == 0


def test_agent_ids_are_distinct_and_sortable_by_creation(cli, frozen):
    ids = []
    for i in range(5):
        frozen.now = T0 + i
        ids.append(spawn(cli)["id"])
    assert len(set(ids)) == 5
    assert ids == sorted(ids)


def test_list_filters_by_status_type_and_swarm(cli):
    swarm = cli("swarm", "init", "--topology", "mesh").json["id"]
    a = spawn(cli, "coder", "--swarm", swarm)["id"]
    b = spawn(cli, "coder")["id"]
    c = spawn(cli, "tester", "--swarm", swarm)["id"]
    assert cli("agent", "update", b, "--status", "idle").exit_code == 0

    def ids(*args):
        result = cli("agent", "list", *args)
        assert result.exit_code == 0, result
        return [agent["id"] for agent in result.json["agents"]]

    assert ids() == [a, b, c]
    assert ids("--type", "coder") == [a, b]
    assert ids("--status", "idle") == [b]
    assert ids("--status", "active") == [a, c]
    assert ids("--swarm", swarm) == [a, c]
    assert ids("--swarm", swarm, "--type", "tester") == [c]
    assert ids("--type", "planner") == []
    listing = cli("agent", "list").json
    assert (listing["total"], listing["active"]) == (3, 2)


def test_list_with_an_unknown_swarm_exits_1(cli):
    spawn(cli)
    assert cli("agent", "list", "--swarm", "swarm-nope").exit_code == 1


def test_list_with_an_invalid_status_exits_2(cli):
    assert cli("agent", "list", "--status", "sleeping").exit_code == 2


def test_registry_json_has_the_seed_shape_field_by_field(cli, frozen):
    a = spawn(cli, "coder", "-c", "python")["id"]
    spawn(cli, "tester")
    frozen.now = T0 + 60
    assert cli("agent", "heartbeat", a, "--memory", "67108864", "--cpu", "0.45").exit_code == 0
    data = cli("agent", "list").json
    assert_same_shape_with_nulls(data)
    first = data["agents"][0]
    assert first == {
        "id": a,
        "name": "coder-1",
        "type": "coder",
        "status": "active",
        "capabilities": ["python"],
        "createdAt": "2025-08-03T10:30:00Z",
        "lastActivity": "2025-08-03T10:31:00Z",
        "performanceScore": 0.0,
        "resourceUsage": {"memory": 67108864, "cpu": 0.45},
    }
    # Nothing invented while there are no tasks.
    assert data["performance"] == {"averageScore": 0.0, "totalTasks": 0, "successRate": 0.0}
    assert data["agents"][1]["resourceUsage"] == {"memory": None, "cpu": None}


def assert_same_shape_with_nulls(data):
    """The seed's shape, where a resource reading not yet taken may be null."""
    for agent in data["agents"]:
        agent = dict(agent, resourceUsage={k: (0 if v is None else v) for k, v in agent["resourceUsage"].items()})
        page = {k: v for k, v in data.items() if k not in ("limit", "offset")}  # the list contract adds paging
    assert_same_shape({**page, "agents": [agent]}, SEED_AGENT_REGISTRY)


def test_performance_is_computed_from_the_tasks_table(cli, db_path):
    a = spawn(cli)["id"]
    b = spawn(cli)["id"]
    spawn(cli)  # no tasks: no score, not counted in the average
    tasks = [("t1", a, "completed", 0, None), ("t2", a, "completed", 1, None), ("t3", a, "failed", 0, None),
             ("t4", a, "running", 0, None), ("t5", b, "completed", 0, None), ("t6", None, "pending", 0, None),
             # a parent is a roll-up of its subtasks: not counted as work of its own
             ("p", a, "completed", 0, None), ("p.1", b, "completed", 0, "p")]
    for task_id, agent_id, status, retries, parent in tasks:
        sql(db_path, "INSERT INTO tasks (id, agent_id, description, status, retry_count, parent_id) "
                     "VALUES (?, ?, 'x', ?, ?, ?)", (task_id, agent_id, status, retries, parent))
    data = cli("agent", "list").json
    scores = [agent["performanceScore"] for agent in data["agents"]]
    # a: S = 2, F = 1 failed + 1 retry; b: S = 2, F = 0
    assert scores == [0.5, 1.0, 0.0]
    assert data["performance"] == {"averageScore": 0.75, "totalTasks": 6, "successRate": 0.6667}
    shown = cli("agent", "show", a).json
    assert shown["tasks"] == {"total": 4, "pending": 0, "running": 1, "completed": 2, "failed": 1, "cancelled": 0}
    assert shown["performanceScore"] == 0.5


def test_show_returns_the_record_and_exits_1_when_missing(cli):
    a = spawn(cli, "planner", "--metadata", '{"k": 1}')
    shown = cli("agent", "show", a["id"])
    assert shown.exit_code == 0
    assert shown.json == a
    missing = cli("agent", "show", "agent-nope")
    assert missing.exit_code == 1
    assert missing.error["code"] == "NOT_FOUND"


def test_update_changes_status_replaces_capabilities_and_merges_metadata(cli):
    a = spawn(cli, "coder", "-c", "python", "--metadata", '{"host": "a", "gpu": true}')["id"]
    result = cli("agent", "update", a, "--status", "busy", "-c", "rust", "--metadata", '{"host": "b", "gpu": null}')
    assert result.exit_code == 0, result
    assert result.json["status"] == "busy"
    assert result.json["capabilities"] == ["rust"]
    assert result.json["metadata"] == {"host": "b"}
    assert cli("agent", "show", a).json["status"] == "busy"


@pytest.mark.parametrize("args", [[], ["--status", "asleep"], ["--metadata", "nope"]])
def test_update_refuses_bad_or_empty_changes_with_exit_2(cli, args):
    a = spawn(cli)["id"]
    assert cli("agent", "update", a, *args).exit_code == 2
    assert cli("agent", "show", a).json["status"] == "active"


def test_update_of_a_missing_agent_exits_1(cli):
    assert cli("agent", "update", "agent-nope", "--status", "idle").exit_code == 1


def test_a_terminated_agent_cannot_change_or_heartbeat(cli):
    a = spawn(cli)["id"]
    assert cli("agent", "terminate", a).exit_code == 0
    assert cli("agent", "update", a, "--status", "active").exit_code == 3
    assert cli("agent", "heartbeat", a).exit_code == 3
    assert cli("agent", "terminate", a).exit_code == 3
    assert cli("agent", "show", a).json["status"] == "terminated"


def test_heartbeat_sets_last_activity_and_records_resource_metrics(cli, db_path, frozen):
    a = spawn(cli)["id"]
    frozen.now = T0 + 30
    result = cli("agent", "heartbeat", a, "--memory", "1024", "--cpu", "0.25")
    assert result.json == {"success": True, "agentId": a, "lastActivity": "2025-08-03T10:30:30Z",
                           "resourceUsage": {"memory": 1024, "cpu": 0.25}}
    frozen.now = T0 + 60
    cli("agent", "heartbeat", a, "--cpu", "0.5")  # memory keeps its last reading
    assert cli("agent", "show", a).json["resourceUsage"] == {"memory": 1024, "cpu": 0.5}
    rows = sql(db_path, "SELECT metric_name, metric_value, timestamp, unit FROM metrics WHERE entity_id = ? ORDER BY id", (a,))
    assert rows == [
        ("heartbeat", 1.0, T0 + 30, "count"),
        ("memory_usage", 1024.0, T0 + 30, "bytes"),
        ("cpu_usage", 0.25, T0 + 30, "fraction"),
        ("heartbeat", 1.0, T0 + 60, "count"),
        ("cpu_usage", 0.5, T0 + 60, "fraction"),
    ]


@pytest.mark.parametrize("args", [["--memory", "-1"], ["--cpu", "-0.1"], ["--cpu", "nan"]])
def test_heartbeat_refuses_impossible_readings(cli, db_path, args):
    a = spawn(cli)["id"]
    assert cli("agent", "heartbeat", a, *args).exit_code == 2
    assert sql(db_path, "SELECT COUNT(*) FROM metrics") == [(0,)]


def test_terminate_returns_running_tasks_to_pending_and_leaves_swarms(cli, db_path):
    swarm = cli("swarm", "init", "--topology", "star").json["id"]
    a = spawn(cli, "coder", "--swarm", swarm)["id"]
    b = spawn(cli, "coder", "--swarm", swarm)["id"]
    sql(db_path, "INSERT INTO tasks (id, swarm_id, agent_id, description, status, started_at) VALUES "
                 "('t-run', ?, ?, 'x', 'running', 100), ('t-done', ?, ?, 'y', 'completed', 100), "
                 "('t-other', ?, ?, 'z', 'running', 100)", (swarm, a, swarm, a, swarm, b))
    result = cli("agent", "terminate", a)
    assert result.exit_code == 0, result
    assert result.json == {"success": True, "agentId": a, "status": "terminated", "leftSwarms": [swarm],
                           "requeuedTasks": ["t-run"]}
    rows = dict((r[0], r[1:]) for r in sql(db_path, "SELECT id, status, agent_id, started_at FROM tasks"))
    assert rows == {"t-run": ("pending", None, None), "t-done": ("completed", a, 100), "t-other": ("running", b, 100)}
    assert sql(db_path, "SELECT agent_id FROM swarm_members") == [(b,)]
    assert sql(db_path, "SELECT active_agents FROM swarms") == [(1,)]
    assert cli("agent", "show", a).json["swarms"] == []


def test_update_to_terminated_is_a_termination(cli, db_path):
    swarm = cli("swarm", "init", "--topology", "mesh").json["id"]
    a = spawn(cli, "coder", "--swarm", swarm)["id"]
    assert cli("agent", "update", a, "--status", "terminated").exit_code == 0
    assert sql(db_path, "SELECT COUNT(*) FROM swarm_members") == [(0,)]
    assert sql(db_path, "SELECT active_agents FROM swarms") == [(0,)]


def test_every_change_writes_an_audit_row_with_the_acting_agent(cli, db_path):
    a = spawn(cli)["id"]
    cli("agent", "update", a, "--status", "idle")
    cli("agent", "heartbeat", a)
    cli("agent", "terminate", a)
    rows = sql(db_path, "SELECT action, actor_id FROM audit_log WHERE entity_type = 'agent' ORDER BY id")
    actions = [r[0] for r in rows]
    assert actions == ["spawn", "update", "heartbeat", "terminate"]
    assert rows[1][1] == a and rows[2][1] == a


def test_a_failed_spawn_records_nothing(cli, db_path):
    swarm = cli("swarm", "init", "--topology", "mesh", "--max-agents", "1").json["id"]
    spawn(cli, "coder", "--swarm", swarm)
    before = sql(db_path, "SELECT (SELECT COUNT(*) FROM agents), (SELECT COUNT(*) FROM audit_log)")
    result = cli("agent", "spawn", "--type", "tester", "--swarm", swarm)
    assert result.exit_code == 3
    assert sql(db_path, "SELECT (SELECT COUNT(*) FROM agents), (SELECT COUNT(*) FROM audit_log)") == before


def test_reading_commands_give_identical_output_twice(cli, db_path, frozen):
    swarm = cli("swarm", "init", "--topology", "hierarchical").json["id"]
    a = spawn(cli, "coder", "--swarm", swarm)["id"]
    spawn(cli, "hierarchical-coordinator", "--swarm", swarm)
    sql(db_path, "INSERT INTO tasks (id, swarm_id, agent_id, description, status, started_at, completed_at, "
                 "estimated_duration) VALUES ('t1', ?, ?, 'x', 'completed', ?, ?, 50)", (swarm, a, T0, T0 + 40))
    frozen.now = T0 + 100
    cli("agent", "heartbeat", a, "--memory", "5", "--cpu", "0.1")
    commands = [("agent", "list"), ("agent", "show", a), ("agent", "metrics", a), ("swarm", "status", swarm),
                ("swarm", "list"), ("metrics", "list"), ("agent", "types")]
    for command in commands:
        first, second = cli(*command), cli(*command)
        assert first.exit_code == 0, (command, first)
        assert first.stdout == second.stdout, command


def test_spawn_prints_only_the_id_on_a_table(cli):
    result = cli("agent", "spawn", "--type", "coder", "--format", "table")
    assert result.exit_code == 0
    assert result.stdout.strip().startswith("agent-") and len(result.stdout.split()) == 1


def test_reading_a_missing_database_shows_an_empty_registry_and_creates_nothing(cli, db_path):
    result = cli("agent", "list")
    assert result.exit_code == 0
    assert result.json == {"agents": [], "total": 0, "limit": 100, "offset": 0, "active": 0,
                           "performance": {"averageScore": 0.0, "totalTasks": 0, "successRate": 0.0}}
    assert cli("swarm", "list").json == {"swarms": [], "total": 0, "limit": 100, "offset": 0, "active": 0}
    assert cli("agent", "show", "agent-x").exit_code == 1
    assert not db_path.exists()
