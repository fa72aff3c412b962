"""Configuration: known settings, declared once, stored in the seed's ``configuration`` table.

Every setting gemini-flow understands is a :class:`Setting` in :data:`SETTINGS` (type, default,
range, description); an unknown key, a value of the wrong type or out of range is refused with
INVALID_INPUT (exit 2) before anything is written.

Where a value comes from, strongest first (CLI.md §1):

1. a command-line flag (the CLI layer passes it in),
2. the setting's environment variable, where it declares one (the CLI layer passes ``os.environ``),
3. the database's ``configuration`` table (``config set``),
4. the user file: ``config.json`` in the platform's config folder (``config set --user``),
5. the declared default.

``get(db, key)`` answers with 3 > 4 > 5 (the core never reads the environment); :func:`resolve`
answers with 2 > 3 > 4 > 5 and says which one won. Writing a database value (``config set``,
audited) is core/config_writes.py's: the audit log reads this module, so it imports no audit.

Rows the program keeps for itself (the scrypt salt and parameters, the audit prune anchor) live in
the same table under ``internal.*`` keys, which ``config set`` refuses.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gemini_flow_cli.core import clock
from gemini_flow_cli.core import jsontext
from gemini_flow_cli.errors import GeminiFlowError

APP_NAME = "gemini-flow"
USER_FILE_NAME = "config.json"
KEY_FILE_NAME = "key"
INTERNAL_PREFIX = "internal."

MiB = 1024 * 1024
_SIZE = r"(\d+)\s*(b|kib|kb|k|mib|mb|m)?"
_SIZE_UNITS = {None: 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": MiB, "mb": MiB, "mib": MiB}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class Setting:
    """One known configuration key.

    ``kind`` is how values are read and checked: ``size`` (bytes; ``512KiB``, ``4MiB`` accepted),
    ``string``, ``name`` (a namespace-like name), ``boolean``, ``patterns`` (a list of globs),
    ``path`` (a file path or null), ``choice`` (one of ``choices``), ``duration`` (``30s`` ... ``7d``).

    A plain class rather than a dataclass: building a dataclass costs milliseconds at import,
    and this module is imported by every command.
    """

    __slots__ = ("key", "kind", "default", "description", "minimum", "maximum", "choices", "env", "sensitive",
                 "user_only")

    def __init__(self, key: str, kind: str, default: Any, description: str, *, minimum: int | None = None,
                 maximum: int | None = None, choices: tuple[str, ...] = (), env: str | None = None,
                 sensitive: bool = False, user_only: bool = False):
        self.key = key
        self.kind = kind
        self.default = default
        self.description = description
        self.minimum = minimum
        self.maximum = maximum
        self.choices = choices
        self.env = env
        self.sensitive = sensitive
        # Only the user's own file may set it: a database must not vouch for itself.
        self.user_only = user_only

    @property
    def category(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def data_type(self) -> str:
        """The seed's ``data_type`` column: string, number, boolean or object."""
        return {"size": "number", "boolean": "boolean", "patterns": "object"}.get(self.kind, "string")

    @property
    def validation_rules(self) -> dict[str, Any]:
        rules: dict[str, Any] = {"kind": self.kind}
        if self.minimum is not None:
            rules["min"] = self.minimum
        if self.maximum is not None:
            rules["max"] = self.maximum
        if self.choices:
            rules["choices"] = list(self.choices)
        return rules


SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in (
        Setting("memory.maxValueSize", "size", MiB,
                "Largest value `memory store` accepts, in bytes (JSON text, before encryption).",
                minimum=1, maximum=16 * MiB),
        Setting("memory.defaultNamespace", "name", "default",
                "Namespace used when -n is not given.", env="GEMINI_FLOW_NAMESPACE"),
        Setting("security.autoEncryptPatterns", "patterns",
                ["*-credentials", "*-api-key", "user-*-personal", "*-financial-*"],
                "Keys matching any of these globs are encrypted without --encrypt."),
        Setting("security.keyFile", "path", None,
                "The encryption key file (default: 'key' in the user config folder).",
                env="GEMINI_FLOW_KEY_FILE"),
        Setting("security.trustedPaths", "patterns", [],
                "Databases you trust although another user owns them or group/others may write them "
                "(a database file, its folder or the folder above .hive-mind; DIR/* for everything "
                "under DIR; * for all). User file only (config set --user).",
                user_only=True),
        Setting("database.synchronous", "choice", "full",
                "SQLite durability: full (every commit reaches the disk) or normal (faster; a power "
                "cut may lose the last commits, never corrupt).",
                choices=("full", "normal"), env="GEMINI_FLOW_SYNCHRONOUS"),
        Setting("audit.enabled", "boolean", True, "Record every write in the audit log."),
        Setting("audit.retention", "duration", "90d", "`audit prune` removes rows older than this."),
        Setting("changes.retention", "duration", "7d",
                "`memory cleanup` removes changes of the change feed (watch, history) older than this."),
        Setting("backup.auto.enabled", "boolean", True,
                "Take a backup when a command writes and the newest backup is older than the interval."),
        Setting("backup.auto.interval", "duration", "6h", "Age of the newest backup that triggers a new one."),
        Setting("backup.auto.retention", "duration", "30d", "Automatic backups older than this are pruned."),
    )
}

