"""Benchmark: loopml's pipelines against ZenML's default local stack.

    python bench/pipelines.py                # 5 repeats of everything: about 6 minutes
    python bench/pipelines.py --quick        # 1 repeat: a smoke run
    python bench/pipelines.py --skip-zenml   # loopml only; the ratios are null

Two pipelines, the same code on both sides (``bench/_pipelines_loopml.py`` and
``bench/_pipelines_zenml.py``):

* the 3-step pipeline: ``ingest`` (scikit-learn's bundled breast cancer data as a DataFrame,
  569 rows x 31 columns) -> ``transform`` (StandardScaler'd DataFrame) -> ``train``
  (``LogisticRegression(max_iter=1000)``, the fitted model is the output);
* the 20-step chain of trivial steps: ``step_i(x) -> x + 1``, from 0 to 20.

Per repeat and tool, one fresh workspace (loopml: ``LOOPML_WORKSPACE``; ZenML: its global
configuration and local store under ``ZENML_CONFIG_PATH``, the repository and source root in
the same folder) and, in it, one fresh process per measurement, in this order:

1. ``first``: the 3-step pipeline on the empty workspace; for ZenML the time includes
   ``Client.initialize()`` (what ``zenml init`` does, which creates the local store);
2. ``uncached``: a re-run with the cache off (loopml ``.run(cache=False)``, ZenML
   ``with_options(enable_cache=False)``);
3. ``cached``: a re-run with the same parameters and the cache on (each tool's default); the
   goal is ``cached_vs_zenml`` = ZenML's time / loopml's >= 10. The process then makes the
   same call again: the warm in-process figure (``cached_warm_s``), without the one-off costs
   of a first call in a process (each tool loads its SQL store lazily, for one);
4. ``chain_warmup`` then ``chain``: the 20-step chain with the cache off, first once so that
   the pipeline is known to the store, then the measured process, which calls it twice (the
   first call pays the process's one-off costs, the second does not). Per-step overhead =
   (the chain's time - the sum of the 20 bare function times) / 20, taken on the second call:
   what each further step costs, without the once-per-process costs (loading the SQL store,
   reading the installed packages) that the first call spreads over its 20 steps; that
   first-call figure is reported too (``step_overhead_first_call_ms``). The goal is
   ``step_overhead_ms`` (loopml's) < 20 ms.

Times are of the pipeline call inside the process (``time.perf_counter``); the import of the
tool (after pandas and scikit-learn, which are timed apart) and each process's whole wall
time are reported too. Figures are medians over the repeats (``--quick``: 1 repeat).

ZenML runs in a virtualenv of its own (default ``<repo>/.bench/zenml-venv``, made on first use
with ``zenml[local]``, our scikit-learn and pandas versions and pyarrow; plain ``zenml`` cannot
run a pipeline locally: its local store needs the ``local`` extra). ZenML's analytics are off
(``ZENML_ANALYTICS_OPT_IN=false``), the one setting changed from its defaults. Progress goes
to stderr; stdout has a table, notes and, as its last line, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:  # when imported rather than run as a script
    sys.path.insert(0, str(BENCH_DIR))

from tracking import (  # noqa: E402  (the bench folder must be on sys.path first)
    REPO,
    BenchError,
    child_env,
    say,
    venv_python,
    warn,
)

Figures = dict[str, Any]

DEFAULT_ZENML_VENV = REPO / ".bench" / "zenml-venv"
ZENML_REQUIREMENT = "zenml[local]>=0.98,<1"
LOOPML_WORKER = BENCH_DIR / "_pipelines_loopml.py"
ZENML_WORKER = BENCH_DIR / "_pipelines_zenml.py"
TOOLS = ("loopml", "zenml")
PHASES = ("first", "uncached", "cached", "chain_warmup", "chain")
CHAIN_LENGTH = 20
THREE_STEPS = 3
STEP_OVERHEAD_GOAL_MS = 20.0
CACHED_GOAL = 10.0
WORKER_TIMEOUT_S = 600.0


# -- the workers ---------------------------------------------------------------------------------
class Side:
    """How to start one tool's worker in a workspace folder."""

    def __init__(self, tool: str, python: Path | str, executor: str | None = None) -> None:
        self.tool = tool
        self.python = python
        self.executor = executor

    def env(self, workspace: Path) -> dict[str, str]:
        env = {k: v for k, v in child_env().items() if not k.startswith("ZENML_")}
        # Both tools run from compiled bytecode, as installed packages do (pip writes the .pyc
        # files); without this an editable loopml would be compiled from source in every process
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if self.tool == "loopml":
            env["LOOPML_WORKSPACE"] = str(workspace / "loopml")
        else:
            env.update(
                ZENML_ANALYTICS_OPT_IN="false",  # this is a benchmark, and there is no network
                ZENML_CONFIG_PATH=str(workspace / "zenml-config"),
                ZENML_REPOSITORY_PATH=str(workspace),
            )
        return env

    def script(self, workspace: Path) -> Path:
        if self.tool == "loopml":
            return LOOPML_WORKER
        # ZenML loads steps by module from its source root, the repository root: the worker
        # lives there
        script = workspace / "zenml_worker.py"
        if not script.exists():
            shutil.copyfile(ZENML_WORKER, script)
        return script

    def run(self, workspace: Path, phase: str, profile: Path | None = None) -> Figures:
        """One worker process; its figures plus ``process_s``, its whole wall time."""
        out = workspace / f"{phase}.json"
        log = workspace / f"{phase}.log"
        cfg = {
            "phase": phase,
            "out": str(out),
            "calls": 2 if phase in ("cached", "chain") else 1,
            "executor": self.executor,
            "profile": str(profile) if profile else None,
        }
        cmd = [str(self.python), str(self.script(workspace)), json.dumps(cfg)]
        out.unlink(missing_ok=True)
        t0 = time.perf_counter()
        with log.open("w") as sink:
            proc = subprocess.run(
                cmd,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env(workspace),
                cwd=workspace,
                timeout=WORKER_TIMEOUT_S,
            )
        process_s = time.perf_counter() - t0
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise BenchError(f"{self.tool} worker ({phase}) exited {proc.returncode}:\n{tail}")
        figures: Figures = json.loads(out.read_text())
        figures["process_s"] = process_s
        return figures


