"""Benchmark: loopml against MLflow on this machine, in one run, both on SQLite.

    python bench/tracking.py                 # full sizes (MLflow makes this take a while)
    python bench/tracking.py --quick         # small sizes: a smoke run
    python bench/tracking.py --skip-mlflow   # loopml only; the ratios are null

MLflow runs in a virtualenv of its own (default ``<repo>/.bench/mlflow-venv``, made on first
use with ``python -m venv`` and ``pip install mlflow``); loopml runs in the interpreter that runs
this script. Every measurement runs in a fresh subprocess with a fresh temporary folder, so
imports, caches and databases never carry over from one measurement to the next.

What is measured (the same data and sizes for both sides):

1. ``log_metric`` one call at a time inside an active run, until ``end_run()`` returns (for
   loopml this includes writing the buffered points).
2. ``log_batch`` of 10 keys x 100,000 steps (MLflow in chunks of 1000, its per-call limit).
3. ``search_runs`` over 10,000 runs: ``metrics.acc > 0.9`` ordered by ``metrics.acc DESC``,
   first 100; the median of 5 after one warm-up.
4. ``import loopml`` / ``import mlflow`` in a fresh interpreter, best of 5 after one warm-up.

The human table comes first; the last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MLFLOW_VENV = REPO / ".bench" / "mlflow-venv"
MLFLOW_REQUIREMENT = "mlflow>=3,<4"
SEED = 20240601
BASE_TS = 1_700_000_000_000  # a fixed timestamp (ms) for the points logged with one
SEARCH_FILTER = "metrics.acc > 0.9"
SEARCH_ORDER = "metrics.acc DESC"
SEARCH_LIMIT = 100
LOOPML_BATCH_CHUNK = 100_000
MLFLOW_BATCH_CHUNK = 1_000  # MLflow refuses more metrics in one log_batch call

Figures = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Sizes:
    log_metric_loopml: int
    log_metric_mlflow: int
    batch_keys: int
    batch_steps: int
    mlflow_batch_probe: int  # points MLflow logs before we decide whether to extrapolate
    search_runs: int
    search_repeats: int
    import_repeats: int

    @property
    def batch_points(self) -> int:
        return self.batch_keys * self.batch_steps


FULL = Sizes(200_000, 2_000, 10, 100_000, 100_000, 10_000, 5, 5)
QUICK = Sizes(20_000, 200, 10, 2_000, 10_000, 500, 3, 2)


@dataclasses.dataclass(frozen=True)
class Goal:
    label: str
    check: Callable[[Figures], bool | None]


# -- data shared by both sides -----------------------------------------------------------------
def search_dataset(n_runs: int, seed: int = SEED) -> list[dict[str, dict[str, Any]]]:
    """Params p0..p19 and metrics m0..m8 plus acc (uniform in [0, 1]) of each run."""
    rng = random.Random(seed)
    runs: list[dict[str, dict[str, Any]]] = []
    for _ in range(n_runs):
        params: dict[str, Any] = {f"p{i}": str(rng.randint(0, 999)) for i in range(20)}
        metrics: dict[str, Any] = {f"m{i}": rng.random() for i in range(9)}
        metrics["acc"] = rng.random()
        runs.append({"params": params, "metrics": metrics})
    return runs


def expected_top_acc(runs: Sequence[dict[str, dict[str, Any]]]) -> list[float]:
    accs = sorted((r["metrics"]["acc"] for r in runs), reverse=True)
    return [a for a in accs if a > 0.9][:SEARCH_LIMIT]


def same_values(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-12 for x, y in zip(a, b, strict=True))


# -- the MLflow side: a script run by the MLflow virtualenv's interpreter ----------------------
# Formulas for the logged values are the same as in the loopml worker below.
MLFLOW_WORKER = r"""
import json, statistics, sys, time

cfg = json.loads(sys.argv[1])
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

