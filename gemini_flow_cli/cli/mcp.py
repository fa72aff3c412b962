"""`gemini-flow mcp ...`: the shared memory inside coding agents, over the Model Context Protocol."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import state
from gemini_flow_cli.errors import GeminiFlowError, install_extra_hint

app = typer.Typer(no_args_is_help=True)

Namespaces = Annotated[
    Optional[list[str]],
    typer.Option("--namespace", "-n", help="A namespace the server may touch (repeatable; default: all). "
                 "The first is the default of every tool.", show_default=False),
]
ReadOnly = Annotated[bool, typer.Option("--read-only", help="Offer only the reading tools; refuse every write.")]
Agent = Annotated[
    Optional[str],
    typer.Option("--agent", help="The agent the server acts as for claims, task results and votes "
                 "(default: each call names one).", show_default=False),
]


def _checked_namespaces(namespaces: list[str] | None) -> tuple[str, ...]:
    from gemini_flow_cli.core.memory import validate_namespace

    return tuple(dict.fromkeys(validate_namespace(ns) for ns in namespaces or ()))


@app.command()
def serve(
    namespace: Namespaces = None,
    read_only: ReadOnly = False,
    agent: Agent = None,
    http: Annotated[
        Optional[str],
        typer.Option("--http", help="Serve MCP's streamable HTTP transport at http://HOST:PORT/mcp instead of stdio "
                     "(loopback only: it has no authentication).", show_default=False, metavar="HOST:PORT"),
    ] = None,
) -> None:
    """Run an MCP server on standard input and output for a coding agent.

    Tools: memory_store, memory_retrieve, memory_search, memory_delete, memory_incr,
    memory_namespaces, memory_history, memory_changes, memory_stats, task_claim, task_complete,
    task_fail, consensus_vote. Results are the same JSON as the CLI's --json; failures are MCP
    tool errors carrying the CLI's error code and message. Each namespace is also a resource.
    The database is found as for every command (--db, GEMINI_FLOW_DB, the nearest
    .hive-mind/hive.db), once per call, and every call is its own transaction, so several servers
    and the CLI share one database. Needs the mcp extra (README "Optional extras").
    Clients start it themselves: see `gemini-flow mcp install`. --http 127.0.0.1:PORT serves
    the streamable HTTP transport instead, for a client that connects to a URL; it listens on a
    loopback address only (no authentication; Host and Origin are checked against DNS rebinding).

    Example:

        gemini-flow mcp serve -n project -n shared --agent "$AGENT"
    """
    import importlib.util

    st = state()
    scoped = _checked_namespaces(namespace)
    if importlib.util.find_spec("mcp") is None:
        raise GeminiFlowError(
            "INVALID_INPUT", f"mcp serve needs the MCP SDK, an optional extra: {install_extra_hint('mcp')}",
            details={"extra": "mcp"},
        )
    address = _loopback_address(http) if http is not None else None
    from gemini_flow_cli.mcp.server import serve_http, serve_stdio
    from gemini_flow_cli.mcp.tools import Scope

    scope = Scope(db_path=st.db_path, busy_timeout=st.busy_timeout, namespaces=scoped, read_only=read_only,
                  agent=agent, warn=st.out.warn)
    suffix = " (read-only)" if read_only else ""
    if address is None:
        st.out.message("gemini-flow MCP server on stdio" + suffix)
        serve_stdio(scope)
        return
    host, port = address
    shown = f"[{host}]" if ":" in host else host
    st.out.message(f"gemini-flow MCP server at http://{shown}:{port}/mcp{suffix}")
    serve_http(scope, host, port)


def _loopback_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) on a loopback host, else INVALID_INPUT."""
    import ipaddress

    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise GeminiFlowError("INVALID_INPUT", f"invalid --http {text!r}: give HOST:PORT, e.g. 127.0.0.1:8766")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise GeminiFlowError(
            "INVALID_INPUT", f"--http listens on a loopback address only (127.0.0.1, ::1, localhost), not {host!r}: "
            "the MCP HTTP transport has no authentication here; use `gemini-flow serve` with API keys",
            details={"host": host})
    return host, int(port)


