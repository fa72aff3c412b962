"""Keys: where the secret comes from, key files, and rotation."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest

from gemini_flow_cli.core import config
from tests.conftest import gemini_flow_command

OLD = "old secret for rotation tests"
NEW = "new secret for rotation tests"


def default_key_file() -> Path:
    return config.default_key_file(os.environ)


def test_generate_writes_a_0600_key_file_in_the_user_config_folder(cli):
    result = cli("key", "generate")
    assert result.exit_code == 0
    path = Path(result.json["keyFile"])
    assert path == default_key_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    assert len(secret) >= 43
    assert secret not in result.stdout and secret not in result.stderr


def test_generate_refuses_to_overwrite(cli):
    cli("key", "generate")
    before = default_key_file().read_bytes()
    result = cli("key", "generate")
    assert result.exit_code == 3
    assert "refusing to overwrite" in result.error["message"]
    assert default_key_file().read_bytes() == before


def test_generate_is_0600_whatever_the_umask(run, tmp_path):
    path = tmp_path / "k"
    old = os.umask(0)
    try:
        assert run("key", "generate", "--file", str(path)).returncode == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_two_generated_keys_differ(cli, tmp_path):
    cli("key", "generate", "--file", str(tmp_path / "a"))
    cli("key", "generate", "--file", str(tmp_path / "b"))
    assert (tmp_path / "a").read_text() != (tmp_path / "b").read_text()


def test_the_key_file_encrypts_and_decrypts(cli):
    cli("key", "generate")
    assert cli("memory", "store", "svc", "s3cret", "--encrypt").exit_code == 0
    assert cli("memory", "retrieve", "svc").json["value"] == "s3cret"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_key_file_open_to_group_or_others_is_refused_with_the_chmod_to_run(cli, mode):
    cli("key", "generate")
    path = default_key_file()
    os.chmod(path, mode)
    result = cli("memory", "store", "svc", "s3cret", "--encrypt")
    assert result.exit_code == 4
    assert f"chmod 600 {path}" in result.error["message"]


def test_security_key_file_setting_names_the_key_file(cli, tmp_path):
    path = tmp_path / "project.key"
    cli("key", "generate", "--file", str(path))
    cli("config", "set", "security.keyFile", str(path))
    assert cli("memory", "store", "svc", "x", "--encrypt").exit_code == 0
    assert cli("key", "status").json["keySource"] == f"key file {path}"


def test_env_key_beats_the_key_file(cli):
    cli("key", "generate")
    cli("memory", "store", "svc", "x", "--encrypt", env={"GEMINI_FLOW_ENCRYPTION_KEY": OLD})
    assert cli("memory", "retrieve", "svc", env={"GEMINI_FLOW_ENCRYPTION_KEY": OLD}).exit_code == 0
    assert cli("memory", "retrieve", "svc").exit_code == 4  # the file's key is another one


def _all_options():
    from gemini_flow_cli.cli import command_tree

    def walk(command, path):
        for param in command.params:
            yield path, param
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(command_tree(), []))


def test_no_command_accepts_a_key_on_the_command_line():
    forbidden = re.compile(r"^--?(encryption-)?(key|secret|password|passphrase)$|^--(new-)?(encryption-)?key$")
    for path, param in _all_options():
        for opt in getattr(param, "opts", []):
            assert not forbidden.match(opt), (path, opt)
    # The only key options name files, never secrets (serve's --keyfile: the TLS private key's file).
    keyish = {opt for _, p in _all_options() if p.param_type_name == "option" for opt in p.opts if "key" in opt}
    assert keyish <= {"--new-key-file", "--keyfile"}



@pytest.mark.parametrize("args", [
    ("memory", "store", "svc", "x", "--encrypt", "--key", OLD),
    ("memory", "retrieve", "svc", "--key", OLD),
    ("key", "rotate", "--new-key", NEW),
    ("memory", "retrieve", "svc", "--encryption-key", OLD),
])
def test_a_key_given_as_an_argument_is_a_usage_error(cli, args):
    assert cli(*args).exit_code == 2


# -- rotation ------------------------------------------------------------------------------------


def _fill(db_path: Path, count: int) -> None:
    """Many encrypted values, written through the core (one process, one derivation)."""
    from gemini_flow_cli.core.crypto import Cipher
    from gemini_flow_cli.core.db import Database
    from gemini_flow_cli.core.memory import MemoryManager

    db = Database.open(db_path)
    try:
        cipher = Cipher(db, OLD)
        manager = MemoryManager(db, cipher=lambda: cipher)
        with db.write():
            for i in range(count):
                manager.store(f"secret-{i}", f"value-{i}", encrypted=True)
    finally:
        db.close()


def _readable_with(db_path: Path, secret: str, count: int) -> bool:
    from gemini_flow_cli.core.crypto import Cipher
    from gemini_flow_cli.core.db import Database

    db = Database.open(db_path, create=False)
    try:
        cipher = Cipher(db, secret)
        if not cipher.matches():
            return False
        rows = db.conn.execute("SELECT namespace, key, value FROM memory_store WHERE encrypted = 1").fetchall()
        assert len(rows) == count
        for namespace, key, stored in rows:
            assert json.loads(cipher.decrypt(namespace, key, stored)) == f"value-{key.split('-')[1]}"
        return True
    finally:
        db.close()


def test_rotate_with_the_new_key_in_the_environment(cli, db_path, monkeypatch):
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", OLD)
    _fill(db_path, 20)
    result = cli("key", "rotate", env={"GEMINI_FLOW_NEW_ENCRYPTION_KEY": NEW})
    assert result.exit_code == 0, result
    assert result.json["rotated"] == 20
    assert _readable_with(db_path, NEW, 20)
    assert not _readable_with(db_path, OLD, 20)
    assert cli("memory", "retrieve", "secret-3", env={"GEMINI_FLOW_ENCRYPTION_KEY": NEW}).json["value"] == "value-3"
    entries = cli("audit", "list", "--action", "rotate").json["entries"]
    assert entries[0]["details"] == {"reencrypted": 20}


def test_rotate_to_a_new_key_file_points_security_key_file_at_it(cli, db_path, tmp_path):
    cli("key", "generate")
    cli("memory", "store", "a-credentials", "pw", "--encrypt")
    new = tmp_path / "new.key"
    cli("key", "generate", "--file", str(new))
    result = cli("key", "rotate", "--new-key-file", str(new))
    assert result.exit_code == 0, result
    assert cli("config", "get", "security.keyFile").json["value"] == str(new)
    assert cli("memory", "retrieve", "a-credentials").json["value"] == "pw"
    # Running it again is harmless.
    again = cli("key", "rotate", "--new-key-file", str(new))
    assert again.exit_code == 0 and again.json["alreadyRotated"] is True


def test_rotate_without_a_new_key_is_a_usage_error(cli, monkeypatch):
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", OLD)
    assert cli("key", "rotate").exit_code == 2


def test_rotate_with_a_wrong_current_key_changes_nothing(cli, db_path, monkeypatch):
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", OLD)
    _fill(db_path, 3)
    before = db_path.read_bytes()
    result = cli("key", "rotate", env={"GEMINI_FLOW_ENCRYPTION_KEY": "wrong", "GEMINI_FLOW_NEW_ENCRYPTION_KEY": NEW})
    assert result.exit_code == 4
    assert _readable_with(db_path, OLD, 3)
    assert db_path.read_bytes() == before


def _locked(db_path: Path) -> bool:
    """Whether another process holds the write lock (i.e. is inside its transaction)."""
    conn = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


def test_rotate_killed_part_way_leaves_every_value_readable_and_a_retry_finishes(db_path):
    count = 3000
    _fill(db_path, count)
    env = {**os.environ, "GEMINI_FLOW_ENCRYPTION_KEY": OLD, "GEMINI_FLOW_NEW_ENCRYPTION_KEY": NEW}
    argv = [*gemini_flow_command(), "--db", str(db_path), "key", "rotate"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not _locked(db_path):
        assert proc.poll() is None, "rotate finished before it could be killed part way"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # Rolled back: everything still under the old key.
    assert _readable_with(db_path, OLD, count)
    assert not _readable_with(db_path, NEW, count)
    retry = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert retry.returncode == 0, retry.stderr
    assert json.loads(retry.stdout)["rotated"] == count
    assert _readable_with(db_path, NEW, count)
