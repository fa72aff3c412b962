"""`gemini-flow mcp serve` (CLI.md §9, issue 13): every tool through the SDK's own client, in
process; one real server over stdio; the tool list's size; and what the plain CLI does not import.

`mcp install` has its own file, tests/test_mcp_install.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

pytest.importorskip("mcp")

from mcp import Client, StdioServerParameters  # noqa: E402

from conftest import gemini_flow_command  # noqa: E402
from gemini_flow_cli.mcp.server import build_server  # noqa: E402
from gemini_flow_cli.mcp.tools import TOOLS, Scope, list_tools, token_estimate  # noqa: E402
from tests.conftest import not_on_a_server

WRITING = {"memory_store", "memory_delete", "memory_incr", "task_claim", "task_complete", "task_fail",
           "consensus_vote"}


def calls(scope: Scope, *requests: tuple[str, dict], mode: str = "auto") -> list[tuple[bool, dict]]:
    """Run tool calls in order through the SDK's client against an in-process server: a list of
    (is_error, the JSON of the result's text content)."""

    async def main():
        out = []
        async with Client(build_server(scope), mode=mode) as client:
            for name, arguments in requests:
                result = await client.call_tool(name, arguments)
                assert len(result.content) == 1 and result.content[0].type == "text"
                body = json.loads(result.content[0].text)
                assert result.structured_content == body
                out.append((result.is_error, body))
        return out

    return anyio.run(main)


def call(scope: Scope, name: str, arguments: dict | None = None) -> dict:
    is_error, body = calls(scope, (name, arguments or {}))[0]
    assert not is_error, body
    return body


def error(scope: Scope, name: str, arguments: dict | None = None) -> dict:
    is_error, body = calls(scope, (name, arguments or {}))[0]
    assert is_error, body
    assert body["success"] is False and set(body["error"]) >= {"code", "message", "recoverable"}
    assert "Traceback" not in body["error"]["message"]
    return body["error"]


@pytest.fixture
def scope(db_path) -> Scope:
    return Scope(db_path=db_path)


@pytest.fixture
def world(cli):
    """A swarm with two members, two tasks and an open decision, made through the CLI."""
    ids = {"swarm": cli("swarm", "init", "--topology", "mesh").json["id"]}
    ids["agent"] = cli("agent", "spawn", "--type", "coder", "--swarm", ids["swarm"]).json["id"]
    ids["agent2"] = cli("agent", "spawn", "--type", "tester", "--swarm", ids["swarm"]).json["id"]
    ids["outsider"] = cli("agent", "spawn", "--type", "coder").json["id"]
    ids["task"] = cli("task", "orchestrate", "first", "--swarm", ids["swarm"], "--priority", "high").json["taskId"]
    ids["task2"] = cli("task", "orchestrate", "second", "--swarm", ids["swarm"]).json["taskId"]
    ids["decision"] = cli("consensus", "request", "--swarm", ids["swarm"], "--proposal", "ship",
                          "--type", "majority", "--timeout", "3600000").json["decisionId"]
    return ids


# -- the tool list ----------------------------------------------------------------------------------


def test_the_tool_list_is_small_and_under_3000_tokens(scope):
    tools = list_tools(scope)
    assert 10 <= len(tools) <= 14
    assert token_estimate(tools) < 3000
    for tool in tools:
        assert tool["description"] and tool["inputSchema"]["type"] == "object"
        assert tool["inputSchema"]["additionalProperties"] is False


def test_the_server_lists_exactly_the_tools_of_the_module(scope):
    async def main():
        async with Client(build_server(scope)) as client:
            return (await client.list_tools()).tools

    listed = anyio.run(main)
    assert [t.name for t in listed] == list(TOOLS)
    assert {t.name for t in listed if not t.annotations.read_only_hint} == WRITING
    assert token_estimate([t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in listed]) < 3000


def test_a_read_only_server_lists_no_writing_tool(db_path):
    names = {t["name"] for t in list_tools(Scope(db_path=db_path, read_only=True))}
    assert names and not names & WRITING


def test_a_server_bound_to_an_agent_does_not_ask_for_one(db_path):
    schemas = {t["name"]: t["inputSchema"] for t in list_tools(Scope(db_path=db_path, agent="agent-1"))}
    for name in ("task_claim", "task_complete", "task_fail", "consensus_vote"):
        assert "agent" not in schemas[name]["properties"]
        assert "agent" not in schemas[name].get("required", [])


# -- memory tools -------------------------------------------------------------------------------------


def test_store_retrieve_search_delete_give_the_cli_json(scope, cli):
    stored = call(scope, "memory_store", {"key": "k", "value": {"a": [1, 2]}, "tags": ["x"], "ttl": "1h"})
    assert stored["success"] and stored["version"] == 1 and stored["expiresAt"]
    through_mcp, through_cli = call(scope, "memory_retrieve", {"key": "k"}), cli("memory", "retrieve", "k").json
    for envelope in (through_mcp, through_cli):
        del envelope["metadata"]["accessCount"]  # each read counts one
    assert through_mcp == through_cli and through_mcp["value"] == {"a": [1, 2]}
    found = call(scope, "memory_search", {"pattern": "k*", "tags": ["x"]})
    assert [r["key"] for r in found["results"]] == ["k"] and found["total"] == 1
    assert call(scope, "memory_delete", {"key": "k"}) == {"success": True, "deleted": ["k"], "missing": [],
                                                           "namespace": "default"}
    assert cli("memory", "retrieve", "k").exit_code == 1


def test_a_null_value_and_a_string_are_stored_as_given(scope, cli):
    call(scope, "memory_store", {"key": "nothing", "value": None})
    call(scope, "memory_store", {"key": "text", "value": "[not json"})
    assert cli("memory", "retrieve", "nothing").json["value"] is None
    assert cli("memory", "retrieve", "text").json["value"] == "[not json"


def test_if_version_and_if_absent(scope):
    call(scope, "memory_store", {"key": "cfg", "value": 1})
    assert call(scope, "memory_store", {"key": "cfg", "value": 2, "if_version": 1})["version"] == 2
    err = error(scope, "memory_store", {"key": "cfg", "value": 3, "if_version": 1})
    assert err["code"] == "CONFLICT" and err["details"]["version"] == 2
    assert error(scope, "memory_store", {"key": "cfg", "value": 3, "if_absent": True})["code"] == "CONFLICT"
    assert error(scope, "memory_delete", {"key": "cfg", "if_version": 1})["code"] == "CONFLICT"


def test_incr_namespaces_history_stats(scope):
    call(scope, "memory_incr", {"key": "n"})
    assert call(scope, "memory_incr", {"key": "n", "by": 4, "namespace": "counters"})["value"] == 4
    assert call(scope, "memory_incr", {"key": "n", "namespace": "counters"})["value"] == 5
    names = call(scope, "memory_namespaces")
    assert [r["namespace"] for r in names["namespaces"]] == ["counters", "default"] and names["total"] == 2
    history = call(scope, "memory_history", {"key": "n", "namespace": "counters"})
    assert [v["value"] for v in history["versions"]] == [4, 5]
    stats = call(scope, "memory_stats")
    assert stats["totalKeys"] == 2 and set(stats["namespaces"]) == {"counters", "default"}


def test_changes_page_through_the_feed_and_wait_for_a_new_one(scope, cli):
    for i in range(5):
        cli("memory", "store", f"job-{i}", str(i))
    cli("memory", "store", "other", "x")
    page = call(scope, "memory_changes", {"since": 0, "pattern": "job-*", "limit": 3})
    assert [c["key"] for c in page["changes"]] == ["job-0", "job-1", "job-2"] and page["revision"] == 3
    rest = call(scope, "memory_changes", {"since": page["revision"], "pattern": "job-*"})
    assert [c["key"] for c in rest["changes"]] == ["job-3", "job-4"] and rest["revision"] == 6
    assert call(scope, "memory_changes", {"since": 6}) == {"changes": [], "revision": 6}
    assert call(scope, "memory_changes", {"since": 6, "wait": 0.2}) == {"changes": [], "revision": 6}


def test_changes_wait_returns_as_soon_as_another_process_writes(scope, cli, run):
    cli("memory", "store", "a", "1")

    async def main():
        async with Client(build_server(scope)) as client:
            async with anyio.create_task_group() as group:
                async def write_soon():
                    await anyio.sleep(0.5)
                    await anyio.to_thread.run_sync(lambda: run("memory", "store", "b", "2"))
                group.start_soon(write_soon)
                started = anyio.current_time()
                result = await client.call_tool("memory_changes", {"since": 1, "wait": 30})
                return json.loads(result.content[0].text), anyio.current_time() - started

    body, took = anyio.run(main)
    assert [c["key"] for c in body["changes"]] == ["b"] and took < 20


def test_each_error_code_reaches_the_model_as_a_tool_error(scope, cli, frozen):
    assert error(scope, "memory_retrieve", {"key": "missing"})["code"] == "NOT_FOUND"
    call(scope, "memory_store", {"key": "brief", "value": 1, "ttl": 5})
    frozen.now += 10
    assert error(scope, "memory_retrieve", {"key": "brief"})["code"] == "TTL_EXPIRED"
    assert error(scope, "memory_store", {"key": "bad\x01key", "value": 1})["code"] == "INVALID_KEY"
    assert error(scope, "memory_store", {"key": "k", "value": 1, "ttl": "soon"})["code"] == "INVALID_INPUT"
    assert error(scope, "memory_delete", {"key": "missing"})["code"] == "NOT_FOUND"
    cli("config", "set", "memory.maxValueSize", "1024")
    assert error(scope, "memory_store", {"key": "big", "value": "x" * 2000})["code"] == "VALUE_TOO_LARGE"
    assert error(scope, "memory_store", {"key": "stripe-api-key", "value": "sk"})["code"] in (
        "PERMISSION_DENIED", "ENCRYPTION_FAILED")
    assert error(scope, "memory_changes", {"since": 0, "namespace": "bad/ns"})["code"] == "INVALID_INPUT"


@pytest.mark.parametrize("arguments, words", [
    ({}, "missing argument 'key'"),
    ({"key": 5}, "expected string"),
    ({"key": "k", "colour": "red"}, "unknown argument 'colour'"),
])
def test_arguments_the_schema_refuses_are_invalid_input(scope, arguments, words):
    err = error(scope, "memory_retrieve", arguments)
    assert err["code"] == "INVALID_INPUT" and words in err["message"]


def test_out_of_range_and_wrong_enum_are_invalid_input(scope):
    assert "at most" in error(scope, "memory_search", {"limit": 5000})["message"]
    assert "use one of" in error(scope, "memory_search", {"sort_order": "up"})["message"]
    assert "expected boolean" in error(scope, "memory_store", {"key": "k", "value": 1, "if_absent": 1})["message"]


def test_an_unknown_tool_is_a_tool_error(scope):
    assert error(scope, "memory_explode")["code"] == "INVALID_INPUT"


def test_a_damaged_database_is_connection_failed_and_stays_as_it_was(tmp_path):
    path = tmp_path / "hive.db"
    path.write_bytes(b"not a database at all" * 100)
    err = error(Scope(db_path=path), "memory_store", {"key": "k", "value": 1})
    assert err["code"] == "CONNECTION_FAILED"
    assert path.read_bytes() == b"not a database at all" * 100


def test_a_bug_is_internal_without_a_traceback_to_the_model(scope, monkeypatch, capsys):
    def explode(self, key, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("gemini_flow_cli.core.memory.MemoryManager.retrieve", explode)
    err = error(scope, "memory_retrieve", {"key": "k"})
    assert err["code"] == "INTERNAL" and "bug" in err["message"]
    assert "ZeroDivisionError" in capsys.readouterr().err  # the traceback goes to the server's log


# -- scoping ----------------------------------------------------------------------------------------------


def test_namespace_scoping(db_path, cli):
    cli("memory", "store", "secret", "1", "-n", "private")
    cli("memory", "store", "shared", "2", "-n", "team")
    scoped = Scope(db_path=db_path, namespaces=("team", "notes"))
    assert error(scoped, "memory_retrieve", {"key": "secret", "namespace": "private"})["code"] == "PERMISSION_DENIED"
    assert error(scoped, "memory_store", {"key": "x", "value": 1, "namespace": "private"})["code"] == "PERMISSION_DENIED"
    assert error(scoped, "memory_changes", {"namespace": "private"})["code"] == "PERMISSION_DENIED"
    # the first namespace is every tool's default
    assert call(scoped, "memory_retrieve", {"key": "shared"})["value"] == 2
    assert call(scoped, "memory_store", {"key": "n", "value": 3})["namespace"] == "team"
    assert call(scoped, "memory_store", {"key": "n", "value": 3, "namespace": "notes"})["namespace"] == "notes"
    assert {r["namespace"] for r in call(scoped, "memory_search", {})["results"]} == {"team"}
    assert [r["namespace"] for r in call(scoped, "memory_namespaces")["namespaces"]] == ["notes", "team"]
    assert set(call(scoped, "memory_stats")["namespaces"]) == {"team"}
    assert {c["namespace"] for c in call(scoped, "memory_changes")["changes"]} == {"team"}


def test_resources_are_the_namespaces_the_server_may_read(db_path, cli):
    cli("memory", "store", "a", "1", "-n", "team")
    cli("memory", "store", "b", "2", "-n", "private")

    async def main(scope):
        async with Client(build_server(scope)) as client:
            listed = [str(r.uri) for r in (await client.list_resources()).resources]
            read = await client.read_resource("gemini-flow://namespace/team")
            return listed, json.loads(read.contents[0].text)

    listed, body = anyio.run(main, Scope(db_path=db_path, namespaces=("team",)))
    assert listed == ["gemini-flow://namespace/team"]
    assert [r["key"] for r in body["results"]] == ["a"]


def test_a_read_only_server_refuses_every_write_and_changes_nothing(db_path, cli, world):
    cli("memory", "store", "k", "1")
    read_only = Scope(db_path=db_path, read_only=True)
    for name, arguments in [("memory_store", {"key": "k", "value": 2}), ("memory_delete", {"key": "k"}),
                            ("memory_incr", {"key": "k"}), ("task_claim", {"agent": world["agent"]}),
                            ("task_complete", {"task_id": world["task"]}), ("task_fail", {"task_id": world["task"]}),
                            ("consensus_vote", {"decision_id": world["decision"], "vote": "approve",
                                                "agent": world["agent"]})]:
        err = error(read_only, name, arguments)
        assert err["code"] == "PERMISSION_DENIED" and "read-only" in err["message"], name
    assert call(read_only, "memory_retrieve", {"key": "k"})["value"] == 1
    # not even the access count: the CLI's retrieve below is the first access
    assert cli("memory", "retrieve", "k").json["metadata"]["accessCount"] == 1
    assert cli("memory", "retrieve", "k").json["version"] == 1
    assert cli("task", "show", world["task"]).json["status"] == "pending"


# -- tasks and votes -----------------------------------------------------------------------------------------


def test_claim_complete_fail_and_vote(db_path, cli, world):
    scope = Scope(db_path=db_path)
    claimed = call(scope, "task_claim", {"agent": world["agent"], "lease": "5m"})
    assert claimed["id"] == world["task"] and claimed["status"] == "running"
    assert call(scope, "task_complete", {"task_id": world["task"], "result": {"files": 2},
                                         "agent": world["agent"]})["status"] == "completed"
    assert cli("task", "show", world["task"]).json["status"] == "completed"
    assert error(scope, "task_complete", {"task_id": world["task"]})["code"] == "CONFLICT"
    assert call(scope, "task_claim", {"agent": world["agent2"]})["id"] == world["task2"]
    assert call(scope, "task_fail", {"task_id": world["task2"], "error": "flaky"})["status"] == "failed"
    assert error(scope, "task_claim", {"agent": world["agent"]})["code"] == "NOT_FOUND"
    assert error(scope, "task_complete", {"task_id": "task-nope"})["code"] == "NOT_FOUND"
    voted = call(scope, "consensus_vote", {"decision_id": world["decision"], "vote": "approve",
                                           "agent": world["agent"], "confidence": 0.9})
    assert voted == cli("consensus", "show", world["decision"]).json
    again = error(scope, "consensus_vote", {"decision_id": world["decision"], "vote": "approve", "agent": world["agent"]})
    assert again["code"] == "CONFLICT"
    outsider = error(scope, "consensus_vote", {"decision_id": world["decision"], "vote": "reject",
                                               "agent": world["outsider"]})
    assert outsider["code"] == "PERMISSION_DENIED"
    assert error(scope, "consensus_vote", {"decision_id": world["decision"], "vote": "maybe",
                                           "agent": world["agent2"]})["code"] == "INVALID_INPUT"


def test_a_server_bound_to_an_agent_claims_and_votes_as_it(db_path, cli, world):
    bound = Scope(db_path=db_path, agent=world["agent2"])
    assert call(bound, "task_claim")["agentId"] == world["agent2"]
    assert error(bound, "task_claim", {"agent": world["agent"]})["code"] == "INVALID_INPUT"
    call(bound, "consensus_vote", {"decision_id": world["decision"], "vote": "reject"})
    votes = cli("consensus", "show", world["decision"]).json
    assert world["agent2"] in json.dumps(votes)
    # a task held by another agent is refused
    other = Scope(db_path=db_path, agent=world["agent"])
    assert error(other, "task_complete", {"task_id": world["task"]})["code"] == "CONFLICT"


def test_the_legacy_handshake_serves_the_same_tools(scope):
    (is_error, stored), (_, read) = calls(scope, ("memory_store", {"key": "k", "value": 1}),
                                          ("memory_retrieve", {"key": "k"}), mode="legacy")
    assert not is_error and read["value"] == 1


# -- a real server over stdio ----------------------------------------------------------------------------------


def _stdio(db: Path, *extra: str) -> StdioServerParameters:
    command = gemini_flow_command()
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "PATH", "XDG_CONFIG_HOME", "XDG_DATA_HOME")}
    return StdioServerParameters(command=command[0], args=[*command[1:], "--db", str(db), "mcp", "serve", *extra],
                                 env=env)


