"""`python -m build` makes a wheel and an sdist that install and run (issue G).

The wheel goes into a fresh virtual environment whose only gemini-flow is the wheel's. Its
dependencies come from this test run's environment through a path file, not from an index, so
the test needs no network and takes seconds: what it checks is our package, not pip's resolver.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from gemini_flow_cli import __version__

ROOT = Path(__file__).resolve().parent.parent
DATA_FILES = [
    "share/man/man1/gemini-flow.1",
    "share/bash-completion/completions/gemini-flow.bash",
    "share/zsh/site-functions/_gemini-flow",
    "share/fish/vendor_completions.d/gemini-flow.fish",
]


def _setuptools_is_recent() -> bool:
    try:
        return int(version("setuptools").split(".")[0]) >= 68
    except (PackageNotFoundError, ValueError):
        return False


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist, then the wheel built from that sdist (build's default), as a user would get them."""
    out = tmp_path_factory.mktemp("dist")
    # Without isolation when this environment already has the build backend: no index, faster.
    isolation = ["--no-isolation"] if _setuptools_is_recent() else []
    result = subprocess.run([sys.executable, "-m", "build", *isolation, "--outdir", str(out), str(ROOT)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_build_makes_a_wheel_and_an_sdist_of_this_version(dist):
    assert _one(dist, "*.whl").name == f"gemini_flow-{__version__}-py3-none-any.whl"
    assert _one(dist, "*.tar.gz").name == f"gemini_flow-{__version__}.tar.gz"


def test_the_wheel_carries_the_man_page_and_completions(dist):
    wheel = zipfile.ZipFile(_one(dist, "*.whl"))
    data = f"gemini_flow-{__version__}.data/data/"
    for relative in DATA_FILES:
        assert data + relative in wheel.namelist(), relative
    page = wheel.read(data + "share/man/man1/gemini-flow.1").decode()
    assert page == (ROOT / "man" / "gemini-flow.1").read_text(), "the wheel ships the checked-in page"
    assert ".TH GEMINI\\-FLOW 1" in page
    assert "gemini_flow_cli/core/sql/" in " ".join(wheel.namelist()), "the schema SQL is package data"


def test_the_sdist_carries_what_the_wheel_is_built_from(dist):
    names = tarfile.open(_one(dist, "*.tar.gz")).getnames()
    prefix = f"gemini_flow-{__version__}/"
    for relative in ("pyproject.toml", "README.md", "man/gemini-flow.1", "completions/gemini-flow.bash",
                     "completions/_gemini-flow", "completions/gemini-flow.fish"):
        assert prefix + relative in names, relative


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; dependencies visible through a .pth file."""
    home = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True, timeout=120)
    python = home / "bin" / "python"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
         str(_one(dist, "*.whl"))],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # Our dependencies (typer, rich, ...) from this environment. A path line in a .pth file does
    # not process that folder's own .pth files, so an editable gemini-flow there stays invisible.
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return home


def _installed(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEMINI_FLOW_") and k != "PYTHONPATH"}
    return subprocess.run([str(venv / "bin" / "gemini-flow"), *argv], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60)


def test_the_installed_wheel_runs(venv, tmp_path):
    result = _installed(venv, "--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"gemini-flow {__version__}\n"


def test_the_installed_program_is_the_wheel_not_the_checkout(venv, tmp_path):
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import gemini_flow_cli; print(gemini_flow_cli.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv), where


def test_the_installed_wheel_stores_and_retrieves(venv, tmp_path):
    assert _installed(venv, "memory", "store", "greeting", '{"text": "hello"}', cwd=tmp_path).returncode == 0
    result = _installed(venv, "memory", "retrieve", "greeting", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"text": "hello"}
    assert (tmp_path / ".hive-mind" / "hive.db").is_file()


def test_the_man_page_is_installed_under_share(venv):
    page = venv / "share" / "man" / "man1" / "gemini-flow.1"
    assert page.is_file() and page.read_text() == (ROOT / "man" / "gemini-flow.1").read_text()
    assert (venv / "share" / "bash-completion" / "completions" / "gemini-flow.bash").is_file()


def test_every_optional_extra_has_an_install_hint_from_the_checkout():
    """A command that needs an extra says how to add it to gemini-flow's own environment
    (errors.install_extra_hint): each extra pyproject.toml declares (but the test one) has its
    packages for `pipx inject`, and no hint sends the user to PyPI's `gemini-flow[...]`."""
    import re

    from gemini_flow_cli.errors import install_extra_hint

    text = (ROOT / "pyproject.toml").read_text("utf-8")
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras = set(re.findall(r"^([a-z]+) = \[", section, flags=re.M)) - {"test"}
    assert extras == {"postgres", "server", "mcp", "yaml"}
    for extra in extras:
        hint = install_extra_hint(extra)
        assert f"pip install '.[{extra}]'" in hint and "pipx inject gemini-flow " in hint
        assert "gemini-flow[" not in hint
