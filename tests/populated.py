"""A database with one of everything, and a plausible command line for every command.

For tests that walk the command tree (tests/commandtree.py) and must run each command for real:
``populate(cli, folder)`` fills the test database through the CLI itself and returns the ids it
made; ``argv_for(command, ids)`` gives the arguments that make the command do its real work on
that database (an existing key, agent, task...). A command this module does not know gets its
required arguments and options filled by name, so a command added later still runs (the test
then checks its exit status; give it a real line here when that is not enough).
"""

from __future__ import annotations

import json
from pathlib import Path


def populate(cli, folder: Path) -> dict[str, str]:
    """Make a key, an agent in a swarm, a task, a decision, a metric, a backup, an export and a
    batch file; returns their ids and paths by name."""
    ids: dict[str, str] = {}

    def ok(*args: str) -> dict:
        result = cli(*args)
        assert result.exit_code == 0, (args, result)
        return result.json if result.stdout.strip() else {}

    ok("memory", "store", "k", '{"a": 1}', "-t", "x")
    ok("memory", "store", "other", "text", "-n", "second")
    ids["agent"] = ok("agent", "spawn", "--type", "coder")["id"]
    for _ in range(3):
        extra = ok("agent", "spawn", "--type", "tester")["id"]
        ids.setdefault("spare", extra)
    ids["swarm"] = ok("swarm", "init", "--topology", "mesh")["id"]
    agents = [a["id"] for a in ok("agent", "list")["agents"]]
    for agent in agents:
        if agent != ids["spare"]:
            ok("swarm", "join", ids["swarm"], agent)
    ids["task"] = ok("task", "orchestrate", "do the work", "--swarm", ids["swarm"])["taskId"]
    decision = ok("consensus", "request", "--swarm", ids["swarm"], "--proposal", "ship", "--type", "majority")
    ids["decision"] = decision.get("decisionId") or decision.get("id")
    ok("metrics", "record", "latency", "12", "--entity-type", "agent", "--entity-id", ids["agent"])
    backup = folder / "made.backup.db"
    ok("backup", "create", str(backup))
    ids["backup"] = str(backup)
    export = folder / "export.jsonl"
    export.write_text(json.dumps({"key": "imported", "namespace": "default", "value": 2}) + "\n")
    ids["export"] = str(export)
    batch = folder / "batch.json"
    batch.write_text(json.dumps({"operations": [{"action": "retrieve", "key": "k"}]}))
    ids["batch"] = str(batch)
    ids["hook"] = str(ok("hooks", "add", "swarm.shutdown", "--run", "true")["id"])
    return ids


def argv_for(path: tuple[str, ...], ids: dict[str, str], params=()) -> list[str]:
    """A command line for ``path`` that does real work on the populated database."""
    known: dict[tuple[str, ...], list[str]] = {
        ("memory", "store"): ["memory", "store", "k2", "v"],
        ("memory", "retrieve"): ["memory", "retrieve", "k"],
        ("memory", "delete"): ["memory", "delete", "k"],
        ("memory", "search"): ["memory", "search", "*"],
        ("memory", "clear"): ["memory", "clear", "-n", "second", "--yes"],
        ("memory", "batch"): ["memory", "batch", ids["batch"]],
        ("memory", "import"): ["memory", "import", ids["export"]],
        ("agent", "spawn"): ["agent", "spawn", "--type", "coder"],
        ("agent", "update"): ["agent", "update", ids["agent"], "--status", "idle"],
        ("swarm", "init"): ["swarm", "init", "--topology", "mesh"],
        ("swarm", "join"): ["swarm", "join", ids["swarm"], ids["spare"]],
        ("swarm", "leave"): ["swarm", "leave", ids["swarm"], ids["agent"]],
        ("task", "claim"): ["task", "claim", "--agent", ids["agent"]],
        ("task", "progress"): ["task", "progress", ids["task"], "--value", "0.5"],
        ("consensus", "request"): ["consensus", "request", "--swarm", ids["swarm"], "--proposal", "p",
                                   "--type", "majority"],
        ("consensus", "vote"): ["consensus", "vote", ids["decision"], "approve", "--agent", ids["agent"]],
        ("metrics", "record"): ["metrics", "record", "m", "1", "--entity-type", "agent", "--entity-id", ids["agent"]],
        ("backup", "create"): ["backup", "create"],
        ("backup", "verify"): ["backup", "verify", ids["backup"]],
        ("backup", "restore"): ["backup", "restore", ids["backup"], "--yes"],
        ("migrate", "down"): ["migrate", "down", "--to", "1.0.3", "--yes"],
        ("config", "get"): ["config", "get", "memory.maxValueSize"],
        ("config", "set"): ["config", "set", "memory.maxValueSize", "2048"],
        ("config", "unset"): ["config", "unset", "memory.maxValueSize"],
        ("audit", "prune"): ["audit", "prune", "--retention", "1d"],
        
    }
    if path in known:
        return list(known[path])
    by_name = {
        "key": "k", "keys": "k", "pattern": "*", "agent_id": ids["agent"], "swarm_id": ids["swarm"],
        "task_id": ids["task"], "decision_id": ids["decision"], "choice": "approve", "description": "d",
        "name": "m", "value": "1", "path": ids["backup"], "file": ids["export"],
        "hook_id": ids.get("hook", "1"), "event": "swarm.shutdown",
    }
    options = {"--agent": ids["agent"], "--swarm": ids["swarm"], "--type": "coder", "--topology": "mesh",
               "--value": "1", "--to": "1.0.3", "--entity-type": "agent", "--entity-id": ids["agent"],
               "--proposal": "p", "--run": "true"}
    argv = list(path)
    for param in params:
        if param.param_type_name == "argument" and param.required:
            argv.append(by_name.get(param.name, "x"))
        elif param.param_type_name == "option" and param.required:
            argv += [param.opts[0], options.get(param.opts[0], "x")]
    return argv
