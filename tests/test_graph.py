"""The access graph: built from the rendered grants, cross-project edges visible, three formats."""

import shutil
import subprocess

import pytest

from dataform_infra.graph import build_graph, dot, mermaid, png
from dataform_infra.specset import SpecSet
from tests.support.specsets import SPEC_SETS


def shipped_graph():
    workspace = SpecSet(SPEC_SETS["shipped"])
    return build_graph([workspace.module(e) for e in workspace.deployment.environments])


def test_every_grant_is_an_edge_and_projects_are_groups():
    graph = shipped_graph()
    workspace = SpecSet(SPEC_SETS["shipped"])
    assert len(graph.edges) == sum(len(workspace.module(e).grants) for e in workspace.deployment.environments)
    text = mermaid(graph)
    assert 'subgraph acme_analytics_prod["project acme-analytics-prod"]' in text
    agents = [(i, project) for i, (label, project) in graph.nodes.items() if label.startswith("Dataform service agent")]
    # #26: one agent, the host's, drawn in the host project (prod's grants to it drew a prod agent that does not
    # exist).
    assert [project for _, project in agents] == ["acme-analytics-staging"]
    agent = agents[0][0]
    prod_runner = next(
        i
        for i, (label, project) in graph.nodes.items()
        if "dataform-prod-runner@" in label and project == "acme-analytics-prod"
    )
    assert (agent, prod_runner, "iam.serviceAccountTokenCreator") in graph.edges  # across projects


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is optional; .ci/run installs it")
def test_dot_is_valid_graphviz_and_png_is_an_image(tmp_path):
    graph = shipped_graph()
    result = subprocess.run(["dot", "-Tsvg"], input=dot(graph), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('class="cluster"') == 2  # one box per project
    assert png(graph).startswith(b"\x89PNG\r\n\x1a\n")


def test_principals_differing_only_in_punctuation_or_case_stay_apart(tmp_path):
    from tests.specs import host, write_specs

    h = host()
    h["repository"]["access"] = [
        {"member": "group:data-analysts@acme.example", "role": "viewer"},
        {"member": "group:data.analysts@acme.example", "role": "editor"},
        {"member": "group:Data-Analysts@acme.example", "role": "admin"},
    ]
    workspace = SpecSet(write_specs(tmp_path, {"staging": h}))
    graph = build_graph([workspace.module("staging")])
    people = {label: node for node, (label, _) in graph.nodes.items() if label.startswith("group:")}
    assert len(people) == 3
    roles = {label: sorted(role for src, _, role in graph.edges if src == node) for label, node in people.items()}
    assert roles == {
        "group:data-analysts@acme.example": ["dataform.viewer"],
        "group:data.analysts@acme.example": ["dataform.editor"],
        "group:Data-Analysts@acme.example": ["dataform.admin"],
    }
