"""JSON mode is JSON (issue 21): every command of the real tree, run with --json on a database
with two of everything (tests/world.py), succeeds and prints one JSON document on stdout (a
streaming command prints JSON Lines, CLI.md §2), and every field name in it is camelCase, the
seed's vocabulary. Commands that block are skipped through tests/commandtree.py's SKIPPED."""

from __future__ import annotations

import json
import re

import pytest

import world
from commandtree import iter_commands

COMMANDS = [c for c in iter_commands() if not c.skipped]
STREAMING = {("memory", "export")}  # JSON Lines in every JSON mode when writing to stdout
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
# Objects whose keys are data, not field names: what a user stored or named.
DATA_FIELDS = {"value", "metadata", "context", "result", "config", "namespaces", "data", "details",
               "configuration", "settings", "env", "defaults",
               "tables"}  # row counts by SQLite table name (backup manifests)


@pytest.fixture
def ids(cli, tmp_path):
    return world.build(cli, tmp_path)


def field_names(document, path="$"):
    """Every (path, key) of ``document`` whose key is a field name (data objects skipped)."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield path, key
            if key not in DATA_FIELDS:
                yield from field_names(value, f"{path}.{key}")
    elif isinstance(document, list):
        for item in document:
            yield from field_names(item, f"{path}[]")


def run_json(cli, command, ids, env=None):
    args = world.invocation(command.path, ids)
    result = cli(*command.path, *args, "--json", env=env)
    assert result.exit_code == 0, (command.name, args, result)
    if command.path in STREAMING and "-o" not in args:
        return [json.loads(line) for line in result.stdout.splitlines()]
    return json.loads(result.stdout)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_success_prints_json_with_camel_case_fields(cli, ids, command):
    if command.path in world.KEYED:
        pytest.skip(world.KEYED[command.path])
    document = run_json(cli, command, ids)
    bad = sorted({f"{path}.{key}" for path, key in field_names(document) if not CAMEL.match(key)})
    assert not bad, f"{command.name}: field names outside the camelCase vocabulary: {bad}"


def test_export_to_stdout_is_json_lines(cli, ids):
    result = cli("memory", "export", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 and all(CAMEL.match(k) for line in lines for k in line)


def test_retrieve_default_with_json_is_json(cli):
    result = cli("memory", "retrieve", "missing", "--default", "d", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["value"] == "d"


def test_every_command_has_an_invocation():
    import collections

    blank = collections.defaultdict(str)
    missing = [c.name for c in COMMANDS
               if world.invocation(c.path, blank) == ["<no invocation: add one to tests/world.py>"]]
    assert not missing, f"add an invocation to tests/world.py for: {missing}"
