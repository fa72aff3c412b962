"""Encryption at rest: AES-256-GCM with a key derived by scrypt from the user's secret.

The stored form of an encrypted value is a JSON string (the ``value`` column holds JSON text)::

    "gf1:<base64 of 12-byte nonce || ciphertext || 16-byte tag>"

``gf1`` names this format (AES-256-GCM, scrypt, the associated data below) so a later format can
be told apart. Each value gets a fresh random nonce. The associated data binds the ciphertext to
its place: ``b"gemini-flow/gf1\\0" + namespace + b"\\0" + key`` (neither may contain NUL), so a
ciphertext copied to another key or namespace does not authenticate.

The scrypt salt and parameters live in the database (``configuration`` row
``internal.encryption.kdf``, not sensitive) together with a *verifier*, HMAC-SHA256 of a fixed
label under the derived key: it tells "wrong key" apart from "altered ciphertext" and costs an
attacker nothing they could not get from any ciphertext. The key is derived once per process
(cached by secret digest, salt and parameters).

``cryptography`` is imported only inside the functions that need it: plain commands never pay for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from gemini_flow_cli.core import clock
from gemini_flow_cli.errors import GeminiFlowError

FORMAT = "gf1"
PREFIX = FORMAT + ":"
KDF_ROW = "internal.encryption.kdf"
NONCE_BYTES = 12
TAG_BYTES = 16
SALT_BYTES = 16
KEY_BYTES = 32

# scrypt cost. N = 2^15, r = 8, p = 1 takes ~80 ms and 32 MiB on the reference machine (2 cores),
# keeping `memory retrieve` of an encrypted value well under 300 ms; see benchmarks/encrypted_retrieve.py.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MIN_SCRYPT_N = 2**15

_VERIFIER_LABEL = b"gemini-flow key check v1"
_derived: dict[tuple, bytes] = {}


def derive_key(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """The 256-bit key for ``secret`` (scrypt), computed once per process for the same inputs."""
    cache_key = (hashlib.sha256(secret.encode("utf-8")).digest(), salt, n, r, p)
    key = _derived.get(cache_key)
    if key is None:
        # hashlib.scrypt refuses these sizes (OpenSSL's default 32 MiB maxmem); cryptography's
        # Scrypt sizes maxmem itself.
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        key = Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(secret.encode("utf-8"))
        _derived[cache_key] = key
    return key


def verifier(key: bytes) -> str:
    return hmac.new(key, _VERIFIER_LABEL, hashlib.sha256).hexdigest()


def new_params(secret: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> dict[str, Any]:
    """Fresh KDF parameters (random salt) for ``secret``, with the verifier of the derived key."""
    salt = os.urandom(SALT_BYTES)
    key = derive_key(secret, salt, n, r, p)
    return {
        "format": FORMAT,
        "algorithm": "aes-256-gcm",
        "kdf": "scrypt",
        "salt": base64.b64encode(salt).decode("ascii"),
        "n": n,
        "r": r,
        "p": p,
        "length": KEY_BYTES,
        "verifier": verifier(key),
        "createdAt": clock.iso(clock.now()),
    }


def load_params(conn) -> dict[str, Any] | None:
    """The database's KDF parameters, or None when nothing was ever encrypted in it."""
    from gemini_flow_cli.core import config

    params = config.get_internal(conn, KDF_ROW)
    if params is None:
        return None
    if not isinstance(params, dict) or params.get("kdf") != "scrypt" or "salt" not in params:
        raise GeminiFlowError(
            "ENCRYPTION_FAILED",
            f"the key derivation parameters in the database ({KDF_ROW}) are damaged; nothing was changed",
        )
    return params


def ensure_params(db, secret: str) -> dict[str, Any]:
    """The database's KDF parameters, creating them (random salt) on the first encrypted store.

    The salt is drawn and the key derived before taking the write lock (scrypt takes ~0.1 s);
    the row is then inserted only if still absent under BEGIN IMMEDIATE and read back, so two
    processes that encrypt for the first time at once end up using the same row.
    """
    params = load_params(db.conn)
    if params is not None:
        return params
    from gemini_flow_cli.core import config

    fresh = new_params(secret)
    with db.write() as conn:
        config.put_internal(conn, KDF_ROW, fresh, "scrypt salt and parameters of the encryption key (not secret)",
                            only_if_absent=True)
        return load_params(conn)


def associated_data(namespace: str, key: str) -> bytes:
    return b"gemini-flow/" + FORMAT.encode() + b"\x00" + namespace.encode("utf-8") + b"\x00" + key.encode("utf-8")


