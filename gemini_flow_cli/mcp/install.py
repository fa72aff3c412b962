"""`gemini-flow mcp install`: a coding agent's configuration, merged, never clobbered.

Each client keeps its MCP servers in its own file (CLI.md §9):

======== ======= ========================== =========================================
client   scope   file                       where the entry goes
======== ======= ========================== =========================================
claude   project ``.mcp.json``              ``mcpServers.NAME``
claude   user    ``~/.claude.json``         ``mcpServers.NAME``
gemini   project ``.gemini/settings.json``  ``mcpServers.NAME``
gemini   user    ``~/.gemini/settings.json`` ``mcpServers.NAME``
codex    user    ``~/.codex/config.toml``   ``[mcp_servers.NAME]``
======== ======= ========================== =========================================

Every other entry of the file is kept as it was (JSON key order; TOML comments and layout, with
tomlkit). A file that does not parse, or whose entry is not where the client expects a table of
servers, is refused (INVALID_INPUT) and left untouched. The new file is written to a temporary
file and renamed over the old one, with the old one's permissions.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gemini_flow_cli.errors import GeminiFlowError, install_extra_hint

CLIENTS = ("claude", "gemini", "codex")
SCOPES = ("project", "user")
DEFAULT_SCOPE = {"claude": "project", "gemini": "project", "codex": "user"}
MISSING_EXTRA = install_extra_hint("mcp")


def config_path(client: str, scope: str, *, project: Path, home: Path) -> Path:
    """The file ``client`` reads its MCP servers from at ``scope``. Codex has no project file:
    INVALID_INPUT."""
    if client not in CLIENTS:
        raise GeminiFlowError("INVALID_INPUT", f"unknown client {client!r}: use one of {', '.join(CLIENTS)}")
    if scope not in SCOPES:
        raise GeminiFlowError("INVALID_INPUT", f"unknown scope {scope!r}: use project or user")
    if client == "claude":
        return project / ".mcp.json" if scope == "project" else home / ".claude.json"
    if client == "gemini":
        return project / ".gemini" / "settings.json" if scope == "project" else home / ".gemini" / "settings.json"
    if scope == "project":
        raise GeminiFlowError("INVALID_INPUT", "Codex reads MCP servers from ~/.codex/config.toml only: "
                                               "use --scope user")
    return home / ".codex" / "config.toml"


def server_entry(command: str, args: list[str]) -> dict[str, Any]:
    """The entry every client understands: the command and its arguments."""
    return {"command": command, "args": list(args)}


def merged_text(client: str, path: Path, name: str, entry: dict[str, Any]) -> tuple[str, str]:
    """The text of ``path`` with the server ``name`` set to ``entry``, and what changed:
    ``"added"``, ``"updated"`` or ``"unchanged"``. Raises INVALID_INPUT for a file that cannot be
    read or parsed, or that holds something other than a table where the servers go."""
    old = _read(path)
    if client == "codex":
        return _merge_toml(path, old, name, entry)
    return _merge_json(path, old, name, entry)


def _read(path: Path) -> str | None:
    if path.is_dir():
        raise GeminiFlowError("INVALID_INPUT", f"cannot read {path}: it is a folder, not a file")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise GeminiFlowError("INVALID_INPUT", f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
                              details={"path": str(path)}) from exc


def _merge_json(path: Path, old: str | None, name: str, entry: dict[str, Any]) -> tuple[str, str]:
    if old is None or not old.strip():
        document: Any = {}
    else:
        try:
            document = _strict_json(old, path)
        except json.JSONDecodeError as exc:
            raise GeminiFlowError(
                "INVALID_INPUT", f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}): fix it "
                "first; it was left as it is", details={"path": str(path)}) from exc
    if not isinstance(document, dict):
        raise GeminiFlowError("INVALID_INPUT", f"{path} does not hold a JSON object; it was left as it is",
                              details={"path": str(path)})
    servers = document.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise GeminiFlowError("INVALID_INPUT", f"{path}: mcpServers is not an object; it was left as it is",
                              details={"path": str(path)})
    previous = servers.get(name)
    if isinstance(previous, dict):
        # Keep what the user added to our entry (env, timeout, trust, ...): set only ours.
        change = "unchanged" if all(previous.get(k) == v for k, v in entry.items()) else "updated"
        servers[name] = {**previous, **entry}
    else:
        change = "added" if previous is None else "updated"
        servers[name] = entry
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n", change


def _strict_json(text: str, path: Path) -> Any:
    """The JSON document of ``text``, refusing what could not be written back as it was read: a
    key twice (one would be dropped), a number beyond the float range (it would come back as
    ``Infinity``, which is not JSON), NaN, a lone surrogate, nesting past the bound
    (INVALID_INPUT); JSONDecodeError for text that is not JSON."""
    import math

    from gemini_flow_cli.core import jsontext

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for key, value in items:
            if key in document:
                raise GeminiFlowError("INVALID_INPUT", f"{path} has the key {key!r} twice in one object; "
                                      "fix it first; it was left as it is", details={"path": str(path)})
            document[key] = value
        return document

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            raise GeminiFlowError("INVALID_INPUT", f"{path} has the number {number[:40]}, beyond what JSON "
                                  "readers take back; fix it first; it was left as it is", details={"path": str(path)})
        return value

    def constant(name: str) -> Any:
        raise GeminiFlowError("INVALID_INPUT", f"{path} has {name}, which is not a JSON number; fix it "
                              "first; it was left as it is", details={"path": str(path)})

    value = json.loads(text, object_pairs_hook=pairs, parse_float=finite, parse_constant=constant)
    return jsontext.check(value, what=str(path))


def _merge_toml(path: Path, old: str | None, name: str, entry: dict[str, Any]) -> tuple[str, str]:
    try:
        import tomlkit
        import tomlkit.items
        from tomlkit.exceptions import ParseError
    except ImportError:
        raise GeminiFlowError(
            "INVALID_INPUT", f"writing Codex's TOML configuration needs the mcp extra: {MISSING_EXTRA}",
            details={"extra": "mcp"}) from None
    try:
        document = tomlkit.parse(old or "")
    except ParseError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"{path} is not valid TOML ({exc}): fix it first; it was left "
                              "as it is", details={"path": str(path)}) from exc
    servers = document.get("mcp_servers")
    if servers is None:
        servers = tomlkit.table(is_super_table=True)
        document["mcp_servers"] = servers
    elif not isinstance(servers, dict):
        raise GeminiFlowError("INVALID_INPUT", f"{path}: mcp_servers is not a table; it was left as it is",
                              details={"path": str(path)})
    if isinstance(servers, tomlkit.items.InlineTable):
        # An inline table cannot hold our [mcp_servers.NAME] table (tomlkit: "Inline tables cannot
        # contain a table"); rewriting the user's layout is not ours to do.
        raise GeminiFlowError("INVALID_INPUT", f"{path}: mcp_servers is an inline table ({{ ... }}); write it "
                              "as [mcp_servers.NAME] tables first; it was left as it is", details={"path": str(path)})
    previous = servers.get(name)
    if isinstance(previous, dict):
        change = "unchanged" if all(previous.get(k) == v for k, v in entry.items()) else "updated"
        for key, value in entry.items():
            previous[key] = value
    else:
        change = "added" if previous is None else "updated"
        table = tomlkit.table()
        for key, value in entry.items():
            table[key] = value
        table.add(tomlkit.nl())  # a blank line before whatever table follows ours
        servers[name] = table
    return tomlkit.dumps(document), change


def write(path: Path, text: str, *, new_mode: int) -> None:
    """Replace ``path`` with ``text`` through a temporary file and a rename, keeping the old
    file's permissions (a new file gets ``new_mode``: 0600 for a user's file, which may hold
    other tools' tokens; 0644 for a project's, which is meant to be shared). Through a symlink
    to its target (cli/common.py ``write_output``); PERMISSION_DENIED for a read-only file."""
    # A configuration kept as a symlink (dotfiles) is written where the link points, not
    # replaced by a plain file that the link's target never sees.
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = None
    # Not writable, or made read-only by its owner (no write bit: root could still write it).
    if mode is not None and (not mode & 0o200 or not os.access(path, os.W_OK)):
        raise GeminiFlowError("PERMISSION_DENIED", f"{path} is read-only; it was left as it is "
                              "(make it writable, or add the entry by hand: --print shows it)",
                              details={"path": str(path)})
    from gemini_flow_cli.cli.common import write_output

    write_output(path, text.encode("utf-8"), mode=mode if mode is not None else new_mode)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the folder of ``path`` (made if missing) while the file is
    read, merged and written, so that two installs at once both land (a read-merge-write without
    it loses one). Clients that rewrite their own file (Claude Code does) do not take it."""
    folder = Path(os.path.realpath(path)).parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (ImportError, OSError):
        yield  # no lock to be had here: the rename still keeps the file whole
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
