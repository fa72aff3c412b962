"""Input at and past the limits is bad input (exit 2), never a bug (exit 70): found by trying the
landed work as an attacker would (NaN in a batch, a 60,000-character pattern, 1,100 tag filters)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("document", [
    '{"action":"store","key":"n","value":NaN}\n',
    '{"action":"store","key":"a","value":1}\n{"action":"store","key":"n","value":-Infinity}\n',
    '{"operations":[{"action":"store","key":"n","value":Infinity}]}',
])
def test_nan_and_infinity_in_a_batch_are_bad_input(cli, document):
    result = cli("memory", "batch", input=document)
    assert result.exit_code == 2, result
    assert "is not a JSON number" in result.error["message"]


@pytest.mark.parametrize("args, words", [
    (("memory", "search", "*" * 60_000), "at most 4096"),
    (("memory", "search", "*", *[f"-t=t{i}" for i in range(1100)]), "at most 100"),
    (("memory", "store", "k", "v", "-t", "x" * 300), "at most 256"),
])
def test_questions_beyond_sqlite_limits_are_bad_input(cli, args, words):
    cli("memory", "store", "a", "1")
    result = cli(*args)
    assert result.exit_code == 2, result
    assert words in result.error["message"]


def test_any_sqlite_limit_error_is_bad_input_not_a_bug():
    import sqlite3

    from gemini_flow_cli.core.db import translate_sqlite_error

    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT 'a' GLOB ?", ("*" * 60_000,))
    except sqlite3.Error as exc:
        assert translate_sqlite_error(exc).code == "INVALID_INPUT"
    else:
        raise AssertionError("SQLite took a 60,000-byte pattern")


@pytest.mark.parametrize("text", ["1" * 40 + ".5", "[" + "1" * 5000 + "e5]", "-" + "9" * 100 + ".0"])
def test_deciding_whether_an_export_splices_a_value_takes_linear_time(text):
    """Long digit runs before a "." or "e" once made the export's skeleton regex backtrack
    exponentially (an export hung in a property test)."""
    import time

    from gemini_flow_cli.core.transfer import _spliceable

    started = time.monotonic()
    assert _spliceable(text) is False
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("text, spliceable", [
    ("[1,2,3]", True), ("0", True), ("[-0]", False), ("[1.0]", False), ("1e5", False),
    ('{"a":[10,-20,true,null]}', True), ('"x"', True), ('"\\u00e9"', False),
])
def test_what_an_export_splices(text, spliceable):
    from gemini_flow_cli.core.transfer import _spliceable

    assert _spliceable(text) is spliceable
