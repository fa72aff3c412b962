"""The shared command-tree walker the walking tests rely on."""

from __future__ import annotations

from commandtree import SKIPPED, iter_commands
from gemini_flow_cli.cli import COMMANDS


def test_iter_commands_lists_the_leaves_with_their_options():
    commands = {c.path: c for c in iter_commands()}
    store = commands[("memory", "store")]
    assert store.click.name == "store"
    assert "namespace" in {p.name for p in store.params}
    assert store.option("--namespace") is not None and store.option("--nope") is None
    assert ("memory",) not in commands, "groups are walked through, not listed"
    assert all(len(path) >= 2 or path[0] in COMMANDS for path in commands), "only top-level commands stand alone"


def test_every_skip_has_a_reason_and_every_existing_skip_is_a_command():
    assert all(isinstance(reason, str) and reason for reason in SKIPPED.values())
    commands = {c.path: c for c in iter_commands()}
    assert commands[("task", "wait")].skipped
    assert commands[("memory", "store")].skipped is None
