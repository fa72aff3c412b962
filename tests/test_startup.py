"""Start-up: what a single command pays after Typer's import (issue 20; benchmarks/startup.py).

These tests hold the causes, not the milliseconds (timings belong to benchmarks/): the modules a
plain `memory store` / `memory retrieve` must not import, and the command modules' annotations
being evaluated when they are defined rather than by Typer on every start.
"""

import __future__
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gemini_flow_cli.cli import COMMANDS, GROUPS
from tests.conftest import not_on_a_server

# Each of these costs a plain store or retrieve a millisecond or more, and none is needed there:
# hashlib loads OpenSSL (the audit chain uses CPython's built-in SHA-256), getpass loads termios,
# csv is for --format csv, rich for terminals, sqlite_utils and cryptography for other commands.
NOT_ON_THE_HOT_PATH = ("hashlib", "getpass", "csv", "rich", "sqlite_utils", "cryptography", "platformdirs")


def _imported(db_path: Path, *args: str) -> set[str]:
    env = {**os.environ, "GEMINI_FLOW_DB": str(db_path)}
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "gemini_flow_cli", *args],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr[-500:]
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


@not_on_a_server("psycopg's import is the PostgreSQL floor (benchmarks/backends.py)")
@pytest.mark.parametrize("args", [("memory", "store", "k", "2"), ("memory", "retrieve", "k")])
def test_a_plain_store_or_retrieve_imports_nothing_it_does_not_need(run, db_path, args):
    run("memory", "store", "k", "1")
    imported = _imported(db_path, *args)
    assert "gemini_flow_cli.core.memory" in imported  # the measurement sees our modules
    assert not imported & set(NOT_ON_THE_HOT_PATH), sorted(imported & set(NOT_ON_THE_HOT_PATH))


@pytest.mark.parametrize("module", ["gemini_flow_cli.cli", *(module for module, _ in GROUPS.values()),
                                    *(module for module, _ in COMMANDS.values())])
def test_command_modules_evaluate_their_annotations_when_defined(module):
    """With ``from __future__ import annotations`` every annotation is a string that Typer
    eval()s (compiling it) each time it builds the command: 3-4 ms of every start measured."""
    loaded = importlib.import_module(module)
    assert loaded.__dict__.get("annotations") is not __future__.annotations, (
        f"{module} uses 'from __future__ import annotations': Typer then evaluates every "
        "annotation string on each start")


def test_the_audit_chain_hash_is_sha256():
    import hashlib

    from gemini_flow_cli.core.audit import sha256_constructor

    text = "gf-audit-1 ünïcode".encode()
    assert sha256_constructor()(text).hexdigest() == hashlib.sha256(text).hexdigest()
