"""`workflow`: definitions validated and versioned, executions run as tasks, figures from outcomes (issue 15)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemini_flow_cli.core import workflows
from gemini_flow_cli.errors import GeminiFlowError
from tests.helpers import sql

DIAMOND = {
    "description": "Ship a release",
    "category": "release",
    "tags": ["ci"],
    "steps": [
        {"id": "design", "description": "Design the schema"},
        {"id": "api", "description": "Write the API", "dependencies": ["design"], "capabilities": ["python"]},
        {"id": "ui", "description": "Build the UI", "dependencies": ["design"]},
        {"id": "ship", "description": "Release it", "dependencies": ["api", "ui"]},
    ],
}


def create(cli, tmp_path, name="release", definition=DIAMOND, *extra):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(definition))
    result = cli("workflow", "create", name, "--file", str(path), *extra)
    assert result.exit_code == 0, result
    return result.json


# -- definitions -------------------------------------------------------------------------------


def test_create_keeps_the_definition_in_the_seed_columns(cli, db_path, tmp_path):
    made = create(cli, tmp_path, "release", DIAMOND, "--created-by", "ana")
    assert made["id"].startswith("workflow-") and (made["version"], made["created"]) == (1, True)
    assert (made["executionCount"], made["successRate"], made["category"], made["tags"]) == (0, None, "release", ["ci"])
    assert [s["id"] for s in made["steps"]] == ["design", "api", "ui", "ship"]
    assert made["steps"][0] == {"id": "design", "description": "Design the schema", "dependencies": [], "capabilities": []}
    row = sql(db_path, "SELECT name, version, created_by, execution_count, success_rate, category, tags FROM workflows")
    assert row == [("release", 1, "ana", 0, None, "release", '["ci"]')]
    assert json.loads(sql(db_path, "SELECT definition FROM workflows")[0][0])["steps"][1]["dependencies"] == ["design"]


def test_the_same_definition_is_a_no_op_and_a_changed_one_a_new_version(cli, db_path, tmp_path):
    first = create(cli, tmp_path)
    # the same definition, written differently (key order, spacing, repeated dependency)
    same = json.loads(json.dumps(DIAMOND))
    same["steps"][3]["dependencies"] = ["api", "ui", "api"]
    again = create(cli, tmp_path, "release", dict(reversed(list(same.items()))))
    assert (again["id"], again["version"], again["created"]) == (first["id"], 1, False)
    changed = json.loads(json.dumps(DIAMOND))
    changed["steps"].append({"id": "notify", "description": "Tell people", "dependencies": ["ship"]})
    second = create(cli, tmp_path, "release", changed)
    assert (second["version"], second["created"]) == (2, True) and second["id"] != first["id"]
    assert sql(db_path, "SELECT COUNT(*) FROM workflows") == [(2,)]
    assert cli("workflow", "show", "release").json["version"] == 2
    assert cli("workflow", "show", "release", "--version", "1").json["id"] == first["id"]
    assert cli("workflow", "show", first["id"]).json["version"] == 1
    listed = cli("workflow", "list").json
    assert [(w["name"], w["version"]) for w in listed["workflows"]] == [("release", 2)]
    assert cli("workflow", "list", "--all").json["total"] == 2


@pytest.mark.parametrize("definition, words", [
    ({"steps": [{"id": "a", "description": "A", "dependencies": ["zz"]}]}, "depends on 'zz'"),
    ({"steps": [{"id": "a", "description": "A", "dependencies": ["b"]},
                {"id": "b", "description": "B", "dependencies": ["a"]}]}, "cycle: a -> b -> a"),
    ({"steps": [{"id": "a", "description": "A", "dependencies": ["a"]}]}, "cycle: a -> a"),
    ({"steps": [{"id": "a", "description": "A"}, {"id": "a", "description": "B"}]}, "two steps have the id 'a'"),
    ({"steps": [{"id": "a", "description": "A", "after": ["b"]}]}, "unknown key 'after'"),
    ({"steps": [], "name": "x"}, "unknown key 'name'"),
    ({"steps": []}, "non-empty list"),
    ({"steps": [{"id": "a b", "description": "A"}]}, "'id' must be"),
    ({"steps": [{"id": "a"}]}, "'description' must be"),
    ({"steps": [{"id": "a", "description": "A", "capabilities": "python"}]}, "list of strings"),
    ([1, 2], "must be an object"),
])
def test_an_invalid_definition_exits_2_naming_the_problem(cli, db_path, tmp_path, definition, words):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(definition))
    for command in (["workflow", "create", "w", "--file", str(path)], ["workflow", "validate", "--file", str(path)]):
        result = cli(*command)
        assert result.exit_code == 2 and result.error["code"] == "INVALID_INPUT", result
        assert words in result.error["message"]
    assert not db_path.exists() or sql(db_path, "SELECT COUNT(*) FROM workflows") == [(0,)]


def test_validate_prints_the_normalised_definition(cli, tmp_path):
    result = cli("workflow", "validate", input=json.dumps(DIAMOND))
    assert result.exit_code == 0 and result.json["valid"] is True and result.json["steps"] == 4


def test_yaml_definitions(cli, tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text("steps:\n  - id: fetch\n    description: Fetch data\n"
                    "  - id: build\n    description: Build\n    dependencies: [fetch]\n")
    made = cli("workflow", "create", "etl", "--file", str(path)).json
    assert [s["dependencies"] for s in made["steps"]] == [[], ["fetch"]]
    same_as_json = {"steps": [{"id": "fetch", "description": "Fetch data"},
                              {"id": "build", "description": "Build", "dependencies": ["fetch"]}]}
    assert create(cli, tmp_path, "etl", same_as_json)["created"] is False
    assert cli("workflow", "validate", "--yaml", input="steps: [{id: a, description: A}]").exit_code == 0
    dated = tmp_path / "dated.yml"
    dated.write_text("steps:\n  - id: a\n    description: 2025-01-01\n")
    assert cli("workflow", "create", "d", "--file", str(dated)).exit_code == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: [\n")
    assert cli("workflow", "create", "d", "--file", str(broken)).error["code"] == "INVALID_INPUT"


def test_names_and_unknown_references(cli, tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(DIAMOND))
    assert cli("workflow", "create", "bad name", "--file", str(path)).exit_code == 2
    create(cli, tmp_path)
    for args in (["show", "nope"], ["show", "release", "--version", "9"], ["run", "nope"],
                 ["run", "release", "--version", "2"], ["run", "release", "--swarm", "swarm-nope"]):
        result = cli("workflow", *args)
        assert result.exit_code == 1 and result.error["code"] == "NOT_FOUND", (args, result)


# -- executions ----------------------------------------------------------------------------------


@pytest.fixture
def team(cli):
    swarm = cli("swarm", "init", "--topology", "mesh").json["id"]
    py = cli("agent", "spawn", "--type", "coder", "--capability", "python", "--swarm", swarm).json["id"]
    web = cli("agent", "spawn", "--type", "coder", "--capability", "frontend", "--swarm", swarm).json["id"]
    return swarm, py, web


def test_run_creates_the_steps_as_tasks_with_their_dependencies(cli, tmp_path, team):
    swarm, py, web = team
    made = create(cli, tmp_path)
    run = cli("workflow", "run", "release", "--swarm", swarm, "--priority", "high")
    assert run.exit_code == 0, run
    execution = run.json
    steps = {s["step"]: s["taskId"] for s in execution["steps"]}
    assert (execution["workflowId"], execution["version"], execution["executionCount"]) == (made["id"], 1, 1)
    top = cli("task", "show", execution["taskId"]).json
    assert top["workflowId"] == made["id"] and [s["id"] for s in top["subtasks"]] == list(steps.values())
    assert top["context"] == {"workflowId": made["id"], "name": "release", "version": 1}
    api = cli("task", "show", steps["api"]).json
    assert api["dependencies"] == [steps["design"]] and api["agentId"] == py and api["priority"] == "high"
    assert api["context"] == {"workflowId": made["id"], "step": "api", "capabilities": ["python"]}
    assert cli("task", "show", steps["ship"]).json["dependencies"] == [steps["api"], steps["ui"]]


def test_a_step_no_member_can_do_refuses_the_run(cli, tmp_path, db_path):
    swarm = cli("swarm", "init", "--topology", "mesh").json["id"]
    cli("agent", "spawn", "--type", "coder", "--capability", "go", "--swarm", swarm)
    create(cli, tmp_path)
    before = sql(db_path, "SELECT COUNT(*) FROM tasks")
    result = cli("workflow", "run", "release", "--swarm", swarm)
    assert result.exit_code == 3 and result.error["code"] == "CONFLICT" and "python" in result.error["message"]
    assert sql(db_path, "SELECT COUNT(*) FROM tasks") == before
    assert cli("workflow", "show", "release").json["executionCount"] == 0


def _work(cli, agents, outcome):
    """Agents claim ready steps until none is left; ``outcome(description)`` says complete or fail."""
    done = []
    progress = True
    while progress:
        progress = False
        for agent in agents:
            claimed = cli("task", "claim", "--agent", agent)
            if claimed.exit_code != 0:
                continue
            task = claimed.json
            verb = outcome(task["description"])
            assert cli("task", verb, task["id"], "--agent", agent).exit_code == 0
            done.append((task["description"], verb))
            progress = True
    return done


def test_two_runs_of_a_diamond_give_an_exact_success_rate(cli, tmp_path, team, db_path):
    swarm, py, web = team
    create(cli, tmp_path)
    first = cli("workflow", "run", "release", "--swarm", swarm).json
    second = cli("workflow", "run", "release", "--swarm", swarm).json
    shown = cli("workflow", "show", "release").json
    assert (shown["executionCount"], shown["successRate"]) == (2, None)
    assert shown["executions"] == {"running": 2, "succeeded": 0, "failed": 0, "cancelled": 0}

    # both executions: every step completes, in dependency order
    order = _work(cli, [py, web], lambda d: "complete")
    assert [d for d, _ in order][:1] == ["Design the schema"] and len(order) == 8
    assert cli("task", "show", first["taskId"]).json["status"] == "completed"
    assert cli("task", "show", second["taskId"]).json["status"] == "completed"
    assert cli("workflow", "show", "release").json["successRate"] == 1.0

    third = cli("workflow", "run", "release", "--swarm", swarm).json
    failing = _work(cli, [py, web], lambda d: "fail" if d == "Build the UI" else "complete")
    assert ("Build the UI", "fail") in failing and ("Release it", "complete") not in failing
    assert cli("task", "show", third["taskId"]).json["status"] == "failed"
    shown = cli("workflow", "show", "release").json
    assert (shown["executionCount"], shown["successRate"]) == (3, 2 / 3)
    assert shown["executions"] == {"running": 0, "succeeded": 2, "failed": 1, "cancelled": 0}
    assert sql(db_path, "SELECT execution_count, success_rate FROM workflows") == [(3, 2 / 3)]
    outcomes = [e["outcome"] for e in shown["recentExecutions"]]
    assert outcomes == ["failed", "succeeded", "succeeded"]

    # a retry of the failed step puts the execution back to running: not rated until it finishes
    ui = next(s["taskId"] for s in third["steps"] if s["step"] == "ui")
    assert cli("task", "retry", ui).exit_code == 0
    assert cli("workflow", "show", "release").json["successRate"] == 1.0
    _work(cli, [py, web], lambda d: "complete")
    shown = cli("workflow", "show", "release").json
    assert (shown["executionCount"], shown["successRate"]) == (3, 1.0)


def test_a_cancelled_execution_is_counted_not_rated(cli, tmp_path, team):
    swarm, py, web = team
    create(cli, tmp_path)
    done = cli("workflow", "run", "release", "--swarm", swarm).json
    _work(cli, [py, web], lambda d: "complete")
    cancelled = cli("workflow", "run", "release", "--swarm", swarm).json
    assert cli("task", "cancel", cancelled["taskId"]).exit_code == 0
    shown = cli("workflow", "show", "release").json
    assert (shown["executionCount"], shown["successRate"]) == (2, 1.0)
    assert shown["executions"]["cancelled"] == 1
    assert done["taskId"] != cancelled["taskId"]


def test_each_version_keeps_its_own_figures(cli, tmp_path, team):
    swarm, py, web = team
    create(cli, tmp_path)
    cli("workflow", "run", "release", "--swarm", swarm)
    changed = {"steps": [{"id": "only", "description": "Do it all"}]}
    create(cli, tmp_path, "release", changed)
    run = cli("workflow", "run", "release").json
    assert run["version"] == 2
    versions = cli("workflow", "show", "release").json["versions"]
    assert [(v["version"], v["executionCount"]) for v in versions] == [(1, 1), (2, 1)]


def test_a_lapsed_last_attempt_fails_the_execution(cli, tmp_path, team, frozen):
    swarm, py, web = team
    create(cli, tmp_path, "one", {"steps": [{"id": "x", "description": "Only step"}]})
    run = cli("workflow", "run", "one", "--swarm", swarm, "--max-attempts", "1").json
    assert cli("task", "claim", "--agent", py, "--lease", "10s").exit_code == 0
    frozen.now += 60
    assert cli("task", "claim", "--agent", web).exit_code == 1
    assert cli("task", "show", run["taskId"]).json["status"] == "failed"
    assert cli("workflow", "show", "one").json["successRate"] == 0.0


# -- the validator, over random graphs --------------------------------------------------------


@st.composite
def dags(draw):
    """A random DAG: step i depends only on steps before it."""
    n = draw(st.integers(1, 12))
    steps = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=i, unique=True)) if i else []
        steps.append({"id": f"s{i}", "description": f"step {i}", "dependencies": [f"s{j}" for j in deps]})
    order = draw(st.permutations(range(n)))
    return {"steps": [steps[i] for i in order]}


@settings(max_examples=60, deadline=None)
@given(dags())
def test_every_dag_is_valid_and_keeps_its_edges(definition):
    normal = workflows.validate(definition)
    assert {s["id"]: s["dependencies"] for s in normal["steps"]} == {
        s["id"]: s["dependencies"] for s in definition["steps"]}


@settings(max_examples=60, deadline=None)
@given(dags(), st.data())
def test_a_back_edge_makes_a_cycle_that_is_named(definition, data):
    steps = definition["steps"]
    ids = {s["id"]: s for s in steps}
    # find an existing edge a -> b (a depends on b) and add b -> ... -> a back
    edges = [(s["id"], d) for s in steps for d in s["dependencies"]]
    if edges:
        a, b = data.draw(st.sampled_from(edges))
        ids[b]["dependencies"] = [*ids[b]["dependencies"], a]
    else:
        a = steps[0]["id"]
        ids[a]["dependencies"] = [a]
    with pytest.raises(GeminiFlowError) as caught:
        workflows.validate(definition)
    assert caught.value.code == "INVALID_INPUT"
    cycle = caught.value.details["cycle"]
    assert cycle[0] == cycle[-1]
    for x, y in zip(cycle, cycle[1:]):  # every link of the named cycle is a real dependency
        assert y in ids[x]["dependencies"]


@settings(max_examples=60, deadline=None)
@given(dags(), st.data())
def test_a_dependency_on_a_missing_step_is_named(definition, data):
    step = data.draw(st.sampled_from(definition["steps"]))
    step["dependencies"] = [*step["dependencies"], "ghost"]
    with pytest.raises(GeminiFlowError) as caught:
        workflows.validate(definition)
    assert caught.value.details == {"step": step["id"], "dependency": "ghost"}
