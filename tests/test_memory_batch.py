"""memory batch and the batch API: validation first, one transaction, the CLI.md output shape."""

from __future__ import annotations

import json

import pytest

from gemini_flow_cli.core import clock
from gemini_flow_cli.core.db import Database
from gemini_flow_cli.core.memory import MemoryManager
from gemini_flow_cli.errors import GeminiFlowError


def ops(*operations):
    return json.dumps({"operations": list(operations)})


def test_batch_runs_operations_in_order_with_the_cli_shape(cli):
    cli("memory", "store", "temp-cache-123", "1", "-n", "cache")
    result = cli("memory", "batch", "-", input=ops(
        {"action": "store", "key": "session-1-data", "value": {"step": 1}, "namespace": "sessions"},
        {"action": "retrieve", "key": "session-1-data", "namespace": "sessions"},
        {"action": "delete", "key": "temp-cache-123", "namespace": "cache"},
    ))
    assert result.exit_code == 0, result
    body = result.json
    assert body["total"] == 3 and body["succeeded"] == 3 and body["failed"] == 0
    assert [(r["action"], r["key"], r["namespace"], r["success"]) for r in body["results"]] == [
        ("store", "session-1-data", "sessions", True),
        ("retrieve", "session-1-data", "sessions", True),
        ("delete", "temp-cache-123", "cache", True),
    ]
    assert body["results"][1]["value"] == {"step": 1}
    assert "executionTime" in body
    assert cli("memory", "retrieve", "temp-cache-123", "-n", "cache").exit_code == 1


def test_batch_accepts_json_lines_from_a_file(cli, tmp_path):
    path = tmp_path / "ops.jsonl"
    path.write_text('{"action": "store", "key": "a", "value": "x", "ttl": "1h", "tags": ["t"]}\n\n'
                    '{"action": "store", "key": "b", "value": 2}\n')
    assert cli("memory", "batch", str(path)).json["succeeded"] == 2
    found = cli("memory", "retrieve", "a", "--json").json
    assert found["value"] == "x" and found["metadata"]["tags"] == ["t"] and found["metadata"]["expiresAt"]


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"action": "frobnicate", "key": "x"}, "unknown action"),
        ({"action": "store", "key": "x"}, "value"),
        ({"action": "store", "key": "", "value": 1}, "empty"),
        ({"action": "store", "key": "x", "value": 1, "namespace": "bad ns"}, "namespace"),
        ({"action": "store", "key": "x", "value": 1, "ttl": "soon"}, "ttl"),
        ({"action": "store", "key": "x", "value": 1, "colour": "red"}, "colour"),
        ({"action": "delete"}, "key"),
        ("not an object", "object"),
    ],
)
def test_one_bad_operation_rejects_the_batch_naming_its_position(cli, bad, words):
    result = cli("memory", "batch", "-", input=ops(
        {"action": "store", "key": "first", "value": 1}, {"action": "store", "key": "second", "value": 2}, bad))
    assert result.exit_code == 2, result
    assert "operation 3" in result.error["message"] and words in result.error["message"]
    assert cli("memory", "list").json["total"] == 0


def test_malformed_json_lines_name_the_line(cli):
    result = cli("memory", "batch", "-", input='{"action": "store", "key": "a", "value": 1}\n{oops\n')
    assert result.exit_code == 2 and "line 2" in result.error["message"]
    assert cli("memory", "list").json["total"] == 0


def test_if_absent_conflict_rolls_back_the_whole_batch(cli):
    cli("memory", "store", "exists", "1")
    result = cli("memory", "batch", "-", input=ops(
        {"action": "store", "key": "new", "value": 1},
        {"action": "store", "key": "exists", "value": 2, "ifAbsent": True},
    ))
    assert result.exit_code == 3
    assert cli("memory", "retrieve", "new").exit_code == 1
    assert cli("memory", "retrieve", "exists").json["value"] == 1


def test_missing_keys_are_failed_results_and_writes_still_commit(cli):
    body = cli("memory", "batch", "-", input=ops(
        {"action": "store", "key": "a", "value": 1},
        {"action": "retrieve", "key": "missing"},
        {"action": "delete", "key": "also-missing"},
    )).json
    assert body["succeeded"] == 1 and body["failed"] == 2
    assert body["results"][1]["error"]["code"] == "NOT_FOUND"
    assert cli("memory", "retrieve", "a").json["value"] == 1


