"""Encryption secrets: key files, generating them, and rotating a database to a new secret.

A secret is never taken from a command-line argument (argv is visible to every user of the machine
in ``ps``): it comes from ``GEMINI_FLOW_ENCRYPTION_KEY`` or from a key file, which the CLI layer
reads through :func:`read_key_file`. Like ssh with a private key, a key file that group or others
can access is refused.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gemini_flow_cli.core import audit, changes, clock
from gemini_flow_cli.errors import GeminiFlowError

SECRET_BYTES = 32
ENV_KEY = "GEMINI_FLOW_ENCRYPTION_KEY"


# -- where the secret comes from (every door: CLI, HTTP, MCP) ----------------------------------


def key_file_path(db) -> Path:
    """The key file in use: ``security.keyFile`` (GEMINI_FLOW_KEY_FILE > the database's
    configuration > the user file) or ``key`` in the platform's config folder."""
    from gemini_flow_cli.core import config

    value, _ = config.resolve(db, "security.keyFile", os.environ)
    return Path(value).expanduser() if value else config.default_key_file(os.environ)


def current_secret(db) -> tuple[str, str]:
    """``(secret, where it came from)``: GEMINI_FLOW_ENCRYPTION_KEY, else the key file.

    Raises PERMISSION_DENIED when there is none, or the key file is open to group/others.
    """
    if os.environ.get(ENV_KEY):
        return os.environ[ENV_KEY], ENV_KEY
    path = key_file_path(db)
    return read_key_file(path), f"key file {path}"


def cipher_for(db):
    """The cipher of ``db`` (core/crypto.py ``Cipher``) with the current secret; the key is
    derived on first use, so building it costs nothing until a value is encrypted or decrypted."""
    from gemini_flow_cli.core.crypto import Cipher

    secret, source = current_secret(db)
    return Cipher(db, secret, source=source)


def new_secret() -> str:
    """A random 256-bit secret, URL-safe base64 (43 characters)."""
    return base64.urlsafe_b64encode(os.urandom(SECRET_BYTES)).rstrip(b"=").decode("ascii")


