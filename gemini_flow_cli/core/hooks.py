"""Hooks: commands that run after a write commits, when one of its events (core/events.py) fires.

A hook is a row of the seed's ``hooks`` table: ``event_type`` (an event name, ``group.*`` or
``*``), ``handler`` (the ``--run`` text, split like a shell would split it: an argument vector,
never a shell unless it says ``sh -c``), ``priority`` (higher first; ties by id), ``enabled``,
``condition_expr`` (core/conditions.py), the counts and ``last_executed``, and in ``metadata``
its timeout, who added it, its signature and its last run (status, exit code, duration and the
last :data:`OUTPUT_KEPT` characters of stdout and stderr).

**Why a signature.** A hook is a command stored in the database, and a database file travels: a
repository can carry a ``.hive-mind/hive.db``, a backup can come from someone else. Opening such a
file must never run its commands. So ``add`` signs each hook with HMAC-SHA256 under a secret of the
user (``hooks.key`` in the user's configuration folder, 0600, made on the first ``hooks add``), and
only hooks whose signature verifies run; others are listed with ``trusted: false`` and skipped
with a warning. Hooks are also never taken from a backup by ``backup restore --merge``, and
``memory import`` carries only entries.

Running: after the command's transactions commit, :func:`fire` runs each recorded event's
matching, enabled, trusted hooks whose condition holds, in priority order, each with the event JSON
on stdin, its own process group and a timeout (the whole group is killed past it). A hook that
fails, times out or cannot start is a warning, never an error of the command. The counts and last
runs are then written in one small transaction of their own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gemini_flow_cli.core import audit, clock, conditions, events, listing
from gemini_flow_cli.errors import GeminiFlowError

KEY_FILE_NAME = "hooks.key"
SIGNATURE_VERSION = "gf-hook-1"
DEFAULT_TIMEOUT = 5.0  # seconds
MAX_TIMEOUT = 3600.0
OUTPUT_KEPT = 2000  # characters of a run's stdout and of its stderr kept in the hook's lastRun
MAX_RUNS_PER_COMMAND = 100  # hook runs after one command; beyond, a warning says how many were not run
MAX_NESTING = 3  # a hook's command that writes fires hooks in turn, down to this depth
DEPTH_VARIABLE = "GEMINI_FLOW_HOOK_DEPTH"
_PRIORITY_RANGE = 1_000_000
_COLUMNS = ("id, event_type, handler, priority, enabled, metadata, created_at, last_executed, "
            "execution_count, success_count, failure_count, condition_expr")

Warn = Callable[[str], None]


# -- the user's signing key ----------------------------------------------------------------------


def key_path(environ: Mapping[str, str]) -> Path:
    """``hooks.key`` in the user's configuration folder (never in the project folder)."""
    from gemini_flow_cli.core import config

    return config.user_config_dir(environ) / KEY_FILE_NAME


def load_key(path: Path) -> bytes | None:
    """The signing key at ``path``, or None when there is none (then no hook is trusted)."""
    try:
        text = path.read_text("ascii").strip()
        return bytes.fromhex(text) if len(text) == 64 else None
    except (OSError, ValueError):
        return None


def ensure_key(path: Path) -> bytes:
    """The signing key at ``path``, made (32 random bytes, hex, mode 0600) when missing."""
    key = load_key(path)
    if key is not None:
        return key
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        key = load_key(path)  # another process made it first
        if key is None:
            raise GeminiFlowError("INVALID_INPUT", f"{path} is not a hooks key (64 hex digits); move it away") from None
        return key
    except OSError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"cannot create the hooks key {path}: {exc.strerror}") from exc
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(key.hex() + "\n")
    return key


