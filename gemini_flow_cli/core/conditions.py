"""The condition language of ``hooks add --if EXPR``: a small expression over an event's JSON.

Grammar (keywords are lower case; whitespace is free)::

    expr     := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "~") operand]
    operand  := path | STRING | NUMBER | "true" | "false" | "null" | "(" expr ")"
    path     := NAME ("." (NAME | DIGITS))*          e.g. key, context.region, tags.0

A path reads the event (a missing field is ``null``); ``tags.0`` is the first item of a list.
``==``/``!=`` compare JSON values (``1 == 1.0``; ``true`` is not ``1``); ``<``, ``<=``, ``>``,
``>=`` compare two numbers or two strings and are false otherwise; ``a ~ "user-*"`` is a glob
match (``*``, ``?``, ``[...]``, case-sensitive) of a string against a pattern, false when either
side is not a string. An operand alone is true unless it is null, false, 0, "" or empty.
Strings are in double or single quotes with JSON's backslash escapes (``\\"``, ``\\\\``,
``\\n``, ``\\t``, ``\\u00e9``, ...) and ``\\'``.

The tokenizer and the recursive-descent parser are written by hand: nothing here reaches Python's
``eval``, so a condition can only read the event. Text that does not parse raises INVALID_INPUT
naming the position; evaluation never raises.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass
from typing import Any, Union

from gemini_flow_cli.errors import GeminiFlowError

MAX_LENGTH = 2000  # characters of a condition
MAX_DEPTH = 40  # nesting of parentheses and `not`: a parser must not recurse without end

COMPARISONS = ("==", "!=", "<=", ">=", "<", ">", "~")
KEYWORDS = {"and", "or", "not", "true", "false", "null"}


@dataclass(frozen=True)
class Path:
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Literal:
    value: Any  # str, int, float, bool or None


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Logical:
    op: str  # "and" | "or"
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


Node = Union[Path, Literal, Not, Logical, Compare]


# -- tokens ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "name", "string", "number", "op", "(", ")", "end"
    text: str
    value: Any
    position: int  # 1-based column


def _error(message: str, position: int) -> GeminiFlowError:
    return GeminiFlowError("INVALID_INPUT", f"invalid condition: {message} at position {position}",
                           details={"position": position})


def _name_char(ch: str, first: bool) -> bool:
    if ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z"):
        return True
    return not first and "0" <= ch <= "9"


_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/", "b": "\b", "f": "\f"}


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``; INVALID_INPUT on a character no token starts with."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        start = i
        if ch in "()":
            tokens.append(Token(ch, ch, None, start + 1))
            i += 1
        elif ch in "=!<>~":
            two = text[i:i + 2]
            if two in ("==", "!=", "<=", ">="):
                tokens.append(Token("op", two, None, start + 1))
                i += 2
            elif ch in "<>~":
                tokens.append(Token("op", ch, None, start + 1))
                i += 1
            else:
                raise _error(f"unexpected {ch!r} (did you mean {ch}= ?)", start + 1)
        elif ch in "\"'":
            quote, i, chars = ch, i + 1, []
            while True:
                if i >= n:
                    raise _error("unterminated string", start + 1)
                c = text[i]
                if c == quote:
                    i += 1
                    break
                if c == "\\":
                    if i + 1 < n and text[i + 1] == "u":
                        digits = text[i + 2:i + 6]
                        if len(digits) != 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                            raise _error("\\u needs four hexadecimal digits", i + 1)
                        chars.append(chr(int(digits, 16)))
                        i += 6
                        continue
                    if i + 1 >= n or text[i + 1] not in _ESCAPES:
                        raise _error("unknown escape in string", i + 1)
                    chars.append(_ESCAPES[text[i + 1]])
                    i += 2
                    continue
                chars.append(c)
                i += 1
            # JSON's \uD83D\uDE00 pairs become one character (surrogatepass keeps a lone one as it is)
            value = "".join(chars).encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
            tokens.append(Token("string", text[start:i], value, start + 1))
        elif "0" <= ch <= "9" and tokens and tokens[-1].kind == ".":
            # a list index in a path (tags.0.1): digits only, never a decimal number
            while i < n and "0" <= text[i] <= "9":
                i += 1
            tokens.append(Token("number", text[start:i], int(text[start:i]), start + 1))
        elif ch == "-" or "0" <= ch <= "9":
            i = _scan_number(text, i)
            literal = text[start:i]
            try:
                value: Any = int(literal) if all(c not in literal for c in ".eE") else float(literal)
            except ValueError:
                raise _error(f"invalid number {literal!r}", start + 1) from None
            if isinstance(value, float) and not math.isfinite(value):
                raise _error(f"number out of range {literal!r}", start + 1)
            tokens.append(Token("number", literal, value, start + 1))
        elif _name_char(ch, True):
            while i < n and _name_char(text[i], False):
                i += 1
            word = text[start:i]
            tokens.append(Token("name", word, word, start + 1))
        elif ch == ".":
            tokens.append(Token(".", ".", None, start + 1))
            i += 1
        else:
            raise _error(f"unexpected character {ch!r}", start + 1)
    tokens.append(Token("end", "", None, n + 1))
    return tokens


def _scan_number(text: str, i: int) -> int:
    n = len(text)
    if text[i] == "-":
        i += 1
    digits = i
    while i < n and text[i].isdigit() and text[i].isascii():
        i += 1
    if i == digits:
        raise _error("'-' must start a number", digits)
    if i < n and text[i] == "." and i + 1 < n and text[i + 1].isdigit():
        i += 1
        while i < n and text[i].isdigit() and text[i].isascii():
            i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and text[j].isdigit():
            i = j
            while i < n and text[i].isdigit() and text[i].isascii():
                i += 1
    return i


# -- parser ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "name" and token.text == word:
            self.index += 1
            return True
        return False

    def nest(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(f"nested deeper than {MAX_DEPTH} levels", token.position)

    def parse(self) -> Node:
        node = self.or_()
        token = self.peek()
        if token.kind != "end":
            raise _error(f"unexpected {token.text!r}", token.position)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.keyword("or"):
            node = Logical("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.keyword("and"):
            node = Logical("and", node, self.not_())
        return node

    def not_(self) -> Node:
        token = self.peek()
        if self.keyword("not"):
            self.nest(token)
            node = Not(self.not_())
            self.depth -= 1
            return node
        return self.compare()

    def compare(self) -> Node:
        left = self.operand()
        token = self.peek()
        if token.kind == "op":
            self.take()
            right = self.operand()
            return Compare(token.text, left, right)
        return left

    def operand(self) -> Node:
        token = self.take()
        if token.kind == "(":
            self.nest(token)
            node = self.or_()
            self.depth -= 1
            closing = self.take()
            if closing.kind != ")":
                raise _error("expected ')'" if closing.kind == "end" else f"expected ')' before {closing.text!r}",
                             closing.position)
            return node
        if token.kind in ("string", "number"):
            return Literal(token.value)
        if token.kind == "name":
            if token.text in ("true", "false"):
                return Literal(token.text == "true")
            if token.text == "null":
                return Literal(None)
            if token.text in KEYWORDS:
                raise _error(f"unexpected {token.text!r}", token.position)
            parts = [token.text]
            while self.peek().kind == ".":
                self.take()
                part = self.take()
                if part.kind == "name" and part.text not in KEYWORDS:
                    parts.append(part.text)
                elif part.kind == "number" and isinstance(part.value, int) and part.text.isdigit():
                    parts.append(part.text)
                else:
                    raise _error("expected a field name after '.'", part.position)
            return Path(tuple(parts))
        if token.kind == "end":
            raise _error("the condition ends too early", token.position)
        raise _error(f"unexpected {token.text!r}", token.position)


def parse(text: str) -> Node:
    """The syntax tree of ``text``; INVALID_INPUT (exit 2) naming the position when it does not
    parse, is empty, longer than :data:`MAX_LENGTH` characters or nested deeper than
    :data:`MAX_DEPTH`."""
    if not isinstance(text, str) or not text.strip():
        raise GeminiFlowError("INVALID_INPUT", "invalid condition: it is empty")
    if len(text) > MAX_LENGTH:
        raise GeminiFlowError("INVALID_INPUT", f"invalid condition: longer than {MAX_LENGTH} characters")
    return _Parser(text).parse()


# -- evaluation --------------------------------------------------------------------------------


def _lookup(event: Any, parts: tuple[str, ...]) -> Any:
    value = event
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else None
        else:
            return None
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _number(a) and _number(b):
        return a == b
    if type(a) is not type(b) and not (a is None or b is None):
        return False
    return a == b


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value != [] and value != {}


def _value(node: Node, event: Any) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Path):
        return _lookup(event, node.parts)
    return evaluate(node, event)


def evaluate(node: Node, event: Any) -> bool:
    """Whether ``node`` holds for ``event`` (a JSON value, usually an object). Never raises."""
    if isinstance(node, Logical):
        if node.op == "and":
            return evaluate(node.left, event) and evaluate(node.right, event)
        return evaluate(node.left, event) or evaluate(node.right, event)
    if isinstance(node, Not):
        return not evaluate(node.operand, event)
    if isinstance(node, Compare):
        left, right = _value(node.left, event), _value(node.right, event)
        if node.op == "==":
            return _equal(left, right)
        if node.op == "!=":
            return not _equal(left, right)
        if node.op == "~":
            return isinstance(left, str) and isinstance(right, str) and fnmatch.fnmatchcase(left, right)
        if not ((_number(left) and _number(right)) or (isinstance(left, str) and isinstance(right, str))):
            return False
        if node.op == "<":
            return left < right
        if node.op == "<=":
            return left <= right
        if node.op == ">":
            return left > right
        return left >= right
    return _truthy(_value(node, event))


def matches(text: str | None, event: Any) -> bool:
    """Whether the condition ``text`` holds for ``event``; no condition (None) always holds."""
    return True if text is None else evaluate(parse(text), event)


# -- the canonical text (for round trips and for showing a stored condition) ---------------------

_PRECEDENCE = {"or": 1, "and": 2}


def format_node(node: Node, parent: int = 0) -> str:
    """``node`` as condition text that parses back to the same tree."""
    if isinstance(node, Literal):
        value = node.value
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return json.dumps(value, ensure_ascii=False)
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(node, Path):
        return ".".join(node.parts)
    if isinstance(node, Not):
        text = "not " + format_node(node.operand, 3)
        return f"({text})" if parent >= 4 else text
    if isinstance(node, Compare):
        text = f"{format_node(node.left, 4)} {node.op} {format_node(node.right, 4)}"
        return f"({text})" if parent >= 4 else text
    level = _PRECEDENCE[node.op]
    # Left-associative: the right side at the same level needs parentheses.
    text = f"{format_node(node.left, level)} {node.op} {format_node(node.right, level + 1)}"
    return f"({text})" if parent > level else text