mlflow.set_tracking_uri("sqlite:///" + cfg["tmp"] + "/m.db")


def progress(text):
    tty = sys.stderr.isatty()
    print(("\r" if tty else "") + "  mlflow " + text, end="" if tty else "\n", file=sys.stderr)
    sys.stderr.flush()


def log_metric(n, use_async):
    values = [1.0 / (1 + i) for i in range(n)]
    if use_async:
        mlflow.config.enable_async_logging(True)
    mlflow.set_experiment("bench")
    run = mlflow.start_run()
    t0 = time.perf_counter()
    for i in range(n):
        mlflow.log_metric("loss", values[i], step=i)
    if use_async:
        mlflow.flush_async_logging()
    mlflow.end_run()
    seconds = time.perf_counter() - t0
    stored = len(MlflowClient().get_metric_history(run.info.run_id, "loss"))
    return {"seconds": seconds, "calls": n, "per_s": n / seconds, "stored": stored}


def batch(keys, steps, chunk, probe, budget_s):
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment("bench-batch")).info.run_id
    points = [
        Metric("k%d" % k, 1.0 / (1 + s) + k, cfg["base_ts"] + s, s)
        for s in range(steps)
        for k in range(keys)
    ]
    total = len(points)
    done, extrapolated, decided = 0, False, False
    t0 = time.perf_counter()
    for start in range(0, total, chunk):
        client.log_batch(run_id, metrics=points[start : start + chunk])
        done = min(start + chunk, total)
        elapsed = time.perf_counter() - t0
        if done % (100 * chunk) == 0:
            progress("log_batch %d/%d points, %.0f s" % (done, total, elapsed))
        if not decided and done >= probe and done < total:
            decided = True
            if elapsed / done * total > budget_s:
                extrapolated = True
                break
    seconds = time.perf_counter() - t0
    if sys.stderr.isatty():
        print(file=sys.stderr)
    client.set_terminated(run_id)
    stored = len(client.get_metric_history(run_id, "k0"))
    return {
        "seconds": seconds,
        "points": done,
        "per_s": done / seconds,
        "extrapolated": extrapolated,
        "projected_s": seconds / done * total,
        "stored_k0": stored,
    }


def search(data_path, repeats):
    with open(data_path) as f:
        runs = json.load(f)
    client = MlflowClient()
    exp_id = client.create_experiment("bench-search")
    t0 = time.perf_counter()
    for i, r in enumerate(runs, 1):
        run_id = client.create_run(exp_id).info.run_id
        metrics = [Metric(k, v, cfg["base_ts"], 0) for k, v in r["metrics"].items()]
        params = [Param(k, v) for k, v in r["params"].items()]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.set_terminated(run_id)
        if i % 500 == 0 or i == len(runs):
            progress("populate %d/%d runs, %.0f s" % (i, len(runs), time.perf_counter() - t0))
    populate_s = time.perf_counter() - t0
    if sys.stderr.isatty():
        print(file=sys.stderr)

    def once():
        found = client.search_runs(
            [exp_id], filter_string=cfg["filter"], order_by=[cfg["order"]],
            max_results=cfg["limit"],
        )
        return [run.data.metrics["acc"] for run in found]

    once()
    times, accs = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        accs = once()
        times.append(time.perf_counter() - t)
    return {
        "populate_s": populate_s,
        "search_s": statistics.median(times),
        "search_times": times,
        "count": len(accs),
        "acc": sorted(accs, reverse=True),
    }


task = cfg["task"]
if task == "log_metric":
    out = log_metric(cfg["n"], use_async=False)
elif task == "log_metric_async":
    out = log_metric(cfg["n"], use_async=True)
elif task == "batch":
    out = batch(cfg["keys"], cfg["steps"], cfg["chunk"], cfg["probe"], cfg["budget_s"])
elif task == "search":
    out = search(cfg["data"], cfg["repeats"])
