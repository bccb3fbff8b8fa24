"""Benchmark: loading and calling a model, loopml against MLflow and ONNX Runtime.

    python bench/models.py                 # full sizes
    python bench/models.py --quick         # fewer repetitions: a smoke run
    python bench/models.py --skip-mlflow   # loopml only; the MLflow figures are null

The model is the same for every measurement: ``Pipeline([StandardScaler(),
RandomForestClassifier(n_estimators=100, random_state=0)])`` fitted on scikit-learn's
breast_cancer data (569 rows, 30 features). Both sides use the same scikit-learn version.

1. Cold load + first prediction. loopml logs the pipeline with ``loopml.log_model`` to a run of
   a temporary workspace; MLflow with ``mlflow.sklearn.log_model`` to a run of a temporary
   SQLite tracking store. Then, in a fresh interpreter each time, a script times
   ``import loopml`` / ``import mlflow``, ``loopml.load_model("runs:/<id>/model")`` /
   ``mlflow.pyfunc.load_model("runs:/<id>/model")`` and the first ``predict`` on a one-row
   DataFrame (``t0 = time.perf_counter()`` is its first statement after ``import time``).
   loopml is measured twice: with its model cache empty (the cache folder is deleted before the
   run, so the model is copied out of the artifact store, as MLflow does on every load) and
   with the cache filled by an earlier load in another process (what a server restart sees).
   One warm-up round, then the median of 5 rounds. ``load_ratio`` = MLflow / loopml with an
   empty cache (like with like), ``load_ratio_cached`` = MLflow / loopml with a filled cache.
   Two references run in the same rounds, outside the comparison: loopml's ``model.joblib``
   loaded by ``joblib.load`` alone (the floor for any loader that runs scikit-learn itself,
   giving ``load_ratio_ceiling``; loopml's ONNX fast path does not), and loopml loading the
   float32 ONNX conversion (``load_ratio_onnx``).
2. Single-row latency of ``predict_proba``: scikit-learn itself, loopml's Predictor on the
   scikit-learn model, an ONNX Runtime session (the pipeline converted with
   ``loopml.packaging.build(uri, "onnx", ...)``, one intra-op thread) called directly, and
   loopml's Predictor on the ONNX model; 2,000 calls each after a warm-up, median and p99.
   ``onnx_speedup`` = scikit-learn median / ONNX Runtime median.

Every worker runs with OMP_NUM_THREADS=1 (and the other BLAS thread variables) set. The human
table comes first; the last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:  # when imported rather than run as a script
    sys.path.insert(0, str(BENCH_DIR))

from tracking import (  # noqa: E402  (the bench folder must be on sys.path first)
    DEFAULT_MLFLOW_VENV,
    BenchError,
    child_env,
    ensure_mlflow_venv,
    mlflow_version,
    say,
    warn,
)

Figures = dict[str, Any]

N_ESTIMATORS = 100
RANDOM_STATE = 0
EXAMPLE_ROWS = 5
BLOCK = 100  # single-row calls in a row of one caller before the next caller's turn
LOAD_GOAL = 5.0  # MLflow's cold load + first prediction / loopml's
# The same for both sides: one thread for OpenMP and the BLAS libraries.
THREAD_VARS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    cold_repeats: int  # cold rounds measured, after one warm-up round
    latency_calls: int  # timed single-row calls per predictor
    latency_warmup: int  # calls before timing


FULL = Sizes(5, 2_000, 200)
QUICK = Sizes(2, 300, 50)


# -- the MLflow side: scripts run by the MLflow virtualenv's interpreter -------------------------
MLFLOW_SETUP = r"""
import json, os, sys

cfg = json.loads(sys.argv[1])
import mlflow
import mlflow.sklearn
import sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
pipe = Pipeline([
    ("scale", StandardScaler()),
    ("rf", RandomForestClassifier(n_estimators=cfg["n_estimators"],
                                  random_state=cfg["random_state"])),
]).fit(X, y)
kwargs = {"input_example": X[: cfg["example_rows"]]}
if cfg["trusted_types"]:
    # MLflow 3.17 saves scikit-learn models with skops by default and refuses tree models
    # unless their node storage type is listed as trusted.
    kwargs["skops_trusted_types"] = cfg["trusted_types"]
