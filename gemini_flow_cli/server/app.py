"""The ASGI application of `gemini-flow serve` (CLI.md §9), on Starlette.

Every request runs one :class:`~gemini_flow_cli.core.pool.PooledInvocation` in a worker thread:
take a database connection (reads never create the file), authenticate the bearer token against
``api_keys``, check the role, namespaces and agent, call the operation's core function, then
``finish()`` (the after-write actions the CLI runs: automatic backups, hooks) and give the
connection back. Connections come from a :class:`~gemini_flow_cli.core.pool.ConnectionPool`:
opening one was most of a small request's cost; a connection serves one request at a time, writes
still run in the writers' queue with ``BEGIN IMMEDIATE``, and one whose file, schema or trust
changed is opened afresh (core/pool.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from gemini_flow_cli.core.arguments import check_object
from gemini_flow_cli.errors import GeminiFlowError, as_error, http_status
from gemini_flow_cli.server.operations import OPERATIONS, Call, Operation, body_schema, check, parse_query

log = logging.getLogger("gemini_flow.server")

# A request body larger than this is refused before it is parsed (413): the largest value the
# configuration allows is 16 MiB, and a batch of them in one request is bounded here.
MAX_BODY = 64 * 1024 * 1024
# Reads run in at most this many worker threads at once. A read takes a fraction of a millisecond,
# so threads beyond the cores only fight over the GIL: with 32 clients on 2 cores, 40 threads (the
# default) gave ~620 retrieves/s at p99 85 ms, 4 threads ~1,000 at 45 ms, 2 threads ~1,650 at
# 27 ms (benchmarks/server.py). Not fewer than 2, so one slow read (a large search) does not stop
# every other.
READ_THREADS = max(2, os.cpu_count() or 2)
# Writes wait their turn in the writers' queue anyway; more threads only let more of them wait
# (and run their after-write hooks) without holding up the reads.
WRITE_THREADS = 16


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(error: GeminiFlowError, *, authenticated: bool = True, status: int | None = None) -> Response:
    code = status or http_status(error, authenticated=authenticated)
    headers = {"WWW-Authenticate": 'Bearer realm="gemini-flow"'} if code == 401 else None
    return json_response(error.to_json(), code, headers)


class AccessCounter:
    """The access counts of the server's reads, written together every ``interval`` seconds.

    A retrieve counts one access (CLI.md §4: best-effort bookkeeping). Counted one write each,
    every read would wait for a commit and its fsync; here reads hand their accesses over
    (``MemoryManager.access_sink``) and a background thread adds them up in one bookkeeping
    transaction (``MemoryManager.add_accesses``), also on shutdown. Its connection stays open for
    the server's life, which also spares each request's close a WAL checkpoint.
    """

    def __init__(self, db_path: Path, *, busy_timeout: float, interval: float = 0.5):
        import threading

        from gemini_flow_cli.core.invocation import Invocation

        self.interval = interval
        self._pending: dict[tuple[int, str, str], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._invocation = Invocation(db_path, busy_timeout=busy_timeout, warn=log.warning, message=log.info)
        self._invocation.open_db(create=True)
        self._manager = self._invocation.memory(None)
        self._thread = threading.Thread(target=self._run, name="gemini-flow-access-counter", daemon=True)

    def add(self, entries: list[tuple[int, str, str]], now: int) -> None:
        with self._lock:
            for entry in entries:
                self._pending[entry] = self._pending.get(entry, 0) + 1

    def start(self) -> None:
        self._thread.start()

    def flush(self) -> None:
        from gemini_flow_cli.core import clock

        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            try:
                self._manager.add_accesses(pending, int(clock.now()))
            except Exception:  # noqa: BLE001 - bookkeeping never fails a request; say so and go on
                log.warning("could not record %d access counts; they are lost", sum(pending.values()), exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()
        self._invocation.finish()


class Server:
    """The application's settings: the database path and the writers' busy timeout."""

    def __init__(self, db_path: Path, *, busy_timeout: float = 10.0):
        from gemini_flow_cli.core.pool import ConnectionPool

        self.db_path = db_path
        self.busy_timeout = busy_timeout
        self.accesses: AccessCounter | None = None
        self.pool = ConnectionPool()
        # Worker threads, apart for reads and writes: a write waiting its turn in the writers'
        # queue (up to --busy-timeout) or running its hooks never holds a thread a read needs.
        self.readers = anyio.CapacityLimiter(READ_THREADS)
        self.writers = anyio.CapacityLimiter(WRITE_THREADS)

    def execute(self, op: Operation, token: str | None, args: dict[str, Any], client: str) -> tuple[int, Any]:
        """Run one operation (in a worker thread): (HTTP status, JSON document)."""
        from gemini_flow_cli.core import apikeys
        from gemini_flow_cli.core.pool import PooledInvocation

        invocation = PooledInvocation(self.pool, self.db_path, busy_timeout=self.busy_timeout, warn=log.warning,
                                      message=log.info)
        authenticated = op.public
        try:
            db = invocation.open_db(create=op.writes)
            key = None
            if not op.public:
                try:
                    key = apikeys.authenticate(db.conn, token)
                except GeminiFlowError as exc:
                    # Never the token itself: only why, from where, for what.
                    log.warning("authentication failed (%s) from %s for %s %s",
                                exc.details.get("reason", "invalid"), client, op.method, op.path)
                    raise
                authenticated = True
                key.require_role(op.role)
                db.actor = key.name
            result = op.handler(Call(args, invocation, db, key, self.accesses.add if self.accesses else None))
            return op.status, result
        except GeminiFlowError as exc:
            return http_status(exc, authenticated=authenticated), exc.to_json()
        except RecursionError:
            error = GeminiFlowError("INVALID_INPUT", "the request nests too deeply")
            return 400, error.to_json()
        except Exception as exc:  # noqa: BLE001 - the one place unexpected errors end up
            # The same mapping as the CLI and MCP (errors.as_error): SQLite's errors, a full disk
            # (503), a path that cannot be used; anything else is a bug, logged here, not sent.
            error = as_error(exc, self.busy_timeout)
            if error.code == "INTERNAL":
                log.exception("internal error in %s %s", op.method, op.path)
                error = GeminiFlowError(
                    "INTERNAL", f"internal error ({type(exc).__name__}); this is a bug in gemini-flow, please "
                    "report it with the server's log",
                )
            return http_status(error), error.to_json()
        finally:
            try:
                invocation.finish()
            except Exception:  # noqa: BLE001 - the answer is decided; a failed close is logged
                log.exception("closing the database after %s %s", op.method, op.path)

    def endpoint(self, op: Operation):
        query_params = {p.name: p for p in op.params if p.where == "query"}
        query_schema = {"type": "object", "additionalProperties": False,
                        "properties": {name: p.schema for name, p in query_params.items()},
                        "required": [name for name, p in query_params.items() if p.required]}
        path_params = [p for p in op.params if p.where == "path"]
        has_body = any(p.where == "body" for p in op.params) or op.method == "POST"
        schema = body_schema(op)

        async def handle(request: Request) -> Response:
            try:
                args: dict[str, Any] = {}
                for p in path_params:
                    args[p.name] = parse_query(p, [request.path_params[p.name]])
                    check(args[p.name], p.schema, p.name)
                # Query parameters as their schemas' types, then checked as a body is: an unknown
                # one (a misspelt namespace would silently read the default) is refused.
                query = {name: parse_query(query_params[name], request.query_params.getlist(name))
                         if name in query_params else request.query_params[name]
                         for name in request.query_params}
                args.update(check_object(query, query_schema, noun="parameter", text_checked=True))
                if has_body:
                    args.update(await _body(request, schema))
            except GeminiFlowError as exc:
                return error_response(exc)
            except ClientDisconnect:
                # The client left while sending its body: nobody reads an answer, and nothing ran.
                log.info("%s %s: the client disconnected before sending its whole body", op.method, op.path)
                return Response(status_code=400)
            client = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
            limiter = self.writers if op.writes or op.slow else self.readers
            status, payload = await anyio.to_thread.run_sync(self.execute, op, _bearer(request), args, client,
                                                             limiter=limiter)
            return json_response(payload, status, {"WWW-Authenticate": 'Bearer realm="gemini-flow"'} if status == 401 else None)

        handle.__name__ = op.operation_id
        return handle


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def _body(request: Request, schema: dict[str, Any]) -> dict[str, Any]:
    """The request body: read up to :data:`MAX_BODY` bytes, parsed as strict JSON (an empty body is
    ``{}``) and checked against the operation's body schema (core/arguments.py)."""
    from gemini_flow_cli.core.memory import loads_strict

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        # Refused before reading it: a client need not send 64 MiB to learn it is too much.
        raise GeminiFlowError("VALUE_TOO_LARGE", f"the request body is larger than {MAX_BODY} bytes",
                              details={"limit": MAX_BODY})
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise GeminiFlowError("VALUE_TOO_LARGE", f"the request body is larger than {MAX_BODY} bytes",
                                  details={"limit": MAX_BODY})
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        document: Any = {}
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GeminiFlowError("INVALID_INPUT", f"the request body is not UTF-8 (invalid byte at offset {exc.start})") from None
        try:
            document = loads_strict(text, what="the request body")
        except ValueError as exc:
            raise GeminiFlowError("INVALID_INPUT", f"the request body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise GeminiFlowError("INVALID_INPUT", "the request body must be a JSON object")
    # loads_strict refused nesting too deep and lone surrogates already.
    return check_object(document, schema, noun="field", text_checked=True)


def create_app(db_path: Path, *, busy_timeout: float = 10.0) -> Starlette:
    """The ASGI application serving ``db_path``."""
    from gemini_flow_cli.server.openapi import document

    server = Server(db_path, busy_timeout=busy_timeout)
    routes = [Route(op.path, server.endpoint(op), methods=[op.method]) for op in OPERATIONS]
    spec = json.dumps(document(), ensure_ascii=False).encode("utf-8")

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    routes.append(Route("/openapi.json", openapi, methods=["GET"]))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = "NOT_FOUND" if exc.status_code == 404 else "INVALID_INPUT"
        message = {404: f"no such endpoint {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
        error = GeminiFlowError(code, message.get(exc.status_code, str(exc.detail)))
        return error_response(error, status=exc.status_code)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        server.accesses = AccessCounter(db_path, busy_timeout=busy_timeout)
        server.accesses.start()
        try:
            yield
        finally:
            accesses, server.accesses = server.accesses, None
            await run_in_threadpool(accesses.close)
            server.pool.close()

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)
