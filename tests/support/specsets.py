"""The spec sets every test runs over (the shipped environments and each example), and their renders."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from dataform_infra.specset import SpecSet

REPO = Path(__file__).resolve().parents[2]
SPEC_SETS = {
    "shipped": REPO / "environments",
    "multi-repository": REPO / "examples" / "multi-repository" / "environments",
    "platform-team": REPO / "examples" / "platform-team" / "environments",
    "single-project": REPO / "examples" / "single-project" / "environments",
    "ssh-repository": REPO / "examples" / "ssh-repository" / "environments",
    "three-environments": REPO / "examples" / "three-environments" / "environments",
}


@cache
def rendered(spec_set: str) -> dict[str, dict[str, str]]:
    """env -> file name -> HCL, for one spec set (rendered once per test session)."""
    specs = SpecSet(SPEC_SETS[spec_set])
    return {m.env: dict(m.files) for m in specs.render(list(specs.deployment.environments))}


def all_modules() -> list[tuple[str, str]]:
    return [(spec_set, env) for spec_set in SPEC_SETS for env in rendered(spec_set)]
