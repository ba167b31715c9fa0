"""The lint reader: Facts from any `.tf` / `.tf.json` files, read as Terraform reads them (override files merged in
last, constant expressions evaluated by `hclread.evaluate`, what lint cannot know kept as an `hclread.Unknown`),
and `lint`, which checks a directory of them against the rules. It never renders: it stays free of the spec and
render layers' import cost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal

from dataform_infra import hclread
from dataform_infra.errors import UsageError, shown
from dataform_infra.policy.facts import Fact, Finding
from dataform_infra.policy.rules import check


def _label(raw: str) -> str:
    """A block's type or name label as written (quoted in `.tf`, bare in `.tf.json`)."""
    return hclread.decode(raw[1:-1]) if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw


def _is_override(file_name: str) -> bool:
    """`override.tf`, `*_override.tf` (and their `.tf.json`): Terraform merges them into the blocks they name."""
    stem = PurePath(file_name).name.removesuffix(".json").removesuffix(".tf")
    return stem == "override" or stem.endswith("_override")


@dataclass
class _Block:
    """A `resource` or `data` block as Terraform reads it: its body as read, with every override merged in."""

    kind: Literal["resource", "data"]
    type: str
    name: str
    body: dict[str, Any]
    file: str
    overridden_in: list[str] = field(default_factory=list)

    def override(self, body: Mapping[str, Any], file_name: str) -> None:
        """Terraform's merge: each argument the override sets replaces the base's; each nested block type it
        writes (statically or as `dynamic`) replaces every block of that type in the base; its comments join."""
        merged = dict(self.body)
        for key, value in body.items():
            if key == "__comments__":
                merged[key] = [*merged.get(key, []), *value]
            elif key not in hclread.READING_KEYS and key != "dynamic":
                merged[key] = value
        overridden = {key for key in body if key not in hclread.READING_KEYS and key != "dynamic"}
        dynamic = [(label, content) for label, content in _dynamic_blocks(body.get("dynamic"))]
        overridden |= {label for label, _ in dynamic}
        kept = [
            (label, content) for label, content in _dynamic_blocks(merged.get("dynamic")) if label not in overridden
        ]
        for label, _ in dynamic:
            merged.pop(label, None)
        if kept or dynamic:
            merged["dynamic"] = [{label: content} for label, content in [*kept, *dynamic]]
        self.body = merged
        self.overridden_in.append(file_name)


