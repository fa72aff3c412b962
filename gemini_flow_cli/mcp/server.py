"""`gemini-flow mcp serve`: the tools of ``tools.py`` on the official MCP Python SDK.

Built on the SDK's low-level ``Server`` rather than its decorator API: the tool list is ours to
write (short descriptions and hand-written schemas keep it under 3,000 tokens), and a failure
must reach the model as a tool error carrying our code and message, which the low-level
``on_call_tool`` returns as a ``CallToolResult`` with ``is_error`` set (the decorator API turns an
exception into "Error executing tool ..."). Each call runs in a worker thread: the core is
blocking SQLite, and one slow call (a busy writer, ``memory_changes`` waiting) must not stall the
others the client has in flight.

Resources: each namespace the server may read is a resource ``gemini-flow://namespace/NS``
whose text is the JSON of ``memory_search`` over that namespace (the first 100 entries).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server

from gemini_flow_cli import __version__
from gemini_flow_cli.errors import GeminiFlowError
from gemini_flow_cli.mcp import tools
from gemini_flow_cli.mcp.tools import Scope

RESOURCE_PREFIX = "gemini-flow://namespace/"
INSTRUCTIONS = (
    "gemini-flow: a memory shared with the other agents working on this project, and their tasks "
    "and votes. Results are the JSON of the gemini-flow CLI; errors carry its codes "
    "(NOT_FOUND, CONFLICT, ...). Use versions (if_version) to update without losing another "
    "agent's write."
)


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def tool_result(data: dict[str, Any]) -> types.CallToolResult:
    """A success: the CLI's --json dict as text (what every client shows the model) and as
    structured content."""
    return types.CallToolResult(content=[types.TextContent(text=_json(data))], structured_content=data)


def error_result(error: GeminiFlowError) -> types.CallToolResult:
    """A failure as an MCP tool error: ``{"success": false, "error": {"code", "message", ...}}``,
    the CLI's JSON error, so the model reads the code and can correct itself."""
    body = error.to_json()
    return types.CallToolResult(content=[types.TextContent(text=_json(body))], structured_content=body,
                                is_error=True)


class Anchor:
    """One idle read-only connection to the database the calls use, held for the server's life.

    Each call opens and closes its own connection (one transaction per call, as one CLI command).
    When the last connection to a WAL database closes, SQLite checkpoints the WAL and deletes it,
    and the next call recreates it: measured at 8 ms of a 13 ms retrieve. A connection that stays
    open (and never starts a transaction, so it holds back no checkpoint) avoids that. Opened only
    on a file a call has already opened, read-only, so it never creates or changes anything.
    """

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._connections: dict[Path, Any] = {}

    def __call__(self, path: Path) -> None:
        import sqlite3
        from urllib.parse import quote

        with self._lock:
            if path in self._connections or len(self._connections) >= 4:
                return
            try:
                connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, check_same_thread=False)
                # One read maps the WAL index: only then does SQLite count this connection, and
                # leave the WAL to the others. The read ends at once (autocommit): no snapshot held.
                connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            except sqlite3.Error:
                return
            self._connections[path] = connection

    def close(self) -> None:
        with self._lock:
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()


def build_server(scope: Scope, *, invocation_factory=None, anchor: Anchor | None = None) -> Server:
    """The MCP server for ``scope``: tools/list, tools/call, resources/list and resources/read."""

    def log_internal(exc: GeminiFlowError) -> None:
        # A bug: the model gets the INTERNAL error; the traceback goes to stderr, which every
        # client keeps in its MCP server log, never to the model.
        if exc.code == "INTERNAL" and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)

    def run_tool(name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        try:
            return tool_result(tools.call(scope, name, arguments, invocation_factory=invocation_factory,
                                          opened=anchor))
        except GeminiFlowError as exc:
            log_internal(exc)
            return error_result(exc)
        except Exception as exc:  # noqa: BLE001 - the last guard: never a traceback to the model
            error = tools.as_error(exc, scope.busy_timeout)
            traceback.print_exception(exc, file=sys.stderr)
            return error_result(error)

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t["name"], description=t["description"], input_schema=t["inputSchema"],
                       annotations=types.ToolAnnotations(read_only_hint=t["annotations"]["readOnlyHint"]))
            for t in tools.list_tools(scope)
        ])

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await anyio.to_thread.run_sync(run_tool, params.name, params.arguments)

    def namespaces() -> list[str]:
        result = tools.call(scope, "memory_namespaces", {}, invocation_factory=invocation_factory)
        return [row["namespace"] for row in result["namespaces"]]

    async def list_resources(ctx, params) -> types.ListResourcesResult:
        try:
            names = await anyio.to_thread.run_sync(namespaces)
        except GeminiFlowError:
            names = []
        return types.ListResourcesResult(resources=[
            types.Resource(uri=RESOURCE_PREFIX + name, name=name, mime_type="application/json",
                           description=f"The entries of namespace {name} (first 100, by key).")
            for name in names
        ])

    async def read_resource(ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        if not uri.startswith(RESOURCE_PREFIX):
            raise ValueError(f"unknown resource {uri!r}: resources are {RESOURCE_PREFIX}NAMESPACE")
        namespace = uri[len(RESOURCE_PREFIX):]

        def read() -> dict[str, Any]:
            return tools.call(scope, "memory_search", {"namespace": namespace, "limit": 100},
                              invocation_factory=invocation_factory)

        try:
            data = await anyio.to_thread.run_sync(read)
        except GeminiFlowError as exc:
            data = exc.to_json()
        return types.ReadResourceResult(contents=[
            types.TextResourceContents(uri=uri, mime_type="application/json", text=_json(data))
        ])

    return Server(
        "gemini-flow",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


def serve_stdio(scope: Scope) -> None:
    """Serve MCP on standard input and output until the client closes them."""
    from mcp.server.stdio import stdio_server

    anchor = Anchor()
    server = build_server(scope, anchor=anchor)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    try:
        anyio.run(main)
    finally:
        anchor.close()


def serve_http(scope: Scope, host: str, port: int) -> None:
    """Serve MCP's streamable HTTP transport at ``http://HOST:PORT/mcp`` until interrupted.

    Loopback only (the caller checks): there is no authentication on this transport, and the
    SDK's DNS-rebinding protection (Host and Origin checked) is on for loopback hosts.
    """
    import uvicorn

    anchor = Anchor()
    server = build_server(scope, anchor=anchor)
    app = server.streamable_http_app(host=host)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        anchor.close()
