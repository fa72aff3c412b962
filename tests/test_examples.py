"""Every documented example runs (issue 21): the README's shell blocks, in order, in one scratch
folder, and every command's --help examples, each in a copy of a prepared folder. An example
line that exits non-zero fails the test unless it announces it (`|| ...`, `; echo "exit $?"`).

Ids are never written into examples: they come from the commands that make them, the way the
README tells a user to (`SWARM=$(gemini-flow swarm init ... --json | jq -r .id)`). The --help
examples run after :data:`PRELUDE`, which makes `$SWARM`, `$AGENT`, `$TASK`, `$DECISION` and
`$BACKUP` so; :data:`SETUP` puts the one object a command's example acts on into the state it
needs. Lines that cannot run here are listed, with the reason, in tests/commandtree.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from commandtree import EXAMPLE_SKIPS, SKIPPED, iter_commands
from gemini_flow_cli.cli import examples

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
needs_tools = pytest.mark.skipif(not (shutil.which("bash") and shutil.which("jq")), reason="needs bash and jq")

PRELUDE = """
SWARM=$(gemini-flow swarm init --topology mesh --json | jq -r .id)
AGENT=$(gemini-flow agent spawn --type coder --capability python --swarm "$SWARM" --json | jq -r .id)
TASK=$(gemini-flow task orchestrate "Write the tests" --swarm "$SWARM" --json | jq -r .taskId)
DECISION=$(gemini-flow consensus request --swarm "$SWARM" --proposal "Ship it" --type majority --timeout 3600000 --json | jq -r .decisionId)
gemini-flow memory store user-preferences '{"theme": "dark"}' -n user >/dev/null
gemini-flow memory store agent-7-status busy -n agent >/dev/null
BACKUP=$(gemini-flow backup create --json | jq -r .path)
"""

# The state a command's examples act on, made first (as the README's tour would have).
SETUP: dict[tuple[str, ...], str] = {
    ("memory", "search"): "gemini-flow memory fts enable >/dev/null",
    # a secret the user holds in the environment, and the encryption key given the README's way
    ("memory", "store"): "gemini-flow memory store config '{\"workers\": 2}' >/dev/null && "
                         "export STRIPE_KEY=sk_test_example GEMINI_FLOW_ENCRYPTION_KEY='an example secret'",
    ("memory", "delete"): "gemini-flow memory store temp-cache-123 a -n cache >/dev/null && "
                          "gemini-flow memory store temp-cache-124 b -n cache >/dev/null && "
                          "gemini-flow memory store lock '\"worker-7\"' >/dev/null && "
                          "gemini-flow memory store tmp-upload-1 partial -n cache >/dev/null",
    ("swarm", "join"): 'gemini-flow swarm leave "$SWARM" "$AGENT" >/dev/null',
    ("memory", "history"): "gemini-flow memory store config '{\"v\": 1}' >/dev/null",
    ("memory", "import"): "gemini-flow memory export -n agent -o agent-memory.jsonl >/dev/null",
    ("task", "progress"): 'gemini-flow task start "$TASK" --agent "$AGENT" >/dev/null',
    ("task", "complete"): 'gemini-flow task start "$TASK" --agent "$AGENT" >/dev/null',
    ("task", "fail"): 'gemini-flow task start "$TASK" --agent "$AGENT" >/dev/null',
    ("task", "retry"): 'gemini-flow task start "$TASK" --agent "$AGENT" >/dev/null && gemini-flow task fail "$TASK" >/dev/null',
    **dict.fromkeys([("session", "checkpoint"), ("session", "end"), ("session", "show")],
                    'SESSION=$(gemini-flow session start --type hive-mind --json | jq -r .id)'),
    ("session", "resume"): 'SESSION=$(gemini-flow session start --type hive-mind --json | jq -r .id) && '
                           "gemini-flow session checkpoint \"$SESSION\" '{\"step\": 3}' >/dev/null",
    **dict.fromkeys([("workflow", "show"), ("workflow", "run")],
                    "printf '%s' '{\"steps\": [{\"id\": \"design\", \"description\": \"Design\"}, "
                    "{\"id\": \"build\", \"description\": \"Build\", \"dependencies\": [\"design\"]}]}' "
                    "| gemini-flow workflow create release >/dev/null"),
    **dict.fromkeys([("neural", "show"), ("neural", "use"), ("neural", "best")],
                    "gemini-flow neural store coordination '{\"split\": \"by-module\"}' --agent-type coder "
                    "--domain web --accuracy 0.9 >/dev/null"),
    **{("hooks", name): "HOOK=$(gemini-flow hooks add task.failed --run true --json | jq -r .id)"
       for name in ("show", "enable", "disable", "remove", "test")},
}


def skip_reason(line: str) -> str | None:
    for piece, reason in EXAMPLE_SKIPS.items():
        if piece in line:
            return reason
    for path, reason in SKIPPED.items():
        if re.search(r"gemini-flow( -\S+)* " + re.escape(" ".join(path)) + r"(\s|$)", line):
            return reason
    return None


def logical_lines(text: str) -> list[str]:
    """Shell commands of a block: continuation lines joined, heredocs and loops kept whole,
    transcript lines (``$ cmd``) reduced to the command and their output dropped."""
    lines = text.splitlines()
    if any(line.startswith("$ ") for line in lines):
        return [line[2:] for line in lines if line.startswith("$ ")]
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = line
        heredoc = re.search(r"<<-?'?(\w+)'?", line)
        if heredoc:
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                command += "\n" + lines[i]
                i += 1
            command += "\n" + lines[i] if i < len(lines) else ""
            i += 1
        while command.rstrip().endswith("\\") and i < len(lines):
            command += "\n" + lines[i]
            i += 1
        opens = re.match(r"\s*(while|for|if)\b", command) or re.search(r"\b(do|then)\s*(#.*)?$", command)
        if opens and not re.search(r"\b(done|fi)\b", command):
            while i < len(lines):
                command += "\n" + lines[i]
                i += 1
                if re.match(r"\s*(done|fi)\b", lines[i - 1]):
                    break
        out.append(command)
    return out


def script(commands: list[str]) -> str:
    """A bash script that runs each command and stops at the first unannounced failure."""
    parts = ["set -o pipefail"]
    for n, command in enumerate(commands):
        reason = skip_reason(command)
        if reason:
            parts.append(f"# skipped ({reason}): {command.splitlines()[0]}")
            continue
        quoted = command.replace("'", "'\\''")
        parts.append(f"{{ {command}\n}}; __rc=$?\nif [ $__rc -ne 0 ]; then printf 'FAILED (exit %s): %s\\n' "
                     f"\"$__rc\" '{quoted}' >&2; exit 1; fi")
    return "\n".join(parts) + "\n"


def run_script(text: str, cwd: Path, home: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEMINI_FLOW_") and k not in ("NO_COLOR",)}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", COLUMNS="100")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        env.pop(name, None)
    env.update(extra)
    return subprocess.run(["bash", "-c", text], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def readme_blocks() -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)


@needs_tools
def test_every_readme_example_runs_in_order(tmp_path):
    commands = [c for block in readme_blocks() for c in logical_lines(block)]
    assert len(commands) > 50
    # the secret the README's examples store, held in the environment as a user would hold it
    result = run_script(script(commands), tmp_path, tmp_path / "home", STRIPE_KEY="sk_test_example")
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prepared")
    result = run_script("set -e\n" + PRELUDE + 'declare -p SWARM AGENT TASK DECISION BACKUP > vars.sh\n',
                        folder, folder / "home")
    assert result.returncode == 0, result.stderr
    return folder


HELP_EXAMPLES = [(c.path, lines) for c in iter_commands() if (lines := examples(c.click.help))]


@needs_tools
@pytest.mark.parametrize("path, lines", HELP_EXAMPLES, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_help_example_runs(prepared, tmp_path, path, lines):
    folder = tmp_path / "f"
    shutil.copytree(prepared, folder, symlinks=True)
    setup = SETUP.get(path, "")
    text = "set -e\n. ./vars.sh\n" + setup + "\nset +e\n" + script(lines)
    result = run_script(text, folder, folder / "home")
    assert result.returncode == 0, result.stderr[-3000:]


def test_no_example_uses_an_id_the_tool_never_makes():
    # An id, not a key that starts like one ("agent-7-status" is a memory key).
    made_up = re.compile(r"\b((swarm|agent|decision)-(\d+|01j9x3k2a7m4q8zq9c)|task-\d+)\b(?!-)")
    texts = [*readme_blocks(), *("\n".join(lines) for _, lines in HELP_EXAMPLES)]
    found = sorted({m.group(0) for text in texts for m in made_up.finditer(text)})
    assert not found, f"examples use ids the tool never makes; take them from the command that makes them: {found}"


def test_logical_lines_keep_heredocs_loops_and_continuations_whole():
    block = "cat > f <<'X'\na\nX\ngemini-flow a \\\n  b\nwhile x; do\n  y\ndone\n# comment\n$ ignored?\n"
    assert logical_lines(block.replace("$ ignored?\n", "")) == ["cat > f <<'X'\na\nX", "gemini-flow a \\\n  b",
                                                                 "while x; do\n  y\ndone"]


def _conditions(command: str) -> list[str]:
    """The condition lists of a command's ``while``/``until``/``if``/``elif`` (up to ``do``/``then``)."""
    return [m.group(2) for m in re.finditer(r"\b(while|until|if|elif)\b(.*?)(?:;|\n)\s*(do|then)\b", command, re.S)]


