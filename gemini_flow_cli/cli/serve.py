"""`gemini-flow serve`: the seed's HTTP API over this database (CLI.md §9; server/)."""

import ipaddress
from pathlib import Path
from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import state
from gemini_flow_cli.errors import GeminiFlowError, install_extra_hint

EXTRA_MISSING = f"gemini-flow serve needs the server extra: {install_extra_hint('server')}"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); a name is not trusted to be one."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option("--host", help="The address to listen on; other than loopback needs TLS and an API key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The TCP port.")] = 8765,
    certfile: Annotated[
        Optional[Path], typer.Option("--certfile", help="TLS certificate (PEM); with --keyfile serves HTTPS.", show_default=False)
    ] = None,
    keyfile: Annotated[
        Optional[Path], typer.Option("--keyfile", help="TLS private key (PEM) of --certfile.", show_default=False)
    ] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request on stderr.")] = False,
) -> None:
    """Serve the seed's HTTP API (/api/v1) over this database until interrupted.

    Clients send `Authorization: Bearer TOKEN` with a token from `gemini-flow apikey create`;
    every request without a valid one is refused (401), and every write it makes is audited with
    the key's name as actor. The API's description is at /openapi.json, health at /api/v1/health.
    Errors are {"success": false, "error": {...}} with the HTTP status of the CLI's exit status.
    A non-loopback --host needs TLS (--certfile and --keyfile) and at least one API key. SIGTERM
    or Ctrl-C stop accepting connections and finish the requests in flight. Needs the optional
    extra (README "Optional extras").

    Example:

        gemini-flow serve --port 8765

        gemini-flow serve --host 0.0.0.0 --certfile cert.pem --keyfile key.pem
    """
    import logging

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise GeminiFlowError("INVALID_INPUT", EXTRA_MISSING) from None

    from gemini_flow_cli.core import apikeys
    from gemini_flow_cli.core.db import discover

    st = state()
    if (certfile is None) != (keyfile is None):
        raise GeminiFlowError("INVALID_INPUT", "give both --certfile and --keyfile for TLS, or neither")
    for path in (certfile, keyfile):
        if path is not None and not path.is_file():
            raise GeminiFlowError("INVALID_INPUT", f"cannot read {path}: not a file", details={"path": str(path)})
    tls = certfile is not None
    loopback = is_loopback(host)
    if not loopback and not tls:
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"refusing to serve on {host} without TLS: tokens and data would cross the network in clear; "
            "give --certfile and --keyfile, or listen on 127.0.0.1",
        )
    from gemini_flow_cli.core.storage import is_url, redact

    db_path = st.db_path if is_url(st.db_path) else (st.db_path or discover()).absolute()
    # Opened once here to create or migrate the file before the first request, and to count keys.
    db = st.open_db(create=True)
    with db.write(bookkeeping=True):
        pass
    keys = apikeys.count(db)
    st.finish()
    if keys == 0 and not loopback:
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"refusing to serve on {host} with no API key defined; create one first: "
            "gemini-flow apikey create NAME --role reader|writer|admin",
        )
    if keys == 0:
        st.out.warn("no API key is defined: every request but /api/v1/health and /openapi.json will be refused "
                    "(401) until one is created with `gemini-flow apikey create`")

    from gemini_flow_cli.server.app import create_app
    from gemini_flow_cli.server.protocol import MAX_HEAD, http_protocol

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("gemini_flow.server")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    scheme = "https" if tls else "http"
    st.out.message(f"Serving {redact(str(db_path))} on {scheme}://{host if ':' not in host else f'[{host}]'}:{port} "
                   f"({keys} API key{'s' if keys != 1 else ''}); Ctrl-C to stop")
    config = uvicorn.Config(
        create_app(db_path, busy_timeout=st.busy_timeout), host=host, port=port, log_level="warning",
        access_log=access_log, ssl_certfile=str(certfile) if tls else None, ssl_keyfile=str(keyfile) if tls else None,
        lifespan="on", timeout_graceful_shutdown=30, server_header=False,
        http=http_protocol(), h11_max_incomplete_event_size=MAX_HEAD,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit:  # uvicorn's answer to a port it cannot bind, after logging why
        raise GeminiFlowError("INVALID_INPUT", f"cannot serve on {host}:{port} (see the message above)") from None
    except OSError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    if not server.started:
        raise GeminiFlowError("INVALID_INPUT", f"the server did not start on {host}:{port} (see the message above)")
