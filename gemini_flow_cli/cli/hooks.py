"""`gemini-flow hooks ...`: commands that run after a write, when its events fire (core/hooks.py)."""

import os
from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

HookId = Annotated[int, typer.Argument(help="The hook id (a number, as `hooks add` printed it).", show_default=False)]
LIST_COLUMNS = ("id", "event", "priority", "enabled", "trusted", "condition", "run", "executionCount",
                "failureCount")


def _key(create: bool = False):
    from gemini_flow_cli.core import hooks

    path = hooks.key_path(os.environ)
    return hooks.ensure_key(path) if create else hooks.load_key(path)


def _emit(record: dict) -> None:
    st = state()
    if st.out.format == "table":
        fields = {k: v for k, v in record.items() if k != "lastRun"}
        st.out.emit(fields, title=f"Hook {record['id']}")
        if record.get("lastRun"):
            st.out.emit(record["lastRun"], title="Last run")
    else:
        st.out.emit(record)


@app.command()
def add(
    event: Annotated[str, typer.Argument(help="The event (see the README's events reference), 'task.*' or '*'.", show_default=False)],
    run: Annotated[str, typer.Option("--run", help="The command: split like a shell line, run without a shell (write sh -c '...' for one).", show_default=False)],
    priority: Annotated[int, typer.Option("--priority", help="Higher runs first (ties: oldest first).")] = 0,
    condition: Annotated[Optional[str], typer.Option("--if", help="Run only when this condition holds for the event, e.g. 'key ~ \"user-*\"'.", show_default=False)] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before the hook's processes are killed.")] = 5.0,
) -> None:
    """Add a hook: after a command commits, run a command for each event it fired.

    The command gets the event as JSON on standard input (`event`, `at`, `actor`, then the
    event's data) and GEMINI_FLOW_EVENT, GEMINI_FLOW_HOOK_ID and GEMINI_FLOW_DB in its
    environment. A failing or slow hook is a warning; it never fails or undoes the command. The
    hook is signed with your hooks key (made on first use in your configuration folder): a database
    copied from someone else never runs their hooks. Exit 2 for an unknown event, a --run that does
    not split or a condition that does not parse.

    Example:

        HOOK=$(gemini-flow hooks add task.failed --run 'sh -c "cat >> failures.jsonl"' --priority 10 --json | jq -r .id)

        gemini-flow hooks add memory.store --run 'sh -c "jq -r .key >> prod-users.txt"' --if 'namespace == "prod" and key ~ "user-*"'
    """
    from gemini_flow_cli.core import hooks

    st = state()
    hooks.check_event(event)
    hooks.split_command(run)
    db = st.open_db(create=True)
    record = hooks.add(db, event, run, key=_key(create=True), priority=priority, condition=condition, timeout=timeout)
    if st.out.format == "table":
        st.out.message(f"Added hook {record['id']} on {record['event']}")
        st.out.raw(str(record["id"]))
    else:
        st.out.emit(record)


@app.command("list")
def list_(
    event: Annotated[Optional[str], typer.Option("--event", help="Only hooks added for this event (or pattern).", show_default=False)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List hooks in the order they run (priority, highest first), with their counts.

    `trusted: false` marks a hook that was not added by you on this machine (a copied or
    restored database): it never runs.

    Example:

        gemini-flow hooks list --event task.failed
    """
    from gemini_flow_cli.core import hooks

    st = state()
    result = hooks.list_hooks(st.open_db(create=False), key=_key(), event=event, limit=limit, offset=offset)
    emit_list(result, "hooks", columns=LIST_COLUMNS)


@app.command()
def show(hook_id: HookId) -> None:
    """Show one hook with its last run (status, exit code, duration, the end of its output).

    Example:

        gemini-flow hooks show "$HOOK"
    """
    from gemini_flow_cli.core import hooks

    st = state()
    _emit(hooks.show(st.open_db(create=False), hook_id, key=_key()))


@app.command()
def enable(hook_id: HookId) -> None:
    """Enable a hook (it runs again after the commands that fire its event).

    Example:

        gemini-flow hooks enable "$HOOK"
    """
    from gemini_flow_cli.core import hooks

    st = state()
    _emit(hooks.set_enabled(st.open_db(create=True), hook_id, True, key=_key()))


@app.command()
def disable(hook_id: HookId) -> None:
    """Disable a hook: it is kept, with its counts, but does not run.

    Example:

        gemini-flow hooks disable "$HOOK"
    """
    from gemini_flow_cli.core import hooks

    st = state()
    _emit(hooks.set_enabled(st.open_db(create=True), hook_id, False, key=_key()))


@app.command()
def remove(hook_id: HookId) -> None:
    """Remove a hook. Exit 1 when there is none.

    Example:

        gemini-flow hooks remove "$HOOK"
    """
    from gemini_flow_cli.core import hooks

    st = state()
    result = hooks.remove(st.open_db(create=True), hook_id)
    if st.out.format == "table":
        st.out.message(f"Removed hook {hook_id}")
    else:
        st.out.emit(result)


@app.command()
def test(
    hook_id: HookId,
    event_json: Annotated[Optional[str], typer.Option("--event", help="The event's data as a JSON object (default: a sample of its event).", show_default=False)] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Which event, for a hook on 'task.*' or '*' (default: the first).", show_default=False)] = None,
) -> None:
    """Run one hook now on a sample event, without a write.

    Nothing is recorded, and a disabled hook runs too. Prints the input, whether the condition
    held, the exit status and the whole output. Exit 0 whatever the hook did (read `ok`; a failure is also a warning on stderr);
    exit 4 for a hook not added by you.

    Example:

        gemini-flow hooks test "$HOOK" --event '{"status": "failed", "error": "boom"}'
    """
    from gemini_flow_cli.core import hooks
    from gemini_flow_cli.core.tasks import parse_json

    st = state()
    data = parse_json(event_json, "--event", object_only=True) if event_json is not None else None
    result = hooks.test(st.open_db(create=False), hook_id, key=_key(), data=data, environ=os.environ, event=name)
    if result["ran"] and not result["ok"]:
        st.out.warn(f"hook {hook_id} {result.get('error')}")
    elif not result["ran"]:
        st.out.message(f"hook {hook_id} did not run: its condition is false for this event")
    st.out.emit(result)
