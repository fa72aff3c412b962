"""A small database with at least two of everything, for the tests that walk every command.

``build(cli, folder)`` fills the test's database through the real commands and returns the ids
it made; ``invocation(path, ids)`` is one successful command line for every command of the tree
(the walking tests fail on a command that has none, so a new command gets one here).
"""

from __future__ import annotations

from pathlib import Path


def build(cli, folder: Path) -> dict[str, str]:
    """Two memory entries, agents, swarms, tasks, decisions, metrics and backups."""

    def ok(*args: str, input: str | None = None) -> dict:
        result = cli(*args, input=input)
        assert result.exit_code == 0, (args, result)
        return result.json

    ids: dict[str, str] = {"folder": str(folder)}
    ok("memory", "store", "alpha", '{"n": 1}', "-n", "demo", "-t", "x")
    ok("memory", "store", "beta", "two", "-n", "demo")
    ids["swarm"] = ok("swarm", "init", "--topology", "mesh")["id"]
    ids["swarm2"] = ok("swarm", "init", "--topology", "star")["id"]
    ids["agent"] = ok("agent", "spawn", "--type", "coder", "--name", "c1", "--swarm", ids["swarm"])["id"]
    ids["agent2"] = ok("agent", "spawn", "--type", "tester", "--name", "t1", "--swarm", ids["swarm"])["id"]
    ids["agent3"] = ok("agent", "spawn", "--type", "coder", "--name", "c3")["id"]
    ids["task"] = ok("task", "orchestrate", "first", "--swarm", ids["swarm"])["taskId"]
    ids["task2"] = ok("task", "orchestrate", "second", "--subtask", "a", "--subtask", "b")["taskId"]
    ids["task3"] = ok("task", "orchestrate", "third")["taskId"]
    for name in ("running", "running2", "failed"):
        ids[name] = ok("task", "orchestrate", name)["taskId"]
        ok("task", "start", ids[name], "--agent", ids["agent2"])
    ok("task", "fail", ids["failed"])
    # claimed with a lease (critical, so the claim takes it before the pending ones), for `task heartbeat`
    ids["leased"] = ok("task", "orchestrate", "leased", "--priority", "critical")["taskId"]
    assert ok("task", "claim", "--agent", ids["agent2"], "--lease", "5m")["id"] == ids["leased"]
    ids["decision"] = ok("consensus", "request", "--swarm", ids["swarm"], "--proposal", "p1", "--type", "majority")["decisionId"]
    ids["decision2"] = ok("consensus", "request", "--swarm", ids["swarm"], "--proposal", "p2", "--type", "majority")["decisionId"]
    ok("metrics", "record", "--entity-type", "agent", "--entity-id", ids["agent"], "cpu", "1")
    ok("metrics", "record", "--entity-type", "agent", "--entity-id", ids["agent"], "cpu", "2")
    ids["pattern"] = str(ok("neural", "store", "coordination", '{"plan": 1}', "--agent-type", "coder",
                            "--accuracy", "0.9")["id"])
    ids["pattern2"] = str(ok("neural", "store", "prompt", '{"plan": 2}', "--agent-type", "coder",
                             "--accuracy", "0.4")["id"])
    ids["session"] = ok("session", "start", "--type", "hive-mind", "--swarm", ids["swarm"])["id"]
    ok("session", "checkpoint", ids["session"], '{"step": 1}')
    ids["session2"] = ok("session", "start", "--type", "batch")["id"]
    (folder / "flow.json").write_text('{"steps": [{"id": "a", "description": "first step"}, '
                                      '{"id": "b", "description": "second step", "dependencies": ["a"]}]}')
    (folder / "flow2.json").write_text('{"category": "ops", "steps": [{"id": "only", "description": "one step"}]}')
    ids["workflow"] = ok("workflow", "create", "flow", "--file", str(folder / "flow.json"))["id"]
    ids["workflow2"] = ok("workflow", "create", "other-flow", "--file", str(folder / "flow2.json"))["id"]
    ok("apikey", "create", "walker", "--role", "reader")
    ok("apikey", "create", "watcher", "--role", "writer", "-n", "demo")
    # a hook on an event no walking command fires, and one to remove
    ids["hook"] = str(ok("hooks", "add", "consensus.decided", "--run", "true")["id"])
    ids["hook2"] = str(ok("hooks", "add", "task.retried", "--run", "true", "--if", "priority == \"high\"")["id"])
    ids["backup"] = ok("backup", "create")["path"]
    ok("backup", "create")
    (folder / "batch.jsonl").write_text('{"action": "store", "key": "gamma", "value": 3}\n')
    (folder / "value.txt").write_text("from a file\n")
    (folder / "import.jsonl").write_text('{"key": "imported", "value": 1}\n')
    return ids


