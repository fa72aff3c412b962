"""Help, suggestions and shell completion over whatever command tree exists (issue G)."""

from __future__ import annotations

import sqlite3

import pytest
from typer._click import Context
from typer.testing import CliRunner

from gemini_flow_cli.cli import GROUPS, build_app, command_tree, examples


def _walk(command, ctx, path=()):
    yield path, command
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                yield from _walk(sub, Context(sub, info_name=name, parent=ctx), (*path, name))


_TREE = command_tree()
EVERY_COMMAND = [path for path, _ in _walk(_TREE, Context(_TREE, info_name="gemini-flow")) if path]
LEAVES = {path: cmd for path, cmd in _walk(_TREE, Context(_TREE, info_name="gemini-flow")) if path and not hasattr(cmd, "list_commands")}


def help_of(*argv: str):
    result = CliRunner().invoke(build_app(list(argv)), list(argv), catch_exceptions=False)
    return result


def completions(run, line: str, env: dict | None = None) -> list[str]:
    """What bash gets for ``line`` + <TAB>, through the real program's completion variable."""
    words = line.split(" ")
    result = run(
        db=None,
        env={"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1), "_GEMINI_FLOW_COMPLETE": "complete_bash", **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_tree_has_the_foundation_commands():
    assert ("memory", "store") in LEAVES and ("migrate", "list") in LEAVES


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=" ".join)
def test_every_help_exits_0_with_a_summary_and_an_example(path):
    result = help_of(*path, "--help")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"Usage: gemini-flow {' '.join(path)}" in result.stdout
    assert "Example:" in result.stdout
    command = LEAVES.get(path) or dict(_walk(_TREE, Context(_TREE, info_name="gemini-flow")))[path]
    summary = (command.help or "").strip().split("\n\n")[0]
    assert summary and "\n" not in summary, "the help starts with a one-line summary"
    assert " ".join(summary.split()[:3]) in " ".join(result.stdout.split())


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_every_option_has_help_text(path):
    command = LEAVES[path]
    undocumented = [p.name for p in command.params if p.param_type_name == "option" and not p.help]
    assert not undocumented, f"options without help: {undocumented}"


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_example_lines_are_printed_whole_and_pasteable(path):
    lines = examples(LEAVES[path].help)
    assert lines, "the docstring has an Example: paragraph with a command line"
    assert any(line.startswith("gemini-flow ") or " gemini-flow " in line for line in lines)
    shown = help_of(*path, "--help").stdout
    for line in lines:
        assert line in shown, f"example rewrapped by the help formatter: {line}"


def test_dash_h_is_the_same_as_dash_dash_help():
    assert help_of("-h").stdout == help_of("--help").stdout
    assert help_of("memory", "store", "-h").stdout == help_of("memory", "store", "--help").stdout


def test_default_values_are_shown(run):
    shown = help_of("--help").stdout
    assert "default: auto" in shown and "default: 10.0" in shown


def test_the_program_alone_prints_the_groups(run):
    result = run(db=None)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Usage: gemini-flow" in result.stderr
    assert not result.stderr.lstrip().startswith("{"), "help is text for a person, even when piped"
    for name in (n for n in GROUPS if n in {p[0] for p in EVERY_COMMAND}):
        assert f"  {name} " in result.stderr


def test_a_group_alone_prints_its_commands(run):
    result = run("memory", db=None)
    assert result.returncode == 2
    assert "store" in result.stderr and "retrieve" in result.stderr


@pytest.mark.parametrize(
    "argv, suggestion",
    [(["memroy", "list"], "memory"), (["memory", "retreive", "k"], "retrieve"), (["migrate", "stauts"], "status")],
)
def test_a_mistyped_command_suggests_the_closest(run, argv, suggestion):
    result = run(*argv, db=None)
    assert result.returncode == 2
    assert f"Did you mean '{suggestion}'" in result.stderr


def test_a_mistyped_option_suggests_the_closest(run):
    result = run("memory", "retrieve", "k", "--namspace", "x", db=None)
    assert result.returncode == 2
    assert "--namespace" in result.stderr


def test_completion_of_a_group_and_of_a_subcommand(run):
    assert completions(run, "gemini-flow mem") == ["memory"]
    assert completions(run, "gemini-flow memory ret") == ["retrieve"]
    assert set(completions(run, "gemini-flow migrate ")) >= {"status", "list", "up", "down"}


def test_completion_of_an_option(run):
    assert completions(run, "gemini-flow memory retrieve --na") == ["--namespace"]
    assert "--busy-timeout" in completions(run, "gemini-flow --bu")


def test_completion_loads_every_group(run):
    offered = set(completions(run, "gemini-flow "))
    tree = command_tree()  # now, not at collection: groups appear while others work
    assert offered == set(tree.list_commands(Context(tree, info_name="gemini-flow")))


def test_zsh_and_fish_completion_answer_too(run):
    zsh = run(db=None, env={"_GEMINI_FLOW_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "gemini-flow memory st"})
    assert '"store"' in zsh.stdout
    fish = run(db=None, env={"_GEMINI_FLOW_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": "gemini-flow memory st",
                             "_TYPER_COMPLETE_FISH_ACTION": "get-args"})
    assert fish.stdout.startswith("store")


@pytest.fixture
def stored(run, db_path):
    for key, ns in (("user-preferences", "user"), ("user-profile", "user"), ("ci-status", "default"),
                    ("cache-1", "cache")):
        assert run("memory", "store", key, "1", "-n", ns).returncode == 0
    assert run("memory", "store", "user-expired", "1", "-n", "user", "--ttl", "1").returncode == 0
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE memory_store SET ttl = 1 WHERE key = 'user-expired'")  # long expired
    conn.commit()
    conn.close()
    return db_path


def test_keys_complete_from_the_database(run, stored):
    db = f"--db {stored}"
    assert completions(run, f"gemini-flow {db} memory retrieve -n user user-") == ["user-preferences", "user-profile"]
    assert completions(run, f"gemini-flow {db} memory retrieve ") == ["ci-status"]
    assert completions(run, f"gemini-flow {db} memory delete -n cache ") == ["cache-1"]
    assert completions(run, "gemini-flow memory retrieve c", env={"GEMINI_FLOW_DB": str(stored)}) == ["ci-status"]


def test_namespaces_complete_from_the_database(run, stored):
    assert completions(run, f"gemini-flow --db {stored} memory retrieve -n ") == ["cache", "default", "user"]
    assert completions(run, f"gemini-flow --db {stored} memory store k v --namespace u") == ["user"]


def test_the_discovered_database_is_used(run, stored, tmp_path):
    # `run` works in tmp_path, where .hive-mind/hive.db is the discovered database.
    assert stored.parent.parent == tmp_path
    assert completions(run, "gemini-flow memory retrieve ci") == ["ci-status"]


def test_completion_never_creates_a_database(run, tmp_path):
    missing = tmp_path / "elsewhere" / "hive.db"
    assert completions(run, f"gemini-flow --db {missing} memory retrieve ") == []
    assert completions(run, "gemini-flow memory retrieve -n ") == []
    assert not missing.parent.exists()
    assert not (tmp_path / ".hive-mind").exists()


def test_completion_of_a_foreign_file_offers_nothing(run, tmp_path):
    foreign = tmp_path / "notes.db"
    foreign.write_text("not a database")
    assert completions(run, f"gemini-flow --db {foreign} memory retrieve ") == []
    assert foreign.read_text() == "not a database"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_the_script_for_a_shell(run, shell):
    # With detection off (Typer's own switch), --show-completion takes the shell as its value.
    result = run("--show-completion", shell, db=None, env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert result.returncode == 0, result.stderr
    assert "_GEMINI_FLOW_COMPLETE=complete_" + shell in result.stdout


def test_install_completion_writes_to_the_users_shell_files(run, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = run("--install-completion", "bash", db=None,
                 env={"HOME": str(home), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert result.returncode == 0, result.stderr
    script = home / ".bash_completions" / "gemini-flow.sh"
    assert "_GEMINI_FLOW_COMPLETE=complete_bash" in script.read_text()
    assert str(script) in (home / ".bashrc").read_text()