with mlflow.start_run() as run:
    try:
        info = mlflow.sklearn.log_model(pipe, name="model", **kwargs)
    except TypeError:  # MLflow before 3.0 calls it artifact_path
        info = mlflow.sklearn.log_model(pipe, artifact_path="model", **kwargs)
local = mlflow.artifacts.download_artifacts(
    artifact_uri="runs:/%s/model" % run.info.run_id, dst_path=cfg["tmp"] + "/size-check"
)
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(local) for f in fs)
files = sorted(f for _, _, fs in os.walk(local) for f in fs)
print(json.dumps({
    "run_id": run.info.run_id,
    "uri": "runs:/%s/model" % run.info.run_id,
    "model_bytes": size,
    "files": files,
    "expected": [int(v) for v in pipe.predict(X[:1])],
    "mlflow_version": mlflow.__version__,
    "sklearn_version": sklearn.__version__,
}))
"""

# The cold scripts are generated with the URI and the row as literals, so that nothing runs
# before t0 but ``import time``. They differ only in the library they call and what they load.
COLD_TEMPLATE = r"""import time
t0 = time.perf_counter()
import {module}
t1 = time.perf_counter()
model = {load}({uri!r})
t2 = time.perf_counter()
import pandas as pd
row = pd.DataFrame([{values!r}], columns={columns!r})
prediction = model.predict(row)
t3 = time.perf_counter()
import json
print(json.dumps({{
    "import_s": t1 - t0, "load_s": t2 - t1, "predict_s": t3 - t2, "total_s": t3 - t0,
    "prediction": [int(v) for v in list(prediction)],
}}))
"""


def cold_script(side: str, uri: str, columns: list[str], values: list[float]) -> str:
    module, load = {
        "loopml": ("loopml", "loopml.load_model"),
        "mlflow": ("mlflow", "mlflow.pyfunc.load_model"),
        "floor": ("joblib", "joblib.load"),
    }[side]
    return COLD_TEMPLATE.format(module=module, load=load, uri=uri, columns=columns, values=values)


# -- the loopml side: this file run with --worker in a fresh interpreter ------------------------
def _pipeline() -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("rf", RandomForestClassifier(n_estimators=N_ESTIMATORS, random_state=RANDOM_STATE)),
        ]
    )


def loopml_setup(cfg: Figures) -> Figures:
    """Fit the pipeline on the DataFrame, log it to a run; the facts the cold scripts need."""
    import sklearn
    from sklearn.datasets import load_breast_cancer

    import loopml
    from loopml.models import save_model
    from loopml.models.uri import model_cache_dir

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    pipe = _pipeline().fit(X, y)
    with loopml.start_run(experiment="bench-models"):
        logged = loopml.log_model(pipe, name="model", input_example=X[:EXAMPLE_ROWS])
        # not part of the comparison with MLflow: the same pipeline converted to ONNX, logged
        # to the same run, to show what a cold load costs without importing scikit-learn
        onnx_uri = None
        onnx_dir = Path(cfg["tmp"]) / "onnx-build"
        if _onnx_model(logged.uri, pipe, X.shape[1], onnx_dir)[1] == "loopml.packaging.build":
            loopml.log_artifacts(onnx_dir, name="model_onnx")
            onnx_uri = f"runs:/{logged.run_id}/model_onnx"
    folder = Path(cfg["tmp"]) / "size-check"
    save_model(pipe, folder, input_example=X[:EXAMPLE_ROWS])
    return {
        "run_id": logged.run_id,
        "uri": logged.uri,
        "onnx_uri": onnx_uri,
        "flavor": logged.flavor,
        "cache_dir": str(model_cache_dir(loopml.get_client())),
        "model_bytes": _folder_bytes(folder),
        "joblib_file": str(folder / "model.joblib"),
        "files": sorted(p.name for p in folder.rglob("*") if p.is_file()),
        "columns": [str(c) for c in X.columns],
        "row": [float(v) for v in X.iloc[0]],
        "expected": [int(v) for v in pipe.predict(X[:1])],
        "data_shape": list(X.shape),
        "sklearn_version": sklearn.__version__,
    }


def loopml_latency(cfg: Figures) -> Figures:
    """Single-row predict_proba: scikit-learn, loopml (sklearn), ONNX Runtime, loopml (onnx)."""
    import numpy as np
    import onnxruntime as ort
    from sklearn.datasets import load_breast_cancer

    import loopml

    # Fitted on the NumPy array (the same trees as on the DataFrame), so that a NumPy row is
    # the model's own input for all four callers and scikit-learn warns about nothing.
    X, y = load_breast_cancer(return_X_y=True)
    pipe = _pipeline().fit(X, y)
    with loopml.start_run(experiment="bench-models-latency"):
        logged = loopml.log_model(pipe, name="model", input_example=X[:EXAMPLE_ROWS])
    onnx_dir = Path(cfg["tmp"]) / "onnx-model"
    onnx_file, how = _onnx_model(logged.uri, pipe, X.shape[1], onnx_dir)

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(onnx_file), sess_options=options, providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name
    proba_name = next(o.name for o in session.get_outputs() if "prob" in o.name)

    lo_sklearn = loopml.load_model(logged.uri)
    lo_onnx = loopml.load_model(str(onnx_dir)) if how == "loopml.packaging.build" else None

    row = X[:1].copy()  # float64, shape (1, 30)
    row32 = row.astype(np.float32)
    calls: dict[str, Callable[[], Any]] = {
        "sklearn": lambda: pipe.predict_proba(row),
        "loopml_sklearn": lambda: lo_sklearn.predict_proba(row),
        "onnx": lambda: session.run([proba_name], {input_name: row32}),
    }
    if lo_onnx is not None:
        calls["loopml_onnx"] = lambda: lo_onnx.predict_proba(row)

    out: Figures = {"onnx_converted_with": how, "onnx_bytes": onnx_file.stat().st_size}
    for name, (median_us, p99_us) in _per_call_us(calls, cfg["calls"], cfg["warmup"]).items():
        out[f"{name}_row_us"] = median_us
        out[f"{name}_row_p99_us"] = p99_us

    # parity over every row of the data set
    reference = pipe.predict_proba(X)
    (onnx_all,) = session.run([proba_name], {input_name: X.astype(np.float32)})
    row_diff = np.max(np.abs(reference - onnx_all), axis=1)
    out["onnx_parity_max_abs_diff"] = float(np.max(row_diff))
    out["onnx_parity_rows"] = int(X.shape[0])
    out["onnx_parity_rows_over_1e-5"] = int(np.sum(row_diff > 1e-5))
    # the same comparison with scikit-learn given the float32-rounded input ONNX Runtime sees:
    # what is left is the converted graph's own arithmetic
    rounded = pipe.predict_proba(X.astype(np.float32).astype(np.float64))
    out["onnx_parity_float32_input_max_abs_diff"] = float(np.max(np.abs(rounded - onnx_all)))
    out["onnx_labels_equal"] = bool(np.array_equal(pipe.predict(X), np.argmax(onnx_all, axis=1)))
    out["loopml_sklearn_parity_max_abs_diff"] = float(
        np.max(np.abs(reference - lo_sklearn.predict_proba(X)))
    )
    if lo_onnx is not None:
        out["loopml_onnx_parity_max_abs_diff"] = float(
            np.max(np.abs(reference - lo_onnx.predict_proba(X)))
        )
    out["onnxruntime_version"] = ort.__version__
    return out


def _onnx_model(uri: str, pipe: Any, n_features: int, out_dir: Path) -> tuple[Path, str]:
    """The ONNX file of the pipeline: loopml's packaging target when it is there, else
    skl2onnx directly (classifier outputs without ZipMap either way)."""
    try:
        from loopml.packaging.build import build
    except ImportError:
        build = None
    if build is not None:
        result = build(uri, "onnx", out_dir)
        return result.path / "model.onnx", "loopml.packaging.build"
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    model = convert_sklearn(
        pipe,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options={id(pipe.steps[-1][1]): {"zipmap": False}},
    )
    out_dir.mkdir(parents=True)
    path = out_dir / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path, "skl2onnx"


def _per_call_us(
    calls: dict[str, Callable[[], Any]], n: int, warmup: int
) -> dict[str, tuple[float, float]]:
    """Median and p99, in microseconds, of ``n`` timed calls of each function, after ``warmup``
    calls of each. The functions take turns in blocks of ``BLOCK`` calls, so that a burst of
    load from elsewhere on the machine does not fall on one of them only."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    clock = time.perf_counter_ns
    times: dict[str, list[int]] = {name: [] for name in calls}
    for start in range(0, n, BLOCK):
        for name, fn in calls.items():
            record = times[name]
            for _ in range(min(BLOCK, n - start)):
                t = clock()
                fn()
                record.append(clock() - t)
    out = {}
    for name, record in times.items():
        record.sort()
        p99 = record[max(0, math.ceil(0.99 * len(record)) - 1)]
        out[name] = (statistics.median(record) / 1000, p99 / 1000)
    return out


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


