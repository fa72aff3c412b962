"""`gemini-flow audit ...`: read, verify and prune the tamper-evident audit log."""

import os
from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

COLUMNS = ["id", "timestamp", "entityType", "entityId", "action", "actor", "success"]


def _since(text: str) -> int:
    """A duration back from now (``1h``, ``7d``) or an ISO-8601 UTC time (``2025-08-03T11:30:00Z``)."""
    import calendar
    import re
    import time

    from gemini_flow_cli.core import clock
    from gemini_flow_cli.core.durations import parse_duration
    from gemini_flow_cli.errors import GeminiFlowError

    text = text.strip()
    if re.fullmatch(r"\d+[smhdw]?", text):
        from gemini_flow_cli.core.durations import before

        return before(clock.now(), parse_duration(text, what="--since"))
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return calendar.timegm(time.strptime(text, fmt))
        except ValueError:
            continue
    raise GeminiFlowError("INVALID_INPUT", f"invalid --since {text!r}: use a duration (1h, 7d) or 2025-08-03T11:30:00Z")


@app.command("list")
def list_(
    since: Annotated[Optional[str], typer.Option("--since", help="Only rows this recent: a duration (1h, 7d) or an ISO time.", show_default=False)] = None,
    action: Annotated[Optional[str], typer.Option("--action", help="Only this action (store, delete, set, rotate, ...).", show_default=False)] = None,
    entity: Annotated[Optional[str], typer.Option("--entity", help="Only this entity type (memory), or TYPE:ID (memory:default/api-key).", show_default=False)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List audit rows, newest first.

    Each row says what was written (entity, action), by whom (actor: --agent or the OS user),
    in which session (GEMINI_FLOW_SESSION), the state before and after (never the value of an
    encrypted entry), and its place in the hash chain.

    Example:

        gemini-flow audit list --since 1d --entity memory --action delete

        gemini-flow audit list --limit 20 --format jsonl
    """
    from gemini_flow_cli.core import audit

    st = state()
    db = st.open_db(create=False)
    result = audit.entries(db, since=_since(since) if since else None, action=action, entity=entity,
                           limit=limit, offset=offset)
    emit_list(result, "entries", columns=COLUMNS)


@app.command()
def verify(
    expect_head: Annotated[
        Optional[str],
        typer.Option("--expect-head", help="A head hash printed by an earlier verify: fail if it is no longer in the chain.", show_default=False),
    ] = None,
) -> None:
    """Check the hash chain of the whole audit log; exit 4 at the first broken row.

    Every row's hash covers its fields and the previous row's hash, so an edited, deleted or
    inserted row breaks the chain at that point. Prints the number of rows verified and the
    head hash: keep the head elsewhere and pass it to --expect-head later to also catch rows
    removed from the end.

    Example:

        gemini-flow audit verify

        head=$(gemini-flow audit verify --json | jq -r .head); gemini-flow audit verify --expect-head "$head"
    """
    from gemini_flow_cli.core import audit

    st = state()
    db = st.open_db(create=False)
    with db.read():
        result = audit.verify(db, expect_head=expect_head)
    st.out.done(result, f"Audit log intact: {result['verified']} row(s) verified; head {result['head']}")


@app.command()
def prune(
    retention: Annotated[
        Optional[str],
        typer.Option("--retention", help="Keep rows younger than this (default: audit.retention, 90d).", show_default=False),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the rows that would go; delete nothing.")] = False,
) -> None:
    """Delete audit rows older than the retention, keeping the chain verifiable.

    Only the oldest rows go; the hash of the last one deleted is kept as the chain's anchor, and
    the prune itself is recorded in the log.

    Example:

        gemini-flow audit prune --dry-run

        gemini-flow audit prune --retention 30d
    """
    from gemini_flow_cli.core import audit, config
    from gemini_flow_cli.core.durations import parse_duration

    st = state()
    db = st.open_db(create=False)
    if retention is None:
        retention, _ = config.resolve(db, "audit.retention", os.environ)
    seconds = parse_duration(retention, what="retention")
    if db.ephemeral:  # no database: nothing to prune, and nothing is created
        result = {"success": True, "pruned": 0, "retention": seconds, "dryRun": dry_run}
    else:
        result = audit.prune(db, seconds, dry_run=dry_run)
    verb = "Would prune" if dry_run else "Pruned"
    st.out.done(result, f"{verb} {result['pruned']} audit row(s) older than {retention}")
