"""Terraform's native syntax (`.tf`) read with tree-sitter's HCL grammar, for `lint`.

tree-sitter parses in C: reading the shipped modules costs a few milliseconds, where a pure-Python
parser cost more than everything else `lint` does. The reading has the shape python-hcl2 gives (the
shape `policy`'s adapters and Terraform's JSON syntax adapter share, and the independent parser the
tests compare it with): blocks as lists of bodies keyed by their labels, strings and labels with
their quotes, escapes as written, anything that is not a literal as `${...}`, and each block's
comments under `__comments__`.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

Document = dict[str, Any]


@functools.cache
def _parser() -> Parser:
    import tree_sitter
    import tree_sitter_hcl

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_hcl.language()))


def read(text: str) -> Document:
    """The document `text` holds; ValueError naming the line and column of the first syntax error.

    The tree-sitter grammar (tree-sitter-hcl 1.2) misreads a little valid HCL, numbers with an exponent
    but no fraction (`1e3`, `2e-3`): it fails on them, or worse, reads `n = 1e3` followed by a block as
    `n = 1` and a block of type `e3`. A file it cannot read, or holding such a number, is read by
    python-hcl2 (slower, but only then); it is bad input only when neither can read it."""
    source = text.encode("utf-8")
    tree = _parser().parse(source)
    root = tree.root_node
    if root.has_error:
        return _read_with_python_hcl2(text, _first_error(root))
    if _EXPONENT.search(source) and _splits_a_number(root, source):
        return _read_with_python_hcl2(text, "a number with an exponent the reader cannot read")
    document: Document = {}
    try:
        for child in root.named_children:
            if child.type == "body":
                _read_body(child, document)
    except RecursionError:
        raise ValueError("blocks or values nested too deeply to read") from None
    return document


_EXPONENT = re.compile(rb"[0-9][eE]")  # cheap: most files hold none, and skip the walk below


def _splits_a_number(node: Node, source: bytes) -> bool:
    """Does the grammar end a number just before an exponent (`1` of `1e3`)?"""
    if node.type == "numeric_lit":
        return source[node.end_byte : node.end_byte + 1] in (b"e", b"E")
    return any(_splits_a_number(child, source) for child in node.named_children)


def _read_with_python_hcl2(text: str, error: str) -> Document:
    import hcl2
    from lark.exceptions import LarkError

    try:
        document: Document = hcl2.loads(text)
    except (LarkError, RecursionError, RuntimeError, ValueError, TypeError):  # its ways of saying "bad input"
        raise ValueError(error) from None
    document.pop("__comments__", None)  # the file's own comments: tree-sitter's reading leaves them out too
    return document


def _first_error(node: Node) -> str:
    for child in node.children:
        if child.type == "ERROR" or child.is_missing or child.has_error:
            return _first_error(child)
    if node.is_missing:
        return f"{_where(node)}: `{node.type}` expected"
    near = _text(node).split("\n", 1)[0][:40]
    return f"{_where(node)}: unexpected `{near}`"


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8")


# The keys a reading adds to a block's body (python-hcl2's names; tree-sitter's reading uses the first two).
READING_KEYS = frozenset({"__comments__", "__is_block__", "__inline_comments__", "__start_line__", "__end_line__"})


def _read_body(body: Node, into: Document) -> None:
    """Attributes and blocks into `into`. A name given twice as an attribute, or as an attribute and a block,
    is an error (Terraform refuses both; the reading would keep only one of them)."""
    attributes: set[str] = set()
    for item in body.named_children:
        if item.type == "attribute":
            name = _text(item.named_children[0])
            if name in READING_KEYS:
                raise ValueError(f"{_where(item)}: `{name}` is a name the reader uses itself; rename it to lint")
            if name in into:
                raise ValueError(f"{_where(item)}: `{name}` is given twice (or clashes with a block)")
            attributes.add(name)
            into[name] = _value(item.named_children[-1])
        elif item.type == "block":
            kind = _text(item.named_children[0])
            if kind in attributes:
                raise ValueError(f"{_where(item)}: `{kind}` is both an attribute and a block")
            _read_block(item, into)


def _where(node: Node) -> str:
    row, column = node.start_point
    return f"line {row + 1}, column {column + 1}"


def _read_block(block: Node, into: Document) -> None:
    """`type "label" ... { body }` as python-hcl2 nests it: into[type] is a list, labels key nested dicts."""
    parts = [c for c in block.named_children if c.type in ("identifier", "string_lit")]
    kind, labels = _text(parts[0]), [_text(p) for p in parts[1:]]
    content: Document = {}
    for child in block.named_children:
        if child.type == "body":
            _read_body(child, content)
    comments = [{"value": _comment(c)} for c in _own_comments(block)]
    if comments:
        content["__comments__"] = comments
    content["__is_block__"] = True
    nested: Any = content
    for label in reversed(labels):
        nested = {label: nested}
    into.setdefault(kind, []).append(nested)


def _own_comments(block: Node) -> list[Node]:
    """The comments between `block`'s braces, outside its nested blocks and inside no attribute's value
    (python-hcl2 keeps those apart too): an opt-in is written on a line of its own in the block."""
    found: list[Node] = []
    for child in block.named_children:
        if child.type == "comment":
            found.append(child)
        elif child.type == "body":
            found += [c for c in child.named_children if c.type == "comment"]
    return found


def _comment(node: Node) -> str:
    text = _text(node)
    for opening, closing in (("/*", "*/"), ("#", ""), ("//", "")):
        if text.startswith(opening):
            return text[len(opening) : len(text) - len(closing)].strip()
    return text.strip()


_NUMBER = re.compile(r"-?[0-9]+")
_NEGATIVE = re.compile(r"-\s*[0-9]+(\.[0-9]+)?")


def _value(node: Node) -> Any:
    """A literal as its Python value (strings keep their quotes); anything else as `${...}`."""
    while node.type == "expression" and node.named_child_count == 1:  # the one part it stands for
        node = node.named_children[0]
    kind = node.type
    if kind == "literal_value":
        return _literal(node.named_children[0])
    if kind == "operation" and _NEGATIVE.fullmatch(_text(node)):
        return _number(node, _text(node).replace(" ", ""))  # `-1` is an operation in the grammar, a number to everyone
    if kind == "collection_value":
        collection = node.named_children[0]
        if collection.type == "tuple":
            return [_value(c) for c in collection.named_children if c.type == "expression"]
        return {
            _key(elem.named_children[0]): _value(elem.named_children[-1])
            for elem in collection.named_children
            if elem.type == "object_elem"
        }
    if kind == "variable_expr":
        return _text(node)  # a bare name (`provider = google-beta`) is a keyword to Terraform, not a reference
    if kind == "template_expr":
        template = node.named_children[0]  # a heredoc is quoted whole, as python-hcl2 quotes it
        return _text(template) if template.type == "quoted_template" else f'"{_text(template)}"'
    return "${" + _expression(node) + "}"


def _literal(node: Node) -> Any:
    text = _text(node)
    if node.type == "numeric_lit":
        return _number(node, text)
    if node.type == "bool_lit":
        return text == "true"
    if node.type == "null_lit":
        return None
    return text  # string_lit, with its quotes


def _number(node: Node, text: str) -> int | float:
    try:
        return int(text) if _NUMBER.fullmatch(text) else float(text)
    except ValueError:  # the grammar takes `0x10` for a number; HCL has decimal numbers only
        raise ValueError(f"{_where(node)}: `{text}` is not a number") from None


def _key(node: Node) -> str:
    """An object key: a bare name as written, a quoted one with its quotes."""
    value = _value(node)
    return value if isinstance(value, str) else str(value)


def _expression(node: Node) -> str:
    """An expression's text in one line, collections and calls spaced as python-hcl2 spaces them (so
    `toset([...])` over several lines reads as the literal list it is)."""
    kind = node.type
    if kind in ("literal_value", "template_expr") or node.child_count == 0:
        return _text(node)  # a string keeps its spaces
    if kind == "function_call":
        name = _text(node.named_children[0])
        arguments = next((c for c in node.named_children if c.type == "function_arguments"), None)
        listed = (
            [] if arguments is None else [_expression(c) for c in arguments.named_children if c.type == "expression"]
        )
        return f"{name}({', '.join(listed)})"
    if kind == "collection_value":
        collection = node.named_children[0]
        if collection.type == "tuple":
            return "[" + ", ".join(_expression(c) for c in collection.named_children if c.type == "expression") + "]"
        elems = [e for e in collection.named_children if e.type == "object_elem"]
        return (
            "{"
            + ", ".join(f"{_expression(e.named_children[0])} = {_expression(e.named_children[-1])}" for e in elems)
            + "}"
        )
    return _joined(node)


def _joined(node: Node) -> str:
    """The expression's tokens, comments left out, one space wherever the source had any."""
    parts: list[str] = []
    end: int | None = None
    for child in node.children:
        if child.type == "comment":
            continue
        if end is not None and child.start_byte > end:
            parts.append(" ")
        parts.append(_expression(child))
        end = child.end_byte
    return "".join(parts)