LOOPML_TASKS: dict[str, Callable[[Figures], Figures]] = {
    "setup": loopml_setup,
    "latency": loopml_latency,
}


def run_loopml_worker(cfg_json: str) -> None:
    import loopml

    cfg = json.loads(cfg_json)
    out = LOOPML_TASKS[cfg["task"]](cfg)
    out["version"] = loopml.__version__
    print(json.dumps(out))


# -- running the two sides ------------------------------------------------------------------------
def worker_env(**extra: str) -> dict[str, str]:
    """tracking.py's worker environment plus one thread for OpenMP/BLAS, for both sides."""
    return child_env(**THREAD_VARS, **extra)


def _run(cmd: Sequence[str | Path], *, env: dict[str, str], cwd: Path) -> tuple[Figures, float]:
    """Run a worker; its stderr passes through, the last line of its stdout is its figures.
    Also returns the worker's wall time as the parent saw it (interpreter start included)."""
    t = time.perf_counter()
    proc = subprocess.run(
        [str(c) for c in cmd], stdout=subprocess.PIPE, text=True, env=env, cwd=cwd
    )
    wall = time.perf_counter() - t
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(lines[-5:])
        raise BenchError(f"worker {str(cmd[-1])[:80]} exited {proc.returncode}:\n{tail}")
    figures: Figures = json.loads(lines[-1])
    return figures, wall


