"""Bad input never looks like a bug (CLI.md §9, issue 18 case 4): each gets its own clear error.

Every input the issue listed as ending in exit 70 (or exhausting memory) is here as a
regression test; the property test in tests/test_hostile_input.py covers the kind.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from gemini_flow_cli.core import jsontext

ON_POSIX = os.name == "posix"


def error_of(result):
    return json.loads(result.stderr.strip().splitlines()[-1])["error"]


# -- argv and stdin that are not text -------------------------------------------------------------


def test_invalid_utf8_in_an_argument_is_exit_2(run):
    result = run("memory", "store", "k", os.fsdecode(b"caf\xe9"))
    assert result.returncode == 2, result.stderr
    assert "not valid UTF-8" in error_of(result)["message"]


@pytest.mark.parametrize("text", ["caf\udce9", "\ud83d", "x\udfff"])
def test_lone_surrogates_in_arguments_are_exit_2(cli, text):
    for argv in (("memory", "store", "k", text), ("memory", "store", text, "v"), ("agent", "spawn", "--type", text)):
        result = cli(*argv)
        assert result.exit_code == 2, (argv, result)


def test_invalid_utf8_on_stdin(tmp_path, db_path):
    import subprocess

    from tests.conftest import GEMINI_FLOW

    proc = subprocess.run([*GEMINI_FLOW, "--db", str(db_path), "memory", "store", "k"], input=b"caf\xe9",
                          capture_output=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr


# -- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ("memory", "list", "--limit", "99999999999999999999999"),
    ("memory", "search", "*", "--offset", "-99999999999999999999999"),
    ("task", "list", "--limit", str(2**64)),
    ("swarm", "init", "--topology", "mesh", "--max-agents", str(2**63)),
    ("task", "orchestrate", "x", "--estimated-duration", str(2**70)),
    ("task", "orchestrate", "x", "--max-agents", str(-(2**80))),
    ("consensus", "request", "--swarm", "s", "--proposal", "p", "--type", "majority", "--timeout", str(2**65)),
    ("task", "progress", "t", "--value", "nan"),
    ("task", "progress", "t", "--value", "inf"),
    ("agent", "heartbeat", "a", "--cpu", "-inf"),
])
def test_numbers_out_of_range_are_exit_2(cli, argv):
    result = cli(*argv)
    assert result.exit_code == 2, result
    assert error_of(result)["code"] in ("USAGE", "INVALID_INPUT")


# -- JSON nesting and surrogates ----------------------------------------------------------------


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("argv, stdin", [
    (("memory", "store", "deep"), DEEP),
    (("memory", "store", "deep", "-"), "[" * 1000 + "]" * 1000),
    (("memory", "batch"), '{"operations": ' + DEEP + "}"),
    (("memory", "batch"), "[" + "[" * 2000 + "]" * 2000 + "]"),
    (("agent", "spawn", "--type", "coder", "--metadata", "[" * 5000 + "]" * 5000), None),
    (("task", "orchestrate", "x", "--context", '{"a": ' + "[" * 5000 + "]" * 5000 + "}"), None),
])
def test_json_nested_too_deep_is_exit_2(cli, argv, stdin):
    result = cli(*argv, input=stdin)
    assert result.exit_code == 2, result
    assert "nested more than" in error_of(result)["message"]


def test_json_at_the_depth_limit_is_stored(cli):
    value = "[" * jsontext.MAX_DEPTH + "]" * jsontext.MAX_DEPTH
    assert cli("memory", "store", "ok", value).exit_code == 0
    assert cli("memory", "retrieve", "ok").exit_code == 0


@pytest.mark.parametrize("value", ['"\\ud83d"', '{"\\udc00": 1}', '["a", "\\udfff"]'])
def test_a_lone_surrogate_escape_is_exit_2(cli, value):
    result = cli("memory", "store", "k", value)
    assert result.exit_code == 2, result
    assert "surrogate" in error_of(result)["message"]


def test_a_paired_surrogate_escape_is_text(cli):
    assert cli("memory", "store", "k", '"\\ud83d\\ude00"').exit_code == 0
    assert cli("memory", "retrieve", "k").json["value"] == "😀"


def test_an_import_line_nested_too_deep_is_exit_2(cli, tmp_path):
    dump = tmp_path / "in.jsonl"
    dump.write_text(json.dumps({"key": "k", "value": 1})[:-1] + ', "tags": ' + "[" * 3000 + "]" * 3000 + "}\n")
    result = cli("memory", "import", str(dump))
    assert result.exit_code == 2, result


# -- paths that are folders, unreadable or unwritable ---------------------------------------------


def test_export_to_a_folder_is_exit_2(cli, tmp_path):
    cli("memory", "store", "k", "v")
    result = cli("memory", "export", "-o", str(tmp_path))
    assert result.exit_code == 2, result


@pytest.mark.skipif(not ON_POSIX or os.geteuid() == 0, reason="root may write into a read-only folder")
def test_an_unwritable_backup_folder_is_not_a_bug(run, tmp_path):
    assert run("memory", "store", "k", "v").returncode == 0
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        result = run("backup", "create", str(folder / "b.db"))
        default = run("backup", "create", env={"GEMINI_FLOW_BACKUP_DIR": str(folder)})
    finally:
        os.chmod(folder, 0o700)
    assert result.returncode in (2, 7), result.stderr
    assert default.returncode != 70, default.stderr


def test_a_backup_path_under_a_file_is_exit_2(run, tmp_path):
    assert run("memory", "store", "k", "v").returncode == 0
    (tmp_path / "plain").write_text("x")
    result = run("backup", "create", str(tmp_path / "plain" / "b.db"))
    assert result.returncode == 2, result.stderr


def test_an_unreadable_import_file_is_exit_2(cli, tmp_path):
    assert cli("memory", "import", str(tmp_path)).exit_code == 2
    assert cli("memory", "import", str(tmp_path / "missing.jsonl")).exit_code == 2


# -- backups: decompression bombs and nesting --------------------------------------------------


def _forge(content_path, data: bytes) -> None:
    """Replace a backup's content and make its manifest's size and checksum match again."""
    content_path.write_bytes(data)
    manifest_path = content_path.with_name(content_path.name + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["size"] = len(data)
    manifest["sha256"] = hashlib.sha256(data).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("fmt", ["json", "sql", "sqlite"])
def test_a_gzip_bomb_is_refused_before_it_is_written_out(cli, tmp_path, fmt):
    cli("memory", "store", "k", "v")
    backup = tmp_path / f"b.{fmt}.gz"
    assert cli("backup", "create", str(backup), "--format", fmt, "--compress").exit_code == 0
    original = gzip.decompress(backup.read_bytes())
    # The real content followed by 256 MiB of padding: about 256 KB compressed.
    stream = gzip.compress(original[:64] + b" " * (256 << 20), compresslevel=9)
    _forge(backup, stream)
    started = time.monotonic()
    result = cli("backup", "verify", str(backup))
    assert result.exit_code == 7, result
    assert "decompresses to more than" in error_of(result)["message"]
    assert time.monotonic() - started < 20
    assert not list(tmp_path.glob(".gemini-flow-restore-*")), "nothing left behind"


def test_a_backup_nested_too_deep_is_exit_7(cli, tmp_path):
    cli("memory", "store", "k", "v")
    backup = tmp_path / "b.json"
    assert cli("backup", "create", str(backup), "--format", "json").exit_code == 0
    _forge(backup, ("[" * 1_000_000 + "]" * 1_000_000).encode())
    result = cli("backup", "verify", str(backup))
    assert result.exit_code == 7, result


# -- durations (found by the property test) --------------------------------------------------


@pytest.mark.parametrize("ttl", ["99999999999999999999d", "9" * 5000, "1e400s", "11574075d", "1000000000001"])
def test_a_duration_beyond_the_ceiling_is_exit_2(cli, ttl):
    result = cli("memory", "store", "k", "v", "--ttl", ttl)
    assert result.exit_code == 2, result
    assert error_of(result)["code"] == "INVALID_INPUT"


def test_the_longest_duration_is_accepted(cli):
    # CLI.md §4: the longest TTL is one that ends by 9999-12-31T23:59:59Z (issue 19); past it, exit 2.
    assert cli("memory", "store", "k", "v", "--ttl", "2900000d").exit_code == 0
    assert cli("memory", "store", "k2", "v", "--ttl", "11574074d").exit_code == 2


@pytest.mark.parametrize("argv", [
    ("backup", "verify", "\x00"), ("memory", "export", "-o", "a\x00b"), ("key", "generate", "--file", "\x00"),
    ("backup", "list", "--dir", "\x00"), ("memory", "store", "k", "--file", "\x00"),
])
def test_a_nul_in_a_path_is_exit_2(cli, argv):
    result = cli(*argv)
    assert result.exit_code == 2, result
    assert "NUL" in error_of(result)["message"]


# -- bounded line readers -------------------------------------------------------------------------


def test_an_import_line_longer_than_the_limit_is_exit_5_without_reading_it_whole(cli, tmp_path, monkeypatch):
    from gemini_flow_cli.core import transfer

    monkeypatch.setattr(transfer, "MAX_LINE_CHARS", 1000)
    dump = tmp_path / "in.jsonl"
    dump.write_text(json.dumps({"key": "a", "value": 1}) + "\n" + json.dumps({"key": "b", "value": "x" * 5000}) + "\n")
    result = cli("memory", "import", str(dump))
    assert result.exit_code == 5, result
    assert "line 2" in error_of(result)["message"]
    assert cli("memory", "retrieve", "a").exit_code == 1, "nothing was imported"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_importing_dev_zero_ends_at_once(run):
    started = time.monotonic()
    result = run("memory", "import", "/dev/zero", timeout=120)
    assert result.returncode in (2, 5), result.stderr
    assert time.monotonic() - started < 60


def test_a_folder_given_as_the_database_is_exit_2(cli, tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir(mode=0o700)
    for argv in (("memory", "list"), ("memory", "store", "k", "v")):
        result = cli(*argv, db=folder)
        assert result.exit_code == 2, result
        assert "is a folder" in error_of(result)["message"]
    result = cli("memory", "list", db=Path("/dev/null"))
    assert result.exit_code == 2 and "not a regular file" in error_of(result)["message"]
