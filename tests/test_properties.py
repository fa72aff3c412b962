"""Property tests: values, keys and namespaces round-trip; durations parse (issue A)."""

from __future__ import annotations

import string

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from gemini_flow_cli.core.db import Database
from gemini_flow_cli.core.durations import UNITS, format_duration, parse_duration
from gemini_flow_cli.core.memory import MemoryManager, parse_value
from gemini_flow_cli.errors import GeminiFlowError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=20,
)
keys = st.text(min_size=1, max_size=1024).filter(
    lambda k: not any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in k)
)
namespaces = st.text(alphabet=string.ascii_letters + string.digits + "._-:", min_size=1, max_size=128)


def manager(tmp_path_factory) -> MemoryManager:
    return MemoryManager(Database.open(tmp_path_factory.mktemp("db") / "hive.db"))


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_any_json_value_is_retrieved_equal(tmp_path_factory, value):
    memory = manager(tmp_path_factory)
    memory.store("k", value)
    assert memory.retrieve("k")["value"] == value
    memory.db.close()


@settings(max_examples=150, deadline=None)
@given(key=keys, namespace=namespaces)
def test_any_valid_key_and_namespace_round_trip(tmp_path_factory, key, namespace):
    memory = manager(tmp_path_factory)
    # encrypted=False: a generated key may match an auto-encrypt pattern (`user-*-personal`),
    # which needs an encryption key; encryption has its own round-trip tests.
    result = memory.store(key, [key], namespace=namespace, encrypted=False)
    assert (result["key"], result["namespace"]) == (key, namespace)
    envelope = memory.retrieve(key, namespace=namespace)
    assert (envelope["key"], envelope["namespace"], envelope["value"]) == (key, namespace, [key])
    memory.db.close()


@given(seconds=st.integers(min_value=1, max_value=10**9))
def test_durations_format_and_parse_back(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


@given(n=st.integers(min_value=1, max_value=10**30), unit=st.sampled_from(sorted(UNITS)))
def test_durations_multiply_their_unit(n, unit):
    """Up to the calendar's end (9999-12-31T23:59:59Z from the epoch); beyond it, refused (exit 2)."""
    from gemini_flow_cli.core.durations import MAX_INSTANT

    if n * UNITS[unit] <= MAX_INSTANT:
        assert parse_duration(f"{n}{unit}") == n * UNITS[unit]
    else:
        with pytest.raises(GeminiFlowError) as refused:
            parse_duration(f"{n}{unit}")
        assert refused.value.code == "INVALID_INPUT" and "9999-12-31" in refused.value.message


@given(text=st.text(max_size=12))
def test_duration_parser_accepts_exactly_its_grammar(text):
    import re

    valid = re.fullmatch(r"\s*\d+[smhdw]?\s*", text) is not None
    try:
        parse_duration(text)
        accepted = True
    except GeminiFlowError as exc:
        assert exc.code == "INVALID_INPUT"
        accepted = False
    from gemini_flow_cli.core.durations import MAX_INSTANT, UNITS as units

    digits = re.sub(r"\D", "", text)
    unit = text.strip()[-1:] if valid and text.strip()[-1:] in units else "s"
    in_range = valid and 0 < int(digits) * units[unit] <= MAX_INSTANT
    assert accepted == in_range


@given(text=st.text())
def test_typed_values_are_json_or_kept_as_the_text(text):
    import json

    def strict(text):
        def refuse(name):
            raise ValueError(name)

        parsed = json.loads(text, parse_constant=refuse)
        json.dumps(parsed, allow_nan=False)
        return parsed

    try:
        value = parse_value(text)
    except GeminiFlowError as exc:
        # Refused only what CLI.md §4 refuses: JSON-looking text that is not JSON, or a number
        # JSON cannot carry.
        assert exc.code == "INVALID_INPUT"
        assert text.lstrip()[:1] in ("{", "[") or "number" in exc.message
        return
    try:
        assert value == strict(text)
    except ValueError:
        assert value == text
