"""core/arguments.py: the one argument check of the HTTP and MCP doors (issue 14).

The same bad input gets the same error code through either door: a table of requests, each sent
as an HTTP request (Starlette's test client, in-process) and as the matching MCP tool call. And
every schema either door publishes uses only the keywords the check implements.
"""

from __future__ import annotations

import json

import pytest

from gemini_flow_cli.core import arguments
from gemini_flow_cli.errors import GeminiFlowError

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from gemini_flow_cli.mcp import tools  # noqa: E402
from gemini_flow_cli.server.app import create_app  # noqa: E402
from gemini_flow_cli.server.operations import OPERATIONS, body_schema  # noqa: E402

DEEP = json.loads("[" * 300 + "]" * 300)

# (what, HTTP method, path, query or body, MCP tool, arguments, the code both must answer)
TABLE = [
    ("key not a string", "POST", "/memory/store", {"key": 5, "value": 1},
     "memory_store", {"key": 5, "value": 1}, "INVALID_INPUT"),
    ("key missing", "POST", "/memory/store", {"value": 1}, "memory_store", {"value": 1}, "INVALID_INPUT"),
    ("key null", "POST", "/memory/store", {"key": None, "value": 1},
     "memory_store", {"key": None, "value": 1}, "INVALID_INPUT"),
    ("an unknown field", "POST", "/memory/store", {"key": "k", "value": 1, "colour": "red"},
     "memory_store", {"key": "k", "value": 1, "colour": "red"}, "INVALID_INPUT"),
    ("a number for a boolean", "POST", "/memory/store", {"key": "k", "value": 1, "ifAbsent": 1},
     "memory_store", {"key": "k", "value": 1, "if_absent": 1}, "INVALID_INPUT"),
    ("a negative version", "POST", "/memory/store", {"key": "k", "value": 1, "ifVersion": -1},
     "memory_store", {"key": "k", "value": 1, "if_version": -1}, "INVALID_INPUT"),
    ("a version beyond 64 bits", "POST", "/memory/store", {"key": "k", "value": 1, "ifVersion": 2**64},
     "memory_store", {"key": "k", "value": 1, "if_version": 2**64}, "INVALID_INPUT"),
    ("a fractional version", "POST", "/memory/store", {"key": "k", "value": 1, "ifVersion": 1.5},
     "memory_store", {"key": "k", "value": 1, "if_version": 1.5}, "INVALID_INPUT"),
    ("tags not a list", "POST", "/memory/store", {"key": "k", "value": 1, "tags": "a"},
     "memory_store", {"key": "k", "value": 1, "tags": "a"}, "INVALID_INPUT"),
    ("a tag not a string", "POST", "/memory/store", {"key": "k", "value": 1, "tags": [1]},
     "memory_store", {"key": "k", "value": 1, "tags": [1]}, "INVALID_INPUT"),
    ("a lone surrogate in the value", "POST", "/memory/store", {"key": "k", "value": "\ud800"},
     "memory_store", {"key": "k", "value": "\ud800"}, "INVALID_INPUT"),
    ("a value nested too deep", "POST", "/memory/store", {"key": "k", "value": DEEP},
     "memory_store", {"key": "k", "value": DEEP}, "INVALID_INPUT"),
    ("a control character in the key", "POST", "/memory/store", {"key": "a\x1bb", "value": 1},
     "memory_store", {"key": "a\x1bb", "value": 1}, "INVALID_KEY"),
    ("a namespace with a slash", "GET", "/memory/retrieve", {"key": "k", "namespace": "bad/ns"},
     "memory_retrieve", {"key": "k", "namespace": "bad/ns"}, "INVALID_INPUT"),
    ("a limit out of range", "GET", "/memory/search", {"limit": 10**6},
     "memory_search", {"limit": 10**6}, "INVALID_INPUT"),
    ("a negative offset", "GET", "/memory/search", {"offset": -1},
     "memory_search", {"offset": -1}, "INVALID_INPUT"),
    ("a sort order not in the enum", "GET", "/memory/search", {"sortOrder": "up"},
     "memory_search", {"sort_order": "up"}, "INVALID_INPUT"),
    ("a vote not in the enum", "POST", "/consensus/d-1/vote", {"agent": "a", "vote": "maybe"},
     "consensus_vote", {"decision_id": "d-1", "agent": "a", "vote": "maybe"}, "INVALID_INPUT"),
    ("a confidence above 1", "POST", "/consensus/d-1/vote", {"agent": "a", "vote": "approve", "confidence": 2},
     "consensus_vote", {"decision_id": "d-1", "agent": "a", "vote": "approve", "confidence": 2}, "INVALID_INPUT"),
    ("arguments not an object", "POST", "/memory/store", [1, 2], "memory_store", [1, 2], "INVALID_INPUT"),
    ("a missing key", "GET", "/memory/retrieve", {"key": "absent"},
     "memory_retrieve", {"key": "absent"}, "NOT_FOUND"),
]