def measure_repeat(side: Side, scratch: Path, repeat: int) -> dict[str, Figures]:
    """Every phase in order, each in a fresh process, in one fresh workspace."""
    workspace = Path(tempfile.mkdtemp(prefix=f"{side.tool}-{repeat}-", dir=scratch))
    out: dict[str, Figures] = {}
    for phase in PHASES:
        figures = side.run(workspace, phase)
        out[phase] = figures
        say(
            f"  {side.tool} {phase}: {figures['run_s'] + figures.get('init_s', 0.0):.3f} s "
            f"in the process, {figures['process_s']:.2f} s wall"
        )
    check(side.tool, out)
    shutil.rmtree(workspace, ignore_errors=True)
    return out


def check(tool: str, phases: dict[str, Figures]) -> None:
    """Warn when a run did not do what it was meant to: all steps cached or none, etc."""
    for phase, f in phases.items():
        if f["status"] not in ("completed", "cached"):
            warn(f"{tool} {phase}: the pipeline run ended {f['status']!r}")
        cached = sorted(name for name, status in f["steps"].items() if "cached" in status)
        expected = CHAIN_LENGTH if phase.startswith("chain") else THREE_STEPS
        if len(f["steps"]) != expected:
            warn(f"{tool} {phase}: {len(f['steps'])} steps reported, {expected} expected")
        if phase == "cached" and len(cached) != len(f["steps"]):
            warn(f"{tool} {phase}: not every step was cached: {f['steps']}")
        if phase != "cached" and cached:
            warn(f"{tool} {phase}: steps were cached in a run meant to run them: {cached}")
        if phase.startswith("chain") and f["value"] != CHAIN_LENGTH:
            warn(f"{tool} {phase}: the chain ended at {f['value']}, not {CHAIN_LENGTH}")
        if not phase.startswith("chain") and abs(f["accuracy"] - f["bare_accuracy"]) > 1e-9:
            warn(f"{tool} {phase}: accuracy {f['accuracy']} != bare {f['bare_accuracy']}")


