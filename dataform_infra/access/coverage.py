"""Proof both ways: every requirement of every run is met by a grant, and every grant meets one.

A grant meets a requirement when it names the same principal (exact IAM member string), its role
carries the permission (Google's role table), and it is made on the resource or on the project
holding it. Requirements marked `assumed` (the deployers' own rights) are met outside dfinfra and
checked live by `dfinfra doctor` instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
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
    requirements: list[Requirement]
    grants: list[GrantLike]
    served_by: dict[int, list[GrantLike]] = field(default_factory=dict)  # id(requirement) -> grants
    serves: dict[int, list[Requirement]] = field(default_factory=dict)  # id(grant) -> requirements

    @property
    def unmet(self) -> list[Requirement]:
        return [r for r in self.requirements if not r.assumed and not self.served_by.get(id(r))]

    @property
    def unserved(self) -> list[GrantLike]:
        return [g for g in self.grants if not self.serves.get(id(g))]

    def requirements_served_by(self, grant: GrantLike) -> list[Requirement]:
        return self.serves.get(id(grant), [])

    def grants_for(self, requirement: Requirement) -> list[GrantLike]:
        return self.served_by.get(id(requirement), [])


def cover(requirements: Iterable[Requirement], grants: Iterable[GrantLike]) -> Coverage:
    reqs = list(requirements)
    all_grants = list(grants)
    by_holder: dict[tuple[str, Resource], list[GrantLike]] = defaultdict(list)
    for grant in all_grants:
        by_holder[(grant.principal.member, grant.resource)].append(grant)
    coverage = Coverage(reqs, all_grants)
    projects: dict[str, Resource] = {}
    for req in reqs:
        resource = req.resource
        places = [resource]
        if resource.kind != "project":  # a grant on the project holds on everything in it
            places.append(
                projects.get(resource.project)
                or projects.setdefault(resource.project, project_resource(resource.project))
            )
        for place in places:
            for grant in by_holder.get((req.principal.member, place), ()):
                if req.permission in roles.permissions(grant.role):
                    coverage.served_by.setdefault(id(req), []).append(grant)
                    coverage.serves.setdefault(id(grant), []).append(req)
    return coverage
