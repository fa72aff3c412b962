"""`gemini-flow memory ...`: the shared key/value memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import memory_manager, read_input, state
from gemini_flow_cli.core.durations import parse_duration
from gemini_flow_cli.core.memory import parse_value

app = typer.Typer(no_args_is_help=True)

Namespace = Annotated[
    Optional[str],
    typer.Option(
        "--namespace", "-n", envvar="GEMINI_FLOW_NAMESPACE", show_envvar=False,
        help="Namespace (default: 'default', or GEMINI_FLOW_NAMESPACE).", show_default=False,
    ),
]


@app.command()
def store(
    key: Annotated[str, typer.Argument(help="The key (1-1024 characters, no control characters).")],
    value: Annotated[
        Optional[str],
        typer.Argument(help="JSON, or any text (stored as a string). Absent or '-': read standard input.", show_default=False),
    ] = None,
    namespace: Namespace = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Read the value from this file.", show_default=False)] = None,
    string: Annotated[bool, typer.Option("--string", help="Store VALUE as a string even if it parses as JSON.")] = False,
    ttl: Annotated[Optional[str], typer.Option("--ttl", help="Expire after this long: 90, 30s, 5m, 1h, 7d.", show_default=False)] = None,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", "-t", help="A tag (repeatable; commas split).", show_default=False)] = None,
    encrypt: Annotated[
        Optional[bool],
        typer.Option("--encrypt/--no-encrypt", help="Encrypt the value (default: the auto-encrypt patterns decide).", show_default=False),
    ] = None,
    agent: Annotated[Optional[str], typer.Option("--agent", help="Owner agent id (must exist).", show_default=False)] = None,
    swarm: Annotated[Optional[str], typer.Option("--swarm", help="Owner swarm id (must exist).", show_default=False)] = None,
    if_absent: Annotated[bool, typer.Option("--if-absent", help="Fail with exit 3 if the key exists and has not expired.")] = False,
) -> None:
    """Store a value under a key (insert or update).

    Example:

        gemini-flow memory store user-preferences '{"theme": "dark"}' -n user --ttl 1d -t user,prefs

        echo "build 42 passed" | gemini-flow memory store ci-status --string
    """
    st = state()
    text = read_input(value, file)
    seconds = parse_duration(ttl, what="ttl") if ttl is not None else None
    db = st.open_db(create=True, actor=agent)
    result = memory_manager(db, namespace).store(
        key,
        parse_value(text, force_string=string),
        ttl=seconds,
        tags=tag or (),
        encrypted=encrypt,
        agent_id=agent,
        swarm_id=swarm,
        if_absent=if_absent,
    )
    if st.out.format == "table":
        st.out.message(f"Stored {result['namespace']}/{result['key']} ({result['size']} bytes)")
    else:
        st.out.emit(result)


@app.command()
def retrieve(
    key: Annotated[str, typer.Argument(help="The key to read.")],
    namespace: Namespace = None,
    default: Annotated[
        Optional[str],
        typer.Option("--default", help="Print this and exit 0 when the key is missing or expired.", show_default=False),
    ] = None,
) -> None:
    """Print a value: a string raw, anything else as JSON. Counts one access.

    With --json, prints the seed's envelope with metadata. A missing key exits 1 (NOT_FOUND),
    an expired one exits 1 (TTL_EXPIRED), unless --default is given.

    Example:

        theme=$(gemini-flow memory retrieve user-preferences -n user | jq -r .theme)

        gemini-flow memory retrieve ci-status --default unknown
    """
    from gemini_flow_cli.errors import GeminiFlowError

    st = state()
    db = st.open_db(create=False)
    try:
        envelope = memory_manager(db, namespace).retrieve(key)
    except GeminiFlowError as exc:
        if default is None or exc.code not in ("NOT_FOUND", "TTL_EXPIRED"):
            raise
        st.out.raw(default)
        return
    if st.out.json_explicit or st.out.format == "jsonl":
        st.out.emit(envelope)
    elif isinstance(envelope["value"], str):
        st.out.raw(envelope["value"])
    else:
        st.out.raw(json.dumps(envelope["value"], ensure_ascii=False))


@app.command()
def delete(
    keys: Annotated[list[str], typer.Argument(help="One or more keys.")],
    namespace: Namespace = None,
    missing_ok: Annotated[bool, typer.Option("--missing-ok", help="Exit 0 even when none of the keys existed.")] = False,
) -> None:
    """Delete keys. Exits 1 when none of them existed, unless --missing-ok.

    Example:

        gemini-flow memory delete temp-cache-123 temp-cache-124 -n cache
    """
    from gemini_flow_cli.errors import GeminiFlowError

    st = state()
    db = st.open_db(create=False)
    manager = memory_manager(db, namespace)
    deleted = manager.delete(keys)
    missing = [k for k in keys if k not in deleted]
    result = {"success": True, "deleted": deleted, "missing": missing, "namespace": manager.namespace}
    if not deleted and not missing_ok:
        raise GeminiFlowError(
            "NOT_FOUND",
            f"none of the keys exist in namespace {manager.namespace!r}: {', '.join(keys)}",
            details={"missing": missing},
        )
    if st.out.format == "table":
        st.out.message(f"Deleted {len(deleted)} of {len(keys)} key(s) from {manager.namespace}")
    else:
        st.out.emit(result)