else:
    raise SystemExit("unknown task " + task)
out["version"] = mlflow.__version__
print(json.dumps(out))
"""


# -- the loopml side: this file run with --worker in a fresh interpreter -----------------------
def _progress(text: str) -> None:
    tty = sys.stderr.isatty()
    print(("\r" if tty else "") + f"  loopml {text}", end="" if tty else "\n", file=sys.stderr)
    sys.stderr.flush()


def loopml_log_metric(cfg: Figures) -> Figures:
    import loopml

    n: int = cfg["n"]
    values = [1.0 / (1 + i) for i in range(n)]
    run = loopml.start_run(experiment="bench")
    t0 = time.perf_counter()
    for i in range(n):
        loopml.log_metric("loss", values[i], step=i)
    loopml.end_run()  # returns once every buffered point is written
    seconds = time.perf_counter() - t0
    stored = len(loopml.get_client().get_metric_history(run.run_id, "loss"))
    return {"seconds": seconds, "calls": n, "per_s": n / seconds, "stored": stored}


def loopml_batch(cfg: Figures) -> Figures:
    import loopml

    client = loopml.Client()
    exp_id = client.create_experiment("bench-batch").experiment_id
    run_id = client.create_run(exp_id, capture_environment=False).run_id
    points = [
        loopml.Metric(f"k{k}", 1.0 / (1 + s) + k, s, cfg["base_ts"] + s)
        for s in range(cfg["steps"])
        for k in range(cfg["keys"])
    ]
    t0 = time.perf_counter()
    for chunk in _chunks(points, cfg["chunk"]):
        client.log_batch(run_id, metrics=chunk)
    seconds = time.perf_counter() - t0
    client.set_terminated(run_id)
    stored = len(client.get_metric_history(run_id, "k0"))
    client.close()
    n = len(points)
    return {"seconds": seconds, "points": n, "per_s": n / seconds, "stored_k0": stored}


def loopml_search(cfg: Figures) -> Figures:
    import loopml

    runs = json.loads(Path(cfg["data"]).read_text())
    client = loopml.Client()
    exp_id = client.create_experiment("bench-search").experiment_id
    t0 = time.perf_counter()
    for i, r in enumerate(runs, 1):
        run_id = client.create_run(exp_id, capture_environment=False).run_id
        metrics = [loopml.Metric(k, v, 0, cfg["base_ts"]) for k, v in r["metrics"].items()]
        client.log_batch(run_id, metrics=metrics, params=r["params"])
        client.set_terminated(run_id)
        if i % 500 == 0 or i == len(runs):
            _progress(f"populate {i}/{len(runs)} runs, {time.perf_counter() - t0:.0f} s")
    populate_s = time.perf_counter() - t0
    if sys.stderr.isatty():
        print(file=sys.stderr)

    def once() -> list[float]:
        page = client.search_runs(
            [exp_id], filter=cfg["filter"], order_by=[cfg["order"]], max_results=cfg["limit"]
        )
        return [run.metrics["acc"] for run in page.items]

    times, accs = _timed_repeats(once, cfg["repeats"])
    client.close()
    return {
        "populate_s": populate_s,
        "search_s": statistics.median(times),
        "search_times": times,
        "count": len(accs),
        "acc": sorted(accs, reverse=True),
    }


def _timed_repeats(fn: Callable[[], list[float]], repeats: int) -> tuple[list[float], list[float]]:
    """One warm-up call, then ``repeats`` timed calls; the times and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return times, result


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


LOOPML_TASKS: dict[str, Callable[[Figures], Figures]] = {
    "log_metric": loopml_log_metric,
    "batch": loopml_batch,
    "search": loopml_search,
}


def run_loopml_worker(cfg_json: str) -> None:
    import loopml

    cfg = json.loads(cfg_json)
    out = LOOPML_TASKS[cfg["task"]](cfg)
    out["version"] = loopml.__version__
    print(json.dumps(out))


