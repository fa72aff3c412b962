"""Text from the database is data (CLI.md §9, issue 18): stored text is shown literally.

No Rich markup in a key, value, name or tag is interpreted, and no control character (ESC, OSC,
BEL, C1, bidi overrides) reaches the terminal: tables, panels, messages and errors show them
escaped. JSON keeps the exact value.
"""

from __future__ import annotations

import json

import pytest

from gemini_flow_cli.output import escape_control
from tests.commandtree import iter_commands
from tests.conftest import gemini_flow_command
from tests.test_terminal import on_terminal

MARKUP = "hello [/] world [bold red]x[/] [link=https://evil.example]y[/link] :smiley:"
TITLE = "\x1b]0;pwned\x07"  # OSC 0: set the window title
CLEAR = "\x1b[2J\x1b[H"  # erase the screen
HOSTILE = f"{TITLE}{CLEAR}\x9b31m\u202egnp.exe\x08\x7f {MARKUP}"  # what a table cuts comes last
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\u202e", "\x08", "\x7f")


def assert_literal(text: str) -> None:
    for char in FORBIDDEN:
        assert char not in text, (char, text)


def test_escape_control_shows_what_a_terminal_would_obey():
    assert escape_control("a\x1b[2Jb\x07") == "a\\x1b[2Jb\\x07"
    assert escape_control("\x9b\u202e") == "\\x9b\\u202e"
    assert escape_control("line\n\tnext") == "line\n\tnext"
    assert escape_control("line\n\tnext", keep_layout=False) == "line\\x0a\\x09next"
    assert escape_control("[bold]café ✓[/]") == "[bold]café ✓[/]"