def test_batch_writes_one_audit_row(cli, db_path):
    import sqlite3

    cli("memory", "batch", "-", input=ops(*[{"action": "store", "key": f"k{i}", "value": i} for i in range(50)]))
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT action, details FROM audit_log WHERE entity_type = 'memory'").fetchall()
    assert len(rows) == 1 and rows[0][0] == "batch"
    assert json.loads(rows[0][1])["stored"] == 50


@pytest.fixture
def manager():
    db = Database.in_memory()
    yield MemoryManager(db)
    db.close()


def test_batch_store_api_keeps_store_semantics(manager, monkeypatch):
    manager.store("k", 1, tags=["a"])
    manager.retrieve("k")
    monkeypatch.setattr(clock, "now", lambda: clock.time.time() + 5)
    result = manager.batch_store([{"key": "k", "value": 2, "tags": "x,y"}, {"key": "n", "value": None, "ttl": 60,
                                                                            "namespace": "other"}])
    assert result["total"] == 2 and result["namespaces"] == {"default": 1, "other": 1}
    envelope = manager.retrieve("k")
    assert envelope["value"] == 2 and envelope["metadata"]["accessCount"] == 2
    assert envelope["metadata"]["tags"] == ["x", "y"]
    assert manager.retrieve("n", namespace="other")["metadata"]["expiresAt"] is not None


def test_batch_store_over_an_expired_entry_starts_it_afresh(manager, monkeypatch):
    manager.store("k", 1, ttl=10)
    manager.retrieve("k")
    later = clock.time.time() + 100
    monkeypatch.setattr(clock, "now", lambda: later)
    manager.batch_store([{"key": "k", "value": 2}])
    meta = manager.retrieve("k")["metadata"]
    assert meta["accessCount"] == 1 and meta["createdAt"] == clock.iso(later)


def test_batch_store_invalid_item_stores_nothing(manager):
    with pytest.raises(GeminiFlowError) as info:
        manager.batch_store([{"key": "a", "value": 1}, {"key": "b\x00", "value": 1}])
    assert "item 2" in info.value.message and info.value.code == "INVALID_KEY"
    assert manager.search("*")["total"] == 0


def test_batch_store_refuses_unknown_owner(manager):
    with pytest.raises(GeminiFlowError) as info:
        manager.batch_store([{"key": "a", "value": 1, "agent_id": "agent-nope"}])
    assert info.value.code == "NOT_FOUND" and "agent-nope" in info.value.message


def test_batch_retrieve_and_delete_api(manager):
    manager.batch_store([{"key": "a", "value": 1}, {"key": "b", "value": 2}])
    got = manager.batch_retrieve(["a", "zz", "b"])
    assert [(r["key"], r["success"], r.get("value")) for r in got] == [("a", True, 1), ("zz", False, None), ("b", True, 2)]
    assert manager.batch_delete(["a", "zz"]) == [True, False]
    assert manager.search("*")["total"] == 1


def test_batch_store_value_too_large_exits_5(cli):
    big = "x" * (1024 * 1024 + 1)
    result = cli("memory", "batch", "-", input=ops({"action": "store", "key": "big", "value": big}))
    assert result.exit_code == 5 and "operation 1" in result.error["message"]


# -- owners and the statement-journal-free upsert (issue 20) ------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_OWNER_STEP = st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([None, "agent", "swarm", "both"]))


def _owners(db):
    from gemini_flow_cli.core import agents, swarms

    swarm = swarms.init(db, "mesh")["id"]
    agent = agents.spawn(db, "coder")["id"]
    return agent, swarm


def _final_rows(db):
    return db.conn.execute(
        "SELECT key, namespace, value, agent_id, swarm_id, version FROM memory_store ORDER BY key").fetchall()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(_OWNER_STEP, min_size=1, max_size=6), min_size=1, max_size=4))
