"""What every command shares: the invocation's settings, the database, the output."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gemini_flow_cli.core.invocation import Invocation
from gemini_flow_cli.errors import GeminiFlowError
from gemini_flow_cli.output import Output


# -- the one list contract (core/listing.py): every list command takes these two options -------

Limit = Annotated[int, typer.Option("--limit", help="At most this many (0: none, only the total).")]
Offset = Annotated[int, typer.Option("--offset", help="Skip this many first.")]


def emit_list(result: dict[str, Any], key: str, *, rows: list[dict[str, Any]] | None = None,
              columns=None, title: str | None = None) -> None:
    """Print a list result: ``result[key]`` is the page, ``result["total"]`` every match,
    ``result["limit"]``/``["offset"]`` the paging. JSON prints ``result`` whole; table, JSON Lines
    and CSV print the rows (``rows`` when the table shows other cells) and, when the page is not
    everything, say so on stderr: a script reading CSV must not mistake a page for the whole."""
    st = state()
    page = result[key]
    st.out.emit(result, rows=page if rows is None else rows, columns=columns, title=title)
    total, offset = result["total"], result.get("offset", 0)
    if st.out.format != "json" and total > len(page):
        st.out.message(
            f"{len(page)} of {total} shown (--limit {result['limit']}, --offset {offset}); "
            "use --limit and --offset for the rest"
        )


class State(Invocation):
    """The global options of one invocation (CLI.md §1), the database it opened (core/invocation.py)
    and the CLI's output: warnings and notices of after-write actions go to stderr through it."""

    def __init__(self, db_path: Path | None = None, busy_timeout: float = 10.0, debug: bool = False,
                 out: Output | None = None) -> None:
        super().__init__(db_path, busy_timeout=busy_timeout,
                         warn=lambda text: self.out.warn(text), message=lambda text: self.out.message(text))
        self.debug = debug
        self.out = out if out is not None else Output()


def state() -> State:
    """The current invocation's state (set by the root callback)."""
    # Typer 0.28 vendors its own click: the current context lives there, not in `click`.
    from typer._click.globals import get_current_context

    ctx = get_current_context()
    obj = ctx.find_root().obj
    if obj is None:  # a sub-app invoked on its own (tests of one group)
        obj = ctx.find_root().obj = State()
    return obj


# The largest value `memory.maxValueSize` may allow (core/config.py): no single value read from
# a file or standard input can be stored if it is longer, so reading stops one byte past it.
INPUT_LIMIT = 16 * 1024 * 1024
_BOM = "\ufeff"


def read_input(value: str | None, file: Path | None, *, limit: int | None = -1,
               what: str = "the value") -> str:
    """A value from the argument, ``--file``, or standard input (absent or ``-``), CLI.md §4.

    ``--file`` gives the file's text exactly (no newline translation). Standard input loses a
    leading UTF-8 BOM and one trailing LF or CRLF (what ``echo`` and editors add). At most
    ``limit`` bytes (default :data:`INPUT_LIMIT`; None: no bound) are read; one more is VALUE_TOO_LARGE (exit 5) before the
    rest is read. Not UTF-8, a folder or an unreadable file is INVALID_INPUT (exit 2).
    """
    if limit == -1:
        limit = INPUT_LIMIT
    if file is not None:
        if value is not None:
            raise GeminiFlowError("INVALID_INPUT", "give the value or --file, not both")
        if file.is_dir():
            raise GeminiFlowError("INVALID_INPUT", f"cannot read {file}: it is a folder, not a file")
        try:
            with open(file, "rb") as handle:
                data = handle.read() if limit is None else handle.read(limit + 1)
        except OSError as exc:
            raise GeminiFlowError("INVALID_INPUT", f"cannot read {file}: {exc.strerror}") from exc
        return _decode(data, limit, str(file), what)
    if value is None or value == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise GeminiFlowError(
                "INVALID_INPUT", "no value given: pass VALUE, --file PATH, or pipe it on standard input"
            )
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text-only stand-in (some test runners): already decoded
            data = sys.stdin.read().encode("utf-8", "surrogatepass")
        else:
            data = stream.read() if limit is None else stream.read(limit + 1)
        text = _decode(data, limit, "standard input", what)
        if text.startswith(_BOM):
            text = text[1:]
        if text.endswith("\r\n"):
            return text[:-2]
        return text[:-1] if text.endswith("\n") else text
    return value


def _decode(data: bytes, limit: int | None, source: str, what: str) -> str:
    if limit is not None and len(data) > limit:
        raise GeminiFlowError(
            "VALUE_TOO_LARGE", f"{what} from {source} is larger than {limit} bytes; nothing was read further",
            details={"limit": limit},
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GeminiFlowError(
            "INVALID_INPUT", f"{source} is not UTF-8 text (invalid byte at offset {exc.start})",
            details={"offset": exc.start},
        ) from None


def check_output_path(path: Path, force: bool) -> None:
    """Refuse to write a file over a folder (INVALID_INPUT, exit 2) or, without ``--force``, over
    an existing file (CONFLICT, exit 3): the one rule of every ``-o FILE`` (backup create too)."""
    if path.is_dir():
        raise GeminiFlowError("INVALID_INPUT", f"cannot write {path}: it is a folder, not a file")
    if not path.parent.is_dir():
        raise GeminiFlowError("INVALID_INPUT", f"cannot write {path}: folder {path.parent} does not exist")
    if (path.exists() or path.is_symlink()) and not force:
        raise GeminiFlowError("CONFLICT", f"{path} already exists; pass --force to replace it",
                              details={"path": str(path)})


def write_output(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` (``mode``, 0600 unless said) through a temporary file and a
    rename, so that a failure leaves the old file or none, never half of one. DISK_FULL when the
    disk is full, else INVALID_INPUT naming the path."""
    import errno

    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        code = "DISK_FULL" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "INVALID_INPUT"
        raise GeminiFlowError(code, f"cannot write {path}: {exc.strerror}", details={"path": str(path)}) from exc


def confirm_or_refuse(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, ``--yes`` is required (else INVALID_INPUT, nothing done)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise GeminiFlowError("INVALID_INPUT", f"{question} Refusing without a terminal; pass --yes to confirm")
    if not typer.confirm(question, default=False, err=True):
        raise GeminiFlowError("INVALID_INPUT", "not confirmed; nothing was changed")


def memory_manager(db, namespace: str | None = None):
    """The memory API over ``db`` with this invocation's settings (core/invocation.py)."""
    from gemini_flow_cli.core.invocation import memory_api

    return memory_api(db, namespace)
