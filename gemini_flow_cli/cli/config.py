"""`gemini-flow config ...`: read and change configuration.

Where a value comes from, strongest first: a command-line flag, the setting's environment
variable, the database (`config set`), the user file (`config set --user`), the default.
"""

import json
import os
from typing import Annotated

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

User = Annotated[
    bool,
    typer.Option("--user", help="Change the user file (config.json in the user config folder) instead of the database."),
]
COLUMNS = ["key", "value", "source", "default", "description"]


def _user_file():
    from gemini_flow_cli.core import config

    return config.user_file_path(os.environ)


def _say_if_it_never_applies_here(st, key: str) -> None:
    """Warn (stderr, exit status unchanged) when a setting is kept but does nothing on this
    database: automatic backups never run on a PostgreSQL server (core/invocation.py), so a
    ``backup.auto.*`` value set while --db is a URL would otherwise be accepted silently."""
    from gemini_flow_cli.core.storage import is_url

    if key.startswith("backup.auto.") and is_url(st.db_path):
        st.out.warn(f"{key} is kept, but automatic backups do not run on a PostgreSQL server: back it up with "
                    "its own tools (pg_dump, your provider's snapshots) or `gemini-flow backup create`")


@app.command()
def get(key: Annotated[str, typer.Argument(help="A known key, e.g. memory.maxValueSize.")]) -> None:
    """Print the effective value of a setting: a string raw, anything else as JSON.

    With --json, prints the value with its source (env, database, user or default), default,
    type, validation rules and version.

    Example:

        gemini-flow config get memory.maxValueSize

        gemini-flow config get audit.retention --json
    """
    from gemini_flow_cli.core import config

    st = state()
    db = st.open_db(create=False)
    info = config.describe(db, key, os.environ)
    if st.out.json_explicit or st.out.format == "jsonl":
        st.out.emit(info)
    elif isinstance(info["value"], str):
        st.out.raw(info["value"])
    else:
        st.out.raw(json.dumps(info["value"], ensure_ascii=False))


@app.command("set")
def set_(
    key: Annotated[str, typer.Argument(help="A known key (`config list --all` shows them).")],
    value: Annotated[str, typer.Argument(help="The value: a number (sizes may say KiB/MiB), true/false, a duration, globs separated by commas or a JSON list.")],
    user: User = False,
) -> None:
    """Set a setting in the database (or, with --user, in your user file).

    The value is checked against the setting's type and range first: an unknown key or a bad
    value exits 2 and writes nothing. A database change bumps the row's version and is recorded
    in the audit log.

    Example:

        gemini-flow config set memory.maxValueSize 4MiB

        gemini-flow config set security.autoEncryptPatterns '*-credentials,*-token' --user
    """
    from gemini_flow_cli.core import config

    st = state()
    parsed = config.parse(key, value)
    if user:
        path = _user_file()
        values = config.read_user_file(path)
        values[key] = parsed
        config.write_user_file(path, values)
        result = {"success": True, "key": key, "value": parsed, "source": "user", "file": str(path)}
    else:
        from gemini_flow_cli.core import config_writes

        db = st.open_db(create=True)
        result = {"success": True, **config_writes.set_value(db, key, parsed)}
    _say_if_it_never_applies_here(st, key)
    st.out.done(result, f"{key} = {json.dumps(parsed, ensure_ascii=False)} ({'user file' if user else 'database'})")


@app.command()
def unset(
    key: Annotated[str, typer.Argument(help="A known key.")],
    user: User = False,
) -> None:
    """Remove a setting from the database (or the user file): the next source applies again.

    Example:

        gemini-flow config unset memory.maxValueSize
    """
    from gemini_flow_cli.core import config

    st = state()
    config.setting(key)
    if user:
        path = _user_file()
        values = config.read_user_file(path)
        removed = key in values
        if removed:
            del values[key]
            config.write_user_file(path, values)
    else:
        from gemini_flow_cli.core import config_writes

        db = st.open_db(create=False)
        removed = config_writes.unset_value(db, key) if not db.ephemeral else False
    result = {"success": True, "key": key, "removed": removed, "source": "user" if user else "database"}
    st.out.done(result, f"{key}: {'removed' if removed else 'was not set'} ({'user file' if user else 'database'})")


@app.command("list")
def list_(
    all_keys: Annotated[bool, typer.Option("--all", help="Every known key, with its default and description.")] = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List the settings that differ from their defaults (every known key with --all).

    Example:

        gemini-flow config list --all

        gemini-flow config list --format csv
    """
    from gemini_flow_cli.core import config

    st = state()
    db = st.open_db(create=False)
    from gemini_flow_cli.core.listing import page_rows

    rows, total = page_rows(config.listing(db, os.environ, all_keys=all_keys), limit, offset)
    emit_list({"settings": rows, "total": total, "limit": limit, "offset": offset, "userFile": str(_user_file())},
              "settings", columns=COLUMNS)
