"""Searching memory by key pattern: glob semantics, the SQL that serves them, and the result shape.

Patterns follow Python's ``fnmatch.fnmatchcase`` exactly (the documented semantics):

- ``*`` any run of characters (``/`` included), ``?`` one character;
- ``[abc]``, ``[a-z]`` one character of a set, ``[!abc]`` one character not in it;
- ``[^abc]`` is *not* negation: ``^`` is an ordinary member of the set (fnmatch's rule);
- a ``[`` without a closing ``]`` is a literal ``[``; ``]`` outside a set is literal;
- every other character (``%``, ``_``, ``'``, ``"``, ``\\``) is literal: there is no escape character.

SQLite's ``GLOB`` differs on two points (``[^...]`` negates, ``[!...]`` does not; an unmatched ``[``
matches nothing), so :func:`to_glob` rewrites a pattern into a GLOB pattern with the meaning above.
We keep ``GLOB`` rather than matching in Python because SQLite turns a literal prefix of a GLOB
pattern into an index range (``key >= 'agent-' AND key < 'agent.'``), which is what makes a prefix
search over a million keys take milliseconds.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gemini_flow_cli.core import changes, clock
from gemini_flow_cli.errors import GeminiFlowError

SORT_COLUMNS = ("key", "created_at", "updated_at", "access_count")
SORT_ORDERS = ("asc", "desc")
DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000

# Characters that must not appear as a bare member where GLOB's set syntax gives them a meaning.
_SPECIAL_IN_SET = {ord("]"), ord("-"), ord("^")}


class NeverMatches(Exception):
    """The pattern contains an empty set (``[z-a]``): no key can match it."""


def _fnmatch_set(pat: str, i: int) -> tuple[bool, list[tuple[int, int]], int] | None:
    """Parse the set starting just after the ``[`` at ``i - 1``, as CPython's fnmatch does.

    Returns (negated, codepoint intervals, index after the closing ``]``), or None when the
    ``[`` has no closing ``]`` (then it is a literal).
    """
    n = len(pat)
    j = i
    if j < n and pat[j] == "!":
        j += 1
    if j < n and pat[j] == "]":
        j += 1
    while j < n and pat[j] != "]":
        j += 1
    if j >= n:
        return None
    stuff = pat[i:j]
    if "-" not in stuff:
        chunks = [stuff]
    else:
        # fnmatch splits the set on hyphens that form ranges; the characters on either side of a
        # boundary between chunks are a range's ends, every other character is a member.
        chunks = []
        k = i + 2 if pat[i] == "!" else i + 1
        start = i
        while True:
            k = pat.find("-", k, j)
            if k < 0:
                break
            chunks.append(pat[start:k])
            start = k + 1
            k = k + 3
        chunk = pat[start:j]
        if chunk:
            chunks.append(chunk)
        else:
            chunks[-1] += "-"
        # fnmatch removes empty (reversed) ranges by merging the chunks around them.
        for k in range(len(chunks) - 1, 0, -1):
            if chunks[k - 1][-1] > chunks[k][0]:
                chunks[k - 1] = chunks[k - 1][:-1] + chunks[k][1:]
                del chunks[k]
    # The regex class fnmatch would build is '-'.join(chunks): between chunks a range.
    flat: list[tuple[str, bool]] = []  # (character, is a range operator before it)
    for index, chunk in enumerate(chunks):
        for position, char in enumerate(chunk):
            flat.append((char, index > 0 and position == 0))
    # Like fnmatch, negation is decided on the set *after* empty ranges were removed: `[?-/!]`
    # becomes `[!]`, a negated empty set, which matches any one character.
    negated = bool(flat) and flat[0][0] == "!"
    if negated:
        flat = flat[1:]
    intervals: list[tuple[int, int]] = []
    position = 0
    while position < len(flat):
        char = flat[position][0]
        if position + 1 < len(flat) and flat[position + 1][1]:
            intervals.append((ord(char), ord(flat[position + 1][0])))
            position += 2
        else:
            intervals.append((ord(char), ord(char)))
            position += 1
    return negated, intervals, j + 1


def _glob_set(negated: bool, intervals: list[tuple[int, int]]) -> str:
    """A GLOB set with exactly these members; ``]``, ``-`` and ``^`` placed where they are literal."""
    specials: set[int] = set()
    plain: list[tuple[int, int]] = []
    for lo, hi in intervals:
        # Split the special characters out of ranges so that they can be placed safely.
        start = lo
        for special in sorted(s for s in _SPECIAL_IN_SET if lo <= s <= hi):
            if start <= special - 1:
                plain.append((start, special - 1))
            specials.add(special)
            start = special + 1
        if start <= hi:
            plain.append((start, hi))
    if not plain and not specials:
        if negated:
            return "?"  # "not one of nothing": any one character
        raise NeverMatches
    body = ""
    if ord("]") in specials:
        body += "]"  # first: literal
    if ord("-") in specials:
        body += "-"  # first, or right after a leading ']': literal (no range start before it)
    for lo, hi in plain:
        body += chr(lo) if lo == hi else f"{chr(lo)}-{chr(hi)}"
    if ord("^") in specials:
        if not body and not negated:
            return "^"  # the set is just '^': a literal outside a set
        body += "^"  # not first: literal
    return "[" + ("^" if negated else "") + body + "]"


def to_glob(pattern: str) -> str:
    """The SQLite GLOB pattern that matches exactly what ``fnmatch.fnmatchcase(key, pattern)`` does.

    Raises :class:`NeverMatches` for a pattern with an empty set.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char in "*?":
            out.append(char)
        elif char == "[":
            parsed = _fnmatch_set(pattern, i)
            if parsed is None:
                out.append("[[]")
            else:
                negated, intervals, i = parsed
                out.append(_glob_set(negated, intervals))
        else:
            out.append(char)
    return "".join(out)


