"""`gemini-flow memory ...`: the shared key/value memory."""

import json
import operator
from pathlib import Path
from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, memory_manager, read_input, state
from gemini_flow_cli.cli.completion import complete_key, complete_namespace
from gemini_flow_cli.core.durations import parse_duration
from gemini_flow_cli.core.memory import parse_value

app = typer.Typer(no_args_is_help=True)

Namespace = Annotated[
    Optional[str],
    typer.Option(
        "--namespace", "-n", envvar="GEMINI_FLOW_NAMESPACE", show_envvar=False,
        help="Namespace (default: 'default', or GEMINI_FLOW_NAMESPACE).", show_default=False,
        autocompletion=complete_namespace,
    ),
]


IfVersion = Annotated[
    Optional[int],
    typer.Option("--if-version", min=0, help="Only if the live entry is at this version (0: only if absent); else exit 3.",
                 show_default=False),
]


@app.command()
def store(
    key: Annotated[str, typer.Argument(help="The key (1-1024 characters, no control characters).")],
    value: Annotated[
        Optional[str],
        typer.Argument(help="JSON, or any text (stored as a string). Absent or '-': read standard input.", show_default=False),
    ] = None,
    namespace: Namespace = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Read the value from this file.", show_default=False)] = None,
    string: Annotated[bool, typer.Option("--string", help="Store VALUE as a string even if it parses as JSON.")] = False,
    ttl: Annotated[Optional[str], typer.Option("--ttl", help="Expire after this long: 90, 30s, 5m, 1h, 7d.", show_default=False)] = None,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", "-t", help="A tag (repeatable; commas split).", show_default=False)] = None,
    encrypt: Annotated[
        Optional[bool],
        typer.Option("--encrypt/--no-encrypt", help="Encrypt the value (default: the auto-encrypt patterns decide).", show_default=False),
    ] = None,
    agent: Annotated[Optional[str], typer.Option("--agent", help="Owner agent id (must exist).", show_default=False)] = None,
    swarm: Annotated[Optional[str], typer.Option("--swarm", help="Owner swarm id (must exist).", show_default=False)] = None,
    if_absent: Annotated[bool, typer.Option("--if-absent", help="Fail with exit 3 if the key exists and has not expired.")] = False,
    if_version: IfVersion = None,
) -> None:
    """Store a value under a key (insert or update).

    Every entry has a version: 1 when created, +1 on every write. --if-version N writes only when
    the live entry is at version N (0: only when absent), else exits 3 with the current version in
    error.details.version. Re-storing an encrypted entry keeps it encrypted unless --no-encrypt.

    A secret belongs on standard input or in a --file, never in an argument: every user of the
    machine sees arguments in `ps`, and the shell keeps them in its history. A value that is
    encrypted but came from the command line gets a warning on stderr.

    Example:

        gemini-flow memory store user-preferences '{"theme": "dark"}' -n user --ttl 1d -t user,prefs

        echo "build 42 passed" | gemini-flow memory store ci-status --string

        v=$(gemini-flow memory retrieve config --json | jq .version); gemini-flow memory store config '{"workers": 4}' --if-version "$v"

        printf %s "$STRIPE_KEY" | gemini-flow memory store stripe-api-key
    """
    st = state()
    text = read_input(value, file)
    seconds = parse_duration(ttl, what="ttl") if ttl is not None else None
    db = st.open_db(create=True, actor=agent)
    result = memory_manager(db, namespace).store(
        key,
        parse_value(text, force_string=string),
        ttl=seconds,
        tags=tag or (),
        encrypted=encrypt,
        agent_id=agent,
        swarm_id=swarm,
        if_absent=if_absent,
        if_version=if_version,
    )
    if result.get("encrypted") and file is None and value not in (None, "-"):
        st.out.warn(
            f"the value of {result['key']} is encrypted but was given as an argument, which other "
            "users can see in `ps` and your shell history keeps; pass secrets on standard input "
            "or with --file"
        )
    st.out.done(result, f"Stored {result['namespace']}/{result['key']} ({result['size']} bytes)")


