"""Red team, property-based (#22): whatever an attacker with write access to a pull request puts in the output
directory, and whatever arguments reach `dfinfra terraform`, dfinfra replays, follows or runs nothing that is not
its own: a file outside the checkout is never touched, every refusal is a located error, never a traceback."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataform_infra.errors import UsageError
from dataform_infra.lifecycle.guards import NOT_PASSED_THROUGH
from dataform_infra.lifecycle.guards import passthrough_command as _passthrough_command
from dataform_infra.render import output
from tests.support.cli import invoke
from tests.support.hypothesis import examples
from tests.support.specsets import REPO

ACTIONS = st.sampled_from(["remove", "restore", "rmdir", "unlink", "", "rm -rf"])


def _paths(victim: str, root: str) -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.none(),
        st.sampled_from([victim, root, f"{root}/../outside", f"{root}/prod/../../outside", "/", "relative/path"]),
        st.text(max_size=20),
    )


@st.composite
def planted(draw: st.DrawFn, victim: str, root: str) -> dict:
    """What a pull request may commit under OUT/: journals, symlinked bookkeeping, a .terraform/ tree."""
    lines = draw(
        st.lists(
            st.one_of(
                st.tuples(ACTIONS, _paths(victim, root), _paths(victim, root), st.text(max_size=64)).map(list),
                st.text(max_size=40),
            ),
            max_size=4,
        )
    )
    return {
        "journal": [line if isinstance(line, str) else json.dumps(line) for line in lines],
        "link": draw(st.sampled_from([None, "prod/.dfinfra", "prod/.dfinfra/lock", "prod/.dfinfra/logs", "prod"])),
        "terraform": draw(st.booleans()),
    }


# Answers `version` as terraform 1.11.4 and fails everything else at once: plan goes through every trust check
# (lock, logs, bookkeeping, the init stamp) and stops at `terraform init`, reaching no network.
FAKE_TERRAFORM = """#!/bin/sh
if [ "$1" = version ]; then echo '{"terraform_version": "1.11.4"}'; exit 0; fi
echo "offline: $*" >&2
exit 1
"""


@pytest.fixture(scope="module")
def fake_terraform(tmp_path_factory):
    path = tmp_path_factory.mktemp("bin") / "terraform"
    path.write_text(FAKE_TERRAFORM)
    path.chmod(0o755)
    return str(path)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    checkout = tmp_path_factory.mktemp("rendered")
    shutil.copytree(REPO / "environments", checkout / "environments")
    assert invoke("render", "--all", cwd=checkout).returncode == 0
    return checkout


@examples(0.1)
@given(data=st.data())
def test_nothing_planted_in_the_output_directory_is_replayed_followed_or_run(
    rendered, fake_terraform, tmp_path_factory, data
):
    checkout = tmp_path_factory.mktemp("checkout")
    shutil.copytree(rendered, checkout, dirs_exist_ok=True, symlinks=True)
    outside = tmp_path_factory.mktemp("outside")
    victim = outside / "precious"
    victim.write_text("keep me")
    root = checkout / "build"
    plant = data.draw(planted(str(victim), str(root)))
    if plant["journal"]:
        staging = root / f"{output.STAGING_PREFIX}planted"
        staging.mkdir()
        (staging / "journal").write_text("\n".join(plant["journal"]) + "\n")
    if plant["link"]:
        link = root / plant["link"]
        shutil.rmtree(link, ignore_errors=True) if link.is_dir() and not link.is_symlink() else link.unlink(True)
        link.symlink_to(outside)
    if plant["terraform"]:
        provider = root / "prod" / ".terraform" / "providers" / "terraform-provider-google"
        provider.parent.mkdir(parents=True, exist_ok=True)
        provider.write_text(f"#!/bin/sh\ntouch {outside}/ran\n")
        provider.chmod(0o755)
    planted_there = sorted(p.relative_to(outside) for p in outside.rglob("*"))
    for args in (("render", "--all"), ("render", "--all", "--check"), ("plan", "prod", "--no-render")):
        result = invoke(*args, cwd=checkout, env={"DFINFRA_TERRAFORM_BIN": fake_terraform})
        assert "Traceback" not in result.output
        assert result.returncode in (0, 1, 2), result.output
    assert victim.read_text() == "keep me"
    assert sorted(p.relative_to(outside) for p in outside.rglob("*")) == planted_there  # nothing written or run


TERRAFORM_WORDS = st.sampled_from(
    ["apply", "destroy", "state", "mv", "rm", "list", "import", "plan", "output", "force-unlock", "a.b", "x"]
)
OPTIONS = st.sampled_from(["-chdir=/etc", "-chdir", "--chdir=/", "-auto-approve", "-lock=false", "-no-color", "-json"])


@examples()
@given(args=st.lists(st.one_of(TERRAFORM_WORDS, OPTIONS, st.text(max_size=12)), max_size=6))
def test_passthrough_arguments_never_escape_the_module_or_the_guards(args):
    try:
        command = _passthrough_command(args)
    except UsageError as refused:
        assert str(refused)
        return
    assert not any(a.startswith(("-chdir", "--chdir")) for a in args)
    assert command not in NOT_PASSED_THROUGH
    first = next(a for a in args if not a.startswith("-"))
    assert command == first or (first in ("state", "workspace") and command.startswith(f"{first} "))
