"""`gemini-flow apikey ...`: the API keys that `gemini-flow serve` accepts (core/apikeys.py)."""


from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

LIST_COLUMNS = ["name", "role", "namespaces", "agent", "createdAt", "expiresAt", "expired"]


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="The key's name (the audit log's actor for what it writes).")],
    role: Annotated[str, typer.Option("--role", help="reader, writer or admin.", show_default=False)],
    namespace: Annotated[
        Optional[list[str]],
        typer.Option("--namespace", "-n", help="Limit the key to this namespace (repeatable; default: all).",
                     show_default=False),
    ] = None,
    agent: Annotated[
        Optional[str],
        typer.Option("--agent", help="Bind the key to this agent: it votes, claims and heartbeats only as it.",
                     show_default=False),
    ] = None,
    expires: Annotated[
        Optional[str],
        typer.Option("--expires", help="Stop accepting the key after this long: 90, 30s, 5m, 1h, 7d.", show_default=False),
    ] = None,
) -> None:
    """Create an API key for `gemini-flow serve` and print its token, once.

    Only a hash of the token is stored: copy it now (it cannot be shown again; revoke and create
    another if it is lost). Roles: reader (reads), writer (reads and writes), admin (also clearing
    namespaces, cleanup and the audit log). On a terminal the token alone goes to stdout.

    Example:

        gemini-flow apikey create ci-reader --role reader -n builds --expires 30d

        TOKEN=$(gemini-flow apikey create deployer --role writer --json | jq -r .token)

        gemini-flow apikey create "bot-$AGENT" --role writer --agent "$AGENT" --json
    """
    from gemini_flow_cli.core import apikeys
    from gemini_flow_cli.core.durations import parse_duration

    st = state()
    seconds = parse_duration(expires, what="--expires") if expires is not None else None
    result = apikeys.create(st.open_db(create=True), name, role=role, namespaces=namespace or (), agent_id=agent,
                            expires_in=seconds)
    if st.out.format == "table":
        st.out.message(f"Created {result['role']} key {result['name']}; its token is shown once, now:")
        st.out.raw(result["token"])
    else:
        st.out.emit(result)


@app.command("list")
def list_(limit: Limit = 100, offset: Offset = 0) -> None:
    """List API keys by name: role, namespaces, agent, expiry (never tokens).

    Example:

        gemini-flow apikey list
    """
    from gemini_flow_cli.core import apikeys

    st = state()
    result = apikeys.list_keys(st.open_db(create=False), limit=limit, offset=offset)
    emit_list(result, "keys", columns=LIST_COLUMNS)


@app.command()
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke an API key: its token stops working at once. Exits 1 when no key has that name.

    Example:

        gemini-flow apikey create temporary --role reader --json

        gemini-flow apikey revoke temporary
    """
    from gemini_flow_cli.core import apikeys

    st = state()
    result = apikeys.revoke(st.open_db(create=True), name)
    st.out.done(result, f"Revoked API key {name}")
