"""The one object commands talk to: a directory of environment specs and what can be done with it.

It knows nothing of the terminal; `cli.py` turns its results and errors into output and exit codes.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

from dataform_infra import policy
from dataform_infra.access import AccessModel, Coverage, cover, verdict
from dataform_infra.errors import UsageError
from dataform_infra.render.engine import render_module
from dataform_infra.render.module import Module, build_module
from dataform_infra.render.output import RenderedModule, diff_modules, write_modules
from dataform_infra.spec.loader import Deployment, SpecWarning, load_deployment
from dataform_infra.spec.marks import with_marks
from dataform_infra.spec.yamlsource import PathKey
from dataform_infra.topology import Topology

_P = ParamSpec("_P")
_T = TypeVar("_T")


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Loading a spec and proving its runs allocate hundreds of thousands of small acyclic objects (nodes,
    models, requirements): reference counting frees them, while the cyclic collector's passes over the
    growing heap were a tenth of a 1 MB spec's `validate`. Paused for that bounded work only (a long
    `run --wait` still collects); what survives it is the command's model, kept to the end, so it is frozen
    out of later passes instead of being scanned again by the first one."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _bulk(method: Callable[_P, _T]) -> Callable[_P, _T]:
    @wraps(method)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        with _cyclic_gc_paused():
            return method(*args, **kwargs)

    return paused


@dataclass(frozen=True)
class ValidationReport:
    environments: list[str]
    grants: int
    findings: list[policy.Finding]
    warnings: list[SpecWarning]

    @property
    def violations(self) -> list[policy.Finding]:
        return [f for f in self.findings if f.severity == "violation"]

    def to_dict(self) -> dict[str, object]:
        return {
            "environments": self.environments,
            "grants": self.grants,
            "warnings": [w.render() for w in self.warnings],
            "violations": [{"rule": f.rule, "source": f.source, "message": f.message} for f in self.violations],
        }


@dataclass
class Workspace:
    environments_dir: Path
    _modules: dict[str, Module] = field(default_factory=dict, repr=False)

    @cached_property
    @_bulk
    def deployment(self) -> Deployment:
        return load_deployment(self.environments_dir)

    def select(self, names: list[str], all_: bool) -> list[str]:
        known = list(self.deployment.environments)
        if all_ and names:
            raise UsageError("name environments or pass --all, not both")
        if all_:
            return known
        if not names:
            raise UsageError(f"name an environment ({', '.join(known)}) or pass --all")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(
                f"no environment {', '.join(map(repr, unknown))} in {self.environments_dir} (found: {', '.join(known)})"
            )
        return list(dict.fromkeys(names))

    def module(self, env: str) -> Module:
        if env not in self._modules:
            with _cyclic_gc_paused():  # only while building: a cached module costs nothing
                self._modules[env] = build_module(self.deployment, env)
        return self._modules[env]

    def render(self, envs: list[str]) -> list[RenderedModule]:
        return [RenderedModule(env, render_module(self.module(env))) for env in envs]

    def write(self, out: Path, envs: list[str]) -> list[Path]:
        return write_modules(out, self.render(envs))

    def diff(self, out: Path, envs: list[str]) -> str:
        return diff_modules(out, self.render(envs))

    @cached_property
    def topology(self) -> Topology:
        return Topology(self.deployment)

    @cached_property
    def access(self) -> AccessModel:
        return AccessModel(self.deployment, self.topology)

    def coverage(self) -> Coverage:
        """The access model's requirements against every grant the modules render."""
        grants = [g for env in self.deployment.environments for g in self.module(env).grants]
        return cover(self.access.requirements, grants)

    @_bulk
    def validate(self) -> ValidationReport:
        envs = list(self.deployment.environments)
        findings: list[policy.Finding] = []
        grants = 0
        for env in envs:
            module = self.module(env)
            grants += len(module.grants)
            findings += policy.check(policy.facts_from_module(module))
        findings += verdict.findings(self.access, self.coverage())
        return ValidationReport(envs, grants, findings, [*self.deployment.warnings, *verdict.warnings(self.access)])

    def mark_existing(self, env: str, mappings: list[PathKey]) -> Path:
        """Write `existing: true` into `env`'s spec file at `mappings`; refuses (writing nothing) unless the
        whole deployment still loads with the edit. Returns the file."""
        spec = self.deployment.spec_file(env)
        edited = with_marks(spec.read_text(encoding="utf-8"), spec, mappings)
        with tempfile.TemporaryDirectory() as scratch:
            trial = Path(scratch) / "environments"  # `-e .` has an empty name
            trial.mkdir()
            for name in self.deployment.environments:
                source = self.deployment.spec_file(name)
                (trial / source.name).write_text(
                    edited if name == env else source.read_text(encoding="utf-8"), encoding="utf-8"
                )
            load_deployment(trial)  # a SpecError here leaves the real file untouched
        fd, temporary = tempfile.mkstemp(dir=spec.parent, prefix=f".{spec.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(edited)
        os.chmod(temporary, spec.stat().st_mode & 0o777)
        os.replace(temporary, spec)
        self.__dict__.pop("deployment", None)
        self._modules.clear()
        return spec
