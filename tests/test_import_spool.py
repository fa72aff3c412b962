"""memory import validates every record, then applies the validated rows from a spool (issue 20):
the file is parsed once, and what is applied is what was validated, whatever spills to disk."""

from __future__ import annotations

import json

from gemini_flow_cli.core import memory as memory_core


def test_an_import_that_spills_its_spool_applies_every_record_in_order(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(memory_core.Spool, "IN_MEMORY", 3)
    monkeypatch.setattr(memory_core.Spool, "BLOCK", 2)
    records = [{"key": f"k{i}", "namespace": f"ns-{i % 3}", "value": {"n": i, "text": "é" * (i % 4)},
                "tags": ["t", f"x{i % 2}"], "createdAt": "2026-01-02T03:04:05Z", "version": 1 + i % 3}
               for i in range(11)]
    records.append({"key": "k0", "namespace": "ns-1", "value": None})
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    result = cli("memory", "import", str(path), "--json")
    assert result.exit_code == 0, result
    assert result.json["imported"] == 12
    exported = tmp_path / "out.jsonl"
    assert cli("memory", "export", "-o", str(exported)).exit_code == 0
    back = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert [(r["key"], r["namespace"], r["value"], r["tags"], r["version"]) for r in back] == [
        (r["key"], r["namespace"], r["value"], sorted(r.get("tags", [])), r.get("version", 1)) for r in records]
    assert {r["createdAt"] for r in back[:11]} == {"2026-01-02T03:04:05Z"}


def test_a_bad_record_after_a_spill_imports_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(memory_core.Spool, "IN_MEMORY", 2)
    lines = [json.dumps({"key": f"k{i}", "value": i}) for i in range(6)] + ['{"key": "bad", "value": 1, "size": -1}']
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = cli("memory", "import", str(path), "--json")
    assert result.exit_code == 2 and result.error["details"]["line"] == 7, result
    assert cli("memory", "list", "--json").json["total"] == 0
