"""Global options anywhere on the line, but never stealing a command's own option (issue A)."""

from __future__ import annotations

from gemini_flow_cli.cli import hoist_global_options


def test_global_flags_after_the_command_move_to_the_front():
    args = ["memory", "retrieve", "k", "--json", "-q", "--db", "x.db"]
    assert hoist_global_options(args) == ["--json", "-q", "--db", "x.db", "memory", "retrieve", "k"]


def test_a_commands_own_option_of_the_same_name_stays():
    args = ["backup", "create", "--format", "sql", "--json"]
    assert hoist_global_options(args, frozenset({"--format"})) == ["--json", "backup", "create", "--format", "sql"]


def test_nothing_moves_after_double_dash():
    args = ["memory", "store", "k", "--", "--json"]
    assert hoist_global_options(args) == args


def test_options_before_the_command_stay_in_order():
    args = ["--format=csv", "--db", "memory", "memory", "store", "k", "v"]
    assert hoist_global_options(args) == args


def test_only_the_invoked_command_is_built():
    import typer

    from gemini_flow_cli.cli import build_app

    tree = typer.main.get_command(build_app(["--json", "memory", "retrieve", "k"]))
    assert list(tree.commands) == ["memory"]
    assert list(tree.commands["memory"].commands) == ["retrieve"]


def test_help_and_mistyped_commands_get_the_whole_group():
    import typer

    from gemini_flow_cli.cli import build_app

    for args in (["memory", "--help"], ["memory", "retreive", "k"], ["memory"]):
        group = typer.main.get_command(build_app(args)).commands["memory"]
        assert {"store", "retrieve", "delete", "search", "batch", "fts"} <= set(group.commands)
