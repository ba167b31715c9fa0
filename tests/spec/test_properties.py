"""Property-based tests over the whole spec: whatever a user writes is either rendered safely or
rejected with located problems — never a traceback, never a spec value turned into HCL structure.

CI runs 1,000 derandomized examples per property (fixed seed), the inner loop 100. A nightly-style larger run:
    DFINFRA_HYPOTHESIS_EXAMPLES=20000 pytest tests/spec/test_properties.py
"""

from __future__ import annotations

import copy
import itertools
import random
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dataform_infra.errors import SpecError
from dataform_infra.render.engine import render_module
from dataform_infra.render.hcl import layout, quote
from dataform_infra.render.module import build_module
from dataform_infra.spec.loader import load_deployment
from tests.specs import host, target
from tests.support.hypothesis import examples

SETTINGS = examples()

# Free text with everything that could break HCL: quotes, backslashes, template openers, unicode.
hostile_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(['"', "\\", "$", "%", "{", "}", "#", "=", "\n", "\t", "\x01", "é", "日", "🚀"]),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=40,
)
yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text)
yaml_data = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=12,
)


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@SETTINGS
@given(
    document=st.one_of(
        hostile_text,
        yaml_data.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
        st.builds(
            lambda spec, key, value: yaml.safe_dump({**spec, key: value}, allow_unicode=True),
            st.just(host()),
            hostile_text,
            yaml_data,
        ),
    )
)
def test_any_document_is_accepted_or_rejected_with_located_problems(tmp_path_factory, document):
    directory = _write(tmp_path_factory.mktemp("spec"), {"staging.yaml": document})
    try:
        load_deployment(directory)
    except SpecError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.file is not None and problem.file.name == "staging.yaml"
            assert problem.message.strip()
            assert problem.line is None or problem.line >= 1


def _hostile_spec(texts: list[str]) -> tuple[dict, dict]:
    """Host and target specs with hostile strings in every free-text field that reaches HCL."""
    h, t = host(), target()
    rotating = itertools.cycle(texts)
    h["repository"]["display_name"] = next(rotating)
    h["runners"][0]["display_name"] = next(rotating)
    h["runners"][0]["description"] = next(rotating)
    h["datasets"][0]["description"] = next(rotating)
    h["releases"][0]["compilation"] = {"vars": {next(rotating): next(rotating)}}
    t["workflows"][0]["tags"] = [next(rotating)]
    t["workflows"][0]["targets"] = [{"name": next(rotating) or "x"}]
    t["runners"][0]["bigquery"]["project_wide"] = [{"role": "dataViewer", "reason": "because: " + next(rotating)}]
    return copy.deepcopy(h), copy.deepcopy(t)


def _values_as_loaded(deployment) -> list[str]:
    """The free-text values as the spec loaded them (YAML itself normalises some line breaks)."""
    h, t = deployment.environments["staging"], deployment.environments["prod"]
    values = [
        h.repository.display_name,
        h.runners[0].display_name,
        h.runners[0].description,
        h.datasets[0].description,
        *h.releases[0].compilation.vars.items(),
        *t.workflows[0].tags,
        t.workflows[0].targets[0].name,
    ]
    flat = [v for item in values for v in (item if isinstance(item, tuple) else (item,))]
    return [v for v in flat if v]


_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')
_HEADER = re.compile(r'(resource|data|output|provider|locals|terraform|moved|import) ("[\w-]+" )*\{')


def _code(text: str) -> str:
    """HCL without its comment lines: a `#` comment may quote anything (a reason, a title), and its
    quotes pair with nothing."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _decode(literal: str) -> str:
    """An HCL quoted literal's value (the escapes Terraform defines), written independently of `quote`."""
    body, out, i = literal[1:-1], [], 0
    simple = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(body):
        if body[i] == "\\":
            if body[i + 1] == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(simple[body[i + 1]])
            i += 2
        elif body.startswith(("$${", "%%{"), i):
            out.append(body[i] + "{")
            i += 3
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


@SETTINGS
@given(texts=st.lists(hostile_text, min_size=1, max_size=6))
def test_accepted_specs_render_every_value_as_one_intact_literal(tmp_path_factory, texts):
    h, t = _hostile_spec(texts)
    directory = _write(
        tmp_path_factory.mktemp("spec"),
        {"staging.yaml": yaml.safe_dump(h, allow_unicode=True), "prod.yaml": yaml.safe_dump(t, allow_unicode=True)},
    )
    try:
        deployment = load_deployment(directory)
    except SpecError as error:  # control characters in free text are refused, with their location
        assert all(p.line for p in error.problems)
        return
    used = _values_as_loaded(deployment)
    for env in deployment.environments:
        module = build_module(deployment, env)
        for text in render_module(module).values():
            assert layout(text) == text  # stable, fmt-style layout whatever the values
            literals = {_decode(m) for m in _LITERAL.findall(_code(text))}
            # Block headers (`resource "a" "b"`) hold `" "` between labels: not where values go.
            body = "\n".join(line for line in _code(text).splitlines() if not _HEADER.fullmatch(line))
            for value in used:
                if quote(value) in body:
                    assert value in literals
            # Values never add structure: block headers are exactly what dfinfra emits.
            for line in text.splitlines():
                if line and not line.startswith((" ", "#", "}")):
                    assert _HEADER.fullmatch(line), line
    every_file = "".join(
        text for env in deployment.environments for text in render_module(build_module(deployment, env)).values()
    )
    for value in used:  # every value reaches a module: the repository, a release or a workflow config
        assert quote(value) in every_file


