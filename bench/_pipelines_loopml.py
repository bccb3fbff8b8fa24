"""The loopml side of ``bench/pipelines.py``: one measurement in a fresh interpreter.

Run as ``python <this file> '<config json>'`` by the interpreter that runs the benchmark, with
``LOOPML_WORKSPACE`` set to an empty or earlier-used folder. The workload (``load_frame``,
``scale``, ``fit``, ``inc``) is the same code as in ``_pipelines_zenml.py``; keep the two in step.

Phases (``cfg["phase"]``): ``first`` (the 3-step pipeline with its default cache setting on an
empty workspace), ``uncached`` (``.run(cache=False)``), ``cached`` (``.run()``, cache on),
``chain_warmup`` and ``chain`` (the 20-step chain with ``cache=False``). With ``cfg["calls"]``
of 2 the measured call is made twice: the first is the figure, the second the warm in-process
figure for the notes. ``cfg["executor"]`` names the executor, or is null for the default. The
figures go as JSON to ``cfg["out"]``.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import json  # noqa: E402  (the imports are timed)
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pandas as pd  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

T_LIBS = time.perf_counter()

from loopml.pipelines import pipeline, step  # noqa: E402

T_TOOL = time.perf_counter()

CHAIN_LENGTH = 20


# -- the workload: the same code as in _pipelines_zenml.py -------------------------------------
def load_frame() -> pd.DataFrame:
    """scikit-learn's bundled breast cancer data: 569 rows, 30 features and ``target``."""
    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    return frame


def scale(frame: pd.DataFrame) -> pd.DataFrame:
    features = frame.drop(columns="target")
    out = pd.DataFrame(
        StandardScaler().fit_transform(features), columns=features.columns, index=features.index
    )
    out["target"] = frame["target"]
    return out


def fit(frame: pd.DataFrame) -> LogisticRegression:
    model = LogisticRegression(max_iter=1000)
    return model.fit(frame.drop(columns="target"), frame["target"])


def inc(x: int) -> int:
    return x + 1


# -- loopml's steps and pipelines ---------------------------------------------------------------
@step
def ingest() -> pd.DataFrame:
    return load_frame()


@step
def transform(frame: pd.DataFrame) -> pd.DataFrame:
    return scale(frame)


@step
def train(frame: pd.DataFrame) -> LogisticRegression:
    return fit(frame)


@pipeline
def training() -> None:
    train(transform(ingest()))


def _chain_step(i: int) -> Any:
    def chain_step(x: int) -> int:
        return inc(x)

    # the same shape as ZenML's side: each step a module attribute of its own name
    chain_step.__name__ = chain_step.__qualname__ = f"step_{i:02d}"
    return step(chain_step)


CHAIN = [_chain_step(i) for i in range(CHAIN_LENGTH)]
globals().update({s.name: s for s in CHAIN})


@pipeline
def chain() -> None:
    x = 0
    for s in CHAIN:
        x = s(x)


# -- the measurement ---------------------------------------------------------------------------
def _timed(call: Any, cfg: dict[str, Any]) -> tuple[Any, float]:
    """``call()`` and its wall time; under cProfile when ``cfg["profile"]`` names a file (the
    profiled calls are extra runs for the notes, not figures)."""
    if not cfg.get("profile"):
        t0 = time.perf_counter()
        value = call()
        return value, time.perf_counter() - t0
    import cProfile

    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    value = profiler.runcall(call)
    elapsed = time.perf_counter() - t0
    profiler.dump_stats(cfg["profile"])
    return value, elapsed


def _status(value: Any) -> str:
    """An enum's value or a string, lower case: ``completed``, ``cached``, ..."""
    return str(getattr(value, "value", value)).lower()


def _statuses(result: Any) -> dict[str, str]:
    return {name: _status(s.status) for name, s in result.steps.items()}


def _run_options(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"executor": cfg["executor"]} if cfg.get("executor") else {}


def measure_training(cfg: dict[str, Any]) -> dict[str, Any]:
    options = _run_options(cfg)
    if cfg["phase"] == "uncached":
        options["cache"] = False
    result, run_s = _timed(lambda: training.run(**options), cfg)
    warm_run_s = None
    if cfg.get("calls", 1) > 1:  # the same call again in this process: the warm figure
        result, warm_run_s = _timed(lambda: training.run(**options), {})
    result.raise_for_status()
    model = result.output("train")
    frame = result.output("transform")
    t0 = time.perf_counter()
    bare_model = fit(scale(load_frame()))
    bare_s = time.perf_counter() - t0
    features = frame.drop(columns="target")
    return {
        "init_s": 0.0,
        "run_s": run_s,
        "warm_run_s": warm_run_s,
        "bare_s": bare_s,
        "status": _status(result.run.status),
        "steps": _statuses(result),
        "accuracy": float(model.score(features, frame["target"])),
        "bare_accuracy": float(bare_model.score(features, frame["target"])),
    }


def measure_chain(cfg: dict[str, Any]) -> dict[str, Any]:
    options = {**_run_options(cfg), "cache": False}
    times = []
    result = None
    for i in range(cfg.get("calls", 2)):
        result, elapsed = _timed(lambda: chain.run(**options), cfg if i == 0 else {})
        times.append(elapsed)
    assert result is not None
    result.raise_for_status()
    bare = 0.0
    x = 0
    for s in CHAIN:
        t0 = time.perf_counter()
        x = s.fn(x)
        bare += time.perf_counter() - t0
    return {
        "run_s": times[0],
        "warm_run_s": times[1] if len(times) > 1 else None,
        "bare_s": bare,
        "status": _status(result.run.status),
        "steps": _statuses(result),
        "value": result.output(f"step_{CHAIN_LENGTH - 1:02d}"),
        "bare_value": x,
    }


def main() -> None:
    import sklearn

    import loopml

    cfg = json.loads(sys.argv[1])
    measure = measure_chain if cfg["phase"] in ("chain", "chain_warmup") else measure_training
    out = measure(cfg)
    out.update(
        phase=cfg["phase"],
        libs_s=T_LIBS - T_START,
        import_s=T_TOOL - T_LIBS,
        version=loopml.__version__,
        sklearn_version=sklearn.__version__,
        pandas_version=pd.__version__,
    )
    Path(cfg["out"]).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