def test_batch_store_sets_and_clears_owners_like_store(batches):
    """Batches of stores with and without owners, over new and existing entries, end exactly as
    the same stores made one by one: a store without an owner clears the owner it replaces."""
    one_by_one, batched = Database.in_memory(), Database.in_memory()
    try:
        ids = [_owners(one_by_one), _owners(batched)]
        for batch in batches:
            for db, (agent, swarm) in zip((one_by_one, batched), ids):
                items = []
                for n, (key, owner) in enumerate(batch):
                    item = {"key": key, "value": n,
                            "agent_id": agent if owner in ("agent", "both") else None,
                            "swarm_id": swarm if owner in ("swarm", "both") else None}
                    items.append(item)
                manager = MemoryManager(db)
                if db is one_by_one:
                    for item in items:
                        manager.store(item["key"], item["value"], agent_id=item["agent_id"], swarm_id=item["swarm_id"])
                else:
                    manager.batch_store(items)
        names = [{ids[0][0]: "agent", ids[0][1]: "swarm"}, {ids[1][0]: "agent", ids[1][1]: "swarm"}]
        rows = [[(k, ns, v, names[i].get(a), names[i].get(s), ver) for k, ns, v, a, s, ver in _final_rows(db)]
                for i, db in enumerate((one_by_one, batched))]
        assert rows[0] == rows[1]
        changes = [db.conn.execute("SELECT COUNT(*) FROM memory_changes").fetchone()[0]
                   for db in (one_by_one, batched)]
        assert changes[0] == changes[1]
    finally:
        one_by_one.close()
        batched.close()


# -- streaming input, spooled operations and results (issue 20) ---------------------------------

import io  # noqa: E402

from gemini_flow_cli.cli import memory as memory_cli  # noqa: E402
from gemini_flow_cli.core import memory as memory_core  # noqa: E402
from gemini_flow_cli.core.memory import parse_batch_document, read_batch  # noqa: E402

_KEYS = st.text(alphabet="abcxyz-/é", min_size=1, max_size=8)
_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=10),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                       max_leaves=6)
_OPS = st.lists(st.one_of(
    st.builds(lambda k, v: {"action": "store", "key": k, "value": v}, _KEYS, _VALUES),
    st.builds(lambda k: {"action": "retrieve", "key": k}, _KEYS),
    st.builds(lambda k: {"action": "delete", "key": k}, _KEYS),
), min_size=1, max_size=6)


def _as_text(ops, shape, blank, crlf):
    if shape == "document":
        return json.dumps({"operations": ops}, ensure_ascii=False)
    if shape == "pretty":
        return json.dumps({"operations": ops}, ensure_ascii=False, indent=2)
    if shape == "array":
        return json.dumps(ops, ensure_ascii=False)
    end = "\r\n" if crlf else "\n"
    return "".join(json.dumps(op, ensure_ascii=False) + end + (end if i in blank else "") for i, op in enumerate(ops))


@settings(max_examples=150, deadline=None)
@given(_OPS, st.sampled_from(["document", "pretty", "array", "lines"]), st.sets(st.integers(0, 6)), st.booleans(),
       st.sampled_from([None, 0, 1, 2]))
def test_streamed_input_reads_as_the_whole_text_does(ops, shape, blank, crlf, garbage_at):
    """read_batch (line by line) gives the operations parse_batch_document gives for the same
    text, or the same error: for documents, arrays and JSON Lines with blank lines and CRLF."""
    text = _as_text(ops, shape, blank, crlf)
    if garbage_at is not None and shape == "lines":
        lines = text.split("\n")
        lines.insert(min(garbage_at, len(lines)), '{"action": "store", broken')
        text = "\n".join(lines)
    try:
        expected = parse_batch_document(text)
    except GeminiFlowError as exc:
        with pytest.raises(GeminiFlowError) as info:
            list(read_batch(io.BytesIO(text.encode("utf-8"))))
        assert (info.value.code, info.value.message) == (exc.code, exc.message)
        return
    assert list(read_batch(io.BytesIO(text.encode("utf-8")))) == expected
    assert list(read_batch(io.BytesIO(b"\xef\xbb\xbf" + text.encode("utf-8")), strip_bom=True)) == expected


def _lines(ops):
    return "".join(json.dumps(op) + "\n" for op in ops)


