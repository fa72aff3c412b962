"""Configuration: known keys, type and range checks, the configuration table, precedence."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import not_on_a_server
from hypothesis import given
from hypothesis import strategies as st

from gemini_flow_cli.core import config


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def config_row(db_path: Path, key: str):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM configuration WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(row)
    finally:
        conn.close()


def user_file() -> Path:
    return config.user_file_path(os.environ)


def test_set_then_get_returns_the_typed_value(cli):
    assert cli("config", "set", "memory.maxValueSize", "4MiB").exit_code == 0
    result = cli("config", "get", "memory.maxValueSize")
    assert result.exit_code == 0
    assert result.json["value"] == 4 * 1024 * 1024
    assert result.json["source"] == "database"


def test_get_prints_a_string_raw_when_piped(cli):
    result = cli("--format", "table", "config", "get", "audit.retention")
    assert result.stdout == "90d\n"


def test_set_fills_the_seed_columns_and_bumps_version_on_change(cli, db_path):
    cli("config", "set", "audit.retention", "30d")
    row = config_row(db_path, "audit.retention")
    assert json.loads(row["value"]) == "30d"
    assert row["category"] == "audit"
    assert row["data_type"] == "string"
    assert json.loads(row["validation_rules"])["kind"] == "duration"
    assert row["is_sensitive"] == 0
    assert row["description"]
    assert row["version"] == 1
    cli("config", "set", "audit.retention", "30d")  # same value: no change
    assert config_row(db_path, "audit.retention")["version"] == 1
    cli("config", "set", "audit.retention", "60d")
    assert config_row(db_path, "audit.retention")["version"] == 2


@pytest.mark.parametrize(
    "key, value",
    [
        ("no.such.key", "1"),
        ("memory.maxValueSize", "big"),
        ("memory.maxValueSize", "0"),
        ("memory.maxValueSize", "17MiB"),
        ("memory.maxValueSize", str(16 * 1024 * 1024 + 1)),
        ("database.synchronous", "off"),
        ("audit.enabled", "maybe"),
        ("audit.retention", "ninety days"),
        ("memory.defaultNamespace", "bad namespace!"),
        ("security.autoEncryptPatterns", '{"not": "a list"}'),
        ("internal.encryption.kdf", "{}"),
    ],
)
def test_unknown_key_or_bad_value_exits_2_and_writes_nothing(cli, db_path, key, value):
    cli("memory", "store", "k", "v")
    before = file_hash(db_path)
    result = cli("config", "set", key, value)
    assert result.exit_code == 2, result
    assert result.error["code"] == "INVALID_INPUT"
    assert file_hash(db_path) == before
    assert config_row(db_path, key) is None


def test_bad_value_on_a_missing_database_creates_nothing(cli, db_path):
    assert cli("config", "set", "memory.maxValueSize", "huge").exit_code == 2
    assert not db_path.exists()


def test_range_error_names_the_limits(cli):
    result = cli("config", "set", "memory.maxValueSize", "32MiB")
    assert "16777216" in result.error["message"]


def test_sixteen_mebibytes_is_accepted(cli):
    assert cli("config", "set", "memory.maxValueSize", "16MiB").exit_code == 0


def test_unset_restores_the_default_and_is_audited(cli, db_path):
    cli("config", "set", "memory.maxValueSize", "1000")
    result = cli("config", "unset", "memory.maxValueSize")
    assert result.json["removed"] is True
    assert cli("config", "get", "memory.maxValueSize").json["source"] == "default"
    actions = [e["action"] for e in cli("audit", "list", "--entity", "configuration").json["entries"]]
    assert actions == ["unset", "set"]


def test_list_shows_set_keys_and_all_shows_every_known_key(cli):
    cli("config", "set", "backup.auto.interval", "12h")
    listed = cli("config", "list").json
    assert [s["key"] for s in listed["settings"]] == ["backup.auto.interval"]
    every = cli("config", "list", "--all").json["settings"]
    assert {s["key"] for s in every} == set(config.SETTINGS)
    assert {"memory.maxValueSize", "memory.defaultNamespace", "security.autoEncryptPatterns",
            "security.keyFile", "database.synchronous", "audit.enabled", "audit.retention",
            "backup.auto.enabled", "backup.auto.interval", "backup.auto.retention"} <= {s["key"] for s in every}
    defaults = {s["key"]: s["default"] for s in every}
    assert defaults["memory.maxValueSize"] == 1024 * 1024
    assert defaults["audit.retention"] == "90d"
    assert defaults["backup.auto.interval"] == "6h"
    assert defaults["backup.auto.retention"] == "30d"


def test_max_value_size_from_configuration_refuses_larger_values_with_exit_5(cli):
    cli("config", "set", "memory.maxValueSize", "100")
    result = cli("memory", "store", "k", "x" * 200)
    assert result.exit_code == 5
    assert "100 bytes" in result.error["message"]
    assert cli("memory", "store", "k", "x" * 50).exit_code == 0


def test_namespace_precedence_flag_env_database_user_default(cli):
    def stored_namespace(*args, env=None):
        return cli("memory", "store", "k", "v", *args, env=env).json["namespace"]

    assert stored_namespace() == "default"
    assert cli("config", "set", "--user", "memory.defaultNamespace", "from-user").exit_code == 0
    assert stored_namespace() == "from-user"
    cli("config", "set", "memory.defaultNamespace", "from-db")
    assert stored_namespace() == "from-db"
    assert stored_namespace(env={"GEMINI_FLOW_NAMESPACE": "from-env"}) == "from-env"
    assert stored_namespace("-n", "from-flag", env={"GEMINI_FLOW_NAMESPACE": "from-env"}) == "from-flag"


def test_user_file_is_json_in_the_platform_config_folder(cli):
    import platformdirs

    cli("config", "set", "--user", "audit.retention", "7d")
    path = user_file()
    assert path == Path(platformdirs.user_config_dir("gemini-flow", appauthor=False)) / "config.json"
    assert json.loads(path.read_text()) == {"audit.retention": "7d"}
    assert cli("config", "get", "audit.retention").json["source"] == "user"
    cli("config", "unset", "--user", "audit.retention")
    assert json.loads(path.read_text()) == {}


def test_a_bad_user_file_is_reported_not_ignored(cli):
    path = user_file()
    path.parent.mkdir(parents=True)
    path.write_text('{"memory.maxValueSize": "lots"}')
    result = cli("memory", "store", "k", "v")
    assert result.exit_code == 2
    assert str(path) in result.error["message"]


def opened_synchronous(db_path) -> int:
    """PRAGMA synchronous of the connection a command opens (2 = FULL, 1 = NORMAL)."""
    from gemini_flow_cli.cli.common import State

    db = State(db_path=db_path).open_db(create=False)
    try:
        return db.conn.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        db.close()


@not_on_a_server("synchronous is a SQLite pragma")
def test_synchronous_setting_follows_env_then_database_then_user(cli, db_path, monkeypatch):
    cli("memory", "store", "k", "v")
    assert opened_synchronous(db_path) == 2  # the default, full
    cli("config", "set", "--user", "database.synchronous", "normal")
    assert opened_synchronous(db_path) == 1
    cli("config", "set", "database.synchronous", "full")
    assert opened_synchronous(db_path) == 2
    monkeypatch.setenv("GEMINI_FLOW_SYNCHRONOUS", "normal")
    assert opened_synchronous(db_path) == 1


@given(st.integers(min_value=1, max_value=16 * 1024 * 1024))
def test_sizes_parse_in_bytes_kib_and_mib(n):
    assert config.parse("memory.maxValueSize", str(n)) == n
    if n % 1024 == 0:
        assert config.parse("memory.maxValueSize", f"{n // 1024}KiB") == n
    if n % (1024 * 1024) == 0:
        assert config.parse("memory.maxValueSize", f"{n // (1024 * 1024)}MiB") == n


@given(st.lists(st.from_regex(r"[a-z*?-]{1,12}", fullmatch=True), min_size=1, max_size=5))
def test_pattern_lists_round_trip_as_json_and_commas(patterns):
    assert config.parse("security.autoEncryptPatterns", json.dumps(patterns)) == patterns
    assert config.parse("security.autoEncryptPatterns", ",".join(patterns)) == patterns


def test_get_of_an_unknown_key_exits_2(cli):
    assert cli("config", "get", "memory.nope").exit_code == 2


@pytest.mark.parametrize("written, size", [("1KB", 1024), ("1kb", 1024), ("2 KiB", 2048), ("1k", 1024),
                                           ("4MiB", 4 << 20), ("1MB", 1 << 20), ("1000", 1000)])
def test_one_size_parser_for_config_set_and_the_user_file(cli, written, size):
    assert cli("config", "set", "memory.maxValueSize", written).exit_code == 0
    assert cli("config", "get", "memory.maxValueSize").json["value"] == size
    cli("config", "unset", "memory.maxValueSize")
    path = user_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"memory.maxValueSize": written}))
    got = cli("config", "get", "memory.maxValueSize")
    assert got.exit_code == 0, got
    assert (got.json["value"], got.json["source"]) == (size, "user")


@pytest.mark.parametrize("user", [False, True], ids=["database", "user file"])
def test_automatic_backup_settings_on_a_server_are_kept_with_a_warning(cli, db_path, user):
    # Automatic backups never run on PostgreSQL: the setting is the user's to keep (exit 0), but
    # accepting it silently would suggest the server is being backed up.
    from tests.conftest import TEST_SERVER

    flags = ["--user"] if user else []
    result = cli("config", "set", "backup.auto.interval", "1h", *flags)
    assert result.exit_code == 0 and json.loads(result.stdout)["value"] == "1h"
    on_a_server = bool(TEST_SERVER)
    assert ("automatic backups do not run on a PostgreSQL server" in result.stderr) is on_a_server
    # another key, or the same one on a local file, says nothing
    other = cli("config", "set", "memory.maxValueSize", "4MiB", *flags)
    assert other.exit_code == 0 and other.stderr == ""


def test_a_user_setting_of_automatic_backups_with_a_server_url_warns_without_connecting(cli, tmp_path):
    # --user with a server URL: the user file is written (no connection needed) and the warning given.
    result = cli("config", "set", "backup.auto.enabled", "false", "--user",
                 db="postgresql://nobody@127.0.0.1:1/none")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("warning: backup.auto.enabled is kept, but automatic backups do not run")
    assert json.loads(user_file().read_text())["backup.auto.enabled"] is False