def test_no_example_loop_or_test_decides_on_jq_instead_of_the_command():
    # `while id=$(gemini-flow task claim ... | jq -er .id)` never ends with jq 1.6: `jq -e` on empty
    # input exits 0, and without pipefail the pipeline's status is jq's, so claim's exit 1 is lost.
    texts = [*(c for block in readme_blocks() for c in logical_lines(block)),
             *(line for _, lines in HELP_EXAMPLES for line in lines)]
    found = [text for text in texts for condition in _conditions(text) if re.search(r"\|\s*jq\b", condition)]
    assert not found, f"let the command's own exit status decide, then read its output with jq: {found}"
    assert _conditions('while x=$(a | jq -er .id); do b; done') == [' x=$(a | jq -er .id)']


@needs_tools
def test_the_readme_work_loops_end_when_nothing_is_ready_without_pipefail(prepared, tmp_path):
    # The README run above sets pipefail, which would hide a loop that only ends through it: run each
    # task-claiming loop as a user's plain bash would, under a timeout, and see it finish the work.
    loops = [c for block in readme_blocks() for c in logical_lines(block)
             if c.lstrip().startswith("while") and "task claim" in c]
    assert len(loops) >= 2
    for n, loop in enumerate(loops):
        folder = tmp_path / f"f{n}"
        shutil.copytree(prepared, folder, symlinks=True)
        text = ". ./vars.sh\nCODER=$AGENT\n" + loop + "\necho loop-ended\n"
        result = run_script(f"timeout 60 bash -c {shlex.quote(text)}", folder, folder / "home")
        assert result.returncode == 0 and result.stdout.strip().endswith("loop-ended"), (loop, result.stderr[-2000:])
        left = run_script('. ./vars.sh\ngemini-flow task list --status pending --agent "$AGENT" --json',
                          folder, folder / "home")
        assert left.returncode == 0 and json.loads(left.stdout)["total"] == 0, (loop, left.stdout, left.stderr)
