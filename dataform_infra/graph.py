"""The access graph of a deployment: who may do what to which resource, and across which projects.

Built from the same grants the templates render, so the picture cannot disagree with the HCL.
Mermaid for READMEs and pull requests, Graphviz dot (and PNG through the `dot` binary) for docs.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field

from dataform_infra.errors import UsageError
from dataform_infra.render.module import Module
from dataform_infra.topology import runner_resource

_SHORT_ROLE = re.compile(r"^roles/")


@dataclass
class AccessGraph:
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (label, project or "")
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to, role)

    def node(self, label: str, project: str = "") -> str:
        """One node per exact label (an IAM member string for principals): `group:data.analysts@` and
        `group:data-analysts@` stay two nodes, so one's grants are never drawn on the other."""
        digest = hashlib.sha256(label.encode()).hexdigest()[:6]
        node_id = "n" + re.sub(r"[^A-Za-z0-9]", "_", label) + "_" + digest
        self.nodes.setdefault(node_id, (label, project))
        return node_id


def build_graph(modules: list[Module]) -> AccessGraph:
    graph = AccessGraph()
    for module in modules:
        for grant in module.grants:
            who = grant.principal
            if who.kind == "service_agent":  # the host project's agent, whichever module grants to it
                host = module.host_project
                principal = graph.node(f"Dataform service agent ({host})", host)
            elif who.kind == "runner":  # the same node as the account other grants target
                account = runner_resource(who.email)
                principal = graph.node(account.label, account.project)
            elif who.kind == "views":  # an authorized dataset's views, drawn in their project
                principal = graph.node(who.label, who.email.split(".", 1)[0])
            else:
                principal = graph.node(who.member)
            target = graph.node(grant.resource.label, grant.resource.project)
            graph.edges.append((principal, target, _SHORT_ROLE.sub("", grant.role)))
    return graph


def _projects(graph: AccessGraph) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for node_id, (_, project) in graph.nodes.items():
        grouped.setdefault(project, []).append(node_id)
    return grouped


def mermaid(graph: AccessGraph) -> str:
    lines = ["flowchart LR"]
    for project, node_ids in sorted(_projects(graph).items()):
        indent = "    " if project else "  "
        if project:
            lines.append(f'  subgraph {re.sub(r"[^A-Za-z0-9]", "_", project)}["project {project}"]')
        for node_id in node_ids:
            label = graph.nodes[node_id][0].replace('"', "'")
            lines.append(f'{indent}{node_id}["{label}"]')
        if project:
            lines.append("  end")
    for source, target, role in graph.edges:
        lines.append(f'  {source} -->|"{role}"| {target}')
    return "\n".join(lines) + "\n"


def dot(graph: AccessGraph) -> str:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "digraph access {",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for index, (project, node_ids) in enumerate(sorted(_projects(graph).items())):
        if project:
            lines.append(f"  subgraph cluster_{index} {{")
            lines.append(f"    label={quoted('project ' + project)};")
        for node_id in node_ids:
            lines.append(f"    {node_id} [label={quoted(graph.nodes[node_id][0])}];")
        if project:
            lines.append("  }")
    for source, target, role in graph.edges:
        lines.append(f"  {source} -> {target} [label={quoted(role)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def png(graph: AccessGraph) -> bytes:
    binary = shutil.which("dot")
    if not binary:
        raise UsageError("--format png needs Graphviz's `dot` (apt-get install graphviz); use --format dot or mermaid")
    result = subprocess.run([binary, "-Tpng"], input=dot(graph).encode(), capture_output=True, timeout=120)
    if result.returncode != 0:
        raise UsageError(f"graphviz failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout
