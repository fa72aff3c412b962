"""Versions and compare-and-set (CLI.md §4): version arithmetic, --if-version, incr, batch
ifVersion, encryption kept on re-store, versions through export/import, and every writer of
memory_store recording its changes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import sql

KEY_ENV = {"GEMINI_FLOW_ENCRYPTION_KEY": "correct horse battery staple"}


def version_of(cli, key, *args):
    return cli("memory", "retrieve", key, *args).json["version"]


def test_a_new_entry_is_version_1_and_every_write_adds_1(cli):
    assert cli("memory", "store", "k", "1").json["version"] == 1
    assert cli("memory", "store", "k", "2").json["version"] == 2
    assert version_of(cli, "k") == 2
    assert cli("memory", "search", "k").json["results"][0]["version"] == 2


def test_reading_never_changes_the_version(cli):
    cli("memory", "store", "k", "1")
    for _ in range(3):
        cli("memory", "retrieve", "k")
    cli("memory", "search", "*")
    assert version_of(cli, "k") == 1


def test_a_deleted_or_expired_entry_starts_again_at_version_1(cli, frozen):
    cli("memory", "store", "k", "1")
    cli("memory", "store", "k", "2")
    cli("memory", "delete", "k")
    assert cli("memory", "store", "k", "3").json["version"] == 1
    cli("memory", "store", "k", "4", "--ttl", "10")
    frozen.now += 11
    assert cli("memory", "store", "k", "5").json["version"] == 1


@pytest.mark.parametrize(
    "existing, expected, ok",
    [
        (None, 0, True),     # 0: only when absent
        (None, 1, False),
        (1, 0, False),
        (1, 1, True),
        (2, 1, False),
        (2, 3, False),
        ("expired", 0, True),  # an expired entry is absent
        ("expired", 1, False),
    ],
)
def test_store_if_version_writes_only_at_that_version(cli, frozen, existing, expected, ok):
    if existing == "expired":
        cli("memory", "store", "k", "old", "--ttl", "5")
        frozen.now += 6
        current = 0
    elif existing is not None:
        for n in range(existing):
            cli("memory", "store", "k", str(n))
        current = existing
    else:
        current = 0
    result = cli("memory", "store", "k", "new", "--if-version", str(expected))
    if ok:
        assert result.exit_code == 0, result
        assert result.json["version"] == (current + 1 if current else 1)
    else:
        assert result.exit_code == 3, result
        assert result.error["code"] == "CONFLICT"
        assert result.error["details"]["version"] == current
        if current:
            assert cli("memory", "retrieve", "k").json["value"] != "new"


def test_delete_if_version(cli):
    cli("memory", "store", "k", "1")
    cli("memory", "store", "k", "2")
    wrong = cli("memory", "delete", "k", "--if-version", "1")
    assert wrong.exit_code == 3 and wrong.error["details"]["version"] == 2
    assert cli("memory", "retrieve", "k").exit_code == 0
    assert cli("memory", "delete", "k", "--if-version", "2").exit_code == 0
    absent = cli("memory", "delete", "k", "--if-version", "2")
    assert absent.exit_code == 3 and absent.error["details"]["version"] == 0
    assert cli("memory", "delete", "a", "b", "--if-version", "1").exit_code == 2
    assert cli("memory", "store", "k", "x", "--if-version", "-1").exit_code == 2


def test_incr_counts_from_zero_and_prints_the_new_value(cli):
    result = cli("memory", "incr", "n", "--format", "table")
    assert (result.exit_code, result.stdout) == (0, "1\n")
    assert cli("memory", "incr", "n", "--by", "41", "--format", "table").stdout == "42\n"
    assert cli("memory", "incr", "n", "--by", "-2", "--format", "table").stdout == "40\n"
    full = cli("memory", "incr", "n").json
    assert full["value"] == 41 and full["version"] == 4 and full["success"] is True
    assert cli("memory", "retrieve", "n").json["value"] == 41


@pytest.mark.parametrize("value", ['"text"', "1.5", "true", "[1]", '{"a": 1}', "null"])
def test_incr_refuses_a_value_that_is_not_an_integer(cli, value):
    cli("memory", "store", "v", value)
    result = cli("memory", "incr", "v")
    assert result.exit_code == 2, result
    assert result.error["code"] == "INVALID_INPUT"
    assert version_of(cli, "v") == 1


def test_incr_keeps_ttl_tags_and_encryption(cli, frozen, db_path):
    cli("memory", "store", "c", "5", "--ttl", "100", "-t", "x", "--encrypt", env=KEY_ENV)
    result = cli("memory", "incr", "c", env=KEY_ENV).json
    assert result["value"] == 6 and result["encrypted"] is True
    stored = sql(db_path, "SELECT value, encrypted, tags, version FROM memory_store WHERE key = 'c'")
    assert stored[0][1] == 1 and stored[0][0] != "6" and json.loads(stored[0][2]) == ["x"] and stored[0][3] == 2
    assert cli("memory", "retrieve", "c", env=KEY_ENV).json["metadata"]["expiresAt"] == "2025-08-03T10:31:40Z"


def test_restoring_an_encrypted_entry_keeps_it_encrypted_unless_no_encrypt(cli):
    cli("memory", "store", "secret", '"s1"', "--encrypt", env=KEY_ENV)
    assert cli("memory", "store", "secret", '"s2"', env=KEY_ENV).json["encrypted"] is True
    without_key = cli("memory", "store", "secret", '"s3"')
    assert without_key.exit_code == 4  # would have silently decrypted the secret: refused
    assert cli("memory", "store", "secret", '"plain"', "--no-encrypt").json["encrypted"] is False


def test_batch_if_version_rejects_the_whole_batch(cli):
    cli("memory", "store", "a", "1")
    ops = {"operations": [
        {"action": "store", "key": "b", "value": 1, "ifVersion": 0},
        {"action": "store", "key": "a", "value": 2, "ifVersion": 5},
    ]}
    result = cli("memory", "batch", "-", input=json.dumps(ops))
    assert result.exit_code == 3 and result.error["details"]["version"] == 1
    assert cli("memory", "retrieve", "b").exit_code == 1
    ops["operations"][1]["ifVersion"] = 1
    ops["operations"].append({"action": "delete", "key": "b", "ifVersion": 1})
    assert cli("memory", "batch", "-", input=json.dumps(ops)).exit_code == 0
    assert version_of(cli, "a") == 2
    bad = {"operations": [{"action": "store", "key": "a", "value": 1, "ifVersion": "2"}]}
    assert cli("memory", "batch", "-", input=json.dumps(bad)).exit_code == 2


def test_batch_storing_one_key_twice_counts_two_versions(cli, db_path):
    ops = [{"action": "store", "key": "k", "value": n} for n in range(3)]
    assert cli("memory", "batch", "-", input=json.dumps(ops)).exit_code == 0
    assert version_of(cli, "k") == 3
    assert sql(db_path, "SELECT version FROM memory_changes WHERE key = 'k' ORDER BY revision") == [(1,), (2,), (3,)]


def test_export_carries_versions_and_import_keeps_or_counts_them(cli, tmp_path):
    for n in range(3):
        cli("memory", "store", "k", str(n))
    cli("memory", "store", "other", "1")
    out = tmp_path / "out.jsonl"
    assert cli("memory", "export", "-o", str(out)).exit_code == 0 or cli("memory", "export", str(out)).exit_code == 0
    records = {r["key"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["k"]["version"] == 3
    fresh = tmp_path / "fresh.db"
    assert cli("memory", "import", str(out), db=fresh).exit_code == 0
    assert cli("memory", "retrieve", "k", db=fresh).json["version"] == 3      # created: kept
    assert cli("memory", "import", str(out), "--on-conflict", "replace", db=fresh).exit_code == 0
    assert cli("memory", "retrieve", "k", db=fresh).json["version"] == 4      # replaced: a write
    assert cli("memory", "import", str(out), "--on-conflict", "skip", db=fresh).exit_code == 0
    assert cli("memory", "retrieve", "k", db=fresh).json["version"] == 4      # skipped: untouched


# -- every writer records its changes -----------------------------------------------------------

# Every statement in the package that writes memory_store, per module, with the count found.
# A new writer must record its change (core/changes.py) in the same transaction, then be listed
# here: this test fails on any writer it does not know.
KNOWN_WRITERS = {
    # store, incr, touch, delete, delete --pattern, batch upsert/delete, cleanup, clear x2, and
    # retrieve's access count x2 and the HTTP server's gathered access counts (bookkeeping: never
    # a change, CLI.md §4 "Reads and bookkeeping"), and the batch's plain-row INSERT (its changes
    # read back by changes.record_stores_after, as the general INSERT's)
    "core/memory.py": 14,
    "core/transfer.py": 2,   # import (one INSERT text, three conflict modes; its plain-row form)
    "core/keys.py": 1,       # key rotation: rewrites ciphertexts, not values (no change by design)
    # restore/merge build their SQL per table (covered by the round-trip test below); the three
    # found are a merge's recomputed sizes and oversized entries in its private scratch copy of the
    # backup (_without_oversized), before it is attached: never this database's entries
    "core/backup.py": 3,
}
_WRITE = re.compile(r"(INSERT\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+(main\.)?memory_store\b", re.I)


def test_every_writer_of_memory_store_is_known():
    package = Path(__file__).parent.parent / "gemini_flow_cli"
    found = {}
    for path in package.rglob("*.py"):
        count = len(_WRITE.findall(path.read_text("utf-8")))
        if count:
            found[str(path.relative_to(package))] = count
    known = {k: v for k, v in KNOWN_WRITERS.items() if v}
    assert found == known, (
        "a statement writing memory_store was added or removed: make it record its change through "
        "core/changes.py in the same transaction, test it below, then update KNOWN_WRITERS"
    )


def feed_is_consistent(db_path):
    """Every live entry's newest change carries its version."""
    entries = sql(db_path, "SELECT key, namespace, version FROM memory_store")
    for key, namespace, version in entries:
        last = sql(db_path, "SELECT action, version FROM memory_changes WHERE key = ? AND namespace = ? "
                            "ORDER BY revision DESC LIMIT 1", (key, namespace))
        assert last, f"{namespace}/{key} has no change"
        action, changed_version = last[0]
        assert action in ("store", "touch") and changed_version == version, (key, last[0], version)
    revisions = [r[0] for r in sql(db_path, "SELECT revision FROM memory_changes ORDER BY revision")]
    assert revisions == sorted(set(revisions))


