"""The layering ARCHITECTURE.md describes, enforced: which package may import which, and where the
terminal, Google's clients and terraform may appear."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.specsets import REPO

PACKAGE = REPO / "dataform_infra"


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (lazy imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


MODULES = {_module(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}

# module prefix -> the dataform_infra modules it may import (prefixes). Everything not listed is free.
ALLOWED: dict[str, tuple[str, ...]] = {
    "dataform_infra.trust": ("dataform_infra.cache", "dataform_infra.errors"),
    "dataform_infra.resource_types": (),  # the floor: each Terraform type's facts, which every layer may ask
    "dataform_infra.spec": ("dataform_infra.spec", "dataform_infra.errors"),
    "dataform_infra.topology": ("dataform_infra.spec",),
    "dataform_infra.access.model": ("dataform_infra.access", "dataform_infra.topology", "dataform_infra.spec"),
    "dataform_infra.access.coverage": ("dataform_infra.access", "dataform_infra.topology"),
    "dataform_infra.access.roles": (),
    # The access model knows nothing of the rules that judge it: policy/verdict.py reads it, never the reverse.
    "dataform_infra.access": ("dataform_infra.access", "dataform_infra.topology", "dataform_infra.spec"),
    # The rules and the lint reader; the verdict also reads the access model. Nothing in it renders or runs.
    "dataform_infra.policy": (
        "dataform_infra.policy",
        "dataform_infra.access",
        "dataform_infra.topology",
        "dataform_infra.spec",
        "dataform_infra.render.hcl",
        "dataform_infra.render.optin",
        "dataform_infra.render.module",
        "dataform_infra.hclread",
        "dataform_infra.errors",
    ),
    "dataform_infra.hclread": (),  # a parser: knows HCL, nothing of dfinfra
    "dataform_infra.locks": ("dataform_infra.trust", "dataform_infra.errors"),
    "dataform_infra.render": (
        "dataform_infra.render",
        "dataform_infra.locks",
        "dataform_infra.spec",
        "dataform_infra.topology",
        "dataform_infra.errors",
        "dataform_infra.cache",
        "dataform_infra.trust",
    ),
    "dataform_infra.terraform": (
        "dataform_infra.terraform",
        "dataform_infra.errors",
        "dataform_infra.cache",
        "dataform_infra.trust",
    ),
    # Which module declares a Google object: read from rendered modules, never from terraform or Google.
    "dataform_infra.ownership": ("dataform_infra.render", "dataform_infra.topology"),
    "dataform_infra.deployer": (
        "dataform_infra.access",
        "dataform_infra.render",
        "dataform_infra.topology",
        "dataform_infra.specset",
    ),
    "dataform_infra.gcp": (
        "dataform_infra.gcp",
        "dataform_infra.access",
        "dataform_infra.topology",
        "dataform_infra.spec",
        "dataform_infra.errors",
    ),
}


def _internal(imported: set[str]) -> set[str]:
    return {name for name in imported if name.startswith("dataform_infra.") or name == "dataform_infra"}


@pytest.mark.parametrize("prefix", sorted(ALLOWED))
def test_each_layer_imports_only_what_it_may(prefix):
    for module, imported in MODULES.items():
        if module != prefix and not module.startswith(prefix + "."):
            continue
        wrong = {
            name
            for name in _internal(imported)
            if name != "dataform_infra"
            and not any(name == a or name.startswith(a + ".") for a in ALLOWED[prefix])
            and name not in ("dataform_infra.__version__", "dataform_infra.MINIMUM_TERRAFORM")
            and not (name + ".").startswith("dataform_infra.resource_types.")
        }
        assert not wrong, f"{module} imports {sorted(wrong)}"


def test_only_the_cli_knows_the_terminal():
    for module, imported in MODULES.items():
        if module == "dataform_infra.cli" or module.startswith("dataform_infra.cli."):
            continue
        assert not {n for n in imported if n.split(".")[0] in ("typer", "click", "getpass")}, module


def test_google_clients_grpc_and_terraform_stay_in_their_packages():
    for module, imported in MODULES.items():
        roots = {n.split(".")[0] for n in imported}
        if "google" in roots or "grpc" in roots:
            assert module.startswith("dataform_infra.gcp"), module
        if "python_terraform" in roots:
            assert module.startswith("dataform_infra.terraform"), module


def test_no_import_cycles_between_packages():
    def package(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:2])

    edges: dict[str, set[str]] = {}
    for module, imported in MODULES.items():
        for name in _internal(imported):
            target = name if name in MODULES else name.rsplit(".", 1)[0]
            if target in MODULES and package(target) != package(module):
                edges.setdefault(package(module), set()).add(package(target))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in edges.get(start, ())
        )

    cycles = sorted(p for p in edges if reaches(p, p, {p}))
    assert cycles == [], cycles