def literal_prefix(pattern: str) -> str:
    """The part of a pattern before its first wildcard or set (what an index range can serve)."""
    for index, char in enumerate(pattern):
        if char in "*?[":
            return pattern[:index]
    return pattern


# Keys are at most 1024 characters; a pattern may spell a character as a set ("[aA]"), so it may
# be longer than the keys it matches, but not without bound: SQLite refuses a GLOB pattern over
# 50,000 bytes (SQLITE_MAX_LIKE_PATTERN_LENGTH), as an error, not as "no match".
MAX_PATTERN_LENGTH = 4096


class SearchOptions:
    """The seed's SearchOptions, plus tags and full text.

    ``namespaces``: only these namespaces (an API key limited to some, core/apikeys.py); None:
    no such limit. A plain class rather than a dataclass: building a dataclass costs about a
    millisecond at import, paid by every `memory search` and `list` process.
    """

    __slots__ = ("pattern", "namespace", "namespaces", "tags", "limit", "offset", "sort_by", "sort_order",
                 "include_expired", "text")

    def __init__(self, pattern: str = "*", namespace: str | None = None,
                 namespaces: tuple[str, ...] | None = None, tags: list[str] | None = None,
                 limit: int = DEFAULT_LIMIT, offset: int = 0, sort_by: str | None = None,
                 sort_order: str = "asc", include_expired: bool = False, text: str | None = None) -> None:
        self.pattern = pattern
        self.namespace = namespace
        self.namespaces = namespaces
        self.tags = [] if tags is None else tags
        self.limit = limit
        self.offset = offset
        self.sort_by = sort_by
        self.sort_order = sort_order
        self.include_expired = include_expired
        self.text = text

    def replace(self, **changes: Any) -> SearchOptions:
        """A copy with ``changes`` applied."""
        return SearchOptions(**{**{name: getattr(self, name) for name in self.__slots__}, **changes})

    def __eq__(self, other: object) -> bool:
        return type(other) is SearchOptions and all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __repr__(self) -> str:
        return f"SearchOptions({', '.join(f'{name}={getattr(self, name)!r}' for name in self.__slots__)})"

    def validate(self) -> None:
        if not isinstance(self.pattern, str):
            raise GeminiFlowError("INVALID_INPUT", "the search pattern must be text (use '*' for all keys)")
        if self.sort_by is not None and self.sort_by not in SORT_COLUMNS:
            raise GeminiFlowError(
                "INVALID_INPUT",
                f"invalid --sort-by {self.sort_by!r}: use one of {', '.join(SORT_COLUMNS)}",
            )
        if self.sort_order not in SORT_ORDERS:
            raise GeminiFlowError("INVALID_INPUT", f"invalid --sort-order {self.sort_order!r}: use asc or desc")
        if not isinstance(self.limit, int) or not 0 <= self.limit <= MAX_LIMIT:
            raise GeminiFlowError("INVALID_INPUT", f"invalid --limit {self.limit!r}: 0 to {MAX_LIMIT}")
        if not isinstance(self.offset, int) or self.offset < 0:
            raise GeminiFlowError("INVALID_INPUT", f"invalid --offset {self.offset!r}: 0 or more")
        if len(self.pattern) > MAX_PATTERN_LENGTH:
            raise GeminiFlowError(
                "INVALID_INPUT", f"a search pattern of {len(self.pattern)} characters: at most {MAX_PATTERN_LENGTH}",
                details={"maxPatternLength": MAX_PATTERN_LENGTH})
        if self.text is not None:
            if not self.text.strip():
                raise GeminiFlowError("INVALID_INPUT", "the --text query must not be empty")
            if len(self.text) > MAX_PATTERN_LENGTH or "\x00" in self.text:
                raise GeminiFlowError(
                    "INVALID_INPUT",
                    f"the --text query must be at most {MAX_PATTERN_LENGTH} characters, without NUL",
                    details={"maxPatternLength": MAX_PATTERN_LENGTH})


