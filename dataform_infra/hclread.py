"""Terraform's native syntax (`.tf`) read with tree-sitter's HCL grammar, for `lint`.

tree-sitter parses in C: reading the shipped modules costs a few milliseconds, where a pure-Python
parser cost more than everything else `lint` does. The reading has the shape python-hcl2 gives (the
shape `policy`'s adapters and Terraform's JSON syntax adapter share, and the independent parser the
tests compare it with): blocks as lists of bodies keyed by their labels, strings and labels with
their quotes, escapes as written, anything that is not a literal as `${...}`, and each block's
comments under `__comments__`.

`evaluate` then gives a value read that way the value Terraform would give it, where lint can know it:
templates, escapes, collections, `for` expressions, conditionals, operators and a few pure functions (`join`,
`concat`, `toset`, `format`, ...) over constants and the names in scope (`local`, `each`, `count`, iterators).
What lint cannot know (a variable, a data source, another resource's attribute, a function it does not
evaluate) is `Unknown`: a str holding the expression's text (`${var.role}`), so a rule can tell it from a
constant.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tree_sitter import Node, Parser, Tree

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


# The largest file the slow parser is given: it took 17 s and 672 MB for 2 MB, where tree-sitter reads any size
# in milliseconds. Generated modules are a few KB; a hand-written one over this is refused, never waited on.
MAX_SLOW_PARSE_BYTES = 256 * 1024


def _read_with_python_hcl2(text: str, error: str) -> Document:
    import hcl2
    from lark.exceptions import LarkError

    if len(text) > MAX_SLOW_PARSE_BYTES:
        raise ValueError(
            f"{error}; the file is {len(text):,} bytes, too large for the fallback reader "
            f"(at most {MAX_SLOW_PARSE_BYTES:,}): correct the syntax error, or split the file"
        )

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
    if kind == "template_expr" and node.named_children[0].type == "heredoc_template":
        return _text(node) + "\n"  # what follows a heredoc starts a line (`trimspace(<<EOT ... EOT\n)`)
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
    return _joined_nodes(node.children)


def _joined_nodes(children: Iterable[Node]) -> str:
    parts: list[str] = []
    end: int | None = None
    for child in children:
        if child.type == "comment":
            continue
        if end is not None and child.start_byte > end:
            parts.append(" ")
        parts.append(_expression(child))
        end = child.end_byte
    return "".join(parts)


# --- evaluation: the value Terraform gives an expression, where lint can know it ---------------------------


class Unknown(str):
    """A value lint cannot know before Terraform runs: the expression's text, `${...}` around each part it
    cannot know (`${var.role}`, `roles/${var.name}`). A str, so a rule matching a reference
    (`${google_service_account.x.email}`) still can; its type says it is not a constant."""


class Template(str):
    """A string of Terraform's JSON syntax, as JSON decoded it: a template (interpolations and directives,
    and no escapes of its own, as in a heredoc)."""


class Set(list[Any]):
    """The elements of a set (`toset`): each once, in Terraform's order (sorted)."""


class Budget:
    """What evaluating one module may cost. A `for` expression over a large collection nested in another, or
    a string doubled by each of forty locals, would otherwise hang lint; past the budget values are
    `Unknown` (a role there is then not a constant, which lint reports)."""

    def __init__(self, steps: int = 1_000_000) -> None:
        self.steps = steps

    def spend(self, steps: int = 1) -> bool:
        self.steps -= steps
        return self.steps >= 0


MAX_STRING = 1 << 20  # the longest string evaluation builds: a role or a name is far shorter
# The largest value evaluation gives, in elements (a string's hundred characters count as one): locals naming
# each other can share one list many times over (`a2 = [local.a1, local.a1]`, ...), a value far larger than
# the file, which walking or printing would never finish.
MAX_VALUE = 100_000
Scope = Mapping[str, Any]  # root name (`local`, `each`, `count`, an iterator) -> its value

