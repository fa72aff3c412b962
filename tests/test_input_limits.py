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
