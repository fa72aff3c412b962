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


# -- found by trying it as a user with real configuration files ------------------------------------


@pytest.mark.parametrize("content, words", [
    ('{"a": 1, "a": 2}', "twice"),
    ('{"a": 1e400}', "beyond"),
    ('{"a": "\\ud800"}', "surrogate"),
    ('{"a": NaN}', "not a JSON number"),
])
def test_json_that_could_not_be_written_back_as_read_is_refused_and_left(cli, here, content, words):
    (here / ".mcp.json").write_text(content)
    result = cli("mcp", "install", "--client", "claude")
    assert result.exit_code == 2, result
    assert words in result.error["message"]
    assert (here / ".mcp.json").read_text() == content


def test_codex_inline_table_of_servers_is_refused_and_left(cli, here, monkeypatch):
    pytest.importorskip("tomlkit")
    home = here / "home"
    (home / ".codex").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    content = 'mcp_servers = { other = { command = "x" } }\n'
    (home / ".codex" / "config.toml").write_text(content)
    result = cli("mcp", "install", "--client", "codex")
    assert result.exit_code == 2, result
    assert "inline table" in result.error["message"]
    assert (home / ".codex" / "config.toml").read_text() == content


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlinked_configuration_is_written_through_the_link(cli, here, dangling):
    real = here / "dotfiles" / "mcp.json"
    real.parent.mkdir()
    if not dangling:
        real.write_text('{"mcpServers": {"other": {"command": "x"}}}')
    (here / ".mcp.json").symlink_to(real)
    assert cli("mcp", "install", "--client", "claude").exit_code == 0
    assert (here / ".mcp.json").is_symlink()
    servers = json.loads(real.read_text())["mcpServers"]
    assert "gemini-flow" in servers and (dangling or "other" in servers)


def test_a_read_only_configuration_is_refused_and_left(cli, here):
    path = here / ".mcp.json"
    path.write_text("{}")
    path.chmod(0o444)
    result = cli("mcp", "install", "--client", "claude")
    assert result.exit_code == 4, result
    assert path.read_text() == "{}"


def test_installs_at_once_all_land(run, here):
    import subprocess

    from conftest import gemini_flow_command

    names = [f"s{i}" for i in range(6)]
    processes = [subprocess.Popen([*gemini_flow_command(), "mcp", "install", "--client", "claude", "--name", n],
                                  cwd=here, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for n in names]
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read()
    assert set(json.loads((here / ".mcp.json").read_text())["mcpServers"]) == set(names)
