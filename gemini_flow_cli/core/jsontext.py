"""JSON text from outside (arguments, files, standard input, imports): parsed within limits.

``json.loads`` alone accepts what later fails deep inside the program: nesting a few hundred
levels deep parses but then breaks ``json.dumps``, SQLite's JSON functions (depth 1000) or the
recursion limit (``RecursionError``, which used to end as exit 70); a ``"\\ud83d"`` escape gives a
lone surrogate that no UTF-8 encoder accepts; an object naming a key twice (``{"a": 1, "a": 2}``)
silently keeps the last, so what was meant is a guess (RFC 8259 §4: names SHOULD be unique).
:func:`loads` refuses all three up front with INVALID_INPUT (exit 2), naming what was wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from gemini_flow_cli.errors import GeminiFlowError

# Deeper than any record or value a person or an agent writes, and well below the limits that
# bite later: SQLite's JSON functions (1000 levels) and Python's recursion limit (1000 frames).
MAX_DEPTH = 256

_SURROGATE = re.compile("[\ud800-\udfff]")


def reject_constant(name: str) -> Any:
    """``parse_constant`` for text from outside: ``NaN``, ``Infinity`` and ``-Infinity`` are not
    JSON (RFC 8259 §6), though ``json.loads`` takes them; what they would become cannot be
    written back as JSON. Raises ``json.JSONDecodeError`` like any other text that is not JSON,
    so callers report it the same way (``exc.msg``)."""
    raise json.JSONDecodeError(f"{name} is not a JSON number (use null or a string)", name, 0)


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for text from outside: the object, or INVALID_INPUT (the key in
    ``details.duplicateKey``) when it names a key twice. Only the lengths are compared on the way: C work, so a
    bulk load of a million objects pays little for it."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise duplicate_key(key)
            seen.add(key)
    return obj


def duplicate_key(key: str, where: str | None = None) -> GeminiFlowError:
    shown = key if len(key) <= 80 else key[:80] + "..."
    return GeminiFlowError(
        "INVALID_INPUT",
        f"{where + ' has' if where else 'a JSON object has'} the key {shown!r} twice: name each key once "
        "(which value was meant is a guess)",
        details={"duplicateKey": shown},
    )


def is_duplicate_key(exc: BaseException) -> bool:
    """Whether ``exc`` is :func:`duplicate_key`'s refusal."""
    return isinstance(exc, GeminiFlowError) and "duplicateKey" in exc.details