@pytest.fixture(scope="module")
def doors(tmp_path_factory):
    from gemini_flow_cli.core.invocation import Invocation

    folder = tmp_path_factory.mktemp("doors")
    db_path = folder / ".hive-mind" / "hive.db"
    invocation = Invocation(db_path)
    invocation.memory("default", db=invocation.open_db(create=True)).store("seed", 1)
    db = invocation.open_db(create=True)
    from gemini_flow_cli.core import apikeys

    token = apikeys.create(db, "both-doors", role="admin")["token"]
    invocation.finish()
    with TestClient(create_app(db_path), base_url="http://127.0.0.1") as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, tools.Scope(db_path=db_path)


def http_code(client, method: str, path: str, data) -> str:
    if method == "GET":
        response = client.get(f"/api/v1{path}", params=data)
    else:
        content = json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")
        response = client.post(f"/api/v1{path}", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code != 500, response.text
    return response.json()["error"]["code"]


def mcp_code(scope, name: str, data) -> str:
    with pytest.raises(GeminiFlowError) as caught:
        tools.call(scope, name, data)
    return caught.value.code


@pytest.mark.parametrize("what, method, path, http_data, tool, mcp_data, code", TABLE, ids=[row[0] for row in TABLE])
def test_both_doors_refuse_the_same_input_with_the_same_code(doors, what, method, path, http_data, tool, mcp_data, code):
    client, scope = doors
    assert (http_code(client, method, path, http_data), mcp_code(scope, tool, mcp_data)) == (code, code)


def _schemas(schema, where):
    """Every schema inside ``schema`` (itself included), with where it is."""
    yield schema, where
    for name, child in schema.get("properties", {}).items():
        yield from _schemas(child, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _schemas(schema["items"], f"{where}[]")


def _published_schemas():
    for op in OPERATIONS:
        for p in op.params:
            if p.where != "body":
                yield p.schema, f"{op.method} {op.path} {p.name}"
        yield body_schema(op), f"{op.method} {op.path} body"
    scopes = (tools.Scope(), tools.Scope(agent="agent-1"))
    for scope in scopes:
        for tool in tools.TOOLS.values():
            yield tool.input_schema(scope), f"tool {tool.name}"


def test_every_published_schema_uses_only_keywords_the_check_implements():
    for top, where in _published_schemas():
        for schema, place in _schemas(top, where):
            assert set(schema) <= arguments.KEYWORDS, (place, set(schema) - arguments.KEYWORDS)
            types = schema.get("type", [])
            assert set([types] if isinstance(types, str) else types) <= set(arguments._TYPES), place


@pytest.mark.parametrize("value, schema, message", [
    (5, {"type": "string"}, "invalid x: expected string, got 5"),
    (True, {"type": "integer"}, "invalid x: expected integer, got true"),
    (1, {"enum": [True, False]}, "invalid x: use one of True, False"),
    (float("inf"), {"type": "number"}, "invalid x: not a finite number"),
    (2**63, {"type": "integer"}, "invalid x: out of range (a 64-bit integer)"),
    (0, {"type": "number", "exclusiveMinimum": 0}, "invalid x: more than 0"),
    (1, {"type": "number", "exclusiveMaximum": 1}, "invalid x: less than 1"),
    ("", {"type": "string", "minLength": 1}, "invalid x: at least 1 characters"),
    ("a/b", {"type": "string", "pattern": "^[a-z]+$"}, "invalid x: does not match ^[a-z]+$"),
    ([1, 2], {"type": "array", "maxItems": 1}, "invalid x: at most 1 items"),
    (["a", 2], {"type": "array", "items": {"type": "string"}}, "invalid x[1]: expected string, got 2"),
    (2, {"const": 1}, "invalid x: must be 1"),
])
def test_each_keyword_refuses_with_a_message_naming_the_field(value, schema, message):
    with pytest.raises(GeminiFlowError) as caught:
        arguments.check_value(value, schema, "x", noun="field")
    named = message.split(":")[0].removeprefix("invalid ")
    assert (caught.value.code, caught.value.message, caught.value.details) == ("INVALID_INPUT", message, {"field": named})


def test_nulls_stand_for_absent_except_where_any_value_is_welcome():
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {}, "c": {"type": ["string", "null"]}}}
    assert arguments.check_object({"a": None, "b": None, "c": None}, schema) == {"b": None, "c": None}
