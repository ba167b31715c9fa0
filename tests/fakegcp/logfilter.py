"""Cloud Logging's query language, the subset alert policies use, evaluated against log entries.

Written from Google's "Logging query language" page, not from dfinfra's filter builder, so the
alerting e2e test evaluates the rendered filter instead of comparing strings: comparisons
`field = value`, `field != value` and `field : value` (has: substring, case-insensitive), joined by
`AND`, `OR` (which binds tighter than AND), `NOT` and juxtaposition (implicit AND), with parentheses;
values are double-quoted strings (backslash escapes) or bare words; a parenthesised value list `field = ("a" OR "b")`
compares against each. A field path that is missing compares unequal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>!=|<=|>=|[=:<>()])|(?P<word>[^\s=:<>()!"]+))', re.DOTALL
)
Entry = dict[str, Any]
Predicate = Callable[[Entry], bool]


class FilterError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterError(f"cannot read the filter at {text[position : position + 20]!r}")
        position = match.end()
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append((kind, value))
    return out


def _field(entry: Entry, path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too early")
        self.i += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.conjunction()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return predicate

    # Logging's precedence is not the usual one: OR binds tighter than AND (and juxtaposition), so
    # `a OR NOT b AND NOT c OR d` is `(a OR NOT b) AND (NOT c OR d)`.
    def conjunction(self) -> Predicate:
        terms = [self.disjunction()]
        while (token := self.peek()) is not None and token != ("op", ")"):
            if token == ("word", "AND"):
                self.take()
            terms.append(self.disjunction())
        return terms[0] if len(terms) == 1 else (lambda e: all(t(e) for t in terms))

    def disjunction(self) -> Predicate:
        terms = [self.negation()]
        while self.peek() == ("word", "OR"):
            self.take()
            terms.append(self.negation())
        return terms[0] if len(terms) == 1 else (lambda e: any(t(e) for t in terms))

    def negation(self) -> Predicate:
        if self.peek() == ("word", "NOT"):
            self.take()
            inner = self.negation()
            return lambda e: not inner(e)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.conjunction()
            if self.take() != ("op", ")"):
                raise FilterError("unbalanced parentheses")
            return inner
        return self.comparison()

    def values(self) -> list[str]:
        if self.peek() != ("op", "("):
            kind, value = self.take()
            if kind == "op":
                raise FilterError(f"a value is missing before {value!r}")
            return [value]
        self.take()
        found = []
        while True:
            kind, value = self.take()
            if kind == "op":
                raise FilterError(f"unexpected {value!r} in a value list")
            found.append(value)
            token = self.take()
            if token == ("op", ")"):
                return found
            if token != ("word", "OR"):
                raise FilterError("a value list is values joined by OR")

    def comparison(self) -> Predicate:
        kind, path = self.take()
        if kind != "word":
            raise FilterError(f"a comparison starts with a field, not {path!r}")
        operator = self.peek()
        if operator is None or operator[0] != "op" or operator[1] in "()":
            # A bare word: a global search, which the alert filters never use.
            raise FilterError(f"{path!r} is not a comparison")
        self.take()
        wanted = self.values()
        op = operator[1]

        def check(entry: Entry) -> bool:
            actual = _field(entry, path)
            if actual is None:
                return op == "!="
            text = str(actual).lower() if isinstance(actual, bool) else str(actual)
            if op == "=":
                return text in wanted
            if op == "!=":
                return text not in wanted
            if op == ":":
                return any(w.lower() in text.lower() for w in wanted)
            raise FilterError(f"operator {op!r} is not supported here")

        return check


def compile_filter(text: str) -> Predicate:
    """A predicate over log entries (dicts as the Logging API returns them)."""
    return _Parser(text).parse()


def matches(text: str, entry: Entry) -> bool:
    return compile_filter(text)(entry)
