"""The smaller consistency fixes of issue 21, one regression test each."""

from __future__ import annotations

import json

from tests.helpers import T0


def test_deleting_an_expired_key_is_not_reported_deleted(cli, frozen):
    cli("memory", "store", "k", "v", "--ttl", "10")
    frozen.now = T0 + 11
    result = cli("memory", "delete", "k")
    assert result.exit_code == 1 and result.error["code"] == "NOT_FOUND"
    ok = cli("memory", "delete", "k", "--missing-ok").json
    assert (ok["deleted"], ok["missing"]) == ([], ["k"])


def test_export_o_refuses_an_existing_file_like_backup_create(cli, tmp_path):
    cli("memory", "store", "k", "v")
    out = tmp_path / "e.jsonl"
    out.write_text("keep me")
    refused = cli("memory", "export", "-o", str(out))
    assert refused.exit_code == 3 and refused.error["code"] == "CONFLICT" and "--force" in refused.error["message"]
    assert out.read_text() == "keep me"
    assert cli("memory", "export", "-o", str(out), "--force").json["exported"] == 1
    assert json.loads(out.read_text())["key"] == "k"
    assert cli("memory", "export", "-o", str(tmp_path)).exit_code == 2


def test_export_of_an_invalid_namespace_exits_2(cli):
    result = cli("memory", "export", "-n", "bad ns")
    assert result.exit_code == 2 and "namespace" in result.error["message"]


def test_import_of_a_folder_says_so(cli, tmp_path):
    result = cli("memory", "import", str(tmp_path))
    assert result.exit_code == 2 and "folder" in result.error["message"]


def test_batch_key_that_is_not_a_string_says_so(cli):
    result = cli("memory", "batch", input='{"action": "store", "key": 123, "value": 1}\n')
    assert result.exit_code == 2
    assert "a key is a string, not a number" in result.error["message"]


def test_import_names_a_key_the_file_repeats(cli, tmp_path):
    source = tmp_path / "dup.jsonl"
    source.write_text('{"key": "d", "value": 1}\n{"key": "d", "value": 2}\n')
    result = cli("memory", "import", str(source))
    assert result.exit_code == 3
    assert "more than once in the file" in result.error["message"] and "already exists" not in result.error["message"]
    assert cli("memory", "search", "*").json["total"] == 0
    cli("memory", "store", "d", "0")
    result = cli("memory", "import", str(source))
    assert "already exists" in result.error["message"]


def test_plain_progress_line_ends_with_a_newline(monkeypatch, capsys):
    from gemini_flow_cli import output

    monkeypatch.setattr(output, "_isatty", lambda stream: True)
    monkeypatch.setenv("NO_COLOR", "1")
    with output.Output("json").progress("Working", total=2) as bar:
        bar.advance(2)
    err = capsys.readouterr().err
    assert err.endswith("Working 2/2\n")
