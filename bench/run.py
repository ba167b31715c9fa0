"""dfinfra's benchmarks: whole processes, timed against floors measured in the same run.

    python bench/run.py [--runs 10] [--quick]

Writes bench/RESULTS.md (tables, targets met or not) and bench/scaling.png. Every timing is a
whole `dfinfra` process, median/min/max over --runs runs, beside two floors from the same run:
`python -c pass` and `python -c "import typer, pydantic, jinja2, yaml"` (the dependency import floor).
Targets are ratios to that floor, so they hold on slower or faster machines alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.specs import dataset_grants, environments, every_minute, megabyte, workflows  # noqa: E402

DFINFRA = str(Path(sys.executable).with_name("dfinfra"))


@dataclass
class Timing:
    name: str
    seconds: list[float]
    peak_rss_kb: int
    output_bytes: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _run_once(argv: list[str], cwd: Path, output: Path | None, env: dict[str, str] | None = None) -> tuple[float, int]:
    if output is not None and output.exists():
        shutil.rmtree(output)
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in ((0, 2) if "plan" in argv else (0,)):
        raise SystemExit(f"{' '.join(argv)} failed")
    return elapsed, usage.ru_maxrss


def measure(
    jobs: dict[str, tuple[list[str], Path | None]],
    runs: int,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    cwds: dict[str, Path] | None = None,
) -> dict[str, Timing]:
    """Runs every job `runs` times, interleaved (one of each per round, after a warm-up round), so
    machine noise hits floors and commands alike; wall time and peak RSS of each whole process."""
    timings = {name: Timing(name, [], 0) for name in jobs}
    for round_ in range(runs + 1):
        for name, (argv, output) in jobs.items():
            elapsed, rss = _run_once(argv, (cwds or {}).get(name, cwd), output, env)
            if round_:  # the first round only warms caches
                timings[name].seconds.append(elapsed)
                timings[name].peak_rss_kb = max(timings[name].peak_rss_kb, rss)
    for name, (_, output) in jobs.items():
        if output is not None:
            timings[name].output_bytes = sum(p.stat().st_size for p in output.rglob("*.tf"))
    return timings


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 runs, for a smoke test")
    args = parser.parse_args()
    runs = 3 if args.quick else max(args.runs, 10)
    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="dfinfra-bench-"))
    try:
        results = run_all(work, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(results, runs)


def compile_bytecode() -> None:
    """Compile dataform_infra's bytecode, as installing the wheel does. The checkout is installed editable,
    and where PYTHONDONTWRITEBYTECODE is set (this workplace sets it) every run would compile each module
    from source again, 60-140 ms that no installed dfinfra pays while the floor's packages pay none."""
    import compileall

    if not compileall.compile_dir(str(REPO / "dataform_infra"), quiet=1):
        raise SystemExit("bench: dataform_infra does not compile")


WORKFLOW_COUNTS = (1, 10, 100, 500, 1000)
ENVIRONMENT_COUNTS = (1, 10, 50)
DATASET_GRANT_COUNTS = (8000, 16000)
MEGABYTE_SHAPES = ("grants", "people", "workflows")


