"""The one check of a request's arguments against their JSON Schema, for every door that takes JSON.

The HTTP server (server/operations.py: each endpoint's query, path and body fields) and the MCP
server (mcp/tools.py: each tool's ``inputSchema``) describe their inputs in JSON Schema and both
refuse what their schemas refuse, before any core function runs, with INVALID_INPUT naming the
field. Both call this module, so the same bad input gets the same answer through either door.

A subset of JSON Schema (2020-12) is implemented: the keywords in :data:`KEYWORDS`, which are all
the doors' schemas use (tests/test_server_arguments.py holds every schema to it, so a keyword a schema
starts using cannot be silently ignored). Why not the ``jsonschema`` package, which the MCP SDK
brings in: the HTTP server must not need the ``[mcp]`` extra, ``jsonschema`` imports in tens of
milliseconds and validates in tens of microseconds where this takes a few, and its messages name
schema paths rather than the field and what it must be. Beyond the schema, a number must be one
SQLite stores as it is (a finite float, a 64-bit integer: CLI.md §9, a number out of range is bad
input, never an internal error).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from gemini_flow_cli.errors import GeminiFlowError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Validation keywords implemented here, and annotations (which validate nothing).
VALIDATION = frozenset({
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
    "maxLength", "pattern", "items", "minItems", "maxItems", "properties", "required", "additionalProperties",
})
ANNOTATIONS = frozenset({"description", "default", "title", "examples"})
KEYWORDS = VALIDATION | ANNOTATIONS

_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def check_value(value: Any, schema: dict[str, Any], name: str, *, noun: str = "argument") -> None:
    """``value`` against ``schema``; INVALID_INPUT ``invalid NAME: why`` with ``details[noun] =
    name`` on the first mismatch (items are named ``NAME[i]``)."""

    def refuse(why: str) -> None:
        raise GeminiFlowError("INVALID_INPUT", f"invalid {name}: {why}", details={noun: name})

    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](value) for t in types):
            refuse(f"expected {' or '.join(types)}, got {_shown(value)}")
    if "const" in schema and not _same(value, schema["const"]):
        refuse(f"must be {_shown(schema['const'])}")
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        refuse(f"use one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            refuse("out of range (a 64-bit integer)")
        if isinstance(value, float) and not math.isfinite(value):
            refuse("not a finite number")
        if "minimum" in schema and value < schema["minimum"]:
            refuse(f"at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            refuse(f"at most {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            refuse(f"more than {schema['exclusiveMinimum']}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            refuse(f"less than {schema['exclusiveMaximum']}")
    elif isinstance(value, str):
        # JSON Schema counts characters (code points), as len() does.
        if len(value) < schema.get("minLength", 0):
            refuse(f"at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            refuse(f"at most {schema['maxLength']} characters")
        if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
            refuse(f"does not match {schema['pattern']}")
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            refuse(f"at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            refuse(f"at most {schema['maxItems']} items")
        items = schema.get("items")
        if items:
            for i, item in enumerate(value):
                check_value(item, items, f"{name}[{i}]", noun=noun)
    elif isinstance(value, dict) and "properties" in schema:
        check_object(value, schema, noun=noun, text_checked=True)


def check_object(arguments: Any, schema: dict[str, Any], *, noun: str = "argument",
                 text_checked: bool = False) -> dict[str, Any]:
    """``arguments`` (a JSON object) checked against an object ``schema`` (``properties``,
    ``required``, ``additionalProperties: false``, each property's schema); returns them without
    the nulls that stand for "not given" (a null is kept only where the property's schema has no
    ``type``, any JSON value, or allows ``null``). INVALID_INPUT, naming the ``noun`` (argument,
    field): not an object, an unknown or a missing one, a value its schema refuses.

    ``text_checked``: the caller parsed the JSON within core/jsontext.py's limits already (no
    nesting beyond its depth, no lone surrogate); otherwise they are checked here.
    """
    if not isinstance(arguments, dict):
        raise GeminiFlowError("INVALID_INPUT", f"the {noun}s must be a JSON object")
    if not text_checked:
        from gemini_flow_cli.core import jsontext

        jsontext.check(arguments, what=f"the {noun}s")
    properties = schema.get("properties", {})
    arguments = {k: v for k, v in arguments.items() if v is not None or _takes_null(properties.get(k))}
    if schema.get("additionalProperties", True) is False:
        unknown = [name for name in arguments if name not in properties]
        if unknown:
            known = ", ".join(properties) or "none"
            raise GeminiFlowError("INVALID_INPUT", f"unknown {noun} {unknown[0]!r} ({noun}s: {known})",
                                  details={noun: unknown[0], "unknown": unknown})
    for name in schema.get("required", ()):
        if name not in arguments:
            raise GeminiFlowError("INVALID_INPUT", f"missing {noun} {name!r}", details={noun: name})
    for name, value in arguments.items():
        if name in properties:
            check_value(value, properties[name], name, noun=noun)
    return arguments


def _takes_null(schema: dict[str, Any] | None) -> bool:
    if schema is None:
        return False
    kind = schema.get("type")
    return kind is None or kind == "null" or (isinstance(kind, list) and "null" in kind)


def _same(value: Any, option: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, as Python's ``==`` would have it."""
    return value == option and isinstance(value, bool) == isinstance(option, bool)


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)[:80]


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