@pytest.mark.terraform
def test_terraform_fmt_accepts_modules_rendered_from_hostile_specs(tmp_path, terraform_bin, terraform_env):
    """Real `terraform fmt -check` (Terraform's own parser) over 100 generated hostile specs at once."""
    chars = ['"', "\\", "${", "%{", "$${", "}", "#", "=", "\t", "é", "日", "🚀", "a", " ", "\u2028"]
    rng = random.Random(20261129)
    rendered_count = 0
    for i in range(100):
        texts = ["".join(rng.choice(chars) for _ in range(rng.randint(1, 12))) for _ in range(4)]
        h, t = _hostile_spec(texts)
        directory = _write(
            tmp_path / "specs" / str(i),
            {"staging.yaml": yaml.safe_dump(h, allow_unicode=True), "prod.yaml": yaml.safe_dump(t, allow_unicode=True)},
        )
        deployment = load_deployment(directory)
        for env in deployment.environments:
            out = tmp_path / "modules" / str(i) / env
            out.mkdir(parents=True)
            for name, text in render_module(build_module(deployment, env)).items():
                (out / name).write_text(text, encoding="utf-8")
                rendered_count += 1
    result = subprocess.run(
        [terraform_bin, "fmt", "-check", "-recursive", str(tmp_path / "modules")],
        capture_output=True,
        text=True,
        env=terraform_env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert rendered_count > 1000


# Fields the ownership, adoption and runtime-access work added: hostile values there are refused with a
# located problem or rendered as one intact literal, like everywhere else.
NEW_FIELDS = [
    ("staging", ("repository", "access", 0, "run_as", 0)),
    ("staging", ("repository", "access", 0, "condition", "title")),
    ("staging", ("repository", "access", 0, "condition", "expression")),
    ("staging", ("repository", "workspace_compilation", "schemas", 0)),
    ("staging", ("repository", "workspace_compilation", "schema_suffix")),
    ("staging", ("repository", "workspace_compilation", "table_prefix")),
    ("staging", ("repository", "git", "https_token", "replicas", 0)),
    ("staging", ("repository", "git", "https_token", "project")),
    ("staging", ("repository", "kms_key_name")),
    ("staging", ("repository", "git", "repository_link")),
    ("staging", ("repository", "existing")),
    ("staging", ("releases", 0, "deletion_policy")),
    ("staging", ("releases", 0, "compilation", "defaults_from")),
    ("staging", ("releases", 0, "repository")),
    ("prod", ("workflows", 0, "deletion_policy")),
    ("prod", ("runners", 0, "bigquery", "reads", 0)),
    ("prod", ("runners", 0, "bigquery", "owns", 0, "dataset")),
    ("prod", ("runners", 0, "bigquery", "owns", 0, "reason")),
    ("prod", ("runners", 0, "existing")),
]


def _with_new_fields() -> tuple[dict, dict]:
    h, t = host(), target()
    h["repository"]["access"] = [
        {
            "member": "group:people@acme.example",
            "role": "editor",
            "run_as": ["host-runner"],
            "condition": {"title": "expiry", "expression": "true"},
        }
    ]
    h["repository"]["workspace_compilation"] = {
        "schema_suffix": "dev",
        "table_prefix": "${workspaceName}",
        "schemas": ["marts"],
    }
    h["repository"]["git"]["https_token"]["replicas"] = ["europe-west2"]
    t["runners"][0]["bigquery"]["reads"] = ["acme-other-proj.raw"]
    t["datasets"].append({"id": "shared"})
    t["runners"][0]["bigquery"]["owns"] = [{"dataset": "shared", "reason": "shared through authorized views"}]
    return h, t


@SETTINGS
@given(field=st.sampled_from(NEW_FIELDS), value=st.one_of(hostile_text, yaml_scalars))
def test_new_fields_refuse_or_render_hostile_values_intact(tmp_path_factory, field, value):
    env, path = field
    h, t = _with_new_fields()
    spec = h if env == "staging" else t
    holder = spec
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    if path[-1] == "repository_link":  # the link replaces the token: exactly one credential
        del holder["https_token"]
    directory = _write(
        tmp_path_factory.mktemp("spec"),
        {"staging.yaml": yaml.safe_dump(h, allow_unicode=True), "prod.yaml": yaml.safe_dump(t, allow_unicode=True)},
    )
    try:
        deployment = load_deployment(directory)
    except SpecError as error:
        assert error.problems and all(p.line for p in error.problems)
        return
    for name in deployment.environments:
        for text in render_module(build_module(deployment, name)).values():
            assert layout(text) == text
            code = _code(text)
            if isinstance(value, str) and value and quote(value) in code:
                assert value in {_decode(m) for m in _LITERAL.findall(code)}
