"""What a person sees on a terminal, and what a pipe gets instead (issue G, CLI.md §2).

The terminal tests run the real program (or the real Output class in a child process) on a
pseudo-terminal of a known size and read back what it drew.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemini_flow_cli.output import fit_widths, relative_time
from tests.conftest import gemini_flow_command

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = set("┏┓┗┛━┃│─┡┩")


def _env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    env["LC_ALL"] = env["LANG"] = "C.UTF-8"  # box drawing and the bar need a UTF-8 terminal
    env.update(extra or {})
    return env


def on_terminal(argv, *, columns=60, env=None, cwd=None, stdout_tty=True, stderr_tty=True, timeout=60):
    """Run ``argv`` with stdout and/or stderr on a pty of ``columns``; returns (screen, piped, status).

    ``screen`` is everything written to the terminal, ``piped`` what went to the other stream.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=slave if stdout_tty else subprocess.PIPE,
        stderr=slave if stderr_tty else subprocess.PIPE,
        env=_env(env), cwd=cwd,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    piped = (proc.stdout or proc.stderr).read().decode() if not (stdout_tty and stderr_tty) else ""
    status = proc.wait(timeout=timeout)
    return b"".join(chunks).decode("utf-8", "replace"), piped, status


def python_snippet(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def visible_lines(screen: str) -> list[str]:
    return [line for line in ANSI.sub("", screen).replace("\r\n", "\n").split("\n") if line.strip()]


@pytest.fixture
def populated(db_path, run):
    assert run("memory", "store", "user-preferences", '{"theme": "dark"}').returncode == 0
    return db_path


# -- tables -----------------------------------------------------------------------------------


def test_a_table_on_a_terminal_fits_its_width(populated):
    screen, _, status = on_terminal([*gemini_flow_command(), "--db", str(populated), "migrate", "list"], columns=60)
    assert status == 0
    lines = visible_lines(screen)
    assert BOX & set(screen), screen
    assert "version" in screen and "description" in screen
    assert all(len(line) <= 60 for line in lines), lines
    assert "…" in screen, "long descriptions end in an ellipsis"
    assert "\x1b[" in screen, "a terminal gets styling"


def test_the_same_command_piped_is_json(populated, run):
    result = run("migrate", "list", db=populated)
    assert json.loads(result.stdout)["migrations"]


@pytest.mark.parametrize("how", [{"env": {"NO_COLOR": "1"}}, {"flag": "--no-color"}])
def test_no_ansi_on_a_terminal_with_no_color(populated, how):
    argv = [*gemini_flow_command(), *([how["flag"]] if "flag" in how else []), "--db", str(populated), "migrate", "list"]
    screen, _, status = on_terminal(argv, env=how.get("env"))
    assert status == 0
    assert BOX & set(screen), "still a table"
    assert "\x1b" not in screen


def test_long_values_are_cut_with_an_ellipsis_and_dates_are_relative(tmp_path):
    code = """
        from gemini_flow_cli.core import clock
        from gemini_flow_cli.output import Output
        now = clock.now()
        rows = [{"key": "k%d" % i, "value": "x" * 300, "updatedAt": clock.iso(now - 180 * (i + 1))} for i in range(3)]
        Output("auto").emit({"results": rows}, rows=rows)
    """
    screen, _, status = on_terminal(python_snippet(code), columns=60)
    assert status == 0, screen
    lines = visible_lines(screen)
    assert all(len(line) <= 60 for line in lines), lines
    assert "xxx…" in screen
    assert "3 min ago" in screen and "9 min ago" in screen
    assert not re.search(r"\d{4}-\d\d-\d\dT", screen), "no ISO dates in a table"


def test_json_keeps_iso_dates(tmp_path):
    code = """
        from gemini_flow_cli.output import Output
        rows = [{"key": "k", "updatedAt": "2025-08-03T11:30:00Z"}]
        Output("auto").emit({"results": rows}, rows=rows)
    """
    result = subprocess.run(python_snippet(code), capture_output=True, text=True, env=_env())
    assert json.loads(result.stdout) == {"results": [{"key": "k", "updatedAt": "2025-08-03T11:30:00Z"}]}


# -- progress ---------------------------------------------------------------------------------

PROGRESS = """
    import time
    from gemini_flow_cli.output import Output
    out = Output("auto", no_color={no_color})
    with out.progress("Importing", total=5) as bar:
        for _ in range(5):
            time.sleep(0.02)
            bar.advance()
    print("done")
"""


def test_a_progress_bar_is_drawn_on_a_terminal_stderr():
    screen, stdout, status = on_terminal(python_snippet(PROGRESS.format(no_color=False)), stdout_tty=False)
    assert status == 0
    assert stdout == "done\n", "the bar never touches stdout"
    assert "Importing" in screen and "5/5" in screen
    assert "━" in screen, "a Rich bar"


def test_the_progress_bar_has_no_ansi_with_no_color():
    screen, _, status = on_terminal(python_snippet(PROGRESS.format(no_color=False)), stdout_tty=False,
                                    env={"NO_COLOR": "1"})
    assert status == 0
    assert "Importing 5/5" in screen
    assert "\x1b" not in screen


def test_no_progress_when_stderr_is_not_a_terminal():
    screen, stderr, status = on_terminal(python_snippet(PROGRESS.format(no_color=False)), stderr_tty=False)
    assert status == 0
    assert "done" in screen
    assert stderr == ""


# -- pipes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["memory", "store", "k", "v"],
        ["memory", "retrieve", "user-preferences"],
        ["memory", "retrieve", "missing"],
        ["--format", "table", "migrate", "list"],
        ["--format", "table", "memory", "retrieve", "missing"],
        ["migrate", "status"],
        ["memory", "store", "--help"],
        ["memroy"],
        [],
    ],
    ids=lambda argv: " ".join(argv) or "(nothing)",
)
def test_no_ansi_when_piped(populated, run, argv):
    for env in ({}, {"NO_COLOR": "1"}):
        result = run(*argv, db=populated, env={"TERM": "xterm-256color", **env})
        assert "\x1b" not in result.stdout + result.stderr, argv