def summarise(repeats: list[dict[str, Figures]]) -> Figures:
    """Medians over the repeats of one tool's figures."""

    def med(values: Sequence[float]) -> float:
        return float(statistics.median(values))

    def phase_med(phase: str, key: str) -> float:
        return med([r[phase][key] for r in repeats])

    chain_overheads = [
        (r["chain"]["run_s"] - r["chain"]["bare_s"]) / CHAIN_LENGTH * 1000 for r in repeats
    ]
    warm_overheads = [
        (r["chain"]["warm_run_s"] - r["chain"]["bare_s"]) / CHAIN_LENGTH * 1000 for r in repeats
    ]
    three_overheads = [
        (r["uncached"]["run_s"] - r["uncached"]["bare_s"]) / THREE_STEPS * 1000 for r in repeats
    ]
    first = repeats[0]["first"]
    return {
        "first_run_s": med([r["first"]["run_s"] + r["first"]["init_s"] for r in repeats]),
        "init_s": phase_med("first", "init_s"),
        "uncached_s": phase_med("uncached", "run_s"),
        "cached_s": phase_med("cached", "run_s"),
        "cached_warm_s": phase_med("cached", "warm_run_s"),
        "chain20_s": phase_med("chain", "run_s"),
        "chain20_warm_s": phase_med("chain", "warm_run_s"),
        "chain20_first_s": phase_med("chain_warmup", "run_s"),
        "chain20_bare_s": phase_med("chain", "bare_s"),
        "three_step_bare_s": phase_med("uncached", "bare_s"),
        "step_overhead_ms": med(warm_overheads),
        "step_overhead_first_call_ms": med(chain_overheads),
        "three_step_overhead_ms": med(three_overheads),
        "import_s": med([r[p]["import_s"] for r in repeats for p in PHASES]),
        "libs_s": med([r[p]["libs_s"] for r in repeats for p in PHASES]),
        "process_s": {p: phase_med(p, "process_s") for p in PHASES},
        "times_s": {p: [r[p]["run_s"] + r[p].get("init_s", 0.0) for r in repeats] for p in PHASES},
        "step_statuses": {p: repeats[0][p]["steps"] for p in ("uncached", "cached")},
        "accuracy": first["accuracy"],
        "version": first["version"],
        "sklearn_version": first["sklearn_version"],
        "pandas_version": first["pandas_version"],
    }


def profile_side(side: Side, scratch: Path, folder: Path) -> dict[str, str]:
    """Extra runs under cProfile: the 3-step re-runs and the chain; the top of each."""
    folder.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix=f"{side.tool}-profile-", dir=scratch))
    out: dict[str, str] = {}
    for phase in PHASES:
        profiled = phase in ("uncached", "cached", "chain")
        path = folder / f"{side.tool}-{phase}.prof" if profiled else None
        side.run(workspace, phase, profile=path)
        if path is not None:
            out[phase] = str(path)
            say(f"profile of {side.tool} {phase} (cumulative, top 25): {path}")
            stats = pstats.Stats(str(path), stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(25)
    shutil.rmtree(workspace, ignore_errors=True)
    return out


# -- ZenML's virtualenv --------------------------------------------------------------------------
def _probe(python: Path) -> Figures | None:
    """The versions of ZenML, scikit-learn and pandas in a venv; None if ZenML is missing."""
    if not python.exists():
        return None
    code = (
        "import json, zenml, sqlalchemy; from importlib.metadata import version as v; "
        "print(json.dumps({p: v(p) for p in ('zenml', 'scikit-learn', 'pandas', 'pyarrow')}))"
    )
    probe = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=child_env()
    )
    if probe.returncode != 0:
        return None
    found: Figures = json.loads(probe.stdout.strip().splitlines()[-1])
    return found


