"""The per-module lock: taken once per process, waited for up to --lock-timeout, never left stale."""

import subprocess
import sys

import pytest

from dataform_infra.errors import ModuleBusy, UsageError
from dataform_infra.locks import ModuleLocks, duration_seconds


@pytest.mark.parametrize(("text", "seconds"), [("0s", 0), ("60s", 60), ("5m", 300), ("1h30m", 5400), ("1.5s", 1.5)])
def test_lock_timeouts_read_as_terraform_reads_them(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "60", "soon", "5 m", "-1s", "1s "])
def test_anything_else_is_bad_input(text):
    with pytest.raises(UsageError, match="is not a duration"):
        duration_seconds(text)


HOLD = """
import sys, time
from pathlib import Path
from dataform_infra.locks import ModuleLocks
locks = ModuleLocks("0s")
locks.hold(Path(sys.argv[1]), "apply")
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_process_is_told_who_holds_the_module_and_a_dead_holder_frees_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(ModuleBusy, match=rf"in use by another dfinfra \(pid {holder.pid}, apply, since "):
            ModuleLocks("0s").hold(tmp_path, "plan")
    finally:
        holder.kill()
        holder.wait()
    locks = ModuleLocks("0s")
    locks.hold(tmp_path, "plan")  # the kernel released the killed holder's lock: nothing stale to clear
    locks.hold(tmp_path, "apply")  # again in the same process: already held
    locks.release_all()


def test_a_module_directory_that_does_not_exist_yet_is_not_created(tmp_path):
    """Nothing to share there yet; the step that creates it (the render) is followed by one that locks it,
    under the name of what the process came to do."""
    locks = ModuleLocks("0s")
    module = tmp_path / "build" / "prod"
    locks.hold(module, "apply")
    assert not (tmp_path / "build").exists()
    module.mkdir(parents=True)
    locks.hold(module, "plan")  # apply plans first
    assert '"operation": "apply"' in (module / ".dfinfra" / "lock").read_text()
    locks.release_all()


RENDERING = """
import sys, time
from pathlib import Path
from dataform_infra.locks import render_lock
with render_lock(Path(sys.argv[1]), "0s"):
    print("rendering", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_render_waits_for_another_up_to_the_lock_timeout_and_then_writes_nothing(tmp_path):
    """Renders and terraform runs share one lock primitive: both honour --lock-timeout, both say who waits."""
    from dataform_infra.render.output import RenderedModule, write_modules

    module = [RenderedModule("a", {"main.tf": "# x\n"})]
    holder = subprocess.Popen([sys.executable, "-c", RENDERING, str(tmp_path), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "rendering\n"
        told: list[str] = []
        with pytest.raises(ModuleBusy, match=r"being rendered by another dfinfra.*--lock-timeout 0\.3s"):
            write_modules(tmp_path, module, lock_timeout="0.3s", waiting=told.append)
        assert told == [f"{tmp_path}: waiting for another dfinfra to finish rendering there"]
        assert not (tmp_path / "a").exists()
    finally:
        holder.kill()
        holder.wait()
    brief = subprocess.Popen([sys.executable, "-c", RENDERING, str(tmp_path), "0.5"], stdout=subprocess.PIPE, text=True)
    assert brief.stdout is not None and brief.stdout.readline() == "rendering\n"
    assert write_modules(tmp_path, module, lock_timeout="30s") == [tmp_path / "a" / "main.tf"]  # waited, then wrote
    brief.wait()