def where_clause(options: SearchOptions, now: int) -> tuple[str, list[Any]]:
    """The WHERE clause (without ``WHERE``) and its parameters for a glob search.

    Raises :class:`NeverMatches` when the pattern can match nothing.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if options.pattern == "":
        raise NeverMatches()  # fnmatch: '' matches only the empty key, and no key is empty
    if options.pattern != "*":
        clauses.append("m.key GLOB ?")
        params.append(to_glob(options.pattern))
    if options.namespace is not None:
        clauses.append("m.namespace = ?")
        params.append(options.namespace)
    if options.namespaces is not None:
        if not options.namespaces:
            raise NeverMatches()
        clauses.append(f"m.namespace IN ({', '.join('?' * len(options.namespaces))})")
        params.extend(options.namespaces)
    if not options.include_expired:
        clauses.append("(m.ttl IS NULL OR m.ttl > ?)")
        params.append(now)
    for tag in options.tags:
        clauses.append("EXISTS (SELECT 1 FROM json_each(m.tags) WHERE json_each.value = ?)")
        params.append(tag)
    return (" AND ".join(clauses) or "1"), params


COLUMNS = (
    "m.id, m.key, m.value, m.namespace, m.agent_id, m.swarm_id, m.ttl, m.created_at, m.updated_at, "
    "m.access_count, m.size_bytes, m.tags, m.encrypted, m.version"
)


def glob_queries(options: SearchOptions, now: int, *, few_expired: bool = False) -> tuple[str, str, list[Any], list[Any]]:
    """(page SQL, count SQL, page parameters, count parameters) of a glob search
    (``few_expired``: see :func:`count_query`)."""
    where, params = where_clause(options, now)
    column = options.sort_by or "key"
    order = options.sort_order.upper()
    # The tiebreakers make pages stable: (key, namespace) is unique.
    tiebreak = "" if column == "key" else f", m.key {order}"
    page = (
        f"SELECT {COLUMNS} FROM memory_store AS m WHERE {where} "
        f"ORDER BY m.{column} {order}{tiebreak}, m.namespace {order} LIMIT ? OFFSET ?"
    )
    count, count_params = count_query(options, now, few_expired=few_expired)
    return page, count, [*params, options.limit, options.offset], count_params


def count_query(options: SearchOptions, now: int, *, few_expired: bool = False) -> tuple[str, list[Any]]:
    """(SQL, parameters) counting a glob search's matches (its ``total``).

    Live entries are counted as every match minus the expired ones: "every match" is answered
    from an index alone ((key, namespace) or (namespace, key)), and the expired ones from the
    ttl index (the ``+`` keeps SQLite from reading them through the key index instead). A direct
    ``COUNT(*) WHERE ttl IS NULL OR ttl > now`` reads every matching row's ttl from the table:
    74 ms for a million entries against a few for the index. Only with ``few_expired`` (see
    :func:`few_expired`): reading many expired entries through the ttl index would cost more."""
    if options.include_expired or options.tags or not few_expired:
        where, params = where_clause(options, now)
        return f"SELECT COUNT(*) FROM memory_store AS m WHERE {where}", params
    every, params = where_clause(options.replace(include_expired=True), now)
    expired = every.replace("m.key GLOB ?", "+m.key GLOB ?").replace("m.namespace = ?", "+m.namespace = ?")
    return (f"SELECT (SELECT COUNT(*) FROM memory_store AS m WHERE {every}) - (SELECT COUNT(*) FROM memory_store "
            f"AS m WHERE {expired} AND m.ttl IS NOT NULL AND m.ttl <= ?)", [*params, *params, now])


# Up to this many expired entries, a search's total subtracts them (count_query).
FEW_EXPIRED = 10_000


def few_expired(conn, now: int) -> bool:
    """Whether the database holds fewer than :data:`FEW_EXPIRED` expired entries (the usual
    case: `memory cleanup` removes them), read from the ttl index, at most that many entries."""
    return conn.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM memory_store WHERE ttl IS NOT NULL AND ttl <= ? LIMIT ?)",
        (now, FEW_EXPIRED),
    ).fetchone()[0] < FEW_EXPIRED


def fts_phrase_query(text: str) -> str:
    """User text as an FTS5 query: each whitespace-separated word a quoted phrase, all required.

    Quoting makes ``"``, ``*``, ``NEAR``, ``-``, ``AND``/``OR``/``NOT`` and ``:`` plain text, so
    no user input can raise an FTS5 syntax error.
    """
    words = text.split()
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def text_queries(options: SearchOptions, now: int) -> tuple[str, str, list[Any], list[Any]]:
    """(page SQL, count SQL, params...) of a full-text search over the FTS5 index."""
    where, params = where_clause(options, now)
    match = fts_phrase_query(options.text or "")
    base = (
        "FROM memory_fts JOIN memory_store AS m ON m.id = memory_fts.rowid "
        f"WHERE memory_fts MATCH ? AND {where}"
    )
    page = f"SELECT {COLUMNS}, bm25(memory_fts) AS rank {base} ORDER BY {_text_ordering(options)} LIMIT ? OFFSET ?"
    count = f"SELECT COUNT(*) {base}"
    return page, count, [match, *params, options.limit, options.offset], [match, *params]


def _text_ordering(options: SearchOptions) -> str:
    if options.sort_by:
        order = options.sort_order.upper()
        return f"m.{options.sort_by} {order}, m.key {order}, m.namespace {order}"
    return "rank, m.key, m.namespace"


def server_text_queries(options: SearchOptions, now: int) -> tuple[str, str, list[Any], list[Any]]:
    """(page SQL, count SQL, params...) of a full-text search over PostgreSQL's GIN index (core/fts.py).

    The same query as :func:`fts_phrase_query` gives FTS5: each whitespace-separated word a phrase
    (``phraseto_tsquery``, 'simple' configuration, the word's ASCII punctuation made spaces by
    :func:`fts.query_word`), all of them required (``&&``); a word without letters or digits
    requires nothing, and a query of only such words matches nothing, as in FTS5. Each word is a
    parameter: no user text is ever part of the SQL or of tsquery syntax. ``rank`` is
    ``-ts_rank``, so that lower is better as with bm25 and :func:`relevance` reads both; ties are
    broken by key and namespace on both backends.
    """
    from gemini_flow_cli.core import fts

    where, params = where_clause(options, now)
    words = [fts.query_word(word) for word in (options.text or "").split()]
    query = " && ".join(["phraseto_tsquery('simple', ?)"] * len(words))
    document = f"{fts.PG_DOCUMENT}(m.key, m.value)"
    # encrypted = 0 is the partial index's predicate: the planner uses the index only when the
    # query implies it.
    base = (
        f"FROM memory_store AS m CROSS JOIN (SELECT {query} AS query) AS fts "
        f"WHERE {document} @@ fts.query AND m.encrypted = 0 AND {where}"
    )
    page = (f"SELECT {COLUMNS}, -ts_rank({document}, fts.query) AS rank {base} "
            f"ORDER BY {_text_ordering(options)} LIMIT ? OFFSET ?")
    count = f"SELECT COUNT(*) {base}"
    return page, count, [*words, *params, options.limit, options.offset], [*words, *params]


def relevance(bm25: float | None) -> float:
    """A bm25 rank (lower is better, <= 0) as a score in 0..1: r / (1 + r) with r = -bm25 (on
    PostgreSQL the rank is -ts_rank, so r is ts_rank)."""
    if bm25 is None:
        return 1.0
    r = max(0.0, -float(bm25))
    return round(r / (1.0 + r), 6)


def run(manager, options: SearchOptions) -> dict[str, Any]:
    """Run a search with ``manager``'s database; the seed's search result shape."""
    from gemini_flow_cli.core import fts

    options.validate()
    started = time.perf_counter()
    now = int(clock.now())
    db = manager.db
    results: list[dict[str, Any]] = []
    total = 0
    with db.read() as conn:
        if options.text is not None and not fts.is_enabled(conn):
            raise GeminiFlowError(
                "INVALID_INPUT",
                "full-text search is not enabled for this database: run `gemini-flow memory fts enable` "
                "first (it builds the index and keeps it current)",
            )
        try:
            if options.text is not None:
                queries = text_queries if db.backend == "sqlite" else server_text_queries
                page, count, page_params, count_params = queries(options, now)
            else:
                fast_total = not options.include_expired and not options.tags and few_expired(conn, now)
                page, count, page_params, count_params = glob_queries(options, now, few_expired=fast_total)
        except NeverMatches:
            page = None
        if page is not None:
            if not changes.versioned(conn):  # a database not yet migrated to 1.0.10: all at 1
                page = page.replace("m.version", "1 AS version")
            total = conn.execute(count, count_params).fetchone()[0]
            if options.limit and options.offset < total:
                cursor = conn.execute(page, page_params)
                names = [c[0] for c in cursor.description]
                decoder = manager.lenient_decoder()
                for found in cursor:
                    row = dict(zip(names, found))
                    results.append(result_item(row, decoder, relevance(row.get("rank"))))
    return {
        "results": results,
        "total": total,
        "limit": options.limit,
        "offset": options.offset,
        "executionTime": round((time.perf_counter() - started) * 1000, 3),
    }


def result_item(row: dict[str, Any], decoder, score: float = 1.0) -> dict[str, Any]:
    """One search result: the value (omitted when it cannot be decrypted), score and metadata."""
    from gemini_flow_cli.core.entries import metadata

    item: dict[str, Any] = {"key": row["key"]}
    found, value = decoder(row)
    if found:
        item["value"] = value
    item["namespace"] = row["namespace"]
    item["version"] = row["version"]
    item["score"] = score
    item["metadata"] = metadata(row)
    return item


def table_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Search results flattened for a table / CSV."""
    rows = []
    for item in results:
        meta = item["metadata"]
        if "value" in item:
            value = item["value"]
        else:
            value = "(encrypted)"
        rows.append(
            {
                "key": item["key"],
                "namespace": item["namespace"],
                "value": value if isinstance(value, str) else json.dumps(value, ensure_ascii=False),
                "tags": ",".join(meta["tags"]),
                "updatedAt": meta["updatedAt"],
                "expiresAt": meta["expiresAt"],
            }
        )
    return rows


TABLE_COLUMNS = ("key", "namespace", "value", "tags", "updatedAt", "expiresAt")