def test_two_stdio_servers_on_one_database_see_each_others_writes_and_the_clis(db_path, run):
    async def main():
        async with Client(_stdio(db_path)) as one, Client(_stdio(db_path)) as two:
            out = {}
            stored = await one.call_tool("memory_store", {"key": "shared", "value": {"from": "one"}})
            assert not stored.is_error, stored
            read = await two.call_tool("memory_retrieve", {"key": "shared"})
            out["two_reads_one"] = json.loads(read.content[0].text)["value"]
            await two.call_tool("memory_incr", {"key": "count"})
            await one.call_tool("memory_incr", {"key": "count"})
            cli = await anyio.to_thread.run_sync(lambda: run("memory", "store", "from-cli", "hello"))
            assert cli.returncode == 0, cli.stderr
            read = await one.call_tool("memory_retrieve", {"key": "from-cli"})
            out["one_reads_cli"] = json.loads(read.content[0].text)["value"]
            missing = await two.call_tool("memory_retrieve", {"key": "nope"})
            out["error"] = (missing.is_error, json.loads(missing.content[0].text)["error"]["code"])
            return out

    out = anyio.run(main)
    assert out == {"two_reads_one": {"from": "one"}, "one_reads_cli": "hello", "error": (True, "NOT_FOUND")}
    assert json.loads(run("memory", "retrieve", "count").stdout) == 2


