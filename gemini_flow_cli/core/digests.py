"""SHA-256 without OpenSSL's start-up cost (the audit chain, the writers' pre-imports)."""

from __future__ import annotations


def sha256_constructor():
    """SHA-256 from CPython's built-in module when there is one: the same digest as
    ``hashlib.sha256``, without loading OpenSSL (``import hashlib``), which costs every
    writing command a few milliseconds for hashing a few hundred bytes."""
    global _SHA256
    if _SHA256 is None:
        try:
            from _sha2 import sha256  # CPython 3.12+
        except ImportError:
            try:
                from _sha256 import sha256  # CPython 3.10, 3.11
            except ImportError:
                from hashlib import sha256
        _SHA256 = sha256
    return _SHA256


_SHA256 = None
