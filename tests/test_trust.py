"""Only dfinfra's own working files are trusted in an output directory (#22): a planted render journal, a lock,
log or bookkeeping directory that is a symlink, a `.terraform/` dfinfra's init did not leave, and a saved plan
that is not the one its bookkeeping describes are refused (exit 2), never replayed, followed or run."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest

from dataform_infra import trust
from dataform_infra.errors import Untrusted
from dataform_infra.locks import ModuleLocks
from dataform_infra.render import output
from dataform_infra.terraform.binary import TerraformBinary
from dataform_infra.terraform.runner import TerraformRunner
from tests.support.cli import invoke
from tests.support.specsets import REPO


@pytest.fixture()
def checkout(tmp_path):
    """The shipped specs, rendered once into build/."""
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    assert invoke("render", "--all", cwd=tmp_path).returncode == 0
    return tmp_path


def _plant_journal(root, lines):
    staging = root / f"{output.STAGING_PREFIX}planted"
    staging.mkdir()
    (staging / "journal").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return staging


def test_a_committed_render_journal_is_refused_not_replayed(checkout, tmp_path_factory):
    victim = tmp_path_factory.mktemp("elsewhere") / "precious.txt"
    victim.write_text("keep me")
    staging = _plant_journal(
        checkout / "build",
        [["remove", str(victim), None, "0" * 64], ["rmdir", str(victim.parent), None, "0" * 64]],
    )
    # Bad input: exit 2, except for plan, whose 2 means "changes planned" (README's table: 1 there).
    for args, code in ((("render", "--all"), 2), (("plan", "prod", "--no-render"), 1)):
        result = invoke(*args, cwd=checkout)
        assert result.returncode == code, result.output
        assert f"{staging / 'journal'}: line 1 carries no seal" in result.stderr
        assert "Traceback" not in result.output
    assert victim.read_text() == "keep me" and staging.exists()


def test_a_sealed_journal_naming_a_path_outside_its_output_directory_is_refused(checkout, tmp_path_factory):
    """Even this user's own seal (a journal copied from another output directory) never reaches outside."""
    victim = tmp_path_factory.mktemp("elsewhere") / "precious.txt"
    victim.write_text("keep me")
    staging = checkout / "build" / f"{output.STAGING_PREFIX}copied"
    staging.mkdir()
    step = json.dumps(["remove", str(victim), None])
    (staging / "journal").write_text(json.dumps([*json.loads(step), trust.seal(staging / "journal", step)]) + "\n")
    result = invoke("render", "--all", cwd=checkout)
    assert result.returncode == 2 and "names a path outside" in result.stderr
    assert victim.read_text() == "keep me"


def test_symlinked_bookkeeping_is_never_written_through(checkout, tmp_path_factory):
    target = tmp_path_factory.mktemp("elsewhere")
    victim = target / "rendered.json"
    victim.write_text("keep me")
    bookkeeping = checkout / "build" / "prod" / ".dfinfra"
    shutil.rmtree(bookkeeping)
    bookkeeping.symlink_to(target)
    result = invoke("render", "--all", cwd=checkout)
    assert result.returncode == 2 and "is a symlink" in result.stderr
    assert victim.read_text() == "keep me"


def test_a_lock_or_log_that_is_a_symlink_is_refused(tmp_path):
    module = tmp_path / "prod"
    (module / ".dfinfra").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (module / ".dfinfra" / "lock").symlink_to(victim)
    with pytest.raises(Untrusted, match="is a symlink"):
        ModuleLocks("0s").hold(module, "apply")
    assert victim.read_text() == "keep me"  # the lock writes its holder: it truncated the target before
    (module / ".dfinfra" / "lock").unlink()
    (module / ".dfinfra" / "logs").symlink_to(tmp_path)
    runner = TerraformRunner(
        TerraformBinary("/usr/bin/terraform", (1, 11, 4), "terraform"), module, module / ".dfinfra" / "logs"
    )
    with pytest.raises(Untrusted, match="is a symlink"):
        runner.open_log("plan")


def _provider(module):
    plugin = module / ".terraform" / "providers" / "registry.terraform.io" / "hashicorp" / "google" / "7.45.0"
    plugin.mkdir(parents=True)
    binary = plugin / "terraform-provider-google"
    binary.write_text("#!/bin/sh\ntouch ran\n")
    binary.chmod(0o755)
    return binary


def test_a_committed_terraform_directory_is_refused_before_terraform_runs(checkout):
    """A provider in OUT/<env>/.terraform/ whose hash is in the lock file would run with the deployer's
    credentials: with no stamp of dfinfra's own init, plan and the passthrough stop before terraform."""
    module = checkout / "build" / "prod"
    _provider(module)
    for args, code in (
        (("plan", "prod", "--no-render"), 1),  # plan's 2 means "changes planned"
        (("terraform", "prod", "--no-render", "--", "state", "list"), 2),
    ):
        result = invoke(*args, cwd=checkout)
        assert result.returncode == code, result.output
        assert f"{module / '.terraform'} was not left there by dfinfra's own terraform init" in result.stderr
    assert not (module / "ran").exists() and not (checkout / "ran").exists()


