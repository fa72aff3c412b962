"""`gemini-flow session ...`: long agent runs with checkpoints to resume from after a crash."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

SessionId = Annotated[str, typer.Argument(help="The session id (session-... as start printed it).", show_default=False)]
LIST_COLUMNS = ("id", "type", "status", "swarmId", "checkpoints", "lastCheckpointAt", "createdAt", "endedAt")


def _emit(view: dict) -> None:
    state().out.emit(view, title=f"Session {view['id']}")


@app.command()
def start(
    session_type: Annotated[str, typer.Option("--type", help="hive-mind, workflow, batch or interactive.", show_default=False)],
    swarm: Annotated[Optional[str], typer.Option("--swarm", help="The swarm the session works in (it ends when the swarm shuts down).", show_default=False)] = None,
    context: Annotated[Optional[str], typer.Option("--context", help="JSON kept with the session.", show_default=False)] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="Who runs it (free text).", show_default=False)] = None,
    project: Annotated[Optional[str], typer.Option("--project", help="The project it belongs to (free text).", show_default=False)] = None,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", "-t", help="A tag (repeatable).", show_default=False)] = None,
) -> None:
    """Start an active session and print its id.

    On a terminal only the id is printed (for `$(...)`); JSON output is the session's record. A
    session in a swarm ends when the swarm shuts down. Unknown swarm: exit 1; a shut-down one: 3.

    Example:

        gemini-flow session start --type batch --tag nightly --user ci

        SESSION=$(gemini-flow session start --type hive-mind --swarm "$SWARM" --context '{"goal": "ship v2"}' --json | jq -r .id)
    """
    from gemini_flow_cli.core import jsontext, sessions

    st = state()
    parsed = jsontext.parse(context, what="--context") if context is not None else None
    record = sessions.start(st.open_db(create=True), session_type, swarm_id=swarm, context=parsed, user_id=user,
                            project_id=project, tags=tag or ())
    if st.out.format == "table":
        st.out.message(f"Started {record['type']} session")
        st.out.raw(record["id"])
    else:
        st.out.emit(record)


@app.command()
def checkpoint(
    session_id: SessionId,
    data: Annotated[Optional[str], typer.Argument(help="The checkpoint as JSON; '-' or nothing reads standard input.", show_default=False)] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Read the checkpoint's JSON from this file.", show_default=False)] = None,
) -> None:
    """Record the session's latest checkpoint (any JSON), committed before this returns.

    The JSON comes from DATA, --file, or standard input, and may be as large as a memory value
    (memory.maxValueSize; larger exits 5). Each checkpoint replaces the previous one as the
    point to resume from. An ended session exits 3.

    Example:

        gemini-flow session checkpoint "$SESSION" '{"step": 3, "done": ["parse", "plan"]}'

        jq -n '{step: 4}' | gemini-flow session checkpoint "$SESSION" -
    """
    from gemini_flow_cli.cli.common import read_input
    from gemini_flow_cli.core import jsontext, sessions

    st = state()
    parsed = jsontext.parse(read_input(data, file, what="the checkpoint"), what="the checkpoint")
    result = sessions.checkpoint(st.open_db(create=True), session_id, parsed)
    st.out.done(result, f"Checkpoint {result['sequence']} of session {session_id} recorded")


@app.command()
def resume(session_id: SessionId) -> None:
    """Print the session's latest checkpoint: what a restarted agent continues from.

    JSON output is {"sessionId", "status", "sequence", "createdAt", "data"}; on a terminal, the
    checkpoint's data alone. A session without a checkpoint exits 1 (start from the beginning).

    Example:

        gemini-flow session resume "$SESSION" --json | jq .data.step
    """
    from gemini_flow_cli.core import sessions

    st = state()
    result = sessions.resume(st.open_db(create=False), session_id)
    if st.out.format == "table":
        import json

        st.out.raw(json.dumps(result["data"], ensure_ascii=False, indent=2))
    else:
        st.out.emit(result)


@app.command()
def end(session_id: SessionId) -> None:
    """End an active session (it keeps its last checkpoint). Already ended: exit 3.

    Example:

        gemini-flow session end "$SESSION"
    """
    from gemini_flow_cli.core import sessions

    st = state()
    _emit(sessions.end(st.open_db(create=True), session_id))


@app.command("list")
def list_(
    status: Annotated[Optional[str], typer.Option("--status", help="active or ended.", show_default=False)] = None,
    session_type: Annotated[Optional[str], typer.Option("--type", help="hive-mind, workflow, batch or interactive.", show_default=False)] = None,
    swarm: Annotated[Optional[str], typer.Option("--swarm", help="Only sessions of this swarm.", show_default=False)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List sessions, oldest first.

    Example:

        gemini-flow session list --status active --type hive-mind
    """
    from gemini_flow_cli.core import sessions

    st = state()
    result = sessions.list_sessions(st.open_db(create=False), status=status, session_type=session_type,
                                    swarm_id=swarm, limit=limit, offset=offset)
    emit_list(result, "sessions", columns=LIST_COLUMNS if st.out.format == "table" else None)


@app.command()
def show(session_id: SessionId) -> None:
    """Show one session: status, swarm, checkpoint count and time, context. Unknown: exit 1.

    Example:

        gemini-flow session show "$SESSION"
    """
    from gemini_flow_cli.core import sessions

    st = state()
    _emit(sessions.show(st.open_db(create=False), session_id))
