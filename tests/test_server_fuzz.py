"""A schema-driven fuzz of the HTTP API (issue 14): schemathesis generates requests from the
server's own /openapi.json and sends them to a real `gemini-flow serve`; no answer may be a 500,
and every answer must be one the document declares, in the shape it declares.

Bounded (a few examples per operation) so it takes well under a minute; raise
GEMINI_FLOW_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("starlette")
schemathesis = pytest.importorskip("schemathesis")
httpx = pytest.importorskip("httpx")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks  # noqa: E402

from gemini_flow_cli.server.openapi import document  # noqa: E402
from serverprocess import ServerProcess, cli, create_key  # noqa: E402

EXAMPLES = int(os.environ.get("GEMINI_FLOW_FUZZ_EXAMPLES", "8"))
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("GEMINI_FLOW_")}

schema = schemathesis.openapi.from_dict(document())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzzed")
    db = folder / ".hive-mind" / "hive.db"
    swarm = json.loads(cli(db, "swarm", "init", "--topology", "mesh").stdout)["id"]
    cli(db, "agent", "spawn", "--type", "coder", "--swarm", swarm)
    token = create_key(db, "fuzzer", "--role", "admin")
    # The fuzzer holds an admin key, so it may add hooks: commands it made up, which must never
    # run. Its hooks key is a folder, which no hook can be signed with: every add is refused (400),
    # after its input has been checked as any other's.
    config = folder / "config"
    (config / "gemini-flow" / "hooks.key").mkdir(parents=True)
    with ServerProcess(db, env={**CLEAN_ENV, "HOME": str(folder), "XDG_CONFIG_HOME": str(config)}) as server:
        yield server, token


def test_the_fuzzer_can_add_no_hook(served):
    server, token = served
    response = httpx.post(f"{server.url}/api/v1/hooks", json={"event": "memory.store", "run": "true"},
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and "hooks key" in response.json()["error"]["message"]


def test_the_served_document_is_the_one_fuzzed(served):
    server, _ = served
    assert httpx.get(f"{server.url}/openapi.json").json() == json.loads(json.dumps(document()))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_no_request_makes_the_server_fail(case, served):
    server, token = served
    response = case.call(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    case.validate_response(response, checks=[checks.not_a_server_error, checks.status_code_conformance,
                                             checks.response_schema_conformance])