@app.command()
def retrieve(
    key: Annotated[str, typer.Argument(help="The key to read.", autocompletion=complete_key)],
    namespace: Namespace = None,
    default: Annotated[
        Optional[str],
        typer.Option("--default", help="Print this and exit 0 when the key is missing or expired.", show_default=False),
    ] = None,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Write the stored text to this file exactly (mode 0600), no newline added.",
                     show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="With -o: replace an existing file.")] = False,
    touch: Annotated[
        bool, typer.Option("--touch", help="Also restart the entry's TTL from now (sliding expiry; a write).")
    ] = False,
) -> None:
    """Print a value: a string raw, anything else as JSON. Counts one access.

    With --json, prints the seed's envelope with metadata. A missing key exits 1 (NOT_FOUND),
    an expired one exits 1 (TTL_EXPIRED), unless --default is given; with --json the default
    then comes in an envelope too, {"key", "namespace", "value", "default": true}, its value
    read like a stored VALUE. -o FILE writes the stored string exactly (other values as compact
    JSON) with no newline added, so `store --file F` then `retrieve -o F2` gives F's bytes back.
    --touch restarts the entry's TTL (the one it was stored with) from now: a write that waits
    for the lock like one, records a "touch" change and keeps the version.

    Example:

        gemini-flow memory store user-preferences '{"theme": "dark"}' -n user

        gemini-flow memory retrieve user-preferences -n user | jq -r .theme

        gemini-flow memory retrieve ci-status --default unknown

        gemini-flow memory retrieve user-preferences -n user -o prefs.json --force

        gemini-flow memory store session-42 '{"step": 3}' --ttl 30m

        gemini-flow memory retrieve session-42 --touch
    """
    from gemini_flow_cli.cli.common import check_output_path, write_output
    from gemini_flow_cli.core.memory import dumps
    from gemini_flow_cli.errors import GeminiFlowError

    st = state()
    if output is not None:
        check_output_path(output, force)
    db = st.open_db(create=False)
    manager = memory_manager(db, namespace)
    try:
        envelope = manager.touch(key) if touch else manager.retrieve(key)
    except GeminiFlowError as exc:
        if default is None or exc.code not in ("NOT_FOUND", "TTL_EXPIRED"):
            raise
        envelope = None
    if envelope is None:
        if output is not None:
            write_output(output, default.encode("utf-8"))
        elif st.out.json_explicit or st.out.format == "jsonl":
            try:
                value = parse_value(default)
            except GeminiFlowError:
                value = default
            st.out.emit({"success": True, "key": key, "namespace": manager.namespace, "value": value,
                         "default": True})
        else:
            st.out.raw(default)
        return
    value = envelope["value"]
    if output is not None:
        text = value if isinstance(value, str) else dumps(value)
        write_output(output, text.encode("utf-8"))
        st.out.done({"success": True, "key": envelope["key"], "namespace": envelope["namespace"],
                     "path": str(output), "size": len(text.encode("utf-8"))},
                    f"Wrote {envelope['namespace']}/{envelope['key']} to {output}")
    elif st.out.json_explicit or st.out.format == "jsonl":
        st.out.emit(envelope)
    elif isinstance(value, str):
        st.out.raw(value)
    else:
        st.out.raw(json.dumps(value, ensure_ascii=False))