def _normalised(output: str, fmt: str):
    if fmt == "json":
        body = json.loads(output)
        body.pop("executionTime")
        return body
    return output


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "table"])
def test_a_spooled_batch_prints_what_a_small_one_prints(cli, tmp_path, monkeypatch, fmt):
    """Past the in-memory bounds the operations wait in a temporary file and the results are
    encoded once into another: the output is the same data in every format."""
    ops = [{"action": "store", "key": f"k{i}", "value": {"n": i, "s": "é"}} for i in range(7)]
    ops += [{"action": "retrieve", "key": "k3"}, {"action": "delete", "key": "k9"}, {"action": "delete", "key": "k1"}]
    outputs = []
    for bound in (10_000, 2):
        monkeypatch.setattr(memory_cli._BatchResults, "KEEP", bound)
        monkeypatch.setattr(memory_core.Spool, "IN_MEMORY", bound)
        result = cli("--db", str(tmp_path / f"{bound}.db"), "--format", fmt, "memory", "batch", "-", input=_lines(ops))
        assert result.exit_code == 0, result
        outputs.append(result.stdout)
    if fmt == "json":
        small, spooled = (json.loads(o) for o in outputs)
        for body in (small, spooled):
            body.pop("executionTime")
            for item in body["results"]:
                item.get("metadata", {}).pop("createdAt", None)
                item.get("metadata", {}).pop("updatedAt", None)
        assert small == spooled and spooled["total"] == 10 and spooled["failed"] == 1
    elif fmt == "table":
        assert outputs[0] == outputs[1] and "k3" in outputs[0]
    else:
        assert outputs[0].splitlines()[0] == outputs[1].splitlines()[0]
        assert len(outputs[0].splitlines()) == len(outputs[1].splitlines()) == 10 + (fmt == "csv")


def test_a_bad_operation_late_in_a_spooled_batch_applies_nothing(cli, db_path, monkeypatch):
    monkeypatch.setattr(memory_core.Spool, "IN_MEMORY", 3)
    cli("memory", "store", "before", "1")
    ops = [{"action": "store", "key": f"k{i}", "value": i} for i in range(20)] + [{"action": "store", "key": "x"}]
    result = cli("memory", "batch", "-", input=_lines(ops))
    assert result.exit_code == 2 and "operation 21" in result.error["message"]
    broken = _lines(ops[:20]) + "{not json\n"
    result = cli("memory", "batch", "-", input=broken)
    assert result.exit_code == 2 and "line 21: not JSON" in result.error["message"]
    assert cli("memory", "list", "--json").json["total"] == 1


def test_an_if_absent_conflict_in_a_spooled_batch_rolls_everything_back(cli, monkeypatch):
    monkeypatch.setattr(memory_core.Spool, "IN_MEMORY", 3)
    monkeypatch.setattr(memory_core, "BATCH_CHUNK", 4)
    cli("memory", "store", "taken", "1")
    ops = [{"action": "store", "key": f"k{i}", "value": i} for i in range(10)]
    ops.append({"action": "store", "key": "taken", "value": 2, "ifAbsent": True})
    result = cli("memory", "batch", "-", input=_lines(ops))
    assert result.exit_code == 3 and "operation 11" in result.error["message"]
    assert cli("memory", "list", "--json").json["total"] == 1


def test_batch_input_that_is_not_utf8_names_the_offset(cli, tmp_path):
    path = tmp_path / "ops.jsonl"
    path.write_bytes(b'{"action": "store", "key": "a", "value": 1}\n{"action": "store", "key": "\xff", "value": 1}\n')
    result = cli("memory", "batch", str(path))
    assert result.exit_code == 2 and "not UTF-8" in result.error["message"] and "offset 72" in result.error["message"]


def test_a_run_of_new_and_existing_entries_records_each_change_once(manager):
    """The plain INSERT of a run stops at an existing entry: the rows before it stay inserted,
    and the rest of the run is applied as replacing stores, each change recorded once, with the
    value it replaced."""
    manager.store("old", "before")
    manager.batch_store([{"key": "new-1", "value": 1}, {"key": "old", "value": "after"}, {"key": "new-2", "value": 2}])
    rows = manager.db.conn.execute(
        "SELECT action, key, version, previous_value FROM memory_changes ORDER BY revision").fetchall()
    assert rows == [("store", "old", 1, None), ("store", "new-1", 1, None), ("store", "old", 2, '"before"'),
                    ("store", "new-2", 1, None)]
    assert manager.retrieve("old")["value"] == "after" and manager.retrieve("new-2")["value"] == 2