_ESCAPE = re.compile(r'\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[nrt"\\])|([$%])\2\{')
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_TEMPLATE_ESCAPE = re.compile(r"([$%])\1\{")
_TRAVERSAL = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*")
_MISSING = object()


def decode(inner: str) -> str:
    """A quoted string's value from its text between the quotes: `roles/\\u006fwner` is `roles/owner` to
    Terraform, and `$${` is `${`. ValueError for an escape naming no character."""

    def one(match: re.Match[str]) -> str:
        if match[1] is None:
            return match[2] + "{"
        if match[1][0] in "uU":
            return chr(int(match[1][1:], 16))  # ValueError past U+10FFFF
        return _SIMPLE_ESCAPES[match[1]]

    return _ESCAPE.sub(one, inner)


def evaluate(raw: Any, scope: Scope, budget: Budget | None = None) -> Any:
    """The value Terraform gives `raw` (a value as `read` gives it, or a `Template`), with `scope`'s names
    known: strings decoded, templates and constant expressions folded; `Unknown` wherever lint cannot know
    the value (or it is larger than `MAX_VALUE`). Sets come back as `Set`."""
    value = _Evaluator(budget or Budget()).raw(raw, scope)
    if _size_over(value, MAX_VALUE):
        return Unknown(raw if isinstance(raw, str) and len(raw) <= 200 else "${(a value too large to evaluate)}")
    return value


def has_unknown(value: Any) -> bool:
    """Does `value` hold an `Unknown` anywhere? (A value too large to walk counts as one.)"""
    return _size_over(value, MAX_VALUE, stop_at_unknown=True)


