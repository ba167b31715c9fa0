"""Proof both ways: every requirement of every run is met by a grant, and every grant meets one.

A grant meets a requirement when it names the same principal (exact IAM member string), its role
carries the permission (Google's role table), and it is made on the resource or on the project
holding it. Requirements marked `assumed` (the deployers' own rights) are met outside dfinfra and
checked live by `dfinfra doctor` instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from dataform_infra.access import roles
from dataform_infra.access.model import Requirement
from dataform_infra.topology import Principal, Resource, project_resource


class GrantLike(Protocol):
    @property
    def principal(self) -> Principal: ...
    @property
    def resource(self) -> Resource: ...
    @property
    def role(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def env(self) -> str: ...
    @property
    def path(self) -> tuple[str | int, ...]: ...


@dataclass
class Coverage:
    """Which requirements some grant meets and which grants meet some requirement: a flag per item (a
    1 MB spec has 90,000 requirements), and who serves whom worked out again only when asked (`explain`)."""

    requirements: list[Requirement]
    grants: list[GrantLike]
    met: bytearray  # per requirement, in order: 1 when a grant meets it
    used: bytearray  # per grant, in order: 1 when it meets a requirement

    @property
    def unmet(self) -> list[Requirement]:
        return [r for r, met in zip(self.requirements, self.met, strict=True) if not met and not r.assumed]

    @property
    def unserved(self) -> list[GrantLike]:
        return [g for g, used in zip(self.grants, self.used, strict=True) if not used]

    def requirements_served_by(self, grant: GrantLike) -> list[Requirement]:
        return self._links[1].get(id(grant), [])

    def grants_for(self, requirement: Requirement) -> list[GrantLike]:
        return self._links[0].get(id(requirement), [])

    @cached_property
    def _links(self) -> tuple[dict[int, list[GrantLike]], dict[int, list[Requirement]]]:
        served_by: dict[int, list[GrantLike]] = defaultdict(list)  # id(requirement) -> grants
        serves: dict[int, list[Requirement]] = defaultdict(list)  # id(grant) -> requirements
        for _, req, _, grant in _matches(self.requirements, self.grants):
            served_by[id(req)].append(grant)
            serves[id(grant)].append(req)
        return served_by, serves


def cover(requirements: Iterable[Requirement], grants: Iterable[GrantLike]) -> Coverage:
    reqs = list(requirements)
    all_grants = list(grants)
    coverage = Coverage(reqs, all_grants, bytearray(len(reqs)), bytearray(len(all_grants)))
    for i, _, j, _ in _matches(reqs, all_grants):
        coverage.met[i] = coverage.used[j] = 1
    return coverage


def _matches(reqs: list[Requirement], grants: list[GrantLike]) -> Iterator[tuple[int, Requirement, int, GrantLike]]:
    """Every (requirement, grant) pair where the grant meets the requirement, with their positions."""
    by_holder: dict[tuple[str, Resource], list[tuple[int, GrantLike, frozenset[str]]]] = defaultdict(list)
    for j, grant in enumerate(grants):
        by_holder[(grant.principal.member, grant.resource)].append((j, grant, roles.permissions(grant.role)))
    none: tuple[tuple[int, GrantLike, frozenset[str]], ...] = ()
    for i, req in enumerate(reqs):
        resource, member, permission = req.resource, req.principal.member, req.permission
        for j, grant, carried in by_holder.get((member, resource), none):
            if permission in carried:
                yield i, req, j, grant
        if resource.kind != "project":  # a grant on the project holds on everything in it
            for j, grant, carried in by_holder.get((member, project_resource(resource.project)), none):
                if permission in carried:
                    yield i, req, j, grant