@app.command()
def delete(
    keys: Annotated[
        Optional[list[str]], typer.Argument(help="One or more keys.", autocompletion=complete_key, show_default=False)
    ] = None,
    namespace: Namespace = None,
    missing_ok: Annotated[bool, typer.Option("--missing-ok", help="Exit 0 even when none of the keys existed.")] = False,
    if_version: IfVersion = None,
    pattern: Annotated[
        Optional[str],
        typer.Option("--pattern", help="Delete the live entries whose keys match this glob (every namespace unless -n).",
                     show_default=False),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --pattern '*' and no -n: do not ask.")] = False,
) -> None:
    """Delete keys. Exits 1 when none of them existed, unless --missing-ok.

    --if-version N (one key) deletes only when the live entry is at version N, else exits 3
    with the current version in error.details.version. --pattern GLOB deletes every live entry
    whose key matches, in one transaction, and prints the deleted keys; an empty pattern exits 2,
    and '*' without -n empties every namespace, so it asks (or needs --yes) like clear --all.

    Example:

        gemini-flow memory delete temp-cache-123 temp-cache-124 -n cache

        gemini-flow memory delete lock --if-version 1

        gemini-flow memory delete --pattern 'tmp-*' -n cache
    """
    from gemini_flow_cli.errors import GeminiFlowError

    st = state()
    if pattern is not None:
        from gemini_flow_cli.cli.common import confirm_or_refuse

        if keys or if_version is not None:
            raise GeminiFlowError("INVALID_INPUT", "give keys or --pattern, not both (and --if-version needs one key)")
        if pattern == "*" and namespace is None:
            confirm_or_refuse("Delete every entry of every namespace?", yes)
        manager = memory_manager(st.open_db(create=False))
        deleted = manager.delete_matching(pattern, namespace=namespace)
        if not deleted and not missing_ok:
            raise GeminiFlowError("NOT_FOUND", f"no live key matches {pattern!r}", details={"pattern": pattern})
        result = {"success": True, "pattern": pattern, "deleted": deleted, "total": len(deleted)}
        if st.out.format in ("table", "csv", "jsonl"):
            st.out.emit(result, rows=deleted, columns=("key", "namespace"))
        else:
            st.out.emit(result)
        return
    if not keys:
        raise GeminiFlowError("INVALID_INPUT", "give one or more keys, or --pattern GLOB")
    db = st.open_db(create=False)
    manager = memory_manager(db, namespace)
    deleted = manager.delete(keys, if_version=if_version)
    missing = [k for k in keys if k not in deleted]
    result = {"success": True, "deleted": deleted, "missing": missing, "namespace": manager.namespace}
    if not deleted and not missing_ok:
        raise GeminiFlowError(
            "NOT_FOUND",
            f"none of the keys exist in namespace {manager.namespace!r}: {', '.join(keys)}",
            details={"missing": missing},
        )
    st.out.done(result, f"Deleted {len(deleted)} of {len(keys)} key(s) from {manager.namespace}")


@app.command()
def incr(
    key: Annotated[str, typer.Argument(help="The key of an integer value (a missing key counts as 0).",
                                       autocompletion=complete_key)],
    by: Annotated[int, typer.Option("--by", help="The integer to add (may be negative).")] = 1,
    namespace: Namespace = None,
) -> None:
    """Atomically add to an integer value and print the new value.

    A missing or expired key counts as 0 (and is created); a value that is not an integer exits 2.
    Concurrent increments never lose one. With --json: the store result plus "value".

    Example:

        gemini-flow memory incr builds-done

        gemini-flow memory incr quota-left --by -5 -n limits
    """
    st = state()
    db = st.open_db(create=True)
    result = memory_manager(db, namespace).incr(key, by)
    if st.out.json_explicit or st.out.format == "jsonl":
        st.out.emit(result)
    else:
        st.out.raw(json.dumps(result["value"]))


# -- search and list ----------------------------------------------------------------------------

Tags = Annotated[
    Optional[list[str]],
    typer.Option("--tag", "-t", help="Only entries with this tag (repeatable; all must match).", show_default=False),
]
SortBy = Annotated[
    Optional[str],
    typer.Option("--sort-by", help="key, created_at, updated_at or access_count (default: key; relevance with --text).",
                 show_default=False),
]
SortOrder = Annotated[str, typer.Option("--sort-order", help="asc or desc.")]
IncludeExpired = Annotated[bool, typer.Option("--include-expired", help="Also list entries whose TTL has passed.")]
SearchNamespace = Annotated[
    Optional[str],
    typer.Option("--namespace", "-n", help="Only this namespace (default: every namespace).", show_default=False),
]


def _emit_search(result: dict) -> None:
    from gemini_flow_cli.cli.common import emit_list
    from gemini_flow_cli.core.search import TABLE_COLUMNS, table_rows

    st = state()
    tabular = st.out.format in ("table", "csv")
    emit_list(result, "results", rows=table_rows(result["results"]) if tabular else None,
              columns=TABLE_COLUMNS if tabular else None)


@app.command()
def search(
    pattern: Annotated[
        Optional[str],
        typer.Argument(help="Glob over keys: *, ?, [abc], [a-z], [!abc]; case-sensitive. Default '*'.", show_default=False),
    ] = None,
    namespace: SearchNamespace = None,
    tag: Tags = None,
    limit: Limit = 100,
    offset: Offset = 0,
    sort_by: SortBy = None,
    sort_order: SortOrder = "asc",
    include_expired: IncludeExpired = False,
    text: Annotated[
        Optional[str],
        typer.Option("--text", help="Rank by full-text relevance over keys and values (needs `memory fts enable`).",
                     show_default=False),
    ] = None,
) -> None:
    """Find entries whose keys match a glob pattern, in every namespace unless -n.

    Patterns follow Python's fnmatch: '*' any characters ('/' too), '?' one character, '[abc]' and
    '[a-z]' one of a set, '[!abc]' one not in it. Everything else is literal, '%', '_' and
    backslash included. Expired entries are left out unless --include-expired. Reading does not
    count accesses. With --text, entries are ranked by relevance (score 0..1) instead; PATTERN
    then narrows the keys further.

    Example:

        gemini-flow memory search 'agent-*-status' -n agent --sort-by updated_at --sort-order desc

        gemini-flow memory search --text "deploy failed" --limit 5
    """
    if pattern is None and text is None:
        from gemini_flow_cli.errors import GeminiFlowError

        raise GeminiFlowError("INVALID_INPUT", "give a PATTERN (use '*' for every key) or --text QUERY")
    st = state()
    db = st.open_db(create=False)
    result = memory_manager(db).search(
        "*" if pattern is None else pattern, namespace=namespace, tags=tag or (), limit=limit, offset=offset,
        sort_by=sort_by, sort_order=sort_order, include_expired=include_expired, text=text,
    )
    _emit_search(result)


@app.command("list")
def list_(
    namespace: SearchNamespace = None,
    tag: Tags = None,
    limit: Limit = 100,
    offset: Offset = 0,
    sort_by: SortBy = None,
    sort_order: SortOrder = "asc",
    include_expired: IncludeExpired = False,
) -> None:
    """List entries: the same as `memory search '*'`, with the same options.

    Example:

        gemini-flow memory list -n cache --sort-by access_count --sort-order desc --limit 20
    """
    st = state()
    db = st.open_db(create=False)
    result = memory_manager(db).list(
        namespace=namespace, tags=tag or (), limit=limit, offset=offset, sort_by=sort_by,
        sort_order=sort_order, include_expired=include_expired,
    )
    _emit_search(result)


# -- namespaces, stats, health, cleanup, clear ------------------------------------------------


@app.command()
def watch(
    pattern: Annotated[
        Optional[str], typer.Argument(help="Glob over keys (default: every key).", show_default=False)
    ] = None,
    namespace: SearchNamespace = None,
    since: Annotated[
        Optional[int],
        typer.Option("--since", min=0, help="Start after this revision (0: every change kept; default: from now).",
                     show_default=False),
    ] = None,
    count: Annotated[
        Optional[int], typer.Option("--count", min=1, help="Stop after this many changes.", show_default=False)
    ] = None,
    timeout: Annotated[
        Optional[str],
        typer.Option("--timeout", help="Stop after this long (30s, 5m, 1h): a normal end, exit 0.", show_default=False),
    ] = None,
) -> None:
    """Print changes as they happen: one JSON line per change, in revision order.

    Each line is {"revision", "action", "key", "namespace", "version", "at"}; action is store,
    delete, expire, clear, touch or restore. Follows new changes until interrupted, --count
    changes, or --timeout. A script that restarts with --since the last revision it printed
    misses nothing; a --since older than the kept changes (changes.retention) exits 1 COMPACTED.
    No daemon: the watcher notices commits of other processes within milliseconds.

    Example:

        gemini-flow memory watch 'build-*' --since 0 --count 1

        gemini-flow memory watch -n jobs --timeout 10m | while read -r change; do echo "$change"; done
    """
    import sys

    from gemini_flow_cli.core import changes

    st = state()
    seconds = parse_duration(timeout, what="timeout") if timeout is not None else None
    db = st.open_db(create=False)
    if db.ephemeral:
        import time

        from gemini_flow_cli.core import waiting

        # No database yet (a read never creates one): wait for it to appear, then read it.
        started = time.monotonic()
        if not waiting.until(lambda: db.target is not None and db.target.exists(), db, timeout=seconds):
            return
        if seconds is not None:
            seconds = max(0.0, seconds - (time.monotonic() - started))
        st.db = None
        db = st.open_db(create=False)
    start = changes.start_revision(db, since)
    write, flush = sys.stdout.write, sys.stdout.flush
    for event in changes.follow(db, start, pattern=pattern, namespace=namespace, count=count, timeout=seconds):
        write(json.dumps(event, ensure_ascii=False) + "\n")
        flush()


@app.command()
def history(
    key: Annotated[str, typer.Argument(help="The key.", autocompletion=complete_key)],
    namespace: Namespace = None,
) -> None:
    """List the kept versions of a key, oldest first, from the change feed.

    Prints {"key", "namespace", "versions": [{"revision", "version", "action", "value", "at"}]}.
    Encrypted values are decrypted only with the key (otherwise shown as stored, with
    "decrypted": false). Changes older than changes.retention (default 7d) are no longer kept.

    Example:

        gemini-flow memory history config --json | jq '.versions[] | [.version, .value]'
    """
    st = state()
    result = memory_manager(st.open_db(create=False), namespace).history(key)
    if st.out.format in ("table", "csv"):
        rows = [{**v, "value": json.dumps(v["value"], ensure_ascii=False)} for v in result["versions"]]
        st.out.emit(result, rows=rows, columns=("revision", "version", "action", "value", "at"))
    else:
        st.out.emit(result)


@app.command()
def namespaces() -> None:
    """List namespaces with their key counts and bytes (expired entries not counted).

    Example:

        gemini-flow memory namespaces
    """
    st = state()
    db = st.open_db(create=False)
    rows = memory_manager(db).namespaces()
    st.out.emit({"namespaces": rows, "total": len(rows)}, rows=rows, columns=("namespace", "keys", "bytes"))


@app.command()
def stats(
    namespace: SearchNamespace = None,
) -> None:
    """Totals, per-namespace figures, expired entries, database and WAL size.

    Example:

        gemini-flow memory stats

        gemini-flow memory stats -n agent --json | jq .totalKeys
    """
    st = state()
    db = st.open_db(create=False)
    result = memory_manager(db).get_stats(namespace)
    if st.out.format in ("table", "csv", "jsonl"):
        rows = [{"namespace": ns, **figures} for ns, figures in result["namespaces"].items()]
        if st.out.format == "table":
            summary = {k: v for k, v in result.items() if k != "namespaces"}
            st.out.emit(summary, title="Memory")
            if rows:
                st.out.emit(rows, rows=rows, title="Namespaces")
            return
        st.out.emit(result, rows=rows)
        return
    st.out.emit(result)


@app.command()
def health(
    full: Annotated[
        bool,
        typer.Option("--full", help="Run integrity_check (every index against its table; reads the whole file) instead of quick_check."),
    ] = False,
) -> None:
    """Check the database: quick_check, journal mode, schema version, writability, free space.

    --full runs SQLite's integrity_check instead, which also finds a damaged index (one that
    makes a search miss rows) that quick_check cannot see; it reads the whole database.

    Also reports the WAL size and whether the write lock is free right now (a held lock is normal:
    health never waits for it). Unhealthy when a write cannot be made: no write permission, or
    under 2 MiB free on the disk. Exits 0 when healthy, 6 otherwise (the problems are listed on
    stderr, and in the output).

    Example:

        gemini-flow memory health || echo "memory store needs attention"

        gemini-flow memory health --full --json
    """
    from gemini_flow_cli.errors import GeminiFlowError

    st = state()
    db = st.open_db(create=False, migrate=False)  # the file as it is, not an upgraded copy
    report = memory_manager(db).health_check(full=full)
    st.out.emit(report)
    if not report["healthy"]:
        raise GeminiFlowError("CONNECTION_FAILED", "unhealthy: " + "; ".join(report["problems"]),
                              details={"problems": report["problems"]})


@app.command()
def cleanup(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count the expired entries.")] = False,
) -> None:
    """Remove expired entries (in one transaction). --dry-run only counts them.

    Each removal is an "expire" change in the change feed. Cleanup also compacts the feed:
    changes older than changes.retention (default 7d) are removed ("compactedChanges").

    Example:

        gemini-flow memory cleanup --dry-run && gemini-flow memory cleanup
    """
    import os

    from gemini_flow_cli.core import config
    from gemini_flow_cli.core.durations import parse_duration

    st = state()
    db = st.open_db(create=False)
    manager = memory_manager(db)
    retention = parse_duration(config.resolve(db, "changes.retention", os.environ)[0], what="changes.retention")
    if dry_run:
        result = manager.cleanup(dry_run=True, retention=retention)
    else:
        counted = manager.cleanup(dry_run=True, retention=retention)
        if not counted["expired"] and not counted["compactedChanges"]:
            result = {**counted, "dryRun": False}
        else:
            manager = memory_manager(st.open_db(create=True))
            with st.out.progress("Removing expired entries", total=counted["expired"]) as bar:
                result = manager.cleanup(progress=bar.advance, retention=retention)
    verb = "would remove" if dry_run else "removed"
    count = result["expired"] if dry_run else result["removed"]
    compacted = result["compactedChanges"]
    st.out.done(result, f"Cleanup {verb} {count} expired entr{'y' if count == 1 else 'ies'}"
                        + (f" and {'would compact' if dry_run else 'compacted'} {compacted} change(s)" if compacted else ""))


@app.command()
def clear(
    namespace: Annotated[
        Optional[str], typer.Option("--namespace", "-n", help="The namespace to empty.", show_default=False)
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Empty every namespace.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (required without a terminal).")] = False,
) -> None:
    """Delete every entry of a namespace (-n NS), or of all namespaces (--all).

    Asks first on a terminal; without one, --yes is required (else exit 2, nothing deleted).
    GEMINI_FLOW_NAMESPACE is deliberately not used here: what to delete must be on the command line.

    Example:

        gemini-flow memory clear -n cache --yes
    """
    from gemini_flow_cli.cli.common import confirm_or_refuse
    from gemini_flow_cli.errors import GeminiFlowError

    if (namespace is None) == (not all_):
        raise GeminiFlowError("INVALID_INPUT", "give exactly one of -n NAMESPACE or --all")
    st = state()
    target = "every namespace" if all_ else f"namespace {namespace!r}"
    confirm_or_refuse(f"Delete every entry of {target}?", yes)
    db = st.open_db(create=False)
    if not db.ephemeral:  # a missing database has nothing to clear: it is not created for that
        db = st.open_db(create=True)
    result = memory_manager(db).clear(namespace, all_namespaces=all_)
    st.out.done(result, f"Deleted {result['deleted']} entr{'y' if result['deleted'] == 1 else 'ies'} from {target}")


# -- batch --------------------------------------------------------------------------------------


@app.command()
def batch(
    file: Annotated[
        Optional[str], typer.Argument(help="A file of operations; absent or '-': standard input.", show_default=False)
    ] = None,
    namespace: Namespace = None,
) -> None:
    """Run store / retrieve / delete operations in one transaction.

    Input: {"operations": [...]} (the seed's shape) or JSON Lines, one operation per line:
    {"action": "store", "key": K, "value": V, "namespace"?, "ttl"? (seconds or 30s/5m/1h/7d),
    "tags"?, "encrypted"?, "agentId"?, "swarmId"?, "ifAbsent"?}, {"action": "retrieve", "key": K},
    {"action": "delete", "key": K}. Every operation is checked before any is applied: one bad
    operation exits 2 naming its position, and nothing is applied. All writes commit together.
    A retrieve or delete of a missing key is reported as failed and does not stop the batch; an
    ifAbsent store on a live key aborts the whole batch (exit 3). -n sets the default namespace.

    Example:

        echo '{"operations": [{"action": "store", "key": "build-1", "value": {"status": "done"}}, {"action": "retrieve", "key": "build-1"}]}' | gemini-flow memory batch
    """
    import gc

    from gemini_flow_cli.cli.common import INPUT_LIMIT
    from gemini_flow_cli.core.memory import read_batch

    st = state()
    stream, source, from_stdin = _batch_input(file)
    results = _BatchResults()
    try:
        operations = read_batch(stream, source=source, limit=INPUT_LIMIT, strip_bom=from_stdin)
        manager = memory_manager(st.open_db(create=True), namespace)
        # The batch's objects (parsed operations, rows, results) hold no reference cycles: the
        # cyclic collector would only re-scan them as they pile up (~0.7 s per 200,000).
        gc.disable()
        with st.out.progress("Applying batch") as bar:
            result = manager.run_batch(operations, progress=bar.advance, sink=results.add, validated=bar.set_total,
                                       stores=results.add_stores)
        gc.enable()
        columns = ("action", "key", "namespace", "success", "value")
        if results.file is None:
            result = {"results": results.rows, **result}
            if st.out.format == "table":
                st.out.emit(result, rows=[_table_row(r) for r in results.rows], columns=columns)
            else:
                st.out.emit(result, rows=result["results"])
        elif st.out.format == "table":
            # A table is for a person on a terminal: drawn from every row, as for a small batch.
            st.out.table([_table_row(json.loads(line)) for line in results.lines()], columns)
        else:
            st.out.emit_encoded(result, "results", results.blocks(), columns=results.columns)
        if st.out.format == "table":
            st.out.message(f"{result['succeeded']} of {result['total']} operations succeeded")
    finally:
        gc.enable()
        results.close()
        if not from_stdin:
            stream.close()


def _table_row(result: dict) -> dict:
    """A batch result as a table row: its value as compact JSON, or its error's message."""
    return {"action": result["action"], "key": result["key"], "namespace": result["namespace"],
            "success": result["success"],
            "value": json.dumps(result["value"], ensure_ascii=False) if "value" in result else
            (result["error"]["message"] if "error" in result else "")}


def _batch_input(file: str | None):
    """The batch's input as a binary stream: FILE, or standard input (absent or '-')."""
    import sys

    from gemini_flow_cli.errors import GeminiFlowError

    if file not in (None, "-"):
        path = Path(file)
        if path.is_dir():
            raise GeminiFlowError("INVALID_INPUT", f"cannot read {path}: it is a folder, not a file")
        try:
            return open(path, "rb"), str(path), False  # noqa: SIM115 - read to the end by the command
        except OSError as exc:
            raise GeminiFlowError("INVALID_INPUT", f"cannot read {path}: {exc.strerror}") from exc
    if sys.stdin is None or sys.stdin.isatty():
        raise GeminiFlowError("INVALID_INPUT", "no batch given: pass FILE, or pipe the operations on standard input")
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text-only stand-in (some test runners): already decoded
        import io

        stream = io.BytesIO(sys.stdin.read().encode("utf-8", "surrogatepass"))
    return stream, "standard input", True


# A store's result line, as json.dumps writes {"action": "store", "key", "namespace", "success": true}
# with the key and namespace given as JSON strings.
_STORE_RESULT = '{{"action": "store", "key": {}, "namespace": {}, "success": true}}\n'
_FIRST, _SECOND = operator.itemgetter(0), operator.itemgetter(1)


class _BatchResults:
    """A batch's results on their way to the output: the first 10,000 as they are, then (a large
    batch) every one encoded once, as a compact JSON line in a temporary file (mode 0600,
    deleted when closed), so that memory stays flat whatever the batch's size."""

    KEEP = 10_000

    def __init__(self):
        self.rows: list[dict] = []
        self.file = None
        self.columns: list[str] = []
        self._known: set[str] = set()

    def add_stores(self, pairs: list[tuple[str, str]]) -> None:
        """The results of stores (each succeeded), given as their (key, namespace) pairs."""
        if self.file is None:
            for done, (key, namespace) in enumerate(pairs, 1):
                self.add({"action": "store", "key": key, "namespace": namespace, "success": True})
                if self.file is not None:  # past KEEP: the rest of the part as lines, below
                    pairs = pairs[done:]
                    break
            else:
                return
        # Each line as json.dumps writes it, without a trip through the encoder, the part's lines
        # in one write, made by C loops (map), no Python step per line (their four names, which
        # every result has, are among the columns already).
        string = self._string
        self.file.write("".join(map(_STORE_RESULT.format, map(string, map(_FIRST, pairs)),
                                    map(string, map(_SECOND, pairs)))))

    def add(self, item: dict) -> None:
        for name in item:
            if name not in self._known:
                self._known.add(name)
                self.columns.append(name)
        if self.file is None:
            self.rows.append(item)
            if len(self.rows) > self.KEEP:
                import tempfile
                from json.encoder import encode_basestring

                self.file = tempfile.TemporaryFile("w+", encoding="utf-8")
                self._encode = json.JSONEncoder(ensure_ascii=False).encode
                self._string = encode_basestring
                for row in self.rows:
                    self.file.write(self._encode(row) + "\n")
                self.rows = []
        else:
            self.file.write(self._encode(item) + "\n")

    def lines(self):
        self.file.flush()
        self.file.seek(0)
        yield from self.file

    def blocks(self):
        """The lines, a megabyte of whole lines at a time (each block ends with a newline)."""
        self.file.flush()
        self.file.seek(0)
        carry = ""
        while chunk := self.file.read(1 << 20):
            chunk = carry + chunk
            cut = chunk.rfind("\n") + 1
            if cut:
                yield chunk[:cut]
            carry = chunk[cut:]
        if carry:
            yield carry

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


# -- export / import ----------------------------------------------------------------------------


@app.command()
def export(
    namespace: SearchNamespace = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write to this file (mode 0600) instead of stdout.",
                                     show_default=False)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="With -o: replace an existing file.")] = False,
) -> None:
    """Export entries as JSON Lines (lossless: tags, TTLs, owners, counters, ciphertexts as stored).

    Encrypted values are exported as their stored ciphertext, never decrypted. Expired entries
    are exported too. To stdout, the entries are read from one snapshot into a spool (memory up to
    16 MiB, then a temporary file) before they are written, so a slow reader of the pipe never
    keeps the database's WAL from being recycled. -o refuses to replace an existing file (exit 3)
    unless --force, like `backup create`.

    Example:

        gemini-flow memory export -n agent -o agent-memory.jsonl --force

        gemini-flow memory export | gzip > memory.jsonl.gz
    """
    import sys

    from gemini_flow_cli.cli.common import check_output_path
    from gemini_flow_cli.core import transfer
    from gemini_flow_cli.core.memory import validate_namespace

    st = state()
    if namespace is not None:
        validate_namespace(namespace)
    if output is not None:
        check_output_path(output, force)
    db = st.open_db(create=False)
    if output is None:
        count = _export_through_a_spool(db, namespace)
        st.out.message(f"Exported {count} entr{'y' if count == 1 else 'ies'}")
        return
    count = transfer.export_file(db, output, namespace=namespace)
    result = {"success": True, "exported": count, "path": str(output), "namespace": namespace}
    st.out.done(result, f"Exported {count} entr{'y' if count == 1 else 'ies'} to {output}")