def revision(db_path):
    if not db_path.exists():
        return 0
    return sql(db_path, "SELECT COALESCE(MAX(revision), 0) FROM memory_changes")[0][0]


def test_every_writing_command_records_its_changes(cli, db_path, tmp_path, frozen):
    steps = [
        (("memory", "store", "a", "1"), 1),
        (("memory", "store", "a", "2"), 1),
        (("memory", "incr", "n"), 1),
        (("memory", "store", "t", "1", "--ttl", "5"), 1),
        (("memory", "delete", "a"), 1),
        (("memory", "batch", "-"), 3),
    ]
    batch = json.dumps([{"action": "store", "key": "b", "value": 1}, {"action": "store", "key": "c", "value": 2},
                        {"action": "delete", "key": "b"}])
    for args, added in steps:
        before = revision(db_path)
        result = cli(*args, input=batch if args[-1] == "-" else None)
        assert result.exit_code == 0, (args, result)
        assert revision(db_path) == before + added, args
        feed_is_consistent(db_path)
    frozen.now += 10
    before = revision(db_path)
    assert cli("memory", "cleanup").exit_code == 0
    assert sql(db_path, "SELECT action, key FROM memory_changes WHERE revision > ?", (before,)) == [("expire", "t")]
    export = tmp_path / "e.jsonl"
    export.write_text(json.dumps({"key": "imp", "value": 1}) + "\n" + json.dumps({"key": "c", "value": 9}) + "\n")
    before = revision(db_path)
    assert cli("memory", "import", str(export), "--on-conflict", "skip").exit_code == 0
    assert revision(db_path) == before + 1
    assert cli("memory", "import", str(export), "--on-conflict", "replace").exit_code == 0
    assert revision(db_path) == before + 3
    feed_is_consistent(db_path)
    backup = cli("backup", "create", str(tmp_path / "b.db")).json["path"]
    cli("memory", "store", "c", "10")
    before = revision(db_path)
    assert cli("backup", "restore", backup, "--merge", "--yes").exit_code == 0
    feed_is_consistent(db_path)
    assert cli("backup", "restore", backup, "--yes").exit_code == 0
    last = sql(db_path, "SELECT revision, action FROM memory_changes ORDER BY revision DESC LIMIT 1")[0]
    assert last[1] == "restore" and last[0] > before  # revisions never go backwards
    before = revision(db_path)
    assert cli("memory", "clear", "--all", "--yes").exit_code == 0
    assert {r[0] for r in sql(db_path, "SELECT action FROM memory_changes WHERE revision > ?", (before,))} == {"clear"}
    assert sql(db_path, "SELECT COUNT(*) FROM memory_store")[0][0] == 0


