"""The one object commands talk to: a spec set (a directory of environment specs) and what can be done with it.

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
from dataform_infra.access import AccessModel, Coverage, cover
from dataform_infra.access.model import Run
from dataform_infra.errors import UsageError
from dataform_infra.policy import verdict
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
            "warnings": [w.describe() for w in self.warnings],
            "violations": [{"rule": f.rule, "source": f.source, "message": f.message} for f in self.violations],
        }


@dataclass
class SpecSet:
    environments_dir: Path
    _modules: dict[str, Module] = field(default_factory=dict, repr=False)
    _topologies: dict[str, Topology] = field(default_factory=dict, repr=False)
    _accesses: dict[str, AccessModel] = field(default_factory=dict, repr=False)

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

    def write(
        self, out: Path, envs: list[str], *, lock_timeout: str = "60s", waiting: Callable[[str], None] | None = None
    ) -> list[Path]:
        """Render `envs` into `out`, all or nothing, after any other render there (up to `lock_timeout`)."""
        return write_modules(out, self.render(envs), lock_timeout=lock_timeout, waiting=waiting)

    def diff(self, out: Path, envs: list[str]) -> str:
        return diff_modules(out, self.render(envs))

    def topology_of(self, env: str) -> Topology:
        """The topology of the setup `env` belongs to (its host's; see `Deployment.part`)."""
        host = self.deployment.hosts[env]
        if host not in self._topologies:
            self._topologies[host] = Topology(self.deployment.part(env))
        return self._topologies[host]

    def access_of(self, env: str) -> AccessModel:
        host = self.deployment.hosts[env]
        if host not in self._accesses:
            self._accesses[host] = AccessModel(self.deployment.part(env), self.topology_of(env))
        return self._accesses[host]

    @property
    def topology(self) -> Topology:
        """The one setup's topology (a directory with several hosts has one per host: `topology_of`)."""
        return self.topology_of(self.deployment.host_name)

    @property
    def access(self) -> AccessModel:
        """The one setup's access model (several hosts: `access_of`)."""
        return self.access_of(self.deployment.host_name)

    def accesses(self) -> list[AccessModel]:
        """One access model per host, in the directory's order."""
        return [self.access_of(host) for host in self.deployment.host_names()]

    def apply_order(self) -> list[str]:
        """Every environment, each host before the environments whose configs it holds."""
        return [env for host in self.deployment.host_names() for env in self.topology_of(host).apply_order()]

    def coverage_of(self, access: AccessModel) -> Coverage:
        """A setup's requirements against every grant its modules render."""
        grants = [g for env in access.topology.environments for g in self.module(env).grants]
        return cover(access.requirements, grants)

    def coverage(self) -> Coverage:
        """Every setup's requirements against every grant the modules render."""
        accesses = self.accesses()
        if len(accesses) == 1:
            return self.coverage_of(accesses[0])
        grants = [g for env in self.deployment.environments for g in self.module(env).grants]
        return cover([r for access in accesses for r in access.requirements], grants)

    def runs(self) -> list[Run]:
        """Every run of every setup."""
        return [run for access in self.accesses() for run in access.runs]

    @_bulk
    def validate(self) -> ValidationReport:
        envs = list(self.deployment.environments)
        findings: list[policy.Finding] = []
        grants = 0
        for env in envs:
            module = self.module(env)
            grants += len(module.grants)
            findings += policy.check(policy.facts_from_module(module))
        warnings: list[SpecWarning] = list(self.deployment.warnings)
        for access in self.accesses():
            findings += verdict.findings(access, self.coverage_of(access))
            warnings += verdict.warnings(access)
        return ValidationReport(envs, grants, findings, warnings)

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
        self._topologies.clear()
        self._accesses.clear()
        return spec