def test_a_forced_table_in_a_pipe_is_plain_text(populated, run):
    result = run("--format", "table", "migrate", "list", db=populated)
    assert result.returncode == 0
    assert "version" in result.stdout and "\x1b" not in result.stdout


# -- the pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds_ago, shown",
    [(0, "just now"), (30, "30 s ago"), (180, "3 min ago"), (7200, "2 h ago"), (3 * 86400, "3 d ago"),
     (-600, "in 10 min"), (400 * 86400, "2023-07-27")],
)
def test_relative_time(seconds_ago, shown):
    now = 1725000000.0  # 2024-08-30T06:40:00Z
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - seconds_ago))
    assert relative_time(iso, now=now) == shown


@given(
    st.lists(st.tuples(st.integers(1, 40), st.integers(1, 400)), min_size=1, max_size=8),
    st.integers(0, 300),
)
def test_fit_widths_fits_and_gives_way_in_order(columns, available):
    headers = [h for h, _ in columns]
    data = [d for _, d in columns]
    natural = [min(max(h, d), 60) for h, d in columns]
    widths = fit_widths(data, headers, available)
    assert all(min(3, n) <= w <= n for w, n in zip(widths, natural))
    if sum(min(3, n) for n in natural) <= available:
        assert sum(widths) <= available
    # While values can keep 12 characters (the first column 24) and headers 8, nothing is cut below.
    keep = [min(n, max(3, min(d, 24 if i == 0 else 12), min(h, 8))) for i, (n, d, h) in enumerate(zip(natural, data, headers))]
    if sum(keep) <= available:
        assert all(w >= k for w, k in zip(widths, keep))


def test_ids_keep_their_width_while_long_values_and_headers_give_way():
    # agent list at 90 columns: the id (22) stays whole; a long value and long headers give way.
    data, headers = [22, 7, 5, 6, 12, 8, 3], [2, 4, 4, 6, 12, 12, 16]
    widths = fit_widths(data, headers, 90 - (3 * 7 + 1))
    assert widths[0] == 22 and widths[1] == 7
    assert sum(widths) <= 68


@pytest.fixture
def streaming_db(db_path, tmp_path):
    """A database whose streaming commands each print far more than a pipe holds (64 KiB): 3,000
    entries (one batch) and 300 audit rows (300 deletes), so the reader leaving always meets a write."""
    argv = [*gemini_flow_command(), "--db", str(db_path), "-q"]
    ops = "".join(json.dumps({"action": "store", "key": f"k{i}", "value": "x" * 50}) + "\n" for i in range(3000))
    assert subprocess.run([*argv, "memory", "batch", "-"], input=ops, capture_output=True, text=True,
                          timeout=120).returncode == 0
    assert subprocess.run([*argv, "memory", "delete", *(f"k{i}" for i in range(2700, 3000))],
                          capture_output=True, timeout=120).returncode == 0
    return db_path


STREAMING = {
    "memory export": ["memory", "export"],
    "memory list jsonl": ["--format", "jsonl", "memory", "list", "--limit", "5000"],
    "memory search jsonl": ["--format", "jsonl", "memory", "search", "k*", "--limit", "5000"],
    "audit list jsonl": ["--format", "jsonl", "audit", "list", "--limit", "1000"],
    "memory watch": ["memory", "watch", "--since", "0", "--timeout", "1s"],
    "memory batch": ["memory", "batch", "-"],
}


@pytest.mark.parametrize("name", STREAMING)
def test_a_reader_that_leaves_early_ends_the_command_quietly_with_exit_0(streaming_db, name):
    # `gemini-flow ... | head -1`: the reader closes the pipe after one line. The command stops
    # (EPIPE on its next write) with exit 0, nothing on stderr and no traceback (README "On a
    # terminal, in a pipe"). Typer alone would exit 1 silently, and only when head had already left.
    stdin = "".join(json.dumps({"action": "store", "key": f"b{i}", "value": "y" * 50}) + "\n" for i in range(3000))
    for _ in range(3):  # the failure this guards against came in about half of the runs
        proc = subprocess.Popen([*gemini_flow_command(), "--db", str(streaming_db), *STREAMING[name]],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if name == "memory batch":
            proc.stdin.write(stdin.encode())
        proc.stdin.close()
        first = proc.stdout.readline()
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, stderr
        assert first.strip() and stderr == ""
    if name == "memory batch":  # what was written stays written: the output came after the commit
        check = subprocess.run([*gemini_flow_command(), "--db", str(streaming_db), "memory", "retrieve", "b2999"],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0 and check.stdout.strip() == "y" * 50