# What a PostgreSQL database does not offer (README "Running on PostgreSQL"): on the suite's
# second run, a walking test skips these commands with the reason, instead of expecting success.
NOT_ON_A_SERVER: dict[tuple[str, ...], str] = {}


def invocation(path: tuple[str, ...], ids: dict[str, str]) -> list[str] | None:
    """One command line (after the command's path) that succeeds on :func:`build`'s database."""
    from tests.conftest import TEST_SERVER

    if TEST_SERVER and path in NOT_ON_A_SERVER:
        import pytest

        pytest.skip(f"not on PostgreSQL: {NOT_ON_A_SERVER[path]}")
    f = ids["folder"]
    table: dict[tuple[str, ...], list[str]] = {
        ("memory", "store"): ["delta", "4"],
        ("memory", "retrieve"): ["alpha", "-n", "demo"],
        ("memory", "delete"): ["beta", "-n", "demo"],
        ("memory", "incr"): ["counter", "--by", "2"],
        ("memory", "history"): ["alpha", "-n", "demo"],
        ("memory", "search"): ["*"],
        ("memory", "list"): [],
        ("memory", "namespaces"): [],
        ("memory", "stats"): [],
        ("memory", "health"): [],
        ("memory", "cleanup"): ["--dry-run"],
        ("memory", "clear"): ["-n", "nothing-here", "--yes"],
        ("memory", "batch"): [f"{f}/batch.jsonl"],
        ("memory", "export"): ["-o", f"{f}/export.jsonl"],
        ("memory", "import"): [f"{f}/import.jsonl", "--on-conflict", "skip"],
        ("memory", "fts", "enable"): [],
        ("memory", "fts", "disable"): [],
        ("memory", "fts", "status"): [],
        ("agent", "types"): [],
        ("agent", "spawn"): ["--type", "reviewer"],
        ("agent", "list"): [],
        ("agent", "show"): [ids["agent"]],
        ("agent", "update"): [ids["agent"], "--status", "idle"],
        ("agent", "heartbeat"): [ids["agent"]],
        ("agent", "terminate"): [ids["agent3"]],
        ("agent", "metrics"): [ids["agent"]],
        ("swarm", "init"): ["--topology", "ring"],
        ("swarm", "list"): [],
        ("swarm", "show"): [ids["swarm"]],
        ("swarm", "status"): [ids["swarm"]],
        ("swarm", "join"): [ids["swarm2"], ids["agent"]],
        ("swarm", "leave"): [ids["swarm"], ids["agent2"]],
        ("swarm", "shutdown"): [ids["swarm2"]],
        ("task", "orchestrate"): ["fourth"],
        ("task", "claim"): ["--agent", ids["agent"]],
        ("task", "heartbeat"): [ids["leased"], "--agent", ids["agent2"]],
        ("task", "start"): [ids["task3"], "--agent", ids["agent2"]],
        ("task", "progress"): [ids["running"], "--value", "0.5"],
        ("task", "complete"): [ids["running"]],
        ("task", "fail"): [ids["running2"]],
        ("task", "retry"): [ids["failed"]],
        ("task", "cancel"): [ids["task"]],
        ("task", "list"): [],
        ("task", "show"): [ids["task"]],
        ("consensus", "request"): ["--swarm", ids["swarm"], "--proposal", "p3", "--type", "majority"],
        ("consensus", "vote"): [ids["decision"], "--agent", ids["agent"], "approve"],
        ("consensus", "show"): [ids["decision"]],
        ("consensus", "list"): [],
        ("metrics", "record"): ["--entity-type", "system", "--entity-id", "ci", "builds", "1"],
        ("metrics", "list"): [],
        ("backup", "create"): [f"{f}/three.db"],
        ("backup", "verify"): [ids["backup"]],
        # On PostgreSQL a restore replaces (merge: not yet there), which succeeds as well.
        ("backup", "restore"): [ids["backup"], "--yes"] if TEST_SERVER else [ids["backup"], "--merge", "--yes"],
        ("backup", "list"): [],
        ("backup", "prune"): ["--dry-run"],
        ("migrate", "status"): [],
        ("migrate", "list"): [],
        ("migrate", "up"): ["--dry-run"],
        ("migrate", "down"): ["--to", "1.0.3", "--dry-run"],
        ("config", "get"): ["memory.maxValueSize"],
        ("config", "set"): ["audit.retention", "30d"],
        ("config", "unset"): ["audit.retention"],
        ("config", "list"): ["--all"],
        ("key", "generate"): ["--file", f"{f}/new.key"],
        ("key", "status"): [],
        ("key", "rotate"): None,  # needs the current key in the environment: see KEYED
        ("hooks", "add"): ["agent.spawned", "--run", "true", "--priority", "5"],
        ("hooks", "list"): [],
        ("hooks", "show"): [ids["hook"]],
        ("hooks", "enable"): [ids["hook"]],
        ("hooks", "disable"): [ids["hook"]],
        ("hooks", "remove"): [ids["hook2"]],
        ("hooks", "test"): [ids["hook"]],
        ("audit", "list"): [],
        ("audit", "verify"): [],
        ("audit", "prune"): ["--dry-run"],
        ("session", "start"): ["--type", "interactive"],
        ("session", "checkpoint"): [ids["session"], '{"step": 2}'],
        ("session", "resume"): [ids["session"]],
        ("session", "end"): [ids["session2"]],
        ("session", "list"): [],
        ("session", "show"): [ids["session"]],
        ("workflow", "create"): ["flow-three", "--file", f"{f}/flow.json"],
        ("workflow", "validate"): ["--file", f"{f}/flow.json"],
        ("workflow", "list"): [],
        ("workflow", "show"): ["flow"],
        ("workflow", "run"): ["flow", "--swarm", ids["swarm"]],
        ("neural", "store"): ["coordination", '{"plan": 3}', "--accuracy", "0.5"],
        ("neural", "list"): [],
        ("neural", "show"): [ids["pattern"]],
        ("neural", "use"): [ids["pattern"]],
        ("neural", "best"): ["--agent-type", "coder"],
        ("neural", "prune"): ["--min-accuracy", "0.5"],
        ("apikey", "create"): ["bot", "--role", "writer", "--agent", ids["agent"], "-n", "demo", "--expires", "30d"],
        ("apikey", "list"): [],
        ("apikey", "revoke"): ["walker"],
        # --print: the walking tests run in the repository's folder, whose files must not change
        ("mcp", "install"): ["--client", "claude", "--print"],
    }
    return table.get(path, ["<no invocation: add one to tests/world.py>"])


# Commands whose invocation needs something beyond the database (a key in the environment):
# a walking test runs them with what they need, or says why it cannot.
KEYED: dict[tuple[str, ...], str] = {
    ("key", "rotate"): "needs GEMINI_FLOW_ENCRYPTION_KEY and a new key file",
}