def _signature(key: bytes, hook_id: int, event: str, handler: str, condition: str | None, timeout: float) -> str:
    message = json.dumps([SIGNATURE_VERSION, hook_id, event, handler, condition, timeout],
                         ensure_ascii=False, separators=(",", ":"))
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def _trusted(key: bytes | None, row: dict[str, Any], meta: dict[str, Any]) -> bool:
    signature = meta.get("signature")
    if key is None or not isinstance(signature, str):
        return False
    expected = _signature(key, row["id"], row["event_type"], row["handler"], row["condition_expr"],
                          _timeout_of(meta))
    return hmac.compare_digest(expected, signature)


# -- validation ----------------------------------------------------------------------------------


def check_event(pattern: str) -> str:
    """An event name of core/events.py, ``group.*`` matching some, or ``*``; else INVALID_INPUT."""
    if not isinstance(pattern, str) or not events.matching(pattern):
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"unknown event {pattern!r}: use one of {', '.join(events.EVENTS)}, a group such as 'task.*', or '*'",
            details={"allowed": list(events.EVENTS)},
        )
    return pattern


def split_command(text: str) -> list[str]:
    """The argument vector of ``--run`` text (POSIX shell quoting, no shell); INVALID_INPUT when
    it is empty, has an unclosed quote or a NUL character."""
    if "\x00" in text:
        raise GeminiFlowError("INVALID_INPUT", "invalid --run: it contains a NUL character")
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"invalid --run: {exc}") from None
    if not argv:
        raise GeminiFlowError("INVALID_INPUT", "invalid --run: give a command, e.g. --run 'notify-send done'")
    return argv


def check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or not 0 < timeout <= MAX_TIMEOUT:
        raise GeminiFlowError("INVALID_INPUT", f"invalid --timeout {timeout!r}: more than 0, at most {MAX_TIMEOUT:g} seconds")
    return float(timeout)


def _check_priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > _PRIORITY_RANGE:
        raise GeminiFlowError("INVALID_INPUT", f"invalid --priority {priority!r}: -{_PRIORITY_RANGE} to {_PRIORITY_RANGE}")
    return priority


