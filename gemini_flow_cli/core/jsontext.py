"""JSON text from outside (arguments, files, standard input, imports): parsed within limits.

``json.loads`` alone accepts what later fails deep inside the program: nesting a few hundred
levels deep parses but then breaks ``json.dumps``, SQLite's JSON functions (depth 1000) or the
recursion limit (``RecursionError``, which used to end as exit 70); a ``"\\ud83d"`` escape gives a
lone surrogate that no UTF-8 encoder accepts. :func:`loads` refuses both up front with
INVALID_INPUT (exit 2), naming what was wrong.
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


def loads(text: str | bytes, *, what: str = "the JSON", parse_constant: Callable[[str], Any] | None = None) -> Any:
    """``json.loads(text)`` with the limits above; ``json.JSONDecodeError`` (a ValueError, as
    ``json.loads``) for text that is not JSON, NaN and Infinity included (:func:`reject_constant`,
    unless ``parse_constant`` says otherwise); INVALID_INPUT for nesting deeper than
    :data:`MAX_DEPTH` or a lone surrogate."""
    try:
        value = json.loads(text, parse_constant=parse_constant or reject_constant)
    except RecursionError:
        raise too_deep(what) from None
    return check_parsed(text, value, what=what)


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
