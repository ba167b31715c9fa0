"""How Python values become HCL text, safely and in `terraform fmt` layout.

Every `{{ ... }}` in a template goes through `to_hcl` (installed as Jinja's `finalize`), so a
template cannot forget to escape: plain strings always become quoted HCL string literals with
`"`, `\\`, control characters and the template sequences `${` / `%{` escaped. Only values of
the two marker types below, which the renderer builds from validated identifiers, reach the
output verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_REFERENCE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\])*")


class Ident(str):
    """A Terraform identifier (resource name, attribute name): emitted as is."""

    def __new__(cls, value: str) -> Ident:
        if not _IDENT.fullmatch(value):
            raise ValueError(f"not an HCL identifier: {value!r}")
        return super().__new__(cls, value)


class Expr(str):
    """A trusted HCL expression built by the renderer: a reference or a quoted template of references."""

    @classmethod
    def ref(cls, *parts: str) -> Expr:
        text = ".".join(parts)
        if not _REFERENCE.fullmatch(text):
            raise ValueError(f"not an HCL reference: {text!r}")
        return cls(text)

    @classmethod
    def interpolate(cls, reference: Expr, suffix: str) -> Expr:
        """`"${reference}<suffix>"` with the literal suffix escaped."""
        return cls.template(reference, suffix)

    @classmethod
    def template(cls, *parts: str) -> Expr:
        """A quoted HCL template: `Expr` parts become `${part}`, plain strings stay escaped literals."""
        body = "".join("${" + p + "}" if isinstance(p, Expr) else quote(p)[1:-1] for p in parts)
        return cls('"' + body + '"')


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Line separators and the bidirectional and zero-width controls: escaped, so what a reviewer sees in a pull
# request is the order the characters are in (a U+202E in a description could make HCL read otherwise).
_INVISIBLE = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)


def quote(value: str) -> str:
    """An HCL string literal whose value is exactly `value`, with no interpolation possible."""
    out = ['"']
    i = 0
    while i < len(value):
        char = value[i]
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char in "$%" and value.startswith("{", i + 1):
            out.append(char * 2 + "{")  # `$${` and `%%{` are literal `${` and `%{`
            i += 1
        elif ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 or char in _INVISIBLE:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
        i += 1
    out.append('"')
    return "".join(out)


def to_hcl(value: object) -> str:
    """Jinja `finalize`: the HCL spelling of any value a template prints."""
    if isinstance(value, (Ident, Expr)):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        items = ", ".join(f"{quote(str(k))} = {to_hcl(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(to_hcl(v) for v in value) + "]"
    raise TypeError(f"no HCL spelling for {type(value).__name__}")


def comment(text: str) -> Expr:
    """Text safe inside a `#` comment: one line, nothing that could end the comment."""
    return Expr(" ".join(str(text).split()))


def comment_block(text: str, width: int = 100, indent: int = 0) -> Expr:
    """`# `-prefixed lines wrapping `text` at `width` columns, for comments above resources (or, indented,
    inside their bodies)."""
    lines: list[str] = []
    margin = " " * indent
    for word in comment(text).split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(margin + "# " + word)
    return Expr("\n".join(lines))


# --- layout -----------------------------------------------------------------------------------

_ASSIGNMENT = re.compile(r'^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_-]*|"(?:[^"\\]|\\.)*") *= *(?P<rhs>.*)$')


def _bracket_balance(text: str) -> int:
    """Net open brackets outside string literals (what hclwrite counts to spot multi-line values)."""
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
    return depth


def layout(text: str) -> str:
    """Normalise template output to what `terraform fmt` writes.

    Aligns `=` across runs of consecutive single-line assignments (hclwrite's rule: a blank
    line, comment, block header or multi-line value ends the run), strips trailing spaces,
    squeezes repeated blank lines and blank lines after `{` / before `}`, and ends with one newline.
    """
    lines = [line.rstrip() for line in text.split("\n")]
    squeezed: list[str] = []
    for line in lines:
        if not line and (not squeezed or not squeezed[-1] or squeezed[-1].endswith("{")):
            continue
        if line.strip() == "}" and squeezed and not squeezed[-1]:
            squeezed.pop()
        squeezed.append(line)
    while squeezed and not squeezed[-1]:
        squeezed.pop()

    out: list[str] = []
    run: list[tuple[str, str, str]] = []

    def flush() -> None:
        width = max((len(indent) + len(key) for indent, key, _ in run), default=0)
        for indent, key, rhs in run:
            out.append(f"{indent}{key}{' ' * (width - len(indent) - len(key))} = {rhs}")
        run.clear()

    for line in squeezed:
        match = _ASSIGNMENT.match(line)
        if match and not match["rhs"].startswith("=") and _bracket_balance(match["rhs"]) == 0:
            run.append((match["indent"], match["key"], match["rhs"]))
            continue
        flush()
        if match and not match["rhs"].startswith("="):
            line = f"{match['indent']}{match['key']} = {match['rhs']}"
        out.append(line)
    flush()
    return "\n".join(out) + "\n"