SKLEARN_NOTE = "[bench] note: {what} scikit-learn {version} into the MLflow virtualenv"


def ensure_sklearn(python: Path, version: str) -> str:
    """scikit-learn in the MLflow virtualenv, the project's version if pip can get it; returns
    the version installed there."""
    code = "from importlib.metadata import version; print(version('scikit-learn'))"
    probe = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    have = probe.stdout.strip() if probe.returncode == 0 else None
    if have == version:
        say(f"scikit-learn {have} in the MLflow virtualenv, as in this one")
        return have
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    what = f"installing (it had {have})" if have else "installing"
    print(SKLEARN_NOTE.format(what=what, version=version), file=sys.stderr, flush=True)
    done = subprocess.run([*pip, f"scikit-learn=={version}"], stdout=sys.stderr)
    if done.returncode != 0:
        if have:
            warn(f"could not install scikit-learn {version}; MLflow keeps {have}")
            return have
        warn(f"scikit-learn {version} is not available; installing the latest instead")
        subprocess.run([*pip, "scikit-learn"], stdout=sys.stderr, check=True)
    probe = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return probe.stdout.strip()


class Bench:
    """The temporary folders of one benchmark run and the workers that use them."""

    def __init__(self, mlflow_python: Path | None) -> None:
        self.mlflow_python = mlflow_python
        self.root = Path(tempfile.mkdtemp(prefix="loopml-bench-models-"))
        self.lo_dir = self.root / "loopml"
        self.ml_dir = self.root / "mlflow"
        self.lo_dir.mkdir()
        self.ml_dir.mkdir()
        self.lo_env = worker_env(LOOPML_WORKSPACE=str(self.lo_dir / "ws"))
        # MLflow finds its store the way a server would be configured: by the environment
        self.ml_env = worker_env(MLFLOW_TRACKING_URI=f"sqlite:///{self.ml_dir / 'm.db'}")

    def loopml(self, task: str, **cfg: Any) -> Figures:
        scratch = Path(tempfile.mkdtemp(prefix=f"{task}-", dir=self.root))
        payload = json.dumps({"task": task, "tmp": str(scratch), **cfg})
        cmd = [sys.executable, Path(__file__).resolve(), "--worker", payload]
        return _run(cmd, env=self.lo_env, cwd=self.lo_dir)[0]

    def mlflow_setup(self) -> Figures:
        assert self.mlflow_python is not None
        script = self.root / "mlflow_setup.py"
        script.write_text(MLFLOW_SETUP)
        cfg = {
            "tmp": str(self.ml_dir),
            "n_estimators": N_ESTIMATORS,
            "random_state": RANDOM_STATE,
            "example_rows": EXAMPLE_ROWS,
            "trusted_types": ["sklearn.tree._tree.Tree"] if self._wants_trusted_types() else [],
        }
        return _run(
            [self.mlflow_python, script, json.dumps(cfg)], env=self.ml_env, cwd=self.ml_dir
        )[0]

    def _wants_trusted_types(self) -> bool:
        assert self.mlflow_python is not None
        code = (
            "import inspect, mlflow.sklearn; "
            "print('skops_trusted_types' in inspect.signature(mlflow.sklearn.log_model).parameters)"
        )
        out = subprocess.run(
            [str(self.mlflow_python), "-c", code],
            capture_output=True,
            text=True,
            env=self.ml_env,
            cwd=self.ml_dir,
            check=True,
        )
        return out.stdout.strip().endswith("True")

    def write_script(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        return path

    def cold(self, side: str, script: Path) -> Figures:
        if side == "loopml":
            figures, wall = _run([sys.executable, script], env=self.lo_env, cwd=self.lo_dir)
        else:
            assert self.mlflow_python is not None
            figures, wall = _run([self.mlflow_python, script], env=self.ml_env, cwd=self.ml_dir)
        figures["process_s"] = wall
        return figures

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# -- the measurements ----------------------------------------------------------------------------
PARTS = ("import_s", "load_s", "predict_s", "total_s", "process_s")


def measure_cold(bench: Bench, sizes: Sizes) -> Figures:
    say("setting up: loopml logs the pipeline (and its ONNX conversion) ...")
    lo = bench.loopml("setup")
    columns, row = lo["columns"], lo["row"]
    scripts = {
        "loopml": bench.write_script(
            "cold_loopml.py", cold_script("loopml", lo["uri"], columns, row)
        )
    }
    ml: Figures | None = None
    if bench.mlflow_python is not None:
        say("setting up: MLflow logs the pipeline (it infers the requirements: a while) ...")
        ml = bench.mlflow_setup()
        scripts["mlflow"] = bench.write_script(
            "cold_mlflow.py", cold_script("mlflow", ml["uri"], columns, row)
        )
    # references, not part of the comparison: the same joblib file loaded by joblib alone (the
    # floor for any loader of this model), and loopml loading the ONNX conversion
    scripts["floor"] = bench.write_script(
        "cold_floor.py", cold_script("floor", lo["joblib_file"], columns, row)
    )
    if lo["onnx_uri"]:
        scripts["loopml_onnx"] = bench.write_script(
            "cold_loopml_onnx.py", cold_script("loopml", lo["onnx_uri"], columns, row)
        )
    cache = Path(lo["cache_dir"])
    series: dict[str, list[Figures]] = {
        "loopml": [],
        "loopml_cached": [],
        "mlflow": [],
        "floor": [],
        "loopml_onnx": [],
    }
    for i in range(sizes.cold_repeats + 1):
        label = "warm-up round" if i == 0 else f"round {i}/{sizes.cold_repeats}"
        say(f"cold load + first prediction, {label} ...")
        shutil.rmtree(cache, ignore_errors=True)
        got = {"loopml": bench.cold("loopml", scripts["loopml"])}
        if not cache.is_dir() or not any(cache.iterdir()):
            warn(f"loopml's model cache {cache} is still empty after a load")
        got["loopml_cached"] = bench.cold("loopml", scripts["loopml"])
        if "mlflow" in scripts:
            got["mlflow"] = bench.cold("mlflow", scripts["mlflow"])
        got["floor"] = bench.cold("loopml", scripts["floor"])
        if "loopml_onnx" in scripts:
            shutil.rmtree(cache, ignore_errors=True)  # empty, like the headline loopml figure
            got["loopml_onnx"] = bench.cold("loopml", scripts["loopml_onnx"])
        for side, figures in got.items():
            if figures["prediction"] != lo["expected"]:
                warn(f"{side} predicted {figures['prediction']}, expected {lo['expected']}")
            if i:
                series[side].append(figures)

    out: Figures = {
        "data_shape": lo["data_shape"],
        "loopml_model_bytes": lo["model_bytes"],
        "loopml_model_files": lo["files"],
        "loopml_flavor": lo["flavor"],
        "sklearn_version": lo["sklearn_version"],
        "mlflow_model_bytes": ml["model_bytes"] if ml else None,
        "mlflow_model_files": ml["files"] if ml else None,
        "mlflow_sklearn_version": ml["sklearn_version"] if ml else None,
    }
    for prefix, runs in series.items():
        for part in PARTS:
            key = f"{prefix}_{part.removesuffix('_s')}_part_s"
            out[key] = statistics.median(r[part] for r in runs) if runs else None
        out[f"{prefix}_load_predict_part_s"] = (
            statistics.median(r["load_s"] + r["predict_s"] for r in runs) if runs else None
        )
        out[f"{prefix}_cold_totals_s"] = [r["total_s"] for r in runs]
    out["loopml_cold_load_s"] = out.pop("loopml_total_part_s")
    out["loopml_cold_load_cached_s"] = out.pop("loopml_cached_total_part_s")
    out["mlflow_cold_load_s"] = out.pop("mlflow_total_part_s")
    out["floor_cold_load_s"] = out.pop("floor_total_part_s")
    out["loopml_onnx_cold_load_s"] = out.pop("loopml_onnx_total_part_s")
    out["load_ratio"] = _ratio(out["mlflow_cold_load_s"], out["loopml_cold_load_s"])
    out["load_ratio_cached"] = _ratio(out["mlflow_cold_load_s"], out["loopml_cold_load_cached_s"])
    # the best ratio any loader of this joblib file could reach on this machine
    out["load_ratio_ceiling"] = _ratio(out["mlflow_cold_load_s"], out["floor_cold_load_s"])
    # a different model format: not like with like, shown for what it says about the goal
    out["load_ratio_onnx"] = _ratio(out["mlflow_cold_load_s"], out["loopml_onnx_cold_load_s"])
    return out


def measure_latency(bench: Bench, sizes: Sizes) -> Figures:
    say(
        f"single-row predict_proba: {sizes.latency_calls:,} calls for each of 4 callers "
        "(plus the ONNX conversion) ..."
    )
    lo = bench.loopml("latency", calls=sizes.latency_calls, warmup=sizes.latency_warmup)
    out: Figures = {
        "sklearn_row_us": lo["sklearn_row_us"],
        "sklearn_row_p99_us": lo["sklearn_row_p99_us"],
        "loopml_sklearn_row_us": lo["loopml_sklearn_row_us"],
        "loopml_sklearn_row_p99_us": lo["loopml_sklearn_row_p99_us"],
        "onnx_row_us": lo["onnx_row_us"],
        "onnx_row_p99_us": lo["onnx_row_p99_us"],
        "loopml_onnx_row_us": lo.get("loopml_onnx_row_us"),
        "loopml_onnx_row_p99_us": lo.get("loopml_onnx_row_p99_us"),
        "onnx_parity_max_abs_diff": lo["onnx_parity_max_abs_diff"],
        "onnx_parity_rows": lo["onnx_parity_rows"],
        "onnx_parity_rows_over_1e-5": lo["onnx_parity_rows_over_1e-5"],
        "onnx_parity_float32_input_max_abs_diff": lo["onnx_parity_float32_input_max_abs_diff"],
        "onnx_labels_equal": lo["onnx_labels_equal"],
        "loopml_sklearn_parity_max_abs_diff": lo["loopml_sklearn_parity_max_abs_diff"],
        "loopml_onnx_parity_max_abs_diff": lo.get("loopml_onnx_parity_max_abs_diff"),
        "onnx_converted_with": lo["onnx_converted_with"],
        "onnx_model_bytes": lo["onnx_bytes"],
        "onnxruntime_version": lo["onnxruntime_version"],
    }
    out["onnx_speedup"] = _ratio(out["sklearn_row_us"], out["onnx_row_us"])
    if not out["onnx_labels_equal"]:
        warn("ONNX Runtime's labels differ from scikit-learn's on some rows")
    return out


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


# -- report --------------------------------------------------------------------------------------
def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}"


