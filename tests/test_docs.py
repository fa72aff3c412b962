"""completions/ and man/ are generated from the command tree and kept current (issue G)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_generator():
    spec = importlib.util.spec_from_file_location("generate_docs", ROOT / "scripts" / "generate_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate_docs = _load_generator()
GENERATED = [*generate_docs.COMPLETIONS.values(), generate_docs.MAN_PAGE]
requires_groff = pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A generation from the current command tree, in a temporary folder."""
    out = tmp_path_factory.mktemp("generated")
    generate_docs.generate(out)
    return out


@pytest.fixture(scope="module")
def man(fresh) -> str:
    return (fresh / generate_docs.MAN_PAGE).read_text("utf-8")


@pytest.mark.parametrize("relative", GENERATED)
def test_checked_in_file_is_current(fresh, relative):
    checked_in = ROOT / relative
    assert checked_in.is_file(), f"{relative} is missing: run python scripts/generate_docs.py"
    assert checked_in.read_text("utf-8") == (fresh / relative).read_text("utf-8"), (
        f"{relative} is stale: run python scripts/generate_docs.py"
    )


def test_staleness_is_detected(fresh, tmp_path):
    for relative in GENERATED:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fresh / relative, tmp_path / relative)
    assert generate_docs.stale(tmp_path) == []
    page = tmp_path / generate_docs.MAN_PAGE
    page.write_text(page.read_text().replace("memory store", "memory stow", 1))
    (tmp_path / generate_docs.COMPLETIONS["fish"]).unlink()
    assert generate_docs.stale(tmp_path) == [generate_docs.COMPLETIONS["fish"], generate_docs.MAN_PAGE]
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_docs.py"), "--check", "--output", str(tmp_path)],
                           capture_output=True, text=True)
    assert check.returncode == 1 and "stale: man/gemini-flow.1" in check.stderr


def test_generation_is_deterministic(fresh, tmp_path):
    generate_docs.generate(tmp_path)
    for relative in GENERATED:
        assert (tmp_path / relative).read_bytes() == (fresh / relative).read_bytes()


@requires_groff
def test_man_page_renders_without_warnings(fresh):
    result = subprocess.run(["groff", "-ww", "-z", "-man", str(fresh / generate_docs.MAN_PAGE)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@requires_groff
def test_man_page_reads_as_text(fresh):
    text = subprocess.run(["groff", "-man", "-Tascii", "-P-cbou", str(fresh / generate_docs.MAN_PAGE)],
                          capture_output=True, text=True, check=True).stdout
    assert "gemini-flow - a persistent" in text
    assert "gemini-flow memory store user-preferences" in text  # an example, hyphens intact


def test_man_page_is_ascii_roff(man):
    assert man.isascii()
    assert man.startswith('.\\"') and "\n.TH GEMINI\\-FLOW 1 " in man


@pytest.mark.parametrize("section", ["NAME", "SYNOPSIS", "DESCRIPTION", "GLOBAL OPTIONS", "EXIT STATUS",
                                     "ENVIRONMENT", "FILES", "EXAMPLES"])
def test_man_page_has_section(man, section):
    assert f"\n.SH {section}\n" in man


def _plain(roff_text: str) -> str:
    return roff_text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def test_man_page_documents_every_group_command_and_option(man):
    from typer._click import Context

    from gemini_flow_cli.cli import command_tree

    text = _plain(man)
    tree = command_tree()
    root = Context(tree, info_name="gemini-flow")
    for walked, ctx in generate_docs.walk(tree, root):
        if walked is tree:
            continue
        if hasattr(walked, "list_commands") and ctx.parent is root:
            assert f'.SH "{ctx.info_name.upper()} COMMANDS"' in text
        else:
            assert f'.SS "{ctx.command_path}"' in text
        for param in walked.params:
            for opt in param.opts if param.param_type_name == "option" else ():
                assert opt in text, f"{ctx.command_path}: {opt}"


def test_man_page_shows_defaults(man):
    assert "default: auto" in man and "default: 10.0" in man


def test_exit_status_lists_every_error_code(man):
    from gemini_flow_cli.errors import EXIT_STATUS

    section = _plain(man).split(".SH EXIT STATUS", 1)[1].split(".SH ", 1)[0]
    for code, status in EXIT_STATUS.items():
        assert re.search(rf"\\fB{status}\\fR\n[^\n]*\b{code}\b", section), code


def test_examples_come_from_the_docstrings(man):
    from typer._click import Context

    from gemini_flow_cli.cli import command_tree, examples

    section = _plain(man).split(".SH EXAMPLES", 1)[1].split(".SH ", 1)[0]
    tree = command_tree()
    for walked, _ in generate_docs.walk(tree, Context(tree, info_name="gemini-flow")):
        for line in examples(walked.help) if not hasattr(walked, "list_commands") else ():
            assert line in section


def test_environment_lists_the_option_variables(man):
    section = _plain(man).split(".SH ENVIRONMENT", 1)[1].split(".SH ", 1)[0]
    for name in ("GEMINI_FLOW_DB", "GEMINI_FLOW_FORMAT", "GEMINI_FLOW_BUSY_TIMEOUT", "GEMINI_FLOW_NAMESPACE", "NO_COLOR"):
        assert f"\\fB{name}\\fR" in section


def test_roff_escapes_what_roff_would_misread():
    assert generate_docs.roff(".hidden\n'quoted") == "\\&.hidden\n\\&'quoted"
    assert generate_docs.roff("a\\b --x") == "a\\eb \\-\\-x"
    assert generate_docs.roff("10 s \u2026") == "10 s \\[u2026]"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_parses(fresh):
    result = subprocess.run(["bash", "-n", str(fresh / generate_docs.COMPLETIONS["bash"])], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_registers_the_program(fresh):
    script = fresh / generate_docs.COMPLETIONS["bash"]
    result = subprocess.run(["bash", "-c", f"source {script} && complete -p gemini-flow"], capture_output=True, text=True)
    assert result.returncode == 0 and "_gemini_flow_completion" in result.stdout


def test_zsh_completion_is_autoloadable(fresh):
    script = (fresh / generate_docs.COMPLETIONS["zsh"]).read_text()
    assert script.startswith("#compdef gemini-flow\n")
    assert "_GEMINI_FLOW_COMPLETE=complete_zsh" in script


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_parses(fresh):
    result = subprocess.run(["zsh", "-n", str(fresh / generate_docs.COMPLETIONS["zsh"])], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_fish_completion_calls_the_program(fresh):
    script = (fresh / generate_docs.COMPLETIONS["fish"]).read_text()
    assert "complete --command gemini-flow" in script and "_GEMINI_FLOW_COMPLETE=complete_fish" in script


def test_pyproject_installs_every_generated_file():
    text = (ROOT / "pyproject.toml").read_text()
    for relative in GENERATED:
        assert f'"{relative}"' in text
