"""memory store / retrieve / delete: every option, every exit status (issue A)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from gemini_flow_cli.core import clock


def rows(db_path, sql="SELECT key, namespace, value FROM memory_store ORDER BY id"):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_store_prints_the_seed_shape(cli):
    result = cli("memory", "store", "user-preferences", '{"theme": "dark"}')
    assert result.exit_code == 0
    assert result.json == {
        "success": True, "key": "user-preferences", "namespace": "default", "id": 1,
        "expiresAt": None, "size": len('{"theme":"dark"}'), "encrypted": False, "version": 1,
    }


@pytest.mark.parametrize(
    "given, stored",
    [("42", 42), ('{"a": [1, 2]}', {"a": [1, 2]}), ("true", True), ("null", None),
     ("hello world", "hello world"), ('"quoted"', "quoted"), ("NaN", "NaN"), ("[1,", "[1,")],
)
def test_value_is_json_when_it_parses_else_a_string(cli, given, stored):
    assert cli("memory", "store", "k", given).exit_code == 0
    assert cli("memory", "retrieve", "k").json["value"] == stored


def test_string_flag_keeps_json_looking_text_as_a_string(cli):
    cli("memory", "store", "k", "42", "--string")
    assert cli("memory", "retrieve", "k").json["value"] == "42"


@pytest.mark.parametrize("value_arg", [[], ["-"]])
def test_value_from_stdin_when_absent_or_dash(cli, value_arg):
    assert cli("memory", "store", "k", *value_arg, input='{"from": "stdin"}\n').exit_code == 0
    assert cli("memory", "retrieve", "k").json["value"] == {"from": "stdin"}


def test_value_from_file(cli, tmp_path):
    source = tmp_path / "value.json"
    source.write_text('{"from": "file"}')
    assert cli("memory", "store", "k", "--file", str(source)).exit_code == 0
    assert cli("memory", "retrieve", "k").json["value"] == {"from": "file"}


def test_missing_file_is_invalid_input(cli, tmp_path, db_path):
    result = cli("memory", "store", "k", "--file", str(tmp_path / "absent"))
    assert result.exit_code == 2
    assert not db_path.exists()


def test_namespace_option_and_env(cli):
    cli("memory", "store", "k", "1", "-n", "alpha")
    cli("memory", "store", "k", "2", env={"GEMINI_FLOW_NAMESPACE": "beta"})
    assert cli("memory", "retrieve", "k", "--namespace", "alpha").json["value"] == 1
    assert cli("memory", "retrieve", "k", "-n", "beta").json["value"] == 2
    assert cli("memory", "retrieve", "k").exit_code == 1  # not in "default"


@pytest.mark.parametrize("ttl, seconds", [("90", 90), ("30s", 30), ("5m", 300), ("1h", 3600), ("7d", 604800)])
def test_ttl_sets_the_expiry(cli, monkeypatch, ttl, seconds):
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_000)
    result = cli("memory", "store", "k", "v", "--ttl", ttl)
    assert result.json["expiresAt"] == clock.iso(1_700_000_000 + seconds)


@pytest.mark.parametrize("ttl", ["0", "-5", "5x", "1.5h", ""])
def test_bad_ttl_is_refused(cli, db_path, ttl):
    result = cli("memory", "store", "k", "v", "--ttl", ttl)
    assert result.exit_code == 2
    assert result.error["code"] == "INVALID_INPUT"
    assert not db_path.exists()


def test_expired_entry_is_ttl_expired_and_never_returned(cli, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_000)
    cli("memory", "store", "k", "v", "--ttl", "10s")
    assert cli("memory", "retrieve", "k").exit_code == 0
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_010)
    result = cli("memory", "retrieve", "k")
    assert result.exit_code == 1
    assert result.error["code"] == "TTL_EXPIRED"
    assert result.stdout == ""


def test_tags_repeat_and_split_on_commas(cli):
    cli("memory", "store", "k", "v", "-t", "a,b", "--tag", "c", "-t", "a")
    assert cli("memory", "retrieve", "k").json["metadata"]["tags"] == ["a", "b", "c"]


@pytest.mark.parametrize("option", ["--agent", "--swarm"])
def test_unknown_owner_is_refused_and_nothing_written(cli, db_path, option):
    result = cli("memory", "store", "k", "v", option, "nobody")
    assert result.exit_code == 2
    assert "nobody" in result.error["message"]
    assert not db_path.exists() or rows(db_path) == []


def test_known_owner_is_recorded(cli, db_path):
    cli("memory", "store", "seed", "1")  # creates the database
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO agents (id, name, type) VALUES ('agent-1', 'a', 'coder')")
    conn.execute("INSERT INTO swarms (id, topology) VALUES ('swarm-1', 'mesh')")
    conn.commit()
    conn.close()
    assert cli("memory", "store", "k", "v", "--agent", "agent-1", "--swarm", "swarm-1").exit_code == 0
    metadata = cli("memory", "retrieve", "k").json["metadata"]
    assert (metadata["agentId"], metadata["swarmId"]) == ("agent-1", "swarm-1")


def test_if_absent_conflicts_on_a_live_key(cli, db_path):
    assert cli("memory", "store", "k", "1", "--if-absent").exit_code == 0
    result = cli("memory", "store", "k", "2", "--if-absent")
    assert result.exit_code == 3
    assert result.error["code"] == "CONFLICT"
    assert cli("memory", "retrieve", "k").json["value"] == 1


def test_if_absent_replaces_an_expired_key(cli, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_000)
    cli("memory", "store", "k", "1", "--ttl", "5s")
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_100)
    assert cli("memory", "store", "k", "2", "--if-absent").exit_code == 0
    assert cli("memory", "retrieve", "k").json["value"] == 2


def test_upsert_keeps_created_at_and_access_count(cli, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_000)
    cli("memory", "store", "k", '"first"')
    cli("memory", "retrieve", "k")
    cli("memory", "retrieve", "k")
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_500)
    cli("memory", "store", "k", '"second, longer"')
    meta = cli("memory", "retrieve", "k").json["metadata"]
    assert meta["createdAt"] == clock.iso(1_700_000_000)
    assert meta["updatedAt"] == clock.iso(1_700_000_500)
    assert meta["accessCount"] == 3
    assert meta["size"] == len('"second, longer"')


def test_value_over_one_mebibyte_exits_5(cli, db_path):
    big = json.dumps("x" * (1024 * 1024))
    result = cli("memory", "store", "big", input=big)
    assert result.exit_code == 5
    assert result.error["code"] == "VALUE_TOO_LARGE"
    assert not db_path.exists() or rows(db_path) == []


def test_value_of_exactly_the_limit_is_stored(cli):
    value = "x" * (1024 * 1024 - 2)  # two bytes of quotes
    assert cli("memory", "store", "big", input=json.dumps(value)).exit_code == 0


def test_retrieve_prints_strings_raw_and_others_as_json(cli):
    cli("memory", "store", "s", "hello world")
    cli("memory", "store", "o", '{"b": 2, "a": "é"}')
    assert cli("memory", "retrieve", "s", "--format", "table").stdout == "hello world\n"
    assert cli("memory", "retrieve", "o", "--format", "table").stdout == '{"b": 2, "a": "é"}\n'


def test_retrieve_json_is_the_seed_envelope_and_counts_an_access(cli):
    cli("memory", "store", "k", '{"theme": "dark"}', "-t", "user")
    first = cli("memory", "retrieve", "k").json
    second = cli("memory", "retrieve", "k").json
    assert set(first) == {"success", "key", "value", "namespace", "version", "metadata"}
    assert first["value"] == {"theme": "dark"}
    assert {"createdAt", "updatedAt", "accessCount", "size", "tags", "expiresAt", "encrypted"} <= set(first["metadata"])
    assert (first["metadata"]["accessCount"], second["metadata"]["accessCount"]) == (1, 2)


def test_retrieve_default_when_missing(cli, db_path):
    result = cli("memory", "retrieve", "absent", "--default", "fallback")
    assert (result.exit_code, result.stdout) == (0, "fallback\n")
    assert not db_path.exists()


def test_retrieve_missing_is_not_found(cli):
    result = cli("memory", "retrieve", "absent")
    assert result.exit_code == 1
    assert result.error == {
        "code": "NOT_FOUND", "message": "key 'absent' not found in namespace 'default'",
        "recoverable": True, "details": {"key": "absent", "namespace": "default"},
    }


def test_delete_several_and_report_missing(cli):
    cli("memory", "store", "a", "1")
    cli("memory", "store", "b", "2")
    result = cli("memory", "delete", "a", "b", "c")
    assert result.exit_code == 0
    assert result.json["deleted"] == ["a", "b"]
    assert result.json["missing"] == ["c"]
    assert cli("memory", "retrieve", "a").exit_code == 1


def test_delete_none_existing_exits_1_unless_missing_ok(cli):
    cli("memory", "store", "other", "1")
    assert cli("memory", "delete", "absent").exit_code == 1
    assert cli("memory", "delete", "absent", "--missing-ok").exit_code == 0


@pytest.mark.parametrize("key", ["", "a\nb", "tab\there", "nul\x00", "x" * 1025])
def test_invalid_key_exits_2_and_writes_nothing(cli, db_path, key):
    result = cli("memory", "store", key, "v")
    assert result.exit_code == 2
    assert result.error["code"] == "INVALID_KEY"
    assert not db_path.exists()


@pytest.mark.parametrize("namespace", ["", "has space", "slash/no", "ü", "x" * 129])
def test_invalid_namespace_exits_2_and_writes_nothing(cli, db_path, namespace):
    result = cli("memory", "store", "k", "v", "-n", namespace)
    assert result.exit_code == 2
    assert result.error["code"] == "INVALID_INPUT"
    assert not db_path.exists()


def test_longest_key_and_namespace_are_accepted(cli):
    key, namespace = "k" * 1024, "a.b_c-d:" + "n" * 120
    assert cli("memory", "store", key, "1", "-n", namespace).exit_code == 0
    assert cli("memory", "retrieve", key, "-n", namespace).json["value"] == 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_store_in_jsonl_and_csv(cli, fmt):
    result = cli("memory", "store", "k", "v", "--format", fmt)
    assert result.exit_code == 0
    if fmt == "jsonl":
        assert json.loads(result.stdout)["key"] == "k"
    else:
        header, row = result.stdout.splitlines()
        assert header.startswith("success,key,namespace")
        assert row.startswith("true,k,default")


def test_table_format_store_says_what_it_did_on_stderr(cli):
    result = cli("memory", "store", "k", "v", "--format", "table")
    assert result.stdout == ""
    assert "Stored default/k" in result.stderr
    assert cli("memory", "store", "k", "v", "--format", "table", "-q").stderr == ""
