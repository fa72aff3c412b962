"""`apikey create|list|revoke` (issue 14): tokens shown once and stored hashed, roles, scopes, expiry."""

from __future__ import annotations

import json
import sqlite3

from gemini_flow_cli.core import apikeys, migrations


def test_a_token_is_shown_once_and_only_its_hash_is_stored(cli, db_path):
    created = cli("apikey", "create", "ci", "--role", "reader", "-n", "builds", "-n", "logs", "--expires", "1h")
    assert created.exit_code == 0, created
    token = created.json["token"]
    assert token.startswith("gf_") and len(token) == 46
    assert created.json["namespaces"] == ["builds", "logs"] and created.json["expiresAt"].endswith("Z")
    rows = sqlite3.connect(db_path).execute("SELECT name, token_hash FROM api_keys").fetchall()
    assert rows == [("ci", apikeys.hash_token(token))]
    listed = cli("apikey", "list")
    assert listed.json["total"] == 1 and token not in listed.stdout and "hash" not in listed.stdout
    assert cli("apikey", "create", "other", "--role", "reader").json["token"] != token


def test_create_refuses_a_taken_name_an_unknown_role_or_agent(cli):
    assert cli("apikey", "create", "ci", "--role", "reader").exit_code == 0
    assert cli("apikey", "create", "ci", "--role", "reader").exit_code == 3
    assert cli("apikey", "create", "x", "--role", "owner").exit_code == 2
    assert cli("apikey", "create", "bad name", "--role", "reader").exit_code == 2
    assert cli("apikey", "create", "x", "--role", "reader", "-n", "bad ns").exit_code == 2
    assert cli("apikey", "create", "x", "--role", "reader", "--agent", "agent-missing").exit_code == 1
    assert cli("apikey", "list").json["total"] == 1


def test_revoke_deletes_the_key_and_is_audited(cli, db_path):
    cli("apikey", "create", "temp", "--role", "writer")
    assert cli("apikey", "revoke", "temp").json == {"success": True, "name": "temp", "revoked": True}
    assert cli("apikey", "revoke", "temp").exit_code == 1
    actions = [r["action"] for r in cli("audit", "list", "--entity", "api_key").json["entries"]]
    assert sorted(actions) == ["create", "revoke"]


def test_authenticate_checks_the_token_role_scope_agent_and_expiry(cli, db_path, frozen):
    from gemini_flow_cli.core.db import Database
    from gemini_flow_cli.errors import GeminiFlowError

    agent = cli("agent", "spawn", "--type", "coder").json["id"]
    token = cli("apikey", "create", "bound", "--role", "writer", "-n", "team", "--agent", agent,
                "--expires", "60").json["token"]
    with Database.open(db_path) as db:
        key = apikeys.authenticate(db.conn, token)
        assert (key.name, key.role, key.namespaces, key.agent_id) == ("bound", "writer", ("team",), agent)
        key.require_role("reader")
        key.require_namespace("team")
        assert key.agent_for(None) == agent
        for refused in (lambda: key.require_role("admin"), lambda: key.require_namespace("other"),
                        lambda: key.agent_for("agent-else"), lambda: apikeys.authenticate(db.conn, token[:-1] + "x"),
                        lambda: apikeys.authenticate(db.conn, None)):
            try:
                refused()
            except GeminiFlowError as exc:
                assert exc.code == "PERMISSION_DENIED"
            else:
                raise AssertionError("not refused")
        frozen.now += 61
        try:
            apikeys.authenticate(db.conn, token)
        except GeminiFlowError as exc:
            assert exc.details["reason"] == "expired"
        else:
            raise AssertionError("an expired key was accepted")


def test_keys_never_arrive_through_a_merge(cli, tmp_path, db_path):
    cli("apikey", "create", "theirs", "--role", "admin")
    backup = cli("backup", "create", str(tmp_path / "theirs.db")).json["path"]
    mine = tmp_path / "mine" / "hive.db"
    assert cli("memory", "store", "k", "v", db=mine).exit_code == 0
    assert cli("backup", "restore", backup, "--merge", "--yes", db=mine).exit_code == 0
    assert cli("apikey", "list", db=mine).json["total"] == 0


def test_migrate_down_drops_the_keys_table_and_up_brings_it_back(cli, db_path):
    cli("apikey", "create", "ci", "--role", "reader")
    previous = migrations.VERSIONS[migrations.VERSIONS.index("1.0.13") - 1]
    assert cli("migrate", "down", "--to", previous, "--yes").exit_code == 0
    tables = {r[0] for r in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "api_keys" not in tables
    assert cli("apikey", "list").json["total"] == 0  # an older schema reads as no keys
    assert cli("migrate", "up").exit_code == 0
    assert cli("apikey", "list").json["total"] == 0