def first_duplicate(text: str | bytes) -> tuple[list[Any], str] | None:
    """Where the first object naming a key twice is in JSON ``text``: its path (keys and
    indexes from the top) and the key; None when there is none or ``text`` is not JSON.
    Slow (every object kept as its pairs): for the error message only."""

    class Pairs(list):
        pass

    try:
        value = json.loads(text, object_pairs_hook=Pairs, parse_constant=lambda name: None)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[list[Any], Any]] = [([], value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, Pairs):
            seen: set[str] = set()
            for key, _ in node:
                if key in seen:
                    return path, key
                seen.add(key)
            stack.extend((path + [key], child) for key, child in reversed(node))
        elif isinstance(node, list):
            stack.extend((path + [index], child) for index, child in reversed(list(enumerate(node))))
    return None


_DECODER: json.JSONDecoder | None = None


def loads(text: str | bytes, *, what: str = "the JSON", parse_constant: Callable[[str], Any] | None = None) -> Any:
    """``json.loads(text)`` with the limits above; ``json.JSONDecodeError`` (a ValueError, as
    ``json.loads``) for text that is not JSON, NaN and Infinity included (:func:`reject_constant`,
    unless ``parse_constant`` says otherwise); INVALID_INPUT for nesting deeper than
    :data:`MAX_DEPTH`, a lone surrogate, or an object naming a key twice (:func:`unique_object`)."""
    try:
        if parse_constant is None and type(text) is str and not text.startswith("\ufeff"):
            # One decoder for every call (json.loads with options builds one each time, which an
            # import of a million records would pay twice per record).
            global _DECODER
            if _DECODER is None:
                _DECODER = json.JSONDecoder(parse_constant=reject_constant, object_pairs_hook=unique_object)
            value = _DECODER.decode(text)
        else:  # bytes (json.loads finds their encoding), a BOM (json.loads names it), other constants
            value = json.loads(text, parse_constant=parse_constant or reject_constant, object_pairs_hook=unique_object)
    except RecursionError:
        raise too_deep(what) from None
    except GeminiFlowError as exc:
        if is_duplicate_key(exc):
            raise duplicate_key(exc.details["duplicateKey"], f"an object in {what}") from None
        raise
    return check_parsed(text, value, what=what)


def line_loader(what: str = "the JSON") -> Callable[[str], Any]:
    """:func:`loads` for the many lines of one file, each decoded from UTF-8 (so holding no raw
    surrogate): the same values and the same errors, at less cost per line.

    The decoder's C scanner is called directly, without ``decode()``'s two regex matches for the
    blanks around the document, and :func:`check_parsed`'s test is written inline (a line decoded
    from UTF-8 holds no raw surrogate, and a JSON escape of one starts with a lowercase ``\\u``:
    JSON has no other). A line the shortcuts do not fit (blanks before its document, text after
    it, an escape, deep brackets, any error) goes through :func:`loads`, which says what is
    wrong. Measured on export lines: about a fifth less CPU per line than :func:`loads` (200,000
    lines, 2.6 s -> 2.0 s on a loaded machine)."""
    loads("0")  # builds the shared decoder
    scan = _DECODER.scan_once

    def load(text: str) -> Any:
        try:
            value, end = scan(text, 0)
        except (StopIteration, ValueError, RecursionError, GeminiFlowError):
            return loads(text, what=what)
        if end != len(text) and not text[end:].isspace():
            return loads(text, what=what)
        if "\\u" in text or text.count("[") + text.count("{") > MAX_DEPTH:
            return check_parsed(text, value, what=what)
        return value

    return load


# A \uD800-\uDFFF escape: the only way JSON text decoded from UTF-8 yields a surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def check_parsed(text: str | bytes, value: Any, *, what: str = "the JSON") -> Any:
    """:func:`check` of ``value`` parsed from ``text``, skipping the walk when the text itself
    shows it cannot fail: no more ``[`` and ``{`` in all than :data:`MAX_DEPTH` (the nesting
    is at most that), and no surrogate, raw or as a ``\\uD800``-``\\uDFFF`` escape. Both tests
    are conservative (a bracket inside a string counts too), and one pass of C over the text
    instead of a walk of every parsed value (which costs a bulk load more than the parsing)."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8", "surrogatepass")
    if (text.count("[") + text.count("{") <= MAX_DEPTH and not _SURROGATE_ESCAPE.search(text)
            and not _SURROGATE.search(text)):
        return value
    return check(value, what=what)


def too_deep(what: str) -> GeminiFlowError:
    return GeminiFlowError(
        "INVALID_INPUT", f"{what} is nested more than {MAX_DEPTH} levels deep",
        details={"maxDepth": MAX_DEPTH},
    )


def check(value: Any, *, what: str = "the JSON") -> Any:
    """``value`` if it is at most :data:`MAX_DEPTH` deep and holds no lone surrogate (walked
    without recursion); else INVALID_INPUT."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise _surrogate(what)
        elif isinstance(item, (list, dict)):
            if depth > MAX_DEPTH:
                raise too_deep(what)
            if isinstance(item, dict):
                for key, child in item.items():
                    if _SURROGATE.search(key):
                        raise _surrogate(what)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return value


def _surrogate(what: str) -> GeminiFlowError:
    return GeminiFlowError(
        "INVALID_INPUT",
        f"{what} holds a lone surrogate (a \\ud800-\\udfff escape without its pair), which is not "
        "text: it cannot be stored as UTF-8",
    )


def parse(text: str, *, what: str = "the JSON") -> Any:
    """``text`` parsed as strict JSON (no ``NaN``/``Infinity``) within the limits of :func:`loads`;
    INVALID_INPUT (exit 2) naming ``what`` when it is not JSON."""
    try:
        return loads(text, what=what, parse_constant=_no_constant)
    except ValueError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"{what} is not valid JSON: {exc}") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
