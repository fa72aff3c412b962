"""`gemini-flow serve` (issue 14, CLI.md §9): a real server process on 127.0.0.1, reached with httpx.

The seed's request and response shapes, authentication (401) and authorization (403: role,
namespace, agent), the audit actor, TLS with a certificate made here, 16 concurrent clients, the
refusals of an unsafe --host, and a graceful SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from commandtree import EXAMPLE_SKIPS  # noqa: E402
from serverprocess import GEMINI_FLOW, ServerProcess, cli, create_key, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("GEMINI_FLOW_")}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One server over a database with an agent, a swarm and one key of each kind."""
    folder = tmp_path_factory.mktemp("served")
    db = folder / ".hive-mind" / "hive.db"
    env = {"HOME": str(folder), "XDG_CONFIG_HOME": str(folder / "config")}
    swarm = json.loads(cli(db, "swarm", "init", "--topology", "mesh", env=env).stdout)["id"]
    agents = [json.loads(cli(db, "agent", "spawn", "--type", "coder", "--capability", "python", "--swarm", swarm,
                             env=env).stdout)["id"] for _ in range(3)]
    tokens = {
        "admin": create_key(db, "root-admin", "--role", "admin"),
        "writer": create_key(db, "ci-writer", "--role", "writer"),
        "reader": create_key(db, "dash-reader", "--role", "reader"),
        "scoped": create_key(db, "team-writer", "--role", "writer", "-n", "team", "-n", "shared"),
        "bound": create_key(db, "agent-key", "--role", "writer", "--agent", agents[0]),
    }
    server = ServerProcess(db, env={**CLEAN_ENV, **env}).start()
    client = httpx.Client(base_url=server.url, timeout=30)
    yield {"db": db, "env": env, "server": server, "client": client, "tokens": tokens, "swarm": swarm,
           "agents": agents}
    client.close()
    server.stop()