# An export to stdout is first written here (memory up to this size, then a temporary file).
EXPORT_SPOOL_IN_MEMORY = 16 * 1024 * 1024


def _export_through_a_spool(db, namespace: str | None) -> int:
    """Export from a snapshot into a spool, end the read, then copy the spool to stdout.

    Why: a read transaction kept open while a slow consumer drains the pipe pins the WAL, which
    then grows for as long as writers write (issue 12 measured 40 MB in 40 s with 4 writers;
    benchmarks/wal_growth.py). Reading into a spool takes about as long as reading the database;
    the wait on the pipe happens after the snapshot is let go. The spool is 0600 (tempfile).
    """
    import shutil
    import sys
    import tempfile

    from gemini_flow_cli.core import transfer

    with tempfile.SpooledTemporaryFile(EXPORT_SPOOL_IN_MEMORY, mode="w+", encoding="utf-8", newline="\n") as spool:
        count = transfer.export_lines(db, spool, namespace=namespace)
        spool.seek(0)
        sys.stdout.flush()
        out = getattr(sys.stdout, "buffer", None)
        if out is None:
            shutil.copyfileobj(spool, sys.stdout, 1024 * 1024)
        else:
            # A write larger than the pipe's free space, cut short because the reader left
            # (`| head -1`), returns the count written and drops the rest without an error:
            # write what is left until the pipe refuses it (BrokenPipeError: the root answers
            # it, exit 0 and no "Exported N entries" that would not be true).
            while chunk := spool.read(1024 * 1024):
                view = memoryview(chunk.encode("utf-8"))
                while view:
                    view = view[out.write(view):]
            out.flush()
    sys.stdout.flush()
    return count


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(help="A JSON Lines export; '-' reads standard input.")],
    on_conflict: Annotated[
        str, typer.Option("--on-conflict", help="When a key exists: skip, replace, or fail (nothing imported, exit 3).")
    ] = "fail",
    owners: Annotated[
        str, typer.Option("--owners", help="keep: create the agents and swarms the file carries that are missing "
                          "here; drop: import the entries without owners.")
    ] = "keep",
) -> None:
    """Import a JSON Lines export in one transaction.

    Every line is validated first (exit 2 naming the line, 5 for a value over
    memory.maxValueSize; nothing imported), then all are applied together. Records keep their
    times, counters, tags, TTLs and owners; the agents and swarms they name travel in the file
    and are created here when missing (--owners drop imports the entries without owners).
    Encrypted values stay readable with the same key: when this database encrypted with another
    salt they are re-encrypted for it in the same transaction; a different key exits 4 and
    imports nothing. Reads the file as a stream.

    Example:

        gemini-flow memory import agent-memory.jsonl --on-conflict skip

        ssh ci cat memory.jsonl | gemini-flow memory import - --on-conflict replace
    """
    import os
    import shutil
    import sys
    import tempfile

    from gemini_flow_cli.errors import GeminiFlowError

    from gemini_flow_cli.cli.safety import sweep_leftovers
    from gemini_flow_cli.core.leftovers import import_prefix
    from gemini_flow_cli.core import transfer

    st = state()
    sweep_leftovers(st)
    spooled = None
    try:
        if file == "-":
            # Standard input is read twice (validate, then apply): spool it to a private file,
            # named with this process's id so that a run killed with -9 leaves a spool the next
            # run recognises (core/leftovers.py); SIGTERM/SIGINT unwind through the finally.
            fd, spooled = tempfile.mkstemp(prefix=import_prefix(), suffix=".jsonl")
            with os.fdopen(fd, "wb") as handle:
                shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
            path = Path(spooled)
        else:
            path = Path(file)
            if path.is_dir():
                raise GeminiFlowError("INVALID_INPUT", f"cannot read {file}: it is a folder, not a file")
            if not path.is_file():
                raise GeminiFlowError("INVALID_INPUT", f"cannot read {file}: no such file")
        manager = memory_manager(st.open_db(create=True))
        progress_context = None
        bar = None

        def validated(count: int) -> None:
            nonlocal progress_context, bar
            progress_context = st.out.progress("Importing", total=count)
            bar = progress_context.__enter__()

        def advance(n: int) -> None:
            if bar is not None:
                bar.advance(n)

        try:
            result = transfer.import_file(manager.db, path, on_conflict=on_conflict, owners=owners,
                                          max_value_size=manager.max_value_size, cipher=manager.cipher,
                                          progress=advance, on_validated=validated)
        finally:
            if progress_context is not None:
                progress_context.__exit__(None, None, None)
    finally:
        if spooled:
            os.unlink(spooled)
    st.out.done(
        result,
        f"Imported {result['imported']} of {result['records']} record(s)"
        + (f", skipped {result['skipped']}" if result["skipped"] else ""),
    )


