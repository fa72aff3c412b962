"""JSON from outside that says two things at once, empty batches, and CSV cells a spreadsheet
would run (issue 20's bad-input leftovers).

An object naming a key twice silently kept the last value in every JSON input; it is refused
(INVALID_INPUT, exit 2) wherever JSON comes in, naming where: the batch's line or operation,
the import's line, the value, the workflow definition (JSON or YAML). An empty batch, whatever
its shape, is a batch of no operations (exit 0). CSV cells that start like a formula get a
leading apostrophe; export (JSON Lines) is untouched, so export then import gives back the same
values.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from gemini_flow_cli.core import jsontext
from gemini_flow_cli.core.memory import parse_batch_document, read_batch
from gemini_flow_cli.errors import GeminiFlowError

STORE_A = '{"action": "store", "key": "a", "value": 1}'


def _keys(cli) -> list[str]:
    return [r["key"] for r in cli("memory", "list", "--json").json["results"]]


# -- a key named twice -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "where", "details"), [
    # JSON Lines: the line, whether the operation or its value repeats a key
    (STORE_A + '\n{"action": "store", "key": "b", "key": "c", "value": 1}\n',
     "line 2: the operation has the key 'key' twice", {"line": 2, "duplicateKey": "key"}),
    (STORE_A + '\n{"action": "store", "key": "b", "value": {"x": {"y": 1, "y": 2}}}\n',
     "line 2: the object at value.x has the key 'y' twice", {"line": 2, "duplicateKey": "y"}),
    ('{"action": "store", "key": "b", "key": "c", "value": 1}\n' + STORE_A + "\n",
     "line 1: the operation has the key 'key' twice", {"line": 1, "duplicateKey": "key"}),
    # a document on one line, spread over lines, an array: the operation, counted from 1
    ('{"operations": [' + STORE_A + ', {"action": "store", "key": "b", "value": {"x": 1, "x": 2}}]}',
     "operation 2: the object at value has the key 'x' twice", {"position": "operation 2", "duplicateKey": "x"}),
    ('{"operations": [\n' + STORE_A + ',\n{"action": "store", "key": "b", "action": "delete"}\n]}\n',
     "operation 2: the operation has the key 'action' twice", {"position": "operation 2", "duplicateKey": "action"}),
    ('[{"action": "store", "key": "b", "value": 1, "value": 2}]',
     "operation 1: the operation has the key 'value' twice", {"position": "operation 1", "duplicateKey": "value"}),
])
def test_a_batch_naming_a_key_twice_is_refused_and_applies_nothing(cli, text, where, details):
    result = cli("memory", "batch", "--json", input=text)
    assert result.exit_code == 2, result
    error = result.error
    assert error["code"] == "INVALID_INPUT"
    assert error["message"].startswith(where) and error["message"].endswith("nothing was applied"), error
    assert error["details"] == details
    assert _keys(cli) == []
    # Read whole or line by line, the same refusal.
    with pytest.raises(GeminiFlowError) as whole:
        parse_batch_document(text)
    with pytest.raises(GeminiFlowError) as streamed:
        list(read_batch(io.BytesIO(text.encode())))
    assert whole.value.message == streamed.value.message == error["message"]


def test_a_document_whose_operations_key_is_named_twice_is_refused(cli):
    result = cli("memory", "batch", "--json", input='{"operations": [], "operations": [' + STORE_A + "]}")
    assert result.exit_code == 2 and "the key 'operations' twice" in result.error["message"], result
    assert _keys(cli) == []


def test_a_value_naming_a_key_twice_is_refused_unless_stored_as_text(cli, tmp_path):
    result = cli("memory", "store", "k", '{"a": 1, "a": 2}', "--json")
    assert result.exit_code == 2 and result.error["details"] == {"duplicateKey": "a"}, result
    assert "--string" in result.error["message"]
    path = tmp_path / "value.json"
    path.write_text('{"a": {"b": 1, "b": 1}}')
    assert cli("memory", "store", "k", "--file", str(path)).exit_code == 2
    assert _keys(cli) == []
    assert cli("memory", "store", "k", '{"a": 1, "a": 2}', "--string").exit_code == 0
    assert cli("memory", "retrieve", "k", "--json").json["value"] == '{"a": 1, "a": 2}'


def test_an_import_record_naming_a_key_twice_is_refused_naming_the_line(cli, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"key": "a", "value": 1}\n{"key": "b", "value": 2, "value": 3}\n')
    result = cli("memory", "import", str(path), "--json")
    assert result.exit_code == 2, result
    assert result.error["details"]["line"] == 2 and result.error["details"]["duplicateKey"] == "value"
    assert _keys(cli) == []


def test_a_workflow_definition_naming_a_key_twice_is_refused(cli, tmp_path):
    as_json = tmp_path / "flow.json"
    as_json.write_text('{"steps": [{"id": "a", "description": "A", "id": "b"}]}')
    result = cli("workflow", "create", "flow", "--file", str(as_json), "--json")
    assert result.exit_code == 2 and result.error["details"] == {"duplicateKey": "id"}, result
    pytest.importorskip("yaml")
    as_yaml = tmp_path / "flow.yaml"
    as_yaml.write_text("steps:\n  - id: a\n    description: A\n    id: b\n")
    result = cli("workflow", "create", "flow", "--file", str(as_yaml), "--json")
    assert result.exit_code == 2 and result.error["details"] == {"duplicateKey": "id"}, result
    assert "line 2" in result.error["message"]
    # A merge key's keys are overridden by those written beside it, as YAML means: not a repeat.
    merged = tmp_path / "merged.yaml"
    merged.write_text("steps:\n  - &base {id: x, description: Base}\n  - <<: *base\n    id: a\n")
    result = cli("workflow", "validate", "--file", str(merged), "--json")
    assert result.exit_code == 0 and "\"a\"" in result.stdout and "\"x\"" in result.stdout, result


def test_unique_object_costs_nothing_for_objects_without_repeats():
    assert jsontext.loads('{"a": {"b": [1, {"c": 2}]}, "d": 3}') == {"a": {"b": [1, {"c": 2}]}, "d": 3}
    assert jsontext.first_duplicate('{"a": [{"b": 1}, {"c": 1, "c": 2}]}') == (["a", 1], "c")
    assert jsontext.first_duplicate('{"a": 1}') is None


# -- empty batches -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n  \n", '{"operations": []}', "[]", '\ufeff'])
def test_an_empty_batch_is_a_batch_of_no_operations(cli, db_path, text):
    result = cli("memory", "batch", "--json", input=text)
    assert result.exit_code == 0, result
    body = result.json
    assert (body["results"], body["total"], body["succeeded"], body["failed"]) == ([], 0, 0, 0)


def test_an_empty_batch_creates_no_database(cli, db_path):
    result = cli("memory", "batch", input="")
    assert result.exit_code == 0, result
    assert not db_path.exists()


# -- CSV cells a spreadsheet would run -----------------------------------------------------------

HOSTILE = ['=HYPERLINK("http://example.com","x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "=1"]


def test_csv_cells_starting_like_a_formula_get_an_apostrophe(cli):
    for n, text in enumerate(HOSTILE):
        assert cli("memory", "store", "--string", f"k{n}", "--", text).exit_code == 0
    assert cli("memory", "store", "=key", "plain").exit_code == 0
    assert cli("memory", "store", "neg", "--", "-5").exit_code == 0
    rows = list(csv.DictReader(io.StringIO(cli("memory", "list", "--format", "csv").stdout)))
    cells = {row["key"]: row["value"] for row in rows}
    for n, text in enumerate(HOSTILE):
        assert cells[f"k{n}"] == "'" + text, (n, cells[f"k{n}"])
    assert cells["'=key"] == "plain"
    assert cells["neg"] == "-5"  # a plain number is no formula


def test_export_then_import_gives_back_values_that_start_like_formulas(cli, tmp_path):
    for n, text in enumerate(HOSTILE):
        assert cli("memory", "store", "--string", f"k{n}", "--", text).exit_code == 0
    assert cli("memory", "store", "@key", "--", "-1.5e3").exit_code == 0
    exported = tmp_path / "out.jsonl"
    assert cli("memory", "export", "--format", "csv", "-o", str(exported)).exit_code == 0
    records = [json.loads(line) for line in exported.read_text().splitlines()]
    assert sorted(r["value"] for r in records if r["key"] != "@key") == sorted(HOSTILE)
    other = tmp_path / "other.db"
    assert cli("memory", "import", str(exported), db=other).exit_code == 0
    for n, text in enumerate(HOSTILE):
        assert cli("memory", "retrieve", f"k{n}", "--json", db=other).json["value"] == text
    assert cli("memory", "retrieve", "@key", "--json", db=other).json["value"] == -1500.0