def test_an_init_stamp_holds_while_nothing_is_added_and_fails_once_a_provider_changes(tmp_path):
    module = tmp_path / "prod"
    binary = _provider(module)
    with pytest.raises(Untrusted):
        trust.init_stamp(module)  # no stamp: not dfinfra's
    trust.seal_init(module, "inputs-digest")
    assert trust.init_stamp(module) == "inputs-digest"
    shutil.rmtree(module / ".terraform" / "providers" / "registry.terraform.io" / "hashicorp")
    assert trust.init_stamp(module) == "inputs-digest"  # removed since (a cleaned cache): re-init, not refuse
    binary = _provider(module)
    with pytest.raises(Untrusted):
        trust.init_stamp(module)  # added since
    trust.seal_init(module, "inputs-digest")
    binary.write_text("#!/bin/sh\ntouch swapped\n")
    os.utime(binary, ns=(binary.stat().st_atime_ns, binary.stat().st_mtime_ns + 1))
    with pytest.raises(Untrusted):
        trust.init_stamp(module)  # swapped since


def test_a_stamp_written_under_another_key_is_not_this_machines(tmp_path, monkeypatch):
    module = tmp_path / "prod"
    _provider(module)
    trust.seal_init(module, "inputs-digest")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "another-machine"))
    trust._key.cache_clear()
    try:
        with pytest.raises(Untrusted):
            trust.init_stamp(module)
        key = trust.state_dir() / "key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == trust.KEY_BYTES
    finally:
        trust._key.cache_clear()


def test_render_check_names_foreign_working_files(checkout):
    assert invoke("render", "--all", "--check", cwd=checkout).returncode == 0
    _provider(checkout / "build" / "prod")
    staging = _plant_journal(checkout / "build", [["rmdir", "/", None, "0" * 64]])
    result = invoke("render", "--all", "--check", cwd=checkout)
    assert result.returncode == 1, result.output
    assert "build/prod/.terraform" in result.output and staging.name in result.output
    assert staging.exists()  # --check reports; it replays nothing


def _plan_zip(path, files: dict[str, str], modules: str = '[{"Key": "", "Dir": "."}]') -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("tfplan", b"")
        for name, text in files.items():
            archive.writestr(f"tfconfig/m-/{name}", text)
        archive.writestr("tfconfig/modules.json", modules)


def test_a_saved_plan_must_carry_exactly_the_render_as_its_configuration(tmp_path):
    """`terraform apply PLAN` applies the configuration inside the plan file: a planted plan made from a module
    with a local-exec provisioner, beside bookkeeping that matches the render, must not pass (review finding)."""
    module = tmp_path / "prod"
    module.mkdir()
    (module / "main.tf").write_text("# Generated by dfinfra\n")
    plan = tmp_path / "tfplan"
    _plan_zip(plan, {"main.tf": "# Generated by dfinfra\n"})
    assert trust.plan_config_matches(plan, module)
    evil = 'resource "terraform_data" "x" {\n  provisioner "local-exec" {\n    command = "id"\n  }\n}\n'
    _plan_zip(plan, {"main.tf": "# Generated by dfinfra\n", "evil.tf": evil})
    assert not trust.plan_config_matches(plan, module)
    _plan_zip(plan, {"main.tf": "# Generated by dfinfra\n"}, modules='[{"Key": ""}, {"Key": "child", "Dir": "x"}]')
    assert not trust.plan_config_matches(plan, module)
    plan.write_bytes(b"not a zip")
    assert not trust.plan_config_matches(plan, module)


def test_plan_no_render_refuses_files_dfinfra_did_not_render(checkout):
    """A committed terraform.d/plugins/ is a provider mirror terraform uses on its own (review finding)."""
    plugins = checkout / "build" / "prod" / "terraform.d" / "plugins"
    plugins.mkdir(parents=True)
    result = invoke("plan", "prod", "--no-render", cwd=checkout)
    assert result.returncode == 1 and "files dfinfra did not generate (terraform.d)" in result.stderr


def test_bookkeeping_is_never_read_through_a_link_nor_a_journal_that_is_not_text(checkout):
    manifest = checkout / "build" / "prod" / ".dfinfra" / "rendered.json"
    manifest.unlink()
    manifest.symlink_to("/dev/zero")  # read through, it never ends
    assert invoke("render", "--all", cwd=checkout).returncode in (0, 2)
    staging = checkout / "build" / f"{output.STAGING_PREFIX}binary"
    staging.mkdir()
    (staging / "journal").write_bytes(b"\xff\xfe")
    result = invoke("render", "--all", cwd=checkout)
    assert result.returncode == 2 and "it is not UTF-8 text" in result.stderr and "Traceback" not in result.output
