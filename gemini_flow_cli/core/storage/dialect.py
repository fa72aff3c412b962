"""SQLite's dialect, as gemini-flow writes it, said in PostgreSQL's.

The core writes one dialect, SQLite's, and the PostgreSQL backend (core/storage/postgres.py)
translates each statement here, once per distinct text (cached). This is not a general SQLite to
PostgreSQL translator: it covers the constructs the core uses, and tests/test_dialect.py holds
each rule. What it rewrites:

- placeholders: ``?`` and ``:name`` become psycopg's ``%s`` / ``%(name)s``; a literal ``%`` is doubled;
- ``a GLOB b`` / ``a NOT GLOB b`` become the operators ``#~#`` / ``#!~#`` that the backend defines
  over a GLOB-to-regular-expression function (SQLite's GLOB: ``*``, ``?``, ``[...]``, ``[^...]``,
  case-sensitive);
- ``LIKE`` becomes ``ILIKE`` (SQLite's LIKE ignores ASCII case);
- ``json_each(x) [alias]`` becomes ``json_array_elements_text((x)::json) AS alias(value)``;
- the schema ``backup`` (the name a restore's merge ATTACHes its backup under in SQLite) is the
  session's temporary tables that ``Connection.attach`` (core/storage/postgres.py) fills:
  ``backup.t`` / ``backup."t"`` become ``pg_temp.gf_backup_t`` / ``pg_temp."gf_backup_t"``;
- the scalar ``MAX(a, b)`` / ``MIN(a, b)`` become ``GREATEST`` / ``LEAST``;
- a unary ``+`` before a column (SQLite's way of keeping an index out of a plan) is dropped;
- ``CAST(x AS REAL)`` casts to ``DOUBLE PRECISION`` (PostgreSQL's ``REAL`` is 4 bytes);
- in DDL (``CREATE TABLE``, ``ALTER TABLE ... ADD COLUMN``): ``INTEGER`` is ``BIGINT``, ``REAL``
  ``DOUBLE PRECISION``, ``BOOLEAN`` ``BIGINT`` (stored as 0/1, as in SQLite), ``BLOB`` ``BYTEA``,
  ``TEXT`` collates as ``"C"`` (SQLite compares text by bytes), ``INTEGER PRIMARY KEY
  AUTOINCREMENT`` is an identity column, ``strftime('%s', 'now')`` is the epoch, and every table
  gets the ``rowid`` column SQLite gives it implicitly (the ``id`` of an integer key, else an
  identity), so that ``ORDER BY rowid`` keeps meaning insertion order.

Pure functions: no psycopg here, so the rules are tested without a server.
"""

from __future__ import annotations

import functools
import re

