"""Every shipped environment and example, through the real terraform against the offline cloud:
render -> init (gcs backend) -> validate -> plan -> apply -> plan shows nothing -> destroy."""

import json
import uuid
from pathlib import Path

import pytest

from dataform_infra.specset import SpecSet
from tests.fakegcp.harness import plan_counts, provider_processes, resource_blocks
from tests.support.specsets import SPEC_SETS

pytestmark = pytest.mark.terraform


def _unique_buckets(spec_dir: Path, tmp_path: Path) -> Path:
    """A copy of the specs whose state buckets are unique to this test (the GCS emulator is shared)."""
    suffix = uuid.uuid4().hex[:8]
    out = tmp_path / "environments"
    out.mkdir()
    for spec in spec_dir.glob("*.yaml"):
        text = spec.read_text()
        text = text.replace("-tfstate", f"-tfstate-{suffix}")
        (out / spec.name).write_text(text)
    return out


@pytest.mark.parametrize("spec_set", sorted(SPEC_SETS))
def test_full_lifecycle(spec_set, tmp_path, cloud):
    workspace = SpecSet(_unique_buckets(SPEC_SETS[spec_set], tmp_path))
    deployment = workspace.deployment
    cloud.seed(deployment)
    out = tmp_path / "infra"
    envs = list(deployment.environments)
    workspace.write(out, envs)
    apply_order = workspace.apply_order()
    for host in deployment.host_names():  # each host first: it holds the repository its environments' configs use
        part = [e for e in apply_order if deployment.hosts[e] == host]
        assert part == [host] + [e for e in envs if deployment.hosts[e] == host and e != host]
    assert sorted(apply_order) == sorted(envs)

    for env in apply_order:
        module = out / env
        cloud.init(module)
        assert "Success! The configuration is valid." in cloud.terraform(module, "validate", "-no-color").stdout
        plan = cloud.terraform(module, "plan", "-input=false", "-no-color", "-detailed-exitcode", "-out=tfplan")
        assert plan.returncode == 2, plan.output
        shown = json.loads(cloud.terraform(module, "show", "-json", "tfplan").stdout)
        expected = resource_blocks((module / f).read_text() for f in (p.name for p in module.glob("*.tf")))
        assert plan_counts(shown) == {"create": expected, "update": 0, "delete": 0, "replace": 0}
        cloud.terraform(module, "apply", "-input=false", "-no-color", "tfplan")
        again = cloud.terraform(module, "plan", "-input=false", "-no-color", "-detailed-exitcode")
        assert again.returncode == 0, f"{env}: second plan is not empty:\n{again.output}"

    # Applying later environments changed nothing for earlier ones.
    for env in apply_order:
        assert cloud.terraform(out / env, "plan", "-input=false", "-detailed-exitcode").returncode == 0

    # State lives in the GCS backend, one object per environment.
    for env in envs:
        spec = deployment.environments[env]
        assert f"{spec.state.prefix}/default.tfstate" in cloud.gcs.objects(spec.state.bucket)

    assert cloud.resources(), "apply created nothing in the offline cloud"
    for env in reversed(apply_order):
        cloud.terraform(out / env, "destroy", "-input=false", "-no-color", "-auto-approve")
    assert cloud.resources() == []
    assert provider_processes(cloud.store.path) == [], "a provider process outlived terraform"


def test_target_environments_apply_concurrently(tmp_path, cloud):
    """Two terraform applies at once (their provider processes write one store) both succeed, once the host
    (dev) that holds their configs' repository exists."""
    import subprocess

    workspace = SpecSet(_unique_buckets(SPEC_SETS["three-environments"], tmp_path))
    cloud.seed(workspace.deployment)
    out = tmp_path / "infra"
    workspace.write(out, ["dev", "staging", "prod"])
    for env in ("dev", "staging", "prod"):
        cloud.init(out / env)
    cloud.terraform(out / "dev", "apply", "-input=false", "-no-color", "-auto-approve")
    runs = [
        subprocess.Popen(
            [cloud.terraform_bin, "apply", "-input=false", "-no-color", "-auto-approve"],
            cwd=out / env,
            env=cloud.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for env in ("staging", "prod")
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    for env in ("staging", "prod"):
        assert cloud.terraform(out / env, "plan", "-input=false", "-detailed-exitcode").returncode == 0
