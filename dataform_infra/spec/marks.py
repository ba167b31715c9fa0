"""Write `existing: true` marks into a spec file, keeping its comments and layout.

`dfinfra adopt` decides which objects already exist; this edits the YAML text line by line (a YAML
round-trip would drop the comments a reviewer relies on): in each marked mapping it sets an existing
`existing:` key or inserts `existing: true` under the mapping's first plain key, at that key's
indentation. The caller validates the result before anything replaces the file.
"""

from __future__ import annotations

import re
from pathlib import Path

from dataform_infra.errors import UsageError
from dataform_infra.spec.yamlsource import PathKey, YamlDocument, dotted_path, parse_yaml

MARK = "existing"


def with_marks(text: str, file: Path, mappings: list[PathKey]) -> str:
    """`text` with `existing: true` in every mapping at `mappings` (paths into the document)."""
    doc = parse_yaml(text, file)
    lines = text.splitlines(keepends=True)
    edits: dict[int, str] = {}  # 0-based line -> its replacement (the line, plus an inserted one after it)
    for path in mappings:
        index, replacement = _edit(doc, lines, path, file)
        edits[index] = replacement
    return "".join(edits.get(i, line) for i, line in enumerate(lines))


def _edit(doc: YamlDocument, lines: list[str], path: PathKey, file: Path) -> tuple[int, str]:
    mark_line = doc.lines.get((*path, MARK))
    if mark_line is not None:
        index = mark_line - 1
        line = lines[index]
        match = re.search(rf"\b{MARK}:\s*[^\s#,}}]+", line)
        if match is None:
            raise _by_hand(file, mark_line, path)
        return index, line[: match.start()] + f"{MARK}: true" + line[match.end() :]
    value = _value(doc.data, path)
    if not isinstance(value, dict):
        raise _by_hand(file, doc.line_of(path), path)
    keys = sorted(
        ((doc.lines[(*path, k)], k) for k, v in value.items() if not isinstance(v, dict | list)),
        key=lambda item: item[0],
    )
    if not keys:
        raise _by_hand(file, doc.line_of(path), path)
    line_no, key = keys[0]
    line = lines[line_no - 1]
    column = line.find(f"{key}:")
    if column < 0 or "{" in line[:column]:  # a flow mapping (`{id: x}`): no line of its own to add
        raise _by_hand(file, line_no, path)
    # After the key's whole value: a quoted or folded scalar may go on over the lines below its key.
    last = _value_end_line(lines, path, key) or line_no
    after = lines[last - 1]
    newline = "\n" if after.endswith("\n") else ""
    return last - 1, (after if newline else after + "\n") + " " * column + f"{MARK}: true" + ("\n" if newline else "")


def _value_end_line(lines: list[str], path: PathKey, key: str) -> int | None:
    """The last line (1-based) of `key`'s value in the mapping at `path`."""
    import yaml

    node = yaml.compose("".join(lines), Loader=yaml.SafeLoader)
    for step in path:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            node = next((v for k, v in node.value if k.value == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            return None
    if not isinstance(node, yaml.MappingNode):
        return None
    value = next((v for k, v in node.value if k.value == key), None)
    if value is None:
        return None
    end = value.end_mark
    return int(end.line if end.column == 0 else end.line + 1)


def _value(data: object, path: PathKey) -> object:
    for step in path:
        if isinstance(data, dict) and isinstance(step, str):
            data = data.get(step)
        elif isinstance(data, list) and isinstance(step, int) and step < len(data):
            data = data[step]
        else:
            return None
    return data


def _by_hand(file: Path, line: int | None, path: PathKey) -> UsageError:
    where = f"{file}:{line}" if line else str(file)
    return UsageError(
        f"{where}: {dotted_path(path)} is not written as a block mapping, so dfinfra cannot add "
        f"`{MARK}: true` to it without rewriting your layout; add it there by hand"
    )