# -- full-text index ----------------------------------------------------------------------------

fts_app = typer.Typer(no_args_is_help=True, help="Turn the full-text index (for search --text) on or off.")
app.add_typer(fts_app, name="fts")


@fts_app.command("enable")
def fts_enable() -> None:
    """Build the full-text index over keys and values, and keep it current from now on.

    Costs bulk writes a factor of 4-6 while enabled. Encrypted entries are never indexed.

    Example:

        gemini-flow memory fts enable && gemini-flow memory search --text "rollback"
    """
    from gemini_flow_cli.core import fts

    st = state()
    db = st.open_db(create=True)
    total = fts.pending_count(db)
    with st.out.progress("Building full-text index", total=total) as bar:
        result = fts.enable(db, progress=bar.advance)
    st.out.done(result, f"Full-text index enabled ({result['indexed']} entries indexed)")


@fts_app.command("disable")
def fts_disable() -> None:
    """Drop the full-text index and stop maintaining it.

    Example:

        gemini-flow memory fts disable
    """
    from gemini_flow_cli.core import fts

    st = state()
    result = fts.disable(st.open_db(create=True))
    st.out.done(result, "Full-text index disabled")


@fts_app.command("status")
def fts_status() -> None:
    """Say whether the full-text index is enabled.

    Example:

        gemini-flow memory fts status
    """
    from gemini_flow_cli.core import fts

    st = state()
    db = st.open_db(create=False)
    with db.read() as conn:
        st.out.emit(fts.status(conn))
