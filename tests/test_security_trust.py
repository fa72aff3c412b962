"""Who may open a database (CLI.md §9, issue 18 case 1): git's safe.directory for gemini-flow.

Ownership needs a second user. As root, the tests hand files to another account with chown; the
planted-database scenario of the issue runs the real program as two ordinary users created here
(useradd) with runuser. Where that is impossible (not root, no useradd, a Python the other users
cannot run) those tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

import gemini_flow_cli
from gemini_flow_cli.core import db as dbmod
from gemini_flow_cli.core import trust

from tests.conftest import TEST_SERVER

# File modes, owners and planted files are a local database's; a server's are its roles and grants.
pytestmark = pytest.mark.skipif(bool(TEST_SERVER), reason="not on PostgreSQL: file modes and owners are a local file's")

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="handing a file to another user (chown) needs root")


def other_uid() -> int:
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return 65534


def give_away(*paths: Path) -> None:
    for path in paths:
        os.chown(path, other_uid(), -1, follow_symlinks=False)


@pytest.fixture
def made(run, db_path):
    assert run("memory", "store", "k", "v").returncode == 0
    return db_path


# -- the checks, one by one (run as the owner, files handed to someone else) -------------------


@needs_root
@pytest.mark.parametrize("which", ["file", "folder", "wal", "shm"])
def test_a_database_part_owned_by_another_user_is_refused(made, run, which):
    # A connection that stays open keeps -wal and -shm on disk.
    keep = sqlite3.connect(made)
    keep.execute("SELECT count(*) FROM memory_store").fetchone()
    target = {"file": made, "folder": made.parent, "wal": Path(f"{made}-wal"), "shm": Path(f"{made}-shm")}[which]
    assert target.exists()
    give_away(target)
    result = run("memory", "retrieve", "k")
    keep.close()
    assert result.returncode == 4, result.stderr
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "PERMISSION_DENIED"
    assert str(target) in error["message"] and "security.trustedPaths" in error["message"]
    assert error["details"]["reason"] == "owner"


@pytest.mark.parametrize("which", ["file", "folder"])
@pytest.mark.parametrize("mode", [0o020, 0o002])
def test_a_database_writable_by_group_or_others_is_refused(made, run, which, mode):
    target = made if which == "file" else made.parent
    os.chmod(target, (0o600 if which == "file" else 0o700) | mode)
    result = run("memory", "store", "k2", "v")
    assert result.returncode == 4, result.stderr
    error = json.loads(result.stderr)["error"]
    assert error["details"] == {"path": str(target), "mode": f"{(0o600 if which == 'file' else 0o700) | mode:04o}",
                                "reason": "mode"}
    assert f"chmod go-w {target}" in error["message"]
    os.chmod(target, 0o600 if which == "file" else 0o700)
    assert run("memory", "retrieve", "k").stdout == "v\n"


def test_a_symlink_is_resolved_and_the_real_file_checked(made, run, tmp_path):
    os.chmod(made.parent, 0o777)
    link = tmp_path / "mine" / "link.db"
    link.parent.mkdir(mode=0o700)
    link.symlink_to(made)
    result = run("memory", "retrieve", "k", db=link)
    assert result.returncode == 4
    assert str(made.parent) in json.loads(result.stderr)["error"]["message"]


def test_trusted_paths_in_the_user_file_allow_it(made, run):
    os.chmod(made.parent, 0o777)
    assert run("memory", "retrieve", "k").returncode == 4
    assert run("config", "set", "--user", "security.trustedPaths", str(made.parent)).returncode == 0
    assert run("memory", "retrieve", "k").stdout == "v\n"


@pytest.mark.parametrize("entry, trusted", [
    ("{db}", True), ("{folder}", True), ("{project}", True), ("{project}/*", True), ("*", True),
    ("{project}/other", False), ("/nowhere/*", False),
])
def test_trusted_path_entries(tmp_path, entry, trusted):
    db = tmp_path / "proj" / ".hive-mind" / "hive.db"
    text = entry.format(db=db, folder=db.parent, project=db.parent.parent)
    assert trust.is_trusted(db, [text]) is trusted


def test_a_database_cannot_trust_itself(run, made):
    result = run("config", "set", "security.trustedPaths", "*")
    assert result.returncode == 2
    assert "--user" in json.loads(result.stderr)["error"]["message"]
    # ... and a row planted in its configuration table is never read.
    conn = sqlite3.connect(made)
    conn.execute("INSERT INTO configuration (key, value, category, updated_at) VALUES "
                 "('security.trustedPaths', '[\"*\"]', 'security', 0)")
    conn.commit()
    conn.close()
    os.chmod(made.parent, 0o777)
    assert run("memory", "retrieve", "k").returncode == 4


@needs_root
def test_a_key_file_owned_by_another_user_is_refused(tmp_path, run, made):
    key = tmp_path / "keys" / "key"
    key.parent.mkdir(mode=0o700)
    key.write_text("s" * 43)
    os.chmod(key, 0o600)
    give_away(key)
    result = run("memory", "store", "x-api-key", "--encrypt", input="secret",
                 env={"GEMINI_FLOW_KEY_FILE": str(key)})
    assert result.returncode == 4
    assert "owned by" in json.loads(result.stderr)["error"]["message"]


def test_a_key_folder_writable_by_others_is_refused(tmp_path, run, made):
    key = tmp_path / "keys" / "key"
    key.parent.mkdir(mode=0o700)
    key.write_text("s" * 43)
    os.chmod(key, 0o600)
    os.chmod(key.parent, 0o777)
    result = run("memory", "store", "x-api-key", "--encrypt", input="secret",
                 env={"GEMINI_FLOW_KEY_FILE": str(key)})
    assert result.returncode == 4
    assert "writable by group or others" in json.loads(result.stderr)["error"]["message"]


@needs_root
def test_discovery_stops_at_a_folder_owned_by_another_user(tmp_path):
    shared = tmp_path / "shared"
    (shared / ".hive-mind").mkdir(parents=True)
    (shared / ".hive-mind" / "hive.db").write_bytes(b"")
    project = shared / "proj"
    project.mkdir()
    assert dbmod.discover(project) == shared / ".hive-mind" / "hive.db"  # all mine: found
    give_away(shared)
    assert dbmod.discover(project) == project / ".hive-mind" / "hive.db"  # not walked into


# -- the scenario, with two real users ---------------------------------------------------


ALICE, BOB = "gemini-flow-test-a", "gemini-flow-test-b"
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


def _users_or_skip() -> None:
    if not IS_ROOT:
        pytest.skip("creating users and running as them needs root")
    if not (shutil.which("useradd") and os.path.exists(RUNUSER)):
        pytest.skip("useradd/runuser are not installed")
    for name in (ALICE, BOB):
        try:
            pwd.getpwnam(name)
        except KeyError:
            made = subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], capture_output=True, text=True)
            if made.returncode not in (0, 9):  # 9: created meanwhile by a parallel run
                pytest.skip(f"useradd failed: {made.stderr.strip()}")


def _python_for_users() -> list[str]:
    """A Python another user can run, with this checkout and its dependencies importable."""
    repo = Path(gemini_flow_cli.__file__).resolve().parent.parent
    site = Path(sysconfig.get_paths()["purelib"])
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        probe = subprocess.run(
            [RUNUSER, "-u", ALICE, "--", candidate, "-c",
             "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{repo}:{site}"},
        )
        if probe.returncode == 0 and probe.stdout.strip() == "%d.%d" % sys.version_info[:2]:
            check = subprocess.run(
                [RUNUSER, "-u", ALICE, "--", candidate, "-c", "import gemini_flow_cli.cli, cryptography"],
                capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{repo}:{site}"},
            )
            if check.returncode == 0:
                return [candidate, "-m", "gemini_flow_cli"]
    pytest.skip(f"no Python {sys.version_info[0]}.{sys.version_info[1]} that other users may run "
                f"with {repo} and {site} readable")


@pytest.fixture
def machine():
    """A /tmp folder others can enter (pytest's tmp_path is private to root), and two users."""
    _users_or_skip()
    root = Path(tempfile.mkdtemp(prefix="gemini-flow-shared-"))
    os.chmod(root, 0o755)
    python = _python_for_users()
    repo = Path(gemini_flow_cli.__file__).resolve().parent.parent
    site = Path(sysconfig.get_paths()["purelib"])
    homes = {}
    for name in (ALICE, BOB):
        home = root / name
        home.mkdir(mode=0o700)
        shutil.chown(home, name, name)
        homes[name] = home

    def as_user(name, *args, cwd, input=None, env=None):
        # runuser resets HOME to the account's (absent) home: the config folder is named instead.
        full_env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(homes[name] / "config"),
                    "XDG_DATA_HOME": str(homes[name] / "data"), "PYTHONPATH": f"{repo}:{site}",
                    "LC_ALL": "C.UTF-8", **(env or {})}
        return subprocess.run([RUNUSER, "-u", name, "--", *python, *args], cwd=cwd, input=input,
                              capture_output=True, text=True, env=full_env, timeout=60)

    def sh(name, *argv):
        subprocess.run([RUNUSER, "-u", name, "--", *argv], check=True)

    yield type("Machine", (), {"root": root, "as_user": staticmethod(as_user), "sh": staticmethod(sh)})
    shutil.rmtree(root, ignore_errors=True)