class Cipher:
    """Encrypts and decrypts values of one database with one secret.

    Construction is cheap; the key is derived on first use. ``params`` pins the KDF parameters
    (``key rotate`` uses it for the new key); otherwise they are read from the database, and
    created there on the first encryption.
    """

    def __init__(self, db, secret: str, *, source: str = "", params: dict[str, Any] | None = None):
        if not secret:
            raise GeminiFlowError("PERMISSION_DENIED", "the encryption key is empty")
        self.db = db
        self.source = source
        self._secret = secret
        self._params = params
        self._aead = None

    # -- the key -----------------------------------------------------------------------------

    def reload(self) -> None:
        """Forget the parameters and key, so the next use reads them from the database again."""
        self._params = None
        self._aead = None

    def params(self, *, create: bool) -> dict[str, Any]:
        if self._params is None:
            params = ensure_params(self.db, self._secret) if create else load_params(self.db.conn)
            if params is None:
                raise GeminiFlowError(
                    "ENCRYPTION_FAILED",
                    f"the database has encrypted values but no key derivation parameters ({KDF_ROW}); "
                    "it was altered, and they cannot be decrypted",
                )
            self._params = params
        return self._params

    def key(self, *, create: bool = False) -> bytes:
        params = self.params(create=create)
        salt = base64.b64decode(params["salt"])
        return derive_key(self._secret, salt, int(params["n"]), int(params["r"]), int(params["p"]))

    def matches(self) -> bool:
        """Whether this secret is the one the database's values are encrypted with."""
        return hmac.compare_digest(verifier(self.key()), str(self.params(create=False).get("verifier", "")))

    def _cipher(self, *, create: bool):
        if self._aead is None:
            key = self.key(create=create)
            if not hmac.compare_digest(verifier(key), str(self._params.get("verifier", ""))):
                where = f" ({self.source})" if self.source else ""
                raise GeminiFlowError(
                    "PERMISSION_DENIED",
                    f"wrong encryption key{where}: it is not the key this database's values were "
                    "encrypted with; nothing was changed",
                )
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead = AESGCM(key)
        return self._aead

    # -- values ------------------------------------------------------------------------------

    def encrypt(self, namespace: str, key: str, plaintext: str) -> str:
        """The stored form (JSON string text) of ``plaintext`` for ``namespace``/``key``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher(create=True).encrypt(nonce, plaintext.encode("utf-8"), associated_data(namespace, key))
        return json.dumps(PREFIX + base64.b64encode(nonce + sealed).decode("ascii"))

    def decrypt(self, namespace: str, key: str, stored: str) -> str:
        """The plaintext of a stored form; ENCRYPTION_FAILED when it does not authenticate."""
        where = f"{namespace}/{key}"
        raw = _unwrap(stored, where)
        aead = self._cipher(create=False)
        from cryptography.exceptions import InvalidTag

        try:
            plaintext = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data(namespace, key))
        except InvalidTag:
            # InvalidTag carries no message: say what it means.
            raise GeminiFlowError(
                "ENCRYPTION_FAILED",
                f"cannot decrypt {where}: the ciphertext does not authenticate (it was altered, or "
                "copied from another key or namespace); nothing was changed",
                details={"namespace": namespace, "key": key},
            ) from None
        return plaintext.decode("utf-8")


def _unwrap(stored: str, where: str) -> bytes:
    def damaged(why: str) -> GeminiFlowError:
        return GeminiFlowError(
            "ENCRYPTION_FAILED", f"cannot decrypt {where}: the stored value is damaged ({why}); nothing was changed"
        )

    try:
        token = json.loads(stored)
    except ValueError:
        raise damaged("not JSON") from None
    if not isinstance(token, str) or ":" not in token:
        raise damaged("not an encrypted value")
    if not token.startswith(PREFIX):
        raise damaged(f"unknown format {token.split(':', 1)[0]!r}, expected {FORMAT!r}")
    try:
        raw = base64.b64decode(token[len(PREFIX):], validate=True)
    except ValueError:
        raise damaged("bad base64") from None
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise damaged("too short")
    return raw


def nonce_of(stored: str) -> bytes:
    """The nonce of a stored form (for tests and audits of nonce uniqueness)."""
    return _unwrap(stored, "value")[:NONCE_BYTES]


def is_stored_form(stored: str) -> bool:
    try:
        _unwrap(stored, "value")
    except GeminiFlowError:
        return False
    return True


# -- moving ciphertext between databases -------------------------------------------------------

# Bounds on a key-derivation record that arrives from a file: a hostile record must not make
# the import derive a key with gigabytes of memory (scrypt uses 128 * n * r bytes).
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_R = 32
MAX_SCRYPT_P = 16


def derivation(params: dict[str, Any]) -> tuple:
    """What makes two records derive the same key from the same secret: salt and cost."""
    return (params.get("salt"), params.get("n"), params.get("r"), params.get("p"))


def check_params(params: Any, where: str) -> dict[str, Any]:
    """A key-derivation record read from an export or a backup; INVALID_INPUT when malformed."""
    def bad(why: str) -> GeminiFlowError:
        return GeminiFlowError("INVALID_INPUT", f"invalid key-derivation record ({where}): {why}")

    if not isinstance(params, dict) or params.get("kdf") != "scrypt":
        raise bad("expected an object with \"kdf\": \"scrypt\"")
    try:
        salt = base64.b64decode(params.get("salt", ""), validate=True)
    except (ValueError, TypeError):
        raise bad("the salt is not base64") from None
    if not 8 <= len(salt) <= 64:
        raise bad("the salt must be 8 to 64 bytes")
    n, r, p = params.get("n"), params.get("r"), params.get("p")
    if not all(type(v) is int for v in (n, r, p)):
        raise bad("n, r and p must be integers")
    if n < MIN_SCRYPT_N or n > MAX_SCRYPT_N or n & (n - 1) or not 1 <= r <= MAX_SCRYPT_R or not 1 <= p <= MAX_SCRYPT_P:
        raise bad(f"scrypt cost out of range (n a power of two {MIN_SCRYPT_N}..{MAX_SCRYPT_N}, r 1..{MAX_SCRYPT_R}, "
                  f"p 1..{MAX_SCRYPT_P})")
    if not isinstance(params.get("verifier"), str) or len(params["verifier"]) != 64:
        raise bad("the verifier must be 64 hex digits")
    return params


class Reconciliation:
    """How ciphertext from another database becomes readable here (see :func:`reconcile`).

    ``adopt``: parameters to write as this database's (it had none). ``convert(params, ns, key,
    stored)`` returns the stored form to write: unchanged when ``params`` derive the same key as
    this database, else decrypted with the source's key and encrypted with this database's.
    """

    def __init__(self, target: dict[str, Any] | None, adopt: dict[str, Any] | None,
                 ciphers: dict[tuple, tuple["Cipher", "Cipher"]]):
        self.target = target
        self.adopt = adopt
        self._ciphers = ciphers

    @property
    def reencrypts(self) -> bool:
        return bool(self._ciphers)

    def convert(self, params: dict[str, Any] | None, namespace: str, key: str, stored: str) -> str:
        pair = None if params is None else self._ciphers.get(derivation(params))
        if pair is None:
            return stored
        source, target = pair
        return target.encrypt(namespace, key, source.decrypt(namespace, key, stored))


def reconcile(db, conn, incoming: list[dict[str, Any]], cipher_factory, *, where: str) -> Reconciliation:
    """Decide, before anything is written, how ciphertext encrypted under each of ``incoming``
    key-derivation records becomes readable in ``db``.

    - this database has no record (nothing was ever encrypted here): the first incoming record is
      adopted as is, so its ciphertext needs no change and no key;
    - the same salt and cost: nothing to do;
    - another salt (two databases that each started encrypting with the same key): each value is
      decrypted with the key derived under the source's salt and re-encrypted under this
      database's, by the caller, in its write transaction. This needs the key; a key that is not
      the one the source (or this database) was encrypted with raises PERMISSION_DENIED (exit 4)
      so the caller writes nothing.

    ``cipher_factory()`` gives this invocation's :class:`Cipher` (raising PERMISSION_DENIED when
    there is no key); it is called only when a re-encryption is needed.
    """
    target = load_params(conn)
    adopt = None
    others = []
    for params in incoming:
        if target is None and adopt is None:
            adopt = params
        elif derivation(params) != derivation(target if target is not None else adopt):
            others.append(params)
    ciphers: dict[tuple, tuple[Cipher, Cipher]] = {}
    if others:
        try:
            current = cipher_factory()
        except GeminiFlowError as exc:
            raise GeminiFlowError(
                "PERMISSION_DENIED",
                f"{where} holds values encrypted under another key-derivation salt; re-encrypting them "
                f"for this database needs the encryption key ({exc.message}); nothing was written",
            ) from None
        local = target if target is not None else adopt
        destination = Cipher(db, current._secret, source=current.source, params=local)
        if not destination.matches():
            raise GeminiFlowError(
                "PERMISSION_DENIED",
                f"wrong encryption key ({current.source}): it is not the key this database's values are "
                f"encrypted with, so the values in {where} cannot be re-encrypted for it; nothing was written",
            )
        for params in others:
            source = Cipher(db, current._secret, source=current.source, params=params)
            if not source.matches():
                raise GeminiFlowError(
                    "PERMISSION_DENIED",
                    f"the encrypted values in {where} were encrypted with a different key than this "
                    f"database's ({current.source}); import them with that key, or re-key one side with "
                    "`gemini-flow key rotate` first; nothing was written",
                )
            ciphers[derivation(params)] = (source, destination)
    return Reconciliation(target, adopt, ciphers)


def adopt_params(conn, params: dict[str, Any]) -> None:
    """Write ``params`` as this database's key-derivation record, in the caller's transaction.

    CONFLICT if another process created a different record since :func:`reconcile` looked."""
    from gemini_flow_cli.core import config

    config.put_internal(conn, KDF_ROW, params, "scrypt salt and parameters of the encryption key (not secret)",
                        only_if_absent=True)
    now = load_params(conn)
    if derivation(now) != derivation(params):
        raise GeminiFlowError(
            "CONFLICT", "another process started encrypting in this database meanwhile; nothing was written; run it again"
        )
