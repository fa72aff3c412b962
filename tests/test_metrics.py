"""Metrics: record/list, and `agent metrics` aggregated over a time range from rows with known times."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemini_flow_cli.core.agents import ACTIVE_GAP_SECONDS, active_periods
from tests.helpers import T0 as NOW
from tests.helpers import sql, keys_tree

# The seed's "Agent Metrics" response (GET /api/v1/agents/agent-1234/metrics?timeRange=24h), verbatim.
SEED_AGENT_METRICS = {
    "agentId": "agent-1234",
    "timeRange": "24h",
    "metrics": {
        "performance": {"tasksCompleted": 47, "successRate": 0.94, "averageDuration": 1847, "efficiency": 0.87},
        "resources": {
            "memoryUsage": {"current": 67108864, "average": 52428800, "peak": 134217728},
            "cpuUsage": {"current": 0.45, "average": 0.32, "peak": 0.78},
        },
        "activity": {"totalActivePeriods": 18, "totalActiveTime": 14567, "idleTime": 3891},
    },
}

DAY = 86400


def spawn(cli, agent_type="coder"):
    result = cli("agent", "spawn", "--type", agent_type)
    assert result.exit_code == 0, result
    return result.json["id"]


def add_metric(db_path, agent, name, value, ts):
    sql(db_path, "INSERT INTO metrics (entity_type, entity_id, metric_name, metric_value, timestamp) "
                 "VALUES ('agent', ?, ?, ?, ?)", (agent, name, value, ts))


def add_task(db_path, task_id, agent, status, *, started=None, completed=None, estimated=None, actual=None):
    sql(db_path, "INSERT INTO tasks (id, agent_id, description, status, started_at, completed_at, estimated_duration, "
                 "actual_duration) VALUES (?, ?, 'x', ?, ?, ?, ?, ?)",
        (task_id, agent, status, started, completed, estimated, actual))


@pytest.fixture
def history(cli, db_path, frozen):
    """An agent with heartbeats, readings and tasks at known times before NOW, and a bystander."""
    agent, other = spawn(cli), spawn(cli)
    for ts in (NOW - 5000, NOW - 3000, NOW - 2900, NOW - 2800, NOW - 2000, NOW - 1000, NOW - 900):
        add_metric(db_path, agent, "heartbeat", 1, ts)
    for ts, value in ((NOW - 5000, 1000), (NOW - 3000, 100), (NOW - 1000, 300)):
        add_metric(db_path, agent, "memory_usage", value, ts)
    for ts, value in ((NOW - 3000, 0.2), (NOW - 900, 0.4)):
        add_metric(db_path, agent, "cpu_usage", value, ts)
    add_metric(db_path, agent, "heartbeat", 1, NOW + 10)        # in the future: never counted
    add_metric(db_path, other, "heartbeat", 1, NOW - 10)        # someone else's
    add_metric(db_path, other, "memory_usage", 10**9, NOW - 10)
    add_task(db_path, "t1", agent, "completed", started=NOW - 1200, completed=NOW - 600, estimated=500)
    add_task(db_path, "t2", agent, "completed", started=NOW - 10300, completed=NOW - 10000, estimated=300, actual=300)
    add_task(db_path, "t3", agent, "failed", started=NOW - 1900, completed=NOW - 1800)
    add_task(db_path, "t4", agent, "failed", started=NOW - 100)  # no completed_at: finished when started
    add_task(db_path, "t5", agent, "completed", started=NOW - 10 * DAY - 100, completed=NOW - 10 * DAY)
    add_task(db_path, "t6", agent, "running", started=NOW - 50)
    add_task(db_path, "t7", other, "completed", started=NOW - 100, completed=NOW - 10)
    return agent


def test_agent_metrics_over_one_hour(cli, history):
    data = cli("agent", "metrics", history, "--time-range", "1h").json
    assert keys_tree(data) == keys_tree(SEED_AGENT_METRICS)
    assert data == {
        "agentId": history,
        "timeRange": "1h",
        "metrics": {
            "performance": {"tasksCompleted": 1, "successRate": 0.3333, "averageDuration": 600.0, "efficiency": 0.8333},
            "resources": {
                "memoryUsage": {"current": 300, "average": 200, "peak": 300},
                "cpuUsage": {"current": 0.4, "average": 0.3, "peak": 0.4},
            },
            # periods: [-3000..-2800], [-2000], [-1000..-900]
            "activity": {"totalActivePeriods": 3, "totalActiveTime": 300, "idleTime": 1800},
        },
    }


def test_agent_metrics_over_a_day_is_the_default(cli, history):
    data = cli("agent", "metrics", history).json
    assert data["timeRange"] == "24h"
    assert data["metrics"] == {
        "performance": {"tasksCompleted": 2, "successRate": 0.5, "averageDuration": 450.0, "efficiency": 0.8889},
        "resources": {
            "memoryUsage": {"current": 300, "average": 467, "peak": 1000},
            "cpuUsage": {"current": 0.4, "average": 0.3, "peak": 0.4},
        },
        "activity": {"totalActivePeriods": 4, "totalActiveTime": 300, "idleTime": 3800},
    }


def test_agent_metrics_over_thirty_days(cli, history):
    performance = cli("agent", "metrics", history, "--time-range", "30d").json["metrics"]["performance"]
    assert performance == {"tasksCompleted": 3, "successRate": 0.6, "averageDuration": 333.333, "efficiency": 0.8889}


def test_agent_metrics_window_excludes_its_start(cli, db_path, frozen):
    agent = spawn(cli)
    add_metric(db_path, agent, "heartbeat", 1, NOW - 3600)
    add_metric(db_path, agent, "cpu_usage", 0.9, NOW - 3600)
    hour = cli("agent", "metrics", agent, "--time-range", "1h").json["metrics"]
    assert hour["activity"]["totalActivePeriods"] == 0
    assert hour["resources"]["cpuUsage"] == {"current": None, "average": None, "peak": None}
    assert cli("agent", "metrics", agent).json["metrics"]["activity"]["totalActivePeriods"] == 1


def test_agent_metrics_without_data_invents_nothing(cli, frozen):
    agent = spawn(cli)
    assert cli("agent", "metrics", agent).json["metrics"] == {
        "performance": {"tasksCompleted": 0, "successRate": 0.0, "averageDuration": None, "efficiency": None},
        "resources": {
            "memoryUsage": {"current": None, "average": None, "peak": None},
            "cpuUsage": {"current": None, "average": None, "peak": None},
        },
        "activity": {"totalActivePeriods": 0, "totalActiveTime": 0, "idleTime": 0},
    }


def test_agent_metrics_from_real_heartbeats(cli, frozen):
    agent = spawn(cli)
    for offset, memory in ((0, 100), (60, 200), (120, 300), (1000, 50)):
        frozen.now = NOW + offset
        assert cli("agent", "heartbeat", agent, "--memory", str(memory)).exit_code == 0
    data = cli("agent", "metrics", agent, "--time-range", "1h").json["metrics"]
    assert data["activity"] == {"totalActivePeriods": 2, "totalActiveTime": 120, "idleTime": 880}
    assert data["resources"]["memoryUsage"] == {"current": 50, "average": 162, "peak": 300}


@pytest.mark.parametrize("time_range", ["2h", "1d", ""])
def test_agent_metrics_refuses_other_time_ranges(cli, time_range):
    agent = spawn(cli)
    assert cli("agent", "metrics", agent, "--time-range", time_range).exit_code == 2


def test_agent_metrics_of_a_missing_agent_exits_1(cli):
    assert cli("agent", "metrics", "agent-nope").exit_code == 1


@given(st.lists(st.integers(min_value=0, max_value=100_000), max_size=40))
def test_active_periods_cover_first_to_last_heartbeat(timestamps):
    beats = sorted(set(timestamps))
    periods = active_periods(beats)
    active = sum(last - first for first, last in periods)
    idle = sum(periods[i + 1][0] - periods[i][1] for i in range(len(periods) - 1))
    assert active + idle == (beats[-1] - beats[0] if beats else 0)
    assert all(periods[i + 1][0] - periods[i][1] >= ACTIVE_GAP_SECONDS for i in range(len(periods) - 1))
    assert all(b - a < ACTIVE_GAP_SECONDS for a, b in zip(beats, beats[1:]) if any(p[0] <= a < b <= p[1] for p in periods))


# -- metrics record / list -----------------------------------------------------------------------


def test_record_then_list_a_metric(cli, frozen):
    agent = spawn(cli)
    result = cli("metrics", "record", "--entity-type", "agent", "--entity-id", agent, "tokens_used", "1834",
                 "--unit", "count", "--metadata", '{"model": "x"}')
    assert result.exit_code == 0, result
    recorded = result.json
    assert recorded == {
        "success": True, "id": recorded["id"], "entityType": "agent", "entityId": agent, "name": "tokens_used",
        "value": 1834.0, "unit": "count", "timestamp": "2025-08-03T10:30:00Z", "metadata": {"model": "x"},
        "aggregationPeriod": None, "source": "cli",
    }
    listed = cli("metrics", "list").json
    assert listed["total"] == 1
    assert listed["metrics"] == [{k: v for k, v in recorded.items() if k != "success"}]


def test_list_filters_and_limits_newest_first(cli, frozen):
    agent = spawn(cli)
    swarm = cli("swarm", "init", "--topology", "mesh").json["id"]
    for i, (kind, entity, name) in enumerate(
        [("agent", agent, "a"), ("swarm", swarm, "b"), ("system", "ci", "a"), ("agent", agent, "b")]
    ):
        frozen.now = NOW + i * 600
        assert cli("metrics", "record", "--entity-type", kind, "--entity-id", entity, name, str(i)).exit_code == 0

    def values(*args):
        result = cli("metrics", "list", *args)
        assert result.exit_code == 0, result
        return [m["value"] for m in result.json["metrics"]]

    assert values() == [3.0, 2.0, 1.0, 0.0]
    assert values("--entity-type", "agent") == [3.0, 0.0]
    assert values("--entity-id", swarm) == [1.0]
    assert values("--name", "a") == [2.0, 0.0]
    assert values("--since", "15m") == [3.0, 2.0]
    assert values("--since", "2025-08-03T10:40:00Z") == [3.0, 2.0, 1.0]
    assert values("--limit", "1") == [3.0]
    assert cli("metrics", "list", "--limit", "1").json["total"] == 4


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--entity-type", "planet", "--entity-id", "x", "m", "1"], 2),
        (["--entity-type", "agent", "--entity-id", "agent-nope", "m", "1"], 1),
        (["--entity-type", "swarm", "--entity-id", "swarm-nope", "m", "1"], 1),
        (["--entity-type", "system", "--entity-id", "x", "m", "nan"], 2),
        (["--entity-type", "system", "--entity-id", "x", "m", "1", "--metadata", "{bad"], 2),
        (["--entity-type", "system", "--entity-id", "x", "m", "1", "--aggregation-period", "week"], 2),
    ],
)
def test_record_refuses_bad_input_and_records_nothing(cli, db_path, args, code):
    spawn(cli)
    assert cli("metrics", "record", *args).exit_code == code
    assert sql(db_path, "SELECT COUNT(*) FROM metrics") == [(0,)]


def test_record_is_audited_with_the_agent_as_actor(cli, db_path):
    agent = spawn(cli)
    cli("metrics", "record", "--entity-type", "agent", "--entity-id", agent, "m", "1")
    assert sql(db_path, "SELECT entity_type, action, actor_id FROM audit_log WHERE entity_type = 'metric'") == [
        ("metric", "record", agent)
    ]


def test_list_on_a_missing_database_is_empty_and_creates_nothing(cli, db_path):
    result = cli("metrics", "list")
    assert result.exit_code == 0
    assert result.json == {"metrics": [], "total": 0, "limit": 100, "offset": 0}
    assert not db_path.exists()
