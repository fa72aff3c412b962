"""The whole kind: no input makes gemini-flow look buggy (CLI.md §9, issue 18).

A property test walks the real command tree (tests/commandtree.py, honouring its SKIPPED
registry) and drives every command with hostile values for each argument and option: text that
is not UTF-8 (surrogate-escaped), lone surrogates, huge and negative numbers, ``nan``/``inf``,
empty strings, folders, missing and unreadable paths, markup, control characters, deep JSON,
absurd durations, mixed with plausible values so that commands get past their first check.
Every exit status must be one of the spec's (0-7), never 70; in JSON mode stdout is JSON (or
JSON Lines for a streaming command), and stderr's error is a JSON object.

A new command is covered without editing this test. The default budget keeps the suite fast;
``HYPOTHESIS_PROFILE=release`` runs many more examples per command (see README, "Testing").
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.commandtree import iter_commands

settings.register_profile(
    "hostile-default", max_examples=6, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "hostile-release", max_examples=150, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROFILE = "hostile-release" if os.environ.get("HYPOTHESIS_PROFILE") == "release" else "hostile-default"

SPEC_STATUSES = set(range(8))

HOSTILE_TEXT = [
    "", " ", "caf\udce9", "\ud83d", "x\udfff", "\x00", "\x1b]0;pwned\x07", "\x1b[2J", "\u202e",
    "[/]", "[bold red]x[/]", "hello [/] world", ":smiley:", "{", "[", '{"a":', "[" * 300 + "]" * 300,
    '"\\ud83d"', "null", "true", "1e999", "-0", "NaN", "x" * 5000, "../../etc/passwd", "-", "--", "*", "%s%n",
]
HOSTILE_NUMBERS = [
    "0", "-1", "1", "2", str(2**31), str(2**63 - 1), str(2**63), str(2**64), str(-(2**63) - 1),
    "99999999999999999999999", "-99999999999999999999999", "1e308", "1e999", "-1e999", "nan", "inf",
    "-inf", "0.5", "1.5", "0x10", "", "1_000",
]
DURATIONS = ["1s", "0s", "-5s", "5m", "1h", "7d", "99999999999999999999d", "1e400s", "9" * 40, "1w", "s", "30"]
PLAUSIBLE = ["default", "k", "coder", "mesh", "majority", "approve", "parallel", "high", "1.0.0", "json",
             "sqlite", "memory.maxValueSize", "security.trustedPaths", "agent", "24h", "key", "*"]


def path_values(root) -> list[str]:
    folder = root / "a-folder"
    folder.mkdir(exist_ok=True)
    unreadable = root / "unreadable"
    if not unreadable.exists():
        unreadable.write_text("{}")
        os.chmod(unreadable, 0)
    empty = root / "empty"
    empty.touch()
    garbage = root / "garbage.json"
    garbage.write_bytes(b"\xff\xfe{" + b"[" * 2000)
    return [str(folder), str(root / "missing" / "file"), str(unreadable), str(empty), str(garbage),
            str(root / "out.new"), str(root), "", "caf\udce9"]


def values_for(param, paths: list[str]):
    type_name = type(param.type).__name__.lower() + " " + getattr(param.type, "name", "").lower()
    pools = [HOSTILE_TEXT, PLAUSIBLE]
    if "int" in type_name or "float" in type_name:
        pools = [HOSTILE_NUMBERS]
    elif "path" in type_name or param.name in ("file", "output", "path", "directory"):
        pools = [paths, HOSTILE_TEXT]
    elif param.name in ("ttl", "lease", "retention", "time_range", "since", "expires", "timeout"):
        pools = [DURATIONS, HOSTILE_NUMBERS]
    return st.one_of(*(st.sampled_from(pool) for pool in pools), st.text(max_size=20))


def command_line(command, paths):
    """A strategy of argv lists for ``command``: each argument given, each option maybe."""
    parts = []
    for param in command.params:
        if param.name == "help" or getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            count = st.integers(1, 2) if param.nargs == -1 else st.just(1)
            values = values_for(param, paths)
            if not param.required:
                parts.append(st.one_of(st.just([]), values.map(lambda v: [v])))
            else:
                parts.append(count.flatmap(lambda n, values=values: st.lists(values, min_size=n, max_size=n)))
            continue
        name = param.opts[0]
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            flags = [[], [name], *([[param.secondary_opts[0]]] if param.secondary_opts else [])]
            parts.append(st.sampled_from(flags))
            continue
        value = values_for(param, paths)
        most = 2 if getattr(param, "multiple", False) else 1
        parts.append(st.lists(value, max_size=most).map(lambda vs, name=name: [x for v in vs for x in (name, v)]))
    return st.tuples(*parts).map(lambda groups: [x for group in groups for x in group])


COMMANDS = [c for c in iter_commands() if not c.skipped]


def assert_json_mode_output(result, command) -> None:
    out = result.stdout.strip()
    if out:
        try:
            json.loads(out)
        except ValueError:
            for line in out.splitlines():  # a streaming command writes JSON Lines (CLI.md §2)
                json.loads(line)
    if result.exit_code not in (0,) and result.stderr.strip():
        last = result.stderr.strip().splitlines()[-1]
        if last.startswith("{"):
            assert json.loads(last)["success"] is False


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_command_survives_hostile_input(cli, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)  # a relative path given to a command lands in the scratch folder
    paths = path_values(tmp_path)
    assert cli("memory", "store", "k", "v").exit_code == 0  # something to act on

    # Global options too: the root's numeric and path options are hardened like every other.
    globals_ = st.one_of(st.just([]), st.just(["-q"]),
                         st.sampled_from(HOSTILE_NUMBERS).map(lambda v: ["--busy-timeout", v]))

    @settings.get_profile(PROFILE)
    @given(argv=command_line(command, paths), prefix=globals_, stdin=st.sampled_from(["", "v", "[" * 5000, "{}"]))
    def check(argv, prefix, stdin):
        result = cli(*prefix, *command.path, *argv, input=stdin)
        assert result.exit_code in SPEC_STATUSES, (command.name, prefix, argv, result.exit_code, result.stderr[-600:])
        assert "internal error" not in result.stderr, (command.name, prefix, argv, result.stderr[-600:])
        assert_json_mode_output(result, command)

    check()
