"""`gemini-flow mcp install` (CLI.md §9): each client's file, merged without losing an entry."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gemini_flow_cli.mcp import install as installer


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A project folder as the current directory, and HOME (the conftest's) for user files."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    return project


def install(cli, *args):
    return cli("mcp", "install", *args, db=None)


@pytest.mark.parametrize("client, scope, relative", [
    ("claude", "project", "project/.mcp.json"),
    ("claude", "user", "home/.claude.json"),
    ("gemini", "project", "project/.gemini/settings.json"),
    ("gemini", "user", "home/.gemini/settings.json"),
])
def test_each_json_client_gets_its_file(cli, here, client, scope, relative):
    result = install(cli, "--client", client, "--scope", scope)
    assert result.exit_code == 0, result
    base = {"project": here, "home": Path(os.environ["HOME"])}[relative.split("/")[0]]
    path = base / relative.split("/", 1)[1]
    assert result.json["path"] == str(path) and result.json["change"] == "added"
    document = json.loads(path.read_text())
    assert document == {"mcpServers": {"gemini-flow": {"command": "gemini-flow", "args": ["mcp", "serve"]}}}
    assert (path.stat().st_mode & 0o777) == (0o600 if scope == "user" else 0o644)


def test_merging_keeps_every_other_entry_and_their_order(cli, here):
    existing = {"theme": "dark", "mcpServers": {"github": {"command": "gh-mcp", "env": {"TOKEN": "t"}}},
                "projects": {"/x": {"allowedTools": []}}}
    settings = here / ".gemini" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps(existing, indent=4))
    settings.chmod(0o640)
    assert install(cli, "--client", "gemini", "-n", "team", "--read-only").exit_code == 0
    document = json.loads(settings.read_text())
    assert list(document) == ["theme", "mcpServers", "projects"]
    assert document["mcpServers"]["github"] == existing["mcpServers"]["github"]
    assert document["projects"] == existing["projects"]
    assert document["mcpServers"]["gemini-flow"]["args"] == ["mcp", "serve", "-n", "team", "--read-only"]
    assert settings.stat().st_mode & 0o777 == 0o640  # the file's own permissions are kept


def test_running_again_updates_only_our_entry_and_keeps_what_the_user_added(cli, here):
    assert install(cli, "--client", "claude").json["change"] == "added"
    path = here / ".mcp.json"
    document = json.loads(path.read_text())
    document["mcpServers"]["gemini-flow"]["env"] = {"GEMINI_FLOW_NAMESPACE": "team"}
    path.write_text(json.dumps(document))
    assert install(cli, "--client", "claude").json["change"] == "unchanged"
    result = install(cli, "--client", "claude", "--agent", "agent-7")
    assert result.json["change"] == "updated"
    entry = json.loads(path.read_text())["mcpServers"]["gemini-flow"]
    assert entry == {"command": "gemini-flow", "args": ["mcp", "serve", "--agent", "agent-7"],
                     "env": {"GEMINI_FLOW_NAMESPACE": "team"}}


def test_the_global_db_goes_into_the_arguments_as_an_absolute_path(cli, here):
    result = cli("--db", "data/hive.db", "mcp", "install", "--client", "claude", "--print", db=None)
    entry = result.json["server"]
    assert not result.json["written"] and not (here / ".mcp.json").exists()
    assert entry["args"] == ["mcp", "serve", "--db", str(here / "data" / "hive.db")]


def test_codex_toml_keeps_comments_and_other_servers(cli, here):
    tomlkit = pytest.importorskip("tomlkit")
    config = Path(os.environ["HOME"]) / ".codex" / "config.toml"
    config.parent.mkdir()
    original = ('# my settings\nmodel = "o4-mini"  # fast\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\n'
                'args = ["--port", "1"]\n\n[profiles.ci]\nmodel = "o3"\n')
    config.write_text(original)
    result = install(cli, "--client", "codex", "-n", "ci")
    assert result.exit_code == 0 and result.json["scope"] == "user" and result.json["path"] == str(config)
    text = config.read_text()
    assert text.startswith(original.rstrip("\n").split("\n\n[profiles")[0].split("\n[mcp_servers")[0])
    assert "# my settings" in text and "# fast" in text
    document = tomlkit.parse(text)
    assert document["mcp_servers"]["docs"]["command"] == "docs-mcp"
    assert document["profiles"]["ci"]["model"] == "o3"
    assert document["mcp_servers"]["gemini-flow"]["args"] == ["mcp", "serve", "-n", "ci"]
    assert install(cli, "--client", "codex", "-n", "ci").json["change"] == "unchanged"


def test_codex_has_no_project_file(cli, here):
    result = install(cli, "--client", "codex", "--scope", "project")
    assert result.exit_code == 2 and "--scope user" in result.error["message"]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"mcpServers": []}'])
def test_a_file_that_does_not_parse_is_refused_and_left_as_it_is(cli, here, content):
    path = here / ".mcp.json"
    path.write_text(content)
    result = install(cli, "--client", "claude")
    assert result.exit_code == 2 and result.error["code"] == "INVALID_INPUT"
    assert path.read_text() == content


def test_a_broken_toml_is_refused_and_left_as_it_is(cli, here):
    pytest.importorskip("tomlkit")
    config = Path(os.environ["HOME"]) / ".codex" / "config.toml"
    config.parent.mkdir()
    config.write_text("model = [unclosed\n")
    result = install(cli, "--client", "codex")
    assert result.exit_code == 2 and config.read_text() == "model = [unclosed\n"


def test_print_shows_the_new_file_and_writes_nothing(cli, here):
    path = here / ".mcp.json"
    path.write_text('{"mcpServers": {"other": {"command": "x"}}}')
    result = install(cli, "--format", "auto", "--client", "claude", "--print", "--name", "memory")
    assert result.exit_code == 0
    # the file itself, ready for `> file`; with --json, the result with the text as "content"
    assert result.stdout == install(cli, "--client", "claude", "--print", "--name", "memory").json["content"]
    assert json.loads(result.stdout)["mcpServers"] == {"other": {"command": "x"},
                                                       "memory": {"command": "gemini-flow", "args": ["mcp", "serve"]}}
    assert path.read_text() == '{"mcpServers": {"other": {"command": "x"}}}'


@pytest.mark.parametrize("args", [["--client", "cursor"], ["--client", "claude", "--scope", "team"],
                                  ["--client", "claude", "--name", "a b"], ["--client", "claude", "-n", "bad/ns"]])
def test_bad_options_exit_2_and_write_nothing(cli, here, args):
    result = install(cli, *args)
    assert result.exit_code == 2, result
    assert not (here / ".mcp.json").exists()


def test_a_folder_where_the_file_goes_is_invalid_input(cli, here):
    (here / ".mcp.json").mkdir()
    result = install(cli, "--client", "claude")
    assert result.exit_code == 2 and "folder" in result.error["message"]


def test_the_merge_functions_round_trip_a_file_unchanged_when_the_entry_is_there(tmp_path):
    path = tmp_path / "settings.json"
    entry = installer.server_entry("gemini-flow", ["mcp", "serve"])
    text, change = installer.merged_text("gemini", path, "gemini-flow", entry)
    path.write_text(text)
    assert installer.merged_text("gemini", path, "gemini-flow", entry) == (text, "unchanged")