def _dynamic_blocks(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """(block type, body) of each `dynamic "type" {...}`: a dict in `.tf`, a list of them in `.tf.json`."""
    found: list[tuple[str, dict[str, Any]]] = []
    for block in value if isinstance(value, list) else []:
        for label, content in block.items() if isinstance(block, dict) else ():
            for body in content if isinstance(content, list) else [content]:
                if isinstance(body, dict):
                    found.append((_label(label), body))
    return found


class _Locals(Mapping[str, Any]):
    """`local.*`, each evaluated when first read (locals may name each other, in any file). A local that names
    itself, directly or not, is Unknown (Terraform refuses the cycle)."""

    def __init__(self, raw: Mapping[str, Any], budget: hclread.Budget) -> None:
        self._raw, self._budget = raw, budget
        self._values: dict[str, Any] = {}
        self._reading: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            if name not in self._raw or name in self._reading:
                raise KeyError(name)
            self._reading.add(name)
            try:
                self._values[name] = hclread.evaluate(self._raw[name], {"local": self}, self._budget)
            finally:
                self._reading.discard(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _instances(collection: Any) -> list[tuple[str, Any]] | None:
    """(each.key, each.value) of a `for_each`: a map, or a set of strings (a list too, which Terraform refuses
    but lint still reads); None when lint cannot know them."""
    if isinstance(collection, dict):
        if any(isinstance(k, hclread.Unknown) for k in collection):
            return None
        return [(str(k), v) for k, v in collection.items()]
    if isinstance(collection, list) and all(
        isinstance(v, str) and not isinstance(v, hclread.Unknown) for v in collection
    ):
        return [(v, v) for v in dict.fromkeys(collection)]
    return None


MAX_INSTANCES = 10_000  # a `count` past it is not evaluated (a module, not a load test)


def _body(raw: Mapping[str, Any], scope: hclread.Scope, budget: hclread.Budget) -> dict[str, Any]:
    """A block body's values as Terraform evaluates them; `dynamic` blocks expanded where their `for_each` is
    known (else their content once, its iterator unknown)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in hclread.READING_KEYS:
            continue
        if key == "dynamic":
            for label, body in _dynamic_blocks(value):
                iterator = hclread.evaluate(body.get("iterator", label), {}, budget)
                contents = [c for c in body.get("content", []) if isinstance(c, dict)]
                found = hclread.pairs(hclread.evaluate(body.get("for_each"), scope, budget))
                scopes = (
                    [scope] if found is None else [{**scope, str(iterator): {"key": k, "value": v}} for k, v in found]
                )
                out.setdefault(label, []).extend(_body(c, inner, budget) for inner in scopes for c in contents)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):  # nested blocks
            out.setdefault(key, []).extend(_body(v, scope, budget) for v in value)
        else:
            name = hclread.evaluate(key, scope, budget) if key.startswith(('"', "${")) else key
            out[str(name)] = hclread.evaluate(value, scope, budget)
    return out


def _facts_of(block: _Block, locals_: _Locals, budget: hclread.Budget) -> list[Fact]:
    """One fact per instance Terraform would plan: a known `for_each` or `count` expanded (none when it is
    empty or zero); an unknown one gives one fact whose `each.*` / `count.index` stay Unknown."""
    scope: dict[str, Any] = {"local": locals_}
    body = block.body
    comments = tuple(str(c.get("value", "")) for c in body.get("__comments__", []) if isinstance(c, dict))
    source = f"{block.file}: {block.kind} {block.type}.{block.name}"
    if block.overridden_in:
        source += f" (as overridden in {', '.join(block.overridden_in)})"
    instances: list[tuple[str, dict[str, Any]]] = [(block.name, {})]
    if "for_each" in body:
        items = _instances(hclread.evaluate(body["for_each"], scope, budget))
        if items is not None:
            instances = [(f'{block.name}["{key}"]', {"each": {"key": key, "value": value}}) for key, value in items]
    elif "count" in body:
        count = hclread.evaluate(body["count"], scope, budget)
        if isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= MAX_INSTANCES:
            instances = [(f"{block.name}[{i}]", {"count": {"index": i}}) for i in range(count)]
    return [
        Fact(block.kind, block.type, name, _body(body, scope | names, budget), source, comments)
        for name, names in instances
    ]


def facts_from_hcl(files: Mapping[str, str]) -> list[Fact]:
    """Facts from `.tf` and `.tf.json` sources (file name -> text); `.tf` read by `hclread`. The module is read
    as Terraform reads it: the ordinary files, then each override file (`override.tf`, `*_override.tf`) in
    name order merged into the blocks and locals it names; then values evaluated where they are constants
    (locals, templates, `for` expressions, `for_each`, `count`, `dynamic` blocks), `hclread.Unknown` where not.
    HCL with a syntax error, or that Terraform refuses (a block or local given twice, an override naming no
    block), raises ValueError naming the file (and for syntax, the line and column)."""
    documents: list[tuple[str, dict[str, Any]]] = []
    for file_name, text in sorted(files.items()):
        try:
            if file_name.endswith(".tf.json"):
                document = _from_json_syntax(json.loads(text, object_pairs_hook=_repeated_keys_kept))
            else:
                document = hclread.read(text)
            for kind in ("resource", "data", "locals"):
                if not isinstance(document.get(kind, []), list):
                    raise ValueError(f"`{kind}` is an attribute here; Terraform knows it only as a block")
        except ValueError as exc:
            raise ValueError(f"{file_name}: {exc}") from None
        except RecursionError:  # json.loads, or the adapters after it
            raise ValueError(f"{file_name}: values nested too deeply to read") from None
        documents.append((file_name, document))
    # Terraform reads every ordinary file, then merges the override files in, each in name order.
    ordered = [d for d in documents if not _is_override(d[0])] + [d for d in documents if _is_override(d[0])]
    blocks: dict[tuple[str, str, str], _Block] = {}
    raw_locals: dict[str, Any] = {}
    kinds: tuple[Literal["resource", "data"], ...] = ("resource", "data")
    for file_name, document in ordered:
        override = _is_override(file_name)
        for block in document.get("locals", []):
            for key, value in block.items() if isinstance(block, dict) else ():
                if key in hclread.READING_KEYS:
                    continue
                if override != (key in raw_locals):
                    problem = "overrides no local value" if override else "is defined twice"
                    raise ValueError(f"{file_name}: local.{key} {problem} (Terraform refuses it)")
                raw_locals[key] = value
        for kind in kinds:
            for block in document.get(kind, []):
                for type_, named in block.items():
                    for name, body in named.items() if isinstance(named, dict) else ():
                        if name in hclread.READING_KEYS:
                            continue
                        if not isinstance(body, dict):
                            raise ValueError(f"{file_name}: a {kind} block takes a type and a name")
                        key = (kind, _label(type_), _label(name))
                        if override != (key in blocks):
                            problem = "overrides no block" if override else "is declared twice"
                            raise ValueError(f"{file_name}: {kind} {key[1]}.{key[2]} {problem} (Terraform refuses it)")
                        if override:
                            blocks[key].override(body, file_name)
                        else:
                            blocks[key] = _Block(kind, key[1], key[2], body, file_name)
    budget = hclread.Budget()
    locals_ = _Locals(raw_locals, budget)
    return [fact for block in blocks.values() for fact in _facts_of(block, locals_, budget)]


class _Repeated(list[Any]):
    """The values of a key a JSON object gives more than once."""


def _repeated_keys_kept(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Every value of a repeated key, not only the last (`json.loads`'s default): Terraform reads a repeated
    block, label or `"//"` key as if its values were one array, and refuses any other repeat."""
    values: dict[str, list[Any]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    return {
        key: found[0]
        if len(found) == 1
        else _Repeated(v for value in found for v in (value if isinstance(value, list) else [value]))
        for key, found in values.items()
    }


def _no_repeats(value: Any, key: str) -> Any:
    """An attribute's value, refused if some object in it gives a key twice (Terraform refuses it too)."""
    if isinstance(value, _Repeated):
        raise ValueError(f"`{key}` is given twice")
    if isinstance(value, dict):
        return {k: _no_repeats(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_repeats(v, key) for v in value]
    return value


def _templates(value: Any) -> Any:
    """A JSON value with each string (key or value) marked as the template Terraform's JSON syntax makes it."""
    if isinstance(value, str):
        return hclread.Template(value)
    if isinstance(value, list):
        return [_templates(v) for v in value]
    if isinstance(value, dict):
        return {hclread.Template(k): _templates(v) for k, v in value.items()}
    return value


def _from_json_syntax(document: Any) -> dict[str, Any]:
    """Terraform's JSON syntax in the shape `hclread` gives `.tf` files: blocks as lists, strings as
    `hclread.Template`s, `"//"` keys as comments. JSON of another shape raises ValueError saying where."""

    def objects(value: Any, where: str) -> list[dict[str, Any]]:
        found = value if isinstance(value, list) else [value]
        if not all(isinstance(item, dict) for item in found):
            raise ValueError(f"{where} is not an object, as Terraform's JSON syntax requires")
        return found

    def body(value: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "//":
                out["__comments__"] = [{"value": str(c)} for c in (item if isinstance(item, _Repeated) else [item])]
            elif isinstance(item, dict) and key not in ("labels", "tags", "default_labels", "for_each"):
                out[key] = [body(item)]
            elif isinstance(item, list) and item and all(isinstance(i, dict) for i in item):
                out[key] = [body(i) for i in item]  # blocks (a repeated block key among them)
            else:
                out[key] = _templates(_no_repeats(item, key))
        return out

    if not isinstance(document, dict):
        raise ValueError("the document is not an object, as Terraform's JSON syntax requires")
    shaped: dict[str, Any] = {}
    for kind in ("resource", "data"):
        for block in objects(document.get(kind, {}), f"`{kind}`"):
            for type_, named in block.items():
                for names in objects(named, f"`{kind}.{type_}`"):
                    for name, value in names.items():
                        for instance in objects(value, f"`{kind}.{type_}.{name}`"):
                            shaped.setdefault(kind, []).append({type_: {name: body(instance)}})
    shaped["locals"] = [
        {k: _templates(_no_repeats(v, k)) for k, v in block.items()}
        for block in objects(document.get("locals", {}), "`locals`")
    ]
    return shaped


LINT_MAX_BYTES = 2 * 1024 * 1024  # the largest Terraform file `lint` reads (a module, not a data dump)


def lint(directories: Iterable[Path]) -> list[Finding]:
    """Every rule over the `.tf` and `.tf.json` files of each directory (hand-written modules too). A
    directory without them, a file that is not a regular file (a FIFO would block the read) or is over
    `LINT_MAX_BYTES`, or HCL the parser cannot read, is bad input (UsageError)."""
    findings: list[Finding] = []
    for directory in directories:
        if not directory.is_dir():
            raise UsageError(f"{directory} does not exist or is not a directory")
        # Terraform skips a file whose name starts with `.` (an editor's or a tool's), so lint does too.
        files = sorted(
            p for p in directory.iterdir() if p.name.endswith((".tf", ".tf.json")) and not p.name.startswith(".")
        )
        if not files:
            raise UsageError(f"{directory} holds no .tf or .tf.json files")
        sources = {shown(f): _read_bounded(f) for f in files}  # names as findings quote them
        try:
            facts = facts_from_hcl(sources)
        except RecursionError:  # a value nested thousands deep, past the readers into the rules' adapters
            raise UsageError(f"{directory}: values nested too deeply to read") from None
        except ValueError as exc:
            raise UsageError(f"{exc}: not valid Terraform syntax, so lint cannot check it") from None
        findings += check(facts)
    return findings


def _read_bounded(path: Path) -> str:
    import stat

    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise UsageError(f"{shown(path)} is not a regular file (a FIFO, socket or device): lint reads files only")
    with path.open("rb") as handle:
        raw = handle.read(LINT_MAX_BYTES + 1)
    if len(raw) > LINT_MAX_BYTES:
        raise UsageError(
            f"{shown(path)} is over {LINT_MAX_BYTES // (1024 * 1024)} MB: lint reads module files, not data"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{shown(path)} is not UTF-8 text (byte {exc.start})") from None