def _grid(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# cold-load columns: (header, key prefix of the parts, total, MLflow / this)
COLD_COLUMNS = (
    ("loopml, empty cache", "loopml", "loopml_cold_load_s", "load_ratio"),
    ("loopml, cache filled", "loopml_cached", "loopml_cold_load_cached_s", "load_ratio_cached"),
    ("MLflow", "mlflow", "mlflow_cold_load_s", None),
    ("ref: joblib.load alone", "floor", "floor_cold_load_s", "load_ratio_ceiling"),
    ("ref: loopml, ONNX model", "loopml_onnx", "loopml_onnx_cold_load_s", "load_ratio_onnx"),
)


def table(f: Figures) -> str:
    cold: list[tuple[str, ...]] = [("cold load + first predict, s", *(c[0] for c in COLD_COLUMNS))]
    for label, part in (
        ("import", "import_part_s"),
        ("load_model", "load_part_s"),
        ("first predict (1 row)", "predict_part_s"),
        ("load + predict", "load_predict_part_s"),
    ):
        cold.append((f"  {label}", *(_num(f[f"{c[1]}_{part}"]) for c in COLD_COLUMNS)))
    cold.append(("  total (median)", *(_num(f[c[2]]) for c in COLD_COLUMNS)))
    cold.append(
        (
            "  whole process (with start-up)",
            *(_num(f[f"{c[1]}_process_part_s"]) for c in COLD_COLUMNS),
        )
    )
    cold.append(("  MLflow / this", *(_num(f[c[3]], "x") if c[3] else "" for c in COLD_COLUMNS)))
    latency: list[tuple[str, ...]] = [
        ("single-row predict_proba, µs", "median", "p99", "sklearn / this")
    ]
    for label, key in (
        ("scikit-learn pipe.predict_proba", "sklearn"),
        ("loopml Predictor, sklearn flavor", "loopml_sklearn"),
        ("onnxruntime session.run", "onnx"),
        ("loopml Predictor, onnx flavor", "loopml_onnx"),
    ):
        median = f[f"{key}_row_us"]
        latency.append(
            (
                f"  {label}",
                _num(median),
                _num(f[f"{key}_row_p99_us"]),
                _num(_ratio(f["sklearn_row_us"], median), "x"),
            )
        )
    return _grid(cold) + "\n\n" + _grid(latency)


def notes(f: Figures, sizes: Sizes) -> list[str]:
    met = f["goals_met"]["load"]
    verdict = "-" if met is None else ("yes" if met else "NO")
    out = [
        f"goal: MLflow / loopml (empty cache) >= {LOAD_GOAL:g}x: {verdict}",
        "'ref: joblib.load alone': loopml's model.joblib loaded by joblib, no tracking library: "
        "the floor for any loader that runs scikit-learn itself (loopml's ONNX twin does not)",
        "'ref: loopml, ONNX model': the same pipeline converted to ONNX, logged to the same run "
        "and loaded by loopml with an empty cache; another format, so not like with like",
        f"cold: median of {sizes.cold_repeats} fresh interpreters per column, after one "
        "warm-up round; each part is its own median, so the parts need not add up to the total",
        "'empty cache': loopml's model cache was deleted before the load, so the model is copied "
        "out of the artifact store (MLflow copies it into a temporary folder on every load)",
        f"model folders: loopml {_num(f['loopml_model_bytes'])} bytes "
        f"({', '.join(f['loopml_model_files'])})"
        + (
            f"; MLflow {_num(f['mlflow_model_bytes'])} bytes ({', '.join(f['mlflow_model_files'])})"
            if f["mlflow_model_files"]
            else ""
        ),
        f"latency: {sizes.latency_calls:,} calls each after {sizes.latency_warmup} warm-up "
        f"calls, the callers taking turns in blocks of {BLOCK}; "
        f"one row of float64 (float32 for onnxruntime); the ONNX model made by "
        f"{f['onnx_converted_with']}, {_num(f['onnx_model_bytes'])} bytes",
        f"parity over all {f['onnx_parity_rows']} rows: max |p_sklearn - p_onnx| = "
        f"{f['onnx_parity_max_abs_diff']:.3g} (over 1e-5 on {f['onnx_parity_rows_over_1e-5']} "
        f"of them), labels equal: {f['onnx_labels_equal']}; with scikit-learn given the same "
        f"float32-rounded input: {f['onnx_parity_float32_input_max_abs_diff']:.3g}",
    ]
    if f["mlflow_sklearn_version"] and f["mlflow_sklearn_version"] != f["sklearn_version"]:
        out.append(
            f"WARNING: scikit-learn differs: {f['sklearn_version']} (loopml) and "
            f"{f['mlflow_sklearn_version']} (MLflow)"
        )
    if f["quick"]:
        out.append("--quick: fewer repetitions for a smoke run; the goal is set for the full run")
    return out


# -- entry point ---------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark model loading (loopml vs MLflow) and single-row latency (ONNX)."
    )
    p.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run")
    p.add_argument("--skip-mlflow", action="store_true", help="measure loopml only")
    p.add_argument(
        "--mlflow-venv",
        type=Path,
        default=DEFAULT_MLFLOW_VENV,
        help="virtualenv for MLflow, made on first use (default: .bench/mlflow-venv)",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> Figures:
    import loopml

    sizes = QUICK if args.quick else FULL
    mlflow_python = None if args.skip_mlflow else ensure_mlflow_venv(args.mlflow_venv)
    if mlflow_python is not None:
        from importlib.metadata import version

        ensure_sklearn(mlflow_python, version("scikit-learn"))
    bench = Bench(mlflow_python)
    figures: Figures = {
        "loopml_version": loopml.__version__,
        "mlflow_version": mlflow_version(mlflow_python) if mlflow_python else None,
        "python_version": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": dt.date.today().isoformat(),
        "quick": args.quick,
        "sizes": {**dataclasses.asdict(sizes), "n_estimators": N_ESTIMATORS},
        "threads": THREAD_VARS,
    }
    try:
        figures.update(measure_cold(bench, sizes))
        figures.update(measure_latency(bench, sizes))
    finally:
        bench.close()
    ratio = figures["load_ratio"]
    figures["goals_met"] = {"load": None if ratio is None else bool(ratio >= LOAD_GOAL)}
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
    print()
    print(table(figures))
    print()
    for line in notes(figures, QUICK if args.quick else FULL):
        print(f"  {line}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
