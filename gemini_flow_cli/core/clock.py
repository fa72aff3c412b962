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
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
