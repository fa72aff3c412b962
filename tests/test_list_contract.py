"""The one list contract (issue 21), checked over every list command of the real command tree.

A list command is any command named ``list`` or ``search``, or with a ``--limit`` option. Each
takes ``--limit``/``--offset``; ``total`` counts every match before them; a cut page in table,
JSON Lines or CSV is announced on stderr; every filter option is classified below, and an
unknown value of an enumerated filter exits 2, an unknown referenced id exits 1.
"""

from __future__ import annotations

import json

import pytest

import world
from commandtree import iter_commands

LIST_COMMANDS = [c for c in iter_commands()
                 if not c.skipped and (c.path[-1] in ("list", "search") or c.option("--limit"))]

# Every option of a list command, by kind. A new option fails the test until it is classified.
PAGING = {"--limit", "--offset"}
CHOICE = {"--status", "--type", "--topology", "--decision", "--entity-type", "--sort-by", "--sort-order",
          "--event"}
IDS = {"--swarm", "--agent", "--parent", "--entity-id"}
CHECKED = {"--namespace", "--since"}  # validated values: a malformed one exits 2
FREE = {  # any value is a legitimate question whose answer may be "nothing"
    "--tag": "tags are free text",
    "--action": "audit actions are written by every group; the set is open",
    "--entity": "audit entities are TYPE or TYPE:ID of any kind",
    "--name": "metric names are free text",
    "--text": "a full-text query",
    "--dir": "a folder to read",
    "--all": "a flag",
    "--include-expired": "a flag",
}
MALFORMED = {"--namespace": "bad ns", "--since": "yesterday-ish"}
EXTRA = {("memory", "search"): ["*"], ("config", "list"): ["--all"]}


@pytest.fixture
def ids(cli, tmp_path):
    return world.build(cli, tmp_path)


def _list_key(document: dict) -> str:
    keys = [k for k, v in document.items() if isinstance(v, list)]
    assert len(keys) == 1, f"one list per list result, got {keys}"
    return keys[0]


def test_there_are_list_commands():
    names = {c.name for c in LIST_COMMANDS}
    assert {"memory search", "memory list", "agent list", "swarm list", "task list", "consensus list",
            "metrics list", "audit list", "backup list"} <= names


@pytest.mark.parametrize("command", LIST_COMMANDS, ids=lambda c: c.name)
def test_every_list_command_pages_and_counts_every_match(cli, ids, command):
    assert command.option("--limit") and command.option("--offset"), "every list takes --limit and --offset"
    args = [*command.path, *EXTRA.get(command.path, [])]
    whole = cli(*args, "--limit", "100000")
    assert whole.exit_code == 0, whole
    key = _list_key(whole.json)
    everything = whole.json[key]
    assert whole.json["total"] == len(everything) >= 2, "the world has at least two of everything"
    first = cli(*args, "--limit", "1").json
    assert (len(first[key]), first["total"], first["limit"], first["offset"]) == (1, len(everything), 1, 0)
    second = cli(*args, "--limit", "1", "--offset", "1").json
    assert second[key] == everything[1:2] and first[key] == everything[:1]
    assert cli(*args, "--limit", "-1").exit_code == 2 and cli(*args, "--offset", "-1").exit_code == 2
    for fmt in ("jsonl", "csv", "table"):
        cut = cli(*args, "--limit", "1", "--format", fmt)
        assert cut.exit_code == 0, cut
        assert f"1 of {len(everything)} shown" in cut.stderr, f"{fmt}: a cut page is announced"
        whole_fmt = cli(*args, "--limit", "100000", "--format", fmt)
        assert "shown" not in whole_fmt.stderr
    if "--format" not in args:
        assert "shown" not in cli(*args, "--limit", "1").stderr, "JSON has total: no notice"


@pytest.mark.parametrize("command", LIST_COMMANDS, ids=lambda c: c.name)
def test_every_filter_is_classified_and_refuses_what_it_does_not_know(cli, ids, command):
    args = [*command.path, *EXTRA.get(command.path, [])]
    for param in command.params:
        opts = [o for o in param.opts if o.startswith("--")]
        if not opts or param.param_type_name == "argument":
            continue
        name = opts[0]
        if name in PAGING or name in FREE:
            continue
        if name in CHOICE:
            result = cli(*args, name, "bogus-value")
            assert result.exit_code == 2 and result.error["code"] == "INVALID_INPUT", (name, result)
        elif name in IDS:
            extra = ["--entity-type", "agent"] if name == "--entity-id" else []
            result = cli(*args, *extra, name, "nope-404")
            assert result.exit_code == 1 and result.error["code"] == "NOT_FOUND", (name, result)
            assert json.dumps(result.error.get("details", {})).count("nope-404") == 1
        elif name in CHECKED:
            result = cli(*args, name, MALFORMED[name])
            assert result.exit_code == 2, (name, result)
        else:
            pytest.fail(f"{command.name} {name}: classify this option in tests/test_list_contract.py")


def test_unknown_ids_exit_1_in_every_group(cli, ids):
    for args in (("task", "list", "--swarm", "nope"), ("task", "list", "--agent", "nope"),
                 ("task", "list", "--parent", "nope"), ("agent", "list", "--swarm", "nope"),
                 ("consensus", "list", "--swarm", "nope"), ("memory", "store", "k", "v", "--agent", "nope"),
                 ("memory", "store", "k", "v", "--swarm", "nope")):
        result = cli(*args)
        assert result.exit_code == 1 and result.error["code"] == "NOT_FOUND", (args, result)
