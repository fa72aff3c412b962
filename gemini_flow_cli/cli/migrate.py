"""`gemini-flow migrate ...`: the database's schema version."""

from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, confirm_or_refuse, emit_list, state
from gemini_flow_cli.core import migrations

app = typer.Typer(no_args_is_help=True)


@app.command()
def status() -> None:
    """Show the current schema version, the latest this program knows, and what is pending.

    Example:

        gemini-flow migrate status --json
    """
    st = state()
    db = st.open_db(create=False, migrate=False)
    exists = not db.ephemeral
    current = db.schema_version() if exists else None
    todo = migrations.pending(db.conn) if exists else migrations.MIGRATIONS
    st.out.emit(
        {
            "database": db.location if exists else None,
            "current": current,
            "latest": migrations.LATEST,
            "pending": [m.version for m in todo],
        }
    )


@app.command("list")
def list_(limit: Limit = 100, offset: Offset = 0) -> None:
    """List every schema version and whether it is applied.

    Example:

        gemini-flow migrate list
    """
    st = state()
    db = st.open_db(create=False, migrate=False)
    applied = set(migrations.inspect(db.conn).applied) if not db.ephemeral else set()
    rows = [
        {"version": m.version, "description": m.description, "applied": m.version in applied,
         "reversible": bool(m.down)}
        for m in migrations.MIGRATIONS
    ]
    from gemini_flow_cli.core.listing import page_rows

    page, total = page_rows(rows, limit, offset)
    emit_list({"migrations": page, "total": total, "limit": limit, "offset": offset}, "migrations")


@app.command()
def up(
    to: Annotated[Optional[str], typer.Option("--to", help="Stop at this version (default: the latest).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the SQL that would run; change nothing.")] = False,
) -> None:
    """Apply pending migrations (all in one transaction).

    Commands that write apply pending migrations by themselves; this makes it explicit.

    Example:

        gemini-flow migrate up --dry-run

        gemini-flow migrate up --to 1.0.4
    """
    st = state()
    db = st.open_db(create=not dry_run, migrate=False)
    if dry_run:
        steps = migrations.plan(to) if db.ephemeral else migrations.pending(db.conn, to)
        _print_plan(st, steps, migrations.plan_sql(steps), "-- nothing to apply")
        return
    migrations.plan(to)  # an unknown version is refused before anything is created
    db.ensure_file()
    steps = migrations.pending(db.conn, to)
    applied = migrations.upgrade(db.conn, steps, then=_audit(db, "migrate-up"))
    st.out.message(f"Applied {', '.join(applied)}" if applied else "Nothing to apply")
    st.out.emit({"success": True, "applied": applied, "current": db.schema_version()})


def _print_plan(st, steps, sql: str, nothing: str) -> None:
    """A dry run's SQL as text (to save or read), or in a JSON envelope when JSON was asked for."""
    if st.out.json_explicit or st.out.format == "jsonl":
        st.out.emit({"success": True, "dryRun": True, "versions": [s.version for s in steps], "sql": sql})
    else:
        st.out.raw(sql or nothing)


@app.command()
def down(
    to: Annotated[str, typer.Option("--to", help="The version to go back to.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (needed without a terminal).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the SQL that would run; change nothing.")] = False,
) -> None:
    """Revert migrations down to a version. Destructive: backs the database up first.

    Example:

        gemini-flow migrate down --to 1.0.3 --yes
    """
    from gemini_flow_cli.core.backup import safety_copy
    from gemini_flow_cli.errors import GeminiFlowError

    st = state()
    db = st.open_db(create=False, migrate=False)
    if db.ephemeral:
        raise GeminiFlowError("NOT_FOUND", "there is no database to migrate")
    steps = migrations.to_undo(db.conn, to)
    if dry_run:
        _print_plan(st, steps, migrations.plan_sql(steps, down=True), "-- nothing to revert")
        return
    if not steps:
        st.out.message(f"Already at {db.schema_version()}")
        st.out.emit({"success": True, "reverted": [], "current": db.schema_version(), "backup": None})
        return
    confirm_or_refuse(
        f"Revert {', '.join(s.version for s in steps)}? Tables and columns they added are dropped with their data.",
        yes,
    )
    db.check_writable()  # before the safety copy: a role that may not revert must not leave one
    copy = safety_copy(db.conn, db.path or db.location, "before-migrate-down")
    st.out.message(f"Backed up the database to {copy}")
    reverted = migrations.downgrade(db.conn, to, then=_audit(db, "migrate-down"))
    st.out.emit({"success": True, "reverted": reverted, "current": db.schema_version(), "backup": str(copy)})


def _audit(db, action: str):
    """An audit row written inside the migration's own transaction."""
    from gemini_flow_cli.core import audit

    def record(versions: list[str]) -> None:
        audit.record(db, "schema", db.schema_version() or "none", action, details={"versions": versions})

    return record
