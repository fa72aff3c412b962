"""The one place that renders: table, json, jsonl and csv on stdout; messages on stderr.

JSON is written with ``json.dumps`` straight to stdout, never through Rich, so it parses whatever
the terminal width. Rich is imported only to draw a table or a progress bar on a terminal.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

FORMATS = ("auto", "table", "json", "jsonl", "csv")


# The patterns below are compiled on first use, not at import: compiling them costs a command
# that never needs them (`memory retrieve` printing a raw value) about a millisecond.
@functools.cache
def _pattern(source: str) -> re.Pattern:
    return re.compile(source)


_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"

# What a terminal would act on rather than show: C0 controls (ESC starts CSI/OSC sequences, BEL
# ends an OSC title or link), DEL, the C1 controls (U+009B is an 8-bit CSI on many terminals) and
# the bidirectional overrides and isolates that reorder what is shown ("Trojan Source",
# CVE-2021-42574). Tab and newline are kept where a layout has room for them (messages).
_CONTROL = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
_CONTROL_ALL = "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
# In JSON, C0 controls are already \u-escaped by json.dumps; the rest are not.
_CONTROL_JSON = "[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"


def _escape_char(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: str, *, keep_layout: bool = True) -> str:
    """``text`` with every control character a terminal would obey shown as ``\\xNN``/``\\uNNNN``.

    ``keep_layout`` keeps tab and newline (a message may span lines); a table cell escapes them
    too. This is the one place stored text becomes terminal text (CLI.md §9 "Text from the
    database is data"): ESC ``]0;title BEL``, ``ESC [2J`` and friends are shown, never obeyed.
    """
    pattern = _pattern(_CONTROL if keep_layout else _CONTROL_ALL)
    return pattern.sub(_escape_char, text)


def _json_for(text: str, stream) -> str:
    """JSON text for ``stream``: on a terminal the C1 controls and bidi overrides that
    ``json.dumps(ensure_ascii=False)`` leaves raw become ``\\u`` escapes (the same JSON value)."""
    return _pattern(_CONTROL_JSON).sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _isatty(stream) else text


def _text(value: str):
    """A Rich ``Text`` (never parsed as markup or emoji codes) with control characters escaped."""
    from rich.text import Text

    return Text(escape_control(value, keep_layout=False))


def color_wanted(no_color_flag: bool, stream=None) -> bool:
    """Colour only on a terminal, never with ``--no-color`` or a non-empty ``NO_COLOR``."""
    stream = stream or sys.stdout
    return not no_color_flag and not os.environ.get("NO_COLOR") and _isatty(stream)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Output:
    """Rendering settings for one invocation."""

    def __init__(self, fmt: str = "auto", *, quiet: bool = False, no_color: bool = False):
        if fmt not in FORMATS:
            raise ValueError(fmt)
        self.requested = fmt
        self.format = fmt if fmt != "auto" else ("table" if _isatty(sys.stdout) else "json")
        self.quiet = quiet
        self.no_color = no_color

    @property
    def json_explicit(self) -> bool:
        """JSON was asked for (``--json``, ``--format json``), not chosen because stdout is a pipe."""
        return self.requested == "json"

    # -- data ------------------------------------------------------------------------------

    def emit(
        self,
        data: Any,
        *,
        rows: Sequence[dict[str, Any]] | None = None,
        columns: Sequence[str] | None = None,
        title: str | None = None,
    ) -> None:
        """Write ``data``: the whole document as JSON, or ``rows`` as jsonl/csv/table lines.

        ``rows`` are the list-like part of ``data`` (e.g. search results); without them a dict
        is shown as one row of fields.
        """
        fmt = self.format
        if fmt == "json":
            write_json(data)
            return
        single = rows is None and isinstance(data, dict)
        if rows is None:
            rows = data if isinstance(data, list) else [data]
        if fmt == "jsonl":
            self.emit_jsonl(rows)
        elif fmt == "csv":
            write_csv(rows, columns)
        elif single:
            self.table_fields(data, title=title)
        elif not rows:
            self.message("(no results)")
        else:
            self.table(rows, columns, title=title)

    def done(self, result: Any, message: str) -> None:
        """What a write did: on a terminal (table format) one line on stderr and nothing on stdout;
        otherwise ``result`` as data, for scripts."""
        if self.format == "table":
            self.message(message)
        else:
            self.emit(result)

    def emit_encoded(self, data: dict[str, Any], name: str, lines: Iterable[str], *,
                     columns: Sequence[str] | None = None) -> None:
        """Write ``data`` with a list ``name`` whose items are given already encoded, one compact
        JSON text per line (``lines``: blocks of one or more lines, each ending with a newline or
        not; a JSON text holds no raw newline): for results too many to hold, each encoded once.

        JSON: one document, ``name`` first and one item per line (the other fields after it);
        jsonl: the items' lines; csv and table: the items as rows (``columns``, or those of the
        items).
        """
        fmt = self.format
        write = sys.stdout.write
        tty = _isatty(sys.stdout)
        if fmt in ("json", "jsonl"):
            separator = ""
            if fmt == "json":
                write("{" + json.dumps(name) + ": [")
                separator = "\n  "
            for block in lines:
                block = block.rstrip("\n")
                if not block:
                    continue
                if tty:
                    block = _json_for(block, sys.stdout)
                if fmt == "json":
                    # A block of lines at a time (C work): a million results are a million lines.
                    write(separator + block.replace("\n", ",\n  "))
                    separator = ",\n  "
                else:
                    write(block + "\n")
            if fmt == "json":
                rest = json.dumps(data, ensure_ascii=False)[1:]
                write("\n]" + (", " + rest if rest != "}" else "}") + "\n")
            sys.stdout.flush()
            return
        rows = (json.loads(line) for block in lines for line in block.rstrip("\n").split("\n") if line)
        if fmt == "csv":
            write_csv(rows, columns)
        else:
            self.table(list(rows), columns)

    def emit_jsonl(self, rows: Iterable[dict[str, Any]]) -> None:
        write = sys.stdout.write
        tty = _isatty(sys.stdout)
        for row in rows:
            line = json.dumps(row, ensure_ascii=False)
            write((_json_for(line, sys.stdout) if tty else line) + "\n")
        sys.stdout.flush()

    def table(self, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, *, title=None) -> None:
        """A Rich table that fits the terminal: long cells end in an ellipsis."""
        from rich.cells import cell_len
        from rich.table import Table

        columns = list(columns or _columns(rows))
        table = Table(title=_text(title) if title else None, show_lines=False, expand=False, header_style="bold")
        cells = [[_cell(row.get(name)) for name in columns] for row in rows]
        console = self._console()

        def data() -> list[int]:
            return [max([0, *(cell_len(r[i]) for r in cells)]) for i in range(len(columns))]

        def natural() -> list[int]:
            return [max(cell_len(name), width) for name, width in zip(columns, data())]

        if sum(natural()) > console.width - (3 * len(columns) + 1):
            # Too wide: a column with no value in any row says nothing, so it gives its room
            # to the others first (--format json still has every field).
            keep = [i for i in range(len(columns)) if any(r[i] for r in cells)] or list(range(len(columns)))
            columns = [columns[i] for i in keep]
            cells = [[r[i] for i in keep] for r in cells]
        columns, cells, widths = fit_with_whole_ids(columns, cells, console.width)
        for name, width in zip(columns, widths):
            table.add_column(_text(name), overflow="ellipsis", no_wrap=True, width=width)
        for row in cells:
            table.add_row(*(_text(cell) for cell in row))
        console.print(table)

    def table_fields(self, data: dict[str, Any], *, title=None) -> None:
        from rich.table import Table

        table = Table(title=_text(title) if title else None, show_header=False, box=None, padding=(0, 2, 0, 0))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="ellipsis")
        for name, value in _flatten(data):
            table.add_row(_text(name), _text(_cell(value)))
        self._console().print(table)

    def raw(self, text: str) -> None:
        """Text for a script, as is, with a newline. In table format (a terminal, or asked for:
        the output is for a person) control characters are escaped."""
        if self.format == "table":
            text = escape_control(text)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def _console(self):
        from rich.console import Console

        # Rich's own no_color still emits bold and other styles; color_system=None emits no
        # escape at all, which is what NO_COLOR, --no-color and a pipe ask for (CLI.md §2).
        color = color_wanted(self.no_color)
        return Console(
            no_color=not color, color_system="auto" if color else None, highlight=False, soft_wrap=False
        )

    # -- messages --------------------------------------------------------------------------

    def message(self, text: str) -> None:
        """An informational line on stderr, unless ``--quiet``."""
        if not self.quiet:
            print(escape_control(text), file=sys.stderr)

    def warn(self, text: str) -> None:
        """A warning on stderr (shown even with ``--quiet``)."""
        print(f"warning: {escape_control(text)}", file=sys.stderr)

    def error(self, payload: dict[str, Any], text: str) -> None:
        """An error: a JSON object on stderr in JSON mode, else one line."""
        if self.format in ("json", "jsonl"):
            print(_json_for(json.dumps(payload, ensure_ascii=False), sys.stderr), file=sys.stderr)
        else:
            print(f"Error: {escape_control(text)}", file=sys.stderr)

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Any]:
        """A Rich progress bar on stderr when stderr is a terminal; otherwise a silent stand-in.

        Yields an object with ``advance(n=1)``.
        """
        if self.quiet or not _isatty(sys.stderr):
            yield _NoProgress()
            return
        if not color_wanted(self.no_color, sys.stderr):
            # A live Rich bar redraws with cursor-movement escapes; with NO_COLOR / --no-color
            # the terminal gets a plain line rewritten with carriage returns instead.
            plain = _PlainProgress(description, total)
            try:
                yield plain
            finally:
                plain.close()
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task(description, total=total)
            yield _Advance(bar, task)


class _NoProgress:
    def advance(self, n: int = 1) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass


class _PlainProgress:
    """``description 40/100`` on stderr, rewritten in place with ``\\r``: no escape sequences."""

    def __init__(self, description: str, total: int | None):
        self.description, self.total, self.done = description, total, 0
        self._shown = -1.0
        self._draw(force=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def set_total(self, total: int) -> None:
        """The total, once known (a streamed input is counted as it is read)."""
        self.total = total
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._shown < 0.1:
            return  # at most ten redraws a second, however fast the work goes
        self._shown = now
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        sys.stderr.write(f"\r{self.description} {count}")
        sys.stderr.flush()

    def close(self) -> None:
        self._draw(force=True)
        sys.stderr.write("\n")
        sys.stderr.flush()


class _Advance:
    def __init__(self, bar, task):
        self.bar, self.task = bar, task

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task, n)

    def set_total(self, total: int) -> None:
        self.bar.update(self.task, total=total)


def write_json(data: Any) -> None:
    sys.stdout.write(_json_for(json.dumps(data, ensure_ascii=False, indent=2), sys.stdout) + "\n")
    sys.stdout.flush()


def write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
    import csv

    columns = list(columns or _columns(rows))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    tty = _isatty(sys.stdout)
    writer.writerow(escape_control(c) if tty else c for c in columns)
    for row in rows:
        cells = (_csv_cell(row.get(name)) for name in columns)
        writer.writerow(escape_control(c) if tty and isinstance(c, str) else c for c in cells)
    sys.stdout.flush()


# A column narrower than this says nothing ("st…"): it is dropped instead, right to left.
MIN_COLUMN = 6


def is_id_column(name: str) -> bool:
    """``id``, ``agentId``, ``decisionId``...: what a row is for (copied into the next command)."""
    return name == "id" or (name.endswith("Id") and name[:1].islower())


def fit_with_whole_ids(columns: list[str], cells: list[list[str]], width: int) -> tuple[list[str], list[list[str]], list[int]]:
    """Columns, cells and widths of a table ``width`` cells wide in which every id stays whole.

    Ids keep every character. The other columns give way as in :func:`fit_widths`, and while
    they cannot all keep :data:`MIN_COLUMN` cells beside the ids, the rightmost of them is
    dropped (``--format json`` still has every field); then the ids of other records (owner,
    parent), rightmost first. Only when the row's own id alone does not fit may it be cut.
    """
    from rich.cells import cell_len

    columns, cells = list(columns), [list(row) for row in cells]

    def measure() -> tuple[list[int], list[int]]:
        data = [max([0, *(cell_len(r[i]) for r in cells)]) for i in range(len(columns))]
        return data, [cell_len(name) for name in columns]

    while True:
        data, headers = measure()
        available = width - (3 * len(columns) + 1)
        ids = [i for i, name in enumerate(columns) if is_id_column(name)]
        others = [i for i in range(len(columns)) if i not in ids]
        need = sum(max(data[i], 3) for i in ids) + sum(min(max(data[i], headers[i]), MIN_COLUMN) for i in others)
        if not ids or need <= available or len(columns) == 1:
            break
        # Other columns go first, then the ids of other records (owner, parent) right to left:
        # the row's own id, the first, is what the table is for.
        drop = others[-1] if others else ids[-1] if len(ids) > 1 else None
        if drop is None:
            break
        del columns[drop]
        for row in cells:
            del row[drop]
    if not ids or sum(max(data[i], 3) for i in ids) > available:
        return columns, cells, fit_widths(data, headers, available)
    widths = [0] * len(columns)
    for i in ids:
        widths[i] = min(max(data[i], headers[i]), max(data[i], 3))
    rest = fit_widths([data[i] for i in others], [headers[i] for i in others], available - sum(widths[i] for i in ids))
    for i, w in zip(others, rest):
        widths[i] = w
    return columns, cells, widths


def fit_widths(data: list[int], headers: list[int], available: int) -> list[int]:
    """Column widths that fit ``available`` cells, from each column's widest value and header.

    A column wants the wider of its values and its header (at most 60). When the table is too
    wide, the column with the most room to give gives way first, in two rounds: first down to
    12 characters of value (24 for the first column, what a row is: an id or a key, so it can
    still be copied) and 8 of header; then every column down to 3.
    """
    widths = [min(max(d, h), 60) for d, h in zip(data, headers)]
    keep = [
        min(w, max(3, min(d, 24 if i == 0 else 12), min(h, 8)))
        for i, (w, d, h) in enumerate(zip(widths, data, headers))
    ]
    for floor in (keep, [min(w, 3) for w in widths]):
        _shrink(widths, floor, available)
    return widths


def _shrink(widths: list[int], floor: list[int], available: int) -> None:
    while sum(widths) > available:
        i = max(range(len(widths)), key=lambda j: widths[j] - floor[j])
        if widths[i] <= floor[i]:
            break
        widths[i] -= 1


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for name in row:
            if name not in names:
                names.append(name)
    return names


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in data.items():
        if isinstance(value, dict) and value and prefix.count(".") < 1:
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


# A CSV cell a spreadsheet would run as a formula (CSV injection, OWASP): text starting with one of
# these, unless it is a plain number (-5, +1.5e3: a number, not a formula, which spreadsheets can
# still add up). Such a cell is written with a leading apostrophe, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _csv_cell(value: Any) -> Any:
    """A CSV cell: blank for null, compact JSON for objects, lists and booleans, numbers as they
    are, and text as it is unless a spreadsheet would take it for a formula (:data:`FORMULA_STARTS`,
    a plain number excepted): then with a leading ``'``. CSV is for reading by people and spreadsheets; scripts that need
    the exact text read JSON (``--format json``/``jsonl``), and `memory export` writes JSON Lines
    only, so what an export carries back into `memory import` is never altered."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _pattern(_PLAIN_NUMBER).fullmatch(value):
        return "'" + value
    return value


def _cell(value: Any) -> str:
    """A table cell for people: relative dates, compact JSON, blank for null."""
    if value is None:
        return ""
    if isinstance(value, str):
        if _pattern(_ISO).fullmatch(value):
            return relative_time(value)
        return value.replace("\n", "⏎")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def relative_time(iso: str, now: float | None = None) -> str:
    """``3 min ago`` / ``in 2 h`` for an ISO-8601 UTC timestamp."""
    import calendar

    then = calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))
    delta = (time.time() if now is None else now) - then
    future = delta < 0
    delta = abs(delta)
    for limit, unit, size in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600), (86400 * 60, "d", 86400)):
        if delta < limit:
            amount = int(delta // size)
            break
    else:
        return iso[:10]
    if unit == "s" and amount < 5:
        return "just now"
    return f"in {amount} {unit}" if future else f"{amount} {unit} ago"