# -- running the two sides ---------------------------------------------------------------------
class BenchError(RuntimeError):
    pass


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _imports_mlflow(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run([python, "-c", "import mlflow"], capture_output=True, env=child_env())
    return probe.returncode == 0


def ensure_mlflow_venv(venv: Path) -> Path:
    """The MLflow virtualenv's interpreter; the venv is made and filled first if needed."""
    venv = venv.absolute()  # the workers run in other folders
    python = venv_python(venv)
    if _imports_mlflow(python):
        return python
    if not python.exists():
        say(f"creating a virtualenv for MLflow in {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    say(f"installing {MLFLOW_REQUIREMENT} into it (a few minutes) ...")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, stdout=sys.stderr)
    subprocess.run([*pip, MLFLOW_REQUIREMENT], check=True, stdout=sys.stderr)
    if not _imports_mlflow(python):
        raise BenchError(f"{python} still cannot import mlflow")
    return python


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a worker: no LOOPML_/MLFLOW_ settings leak in from ours; MLflow's
    usage telemetry is off (this is a benchmark, and there may be no network)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOOPML_", "MLFLOW_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", **extra)
    return env


def _run_json(cmd: Sequence[str | Path], *, env: dict[str, str], cwd: Path) -> Figures:
    """Run a worker; its stderr passes through, the last line of its stdout is its figures."""
    proc = subprocess.run(
        [str(c) for c in cmd], stdout=subprocess.PIPE, text=True, env=env, cwd=cwd
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(lines[-5:])
        raise BenchError(f"worker {str(cmd[-1])[:80]} exited {proc.returncode}:\n{tail}")
    figures: Figures = json.loads(lines[-1])
    return figures


class Sides:
    """Starts one worker per measurement, each in a fresh temporary folder."""

    def __init__(self, mlflow_python: Path | None) -> None:
        self.mlflow_python = mlflow_python
        self._scratch = Path(tempfile.mkdtemp(prefix="loopml-bench-"))
        self.mlflow_script = self._scratch / "mlflow_worker.py"
        self.mlflow_script.write_text(MLFLOW_WORKER)

    def loopml(self, task: str, **cfg: Any) -> Figures:
        with tempfile.TemporaryDirectory(prefix="loopml-side-") as tmp:
            payload = json.dumps({"task": task, "tmp": tmp, **_common(), **cfg})
            env = child_env(LOOPML_WORKSPACE=str(Path(tmp) / "ws"))
            cmd: list[str | Path] = [sys.executable, Path(__file__).resolve(), "--worker", payload]
            return _run_json(cmd, env=env, cwd=Path(tmp))

    def mlflow(self, task: str, **cfg: Any) -> Figures:
        assert self.mlflow_python is not None
        with tempfile.TemporaryDirectory(prefix="mlflow-side-") as tmp:
            payload = json.dumps({"task": task, "tmp": tmp, **_common(), **cfg})
            cmd: list[str | Path] = [self.mlflow_python, self.mlflow_script, payload]
            return _run_json(cmd, env=child_env(), cwd=Path(tmp))

    def write_search_data(self, n_runs: int) -> tuple[Path, list[float]]:
        runs = search_dataset(n_runs)
        path = self._scratch / "search_runs.json"
        path.write_text(json.dumps(runs))
        return path, expected_top_acc(runs)

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)


def _common() -> Figures:
    return {
        "base_ts": BASE_TS,
        "filter": SEARCH_FILTER,
        "order": SEARCH_ORDER,
        "limit": SEARCH_LIMIT,
    }


def import_seconds(python: Path | str, statement: str, repeats: int) -> float:
    """Best of ``repeats`` fresh interpreters timing ``statement``, after one warm-up."""
    code = f"import time; t=time.perf_counter(); {statement}; print(time.perf_counter()-t)"
    times = []
    with tempfile.TemporaryDirectory(prefix="import-") as tmp:
        for i in range(repeats + 1):
            proc = subprocess.run(
                [str(python), "-c", code],
                capture_output=True,
                text=True,
                env=child_env(),
                cwd=tmp,
                check=True,
            )
            if i:
                times.append(float(proc.stdout.strip().splitlines()[-1]))
    return min(times)


def mlflow_version(python: Path) -> str:
    code = "from importlib.metadata import version; print(version('mlflow'))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


# -- the measurements --------------------------------------------------------------------------
def measure_imports(sides: Sides, sizes: Sizes) -> Figures:
    say("timing imports ...")
    n = sizes.import_repeats
    out: Figures = {
        "import_s": import_seconds(sys.executable, "import loopml", n),
        # not a goal: what the first use (loopml.Client) loads on top of the bare import
        "loopml_import_client_s": import_seconds(sys.executable, "import loopml; loopml.Client", n),
        "mlflow_import_s": None,
    }
    if sides.mlflow_python is not None:
        out["mlflow_import_s"] = import_seconds(sides.mlflow_python, "import mlflow", n)
    out["import_ratio"] = _ratio(out["mlflow_import_s"], out["import_s"])
    return out


def measure_log_metric(sides: Sides, sizes: Sizes) -> Figures:
    say(f"log_metric: loopml, {sizes.log_metric_loopml:,} calls ...")
    lo = sides.loopml("log_metric", n=sizes.log_metric_loopml)
    _check_count("loopml log_metric", lo["stored"], sizes.log_metric_loopml)
    out: Figures = {
        "loopml_log_metric_per_s": lo["per_s"],
        "loopml_log_metric_s": lo["seconds"],
        "mlflow_log_metric_per_s": None,
        "mlflow_async_log_metric_per_s": None,
    }
    if sides.mlflow_python is not None:
        n = sizes.log_metric_mlflow
        say(f"log_metric: MLflow, {n:,} calls (synchronous, its default) ...")
        ml = sides.mlflow("log_metric", n=n)
        _check_count("mlflow log_metric", ml["stored"], n)
        say(f"log_metric: MLflow, {n:,} calls with its async logging on ...")
        ml_async = sides.mlflow("log_metric_async", n=n)
        _check_count("mlflow async log_metric", ml_async["stored"], n)
        out["mlflow_log_metric_per_s"] = ml["per_s"]
        out["mlflow_async_log_metric_per_s"] = ml_async["per_s"]
    out["log_metric_ratio"] = _ratio(out["loopml_log_metric_per_s"], out["mlflow_log_metric_per_s"])
    return out


def measure_batch(sides: Sides, sizes: Sizes, budget_s: float) -> Figures:
    cfg = {"keys": sizes.batch_keys, "steps": sizes.batch_steps}
    say(f"log_batch: loopml, {sizes.batch_points:,} points in chunks of {LOOPML_BATCH_CHUNK:,} ...")
    lo = sides.loopml("batch", chunk=LOOPML_BATCH_CHUNK, **cfg)
    _check_count("loopml log_batch (key k0)", lo["stored_k0"], sizes.batch_steps)
    out: Figures = {
        "loopml_batch_points_per_s": lo["per_s"],
        "loopml_batch_s": lo["seconds"],
        "mlflow_batch_points_per_s": None,
        "mlflow_batch_points_measured": None,
        "mlflow_batch_extrapolated": None,
    }
    if sides.mlflow_python is not None:
        chunk = MLFLOW_BATCH_CHUNK
        say(f"log_batch: MLflow, {sizes.batch_points:,} points in chunks of {chunk} ...")
        probe = min(sizes.mlflow_batch_probe, sizes.batch_points)
        ml = sides.mlflow("batch", chunk=chunk, probe=probe, budget_s=budget_s, **cfg)
        if not ml["extrapolated"]:
            _check_count("mlflow log_batch (key k0)", ml["stored_k0"], sizes.batch_steps)
        out.update(
            mlflow_batch_points_per_s=ml["per_s"],
            mlflow_batch_points_measured=ml["points"],
            mlflow_batch_extrapolated=ml["extrapolated"],
            mlflow_batch_projected_s=ml["projected_s"],
        )
    out["batch_ratio"] = _ratio(out["loopml_batch_points_per_s"], out["mlflow_batch_points_per_s"])
    return out


def measure_search(sides: Sides, sizes: Sizes) -> Figures:
    data, expected = sides.write_search_data(sizes.search_runs)
    cfg = {"data": str(data), "repeats": sizes.search_repeats}
    say(f"search_runs: loopml, populating {sizes.search_runs:,} runs ...")
    lo = sides.loopml("search", **cfg)
    out: Figures = {
        "loopml_search_s": lo["search_s"],
        "loopml_search_times_s": lo["search_times"],
        "loopml_populate_s": lo["populate_s"],
        "mlflow_search_s": None,
        "mlflow_populate_s": None,
        "search_results_expected": len(expected),
        "search_results_match": same_values(lo["acc"], expected),
    }
    if sides.mlflow_python is not None:
        say(f"search_runs: MLflow, populating {sizes.search_runs:,} runs (slow) ...")
        ml = sides.mlflow("search", **cfg)
        out.update(
            mlflow_search_s=ml["search_s"],
            mlflow_search_times_s=ml["search_times"],
            mlflow_populate_s=ml["populate_s"],
            search_results_match=out["search_results_match"] and same_values(ml["acc"], lo["acc"]),
        )
        if not same_values(ml["acc"], lo["acc"]):
            warn(f"search results differ: loopml {len(lo['acc'])}, MLflow {len(ml['acc'])} runs")
    if not same_values(lo["acc"], expected):
        warn(f"loopml search returned {lo['count']} runs, not the {len(expected)} expected")
    out["search_ratio"] = _ratio(out["mlflow_search_s"], out["loopml_search_s"])
    return out


def _check_count(what: str, stored: int, expected: int) -> None:
    if stored != expected:
        warn(f"{what}: {stored:,} points stored, {expected:,} logged")


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


# -- report ------------------------------------------------------------------------------------
def _at_least(key: str, goal: float) -> Callable[[Figures], bool | None]:
    return lambda f: None if f.get(key) is None else bool(f[key] >= goal)


def _import_goal(f: Figures) -> bool | None:
    fast = bool(f["import_s"] < 0.3)
    return fast if f.get("import_ratio") is None else fast and bool(f["import_ratio"] >= 5)


GOALS: dict[str, Goal] = {
    "log_metric": Goal(">= 100x", _at_least("log_metric_ratio", 100)),
    "batch": Goal(">= 20x", _at_least("batch_ratio", 20)),
    "search": Goal(">= 10x", _at_least("search_ratio", 10)),
    "import": Goal("< 0.3 s, >= 5x", _import_goal),
}


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}"


# goal name: (row label, loopml figure, MLflow figure, ratio)
ROWS: dict[str, tuple[str, str, str, str]] = {
    "log_metric": (
        "log_metric calls/s",
        "loopml_log_metric_per_s",
        "mlflow_log_metric_per_s",
        "log_metric_ratio",
    ),
    "batch": (
        "log_batch points/s",
        "loopml_batch_points_per_s",
        "mlflow_batch_points_per_s",
        "batch_ratio",
    ),
    "search": ("search_runs s (median)", "loopml_search_s", "mlflow_search_s", "search_ratio"),
    "import": ("import s (best)", "import_s", "mlflow_import_s", "import_ratio"),
}


def table(f: Figures) -> str:
    rows = [("measure", "loopml", "MLflow", "ratio", "goal", "met")]
    rows += [_row(name, f) for name in ROWS]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _row(name: str, f: Figures) -> tuple[str, str, str, str, str, str]:
    label, lo, ml, ratio = ROWS[name]
    met = GOALS[name].check(f)
    verdict = "-" if met is None else ("yes" if met else "NO")
    return (label, _num(f[lo]), _num(f[ml]), _num(f[ratio], "x"), GOALS[name].label, verdict)


def notes(f: Figures, sizes: Sizes) -> list[str]:
    out = [
        f"sizes: log_metric {sizes.log_metric_loopml:,} calls (loopml) / "
        f"{sizes.log_metric_mlflow:,} (MLflow); log_batch {sizes.batch_keys} keys x "
        f"{sizes.batch_steps:,} steps; search over {sizes.search_runs:,} runs",
        "loopml log_metric time runs until end_run() returns, so it includes the final flush",
        f"import loopml + first use (loopml.Client): {_num(f['loopml_import_client_s'])} s "
        "(not a goal)",
        f"populating the search runs took {_num(f['loopml_populate_s'])} s (loopml), "
        f"{_num(f['mlflow_populate_s'])} s (MLflow); not a figure",
    ]
    if f["mlflow_async_log_metric_per_s"] is not None:
        out.append(
            "MLflow also has an async logging option (mlflow.config.enable_async_logging): "
            f"{_num(f['mlflow_async_log_metric_per_s'])} calls/s with it; the ratio uses "
            "its default (synchronous)"
        )
    if f.get("mlflow_batch_extrapolated"):
        out.append(
            f"MLflow log_batch measured on {f['mlflow_batch_points_measured']:,} points and "
            f"extrapolated (the full run would take ~{f['mlflow_batch_projected_s']:.0f} s)"
        )
    if f["quick"]:
        out.append("--quick: small sizes for a smoke run; the goals are set for the full sizes")
    if not f["search_results_match"]:
        out.append("WARNING: the search results did not match (see above)")
    return out


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def warn(text: str) -> None:
    print(f"[bench] WARNING: {text}", file=sys.stderr, flush=True)


# -- entry point -------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark loopml against MLflow (both on SQLite).")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--skip-mlflow", action="store_true", help="measure loopml only")
    p.add_argument(
        "--mlflow-venv",
        type=Path,
        default=DEFAULT_MLFLOW_VENV,
        help="virtualenv for MLflow, made on first use (default: .bench/mlflow-venv)",
    )
    p.add_argument(
        "--mlflow-batch-budget",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="extrapolate MLflow's log_batch from its first 100,000 points when the full "
        "size would take longer than this (default: 600)",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> Figures:
    import loopml

    sizes = QUICK if args.quick else FULL
    mlflow_python = None if args.skip_mlflow else ensure_mlflow_venv(args.mlflow_venv)
    sides = Sides(mlflow_python)
    figures: Figures = {
        "loopml_version": loopml.__version__,
        "mlflow_version": mlflow_version(mlflow_python) if mlflow_python else None,
        "python_version": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": dt.date.today().isoformat(),
        "quick": args.quick,
        "sizes": {**dataclasses.asdict(sizes), "batch_points": sizes.batch_points},
    }
    try:
        figures.update(measure_imports(sides, sizes))
        figures.update(measure_log_metric(sides, sizes))
        figures.update(measure_batch(sides, sizes, args.mlflow_batch_budget))
        figures.update(measure_search(sides, sizes))
    finally:
        sides.close()
    figures["goals_met"] = {name: goal.check(figures) for name, goal in GOALS.items()}
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_loopml_worker(args.worker)
        return 0
    started = time.perf_counter()
    try:
        figures = run(args)
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"[bench] failed: {exc}", file=sys.stderr)
        return 1
    figures["bench_seconds"] = round(time.perf_counter() - started, 1)
    sizes = QUICK if args.quick else FULL
    print()
    print(table(figures))
    print()
    for line in notes(figures, sizes):
        print(f"  {line}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