@pytest.mark.parametrize("at", [0, 1, 4, 5])
@pytest.mark.parametrize("owned", [False, True])
def test_an_existing_entry_anywhere_in_a_run_leaves_what_stores_one_by_one_leave(at, owned):
    """Wherever the existing entry sits in a run (first, inside, last), with or without owners:
    the same entries, versions and changes as the same stores made one at a time."""
    one_by_one, batched = Database.in_memory(), Database.in_memory()
    try:
        results = []
        for db in (one_by_one, batched):
            agent = _owners(db)[0] if owned else None
            items = [{"key": f"k{i}", "value": {"i": i}, "tags": ["t"], "agent_id": agent if i == 2 else None}
                     for i in range(6)]
            items[at] = {"key": "old", "value": "after", "ttl": 60, "tags": [], "agent_id": None}
            manager = MemoryManager(db)
            manager.store("old", "before")
            if db is one_by_one:
                for item in items:
                    manager.store(item["key"], item["value"], ttl=item["ttl"] if "ttl" in item else None,
                                  tags=item["tags"], agent_id=item["agent_id"])
            else:
                manager.batch_store(items)
            results.append((
                db.conn.execute("SELECT key, value, namespace, agent_id IS NOT NULL, ttl IS NOT NULL, version, "
                                "size_bytes, tags, encrypted, access_count FROM memory_store ORDER BY key").fetchall(),
                db.conn.execute("SELECT action, key, version, previous_value FROM memory_changes "
                                "ORDER BY revision").fetchall()))
        assert results[0] == results[1]
    finally:
        one_by_one.close()
        batched.close()


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029", "\x1c", "\x0b", "\x0c"])
def test_line_separators_other_than_newline_inside_a_string_are_data(cli, separator):
    """str.splitlines cut a batch at these; JSON text may hold them raw in a string."""
    import json as json_module

    document = json_module.dumps({"action": "store", "key": "a", "value": {separator: None}}, ensure_ascii=False)
    from gemini_flow_cli.core.memory import parse_batch_document

    assert parse_batch_document(document + "\n") == [json_module.loads(document)]


@pytest.mark.parametrize("in_memory, chunk", [(10_000, 20_000), (2, 3), (5, 4)])
def test_a_batch_of_only_stores_applies_and_reports_each_in_order(monkeypatch, in_memory, chunk):
    """Only plain stores go to the writes a spooled block at a time: the same results, in order,
    whether collected, handed to a sink, or handed over per part written, and the same rows."""
    monkeypatch.setattr(memory_core.Spool, "IN_MEMORY", in_memory)
    monkeypatch.setattr(memory_core, "BATCH_CHUNK", chunk)
    ops = [{"action": "store", "key": f"k{i % 7}", "value": {"i": i}, "namespace": f"ns{i % 2}"} for i in range(17)]
    expected = [{"action": "store", "key": op["key"], "namespace": op["namespace"], "success": True} for op in ops]
    outcomes = []
    for how in ("collected", "sink", "stores"):
        db = Database.in_memory()
        try:
            manager = MemoryManager(db)
            got: list = []
            if how == "collected":
                result = manager.run_batch(ops)
                got = result["results"]
            elif how == "sink":
                result = manager.run_batch(ops, sink=got.append)
            else:
                result = manager.run_batch(ops, sink=got.append, stores=lambda pairs: got.extend(
                    {"action": "store", "key": k, "namespace": n, "success": True} for k, n in pairs))
            assert got == expected and result["total"] == result["succeeded"] == 17
            outcomes.append((db.conn.execute("SELECT key, namespace, value, version FROM memory_store "
                                             "ORDER BY key, namespace").fetchall(),
                             db.conn.execute("SELECT key, namespace, version, previous_value FROM memory_changes "
                                             "ORDER BY revision").fetchall()))
        finally:
            db.close()
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert ("k0", "ns0", '{"i":14}', 2) in outcomes[0][0]


def test_events_of_a_batch_of_only_stores_are_recorded_each(manager, monkeypatch):
    """With a hook listening, a batch of plain stores takes the general path: an event per store,
    in order, with the version each store left."""
    recorded = []
    monkeypatch.setattr(manager.db, "listens", lambda event: event == "memory.store")
    monkeypatch.setattr(manager.db, "record_event", lambda event, data: recorded.append((event, data["key"],
                                                                                         data["version"])))
    manager.run_batch([{"action": "store", "key": key, "value": 1} for key in ("a", "b", "a")])
    assert recorded == [("memory.store", "a", 2), ("memory.store", "b", 1), ("memory.store", "a", 2)]