def ensure_zenml_venv(venv: Path) -> Path:
    """The ZenML virtualenv's interpreter, made and filled first if needed, with our versions
    of scikit-learn and pandas (the workload's libraries are then the same on both sides)."""
    from importlib.metadata import version

    venv = venv.absolute()
    python = venv_python(venv)
    pins = [f"scikit-learn=={version('scikit-learn')}", f"pandas=={version('pandas')}"]
    found = _probe(python)
    wanted = {"scikit-learn": version("scikit-learn"), "pandas": version("pandas")}
    if found and all(found[k] == v for k, v in wanted.items()):
        return python
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    if found is None:
        if not python.exists():
            say(f"creating a virtualenv for ZenML in {venv} ...")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        say(f"installing {ZENML_REQUIREMENT}, {', '.join(pins)} and pyarrow (a few minutes) ...")
        subprocess.run([*pip, "--upgrade", "pip"], check=True, stdout=sys.stderr)
        subprocess.run([*pip, ZENML_REQUIREMENT, *pins, "pyarrow"], check=True, stdout=sys.stderr)
    else:
        say(f"installing {', '.join(pins)} into {venv} ...")
        subprocess.run([*pip, *pins], check=True, stdout=sys.stderr)
    if _probe(python) is None:
        raise BenchError(f"{python} still cannot import zenml and sqlalchemy")
    return python


# -- report --------------------------------------------------------------------------------------
def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


ROWS = (
    ("3-step first run (empty store), s", "first_run_s"),
    ("3-step uncached re-run, s", "uncached_s"),
    ("3-step cached re-run, s", "cached_s"),
    ("  the same, again in the process, s", "cached_warm_s"),
    ("20-step chain, uncached, s", "chain20_s"),
    ("per-step overhead, ms", "step_overhead_ms"),
    ("  the same, first call in a process, ms", "step_overhead_first_call_ms"),
    ("import, s", "import_s"),
)