def run_all(work: Path, runs: int) -> dict:
    py = sys.executable
    out = work / "shipped"
    processes = measure(
        {
            "python -c pass": ([py, "-c", "pass"], None),
            "import floor": ([py, "-c", "import typer, pydantic, jinja2, yaml"], None),
            "dfinfra --help": ([DFINFRA, "--help"], None),
            "dfinfra render --all": ([DFINFRA, "render", "--all", "--out", str(out)], out),
            "dfinfra validate": ([DFINFRA, "validate"], None),
        },
        runs,
    )
    jobs = {}
    for count in WORKFLOW_COUNTS:
        specs, target = workflows(work / f"wf{count}", count), work / f"wf{count}-out"
        jobs[f"{count} workflows"] = ([DFINFRA, "render", "--all", "-e", str(specs), "--out", str(target)], target)
    for count in ENVIRONMENT_COUNTS:
        specs, target = environments(work / f"env{count}", count), work / f"env{count}-out"
        jobs[f"{count} environments"] = ([DFINFRA, "render", "--all", "-e", str(specs), "--out", str(target)], target)
    big = every_minute(work / "every-minute")
    jobs["1 MB of every-minute crons (validate)"] = ([DFINFRA, "validate", "-e", str(big)], None)
    for count in DATASET_GRANT_COUNTS:
        specs = dataset_grants(work / f"grants{count}", count)
        jobs[f"{count:,} dataset grants (validate)"] = ([DFINFRA, "validate", "-e", str(specs)], None)
    for shape in MEGABYTE_SHAPES:
        specs = megabyte(work / f"mb-{shape}", shape)
        jobs[f"1 MB of {shape} (validate)"] = ([DFINFRA, "validate", "-e", str(specs)], None)
    scaling = measure(jobs, runs)
    lifecycle = measure_lifecycle(work, runs)
    peer = measure_peer(work, runs)
    return {
        "lifecycle": lifecycle,
        "peer": peer,
        "floors": {k: processes[k] for k in ("python -c pass", "import floor")},
        "commands": {k: processes[k] for k in ("dfinfra --help", "dfinfra render --all", "dfinfra validate")},
        "workflows": {c: scaling[f"{c} workflows"] for c in WORKFLOW_COUNTS},
        "environments": {c: scaling[f"{c} environments"] for c in ENVIRONMENT_COUNTS},
        "big": scaling["1 MB of every-minute crons (validate)"],
        "grants": {c: scaling[f"{c:,} dataset grants (validate)"] for c in DATASET_GRANT_COUNTS},
        "megabytes": {shape: scaling[f"1 MB of {shape} (validate)"] for shape in MEGABYTE_SHAPES},
    }


def measure_lifecycle(work: Path, runs: int) -> dict[str, Timing]:
    """`dfinfra plan` beside raw `terraform plan` on the same module and the same offline cloud (the
    test suite's: a fake Google provider over a local store, a local GCS emulator for the state), and
    `dfinfra lint` on the shipped modules."""
    from tests.fakegcp.harness import GcsEmulator, OfflineCloud
    from tests.support.project import Project

    terraform = shutil.which("terraform")
    if terraform is None:
        raise SystemExit("bench: terraform is needed on PATH for the plan benchmark")
    gcs = GcsEmulator().start()
    try:
        cloud = OfflineCloud(work / "cloud", terraform, gcs)
        project = Project(work / "checkout", cloud)
        project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
        project.run("apply", "--all", "--auto-approve", "--confirm", "prod")
        module = project.root / "build" / "prod"
        env = {**cloud.env, "CI": "true"}
        plan_file = work / "raw.tfplan"
        raw = [terraform, "plan", "-input=false", "-lock-timeout=60s", "-detailed-exitcode", f"-out={plan_file}"]
        # What a per-attribute diff costs anyone: the plan, then its JSON, which only `terraform show -json` gives
        # (a second process that loads both providers' schemas again).
        plan_then_show = [
            "sh",
            "-c",
            '"$0" plan -input=false -lock-timeout=60s -out="$1" && exec "$0" show -json "$1"',
            terraform,
            str(plan_file),
        ]
        cwds = {
            "terraform plan (prod, no changes)": module,
            "terraform plan (prod, a cron changed)": module,
            "terraform plan + show -json (prod, a cron changed)": module,
        }
        steady = measure(
            {
                "terraform plan (prod, no changes)": (raw, None),
                "dfinfra plan prod (no changes)": ([DFINFRA, "plan", "prod"], None),
                "dfinfra lint build/staging build/prod": (
                    [DFINFRA, "lint", str(project.root / "build" / "staging"), str(module)],
                    None,
                ),
            },
            runs,
            env=env,
            cwds=cwds,
            cwd=project.root,
        )
        spec = project.spec("prod")
        spec.write_text(spec.read_text().replace('cron: "45 6 * * *"', 'cron: "0 7 * * *"'))
        project.run("render", "prod")
        changed = measure(
            {
                "terraform plan (prod, a cron changed)": (raw, None),
                "terraform plan + show -json (prod, a cron changed)": (plan_then_show, None),
                "dfinfra plan prod (a cron changed)": ([DFINFRA, "plan", "prod"], None),
            },
            runs,
            env=env,
            cwds=cwds,
            cwd=project.root,
        )
        return {**steady, **changed}
    finally:
        gcs.stop()