# -- hypothesis: version arithmetic ---------------------------------------------------------------

operations = st.lists(
    st.tuples(st.sampled_from(["store", "delete", "incr", "cas"]), st.sampled_from(["x", "y"]),
              st.integers(min_value=0, max_value=4)),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_version_arithmetic_matches_a_model(ops, tmp_path_factory):
    from gemini_flow_cli.core.db import Database
    from gemini_flow_cli.core.memory import MemoryManager
    from gemini_flow_cli.errors import GeminiFlowError

    db = Database.open(tmp_path_factory.mktemp("h") / "h.db", create=True)
    manager = MemoryManager(db)
    model: dict[str, tuple[int, int]] = {}  # key -> (version, value)
    try:
        for action, key, n in ops:
            if action == "store":
                result = manager.store(key, n)
                model[key] = (model.get(key, (0, 0))[0] + 1, n)
                assert result["version"] == model[key][0]
            elif action == "delete":
                assert manager.delete([key]) == ([key] if key in model else [])
                model.pop(key, None)
            elif action == "incr":
                result = manager.incr(key, n)
                version, value = model.get(key, (0, 0))
                model[key] = (version + 1, value + n)
                assert (result["version"], result["value"]) == model[key]
            else:
                current = model.get(key, (0, 0))[0]
                try:
                    manager.store(key, n, if_version=n % 3)
                    assert current == n % 3
                    model[key] = (current + 1, n)
                except GeminiFlowError as exc:
                    assert exc.code == "CONFLICT" and exc.details["version"] == current != n % 3
        for key, (version, value) in model.items():
            envelope = manager.retrieve(key)
            assert (envelope["version"], envelope["value"]) == (version, value)
        kept = db.conn.execute("SELECT COUNT(*) FROM memory_changes").fetchone()[0]
        writes = sum(1 for action, _k, _n in ops if action in ("store", "incr"))
        assert kept >= writes
    finally:
        db.close()