@not_on_a_server("automatic backups are a local file's")
def test_a_write_through_the_server_runs_the_after_write_actions(db_path, run, cli):
    for name, value in (("backup.auto.enabled", "true"), ("backup.auto.interval", "1s")):
        assert cli("config", "set", name, value).exit_code == 0
    import time

    time.sleep(1.1)  # the database is older than the interval: the next write takes a backup

    async def main():
        async with Client(_stdio(db_path)) as client:
            return await client.call_tool("memory_store", {"key": "k", "value": 1})

    assert not anyio.run(main).is_error
    assert cli("backup", "list").json["total"] >= 1


# -- what the plain CLI never loads -------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["memory", "store", "k", "v"], ["memory", "retrieve", "k"],
                                  ["mcp", "install", "--client", "claude", "--print"]])
def test_the_plain_cli_never_imports_the_mcp_sdk(tmp_path, args):
    code = ("import sys\nfrom gemini_flow_cli.cli import main\n"
            f"try:\n    main({['--db', str(tmp_path / 'hive.db'), *args]!r})\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'mcp_types', 'pydantic', 'anyio'))),"
            " file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr


def test_serve_without_the_extra_names_the_pip_command(cli, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mcp" else real(name, *a))
    result = cli("mcp", "serve")
    assert result.exit_code == 2 and "pip install '.[mcp]'" in result.error["message"]


# -- the streamable HTTP transport -------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_transport_serves_the_same_tools(db_path, run):
    import socket
    import time

    port = _free_port()
    command = gemini_flow_command()
    server = subprocess.Popen([*command, "--db", str(db_path), "mcp", "serve", "--http", f"127.0.0.1:{port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.communicate()
                time.sleep(0.1)

        async def main():
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                stored = await client.call_tool("memory_store", {"key": "over-http", "value": [1]})
                missing = await client.call_tool("memory_retrieve", {"key": "nope"})
                return stored, missing

        stored, missing = anyio.run(main)
        assert not stored.is_error and json.loads(stored.content[0].text)["version"] == 1
        assert missing.is_error and json.loads(missing.content[0].text)["error"]["code"] == "NOT_FOUND"
        assert json.loads(run("memory", "retrieve", "over-http").stdout) == [1]
    finally:
        server.terminate()
        server.communicate(timeout=30)


@pytest.mark.parametrize("address", ["0.0.0.0:8766", "192.168.1.5:80", "example.com:80", "127.0.0.1", "127.0.0.1:x",
                                     "127.0.0.1:70000"])
def test_http_listens_on_a_loopback_address_only(cli, address):
    result = cli("mcp", "serve", "--http", address)
    assert result.exit_code == 2 and result.error["code"] == "INVALID_INPUT"


def test_the_server_keeps_one_idle_connection_that_holds_back_no_checkpoint(db_path):
    import sqlite3

    from gemini_flow_cli.mcp import tools
    from gemini_flow_cli.mcp.server import Anchor

    anchor, scope = Anchor(), Scope(db_path=db_path)
    try:
        for value in (1, 2):
            tools.call(scope, "memory_store", {"key": "k", "value": value}, opened=anchor)
        # the WAL survives the call's close (no checkpoint-and-delete per call) ...
        assert db_path.with_name("hive.db-wal").exists()
        # ... and a full checkpoint by anyone else still succeeds: the anchor holds no snapshot
        with sqlite3.connect(db_path) as other:
            assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    finally:
        anchor.close()


HOSTILE = {
    "integer": [2**63, -(2**63) - 1, 10**30],
    "number": [2**63, 1e308, -1e308],
    "string": ["\x00x", "x" * 100_000, "\ud800", "*" * 60_000, "[" * 5000],
    "array": [["t"] * 5000, ["x" * 100_000]],
}


def _sample(schema: dict):
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if "enum" in schema:
        return schema["enum"][0]
    return {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}.get(kind, "k")


@pytest.mark.parametrize("tool", list(TOOLS.values()) if isinstance(TOOLS, dict) else TOOLS, ids=lambda t: t.name)
def test_no_argument_value_makes_a_tool_fail_as_a_bug(scope, cli, tool):
    """Every argument of every tool, given values at and past the limits: a result or a tool
    error with our code, never INTERNAL (found by trying: a `since` past 2**63 was one)."""
    schema = tool.input_schema(scope)
    base = {name: _sample(schema["properties"][name]) for name in schema.get("required", ())}
    requests = []
    for name, prop in schema["properties"].items():
        kinds = prop.get("type", "string")
        for kind in [kinds] if isinstance(kinds, str) else kinds:
            for value in HOSTILE.get(kind, []):
                requests.append((tool.name, {**base, name: value}))
            if kind == "array":
                for value in HOSTILE["string"][:3]:
                    requests.append((tool.name, {**base, name: [value]}))
    for (name, arguments), (is_error, body) in zip(requests, calls(scope, *requests)):
        if is_error:
            assert body["error"]["code"] != "INTERNAL", (name, {k: str(v)[:40] for k, v in arguments.items()}, body)


def test_full_text_search_with_a_nul_is_invalid_input(scope, cli):
    assert cli("memory", "store", "k", "v").exit_code == 0
    assert cli("memory", "fts", "enable").exit_code == 0
    assert error(scope, "memory_search", {"text": "\x00x"})["code"] == "INVALID_INPUT"
    assert error(scope, "memory_changes", {"since": 2**63})["code"] == "INVALID_INPUT"