def measure_peer(work: Path, runs: int) -> dict[str, Timing] | None:
    """The same staging + prod stacks synthesized by CDK Terrain (`pip install '.[bench-peer]'`), beside
    `dfinfra render --all`; None when cdktn is not installed."""
    try:
        import cdktn  # noqa: F401
    except ImportError:
        return None
    out = work / "peer-render"
    return measure(
        {
            "dfinfra render --all (staging + prod)": ([DFINFRA, "render", "--all", "--out", str(out)], out),
            "cdktn synth (staging + prod)": ([sys.executable, str(HERE / "peer_cdktn.py"), str(work / "cdktn")], None),
        },
        runs,
    )


def write_results(results: dict, runs: int) -> None:
    floor = results["floors"]["import floor"].median
    commands = results["commands"]
    wf = results["workflows"]
    envs = results["environments"]
    # Linear time: a workflow costs as much between 500 and 1,000 as between 1 and 500 (quadratic
    # growth would make the second slope about three times the first).
    # Fastest runs: the least disturbed by other load on the machine.
    slope_low = (min(wf[500].seconds) - min(wf[1].seconds)) / 499
    slope_high = (min(wf[1000].seconds) - min(wf[500].seconds)) / 500
    growth = slope_high / max(slope_low, 1e-9)
    targets = [
        ("`dfinfra --help` <= 1.5x import floor", commands["dfinfra --help"].median / floor, 1.5, "x"),
        (
            "`dfinfra render --all` (shipped) <= 3x import floor",
            commands["dfinfra render --all"].median / floor,
            3.0,
            "x",
        ),
        ("1,000 workflow configs render in <= 1 s", wf[1000].median, 1.0, "s"),
        ("time grows linearly: cost per workflow for 500-1,000 vs 1-500 (fastest runs) <= 1.5x", growth, 1.5, "x"),
        ("peak RSS of a shipped render <= 100 MB", commands["dfinfra render --all"].peak_rss_kb / 1024, 100.0, "MB"),
        ("`validate` of 1 MB of every-minute crons <= 2 s", results["big"].median, 2.0, "s"),
        ("peak RSS of that validate <= 200 MB", results["big"].peak_rss_kb / 1024, 200.0, "MB"),
        ("`validate` of 8,000 dataset grants <= 2 s", results["grants"][8000].median, 2.0, "s"),
        (
            "doubling the dataset grants (16,000) costs <= 2.2x",
            results["grants"][16000].median / results["grants"][8000].median,
            2.2,
            "x",
        ),
    ]
    for shape, timing in results["megabytes"].items():
        targets += [
            (f"`validate` of 1 MB of {shape} <= 2 s", timing.median, 2.0, "s"),
            ("peak RSS of that validate <= 200 MB", timing.peak_rss_kb / 1024, 200.0, "MB"),
        ]
    life = results["lifecycle"]
    raw_plan = life["terraform plan (prod, no changes)"].median
    targets += [
        (
            "`dfinfra plan prod` <= 1.25x raw `terraform plan` (same module, same offline cloud), no changes",
            life["dfinfra plan prod (no changes)"].median / raw_plan,
            1.25,
            "x",
        ),
        (
            "with a change, <= 1.15x raw `terraform plan -out` + `terraform show -json` (the per-attribute diff's "
            "source)",
            life["dfinfra plan prod (a cron changed)"].median
            / life["terraform plan + show -json (prod, a cron changed)"].median,
            1.15,
            "x",
        ),
        (
            "`dfinfra lint` of the shipped modules <= 1.5x import floor (no cache: every file parsed)",
            life["dfinfra lint build/staging build/prod"].median / floor,
            1.5,
            "x",
        ),
    ]
    lines = [
        "# Benchmark results",
        "",
        f"`python bench/run.py` on {datetime.now(timezone.utc):%Y-%m-%d}, {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}; every number is a whole process, {runs} runs after a warm-up, with "
        "dfinfra's bytecode compiled as an installed wheel has it.",
        "",
        "## Targets",
        "",
        "| target | measured | limit | met |",
        "|---|---|---|---|",
    ]
    for label, value, limit, unit in targets:
        lines.append(f"| {label} | {value:.2f}{unit} | {limit:g}{unit} | {'yes' if value <= limit else '**NO**'} |")
    changed_raw = life["terraform plan (prod, a cron changed)"].median
    floor_with_diff = life["terraform plan + show -json (prod, a cron changed)"].median
    lines += [
        "",
        f"With a change, raw `terraform plan` followed by `terraform show -json` (the only stable source of the "
        f"per-attribute diff) is already {floor_with_diff / changed_raw:.2f}x raw `terraform plan`; dfinfra's own "
        f"work adds {(life['dfinfra plan prod (a cron changed)'].median - floor_with_diff) / changed_raw:.2f}x.",
    ]
    lines += [
        "",
        "## Processes",
        "",
        "| process | median | min | max | / import floor | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for timing in [*results["floors"].values(), *commands.values(), *life.values()]:
        lines.append(
            f"| `{timing.name}` | {fmt(timing.median)} | {fmt(min(timing.seconds))} | "
            f"{fmt(max(timing.seconds))} | {timing.median / floor:.2f}x | {timing.peak_rss_kb / 1024:.0f} MB |"
        )
    lines += [
        "",
        "## Render scaling",
        "",
        "| spec | median | min | max | peak RSS | HCL written |",
        "|---|---|---|---|---|---|",
    ]
    for timing in [
        *wf.values(),
        *envs.values(),
        results["big"],
        *results["grants"].values(),
        *results["megabytes"].values(),
    ]:
        lines.append(
            f"| {timing.name} | {fmt(timing.median)} | {fmt(min(timing.seconds))} | {fmt(max(timing.seconds))}"
            f" | {timing.peak_rss_kb / 1024:.0f} MB | {timing.output_bytes / 1024:.0f} KiB |"
        )
    lines += [
        "",
        "![render scaling](scaling.png)",
        "",
        "## Compared with CDK Terrain (cdktn)",
        "",
        *peer_lines(results["peer"]),
        "",
    ]
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    plot(wf, envs)
    print("\n".join(lines))


def peer_lines(peer: dict[str, Timing] | None) -> list[str]:
    if peer is None:
        return [
            "Not measured in this run: `pip install '.[bench-peer]'` (cdktn, cdktn-provider-google and -google-beta; "
            "Node.js on PATH) and run again."
        ]
    ours, theirs = peer["dfinfra render --all (staging + prod)"], peer["cdktn synth (staging + prod)"]
    lines = [
        "The same staging + prod stacks (every resource dfinfra renders, as cdktn constructs: "
        "`bench/peer_cdktn.py`), measured side by side in this run:",
        "",
        "| process | median | min | max | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for timing in (ours, theirs):
        lines.append(
            f"| `{timing.name}` | {fmt(timing.median)} | {fmt(min(timing.seconds))} | {fmt(max(timing.seconds))} "
            f"| {timing.peak_rss_kb / 1024:.0f} MB |"
        )
    lines += [
        "",
        f"cdktn takes {theirs.median / ours.median:.0f}x the time and {theirs.peak_rss_kb / ours.peak_rss_kb:.0f}x "
        "the memory (its Node.js/JSII runtime loads the provider bindings before synthesizing).",
    ]
    return lines


def plot(wf: dict, envs: dict) -> None:
    try:
        import matplotlib
    except ImportError:  # the plot is optional (`pip install -e '.[bench]'`); RESULTS.md is already written
        print("bench: matplotlib not installed; scaling.png not redrawn", file=sys.stderr)
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, data, label in ((axes[0], wf, "workflow configs"), (axes[1], envs, "environments")):
        counts = list(data)
        axis.plot(counts, [data[c].median for c in counts], marker="o", label="median")
        axis.fill_between(
            counts,
            [min(data[c].seconds) for c in counts],
            [max(data[c].seconds) for c in counts],
            alpha=0.2,
            label="min-max",
        )
        axis.set_xlabel(label)
        axis.set_ylabel("seconds (whole process)")
        axis.set_title(f"dfinfra render --all vs {label}")
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(HERE / "scaling.png", dpi=100)


if __name__ == "__main__":
    main()