def _load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: other work on the machine moves the figures."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def table(f: Figures) -> str:
    rows = [("measure", "loopml", "ZenML", "ZenML / loopml")]
    lo, zn = f["loopml"], f["zenml"]
    for label, key in ROWS:
        z = zn[key] if zn else None
        rows.append((label, _num(lo[key]), _num(z), _num(_ratio(z, lo[key]), "x")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def notes(f: Figures) -> list[str]:
    goals = f["goals_met"]

    def verdict(key: str) -> str:
        met = goals[key]
        return "-" if met is None else ("met" if met else "NOT met")

    lo, zn = f["loopml"], f["zenml"]
    out = [
        f"goals: per-step overhead {_num(f['step_overhead_ms'])} ms (< {STEP_OVERHEAD_GOAL_MS:.0f}"
        f" ms: {verdict('step_overhead')}); cached re-run {_num(f['cached_vs_zenml'], 'x')} "
        f"faster than ZenML (>= {CACHED_GOAL:.0f}x: {verdict('cached')})",
        f"whole-process wall time of the cached re-run, interpreter and imports included: "
        f"loopml {_num(lo['process_s']['cached'])} s"
        + (
            f", ZenML {_num(zn['process_s']['cached'])} s "
            f"({_num(f['cached_vs_zenml_process'], 'x')})"
            if zn
            else ""
        ),
    ]
    for name, side in (("loopml", lo), ("ZenML", zn)):
        if side is None:
            continue
        line = (
            f"{name}: pandas + scikit-learn import {_num(side['libs_s'])} s; the chain's first "
            f"run {_num(side['chain20_first_s'])} s, warm in-process re-run "
            f"{_num(side['chain20_warm_s'])} s ({_num(side['step_overhead_ms'])} ms a step); "
            f"3-step uncached overhead {_num(side['three_step_overhead_ms'])} ms a step (bare "
            f"functions {_num(side['three_step_bare_s'])} s)"
        )
        if name == "ZenML":
            line += f"; Client.initialize {_num(side['init_s'])} s of the first run"
        out.append(line)
    load = f["load_average"]
    out.append(
        f"{f['repeats']} repeat(s), medians; executor {f['executor'] or 'default'}; load "
        f"average (1 min) {load['start'][0] if load['start'] else '-'} at the start, "
        f"{load['end'][0] if load['end'] else '-'} at the end"
        + ("; --quick: 1 repeat, the verdicts are indicative" if f["quick"] else "")
    )
    return out


# -- entry point ---------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark loopml's pipelines against ZenML.")
    p.add_argument("--quick", action="store_true", help="1 repeat, for a smoke run")
    p.add_argument("--skip-zenml", action="store_true", help="measure loopml only")
    p.add_argument("--repeats", type=int, metavar="N", help="repeats (default: 5; --quick: 1)")
    p.add_argument("--executor", help="loopml's executor (default: the engine's default, 'local')")
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="after the measurement, profile the cached re-run and the chain of each tool "
        "(cProfile files in DIR, the top of each on stderr; not figures)",
    )
    p.add_argument(
        "--zenml-venv",
        type=Path,
        default=DEFAULT_ZENML_VENV,
        help="virtualenv for ZenML, made on first use (default: .bench/zenml-venv)",
    )
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> Figures:
    import loopml

    repeats = args.repeats or (1 if args.quick else 5)
    load_start = _load()
    sides = [Side("loopml", sys.executable, args.executor)]
    if not args.skip_zenml:
        sides.append(Side("zenml", ensure_zenml_venv(args.zenml_venv)))
    results: dict[str, list[dict[str, Figures]]] = {s.tool: [] for s in sides}
    profiles: dict[str, dict[str, str]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="loopml-bench-pipelines-"))
    try:
        for i in range(repeats):
            for side in sides:
                say(f"repeat {i + 1} of {repeats}: {side.tool} ...")
                results[side.tool].append(measure_repeat(side, scratch, i))
        if args.profile:
            for side in sides:
                profiles[side.tool] = profile_side(side, scratch, args.profile.absolute())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lo = summarise(results["loopml"])
    zn = summarise(results["zenml"]) if "zenml" in results else None
    figures: Figures = {
        "step_overhead_ms": lo["step_overhead_ms"],
        "zenml_step_overhead_ms": zn["step_overhead_ms"] if zn else None,
        "cached_vs_zenml": _ratio(zn["cached_s"], lo["cached_s"]) if zn else None,
        "cached_vs_zenml_process": (
            _ratio(zn["process_s"]["cached"], lo["process_s"]["cached"]) if zn else None
        ),
    }
    for key in ("first_run_s", "uncached_s", "cached_s", "import_s", "chain20_s"):
        figures[key] = {"loopml": lo[key], "zenml": zn[key] if zn else None}
    for key in ("cached_warm_s", "chain20_warm_s", "step_overhead_first_call_ms"):
        figures[key] = {"loopml": lo[key], "zenml": zn[key] if zn else None}
    for key in ("first_run_s", "uncached_s", "chain20_s", "import_s", "cached_warm_s"):
        name = key.removesuffix("_s") + "_vs_zenml"
        figures[name] = _ratio(zn[key], lo[key]) if zn else None
    figures.update(
        loopml=lo,
        zenml=zn,
        versions={
            "loopml": loopml.__version__,
            "zenml": zn["version"] if zn else None,
            "python": platform.python_version(),
            "scikit_learn": lo["sklearn_version"],
            "pandas": lo["pandas_version"],
            "zenml_scikit_learn": zn["sklearn_version"] if zn else None,
            "zenml_pandas": zn["pandas_version"] if zn else None,
        },
        executor=args.executor,
        repeats=repeats,
        quick=args.quick,
        cpus=os.cpu_count(),
        date=dt.date.today().isoformat(),
        load_average={"start": load_start, "end": _load()},
        profiles=profiles or None,
    )
    figures["goals_met"] = {
        "step_overhead": figures["step_overhead_ms"] < STEP_OVERHEAD_GOAL_MS,
        "cached": (
            None
            if figures["cached_vs_zenml"] is None
            else figures["cached_vs_zenml"] >= CACHED_GOAL
        ),
    }
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        figures = run(args)
    except (BenchError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"[bench] failed: {exc}", file=sys.stderr)
        return 1
    figures["bench_seconds"] = round(time.perf_counter() - started, 1)
    print()
    print(table(figures))
    print()
    for line in notes(figures):
        print(f"  {line}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
