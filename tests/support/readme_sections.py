"""The generated sections of README.md, in one place: the tests compare them, and
`python -m tests.support.readme_sections` rewrites them after an intended change (then review the diff)."""

from __future__ import annotations

import re
from collections.abc import Callable

from dataform_infra import policy
from dataform_infra.explain import iam_table, runs_table
from dataform_infra.graph import build_graph, mermaid
from dataform_infra.spec.reference import spec_reference
from dataform_infra.workspace import Workspace
from tests.conftest import REPO, SPEC_SETS

README = REPO / "README.md"


def _shipped() -> Workspace:
    return Workspace(SPEC_SETS["shipped"])


def _modules(workspace: Workspace):
    return [workspace.module(e) for e in workspace.deployment.environments]


def iam_section() -> str:
    workspace = _shipped()
    return iam_table(_modules(workspace), workspace.coverage())


def runs_section() -> str:
    workspace = _shipped()
    return runs_table(workspace.runs(), workspace.coverage())


def graph_section() -> str:
    return "```mermaid\n" + mermaid(build_graph(_modules(_shipped()))) + "```\n"


def rules_section() -> str:
    return "".join(f"- `{r.id}`: {r.summary}\n" for r in policy.RULES)


SECTIONS: dict[str, Callable[[], str]] = {
    "spec-reference": spec_reference,
    "iam-table": iam_section,
    "runs-table": runs_section,
    "access-graph": graph_section,
    "rules": rules_section,
}


def section(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert match, f"README.md lost its {name} markers"
    return match[1]


def regenerate() -> None:
    text = README.read_text()
    for name, build in SECTIONS.items():
        old = section(text, name)
        text = text.replace(
            f"<!-- {name}:start -->\n{old}<!-- {name}:end -->", f"<!-- {name}:start -->\n{build()}<!-- {name}:end -->"
        )
    README.write_text(text)


if __name__ == "__main__":
    regenerate()
