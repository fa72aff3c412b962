"""Durations as people type them: ``90``, ``30s``, ``5m``, ``1h``, ``7d``, ``2w``."""

from __future__ import annotations

import re

from gemini_flow_cli.errors import GeminiFlowError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Few enough digits that int() is cheap, and a ceiling that keeps any instant computed from a
# duration far inside SQLite's 64-bit integers (issue 18: `--ttl 99999999999999999999d` was exit 70).
_DURATION = re.compile(r"(\d{1,15})([smhdw]?)")
MAX_SECONDS = 10**12  # about 31,700 years


def parse_duration(text: str, *, what: str = "duration") -> int:
    """Seconds in ``text``; a bare number is seconds. Raises INVALID_INPUT on anything else or zero."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"invalid {what} {text!r}: use seconds or a number with s, m, h, d or w (e.g. 30s, 5m, 1h, 7d)",
        )
    seconds = int(match.group(1)) * UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise GeminiFlowError("INVALID_INPUT", f"invalid {what} {text!r}: it must be more than zero")
    if seconds > MAX_SECONDS:
        raise GeminiFlowError("INVALID_INPUT", f"invalid {what} {text!r}: at most {MAX_SECONDS} seconds")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of ``seconds`` that :func:`parse_duration` reads back."""
    for unit in ("w", "d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"