def call(world, method: str, path: str, who: str | None = "admin", **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {world['tokens'][who]}"} if who else {}
    return world["client"].request(method, f"/api/v1{path}", headers=headers, **kwargs)


def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    return body["error"]


# -- the seed's shapes ------------------------------------------------------------------------------


def test_store_retrieve_search_and_batch_have_the_seeds_shapes(world):
    stored = ok(call(world, "POST", "/memory/store", json={
        "key": "user-preferences", "value": {"theme": "dark", "language": "en"}, "namespace": "default",
        "ttl": 3600, "tags": ["user", "preferences"], "encrypted": False}))
    assert {"success", "key", "namespace", "id", "expiresAt", "size"} <= set(stored)
    assert stored["success"] is True and stored["expiresAt"].endswith("Z")
    got = ok(call(world, "GET", "/memory/retrieve", params={"key": "user-preferences", "namespace": "default"}))
    assert got["value"] == {"theme": "dark", "language": "en"}
    assert {"createdAt", "accessCount", "size", "tags"} <= set(got["metadata"])
    assert got["metadata"]["tags"] == ["user", "preferences"]
    found = ok(call(world, "GET", "/memory/search", params={"pattern": "user*", "namespace": "default", "limit": 10}))
    assert found["total"] == 1 and found["limit"] == 10 and "executionTime" in found
    assert {"key", "value", "namespace", "score", "metadata"} <= set(found["results"][0])
    batch = ok(call(world, "POST", "/memory/batch", json={"operations": [
        {"action": "store", "key": "session-1-data", "value": {"step": 1, "progress": 25}, "namespace": "sessions"},
        {"action": "retrieve", "key": "user-preferences", "namespace": "default"},
        {"action": "delete", "key": "temp-cache-123", "namespace": "cache"},
    ]}))
    assert (batch["total"], batch["succeeded"], batch["failed"]) == (3, 2, 1)
    # The CLI reads exactly what the server wrote.
    assert json.loads(cli(world["db"], "memory", "retrieve", "session-1-data", "-n", "sessions", env=world["env"]).stdout)[
        "value"] == {"step": 1, "progress": 25}


def test_reads_count_their_accesses_together(world):
    ok(call(world, "POST", "/memory/store", json={"key": "popular", "value": 1, "namespace": "counted"}))
    for _ in range(5):
        ok(call(world, "GET", "/memory/retrieve", params={"key": "popular", "namespace": "counted"}))
    ok(call(world, "POST", "/memory/batch", json={"operations": [{"action": "retrieve", "key": "popular",
                                                                    "namespace": "counted"}]}))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        count = sqlite3.connect(world["db"]).execute(
            "SELECT access_count FROM memory_store WHERE key = 'popular'").fetchone()[0]
        if count == 6:
            break
        time.sleep(0.1)
    assert count == 6, world["server"].stderr


def test_the_other_memory_operations(world):
    ok(call(world, "POST", "/memory/store", json={"key": "counter", "value": 1, "namespace": "ops"}))
    assert ok(call(world, "POST", "/memory/incr", json={"key": "counter", "by": 4, "namespace": "ops"}))["value"] == 5
    history = ok(call(world, "GET", "/memory/history", params={"key": "counter", "namespace": "ops"}))
    assert [v["version"] for v in history["versions"]][-1] == 2
    assert any(n["namespace"] == "ops" for n in ok(call(world, "GET", "/memory/namespaces"))["namespaces"])
    assert ok(call(world, "GET", "/memory/stats", params={"namespace": "ops"}))["totalKeys"] == 1
    assert ok(call(world, "GET", "/memory/list", params={"namespace": "ops"}))["total"] == 1
    deleted = ok(call(world, "POST", "/memory/delete", json={"keys": ["counter", "nope"], "namespace": "ops"}))
    assert (deleted["deleted"], deleted["missing"]) == (["counter"], ["nope"])
    error(call(world, "POST", "/memory/delete", json={"keys": ["counter"], "namespace": "ops"}), 404, "NOT_FOUND")
    error(call(world, "GET", "/memory/retrieve", params={"key": "counter", "namespace": "ops"}), 404, "NOT_FOUND")
    ok(call(world, "POST", "/memory/store", json={"key": "once", "value": 1, "namespace": "ops"}))
    conflict = error(call(world, "POST", "/memory/store", json={"key": "once", "value": 2, "namespace": "ops",
                                                                  "ifVersion": 7}), 409, "CONFLICT")
    assert conflict["details"]["version"] == 1
    assert ok(call(world, "POST", "/memory/clear", json={"namespace": "ops"}))["success"] is True


def test_agents_swarms_tasks_and_consensus_have_the_seeds_shapes(world):
    registry = ok(call(world, "GET", "/agents"))
    assert {"agents", "total", "active", "performance"} <= set(registry)
    assert {"id", "name", "type", "status", "capabilities", "createdAt", "lastActivity", "performanceScore",
            "resourceUsage"} <= set(registry["agents"][0])
    agent = world["agents"][1]
    metrics = ok(call(world, "GET", f"/agents/{agent}/metrics", params={"timeRange": "24h"}))
    assert metrics["agentId"] == agent and metrics["timeRange"] == "24h"
    assert {"performance", "resources", "activity"} <= set(metrics["metrics"])
    status = ok(call(world, "GET", f"/swarms/{world['swarm']}/status"))
    assert status["swarmId"] == world["swarm"] and {"topology", "status", "agents", "tasks", "performance"} <= set(status)
    task = ok(call(world, "POST", "/tasks/orchestrate", json={
        "description": "Implement user authentication system", "priority": "high", "strategy": "parallel",
        "maxAgents": 2, "dependencies": [], "estimatedDuration": 7200, "swarmId": world["swarm"],
        "subtasks": ["Design authentication schema", "Implement login component"],
        "context": {"project": "web-app", "framework": "react", "database": "postgresql"}}), 201)
    assert {"taskId", "status", "assignedAgents", "estimatedCompletion", "subtasks"} <= set(task)
    assert len(task["subtasks"]) == 2 and {"id", "description", "agent", "status"} <= set(task["subtasks"][0])
    assert ok(call(world, "GET", f"/tasks/{task['taskId']}"))["id"] == task["taskId"]
    decision = ok(call(world, "POST", "/consensus/request", json={
        "swarmId": world["swarm"], "proposal": "Deploy microservices to production", "type": "majority",
        "timeout": 3_600_000, "metadata": {"deployment": "v1.0.4", "environment": "production"}}), 201)
    assert {"decisionId", "proposal", "decision", "confidence", "participants", "duration", "votingData"} <= set(decision)
    voted = ok(call(world, "POST", f"/consensus/{decision['decisionId']}/vote",
                    json={"agent": world["agents"][1], "vote": "approve", "confidence": 0.9}))
    assert voted["votingData"]["approve"] == 1
    assert ok(call(world, "GET", "/consensus", params={"swarm": world["swarm"]}))["total"] >= 1
    error(call(world, "GET", "/agents/agent-missing"), 404, "NOT_FOUND")


def test_health_and_the_openapi_document_need_no_token(world):
    health = ok(call(world, "GET", "/health", who=None))
    assert health["healthy"] is True and health["status"] == "healthy"
    spec = world["client"].get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/memory/store", "/api/v1/memory/retrieve", "/api/v1/memory/search", "/api/v1/memory/batch",
                 "/api/v1/agents", "/api/v1/agents/{agentId}/metrics", "/api/v1/swarms/{swarmId}/status",
                 "/api/v1/tasks/orchestrate", "/api/v1/consensus/request", "/api/v1/health"):
        assert path in spec["paths"], path