# The stub's name for the defaults, kept for modules that read it.
DEFAULTS: dict[str, Any] = {key: s.default for key, s in SETTINGS.items()}

# User-level defaults loaded from the user file by the CLI layer (see :func:`load_user_file`).
_user_values: dict[str, Any] = {}
_user_file: Path | None = None


# -- locations -----------------------------------------------------------------------------


def user_config_dir(environ: Mapping[str, str]) -> Path:
    """The platform's config folder for gemini-flow (what ``platformdirs.user_config_dir`` says).

    On Linux and the BSDs this is ``$XDG_CONFIG_HOME/gemini-flow`` or ``~/.config/gemini-flow``,
    computed here without importing platformdirs (~8 ms, paid by every command otherwise); other
    platforms ask platformdirs. ``environ`` is passed in by the caller: the core reads no env vars.
    """
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        base = environ.get("XDG_CONFIG_HOME", "").strip()
        if not base:
            base = os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".config")
        return Path(base) / APP_NAME
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_file_path(environ: Mapping[str, str]) -> Path:
    return user_config_dir(environ) / USER_FILE_NAME


def default_key_file(environ: Mapping[str, str]) -> Path:
    return user_config_dir(environ) / KEY_FILE_NAME


# -- parsing and checking values -----------------------------------------------------------


def parse_size(text: str, *, what: str = "size") -> int:
    """Bytes from ``1048576``, ``512KiB``, ``4MiB``, ``1KB``, ``1k`` (case-insensitive, blanks
    allowed before the unit). The ONE size parser: command line, ``config set`` and the user file.

    Units are binary whatever their spelling (K = KB = KiB = 1024, M = MB = MiB = 1024²), as
    SQLite and most tools that size buffers read them. Raises INVALID_INPUT otherwise.
    """
    match = re.fullmatch(_SIZE, text.strip(), re.IGNORECASE) if isinstance(text, str) else None
    if not match:
        raise GeminiFlowError(
            "INVALID_INPUT", f"invalid {what} {text!r}: a number of bytes such as 1048576, 512KiB or 4MiB",
            details={"value": str(text)[:40]},
        )
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower() or None]


def setting(key: str) -> Setting:
    """The declaration of ``key``; INVALID_INPUT (exit 2) for a key gemini-flow does not know."""
    try:
        return SETTINGS[key]
    except KeyError:
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"unknown configuration key {key!r}; `gemini-flow config list --all` shows the known keys",
            details={"key": key},
        ) from None


def parse(key: str, text: str) -> Any:
    """The value of ``key`` as typed on a command line, checked (INVALID_INPUT when wrong)."""
    s = setting(key)
    raw = text.strip()
    if s.kind == "size":
        return check(key, parse_size(raw, what=key))
    if s.kind == "boolean":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise _bad(s, text, "true or false")
    if s.kind == "patterns":
        if raw[:1] in ("[", "{", '"'):
            try:
                value = jsontext.loads(raw, what=key)
            except ValueError:
                raise _bad(s, text, 'a JSON list of globs or globs separated by commas') from None
        else:
            value = [part.strip() for part in raw.split(",") if part.strip()]
        return check(key, value)
    if s.kind == "path":
        if raw.lower() in ("", "null", "none"):
            return None
        return check(key, raw)
    return check(key, raw)


def check(key: str, value: Any) -> Any:
    """``value`` (already JSON-typed) if it fits ``key``'s type and range; else INVALID_INPUT."""
    s = setting(key)
    if s.kind == "size":
        if isinstance(value, str):  # the user file may say "512KiB", as `config set` may
            value = parse_size(value, what=key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(s, value, "a whole number of bytes, or a size such as 512KiB or 4MiB")
        if (s.minimum is not None and value < s.minimum) or (s.maximum is not None and value > s.maximum):
            raise GeminiFlowError(
                "INVALID_INPUT",
                f"{key} must be between {s.minimum} and {s.maximum} bytes, not {value}",
                details={"key": key, "min": s.minimum, "max": s.maximum, "value": value},
            )
        return value
    if s.kind == "boolean":
        if not isinstance(value, bool):
            raise _bad(s, value, "true or false")
        return value
    if s.kind == "patterns":
        if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
            raise _bad(s, value, "a list of non-empty glob strings")
        return value
    if s.kind == "path":
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise _bad(s, value, "a file path")
        return value
    if not isinstance(value, str) or not value:
        raise _bad(s, value, "a non-empty string")
    if s.kind == "choice" and value not in s.choices:
        raise _bad(s, value, " or ".join(s.choices))
    if s.kind == "name":
        from gemini_flow_cli.core.entries import validate_namespace

        validate_namespace(value)
    if s.kind == "duration":
        from gemini_flow_cli.core.durations import parse_duration

        parse_duration(value, what=key)
    return value


def _bad(s: Setting, value: Any, expected: str) -> GeminiFlowError:
    return GeminiFlowError(
        "INVALID_INPUT",
        f"invalid value {value!r} for {s.key}: expected {expected}",
        details={"key": s.key, "expected": expected},
    )


# -- the user file -------------------------------------------------------------------------


def user_value(key: str) -> Any:
    """The user file's value of ``key`` (None when it sets none)."""
    return _user_values.get(key)


def load_user_file(path: Path) -> dict[str, Any]:
    """Read and check the user file (a JSON object of known keys); remember it for :func:`get`.

    A missing file is an empty one. A malformed file, an unknown key or a bad value is
    INVALID_INPUT naming the file, so a typo there never passes silently.
    """
    global _user_values, _user_file
    values = read_user_file(path)
    _user_values, _user_file = values, path
    return values


def read_user_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"cannot read the user configuration {path}: {exc.strerror}") from exc
    try:
        data = jsontext.loads(text, what=f"the user configuration {path}") if text.strip() else {}
    except ValueError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"the user configuration {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise GeminiFlowError("INVALID_INPUT", f"the user configuration {path} must be a JSON object")
    values = {}
    for key, value in data.items():
        try:
            values[key] = check(key, value)
        except GeminiFlowError as exc:
            raise GeminiFlowError("INVALID_INPUT", f"in {path}: {exc.message}", details=exc.details) from None
    return values