# One token: a string literal, a quoted identifier, a comment, a word, a parameter, or one char.
_TOKEN = re.compile(
    r"""
      (?P<string>'(?:[^']|'')*')
    | (?P<ident>"(?:[^"]|"")*")
    | (?P<comment>--[^\n]*)
    | (?P<named>(?<![:\w]):[A-Za-z_]\w*)
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)*)
    | (?P<number>\d+(?:\.\d*)?)
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.X | re.S,
)

GLOB_OPERATOR = "#~#"
# The SQLite schema name a restore's merge attaches its backup under, and the prefix of the
# temporary tables that stand for it on PostgreSQL (core/storage/postgres.py Connection.attach).
ATTACHED = "backup"
ATTACHED_PREFIX = "gf_backup_"
NOT_GLOB_OPERATOR = "#!~#"


def tokens(sql: str) -> list[tuple[str, str]]:
    """``sql`` as (kind, text) pairs; kinds: string, ident, comment, named, word, number, space, other."""
    return [(m.lastgroup, m.group()) for m in _TOKEN.finditer(sql)]


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """The PostgreSQL text of one SQLite statement as the core writes it (rules: module docstring).

    DDL (``CREATE TABLE``, ``ALTER TABLE``, ``CREATE INDEX``) goes through :func:`ddl` first.
    """
    head = re.sub(r"^(\s*--[^\n]*\n)*", "", sql).lstrip().upper()
    if head.startswith(("CREATE TABLE", "ALTER TABLE")):
        sql = ddl(sql)
    toks = tokens(sql)
    out: list[str] = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        upper = text.upper()
        if kind == "number" and text in ("0", "1") and _condition(out, toks, i):
            out.append("TRUE" if text == "1" else "FALSE")
        elif kind == "word" and upper.startswith("MAIN."):
            out.append(text[5:])  # SQLite's main schema: the connection's own in PostgreSQL
        elif kind == "word" and upper == "MAIN" and i + 1 < len(toks) and toks[i + 1][1] == ".":
            i += 2  # main."table"
            continue
        elif kind == "word" and upper.startswith(ATTACHED.upper() + "."):
            out.append(f"pg_temp.{ATTACHED_PREFIX}{text[len(ATTACHED) + 1:]}")  # an attached backup's table
        elif (kind == "word" and upper == ATTACHED.upper() and i + 2 < len(toks) and toks[i + 1][1] == "."
              and toks[i + 2][0] == "ident"):
            out.append(f'pg_temp."{ATTACHED_PREFIX}{toks[i + 2][1][1:]}')  # backup."table"
            i += 3
            continue
        elif kind in ("other", "named") and text[0] in "?:" and _condition(out, toks, i):
            # SQLite takes any integer as a condition; PostgreSQL wants a boolean.
            out.append("(%s <> 0)" % ("%s" if text == "?" else f"%({text[1:]})s"))
        elif kind == "other" and text == "?" and _next_kind(toks, i, space=False) == "number":
            # SQLite's numbered parameter ?N: a named one (the connection passes p1, p2, ...)
            out.append(f"%(p{toks[i + 1][1]})s")
            i += 2
            continue
        elif kind == "other" and text == "?":
            out.append("%s")
        elif kind == "other" and text == "%":
            out.append("%%")
        elif kind == "string":
            out.append(text.replace("%", "%%"))
        elif kind == "named":
            out.append(f"%({text[1:]})s")
        elif kind == "comment":
            pass
        elif kind == "word" and upper == "GLOB":
            negated = _previous_word(out) == "NOT"
            if negated:
                _drop_previous_word(out)
            out.append(NOT_GLOB_OPERATOR if negated else GLOB_OPERATOR)
        elif kind == "word" and upper == "IS" and _is_comparison(toks, i):
            # SQLite's "a IS b" compares values with NULL as a value: PostgreSQL's IS [NOT] DISTINCT FROM
            j = _next_index(toks, i)
            negated = toks[j][1].upper() == "NOT"
            out.append("IS DISTINCT FROM" if negated else "IS NOT DISTINCT FROM")
            i = j + 1 if negated else i + 1
            continue
        elif kind == "word" and upper == "INSERT" and _next_is(toks, i, "OR"):
            # INSERT OR IGNORE: PostgreSQL's ON CONFLICT DO NOTHING, at the end of the statement
            j = _next_index(toks, _next_index(toks, i))
            if toks[j][1].upper() != "IGNORE":
                raise ValueError(f"INSERT OR {toks[j][1]} has no PostgreSQL translation")
            rest = translate_tokens(toks[j + 1:])
            head, returning = _split_returning(rest)
            out.append(f"INSERT{head} ON CONFLICT DO NOTHING{returning}")
            break
        elif kind == "word" and upper == "LIKE":
            out.append("ILIKE")
        elif kind == "word" and upper in ("MAX", "MIN") and _next_is(toks, i, "("):
            end = _closing(toks, _next_index(toks, i))
            args = _split_args(toks[_next_index(toks, i) + 1:end])
            if len(args) > 1:
                out.append("GREATEST" if upper == "MAX" else "LEAST")
            else:
                out.append(text)
        elif kind == "word" and upper == "JSON_EACH" and _next_is(toks, i, "("):
            start = _next_index(toks, i)
            end = _closing(toks, start)
            inner = translate_tokens(toks[start + 1:end])
            alias, after = _alias(toks, end + 1)
            out.append(f"json_array_elements_text(({inner})::json) AS {alias or 'json_each'}(value)")
            i = after
            continue
        elif kind == "word" and upper in ("FROM", "JOIN") and _next_is(toks, i, "(") and _subquery(toks, i):
            start = _next_index(toks, i)
            end = _closing(toks, start)
            inner = translate_tokens(toks[start + 1:end])
            alias, after = _alias(toks, end + 1)
            # PostgreSQL before 16 wants every subquery in FROM named; SQLite does not.
            out.append(f"{text} ({inner}) AS {alias or 'gf_subquery'}")
            i = after
            continue
        elif kind == "other" and text == "+" and _unary(out) and _next_kind(toks, i) == "word":
            pass  # SQLite's "+column" (no index): plain column in PostgreSQL
        elif kind == "word" and upper in ("REAL", "INTEGER") and _previous_word(out) == "AS":
            out.append("DOUBLE PRECISION" if upper == "REAL" else "BIGINT")
        else:
            out.append(text)
        i += 1
    return "".join(out)


def numbered(sql: str) -> bool:
    """Whether ``sql`` uses SQLite's numbered parameters (``?1``): its parameters then go to
    psycopg as a mapping ``{"p1": ..., "p2": ...}``."""
    return re.search(r"\?\d", sql) is not None


def translate_tokens(toks: list[tuple[str, str]]) -> str:
    return translate("".join(text for _, text in toks))


def _previous_word(out: list[str]) -> str | None:
    for text in reversed(out):
        if text.strip():
            return text.upper()
    return None


def _drop_previous_word(out: list[str]) -> None:
    while out and not out[-1].strip():
        out.pop()
    out.pop()
    out.append(" ")


_CONDITION_BEFORE = ("WHEN", "AND", "OR", "WHERE", "NOT")
_CONDITION_AFTER = ("THEN", "AND", "OR", ")", "ORDER", "GROUP", "LIMIT", "HAVING", "UNION", "ELSE", "END", ";", None)


def _condition(out: list[str], toks, i: int) -> bool:
    """Whether the parameter at ``toks[i]`` stands alone as a condition (``WHEN ? THEN``)."""
    after = _next_index(toks, i)
    following = toks[after][1].upper() if after < len(toks) else None
    return _previous_word(out) in _CONDITION_BEFORE and following in _CONDITION_AFTER


def _unary(out: list[str]) -> bool:
    previous = _previous_word(out)
    return previous is None or previous in ("(", ",", "=", "AND", "OR", "NOT", "WHERE", "ON", "SELECT", "WHEN",
                                            "THEN", "ELSE", "BY")


def _next_index(toks, i: int) -> int:
    j = i + 1
    while j < len(toks) and toks[j][0] in ("space", "comment"):
        j += 1
    return j


def _next_is(toks, i: int, text: str) -> bool:
    j = _next_index(toks, i)
    return j < len(toks) and toks[j][1] == text


def _next_kind(toks, i: int, *, space: bool = True) -> str | None:
    j = _next_index(toks, i) if space else i + 1
    return toks[j][0] if j < len(toks) else None


_IS_OPERANDS = ("NULL", "TRUE", "FALSE", "DISTINCT", "UNKNOWN")


def _is_comparison(toks, i: int) -> bool:
    j = _next_index(toks, i)
    if j < len(toks) and toks[j][1].upper() == "NOT":
        j = _next_index(toks, j)
    return j < len(toks) and toks[j][1].upper() not in _IS_OPERANDS


def _split_returning(sql: str) -> tuple[str, str]:
    match = re.search(r"\sRETURNING\s", sql, re.I)
    if not match:
        return sql.rstrip().rstrip(";"), ""
    return sql[:match.start()], " " + sql[match.start():].strip()


def _subquery(toks, i: int) -> bool:
    j = _next_index(toks, _next_index(toks, i))
    return j < len(toks) and toks[j][1].upper() in ("SELECT", "WITH")


def _closing(toks, start: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``start``."""
    depth = 0
    for j in range(start, len(toks)):
        if toks[j][1] == "(":
            depth += 1
        elif toks[j][1] == ")":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced parentheses in SQL")


def _split_args(toks) -> list[list]:
    args, current, depth = [], [], 0
    for tok in toks:
        if tok[1] == "(":
            depth += 1
        elif tok[1] == ")":
            depth -= 1
        if tok[1] == "," and depth == 0:
            args.append(current)
            current = []
        else:
            current.append(tok)
    args.append(current)
    return args


_NOT_ALIASES = {"WHERE", "LEFT", "JOIN", "INNER", "ON", "AND", "OR", "ORDER", "GROUP", "LIMIT", "UNION", "CROSS"}


def _alias(toks, j: int) -> tuple[str | None, int]:
    """The table alias after a table-valued function (``json_each(x) d``, ``... AS d``)."""
    k = j
    while k < len(toks) and toks[k][0] == "space":
        k += 1
    if k < len(toks) and toks[k][0] == "word" and toks[k][1].upper() == "AS":
        k = _next_index(toks, k)
    if k < len(toks) and toks[k][0] == "word" and toks[k][1].upper() not in _NOT_ALIASES:
        return toks[k][1], k + 1
    return None, j


# -- DDL ---------------------------------------------------------------------------------------

_EPOCH = "(extract(epoch from now())::bigint)"


def ddl(sql: str) -> str:
    """A ``CREATE TABLE`` / ``ALTER TABLE`` statement's PostgreSQL column types (module docstring)."""
    sql = re.sub(r"--[^\n]*", "", sql)
    sql = re.sub(r"\(\s*strftime\('%s',\s*'now'\)\s*\)", _EPOCH, sql, flags=re.I)
    integer_key = re.search(r"\bid\s+INTEGER\s+PRIMARY\s+KEY\b", sql, re.I) is not None
    sql = re.sub(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b",
                 "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", sql, flags=re.I)
    sql = re.sub(r"\bINTEGER\s+PRIMARY\s+KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                 sql, flags=re.I)
    sql = re.sub(r"(?<![\w.])(INTEGER|BOOLEAN)\b", "BIGINT", sql, flags=re.I)
    sql = re.sub(r"(?<![\w.])REAL\b", "DOUBLE PRECISION", sql, flags=re.I)
    sql = re.sub(r"(?<![\w.])BLOB\b", "BYTEA", sql, flags=re.I)
    sql = re.sub(r"(?<![\w.])TEXT\b", 'TEXT COLLATE "C"', sql, flags=re.I)
    # Foreign keys checked at the statement, as SQLite does, but deferrable, so that a restore can
    # replace every table in one transaction (PRAGMA defer_foreign_keys: SET CONSTRAINTS ALL DEFERRED).
    sql = re.sub(r"(REFERENCES\s+\w+\s*\([^)]*\)(?:\s+ON\s+(?:DELETE|UPDATE)\s+(?:CASCADE|RESTRICT|NO\s+ACTION|"
                 r"SET\s+NULL|SET\s+DEFAULT))*)", r"\1 DEFERRABLE", sql, flags=re.I)
    match = re.match(r"\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\(", sql, re.I)
    if match:
        end = sql.rstrip().rstrip(";").rstrip()
        assert end.endswith(")")
        column = ("rowid BIGINT GENERATED ALWAYS AS (id) STORED" if integer_key
                  else "rowid BIGINT GENERATED ALWAYS AS IDENTITY")
        sql = f"{end[:-1].rstrip()},\n    {column}\n)"
    return sql
