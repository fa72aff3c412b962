"""The one source of "now" for the core, so tests can move time without sleeping.

Every core module calls :func:`now` (never ``time.time`` directly); tests monkeypatch
``gemini_flow_cli.core.clock.now``.
"""

from __future__ import annotations

import time


def now() -> float:
    """Seconds since the epoch, UTC."""
    return time.time()


def iso(ts: float | int | None) -> str | None:
    """An ISO-8601 UTC timestamp with a ``Z`` (CLI.md §2), or None."""
    if ts is None:
        return None
    # Instants past 9999-12-31T23:59:59Z cannot be written in ISO-8601 (and gmtime overflows):
    # new ones are refused (core.durations); one stored by an older version shows as the maximum.
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(min(max(ts, 0), 253_402_300_799)))