def read_key_file(path: Path) -> str:
    """The secret in ``path``; PERMISSION_DENIED when missing, empty or open to group/others."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise GeminiFlowError(
            "PERMISSION_DENIED",
            f"no encryption key: GEMINI_FLOW_ENCRYPTION_KEY is not set and the key file {path} does "
            "not exist; create one with `gemini-flow key generate`",
            details={"keyFile": str(path)},
        ) from None
    except OSError as exc:
        raise GeminiFlowError("PERMISSION_DENIED", f"cannot read the key file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise GeminiFlowError("PERMISSION_DENIED", f"the key file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise GeminiFlowError(
            "PERMISSION_DENIED",
            f"the key file {path} is accessible by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"refusing to use it. Run: chmod 600 {_quote(path)}",
            details={"keyFile": str(path), "mode": f"{stat.S_IMODE(info.st_mode):04o}"},
        )
    from gemini_flow_cli.core.trust import check_key_file

    check_key_file(path)  # owned by you, in a folder only you can write (issue 18)
    try:
        secret = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise GeminiFlowError("PERMISSION_DENIED", f"cannot read the key file {path}: {exc}") from exc
    if not secret:
        raise GeminiFlowError("PERMISSION_DENIED", f"the key file {path} is empty")
    return secret


def write_key_file(path: Path) -> Path:
    """Create ``path`` holding a new random secret, mode 0600; CONFLICT if it exists (never overwritten)."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise GeminiFlowError(
            "CONFLICT",
            f"the key file {path} already exists; refusing to overwrite it (values encrypted with it "
            "would become unreadable). Use `gemini-flow key rotate` to change keys",
            details={"keyFile": str(path)},
        ) from None
    except OSError as exc:
        raise GeminiFlowError("PERMISSION_DENIED", f"cannot create the key file {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (new_secret() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def encrypted_count(conn) -> int:
    return conn.execute("SELECT COUNT(*) FROM memory_store WHERE encrypted = 1").fetchone()[0]


def status(db, cipher) -> dict[str, Any]:
    """What ``key status`` shows: parameters, counts, and whether the current secret fits."""
    from gemini_flow_cli.core import crypto

    params = crypto.load_params(db.conn)
    info: dict[str, Any] = {
        "encryptedValues": encrypted_count(db.conn),
        "kdf": None if params is None else {k: params[k] for k in ("kdf", "n", "r", "p", "salt", "createdAt") if k in params},
        "algorithm": "aes-256-gcm",
        "format": crypto.FORMAT,
        "keySource": None if cipher is None else cipher.source,
        "keyMatches": None,
    }
    if cipher is not None and params is not None:
        info["keyMatches"] = cipher.matches()
    return info


def rotate(db, old_cipher, new_secret: str, *, source: str = "",
           progress: Callable[[int], None] | None = None, after: Callable[[], None] | None = None) -> dict[str, Any]:
    """Re-encrypt every encrypted value under ``new_secret`` in one transaction.

    New parameters (fresh salt) and the new key are derived before the write lock is taken. Inside
    one BEGIN IMMEDIATE transaction every encrypted value is decrypted with the old key, encrypted
    with the new one, the new parameters replace the old and an audit row is appended; a crash
    (even kill -9) part way rolls all of it back, so every value stays readable with the old key.

    Retrying after a crash that happened just after the commit is safe: when the old secret no
    longer fits but the new one does, the database is already rotated and nothing is done.
    ``after`` runs inside the transaction (e.g. to point ``security.keyFile`` at the new file).
    """
    from gemini_flow_cli.core import crypto

    params = crypto.load_params(db.conn)
    new_cipher = crypto.Cipher(db, new_secret, source=source)
    if params is not None and new_cipher.matches():
        return {"success": True, "rotated": 0, "alreadyRotated": True, "kdf": _public(params)}
    fresh = crypto.new_params(new_secret)
    new_cipher = crypto.Cipher(db, new_secret, source=source, params=fresh)
    started = clock.now()
    if params is not None:
        _check_old(old_cipher)  # derives the old key before the write lock is taken
    with db.write() as conn:
        current = crypto.load_params(conn)
        count = 0
        if current is not None:
            old_cipher.reload()  # re-read under the lock: another rotation may have run
            _check_old(old_cipher)
            rows = conn.execute(
                "SELECT id, namespace, key, value FROM memory_store WHERE encrypted = 1 ORDER BY id"
            ).fetchall()
            for row_id, namespace, key, stored in rows:
                plaintext = old_cipher.decrypt(namespace, key, stored)
                conn.execute(
                    "UPDATE memory_store SET value = ? WHERE id = ?",
                    (new_cipher.encrypt(namespace, key, plaintext), row_id),
                )
                count += 1
                if progress is not None:
                    progress(1)
            # Rotation rewrites ciphertexts, not values: no change is recorded, but the values
            # the change feed keeps for `memory history` move to the new key as well.
            if changes.versioned(conn):
                kept = conn.execute(
                    "SELECT revision, namespace, key, previous_value FROM memory_changes "
                    "WHERE previous_encrypted = 1 AND previous_value IS NOT NULL ORDER BY revision"
                ).fetchall()
                for revision, namespace, key, stored in kept:
                    plaintext = old_cipher.decrypt(namespace, key, stored)
                    conn.execute("UPDATE memory_changes SET previous_value = ? WHERE revision = ?",
                                 (new_cipher.encrypt(namespace, key, plaintext), revision))
        from gemini_flow_cli.core import config

        config.put_internal(conn, crypto.KDF_ROW, fresh, "scrypt salt and parameters of the encryption key (not secret)")
        if after is not None:
            after()
        audit.record(
            db, "encryption", "key", "rotate",
            before=None if current is None else {"kdf": _public(current)},
            after={"kdf": _public(fresh)},
            details={"reencrypted": count},
        )
    return {
        "success": True,
        "rotated": count,
        "alreadyRotated": False,
        "kdf": _public(fresh),
        "executionTime": int((clock.now() - started) * 1000),
    }


def _check_old(old_cipher) -> None:
    """The current secret must decrypt the values before they are re-encrypted."""
    if old_cipher is None:
        raise GeminiFlowError(
            "PERMISSION_DENIED",
            "no current encryption key: set GEMINI_FLOW_ENCRYPTION_KEY or the key file to the key the "
            "values are encrypted with; nothing was changed",
        )
    if not old_cipher.matches():
        raise GeminiFlowError(
            "PERMISSION_DENIED",
            f"wrong encryption key ({old_cipher.source}): the current key must decrypt the values "
            "before they can be re-encrypted; nothing was changed",
        )


def _public(params: dict[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in ("kdf", "n", "r", "p", "salt", "createdAt") if k in params}
