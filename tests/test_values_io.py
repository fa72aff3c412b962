"""Values in and out (CLI.md §4, issue 21): bytes round-trip, stdin's BOM and line end, strict
JSON for values that look like JSON, numbers JSON cannot carry, and the '--' hint."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def test_file_round_trips_exactly_through_retrieve_o(cli, tmp_path):
    source = tmp_path / "cfg.yaml"
    source.write_bytes(b"a: 1\r\nb: [x, y]\r\n\r\n")
    assert cli("memory", "store", "cfg", "--file", str(source)).exit_code == 0
    out = tmp_path / "out.yaml"
    result = cli("memory", "retrieve", "cfg", "-o", str(out))
    assert result.exit_code == 0, result
    assert out.read_bytes() == source.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o600


def test_retrieve_o_writes_json_values_compact_without_newline(cli, tmp_path):
    cli("memory", "store", "k", '{"a": [1, 2], "b": "é"}')
    out = tmp_path / "v.json"
    assert cli("memory", "retrieve", "k", "-o", str(out)).exit_code == 0
    assert out.read_bytes() == '{"a":[1,2],"b":"é"}'.encode()


def test_retrieve_o_refuses_an_existing_file_or_a_folder(cli, tmp_path):
    cli("memory", "store", "k", "v")
    out = tmp_path / "v.txt"
    out.write_text("old")
    refused = cli("memory", "retrieve", "k", "-o", str(out))
    assert refused.exit_code == 3 and refused.error["code"] == "CONFLICT"
    assert out.read_text() == "old"
    assert cli("memory", "retrieve", "k", "-o", str(out), "--force").exit_code == 0
    assert out.read_text() == "v"
    assert cli("memory", "retrieve", "k", "-o", str(tmp_path)).exit_code == 2


def test_retrieve_default_in_json_mode_is_json(cli):
    result = cli("memory", "retrieve", "missing", "--default", "d")
    assert result.exit_code == 0
    assert result.json == {"success": True, "key": "missing", "namespace": "default", "value": "d", "default": True}
    assert cli("memory", "retrieve", "missing", "--default", "0").json["value"] == 0


def test_retrieve_prints_one_newline_after_a_string(cli):
    cli("memory", "store", "k", "line\n", "--string")
    assert cli("memory", "retrieve", "k", "--format", "table").stdout == "line\n\n"


@pytest.mark.parametrize(
    "stdin, stored",
    [("hello\n", "hello"), ("hello\r\n", "hello"), ("\ufeffhello\n", "hello"), ("hello\n\n", "hello\n"),
     ("hello", "hello"), ("a\r\nb\r\n", "a\r\nb"), ('\ufeff{"a": 1}\r\n', {"a": 1})],
)
def test_stdin_drops_a_bom_and_one_trailing_line_end(cli, stdin, stored):
    assert cli("memory", "store", "k", input=stdin).exit_code == 0
    assert cli("memory", "retrieve", "k").json["value"] == stored


def test_invalid_utf8_on_stdin_exits_2(db_path, tmp_path):
    import subprocess

    from conftest import gemini_flow_command

    result = subprocess.run([*gemini_flow_command(), "--db", str(db_path), "--json", "memory", "store", "k"],
                            input=b"ok \xff\xfe", capture_output=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stderr)["error"]["code"] == "INVALID_INPUT"
    assert not db_path.exists()


def test_input_over_the_bound_exits_5_without_reading_it_all(cli, monkeypatch):
    from gemini_flow_cli.cli import common

    monkeypatch.setattr(common, "INPUT_LIMIT", 10)
    result = cli("memory", "store", "k", input="x" * 11)
    assert result.exit_code == 5 and result.error["code"] == "VALUE_TOO_LARGE"
    assert cli("memory", "store", "k", input="x" * 10).exit_code == 0


def test_file_that_is_a_folder_exits_2(cli, tmp_path):
    result = cli("memory", "store", "k", "--file", str(tmp_path))
    assert result.exit_code == 2 and "folder" in result.error["message"]


@pytest.mark.parametrize("value", ["{bad", "[1,", "  {", '{"a": 1} x', "[NaN]"])
def test_value_starting_like_json_must_be_json(cli, value, db_path):
    result = cli("memory", "store", "k", value)
    assert result.exit_code == 2 and "--string" in result.error["message"]
    assert not db_path.exists(), "a refused store creates nothing"
    assert cli("memory", "store", "k", value, "--string").exit_code == 0
    assert cli("memory", "retrieve", "k").json["value"] == value


@pytest.mark.parametrize("value", ["1e400", '{"a": 1e400}', "[-1e999]"])
def test_numbers_beyond_the_float_range_exit_2_in_store_batch_and_import(cli, tmp_path, value):
    assert cli("memory", "store", "k", value).exit_code == 2
    batch = '{"operations": [{"action": "store", "key": "k", "value": %s}]}' % value
    assert cli("memory", "batch", input=batch).exit_code == 2
    assert cli("memory", "batch", input='{"action": "store", "key": "k", "value": %s}\n' % value).exit_code == 2
    export = tmp_path / "e.jsonl"
    export.write_text('{"key": "k", "namespace": "default", "value": %s}\n' % value)
    assert cli("memory", "import", str(export)).exit_code == 2
    assert cli("memory", "search", "*").json["total"] == 0


def test_negative_number_value_hints_at_double_dash(cli):
    result = cli("memory", "store", "counter", "-5")
    assert result.exit_code == 2
    assert "'--'" in result.error["message"] and "-- -5" in result.error["message"]
    assert cli("memory", "store", "counter", "--", "-5").exit_code == 0
    assert cli("memory", "retrieve", "counter").json["value"] == -5


def test_empty_search_pattern_matches_nothing(cli):
    cli("memory", "store", "k", "v")
    result = cli("memory", "search", "")
    assert result.exit_code == 0 and result.json["results"] == [] and result.json["total"] == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_any_text_round_trips_through_file_and_retrieve_o(cli, tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("rt")
    source = folder / "in"
    source.write_bytes(text.encode("utf-8"))
    stored = cli("memory", "store", "k", "--file", str(source), "--string")
    assert stored.exit_code == 0, stored
    out = folder / "out"
    assert cli("memory", "retrieve", "k", "-o", str(out)).exit_code == 0
    assert out.read_bytes() == source.read_bytes()