# -- records -------------------------------------------------------------------------------------


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    try:
        meta = json.loads(row["metadata"]) if row["metadata"] else {}
    except (TypeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _timeout_of(meta: dict[str, Any]) -> float:
    value = meta.get("timeout")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and 0 < value <= MAX_TIMEOUT
    return float(value) if ok else DEFAULT_TIMEOUT


def view(row: dict[str, Any], key: bytes | None) -> dict[str, Any]:
    """The JSON shape of a hook (``hooks list``/``show``)."""
    meta = _meta(row)
    return {
        "id": row["id"],
        "event": row["event_type"],
        "run": row["handler"],
        "priority": row["priority"],
        "enabled": bool(row["enabled"]),
        "condition": row["condition_expr"],
        "timeout": _timeout_of(meta),
        "trusted": _trusted(key, row, meta),
        "addedBy": meta.get("addedBy"),
        "createdAt": clock.iso(row["created_at"]),
        "lastExecuted": clock.iso(row["last_executed"]),
        "executionCount": row["execution_count"] or 0,
        "successCount": row["success_count"] or 0,
        "failureCount": row["failure_count"] or 0,
        "lastRun": meta.get("lastRun"),
    }


def _rows(conn, where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
    cursor = conn.execute(f"SELECT {_COLUMNS} FROM hooks {where}", params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor.fetchall()]


def _require(conn, hook_id: int) -> dict[str, Any]:
    rows = _rows(conn, "WHERE id = ?", (hook_id,)) if isinstance(hook_id, int) and 0 < hook_id < 2**63 else []
    if not rows:
        raise GeminiFlowError("NOT_FOUND", f"no hook {hook_id!r}", details={"hookId": hook_id})
    return rows[0]


# -- commands ------------------------------------------------------------------------------------


def add(db, event: str, run: str, *, key: bytes, priority: int = 0, condition: str | None = None,
        timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Add an enabled hook, signed with ``key`` (:func:`ensure_key`); returns its record.

    Errors (INVALID_INPUT, nothing added): an unknown event, ``run`` that does not split into a
    command, a condition that does not parse, a timeout outside (0, 3600] seconds, a priority
    outside ±1,000,000.
    """
    check_event(event)
    split_command(run)
    if condition is not None:
        conditions.parse(condition)
    timeout = check_timeout(timeout)
    priority = _check_priority(priority)
    with db.write() as conn:
        now = int(clock.now())
        hook_id = conn.execute(
            "INSERT INTO hooks (event_type, handler, priority, enabled, metadata, created_at, execution_count, "
            "success_count, failure_count, condition_expr) VALUES (?, ?, ?, 1, NULL, ?, 0, 0, 0, ?) RETURNING id",
            (event, run, priority, now, condition),
        ).fetchone()[0]
        meta = {"timeout": timeout, "addedBy": db.actor,
                "signature": _signature(key, hook_id, event, run, condition, timeout)}
        conn.execute("UPDATE hooks SET metadata = ? WHERE id = ?", (json.dumps(meta, ensure_ascii=False), hook_id))
        record = view(_require(conn, hook_id), key)
        audit.record(db, "hook", str(hook_id), "add", after={k: record[k] for k in
                                                             ("event", "run", "priority", "condition", "timeout")})
    return record


def list_hooks(db, *, key: bytes | None, event: str | None = None, limit: int = listing.DEFAULT_LIMIT,
               offset: int = 0) -> dict[str, Any]:
    """Hooks in the order they run (priority, highest first, then id), optionally only those
    whose event pattern is ``event``: ``{"hooks", "total", "limit", "offset"}``."""
    listing.check_page(limit, offset)
    if event is not None:
        check_event(event)
    where, params = ("WHERE event_type = ?", (event,)) if event is not None else ("", ())
    with db.read() as conn:
        rows = _rows(conn, f"{where} ORDER BY priority DESC, id", params)
    page, total = listing.page_rows([view(r, key) for r in rows], limit, offset)
    return {"hooks": page, "total": total, "limit": limit, "offset": offset}


def show(db, hook_id: int, *, key: bytes | None) -> dict[str, Any]:
    """One hook's record; NOT_FOUND when there is none."""
    with db.read() as conn:
        return view(_require(conn, hook_id), key)


def set_enabled(db, hook_id: int, enabled: bool, *, key: bytes | None) -> dict[str, Any]:
    """Enable or disable a hook (idempotent); returns its record. Enabling does not make a hook
    that was not added by this user trusted."""
    with db.write() as conn:
        row = _require(conn, hook_id)
        if bool(row["enabled"]) != enabled:
            conn.execute("UPDATE hooks SET enabled = ? WHERE id = ?", (int(enabled), hook_id))
            audit.record(db, "hook", str(hook_id), "enable" if enabled else "disable",
                         before={"enabled": bool(row["enabled"])}, after={"enabled": enabled})
        return view(_require(conn, hook_id), key)


def remove(db, hook_id: int) -> dict[str, Any]:
    """Delete a hook; NOT_FOUND when there is none."""
    with db.write() as conn:
        row = _require(conn, hook_id)
        conn.execute("DELETE FROM hooks WHERE id = ?", (hook_id,))
        audit.record(db, "hook", str(hook_id), "remove",
                     before={"event": row["event_type"], "run": row["handler"]})
    return {"success": True, "id": hook_id}


def envelope(name: str, data: Mapping[str, Any], actor: str | None) -> dict[str, Any]:
    """The JSON a hook reads: ``event``, ``at`` (now) and ``actor``, then the event's data."""
    return {"event": name, "at": clock.iso(clock.now()), "actor": actor,
            **{k: v for k, v in data.items() if k not in ("event", "at", "actor")}}


def test(db, hook_id: int, *, key: bytes | None, data: dict[str, Any] | None, environ: Mapping[str, str],
         event: str | None = None) -> dict[str, Any]:
    """Run one hook now on a sample event (``data``, else the event's sample from core/events.py),
    without any write: nothing is recorded, disabled hooks run too. The condition is evaluated
    first; when it is false the hook does not run (``ran: false``).

    ``event``: which event of a ``group.*`` or ``*`` hook (default: the first it matches).
    A hook not added by this user (``trusted: false``) is refused with PERMISSION_DENIED.
    Returns ``{"hookId", "event", "input", "conditionMatched", "ran", "ok", "status",
    "exitCode", "durationMs", "stdout", "stderr"}`` (stdout and stderr whole, as text).
    """
    with db.read() as conn:
        row = _require(conn, hook_id)
    meta = _meta(row)
    if not _trusted(key, row, meta):
        raise GeminiFlowError(
            "PERMISSION_DENIED",
            f"hook {hook_id} was not added by you on this machine (a copied or restored database?): "
            f"not run; read it with `hooks list`, then remove it or add it again",
            details={"hookId": hook_id},
        )
    names = events.matching(row["event_type"])
    if event is not None:
        if event not in names:
            raise GeminiFlowError("INVALID_INPUT", f"hook {hook_id} does not listen to {event!r} "
                                                   f"(its event is {row['event_type']!r})")
        names = [event]
    name = names[0]
    document = envelope(name, events.sample(name) if data is None else data, db.actor)
    result: dict[str, Any] = {"hookId": hook_id, "event": name, "input": document}
    matched = conditions.matches(row["condition_expr"], document)
    result["conditionMatched"] = matched
    if not matched:
        return {**result, "ran": False, "ok": None}
    run = run_command(split_command(row["handler"]), document, _timeout_of(meta),
                      _child_environment(environ, db, hook_id, name))
    return {**result, "ran": True, **run}


# -- running -------------------------------------------------------------------------------------


def _child_environment(environ: Mapping[str, str], db, hook_id: int, name: str) -> dict[str, str]:
    env = dict(environ)
    env[DEPTH_VARIABLE] = str(_depth(environ) + 1)
    env["GEMINI_FLOW_EVENT"] = name
    env["GEMINI_FLOW_HOOK_ID"] = str(hook_id)
    if db.path is not None:
        # absolute: a hook that calls gemini-flow from another folder works on the same database
        env["GEMINI_FLOW_DB"] = os.path.abspath(db.path)
    elif getattr(db, "url", None):
        env["GEMINI_FLOW_DB"] = db.url  # a PostgreSQL database: the hook calls back into the same one
    return env


def _depth(environ: Mapping[str, str]) -> int:
    try:
        return max(0, int(environ.get(DEPTH_VARIABLE, "0")))
    except ValueError:
        return 0


def run_command(argv: list[str], document: dict[str, Any], timeout: float, env: dict[str, str]) -> dict[str, Any]:
    """Run ``argv`` with ``document`` as JSON on stdin, in its own process group, for at most
    ``timeout`` seconds (then the group is killed). Returns ``{"ok", "status" (ok, failed,
    timeout, error), "exitCode", "durationMs", "stdout", "stderr", "error"?}``.

    Only the last :data:`CAPTURE_BYTES` of stdout and of stderr are held, whatever the hook
    prints (`yes` as a hook once took gigabytes). If the command itself is interrupted (Ctrl-C,
    SIGTERM) while a hook runs, the hook's group is killed before the interruption goes on.
    """
    data = (json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
    started = time.monotonic()
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=env, start_new_session=True)
    except (OSError, ValueError) as exc:
        message = getattr(exc, "strerror", None) or str(exc)
        return {"ok": False, "status": "error", "exitCode": None, "durationMs": 0, "stdout": "", "stderr": "",
                "error": f"cannot run {argv[0]!r}: {message}"}
    tails = {process.stdout: bytearray(), process.stderr: bytearray()}
    try:
        status = _exchange(process, data, tails, started + timeout)
        if status == "ok":
            try:
                process.wait(timeout=max(0.0, started + timeout - time.monotonic()))
            except subprocess.TimeoutExpired:  # closed its output but runs on
                status = "timeout"
        if status == "timeout":
            _kill_group(process)
        process.wait()
    except BaseException:
        _kill_group(process)
        process.wait()
        raise
    duration = round((time.monotonic() - started) * 1000, 3)
    code = process.returncode
    if status == "ok" and code != 0:
        status = "failed"
    result = {"ok": status == "ok", "status": status, "exitCode": code, "durationMs": duration,
              "stdout": bytes(tails[process.stdout]).decode("utf-8", "replace"),
              "stderr": bytes(tails[process.stderr]).decode("utf-8", "replace")}
    if status == "timeout":
        result["error"] = f"timed out after {timeout:g} s and was stopped"
    elif status == "failed":
        result["error"] = f"exit {code}" if code >= 0 else f"killed by signal {-code}"
    return result


# Bytes of a run's stdout and of its stderr held while it runs: enough for OUTPUT_KEPT characters
# of UTF-8 (at most 4 bytes each).
CAPTURE_BYTES = 4 * OUTPUT_KEPT
# After the hook has exited, how long its pipes may stay open (held by a descendant that left its
# process group) before they are closed and the run counted by the hook's own exit status.
_PIPES_GRACE = 0.2


def _exchange(process: subprocess.Popen, data: bytes, tails: dict, deadline: float) -> str:
    """Feed ``data`` to the hook's stdin and keep the tail of its stdout/stderr in ``tails``,
    until both reach end of file, or the hook exited and its pipes stayed open past a grace, or
    ``deadline`` (then "timeout"). One thread, no unbounded buffer."""
    import selectors

    selector = selectors.DefaultSelector()
    offset = 0
    try:
        if data:
            os.set_blocking(process.stdin.fileno(), False)
            selector.register(process.stdin, selectors.EVENT_WRITE)
        else:
            process.stdin.close()
        for stream in (process.stdout, process.stderr):
            selector.register(stream, selectors.EVENT_READ)
        exited_at = None
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                return "timeout"
            if process.poll() is not None:
                exited_at = exited_at or now
                if now - exited_at > _PIPES_GRACE:
                    break
            for key, _ in selector.select(timeout=min(deadline - now, 0.05)):
                stream = key.fileobj
                if stream is process.stdin:
                    try:
                        offset += os.write(stream.fileno(), data[offset:offset + 65536])
                    except BrokenPipeError:  # the hook does not read its event: its business
                        offset = len(data)
                    if offset >= len(data):
                        selector.unregister(stream)
                        stream.close()
                    continue
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    selector.unregister(stream)
                    continue
                tail = tails[stream]
                tail += chunk
                if len(tail) > CAPTURE_BYTES:
                    del tail[:-CAPTURE_BYTES]
        return "ok"
    finally:
        selector.close()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def fire(db, recorded: list[tuple[str, dict]], *, key: bytes | None, environ: Mapping[str, str],
         warn: Warn) -> dict[str, Any]:
    """Run the hooks of ``recorded`` events (``db.events``, committed) and record their runs.

    Never raises for a hook's sake: failures, timeouts, untrusted hooks, a condition that no longer
    parses, too many runs or too deep a nesting are warnings through ``warn``. Returns
    ``{"runs", "failed", "skipped"}`` counts.
    """
    summary = {"runs": 0, "failed": 0, "skipped": 0}
    if not recorded:
        return summary
    depth = _depth(environ)
    if depth >= MAX_NESTING:
        warn(f"hooks not run for {len(recorded)} event(s): this command was run by a hook {depth} levels "
             f"deep ({DEPTH_VARIABLE}); at most {MAX_NESTING} levels of hooks run")
        summary["skipped"] = len(recorded)
        return summary
    with db.read() as conn:
        hooks = _rows(conn, "WHERE enabled = 1 ORDER BY priority DESC, id")
    if not hooks:
        return summary
    parsed: dict[int, Any] = {}
    untrusted_warned: set[int] = set()
    outcomes: dict[int, list[dict[str, Any]]] = {}
    left_over = 0
    for name, data in recorded:
        document = None
        for row in hooks:
            if name not in events.matching(row["event_type"]):
                continue
            meta = _meta(row)
            if not _trusted(key, row, meta):
                if row["id"] not in untrusted_warned:
                    untrusted_warned.add(row["id"])
                    warn(f"hook {row['id']} ({row['event_type']}) not run: it was not added by you on this "
                         "machine (a copied or restored database?); `gemini-flow hooks list` shows it")
                summary["skipped"] += 1
                continue
            if document is None:
                document = envelope(name, data, db.actor)
            if row["condition_expr"] is not None:
                if row["id"] not in parsed:
                    try:
                        parsed[row["id"]] = conditions.parse(row["condition_expr"])
                    except GeminiFlowError as exc:
                        parsed[row["id"]] = exc
                condition = parsed[row["id"]]
                if isinstance(condition, GeminiFlowError):
                    warn(f"hook {row['id']} not run: its condition does not parse: {condition.message}")
                    summary["skipped"] += 1
                    continue
                if not conditions.evaluate(condition, document):
                    continue
            if summary["runs"] >= MAX_RUNS_PER_COMMAND:
                left_over += 1
                continue
            try:
                argv = split_command(row["handler"])
            except GeminiFlowError as exc:
                outcome = {"ok": False, "status": "error", "exitCode": None, "durationMs": 0, "stdout": "",
                           "stderr": "", "error": exc.message}
            else:
                outcome = run_command(argv, document, _timeout_of(meta), _child_environment(environ, db, row["id"], name))
            outcome["event"] = name
            outcome["at"] = clock.iso(clock.now())
            summary["runs"] += 1
            outcomes.setdefault(row["id"], []).append(outcome)
            if not outcome["ok"]:
                summary["failed"] += 1
                detail = _last_line(outcome["stderr"])
                warn(f"hook {row['id']} ({name}: {_short(row['handler'])}) {outcome['error']}"
                     + (f": {detail}" if detail else ""))
    if left_over:
        warn(f"{left_over} more hook run(s) not done: at most {MAX_RUNS_PER_COMMAND} run after one command")
        summary["skipped"] += left_over
    if outcomes:
        _record_runs(db, outcomes, warn)
    return summary


def _record_runs(db, outcomes: dict[int, list[dict[str, Any]]], warn: Warn) -> None:
    """The counts and last run of each hook that ran, in one transaction after the command's own
    (bookkeeping: it is not the command's write and fires nothing)."""
    try:
        with db.write(bookkeeping=True) as conn:
            for hook_id, runs in outcomes.items():
                last = runs[-1]
                kept = {k: last[k] for k in ("event", "at", "status", "exitCode", "durationMs") if k in last}
                kept["stdout"] = last["stdout"][-OUTPUT_KEPT:]
                kept["stderr"] = last["stderr"][-OUTPUT_KEPT:]
                if "error" in last:
                    kept["error"] = last["error"]
                row = conn.execute("SELECT metadata FROM hooks WHERE id = ?", (hook_id,)).fetchone()
                if row is None:
                    continue  # removed meanwhile
                meta = _meta({"metadata": row[0]})
                meta["lastRun"] = kept
                ok = sum(1 for r in runs if r["ok"])
                conn.execute(
                    "UPDATE hooks SET execution_count = COALESCE(execution_count, 0) + ?, "
                    "success_count = COALESCE(success_count, 0) + ?, failure_count = COALESCE(failure_count, 0) + ?, "
                    "last_executed = ?, metadata = ? WHERE id = ?",
                    (len(runs), ok, len(runs) - ok, int(clock.now()), json.dumps(meta, ensure_ascii=False), hook_id),
                )
    except GeminiFlowError as exc:
        warn(f"the hooks ran but their counts were not recorded: {exc.message}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."