def write_user_file(path: Path, values: dict[str, Any]) -> None:
    """Replace the user file atomically (write a temporary file, then rename); mode 0600."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(temporary, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(sorted(values.items())), handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise GeminiFlowError(
            "INVALID_INPUT", f"cannot write the user configuration {path}: {exc.strerror}",
            details={"path": str(path)},
        ) from exc
    load_user_file(path)


# -- reading -------------------------------------------------------------------------------


def get(db, key: str) -> Any:
    """The value of ``key`` for ``db``: the database's, else the user file's, else the default."""
    s = setting(key)
    row = None if s.user_only else db.conn.execute("SELECT value FROM configuration WHERE key = ?", (key,)).fetchone()
    if row is not None:
        return json.loads(row[0])
    if key in _user_values:
        return _user_values[key]
    return s.default


def resolve(db, key: str, environ: Mapping[str, str] | None = None) -> tuple[Any, str]:
    """The effective value of ``key`` and where it came from: env, database, user or default."""
    s = setting(key)
    if environ is not None and s.env and environ.get(s.env):
        return parse(key, environ[s.env]), "env"
    stored = None if s.user_only else stored_row(db, key)
    if stored is not None:
        return stored["value"], "database"
    if key in _user_values:
        return _user_values[key], "user"
    return s.default, "default"


def stored_row(db, key: str) -> dict[str, Any] | None:
    """The ``configuration`` row of ``key`` with its value decoded, or None."""
    cursor = db.conn.execute(
        "SELECT key, value, category, description, updated_at, data_type, validation_rules, "
        "is_sensitive, version FROM configuration WHERE key = ?",
        (key,),
    )
    found = cursor.fetchone()
    if found is None:
        return None
    row = dict(zip([c[0] for c in cursor.description], found))
    row["value"] = json.loads(row["value"])
    return row


def describe(db, key: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One setting as ``config get --json`` / ``config list`` show it."""
    s = setting(key)
    value, source = resolve(db, key, environ)
    row = stored_row(db, key)
    shown = "********" if s.sensitive and value is not None else value
    return {
        "key": key,
        "value": shown,
        "source": source,
        "default": s.default,
        "type": s.data_type,
        "category": s.category,
        "description": s.description,
        "validation": s.validation_rules,
        "env": s.env,
        "version": row["version"] if row else None,
        "updatedAt": clock.iso(row["updated_at"]) if row else None,
    }


def listing(db, environ: Mapping[str, str] | None = None, *, all_keys: bool = False) -> list[dict[str, Any]]:
    """Every known setting that is set somewhere other than its default (or all with ``all_keys``)."""
    rows = [describe(db, key, environ) for key in SETTINGS]
    return rows if all_keys else [r for r in rows if r["source"] != "default"]


# -- internal rows -------------------------------------------------------------------------


def get_internal(conn, key: str) -> Any:
    """An ``internal.*`` row's value (decoded JSON), or None."""
    row = conn.execute("SELECT value FROM configuration WHERE key = ?", (key,)).fetchone()
    return None if row is None else json.loads(row[0])


def put_internal(conn, key: str, value: Any, description: str, *, only_if_absent: bool = False) -> None:
    """Write an ``internal.*`` row (never sensitive: these hold salts, parameters, hashes)."""
    assert key.startswith(INTERNAL_PREFIX)
    conflict = "DO NOTHING" if only_if_absent else (
        "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, version = configuration.version + 1"
    )
    conn.execute(
        f"""
        INSERT INTO configuration (key, value, category, description, updated_at, data_type,
                                   validation_rules, is_sensitive, version)
        VALUES (?, ?, 'internal', ?, ?, 'object', NULL, 0, 1)
        ON CONFLICT (key) {conflict}
        """,
        (key, json.dumps(value, sort_keys=True), description, int(clock.now())),
    )