def _size_over(value: Any, limit: int, stop_at_unknown: bool = False) -> bool:
    """Is `value` larger than `limit` elements (or, with `stop_at_unknown`, does it hold an Unknown)? Walked
    without recursion, and only as far as the answer needs."""
    stack, left = [value], limit
    while stack:
        item = stack.pop()
        if stop_at_unknown and isinstance(item, Unknown):
            return True
        left -= 1 + (len(item) // 100 if isinstance(item, str) else 0)
        if left < 0:
            return True
        if isinstance(item, list):
            stack += item
        elif isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
    return False


@functools.lru_cache(maxsize=4096)
def _parsed(source: bytes) -> Tree | None:
    tree = _parser().parse(source)
    root = tree.root_node
    if root.has_error or (_EXPONENT.search(source) and _splits_a_number(root, source)):
        return None
    return tree


def _the_expression(tree: Tree) -> Node | None:
    """The value of the one attribute `x = ...` the tree holds."""
    bodies = [c for c in tree.root_node.named_children if c.type == "body"]
    if len(bodies) != 1 or len(bodies[0].named_children) != 1:
        return None
    attribute = bodies[0].named_children[0]
    return attribute.named_children[-1] if attribute.type == "attribute" else None


def _parts(node: Node) -> list[Node]:
    return [c for c in node.children if c.type != "comment"]


def _slice(node: Node, start: int, end: int) -> str:
    """The source between two byte offsets inside `node` (whitespace kept, which the grammar's template
    literals drop)."""
    return (node.text or b"")[start - node.start_byte : end - node.start_byte].decode("utf-8")


def _number_text(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _string(value: Any) -> str:
    """A primitive as a template or `join` converts it; TypeError for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return _number_text(value)
    raise TypeError(type(value).__name__)


def _key_of(value: Any) -> str | None:
    """An object key from a value: a known primitive, as a string."""
    if isinstance(value, Unknown) or value is None:
        return None
    try:
        return _string(value)
    except TypeError:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _lazy(value: Any) -> bool:
    """A scope's own mapping (`local`): a name's root, never a value."""
    return isinstance(value, Mapping) and not isinstance(value, dict)


def pairs(collection: Any) -> list[tuple[Any, Any]] | None:
    """(key, value) of each element, as a `for` expression or `dynamic` block iterates: a list by index, a
    set by element, a map by key in lexical order; None when it is not a known collection."""
    if isinstance(collection, Unknown):
        return None
    if isinstance(collection, Set):
        return [(v, v) for v in collection]
    if isinstance(collection, list):
        return list(enumerate(collection))
    if isinstance(collection, dict):
        if any(isinstance(k, Unknown) for k in collection):
            return None
        return [(k, collection[k]) for k in sorted(collection)]
    return None


class _Evaluator:
    def __init__(self, budget: Budget) -> None:
        self.budget = budget

    # values as `read` gives them

    def raw(self, raw: Any, scope: Scope) -> Any:
        if isinstance(raw, Unknown):
            return raw
        if isinstance(raw, Template):
            return self.json_template(str(raw), scope)
        if isinstance(raw, str):
            return self.text(raw, scope)
        if isinstance(raw, list):
            return [self.raw(v, scope) for v in raw]
        if isinstance(raw, dict):
            out: dict[Any, Any] = {}
            for key, value in raw.items():
                if key not in READING_KEYS:
                    name = self.raw(key, scope)
                    out[name if isinstance(name, str) else str(name)] = self.raw(value, scope)
            return out
        return raw

    def text(self, raw: str, scope: Scope) -> Any:
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            inner = raw[1:-1]
            if raw.startswith('"<<') and "\n" in raw:  # a heredoc, which the reading quotes whole
                return self.source(inner, scope, Unknown(inner))
            if "${" not in inner and "%{" not in inner:
                try:
                    return decode(inner)
                except ValueError:
                    return Unknown(inner)
            return self.source(raw, scope, Unknown(inner))
        if raw.startswith("${") and raw.endswith("}"):
            inner = raw[2:-1]
            names = inner.split(".")
            if _TRAVERSAL.fullmatch(inner) and names[0] not in ("true", "false", "null"):  # no parse needed
                value = scope.get(names[0], _MISSING)
                for name in names[1:]:
                    value = self.attribute(value, name)
                return Unknown(raw) if value is _MISSING or isinstance(value, Unknown) or _lazy(value) else value
            return self.source(inner, scope, Unknown(raw))
        return raw  # a keyword (`provider = google-beta`)

    def source(self, text: str, scope: Scope, fallback: Unknown) -> Any:
        tree = _parsed(b"x = " + text.encode("utf-8") + b"\n")
        node = None if tree is None else _the_expression(tree)
        return fallback if node is None else self.value(node, scope)

    def json_template(self, text: str, scope: Scope) -> Any:
        if "${" not in text and "%{" not in text:
            return text
        marker = "EOT"
        while marker in text:
            marker += "X"
        tree = _parsed(f"x = <<{marker}\n{text}\n{marker}\n".encode())
        node = None if tree is None else _the_expression(tree)
        template = node.named_children[0].named_children[0] if node and node.named_child_count == 1 else None
        if template is None or template.type != "heredoc_template":
            return Unknown(text)
        items = self.heredoc_items(template)
        if not items or not isinstance(items[-1], str) or not items[-1].endswith("\n"):
            return Unknown(text)
        items[-1] = items[-1][:-1]  # the newline before the marker is the heredoc's, not the string's
        return self.combine(items, scope)

    # expressions

    def unknown(self, node: Node) -> Unknown:
        return Unknown("${" + _expression(node) + "}")

    def value(self, node: Node, scope: Scope) -> Any:
        if not self.budget.spend():
            return self.unknown(node)
        kind = node.type
        if kind in ("expression", "variable_expr"):
            return self.sequence(_parts(node) if kind == "expression" else [node], scope)
        if kind == "literal_value":
            return self.literal(node.named_children[0])
        if kind == "template_expr":
            template = node.named_children[0]
            items = self.heredoc_items(template) if template.type == "heredoc_template" else self.quoted_items(template)
            return self.unknown(node) if items is None else self.combine(items, scope)
        if kind == "collection_value":
            return self.collection(node, scope)
        if kind == "function_call":
            return self.call(node, scope)
        if kind == "for_expr":
            return self.for_expression(node.named_children[0], scope)
        if kind == "conditional":
            test, yes, no = (c for c in node.named_children if c.type == "expression")
            chosen = self.value(test, scope)
            return self.value(yes if chosen else no, scope) if isinstance(chosen, bool) else self.unknown(node)
        if kind == "operation":
            return self.operation(node.named_children[0], scope)
        return self.unknown(node)

    def sequence(self, parts: Sequence[Node], scope: Scope) -> Any:
        """A value and the traversal after it (`local.a.b[0]`, `(x).y`)."""
        unknown = Unknown("${" + _joined_nodes(parts) + "}")
        if not parts:
            return unknown
        if parts[0].type == "(":
            if len(parts) < 3:
                return unknown
            value, rest = self.value(parts[1], scope), parts[3:]
        elif parts[0].type == "variable_expr":
            value, rest = scope.get(_text(parts[0]), _MISSING), parts[1:]
        elif len(parts) == 1:
            return self.value(parts[0], scope)
        else:
            value, rest = self.value(parts[0], scope), parts[1:]
        for step in rest:
            if value is _MISSING or isinstance(value, Unknown):
                break
            value = self.step(value, step, scope)
        return unknown if value is _MISSING or isinstance(value, Unknown) or _lazy(value) else value

    def attribute(self, value: Any, name: str) -> Any:
        if isinstance(value, Mapping) and not isinstance(value, Unknown):
            try:
                return value[name]
            except KeyError:
                return _MISSING
        return _MISSING

    def step(self, value: Any, step: Node, scope: Scope) -> Any:
        if step.type == "get_attr":
            return self.attribute(value, _text(step.named_children[-1]))
        if step.type != "index" or not step.named_children:
            return _MISSING  # a splat: lint does not evaluate it
        index = step.named_children[0]
        if index.type == "legacy_index":
            key: Any = int(_text(index)[1:]) if _text(index)[1:].isdigit() else _MISSING
        else:
            key = self.value(index.named_children[0], scope) if index.named_children else _MISSING
        if isinstance(value, list) and not isinstance(value, Set) and _is_number(key) and float(key).is_integer():
            position = int(key)
            return value[position] if 0 <= position < len(value) else _MISSING
        if isinstance(value, Mapping) and _key_of(key) is not None:
            return self.attribute(value, str(_key_of(key)))
        return _MISSING

    def literal(self, node: Node) -> Any:
        text = _text(node)
        try:
            if node.type == "string_lit":
                return decode(text[1:-1])
            return _literal(node)
        except ValueError:
            return Unknown("${" + text + "}")

    def collection(self, node: Node, scope: Scope) -> Any:
        collection = node.named_children[0]
        if collection.type == "tuple":
            return [self.value(c, scope) for c in collection.named_children if c.type == "expression"]
        out: dict[str, Any] = {}
        for elem in (c for c in collection.named_children if c.type == "object_elem"):
            key_node, value_node = elem.named_children[0], elem.named_children[-1]
            parts = _parts(key_node)
            if len(parts) == 1 and parts[0].type == "variable_expr":  # a bare name is the key itself
                key: str | None = _text(parts[0])
            else:
                key = _key_of(self.value(key_node, scope))
            if key is None:
                return self.unknown(node)
            out[key] = self.value(value_node, scope)  # a repeated key: the last, as Terraform reads it
        return out

    def call(self, node: Node, scope: Scope) -> Any:
        function = _FUNCTIONS.get(_text(node.named_children[0]))
        if function is None:
            return self.unknown(node)
        arguments = next((c for c in node.named_children if c.type == "function_arguments"), None)
        values = (
            []
            if arguments is None
            else [self.value(c, scope) for c in arguments.named_children if c.type == "expression"]
        )
        if arguments is not None and any(c.type == "ellipsis" for c in arguments.children):
            if not values or not isinstance(values[-1], list):
                return self.unknown(node)
            values = [*values[:-1], *values[-1]]
        if any(has_unknown(v) for v in values):
            return self.unknown(node)
        try:
            result = function(*values)
        except (TypeError, ValueError, IndexError, KeyError, ArithmeticError, RecursionError):
            return self.unknown(node)
        too_big = isinstance(result, str) and len(result) > MAX_STRING
        if too_big or (isinstance(result, list | dict) and not self.budget.spend(len(result))):
            return self.unknown(node)
        return result

    def for_expression(self, node: Node, scope: Scope) -> Any:
        intro = next(c for c in node.named_children if c.type == "for_intro")
        names = [_text(c) for c in intro.named_children if c.type == "identifier"]
        elements = pairs(self.value(next(c for c in intro.named_children if c.type == "expression"), scope))
        condition = next((c for c in node.named_children if c.type == "for_cond"), None)
        test = None if condition is None else next(c for c in condition.named_children if c.type == "expression")
        results = [c for c in node.named_children if c.type == "expression"]  # [value] or [key, value]
        grouped = any(c.type == "ellipsis" for c in node.children)
        if elements is None or not names:
            return self.unknown(node)
        listed: list[Any] = []
        mapped: dict[str, Any] = {}
        for key, value in elements:
            if not self.budget.spend():
                return self.unknown(node)
            inner = {**scope, names[-1]: value} | ({names[0]: key} if len(names) == 2 else {})
            if test is not None:
                keep = self.value(test, inner)
                if not isinstance(keep, bool):
                    return self.unknown(node)
                if not keep:
                    continue
            if node.type == "for_tuple_expr":
                listed.append(self.value(results[0], inner))
                continue
            name = _key_of(self.value(results[0], inner))
            if name is None or (name in mapped and not grouped):  # Terraform refuses a repeated key without `...`
                return self.unknown(node)
            item = self.value(results[-1], inner)
            if grouped:
                mapped.setdefault(name, []).append(item)
            else:
                mapped[name] = item
        return listed if node.type == "for_tuple_expr" else mapped

    def operation(self, node: Node, scope: Scope) -> Any:
        parts = _parts(node)
        if node.type == "unary_operation":
            operand = self.sequence(parts[1:], scope)
            if parts[0].type == "-" and _is_number(operand):
                return -operand
            if parts[0].type == "!" and isinstance(operand, bool):
                return not operand
            return self.unknown(node)
        at = next((i for i, p in enumerate(parts) if p.type in _OPERATORS), None)
        if at is None:
            return self.unknown(node)
        left, right = self.sequence(parts[:at], scope), self.sequence(parts[at + 1 :], scope)
        if has_unknown(left) or has_unknown(right):
            return self.unknown(node)
        try:
            return _OPERATORS[parts[at].type](left, right)
        except (TypeError, ArithmeticError):
            return self.unknown(node)

    # templates

    def quoted_items(self, template: Node) -> list[str | Node] | None:
        """The template's literal text (escapes decoded) between its interpolations and directives."""
        children = template.children
        if len(children) < 2:
            return None
        return self.items(template, children[0].end_byte, children[-1].start_byte, decode)

    def heredoc_items(self, template: Node) -> list[str | Node] | None:
        """A heredoc's lines (no escapes; `<<-` strips the indentation its lines share, as Terraform does)."""
        children = template.children
        if len(children) < 3:
            return None
        text = template.text or b""
        opening = text.find(b"\n", children[1].end_byte - template.start_byte)
        closing = text.rfind(b"\n", 0, children[-1].start_byte - template.start_byte)
        if opening < 0 or closing < opening:
            return None
        start, end = template.start_byte + opening + 1, template.start_byte + closing + 1
        items = self.items(template, start, max(start, end), lambda s: s)
        if items is not None and _text(children[0]) == "<<-":
            items = _flush(items)
        return None if items is None else [_TEMPLATE_ESCAPE.sub(r"\1{", i) if isinstance(i, str) else i for i in items]

    def items(self, template: Node, start: int, end: int, literal: Callable[[str], str]) -> list[str | Node] | None:
        dynamic = [
            c
            for c in template.children
            if c.type in ("template_interpolation", "template_directive") and start <= c.start_byte < end
        ]
        items: list[str | Node] = []
        at = start
        try:
            for part in dynamic:
                items += [literal(_slice(template, at, part.start_byte)), part]
                at = part.end_byte
            items.append(literal(_slice(template, at, end)))
        except ValueError:  # an escape naming no character
            return None
        return items

    def combine(self, items: list[str | Node], scope: Scope) -> Any:
        """A template's value: one interpolation alone is its value as is; otherwise the parts as a string,
        `Unknown` if any part is."""
        text = "".join(i if isinstance(i, str) else _text(i) for i in items)
        dynamic = [i for i in items if not isinstance(i, str)]
        if any(
            d.type != "template_interpolation" or any(c.type == "strip_marker" for c in d.children) for d in dynamic
        ):
            return Unknown(text)  # a directive (`%{if}`), or `~` trimming: lint does not evaluate them
        values = [self.value(next(c for c in d.named_children if c.type == "expression"), scope) for d in dynamic]
        if len(dynamic) == 1 and not "".join(i for i in items if isinstance(i, str)):
            return values[0]
        out: list[str] = []
        known = True
        found = iter(zip(dynamic, values, strict=True))
        for item in items:
            if isinstance(item, str):
                out.append(item)
                continue
            node, value = next(found)
            if isinstance(value, Unknown):
                known = False
                out.append(str(value))
                continue
            try:
                out.append(_string(value))
            except TypeError:  # null, a list or a map: Terraform refuses it in a template
                known = False
                out.append("${" + _expression(next(c for c in node.named_children if c.type == "expression")) + "}")
        joined = "".join(out)
        if len(joined) > MAX_STRING:
            return Unknown(text)
        return joined if known else Unknown(joined)


def _flush(items: list[str | Node]) -> list[str | Node]:
    """`<<-`: each line loses the leading whitespace every line has (blank lines aside), as HCL does."""
    tokens: list[str | Node] = []
    for item in items:
        tokens += re.findall(r"[^\n]*\n|[^\n]+", item) if isinstance(item, str) else [item]
    shortest, newline, adjust = None, True, []
    for i, token in enumerate(tokens):
        if newline:
            newline = False
            spaces: int | None = 0
            if isinstance(token, str):
                trimmed = token.lstrip()
                if not trimmed and token.endswith("\n"):
                    spaces = None  # a blank line does not count
                else:
                    spaces = len(token) - len(trimmed)
                    adjust.append(i)
            if spaces is not None and (shortest is None or spaces < shortest):
                shortest = spaces
        if isinstance(token, str) and token.endswith("\n"):
            newline = True
    for i in adjust:
        token = tokens[i]
        assert isinstance(token, str)
        tokens[i] = token[shortest or 0 :]
    merged: list[str | Node] = []
    for token in tokens:
        if isinstance(token, str) and merged and isinstance(merged[-1], str):
            merged[-1] += token
        else:
            merged.append(token)
    return merged


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


def _numbers(operation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def checked(left: Any, right: Any) -> Any:
        if not (_is_number(left) and _is_number(right)):
            raise TypeError("numbers only")
        return operation(left, right)

    return checked


def _booleans(operation: Callable[[bool, bool], bool]) -> Callable[[Any, Any], bool]:
    def checked(left: Any, right: Any) -> bool:
        if not (isinstance(left, bool) and isinstance(right, bool)):
            raise TypeError("bools only")
        return operation(left, right)

    return checked


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "&&": _booleans(lambda a, b: a and b),
    "||": _booleans(lambda a, b: a or b),
    "<": _numbers(lambda a, b: a < b),
    ">": _numbers(lambda a, b: a > b),
    "<=": _numbers(lambda a, b: a <= b),
    ">=": _numbers(lambda a, b: a >= b),
    "+": _numbers(lambda a, b: a + b),
    "-": _numbers(lambda a, b: a - b),
    "*": _numbers(lambda a, b: a * b),
    "/": _numbers(lambda a, b: a / b),
    "%": _numbers(lambda a, b: a % b),
}


# --- the pure functions lint evaluates (Terraform's, on known values; any other call is Unknown) ---------


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("a list")
    return value


def _map(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("a map")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


def _toset(value: Any) -> Set:
    items = _list(value)
    if not items:
        return Set()
    if len({type(i) for i in items}) == 1 and isinstance(items[0], str | int | float | bool):
        return Set(sorted(set(items)))
    return Set(sorted({_string(i) for i in items}))  # mixed primitives unify to strings; others: TypeError


def _join(separator: Any, *lists: Any) -> str:
    if not lists:
        raise TypeError("join takes at least one list")
    return _str(separator).join(_string(x) for items in lists for x in _list(items))


def _format(spec: Any, *values: Any) -> str:
    remaining = iter(values)
    out: list[str] = []
    for piece in re.split(r"(%.)", _str(spec)):
        if piece == "%%":
            out.append("%")
        elif piece in ("%s", "%v"):
            out.append(_string(next(remaining)))
        elif piece == "%d":
            number = next(remaining)
            if not (_is_number(number) and float(number).is_integer()):
                raise TypeError("%d takes a whole number")
            out.append(str(int(number)))
        elif piece.startswith("%"):
            raise ValueError(f"lint does not evaluate {piece}")
        else:
            out.append(piece)
    if next(remaining, _MISSING) is not _MISSING:
        raise ValueError("too many arguments")
    return "".join(out)


def _replace(text: Any, old: Any, new: Any) -> str:
    if len(_str(old)) > 1 and old.startswith("/") and old.endswith("/"):
        raise ValueError("a regular expression: lint does not evaluate it")
    return _str(text).replace(old, _str(new))


def _split(separator: Any, text: Any) -> list[str]:
    if not _str(separator):
        raise ValueError("an empty separator")
    return _str(text).split(separator)


def _element(items: Any, index: Any) -> Any:
    listed = _list(items)
    if not (_is_number(index) and float(index).is_integer() and index >= 0) or not listed:
        raise IndexError("element")
    return listed[int(index) % len(listed)]


def _lookup(mapping: Any, key: Any, *default: Any) -> Any:
    found = _map(mapping)
    if _str(key) in found:
        return found[key]
    if len(default) != 1:
        raise KeyError(key)
    return default[0]


def _merge(*mappings: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for mapping in mappings:
        if mapping is not None:
            merged.update(_map(mapping))
    return merged


def _flatten(items: Any) -> list[Any]:
    return [x for item in _list(items) for x in (_flatten(item) if isinstance(item, list) else [item])]


def _distinct(items: Any) -> list[Any]:
    kept: list[Any] = []
    for item in _list(items):
        if not any(_equal(item, k) and type(item) is type(k) for k in kept):
            kept.append(item)
    return kept


def _length(value: Any) -> int:
    if not isinstance(value, str | list | dict):
        raise TypeError("length")
    return len(value)


def _coalesce(*values: Any) -> Any:
    return next(v for v in values if v is not None and v != "")  # StopIteration: none (Terraform refuses)


def _chomp(text: Any) -> str:
    return re.sub(r"(?:\r\n?|\n)*\Z", "", _str(text))


def _tostring(value: Any) -> str | None:
    return None if value is None else _string(value)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "join": _join,
    "concat": lambda *lists: [x for items in lists for x in _list(items)],
    "toset": _toset,
    "tolist": lambda value: list(_list(value)),
    "tomap": lambda value: dict(_map(value)),
    "tostring": _tostring,
    "lower": lambda text: _str(text).lower(),
    "upper": lambda text: _str(text).upper(),
    "trimspace": lambda text: _str(text).strip(),
    "chomp": _chomp,
    "format": _format,
    "replace": _replace,
    "split": _split,
    "element": _element,
    "lookup": _lookup,
    "merge": _merge,
    "flatten": _flatten,
    "distinct": _distinct,
    "keys": lambda mapping: sorted(_map(mapping)),
    "values": lambda mapping: [mapping[k] for k in sorted(_map(mapping))],
    "length": _length,
    "coalesce": _coalesce,
}