def test_a_planted_shared_database_never_receives_a_secret(machine):
    """Issue 18 case 1, as it was found: B plants /shared/.hive-mind; A stores a key in /shared/proj."""
    shared = machine.root / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp
    planted = shared / ".hive-mind" / "hive.db"
    # B makes a database that encrypts nothing, then opens it to everyone.
    assert machine.as_user(BOB, "--db", str(planted), "config", "set", "security.autoEncryptPatterns",
                           "zzz-never", cwd=shared).returncode == 0
    machine.sh(BOB, "chmod", "777", str(planted.parent))
    machine.sh(BOB, "chmod", "666", str(planted))
    project = shared / "proj"
    machine.sh(ALICE, "mkdir", "-m", "700", str(project))
    key = {"GEMINI_FLOW_ENCRYPTION_KEY": "k" * 43}

    stored = machine.as_user(ALICE, "memory", "store", "stripe-api-key", cwd=project, input="sk-live-123", env=key)
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout)["encrypted"] is True
    mine = project / ".hive-mind" / "hive.db"
    assert mine.stat().st_uid == pwd.getpwnam(ALICE).pw_uid
    conn = sqlite3.connect(planted)
    assert conn.execute("SELECT count(*) FROM memory_store").fetchone()[0] == 0, "nothing reached B's database"
    conn.close()

    # Pointing at it, directly or through a symlink, is refused with the path and the fix.
    direct = machine.as_user(ALICE, "--db", str(planted), "memory", "store", "stripe-api-key", cwd=project,
                             input="sk-live-123", env=key)
    assert direct.returncode == 4, direct.stderr
    message = json.loads(direct.stderr)["error"]["message"]
    assert str(planted.parent) in message and "security.trustedPaths" in message
    machine.sh(ALICE, "ln", "-s", str(planted), str(project / "link.db"))
    linked = machine.as_user(ALICE, "--db", str(project / "link.db"), "memory", "list", cwd=project)
    assert linked.returncode == 4
    # Root's database is another user's too.
    roots = machine.root / "roots.db"
    sqlite3.connect(roots).close()
    os.chmod(roots, 0o644)
    assert machine.as_user(ALICE, "--db", str(roots), "memory", "list", cwd=project).returncode == 4


def test_a_user_who_trusts_the_shared_database_may_use_it(machine):
    shared = machine.root / "team"
    shared.mkdir()
    shutil.chown(shared, BOB, BOB)
    os.chmod(shared, 0o755)
    db = shared / "hive.db"
    assert machine.as_user(BOB, "--db", str(db), "memory", "store", "plan", "ship", cwd=shared).returncode == 0
    # A team database: everyone may write it (retrieve counts accesses), which is exactly what
    # needs an explicit trust.
    machine.sh(BOB, "chmod", "777", str(shared))
    machine.sh(BOB, "sh", "-c", f"chmod 666 {db}*")
    refused = machine.as_user(ALICE, "--db", str(db), "memory", "retrieve", "plan", cwd=machine.root)
    assert refused.returncode == 4
    assert machine.as_user(ALICE, "config", "set", "--user", "security.trustedPaths", f"{shared}/*",
                           cwd=machine.root).returncode == 0
    allowed = machine.as_user(ALICE, "--db", str(db), "memory", "retrieve", "plan", cwd=machine.root)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout == "ship\n"
