"""`gemini-flow backup ...`: consistent backups, verified restores, listing and pruning."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, confirm_or_refuse, emit_list, state
from gemini_flow_cli.cli.safety import sweep_leftovers

app = typer.Typer(no_args_is_help=True)


def _folder(st, directory: Optional[Path]) -> Path:
    if directory is not None:
        return directory
    from gemini_flow_cli.core.db import discover
    from gemini_flow_cli.core.storage import is_url

    if is_url(st.db_path):
        from gemini_flow_cli.core.backup import backups_dir

        return backups_dir(st.db_path)  # the user's data folder: a server's database has none beside it
    db_path = st.db_path or discover()
    return Path(db_path).parent / "backups"


@app.command()
def create(
    path: Annotated[Optional[Path], typer.Argument(help="File or folder to write (default: .hive-mind/backups/ with a timestamped name).", show_default=False)] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="sqlite, json or sql.")] = "sqlite",
    compress: Annotated[bool, typer.Option("--compress", "-z", help="Gzip the backup.")] = False,
) -> None:
    """Write a consistent backup of the database, with a manifest beside it.

    The snapshot is taken in one read transaction, so other processes may keep writing. sqlite
    uses SQLite's online backup API; json holds every table's rows; sql is a script that sqlite3
    runs to rebuild the database. The file (and PATH.manifest.json, holding the format, schema
    version, row counts and SHA-256) is written to a temporary file, fsynced and renamed, mode 0600.
    Note: --format here is the backup's format; the output format is the global --format before
    the group (e.g. gemini-flow --json backup create).

    Example:

        gemini-flow backup create

        gemini-flow backup create nightly.json.gz --format json --compress
    """
    from gemini_flow_cli.core import backup as core
    from gemini_flow_cli.errors import GeminiFlowError

    st = state()
    if format not in core.FORMATS:
        raise GeminiFlowError("INVALID_INPUT", f"unknown backup format {format!r}: use sqlite, json or sql")
    db = st.open_db(create=False, migrate=False)  # the file as it is, whatever its schema
    if db.ephemeral:
        raise GeminiFlowError("NOT_FOUND", "there is no database to back up")
    sweep_leftovers(st)
    info = core.backup(db, path, format=format, compress=compress, progress=st.out.progress)
    st.out.message(f"Backed up to {info['path']}")
    st.out.emit({"success": True, **{k: info[k] for k in (
        "path", "manifest", "format", "compressed", "size", "sha256", "schemaVersion", "tables", "createdAt")}})


@app.command()
def verify(
    path: Annotated[Path, typer.Argument(help="The backup file (or its .manifest.json).")],
) -> None:
    """Check a backup end to end: checksum, decompression, parsing, integrity, row counts.

    Exits 0 when the backup is sound, 7 (BACKUP_FAILED) with what is wrong otherwise. The result
    is recorded in the manifest, which `backup list` shows as verified.

    Example:

        gemini-flow backup verify "$BACKUP"
    """
    from gemini_flow_cli.core import backup as core

    st = state()
    report = core.verify(path, progress=st.out.progress)
    if not report["restorable"]:
        st.out.warn(f"the backup is intact but has schema {report['schemaVersion']}, newer than this program; it cannot be restored here")
    st.out.message(f"{path}: OK ({report['rows']} rows, schema {report['schemaVersion']})")
    st.out.emit(report)


@app.command()
def restore(
    path: Annotated[Path, typer.Argument(help="The backup file (or its .manifest.json).")],
    merge: Annotated[bool, typer.Option("--merge", help="Upsert the backup's rows into the database instead of replacing it.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (needed without a terminal).")] = False,
) -> None:
    """Restore a backup into the database, replacing its contents (or merging with --merge).

    The backup is verified first: a damaged, truncated or foreign backup, or one from a newer
    schema, exits 7 and changes nothing. An older schema is migrated. The current contents are
    first saved as a backup (the message says where), then everything happens in one transaction:
    an interrupted restore leaves the old database. --merge keeps what is newer: for memory
    entries the later updated_at wins (see the README for every table's rule).

    Example:

        gemini-flow backup restore "$BACKUP" --yes

        gemini-flow backup restore team.json.gz --merge --yes
    """
    from gemini_flow_cli.core import backup as core

    st = state()
    # Verified before asking: a bad backup is refused without a question (and re-verified inside).
    core.read_manifest(path)
    what = "Merge" if merge else "Replace the database's contents with"
    confirm_or_refuse(f"{what} the backup {path}?", yes)
    db = st.open_db(create=True)
    sweep_leftovers(st, Path(path).parent)

    def cipher():
        from gemini_flow_cli.cli.key import cipher_for

        return cipher_for(db)

    result = core.restore(db, path, merge=merge, progress=st.out.progress, cipher=cipher)
    for item in result.get("skipped") or []:
        if item["table"] == "configuration":
            st.out.warn(f"kept this database's {item['key']}: {item['reason']}")
        else:
            st.out.warn(f"skipped {item['key']} from the backup: {item['reason']}")
    for table, conflict in (result.get("conflicts") or {}).items():
        if table not in ("memory_store", "configuration"):  # those merge by "newer", as documented
            st.out.warn(f"{conflict['count']} record(s) of {table} in the backup have an id this database uses for "
                        f"another record; kept {conflict['kept']}: {', '.join(map(str, conflict['ids']))}")
    if result["safetyBackup"]:
        st.out.message(f"Saved the previous contents to {result['safetyBackup']}")
    if result["migratedFrom"]:
        st.out.message(f"Migrated the backup from schema {result['migratedFrom']} to {result['migratedTo']}")
    st.out.message(f"Restored {path} ({result['mode']})")
    st.out.emit(result)


@app.command("list")
def list_(
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Folder to list (default: the database's backups folder).", show_default=False)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List backups, newest first: path, format, size, createdAt, schemaVersion, verified.

    Example:

        gemini-flow backup list
    """
    from gemini_flow_cli.core import backup as core

    st = state()
    folder = _folder(st, directory)
    from gemini_flow_cli.core.listing import page_rows

    sweep_leftovers(st, folder, remove=False)
    rows, total = page_rows([core.public(r) for r in core.list_backups(folder)], limit, offset)
    result = {"backups": rows, "total": total, "limit": limit, "offset": offset, "folder": str(folder.absolute())}
    if st.out.format == "table":
        # Every backup of a folder shares it: the table shows names (the folder is said once);
        # JSON, CSV and JSON Lines carry the full paths.
        st.out.message(f"Backups in {folder.absolute()}")
        named = [{"name": Path(r["path"]).name, **r} for r in rows]
        emit_list(result, "backups", rows=named, columns=["name", "format", "size", "createdAt", "verified"])
    else:
        emit_list(result, "backups",
                  columns=["path", "format", "compressed", "size", "createdAt", "schemaVersion", "verified", "origin"])


@app.command()
def prune(
    retention: Annotated[str, typer.Option("--retention", help="Delete backups older than this (e.g. 30d, 12h).")] = "30d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")] = False,
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Folder to prune (default: the database's backups folder).", show_default=False)] = None,
) -> None:
    """Delete backups older than the retention; the newest backup is always kept.

    Example:

        gemini-flow backup prune --retention 30d --dry-run
    """
    from gemini_flow_cli.core import backup as core
    from gemini_flow_cli.core.durations import parse_duration

    st = state()
    seconds = parse_duration(retention, what="retention")
    folder = _folder(st, directory)
    sweep_leftovers(st, folder, remove=not dry_run)
    removed = core.prune(folder, seconds, dry_run=dry_run)
    verb = "Would delete" if dry_run else "Deleted"
    st.out.message(f"{verb} {len(removed)} backup(s) older than {retention}")
    st.out.emit({"success": True, "dryRun": dry_run, "deleted": removed, "total": len(removed)}, rows=removed,
                columns=["path", "format", "size", "createdAt"])
