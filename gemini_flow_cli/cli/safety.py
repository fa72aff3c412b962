"""Bad input never looks like a bug (CLI.md §9): checks every command line gets before parsing.

Two kinds of input used to travel deep into the program and end as exit 70:

- an argument that is not UTF-8 (the OS hands it over as lone surrogates, ``caf\\udce9``) fails
  the first time it is encoded (a SQLite bind, a JSON dump); :func:`check_arguments` refuses it
  before any command runs;
- an integer option has no upper bound in Click (``--limit 99999999999999999999``) and
  overflows SQLite's 64-bit integers; a float option accepts ``inf`` and ``nan``.
  :func:`harden` gives every numeric option of the command tree one bounded type (and every
  path one that refuses ``""``), so a new option is covered without being declared specially.
"""

from __future__ import annotations

import math
from typing import Any

from typer._click import types as click_types

from gemini_flow_cli.errors import GeminiFlowError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_arguments(args: list[str]) -> None:
    """INVALID_INPUT (exit 2) for an argument that is not valid UTF-8 text."""
    for position, arg in enumerate(args, 1):

        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape" if _escaped_bytes(arg) else "backslashreplace")
            raise GeminiFlowError(
                "INVALID_INPUT",
                f"argument {position} is not valid UTF-8 text: {shown!r}",
                details={"argument": position},
            ) from None


def _escaped_bytes(arg: str) -> bool:
    try:
        arg.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


class _Wrapping:
    """A parameter type that checks more than the click type it wraps and otherwise looks like it
    (metavar, help, repr), so that hardening the command tree changes no help text."""

    inner: click_types.ParamType

    def __init__(self, inner: click_types.ParamType):
        self.inner = inner
        self.name = inner.name

    def get_metavar(self, *args, **kwargs):
        return self.inner.get_metavar(*args, **kwargs)

    def to_info_dict(self) -> dict[str, Any]:
        return self.inner.to_info_dict()

    def __repr__(self) -> str:
        return repr(self.inner)


class FiniteFloat(_Wrapping, click_types.FloatParamType):
    """A float option that refuses ``inf`` and ``nan`` (and keeps the range it wraps)."""

    def convert(self, value: Any, param, ctx) -> Any:
        number = self.inner.convert(value, param, ctx)
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class Int64(_Wrapping, click_types.IntParamType):
    """An integer option within SQLite's 64-bit integers (keeping the range it wraps, whose
    help text stays as declared)."""

    def convert(self, value: Any, param, ctx) -> Any:
        number = self.inner.convert(value, param, ctx)
        if isinstance(number, int) and not INT64_MIN <= number <= INT64_MAX:
            self.fail(f"{value!r} is out of range (a 64-bit integer: {INT64_MIN} to {INT64_MAX}).", param, ctx)
        return number


class NonEmptyPath(_Wrapping, click_types.ParamType):
    """A path option or argument that refuses the empty string (``Path("")`` is the current
    folder, never what a user meant, and ``Path("").with_name`` raises) and a NUL."""

    def convert(self, value: Any, param, ctx) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path: give a file or folder name.", param, ctx)
        if isinstance(value, str) and "\x00" in value:
            # No path can hold a NUL (the OS takes C strings); a shell never passes one, a program can.
            self.fail("a path cannot contain a NUL character.", param, ctx)
        return self.inner.convert(value, param, ctx)

    def shell_complete(self, *args, **kwargs):
        return self.inner.shell_complete(*args, **kwargs)


def harden(command) -> None:
    """Every INT option or argument of ``command`` and its sub-commands: within SQLite's 64-bit
    integers; every FLOAT: finite; every path: not empty. Declared ranges and help are kept."""
    for param in getattr(command, "params", ()):
        kind = param.type
        if isinstance(kind, (Int64, FiniteFloat, NonEmptyPath)):
            continue
        if isinstance(kind, click_types.IntParamType):
            param.type = Int64(kind)
        elif isinstance(kind, click_types.FloatParamType):
            param.type = FiniteFloat(kind)
        elif type(kind).__name__ in ("TyperPath", "Path"):
            param.type = NonEmptyPath(kind)
    for sub in getattr(command, "commands", {}).values():
        harden(sub)


def sweep_leftovers(st, *extra_folders, remove: bool = True) -> list[str]:
    """The temporary files of interrupted runs (core/leftovers.py) beside the database, in its
    backups folder, in ``extra_folders`` and in the temp folder: removed (or, without ``remove``,
    only listed), and said on stderr."""
    from pathlib import Path

    from gemini_flow_cli.core import leftovers
    from gemini_flow_cli.core.db import discover

    from gemini_flow_cli.core.storage import is_url

    if is_url(st.db_path):  # a server's database has no folder beside it
        folders = [Path(f) for f in extra_folders if f]
    else:
        db_path = Path(st.db_path) if st.db_path else discover()
        folders = [db_path.parent, db_path.parent / "backups", *(Path(f) for f in extra_folders if f)]
    if remove:
        paths = leftovers.sweep(folders)
        if paths:
            st.out.message(f"Removed {len(paths)} temporary file(s) left by an interrupted run: " + ", ".join(paths))
    else:
        paths = [str(p) for p in leftovers.find(folders)]
        if paths:
            st.out.warn(f"{len(paths)} temporary file(s) left by an interrupted run (`backup prune` removes "
                        "them): " + ", ".join(paths))
    return paths