@app.command()
def install(
    client: Annotated[str, typer.Option("--client", help="claude (Claude Code), gemini (Gemini CLI) or codex (Codex).",
                                        show_default=False)],
    scope: Annotated[
        Optional[str],
        typer.Option("--scope", help="project (this folder's file, shared with the team) or user (your own, "
                     "every project). Default: project; user for codex.", show_default=False),
    ] = None,
    namespace: Namespaces = None,
    read_only: ReadOnly = False,
    agent: Agent = None,
    name: Annotated[str, typer.Option("--name", help="The server's name in the client's configuration.")] = "gemini-flow",
    command: Annotated[str, typer.Option("--command", help="The program the client runs.")] = "gemini-flow",
    print_: Annotated[bool, typer.Option("--print", help="Print the file as it would be written; write nothing.")] = False,
) -> None:
    """Add the gemini-flow MCP server to a coding agent's configuration.

    Merges into the client's file, keeping every other entry: Claude Code .mcp.json (project) or
    ~/.claude.json (user); Gemini CLI .gemini/settings.json or ~/.gemini/settings.json; Codex
    ~/.codex/config.toml (user only; needs the mcp extra for its TOML writer). A file that does
    not parse is refused (exit 2) and left as it is. The server's options (-n, --read-only,
    --agent, and the global --db) are written into its arguments. Running it again updates
    the entry. --print shows the whole new file and writes nothing (with --json: the result with the
    file's text as "content").

    Example:

        gemini-flow mcp install --client claude

        gemini-flow mcp install --client gemini -n project --print

        gemini-flow mcp install --client codex --scope user
    """
    import shutil

    from gemini_flow_cli.mcp import install as installer

    st = state()
    scope = scope or installer.DEFAULT_SCOPE.get(client, "project")
    path = installer.config_path(client, scope, project=Path.cwd(), home=Path.home())
    if not name or any(c in name for c in "\"'\n\r\t ."):
        raise GeminiFlowError("INVALID_INPUT", f"invalid --name {name!r}: letters, digits, '-' and '_'")
    from gemini_flow_cli.core.storage import is_url, redact

    if is_url(st.db_path) and redact(st.db_path) != st.db_path:
        raise GeminiFlowError("INVALID_INPUT", f"the database URL holds a password, which would be written into "
                              f"{path}; give it through ~/.pgpass or PGPASSWORD instead and a URL without one")
    args = ["mcp", "serve"]
    if st.db_path is not None:
        args += ["--db", st.db_path if is_url(st.db_path) else str(Path(st.db_path).resolve())]
    for ns in _checked_namespaces(namespace):
        args += ["-n", ns]
    if read_only:
        args.append("--read-only")
    if agent is not None:
        args += ["--agent", agent]
    entry = installer.server_entry(command, args)
    if print_:
        text, change = installer.merged_text(client, path, name, entry)
        result = {"success": True, "client": client, "scope": scope, "path": str(path), "name": name,
                  "server": entry, "change": change, "written": False}
        # The file itself (ready for `> file`), unless JSON was asked for by name.
        if st.out.json_explicit or st.out.format == "jsonl":
            st.out.emit({**result, "content": text})
        else:
            st.out.raw(text.rstrip("\n"))
        return
    with installer.locked(path):
        text, change = installer.merged_text(client, path, name, entry)
        if change != "unchanged":
            installer.write(path, text, new_mode=0o600 if scope == "user" else 0o644)
    result = {"success": True, "client": client, "scope": scope, "path": str(path), "name": name,
              "server": entry, "change": change, "written": change != "unchanged"}
    import importlib.util

    if importlib.util.find_spec("mcp") is None:
        st.out.warn(f"the server needs the MCP SDK to run: {installer.MISSING_EXTRA}")
    if shutil.which(command) is None:
        st.out.warn(f"{command!r} is not on PATH here; the client may not find it (give --command PATH)")
    st.out.done(result, f"{change.capitalize()} {name} in {path}")
