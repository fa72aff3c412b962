"""Durations as people type them (``90``, ``30s``, ``5m``, ``1h``, ``7d``, ``2w``), and the one place
where a duration becomes an instant.

Every option or field that takes a duration (a TTL, a lease, a timeout, a retention, a ``--since``)
is parsed by :func:`parse_duration`, and every instant computed from one comes from
:func:`after` or :func:`before`. CLI.md §4: any instant past 9999-12-31T23:59:59Z is refused
(INVALID_INPUT, exit 2), however large the number typed; an expiry counts from the real time of
the write, rounded up, so it is never reached early.
"""

from __future__ import annotations

import math
import re

from gemini_flow_cli.errors import GeminiFlowError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+)([smhdw]?)")
# 9999-12-31T23:59:59Z, the last instant an ISO-8601 time (and CLI.md §4) can name.
MAX_INSTANT = 253_402_300_799
MAX_SECONDS = MAX_INSTANT  # no duration is longer than the calendar (issue 18's ceiling, made exact)
_DIGITS = len(str(MAX_INSTANT)) + 1  # longer numbers are refused before int() (no giant integers)


def _too_far(what: str, text: str) -> GeminiFlowError:
    return GeminiFlowError(
        "INVALID_INPUT", f"invalid {what} {text!r}: it reaches past 9999-12-31T23:59:59Z, the latest time allowed"
    )


def parse_duration(text: str, *, what: str = "duration") -> int:
    """Seconds in ``text``; a bare number is seconds. Raises INVALID_INPUT on anything else, on
    zero, and on a duration longer than the whole calendar (past 9999-12-31 from the epoch)."""
    match = _DURATION.fullmatch(str(text).strip())
    if not match:
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"invalid {what} {text!r}: use seconds or a number with s, m, h, d or w (e.g. 30s, 5m, 1h, 7d)",
        )
    if len(match.group(1).lstrip("0")) > _DIGITS:
        raise _too_far(what, text)
    seconds = int(match.group(1)) * UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise GeminiFlowError("INVALID_INPUT", f"invalid {what} {text!r}: it must be more than zero")
    if seconds > MAX_INSTANT:
        raise _too_far(what, text)
    return seconds


def check_seconds(seconds, *, what: str = "duration") -> int:
    """A duration given as a number (a batch's ``ttl``, the Python API): a positive integer no
    longer than the calendar. Raises INVALID_INPUT."""
    if type(seconds) is not int or seconds <= 0:
        raise GeminiFlowError("INVALID_INPUT", f"invalid {what} {seconds!r}: a positive number of seconds")
    if seconds > MAX_INSTANT:
        raise _too_far(what, str(seconds))
    return seconds


def after(now: float, seconds: float, *, what: str = "duration") -> int:
    """The instant ``seconds`` after ``now`` (epoch seconds), as whole seconds rounded *up*: an
    expiry counted from 10.9 s plus 1 s is 12, never 11 (which would be reached 0.1 s after the
    write). INVALID_INPUT past 9999-12-31T23:59:59Z."""
    if seconds > MAX_INSTANT:
        raise _too_far(what, str(seconds))
    instant = math.ceil(now + seconds)
    if instant > MAX_INSTANT:
        raise _too_far(what, str(seconds))
    return instant


def after_exact(now: float, seconds: float, *, what: str = "duration") -> float:
    """Like :func:`after`, keeping the fraction (deadlines stored with sub-second precision)."""
    after(now, seconds, what=what)
    return now + seconds


def before(now: float, seconds: float) -> int:
    """The instant ``seconds`` before ``now``, never before the epoch (``--since 100y`` is "all")."""
    return max(0, int(now - seconds))


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of ``seconds`` that :func:`parse_duration` reads back."""
    for unit in ("w", "d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"
