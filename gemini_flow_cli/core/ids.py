"""Record ids unique across databases: ``prefix-`` + 16 base32 characters.

10 characters of milliseconds (ids sort by creation) and 30 random bits, in Crockford's base32
(lower case, no i/l/o/u). Random rather than counted, so two databases never give the same id to
different records, and a merge of them never collides. Tiny on purpose: commands import it before
they take the write lock.
"""

from __future__ import annotations

import os

from gemini_flow_cli.core import clock

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str) -> str:
    """``prefix-`` + 10 characters of milliseconds (sortable by creation) + 6 random characters."""
    # os.urandom rather than `secrets`: importing secrets (hmac, hashlib, random) costs ~5 ms per process.
    value = (int(clock.now() * 1000) << 30) | (int.from_bytes(os.urandom(4), "big") >> 2)
    chars = []
    for _ in range(16):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}-{''.join(reversed(chars))}"
