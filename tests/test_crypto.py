"""Encryption at rest: AES-256-GCM under a scrypt key, failing safely."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import not_on_a_server
from hypothesis import given, settings
from hypothesis import strategies as st

from gemini_flow_cli.core import crypto
from gemini_flow_cli.core.db import Database
from gemini_flow_cli.core.memory import MemoryManager
from tests.helpers import sql

SECRET = "correct horse battery staple"
PLAINTEXT = "sk-live-PLAINTEXT-4f9a2c"


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", SECRET)


def files_hash(db_path: Path) -> str:
    digest = hashlib.sha256()
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db_path}{suffix}")
        digest.update(path.read_bytes() if path.exists() and suffix != "-shm" else b"-")
    return digest.hexdigest()


def raw_bytes(db_path: Path) -> bytes:
    return b"".join(Path(f"{db_path}{s}").read_bytes() for s in ("", "-wal") if Path(f"{db_path}{s}").exists())


def test_encrypted_value_is_absent_from_the_raw_database_bytes(cli, db_path, keyed):
    result = cli("memory", "store", "svc", PLAINTEXT, "--encrypt")
    assert result.json["encrypted"] is True
    data = raw_bytes(db_path)
    assert PLAINTEXT.encode() not in data
    assert b"PLAINTEXT" not in data
    assert cli("memory", "retrieve", "svc").json["value"] == PLAINTEXT


def test_stored_form_is_a_versioned_json_string(cli, db_path, keyed):
    cli("memory", "store", "svc", PLAINTEXT, "--encrypt")
    (stored,) = sql(db_path, "SELECT value FROM memory_store WHERE key = 'svc'")[0]
    token = json.loads(stored)
    assert token.startswith("gf1:")
    raw = base64.b64decode(token[4:])
    assert len(raw) == 12 + len(json.dumps(PLAINTEXT)) + 16


@pytest.mark.parametrize("env", [{"GEMINI_FLOW_ENCRYPTION_KEY": "not the key"}, {"GEMINI_FLOW_ENCRYPTION_KEY": ""}])
def test_wrong_key_or_no_key_exits_4_and_changes_nothing(run, db_path, env):
    run("memory", "store", "svc", PLAINTEXT, "--encrypt", env={"GEMINI_FLOW_ENCRYPTION_KEY": SECRET})
    before = files_hash(db_path)
    result = run("--json", "memory", "retrieve", "svc", env=env)
    assert result.returncode == 4, result
    error = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "PERMISSION_DENIED"
    assert "key" in error["message"] and PLAINTEXT not in result.stderr
    assert files_hash(db_path) == before
    (count,) = sql(db_path, "SELECT access_count FROM memory_store WHERE key = 'svc'")[0]
    assert count == 0


def test_ciphertext_copied_to_another_key_or_namespace_does_not_decrypt(cli, db_path, keyed):
    cli("memory", "store", "svc", PLAINTEXT, "--encrypt")
    cli("memory", "store", "other", "placeholder", "--encrypt")
    cli("memory", "store", "svc", "placeholder", "--encrypt", "-n", "elsewhere")
    sql(db_path, "UPDATE memory_store SET value = (SELECT value FROM memory_store WHERE key='svc' AND namespace='default') "
                 "WHERE key = 'other' OR namespace = 'elsewhere'")
    before = files_hash(db_path)
    for args in (("other",), ("svc", "-n", "elsewhere")):
        result = cli("memory", "retrieve", *args)
        assert result.exit_code == 4
        assert result.error["code"] == "ENCRYPTION_FAILED"
        assert "does not authenticate" in result.error["message"]
    assert files_hash(db_path) == before
    assert cli("memory", "retrieve", "svc").json["value"] == PLAINTEXT


def test_tampered_ciphertext_exits_4_with_a_clear_message(cli, db_path, keyed):
    cli("memory", "store", "svc", PLAINTEXT, "--encrypt")
    (stored,) = sql(db_path, "SELECT value FROM memory_store WHERE key = 'svc'")[0]
    raw = bytearray(base64.b64decode(json.loads(stored)[4:]))
    raw[20] ^= 1
    sql(db_path, "UPDATE memory_store SET value = ? WHERE key = 'svc'",
        (json.dumps("gf1:" + base64.b64encode(bytes(raw)).decode()),))
    result = cli("memory", "retrieve", "svc")
    assert result.exit_code == 4
    assert result.error["message"].startswith("cannot decrypt default/svc")


def test_encrypted_store_without_a_key_is_refused_before_anything_is_written(cli, db_path):
    result = cli("memory", "store", "svc", PLAINTEXT, "--encrypt")
    assert result.exit_code == 4
    assert not db_path.exists()
    cli("memory", "store", "plain", "1")
    before = files_hash(db_path)
    assert cli("memory", "store", "db-credentials", PLAINTEXT).exit_code == 4  # auto-encrypted
    assert files_hash(db_path) == before
    assert PLAINTEXT.encode() not in raw_bytes(db_path)


def test_ten_thousand_encryptions_have_distinct_nonces():
    db = Database.in_memory()
    cipher = crypto.Cipher(db, SECRET)
    nonces = {crypto.nonce_of(cipher.encrypt("default", "k", "same plaintext")) for _ in range(10_000)}
    assert len(nonces) == 10_000


def test_scrypt_parameters_and_salt_are_read_back_from_the_database(cli, db_path, keyed):
    cli("memory", "store", "svc", PLAINTEXT, "--encrypt")
    (value, sensitive, category) = sql(
        db_path, "SELECT value, is_sensitive, category FROM configuration WHERE key = 'internal.encryption.kdf'"
    )[0]
    params = json.loads(value)
    assert sensitive == 0 and category == "internal"
    assert params["kdf"] == "scrypt" and params["algorithm"] == "aes-256-gcm"
    assert params["n"] >= 2**15 and params["r"] >= 8 and params["p"] >= 1
    salt = base64.b64decode(params["salt"])
    assert len(salt) == 16
    assert SECRET not in value
    # An independent decryption with exactly those parameters recovers the value.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    key = Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"]).derive(SECRET.encode())
    (stored,) = sql(db_path, "SELECT value FROM memory_store WHERE key = 'svc'")[0]
    raw = base64.b64decode(json.loads(stored)[4:])
    plaintext = AESGCM(key).decrypt(raw[:12], raw[12:], b"gemini-flow/gf1\x00default\x00svc")
    assert json.loads(plaintext) == PLAINTEXT


@not_on_a_server("reads both databases with sqlite3")
def test_a_second_database_gets_its_own_salt(cli, tmp_path, keyed):
    other = tmp_path / "other.db"
    cli("memory", "store", "a", "1", "--encrypt")
    cli("memory", "store", "a", "1", "--encrypt", db=other)
    salts = {json.loads(sql(p, "SELECT value FROM configuration WHERE key='internal.encryption.kdf'")[0][0])["salt"]
             for p in (tmp_path / ".hive-mind" / "hive.db", other)}
    assert len(salts) == 2


def test_two_processes_encrypting_first_at_once_agree_on_the_salt(run, db_path, tmp_path):
    run("memory", "store", "plain", "1")  # the file exists, no salt yet
    env = {"GEMINI_FLOW_ENCRYPTION_KEY": SECRET}
    from tests.conftest import gemini_flow_command

    procs = [
        subprocess.Popen([*gemini_flow_command(), "--db", str(db_path), "memory", "store", f"k{i}", f"v{i}", "--encrypt"],
                         env={**__import__("os").environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(3)
    ]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    assert len(sql(db_path, "SELECT 1 FROM configuration WHERE key='internal.encryption.kdf'")) == 1
    for i in range(3):
        assert run("memory", "retrieve", f"k{i}", env=env).stdout == f"v{i}\n"


def test_auto_encrypt_patterns_encrypt_without_the_flag(cli, keyed):
    assert cli("memory", "store", "stripe-api-key", "x").json["encrypted"] is True
    assert cli("memory", "store", "user-42-personal", "x").json["encrypted"] is True
    assert cli("memory", "store", "q3-financial-report", "x").json["encrypted"] is True
    assert cli("memory", "store", "db-credentials", "x", "--no-encrypt").json["encrypted"] is False
    assert cli("memory", "store", "notes", "x").json["encrypted"] is False
    cli("config", "set", "security.autoEncryptPatterns", "*-token")
    assert cli("memory", "store", "gh-token", "x").json["encrypted"] is True
    assert cli("memory", "store", "db-credentials", "x").json["encrypted"] is False


SEED_PATTERNS = ("*-credentials", "*-api-key", "user-*-personal", "*-financial-*")
_ORACLE = re.compile(r"(?s:.*-credentials|.*-api-key|user-.*-personal|.*-financial-.*)")
key_text = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_.:/ AK*?["), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    key_text,
    st.builds(lambda a: a + "-credentials", key_text),
    st.builds(lambda a: a + "-api-key", key_text),
    st.builds(lambda a: "user-" + a + "-personal", key_text),
    st.builds(lambda a, b: a + "-financial-" + b, key_text, key_text),
))
def test_auto_encrypt_patterns_match_exactly_the_seed_shapes(key):
    manager = MemoryManager(Database.in_memory(), auto_encrypt_patterns=SEED_PATTERNS)
    assert manager.should_encrypt(key, None) == bool(_ORACLE.fullmatch(key))
    assert manager.should_encrypt(key, False) is False
    assert manager.should_encrypt(key, True) is True


@settings(max_examples=50, deadline=None)
@given(namespace=st.from_regex(r"[A-Za-z0-9._:\-]{1,20}", fullmatch=True),
       key=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40),
       value=st.text(max_size=200))
def test_encrypt_then_decrypt_round_trips(namespace, key, value):
    cipher = crypto.Cipher(_DB, SECRET)
    stored = cipher.encrypt(namespace, key, value)
    assert json.loads(stored).startswith("gf1:")
    assert cipher.decrypt(namespace, key, stored) == value


_DB = Database.in_memory()


def _importtime(db_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-X", "importtime", "-m", "gemini_flow_cli", "--db", str(db_path), *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60)


@pytest.mark.parametrize("args", [("memory", "store", "plain", "2"), ("memory", "retrieve", "plain")])
def test_plain_commands_do_not_import_cryptography(run, db_path, args):
    run("memory", "store", "plain", "1")
    result = _importtime(db_path, *args)
    assert result.returncode == 0, result.stderr[-500:]
    assert "cryptography" not in result.stderr
    assert "platformdirs" not in result.stderr


def test_an_encrypted_retrieve_does_import_cryptography(run, db_path):
    env = {"GEMINI_FLOW_ENCRYPTION_KEY": SECRET}
    run("memory", "store", "svc", "x", "--encrypt", env=env)
    result = _importtime(db_path, "memory", "retrieve", "svc", env=env)
    assert result.returncode == 0
    assert "cryptography" in result.stderr


def test_an_encrypted_store_with_a_wrong_key_is_refused_and_changes_nothing(run, db_path):
    run("memory", "store", "svc", PLAINTEXT, "--encrypt", env={"GEMINI_FLOW_ENCRYPTION_KEY": SECRET})
    before = files_hash(db_path)
    result = run("--json", "memory", "store", "other-api-key", "x", env={"GEMINI_FLOW_ENCRYPTION_KEY": "wrong"})
    assert result.returncode == 4
    assert "wrong encryption key" in result.stderr
    assert files_hash(db_path) == before


# -- re-storing keeps encryption; the feed loses plaintext on encryption (CLI.md §4) ---------------


def _rows_with(path: Path, word: str, *, query=None) -> int:
    """Rows of entries and of the change feed whose stored text contains ``word``. (A check of the
    file's bytes would depend on SQLite's secure_delete build option, not on this program.)
    ``query``: a reader that works on either backend (the word is a plain test literal)."""
    if query is not None:
        return query(path, f"SELECT (SELECT COUNT(*) FROM memory_store WHERE value LIKE '%{word}%') + "
                           f"(SELECT COUNT(*) FROM memory_changes WHERE previous_value LIKE '%{word}%')")[0][0]
    like = f"%{word}%"
    return sql(path, "SELECT (SELECT COUNT(*) FROM memory_store WHERE value LIKE ?) + "
                     "(SELECT COUNT(*) FROM memory_changes WHERE previous_value LIKE ?)", (like, like))[0][0]


def _batch(cli, *ops, env=None):
    return cli("memory", "batch", "-", input=json.dumps({"operations": list(ops)}), env=env)


def test_batch_re_store_of_an_encrypted_entry_stays_encrypted(cli, db_path, keyed):
    cli("memory", "store", "notes", "s", "--encrypt")
    assert _batch(cli, {"action": "store", "key": "notes", "value": PLAINTEXT}).exit_code == 0
    assert sql(db_path, "SELECT encrypted FROM memory_store WHERE key = 'notes'") == [(1,)]
    assert PLAINTEXT.encode() not in raw_bytes(db_path)
    assert cli("memory", "retrieve", "notes").json["value"] == PLAINTEXT
    # An explicit "encrypted": false is the batch's --no-encrypt.
    _batch(cli, {"action": "store", "key": "notes", "value": "now-plain", "encrypted": False})
    assert sql(db_path, "SELECT encrypted, value FROM memory_store WHERE key = 'notes'") == [(0, '"now-plain"')]


def test_batch_re_store_of_an_encrypted_entry_without_a_key_exits_4_and_writes_nothing(cli, db_path, monkeypatch):
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", SECRET)
    cli("memory", "store", "notes", "s", "--encrypt")
    monkeypatch.delenv("GEMINI_FLOW_ENCRYPTION_KEY")
    before = files_hash(db_path)
    result = _batch(cli, {"action": "store", "key": "other", "value": 1},
                    {"action": "store", "key": "notes", "value": PLAINTEXT})
    assert result.exit_code == 4
    assert result.error["code"] == "PERMISSION_DENIED" and "notes" in result.error["message"]
    assert PLAINTEXT not in result.stdout + result.stderr
    assert files_hash(db_path) == before
    # Keys that are not encrypted still need no key.
    assert _batch(cli, {"action": "store", "key": "other", "value": 1}).exit_code == 0


def test_batch_encrypted_earlier_in_the_same_batch_stays_encrypted(cli, db_path, keyed):
    _batch(cli, {"action": "store", "key": "k", "value": "first", "encrypted": True},
           {"action": "store", "key": "k", "value": PLAINTEXT})
    assert sql(db_path, "SELECT encrypted FROM memory_store WHERE key = 'k'") == [(1,)]
    assert PLAINTEXT.encode() not in raw_bytes(db_path)


def test_batch_after_an_expired_encrypted_entry_follows_store(cli, db_path, keyed):
    # store: an expired entry is replaced as if it had never been, so no encryption is kept.
    cli("memory", "store", "k", "s", "--encrypt")
    sql(db_path, "UPDATE memory_store SET ttl = 1 WHERE key = 'k'")
    _batch(cli, {"action": "store", "key": "k", "value": "v"})
    assert sql(db_path, "SELECT encrypted FROM memory_store WHERE key = 'k'") == [(0,)]


@pytest.mark.parametrize("how", ["store", "batch"])
def test_encrypting_an_entry_encrypts_its_plaintext_history(cli, db_path, tmp_path, monkeypatch, how):
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", SECRET)
    cli("memory", "fts", "enable")
    cli("memory", "store", "notes", PLAINTEXT)
    assert len(cli("memory", "search", "--text", "PLAINTEXT").json["results"]) == 1
    cli("memory", "store", "notes", "second-plain")
    if how == "store":
        cli("memory", "store", "notes", "hidden", "--encrypt")
    else:
        _batch(cli, {"action": "store", "key": "notes", "value": "hidden", "encrypted": True})
    with_key = cli("memory", "history", "notes").json["versions"]
    assert [v["value"] for v in with_key] == [PLAINTEXT, "second-plain", "hidden"]
    assert sql(db_path, "SELECT COUNT(*) FROM memory_changes WHERE previous_encrypted = 0 "
                        "AND previous_value IS NOT NULL") == [(0,)]
    assert cli("memory", "search", "--text", "PLAINTEXT").json["results"] == []
    monkeypatch.delenv("GEMINI_FLOW_ENCRYPTION_KEY")
    without = cli("memory", "history", "notes")
    assert PLAINTEXT not in without.stdout and "second-plain" not in without.stdout
    backup = tmp_path / "b.db"
    assert cli("backup", "create", str(backup)).exit_code == 0
    assert _rows_with(backup, PLAINTEXT) == 0


def test_import_replace_of_an_encrypted_entry_keeps_it_encrypted(cli, db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", SECRET)
    cli("memory", "store", "notes", PLAINTEXT)
    export = tmp_path / "plain.jsonl"
    assert cli("memory", "export", "-o", str(export)).exit_code == 0
    cli("memory", "store", "notes", "hidden", "--encrypt")
    monkeypatch.delenv("GEMINI_FLOW_ENCRYPTION_KEY")
    before = files_hash(db_path)
    result = cli("memory", "import", str(export), "--on-conflict", "replace")
    assert result.exit_code == 4 and result.error["code"] == "PERMISSION_DENIED"
    assert files_hash(db_path) == before
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", SECRET)
    assert cli("memory", "import", str(export), "--on-conflict", "replace").exit_code == 0
    assert sql(db_path, "SELECT encrypted FROM memory_store WHERE key = 'notes'") == [(1,)]
    assert cli("memory", "retrieve", "notes").json["value"] == PLAINTEXT
    assert _rows_with(db_path, PLAINTEXT) == 0


def test_import_of_ciphertext_over_plaintext_hides_the_plaintext_history(cli, db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", SECRET)
    source = tmp_path / "source.db"
    cli("memory", "store", "notes", "hidden", "--encrypt", db=source)
    export = tmp_path / "secret.jsonl"
    cli("memory", "export", "-o", str(export), db=source)
    cli("memory", "store", "notes", PLAINTEXT)
    monkeypatch.delenv("GEMINI_FLOW_ENCRYPTION_KEY")  # importing ciphertext needs no key
    assert cli("memory", "import", str(export), "--on-conflict", "replace").exit_code == 0
    assert _rows_with(db_path, PLAINTEXT) == 0
    assert PLAINTEXT not in cli("memory", "history", "notes").stdout


def test_merge_keeps_an_encrypted_entry_encrypted(cli, db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", SECRET)
    cli("memory", "store", "notes", "old-plain-word")
    cli("memory", "store", "notes", "hidden", "--encrypt")
    other = tmp_path / "other.db"
    cli("memory", "store", "notes", PLAINTEXT, db=other)
    sql(other, "UPDATE memory_store SET updated_at = updated_at + 100")
    backup = tmp_path / "b.db"
    assert cli("backup", "create", str(backup), db=other).exit_code == 0
    monkeypatch.delenv("GEMINI_FLOW_ENCRYPTION_KEY")
    before = files_hash(db_path), _query(db_path, "SELECT * FROM memory_store ORDER BY id")
    result = cli("backup", "restore", str(backup), "--merge", "--yes")
    assert result.exit_code == 4 and result.error["code"] == "PERMISSION_DENIED"
    assert (files_hash(db_path), _query(db_path, "SELECT * FROM memory_store ORDER BY id")) == before
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", SECRET)
    assert cli("backup", "restore", str(backup), "--merge", "--yes").exit_code == 0
    assert _query(db_path, "SELECT encrypted FROM memory_store WHERE key = 'notes'") == [(1,)]
    assert cli("memory", "retrieve", "notes").json["value"] == PLAINTEXT
    assert _rows_with(db_path, PLAINTEXT, query=_query) == 0
    assert _rows_with(db_path, "old-plain-word", query=_query) == 0


def _query(db_path, statement: str) -> list[tuple]:
    """Rows of ``statement`` read through gemini-flow's own connection: either backend."""
    from gemini_flow_cli.core.db import Database

    db = Database.open(db_path, create=False)
    try:
        return [tuple(row) for row in db.conn.execute(statement).fetchall()]
    finally:
        db.close()