def test_a_closing_tag_in_a_value_is_shown_literally(cli):
    """Issue 18 case 2: `memory store note 'hello [/] world'` made every table view exit 70."""
    assert cli("memory", "store", "note", "hello [/] world").exit_code == 0
    result = cli("memory", "list", "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert "hello [/] world" in result.stdout


@pytest.fixture
def hostile(cli):
    """A database where every user-given text field holds markup and control characters."""
    ids = {}
    # Names, keys and capabilities refuse control characters (CLI.md §4), so they carry markup;
    # values, descriptions and metadata carry everything.
    assert cli("memory", "store", MARKUP, HOSTILE, "-t", "[red]tag[/]").exit_code == 0
    assert cli("memory", "store", "plain", HOSTILE, "-n", "ns").exit_code == 0
    ids["key"] = MARKUP
    ids["pattern"] = "*"
    swarm = json.loads(cli("swarm", "init", "--topology", "mesh", "--config", json.dumps({"note": HOSTILE})).stdout)
    ids["swarm_id"] = swarm.get("swarmId") or swarm.get("id")
    agent = json.loads(cli("agent", "spawn", "--type", "coder", "--name", MARKUP, "--capability", "[red]c[/]",
                           "--metadata", json.dumps({HOSTILE: HOSTILE}), "--swarm", ids["swarm_id"]).stdout)
    ids["agent_id"] = agent.get("agentId") or agent.get("id")
    task = json.loads(cli("task", "orchestrate", HOSTILE, "--subtask", HOSTILE, "--swarm", ids["swarm_id"]).stdout)
    ids["task_id"] = task.get("taskId") or task.get("id")
    decision = json.loads(cli("consensus", "request", "--swarm", ids["swarm_id"], "--proposal", HOSTILE,
                              "--type", "majority").stdout)
    ids["decision_id"] = decision.get("decisionId") or decision.get("id")
    cli("metrics", "record", HOSTILE, "1", "--entity-type", "agent", "--entity-id", ids["agent_id"], "--unit", HOSTILE)
    hook = json.loads(cli("hooks", "add", "swarm.shutdown", "--run", f"echo '{HOSTILE}'",
                          "--if", f"key == {json.dumps(HOSTILE)} or key ~ '{MARKUP}'").stdout)
    ids["hook_id"] = str(hook["id"])
    session = json.loads(cli("session", "start", "--type", "interactive", "--swarm", ids["swarm_id"],
                             "--context", json.dumps({HOSTILE: HOSTILE})).stdout)
    ids["session_id"] = session["id"]
    assert cli("session", "checkpoint", ids["session_id"], json.dumps({"note": HOSTILE})).exit_code == 0
    definition = {"description": HOSTILE, "category": MARKUP,
                  "steps": [{"id": "a", "description": HOSTILE}, {"id": "b", "description": MARKUP,
                                                                    "dependencies": ["a"]}]}
    assert cli("workflow", "create", "flow", input=json.dumps(definition)).exit_code == 0
    ids["ref"] = "flow"
    pattern = json.loads(cli("neural", "store", "coordination", json.dumps({HOSTILE: HOSTILE}),
                             "--domain", MARKUP, "--accuracy", "0.5").stdout)
    ids["pattern_id"] = str(pattern["id"])
    assert all(ids.values()), ids
    return ids


# Commands that only read and show records: what a person looks at in a table. Found by name in
# the real command tree, so a new `... list` / `... show` is covered without editing this test.
READERS = {"list", "show", "status", "stats", "health", "namespaces", "metrics", "search", "retrieve", "types"}


def reader_commands():
    return [c for c in iter_commands() if c.path[-1] in READERS and not c.skipped]


@pytest.mark.parametrize("command", reader_commands(), ids=lambda c: c.name)
def test_every_table_shows_hostile_stored_text_literally(cli, hostile, command):
    args: list[str] = []
    for param in command.params:
        if param.param_type_name == "argument" and (param.required or param.name in hostile):
            # A new reader command fails here until the fixture above seeds its argument.
            assert param.name in hostile, f"{command.name}: seed a hostile value for argument {param.name}"
            args.append(hostile[param.name])
    result = cli(*command.path, *args, "--format", "table")
    assert result.exit_code in (0, 1), (command.name, result.stderr)
    assert "internal error" not in result.stderr
    assert_literal(result.stdout)
    assert_literal(result.stderr)


def test_a_value_printed_on_a_terminal_is_escaped_and_piped_is_exact(hostile, db_path, run):
    argv = [*gemini_flow_command(), "--db", str(db_path), "memory", "retrieve", "plain", "-n", "ns"]
    screen, _, status = on_terminal(argv, columns=200)
    assert status == 0
    assert_literal(screen)
    assert "\\x1b]0;pwned\\x07" in screen
    assert run("memory", "retrieve", "plain", "-n", "ns").stdout == HOSTILE + "\n"


def test_a_table_on_a_real_terminal_shows_markup_and_controls_literally(hostile, db_path):
    argv = [*gemini_flow_command(), "--db", str(db_path), "memory", "list"]
    screen, _, status = on_terminal(argv, columns=400)
    assert status == 0
    text = screen.replace("\x1b[1m", "").replace("\x1b[0m", "")  # Rich's own header styling
    assert "hello [/] world [bold red]x[/]" in text
    assert "\\x1b]0;pwned\\x07" in text
    import re

    assert not re.search("\x1b\\][^\x07]*\x07", screen), "no OSC sequence reaches the terminal"
    assert "\x1b[2J" not in screen and "\x9b" not in screen and "\u202e" not in screen


def test_an_error_naming_stored_text_is_escaped(cli):
    result = cli("memory", "retrieve", f"missing{TITLE}", "--format", "table")
    assert result.exit_code == 2  # a key with control characters is refused, and named escaped
    assert_literal(result.stderr)
    assert "\\x1b]0;pwned\\x07" in result.stderr


def test_json_keeps_the_exact_value(cli, hostile):
    result = cli("memory", "retrieve", "plain", "-n", "ns", "--json")
    assert json.loads(result.stdout)["value"] == HOSTILE


def test_a_usage_error_repeating_an_argument_is_escaped(cli):
    result = cli("memory", "search", "*", "--sort-by", f"key{TITLE}", "--format", "table")
    assert result.exit_code == 2
    assert_literal(result.stderr)


# -- secrets in argv (issue 18 case 3) ---------------------------------------------------------

KEY_ENV = {"GEMINI_FLOW_ENCRYPTION_KEY": "k" * 43}


def test_a_secret_given_as_an_argument_is_stored_with_a_warning(cli):
    result = cli("memory", "store", "stripe-api-key", "sk-live-123", env=KEY_ENV)
    assert result.exit_code == 0
    assert result.json["encrypted"] is True
    assert "warning:" in result.stderr and "standard input" in result.stderr


@pytest.mark.parametrize("how", ["stdin", "file", "plain"])
def test_no_warning_for_a_secret_from_stdin_or_a_file_or_a_plain_value(cli, tmp_path, how):
    secret = tmp_path / "secret.txt"
    secret.write_text("sk-live-123")
    argv = {"stdin": ("stripe-api-key",), "file": ("stripe-api-key", "--file", str(secret)),
            "plain": ("greeting", "hello")}[how]
    result = cli("memory", "store", *argv, input="sk-live-123" if how == "stdin" else None, env=KEY_ENV)
    assert result.exit_code == 0, result
    assert "warning" not in result.stderr


def test_the_help_examples_never_put_a_secret_in_argv():
    from tests.commandtree import iter_commands

    for command in iter_commands():
        for line in (command.click.help or "").splitlines():
            words = line.split()
            if "memory" in words and "store" in words and any(w.endswith(("-api-key", "-credentials")) for w in words):
                assert "|" in line or "--file" in line or "<" in line, line