def test_bad_requests_are_400_and_unknown_paths_404_never_500(world):
    error(call(world, "POST", "/memory/store", content=b"{not json"), 400, "INVALID_INPUT")
    error(call(world, "POST", "/memory/store", content=b"\xff\xfe"), 400, "INVALID_INPUT")
    error(call(world, "POST", "/memory/store", json=[1, 2]), 400, "INVALID_INPUT")
    error(call(world, "POST", "/memory/store", json={"key": "k"}), 400, "INVALID_INPUT")  # no value
    error(call(world, "POST", "/memory/store", json={"key": "k", "value": 1, "colour": "red"}), 400, "INVALID_INPUT")
    error(call(world, "POST", "/memory/store", json={"key": 5, "value": 1}), 400, "INVALID_INPUT")
    error(call(world, "POST", "/memory/store", json={"key": "a\x1bb", "value": 1}), 400, "INVALID_KEY")
    error(call(world, "POST", "/memory/store", content=b'{"key": "k", "value": "\\ud800"}'), 400, "INVALID_INPUT")
    error(call(world, "POST", "/memory/store", content=b'{"key": "k", "value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
          400, "INVALID_INPUT")
    error(call(world, "GET", "/memory/search", params={"limit": "many"}), 400, "INVALID_INPUT")
    error(call(world, "GET", "/nowhere"), 404, "NOT_FOUND")
    assert call(world, "DELETE", "/memory/store").status_code == 405


def _raw(world, request: bytes, *, chunks: int = 0, timeout: float = 10) -> bytes:
    """``request`` sent on a socket of its own (then ``chunks`` MiB more of the same header line
    and the head's end), and what came back until the server closed or went quiet."""
    import socket

    with socket.create_connection(("127.0.0.1", world["server"].port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
            for _ in range(chunks):
                sock.sendall(b"a" * (1 << 20))
            if chunks:
                sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # refused while sending: what came back says why
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
        return answer


def test_a_request_head_beyond_64_kib_is_refused_and_the_server_goes_on(world):
    answer = _raw(world, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ", chunks=16)
    assert b" 200 " not in answer.split(b"\r\n", 1)[0]  # 431 or the connection closed, never served
    assert answer == b"" or answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:100]
    # A large body behind a small head is not a large head.
    big = {"key": "big-body", "value": "x" * 300_000, "namespace": "hostile"}
    assert ok(call(world, "POST", "/memory/store", json=big))["size"] > 300_000
    ok(call(world, "GET", "/health", who=None))


def test_a_declared_body_beyond_the_limit_is_refused_before_it_is_sent(world):
    token = world["tokens"]["writer"].encode()
    started = time.monotonic()
    answer = _raw(world, b"POST /api/v1/memory/store HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
                  + b"\r\nContent-Type: application/json\r\nContent-Length: 999999999999\r\n\r\n{", timeout=20)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"VALUE_TOO_LARGE" in answer and time.monotonic() - started < 15


def test_a_client_gone_mid_body_leaves_no_traceback(world):
    import socket

    token = world["tokens"]["writer"].encode()
    with socket.create_connection(("127.0.0.1", world["server"].port)) as sock:
        sock.sendall(b"POST /api/v1/memory/store HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
                     + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"key\": ")
        time.sleep(0.5)
    time.sleep(0.5)
    ok(call(world, "GET", "/health", who=None))
    assert "Traceback" not in world["server"].stderr and "ClientDisconnect" not in world["server"].stderr


def test_an_unknown_query_parameter_is_400_not_ignored(world):
    # A misspelt parameter would otherwise read the default namespace without a word.
    refused = error(call(world, "GET", "/memory/retrieve", params={"key": "k", "namespcae": "team"}), 400,
                    "INVALID_INPUT")
    assert "namespcae" in refused["message"]
    error(call(world, "GET", "/memory/retrieve", params={}), 400, "INVALID_INPUT")


# -- authentication and authorization ----------------------------------------------------------------------


def test_no_token_or_a_wrong_one_is_401_and_logged_without_the_token(world):
    response = call(world, "GET", "/memory/list", who=None)
    error(response, 401, "PERMISSION_DENIED")
    assert response.headers["www-authenticate"].startswith("Bearer")
    wrong = "gf_" + "A" * 43
    error(world["client"].get("/api/v1/memory/list", headers={"Authorization": f"Bearer {wrong}"}), 401,
          "PERMISSION_DENIED")
    error(world["client"].get("/api/v1/memory/list", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401,
          "PERMISSION_DENIED")
    log = world["server"].stderr
    assert "authentication failed (missing)" in log and "authentication failed (invalid)" in log
    assert wrong not in log and "AAAAAAAAAA" not in log
    for token in world["tokens"].values():
        assert token not in log


def test_a_reader_reads_but_cannot_write(world):
    ok(call(world, "POST", "/memory/store", json={"key": "shared-fact", "value": 42, "namespace": "facts"}))
    assert ok(call(world, "GET", "/memory/retrieve", who="reader", params={"key": "shared-fact", "namespace": "facts"}))["value"] == 42
    error(call(world, "POST", "/memory/store", who="reader", json={"key": "x", "value": 1}), 403, "PERMISSION_DENIED")
    error(call(world, "POST", "/memory/batch", who="reader", json={"operations": [{"action": "delete", "key": "shared-fact"}]}),
          403, "PERMISSION_DENIED")
    # A batch of reads is a read.
    assert ok(call(world, "POST", "/memory/batch", who="reader", json={"operations": [
        {"action": "retrieve", "key": "shared-fact", "namespace": "facts"}]}))["succeeded"] == 1
    error(call(world, "GET", "/memory/retrieve", who="reader", params={"key": "shared-fact", "namespace": "facts",
                                                                          "touch": "true"}), 403, "PERMISSION_DENIED")
    error(call(world, "POST", "/memory/clear", who="writer", json={"namespace": "facts"}), 403, "PERMISSION_DENIED")


def test_a_namespace_scoped_key_sees_and_writes_only_its_namespaces(world):
    ok(call(world, "POST", "/memory/store", json={"key": "secret-plan", "value": 1, "namespace": "board"}))
    ok(call(world, "POST", "/memory/store", who="scoped", json={"key": "team-note", "value": 2, "namespace": "team"}))
    error(call(world, "POST", "/memory/store", who="scoped", json={"key": "x", "value": 1, "namespace": "board"}),
          403, "PERMISSION_DENIED")
    error(call(world, "POST", "/memory/store", who="scoped", json={"key": "x", "value": 1}), 403, "PERMISSION_DENIED")
    error(call(world, "GET", "/memory/retrieve", who="scoped", params={"key": "secret-plan", "namespace": "board"}),
          403, "PERMISSION_DENIED")
    listed = ok(call(world, "GET", "/memory/list", who="scoped"))
    assert {r["namespace"] for r in listed["results"]} <= {"team", "shared"} and listed["total"] >= 1
    found = ok(call(world, "GET", "/memory/search", who="scoped", params={"pattern": "*-plan"}))
    assert found["total"] == 0
    assert {n["namespace"] for n in ok(call(world, "GET", "/memory/namespaces", who="scoped"))["namespaces"]} <= {"team", "shared"}
    error(call(world, "GET", "/memory/stats", who="scoped"), 403, "PERMISSION_DENIED")
    error(call(world, "POST", "/memory/batch", who="scoped", json={"operations": [
        {"action": "retrieve", "key": "secret-plan", "namespace": "board"}]}), 403, "PERMISSION_DENIED")


def test_an_agent_bound_key_votes_claims_and_heartbeats_only_as_its_agent(world):
    mine, other = world["agents"][0], world["agents"][2]
    decision = ok(call(world, "POST", "/consensus/request", json={
        "swarmId": world["swarm"], "proposal": "bound", "type": "majority", "timeout": 3_600_000}), 201)["decisionId"]
    error(call(world, "POST", f"/consensus/{decision}/vote", who="bound", json={"agent": other, "vote": "approve"}),
          403, "PERMISSION_DENIED")
    voted = ok(call(world, "POST", f"/consensus/{decision}/vote", who="bound", json={"vote": "reject"}))
    assert any(d["agent"] == mine for d in voted["votingData"]["details"])
    error(call(world, "POST", "/tasks/claim", who="bound", json={"agent": other}), 403, "PERMISSION_DENIED")
    ok(call(world, "POST", "/tasks/orchestrate", json={"description": "for the bound agent", "priority": "critical",
                                                        "swarmId": world["swarm"]}), 201)
    claimed = ok(call(world, "POST", "/tasks/claim", who="bound", json={"lease": 60}))
    assert claimed["agentId"] == mine or mine in json.dumps(claimed)
    task = claimed.get("taskId") or claimed["id"]
    error(call(world, "POST", f"/tasks/{task}/heartbeat", who="bound", json={"agent": other}), 403, "PERMISSION_DENIED")
    ok(call(world, "POST", f"/tasks/{task}/heartbeat", who="bound", json={}))
    error(call(world, "POST", f"/agents/{other}/heartbeat", who="bound", json={}), 403, "PERMISSION_DENIED")
    # Every write is audited with the key's name as actor.
    rows = sqlite3.connect(world["db"]).execute(
        "SELECT DISTINCT actor_id FROM audit_log WHERE entity_type = 'consensus' OR entity_type = 'task'").fetchall()
    assert ("agent-key",) in rows


def test_every_authenticated_write_is_audited_with_the_keys_name(world):
    ok(call(world, "POST", "/memory/store", who="writer", json={"key": "audited", "value": 1, "namespace": "audit"}))
    rows = sqlite3.connect(world["db"]).execute(
        "SELECT actor_id FROM audit_log WHERE entity_type = 'memory' AND entity_id LIKE '%audited%'").fetchall()
    assert rows == [("ci-writer",)]


def test_keys_are_stored_hashed_expire_and_revoke_at_once(world):
    db = world["db"]
    token = create_key(db, "short-lived", "--role", "reader", "--expires", "1s")
    stored = db.read_bytes() + (db.with_name(db.name + "-wal").read_bytes() if db.with_name(db.name + "-wal").exists() else b"")
    assert token.encode() not in stored
    assert len(token) == 46 and token.startswith("gf_")  # 256 bits in URL-safe base64
    listed = json.loads(cli(db, "apikey", "list").stdout)
    assert "token" not in json.dumps(listed) or all("token" not in k for k in listed["keys"])
    time.sleep(1.2)
    expired = error(world["client"].get("/api/v1/memory/list", headers={"Authorization": f"Bearer {token}"}), 401,
                    "PERMISSION_DENIED")
    assert expired["details"]["reason"] == "expired"
    token = create_key(db, "revoked-soon", "--role", "reader")
    assert world["client"].get("/api/v1/memory/list", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    cli(db, "apikey", "revoke", "revoked-soon")
    error(world["client"].get("/api/v1/memory/list", headers={"Authorization": f"Bearer {token}"}), 401, "PERMISSION_DENIED")


# -- hooks (CLI.md §9: administered only by admin keys over HTTP) -------------------------------------------


def test_an_admin_key_administers_hooks_that_run_after_the_servers_writes(world, tmp_path):
    fired = tmp_path / "fired.jsonl"
    added = ok(call(world, "POST", "/hooks", json={
        "event": "memory.store", "run": f"sh -c 'cat >> {fired}'", "priority": 5,
        "condition": 'namespace == "hooked"', "timeout": 10}), 201)
    hook = added["id"]
    assert (added["event"], added["enabled"], added["trusted"], added["addedBy"]) == ("memory.store", True, True,
                                                                                       "root-admin")
    assert any(h["id"] == hook for h in ok(call(world, "GET", "/hooks", params={"event": "memory.store"}))["hooks"])
    ok(call(world, "POST", "/memory/store", json={"key": "a", "value": 1, "namespace": "hooked"}))
    ok(call(world, "POST", "/memory/store", json={"key": "b", "value": 1, "namespace": "not-hooked"}))
    assert [json.loads(line)["key"] for line in fired.read_text().splitlines()] == ["a"]
    shown = ok(call(world, "GET", f"/hooks/{hook}"))
    assert (shown["executionCount"], shown["lastRun"]["status"]) == (1, "ok")
    # The CLI of the same user sees the hook as its own (signed with the same hooks key).
    listed = json.loads(cli(world["db"], "hooks", "list", env=world["env"]).stdout)["hooks"]
    assert [h["trusted"] for h in listed if h["id"] == hook] == [True]

    tried = ok(call(world, "POST", f"/hooks/{hook}/test", json={"event": {"key": "t", "namespace": "hooked"}}))
    assert (tried["ran"], tried["ok"], tried["input"]["key"]) == (True, True, "t")
    assert ok(call(world, "GET", f"/hooks/{hook}"))["executionCount"] == 1  # a test records nothing

    assert ok(call(world, "POST", f"/hooks/{hook}/disable"))["enabled"] is False
    ok(call(world, "POST", "/memory/store", json={"key": "c", "value": 1, "namespace": "hooked"}))
    assert ok(call(world, "POST", f"/hooks/{hook}/enable"))["enabled"] is True
    ok(call(world, "POST", "/memory/store", json={"key": "d", "value": 1, "namespace": "hooked"}))
    assert [json.loads(line)["key"] for line in fired.read_text().splitlines()] == ["a", "t", "d"]
    assert ok(call(world, "POST", f"/hooks/{hook}/remove")) == {"success": True, "id": hook}
    error(call(world, "GET", f"/hooks/{hook}"), 404, "NOT_FOUND")
    error(call(world, "POST", f"/hooks/{hook}/remove"), 404, "NOT_FOUND")
    actions = [r[0] for r in sqlite3.connect(world["db"]).execute(
        "SELECT action FROM audit_log WHERE entity_type = 'hook' AND entity_id = ? AND actor_id = 'root-admin' "
        "ORDER BY id", (str(hook),))]
    assert actions == ["add", "disable", "enable", "remove"]


def test_hooks_refuse_bad_input_with_400(world):
    error(call(world, "POST", "/hooks", json={"event": "memory.nope", "run": "true"}), 400, "INVALID_INPUT")
    error(call(world, "POST", "/hooks", json={"event": "memory.store", "run": "'unclosed"}), 400, "INVALID_INPUT")
    error(call(world, "POST", "/hooks", json={"event": "memory.store", "run": "true", "condition": "key ~"}), 400,
          "INVALID_INPUT")
    error(call(world, "POST", "/hooks", json={"event": "memory.store", "run": "true", "timeout": 0}), 400,
          "INVALID_INPUT")
    error(call(world, "GET", "/hooks/abc"), 400, "INVALID_INPUT")
    error(call(world, "GET", "/hooks/0"), 400, "INVALID_INPUT")
    error(call(world, "GET", "/hooks", params={"event": "nope"}), 400, "INVALID_INPUT")


@pytest.mark.parametrize("method, path", [
    ("GET", "/hooks"), ("POST", "/hooks"), ("GET", "/hooks/1"), ("POST", "/hooks/1/enable"),
    ("POST", "/hooks/1/disable"), ("POST", "/hooks/1/remove"), ("POST", "/hooks/1/test"),
])
def test_hooks_are_for_admin_keys_only(world, method, path):
    body = {"event": "memory.store", "run": "true"} if (method, path) == ("POST", "/hooks") else None
    kwargs = {"json": body} if method == "POST" else {}
    error(call(world, method, path, who=None, **kwargs), 401, "PERMISSION_DENIED")
    for who in ("reader", "writer", "scoped", "bound"):
        error(call(world, method, path, who=who, **kwargs), 403, "PERMISSION_DENIED")
    if "scoped-admin" not in world["tokens"]:
        world["tokens"]["scoped-admin"] = create_key(world["db"], "team-admin", "--role", "admin", "-n", "team")
    refused = error(call(world, method, path, who="scoped-admin", **kwargs), 403, "PERMISSION_DENIED")
    assert "spans every namespace" in refused["message"]


# -- concurrency --------------------------------------------------------------------------------------------


def test_sixteen_clients_a_hundred_mixed_requests_each_lose_nothing(world):
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {world['tokens']['writer']}"}

    def client(n: int) -> None:
        with httpx.Client(base_url=world["server"].url + "/api/v1", headers=headers, timeout=60) as http:
            for i in range(100):
                kind = i % 4
                if kind == 0:
                    r = http.post("/memory/store", json={"key": f"c{n}-{i}", "value": {"n": n, "i": i}, "namespace": "load"})
                elif kind == 1:
                    r = http.get("/memory/retrieve", params={"key": f"c{n}-{i - 1}", "namespace": "load"})
                    if r.status_code == 200 and r.json()["value"] != {"n": n, "i": i - 1}:
                        failures.append(f"wrong value {r.text}")
                elif kind == 2:
                    r = http.post("/memory/incr", json={"key": "hits", "namespace": "load"})
                else:
                    r = http.get("/memory/search", params={"pattern": f"c{n}-*", "namespace": "load", "limit": 1})
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert ok(call(world, "GET", "/memory/retrieve", params={"key": "hits", "namespace": "load"}))["value"] == 16 * 25
    assert ok(call(world, "GET", "/memory/list", params={"namespace": "load", "limit": 0}))["total"] == 16 * 25 + 1


# -- serve itself ---------------------------------------------------------------------------------------------


def _serve(db: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([*GEMINI_FLOW, "--db", str(db), "serve", *args], capture_output=True, text=True,
                          timeout=timeout, env=CLEAN_ENV)


def test_serve_refuses_a_network_address_without_tls_or_without_a_key(tmp_path):
    db = tmp_path / "hive.db"
    refused = _serve(db, "--host", "0.0.0.0", "--port", str(free_port()))
    assert refused.returncode == 2 and "without TLS" in refused.stderr
    cert, key = _self_signed(tmp_path)
    refused = _serve(db, "--host", "0.0.0.0", "--port", str(free_port()), "--certfile", str(cert), "--keyfile", str(key))
    assert refused.returncode == 2 and "no API key" in refused.stderr
    refused = _serve(db, "--certfile", str(cert))
    assert refused.returncode == 2 and "--keyfile" in refused.stderr


def test_serve_without_the_extra_names_the_install_command(cli, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` raises ImportError
    result = cli("serve")
    assert result.exit_code == 2
    assert "pip install '.[server]'" in result.error["message"]


def test_the_plain_cli_never_imports_the_server(tmp_path):
    code = ("import sys; from gemini_flow_cli.cli import main\n"
            "try:\n    main(['memory', 'list'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'anyio', 'httpx')"
            " or m.startswith('gemini_flow_cli.server')))")
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=CLEAN_ENV, cwd=tmp_path)
    assert result.stdout.strip().splitlines()[-1] == "[]", result


def _self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def test_tls_with_a_self_signed_certificate(tmp_path):
    import ssl

    db = tmp_path / ".hive-mind" / "hive.db"
    token = create_key(db, "tls-writer", "--role", "writer")
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    with ServerProcess(db, "--certfile", str(cert), "--keyfile", str(key), scheme="https", env=CLEAN_ENV,
                       verify=context) as server:
        with httpx.Client(base_url=server.url, verify=context, headers={"Authorization": f"Bearer {token}"}) as http:
            assert http.post("/api/v1/memory/store", json={"key": "over-tls", "value": "yes"}).status_code == 200
            assert http.get("/api/v1/memory/retrieve", params={"key": "over-tls"}).json()["value"] == "yes"
        with pytest.raises(httpx.TransportError):  # plain HTTP to a TLS port
            httpx.get(f"http://127.0.0.1:{server.port}/api/v1/health", timeout=5)
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate refuses it
            httpx.get(f"{server.url}/api/v1/health", timeout=5)


def test_sigterm_finishes_the_request_in_flight(tmp_path):
    import fcntl

    db = tmp_path / ".hive-mind" / "hive.db"
    token = create_key(db, "slow-writer", "--role", "writer")
    with ServerProcess(db, env=CLEAN_ENV) as server:
        # Hold the writers' queue (core/writelock.py) so that the next store waits inside the server.
        folder = os.open(db.parent, os.O_RDONLY)
        fcntl.flock(folder, fcntl.LOCK_EX)
        outcome = {}

        def store() -> None:
            outcome["response"] = httpx.post(f"{server.url}/api/v1/memory/store", json={"key": "in-flight", "value": 1},
                                             headers={"Authorization": f"Bearer {token}"}, timeout=30)

        thread = threading.Thread(target=store)
        thread.start()
        time.sleep(1.0)
        server.process.send_signal(15)
        time.sleep(0.5)
        assert server.process.poll() is None, "exited with a request in flight"
        fcntl.flock(folder, fcntl.LOCK_UN)
        os.close(folder)
        thread.join(30)
        assert outcome["response"].status_code == 200, outcome["response"].text
        server.process.wait(30)
    assert json.loads(cli(db, "memory", "retrieve", "in-flight").stdout)["value"] == 1


# -- the README's examples ------------------------------------------------------------------------------------


def test_the_readmes_http_examples_run_as_written(tmp_path):
    """The curl lines of README "HTTP API", against a server on the README's port's stand-in."""
    import shutil

    if not (shutil.which("curl") and shutil.which("bash") and shutil.which("jq")):
        pytest.skip("needs curl, bash and jq")
    text = (ROOT / "README.md").read_text()
    section = text.split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:sh|bash|shell)\n(.*?)```", section, re.S)
    skips = [piece for piece in EXAMPLE_SKIPS if piece != "curl "]
    lines = [line for block in blocks for line in block.splitlines()
             if line.strip() and not line.lstrip().startswith("#") and "gemini-flow serve" not in line
             and not any(piece in line for piece in skips)]
    assert any(line.startswith("curl") for line in lines)
    db = tmp_path / ".hive-mind" / "hive.db"
    # A home of its own: the hooks example makes a hooks key in the user's configuration folder.
    env = {**CLEAN_ENV, "GEMINI_FLOW_DB": str(db), "PATH": f"{Path(GEMINI_FLOW[0]).parent}:{os.environ['PATH']}",
           "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    cli(db, "swarm", "init", "--topology", "mesh")  # creates the database the server serves
    with ServerProcess(db, env=env, cwd=tmp_path) as server:
        script = "set -e -o pipefail\n" + "\n".join(
            line.replace("127.0.0.1:8765", f"127.0.0.1:{server.port}") for line in lines)
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result
    assert (tmp_path / "failures.jsonl").exists()  # the hook the example tested ran in the server's folder


@pytest.mark.parametrize("raised, status, code", [
    (OSError(28, "No space left on device", "/x/hive.db"), 503, "DISK_FULL"),
    (OSError(2, "No such file or directory", "/nope/file"), 400, "INVALID_INPUT"),
    (__import__("sqlite3").OperationalError("database or disk is full"), 503, "DISK_FULL"),
    (ValueError("secret-detail"), 500, "INTERNAL"),
])
def test_a_request_maps_any_exception_as_the_cli_does(tmp_path, raised, status, code):
    """One mapping for every door (errors.as_error): a full disk over HTTP is 503, not a 500."""
    from gemini_flow_cli.server.app import Server
    from gemini_flow_cli.server.operations import Operation

    def handler(call):
        raise raised

    op = Operation("GET", "/api/v1/x", "x", handler, public=True)
    got_status, document = Server(tmp_path / "hive.db").execute(op, None, {}, "127.0.0.1")
    assert (got_status, document["error"]["code"]) == (status, code)
    assert "secret-detail" not in document["error"]["message"]  # a bug's text goes to the log only
