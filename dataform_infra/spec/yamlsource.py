"""Load one YAML file into plain data plus a map from field path to line number.

PyYAML's safe loader silently keeps the last of two duplicate keys and expands aliases without
bound; neither is acceptable for a file that decides IAM. We compose the node graph ourselves so
that every value keeps its source line, duplicate keys are an error, and anchors/aliases (the
"billion laughs" vector, and a readability trap in review) are refused outright.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from dataform_infra.errors import Problem, SpecError

MAX_SPEC_BYTES = 1_000_000
# libyaml's parser when PyYAML was built with it (the wheels are): ~10x faster on large specs.
_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE_LOADER):  # type: ignore[misc]
    """The safe loader, remembering the tag of each plain scalar it resolved: a spec repeats its keys and
    names thousands of times, and the resolver (Python, even under libyaml) was a fifth of a 1 MB load."""

    _plain: ClassVar[dict[str, str]] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit == (True, False):
            tag = self._plain.get(value)
            if tag is None:
                tag = self._plain[value] = super().resolve(kind, value, implicit)
                if len(self._plain) > 100_000:  # bounded: a class-wide cache outlives one spec
                    self._plain.clear()
            return tag
        return super().resolve(kind, value, implicit)


_LOADER = _Loader
MAX_DEPTH = 32
_STR = "tag:yaml.org,2002:str"
MAX_INT_DIGITS = 30  # project numbers have 12; nothing in a spec needs more

PathKey = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """Parsed data of one spec file and where each field came from."""

    file: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int | None:
        """Line of the deepest known prefix of `path` (a missing field points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def _fail(file: Path, message: str, line: int | None = None, path: str = "") -> SpecError:
    return SpecError([Problem(file=file, path=path, message=message, line=line)])


def load_yaml(file: Path) -> YamlDocument:
    try:
        size = file.stat().st_size
        if size > MAX_SPEC_BYTES:  # refused before a byte is read
            raise _fail(file, f"file is {size:,} bytes; a spec may be at most {MAX_SPEC_BYTES:,} bytes")
        with file.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise _fail(file, f"cannot read file: {exc.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise _fail(file, f"file is {len(raw):,} bytes; a spec may be at most {MAX_SPEC_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(file, f"not valid UTF-8 (byte {exc.start})", line) from None
    return parse_yaml(text, file)


def parse_yaml(text: str, file: Path) -> YamlDocument:
    if "\x00" in text:
        raise _fail(file, "contains a NUL byte; this is not a text file")
    try:
        nodes = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        raise _fail(file, f"invalid YAML: {what}", line) from None
    except yaml.YAMLError as exc:
        raise _fail(file, f"invalid YAML: {exc}") from None
    if len(nodes) > 1:
        raise _fail(file, "holds several YAML documents ('---'); put one environment in each file")
    if not nodes or nodes[0] is None:
        raise _fail(file, "is empty; an environment spec is a mapping of fields")
    doc = YamlDocument(file=file, data=None)
    doc.data = _Builder(doc).build(nodes[0], (), 0)
    if not isinstance(doc.data, dict):
        raise _fail(file, "must be a mapping of fields at the top level", nodes[0].start_mark.line + 1)
    return doc


class _Builder:
    def __init__(self, doc: YamlDocument):
        self.doc = doc
        self.constructor = yaml.SafeLoader("")
        self.seen: set[int] = set()

    def build(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        line = node.start_mark.line + 1
        self.doc.lines.setdefault(path, line)
        if depth > MAX_DEPTH:
            raise _fail(self.doc.file, f"nested deeper than {MAX_DEPTH} levels", line, dotted_path(path))
        if id(node) in self.seen:
            raise _fail(self.doc.file, "YAML aliases ('*name') are not supported; write values out", line)
        self.seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if node.tag == _STR:  # what the constructor returns for a string, without its call chain (most of a spec)
            return node.value
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value  # no spec field is a date: `git_ref: 2024-01-01` is the text written
        if node.tag == "tag:yaml.org,2002:int" and re.fullmatch(r"[-+]?0[0-9_]+", node.value):
            raise _fail(
                self.doc.file,
                f"{node.value} has a leading zero, which YAML reads as an octal number; quote it ('{node.value}')",
                line,
                dotted_path(path),
            )
        if node.tag == "tag:yaml.org,2002:int" and len(node.value) > MAX_INT_DIGITS:
            raise _fail(
                self.doc.file,
                f"number has {len(node.value)} digits (at most {MAX_INT_DIGITS})",
                line,
                dotted_path(path),
            )
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as exc:
            raise _fail(self.doc.file, f"invalid value: {exc}", line, dotted_path(path)) from None

    def _mapping(self, node: yaml.MappingNode, path: PathKey, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _fail(self.doc.file, "YAML merge keys ('<<') are not supported", line, dotted_path(path))
            if not isinstance(key_node, yaml.ScalarNode):
                raise _fail(self.doc.file, "mapping keys must be plain strings", line, dotted_path(path))
            key = key_node.value
            if key in result:
                first = self.doc.lines.get((*path, key))
                raise _fail(
                    self.doc.file,
                    f"duplicate key {key!r} (first defined on line {first})",
                    line,
                    dotted_path(path),
                )
            self.doc.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result


def dotted_path(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
