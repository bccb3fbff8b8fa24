"""The ZenML side of ``bench/pipelines.py``: one measurement in a fresh interpreter.

Run by the ZenML virtualenv's interpreter as ``python <this file> '<config json>'``, with the
workspace folder as the working directory, which is also ZenML's repository root and source
root (``bench/pipelines.py`` copies this file there). It imports only the standard library,
pandas, scikit-learn and ZenML. The workload (``load_frame``, ``scale``, ``fit``, ``inc``) is the
same code as in ``_pipelines_loopml.py``; keep the two in step.

Phases (``cfg["phase"]``): ``first`` (``Client.initialize()``, what ``zenml init`` does, then
the 3-step pipeline with its default cache setting on an empty store), ``uncached``
(``enable_cache=False``), ``cached`` (the default, cache on), ``chain_warmup`` and ``chain``
(the 20-step chain with ``enable_cache=False``). With ``cfg["calls"]`` of 2 the measured call
is made twice: the first is the figure, the second the warm in-process figure for the notes.
The figures go as JSON to ``cfg["out"]``; ZenML's own logging goes to stdout and stderr, which
the caller keeps in a log file.
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

from zenml import pipeline, step  # noqa: E402
from zenml.client import Client  # noqa: E402

T_TOOL = time.perf_counter()

CHAIN_LENGTH = 20


# -- the workload: the same code as in _pipelines_loopml.py ------------------------------------
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


# -- ZenML's steps and pipelines ----------------------------------------------------------------
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

    # ZenML finds a step by module and name: each one is a module attribute of its own name
    chain_step.__name__ = chain_step.__qualname__ = f"step_{i:02d}"
    return step(chain_step)


CHAIN = [_chain_step(i) for i in range(CHAIN_LENGTH)]
globals().update({s.entrypoint.__name__: s for s in CHAIN})


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


def _statuses(run: Any) -> dict[str, str]:
    return {name: str(s.status.value) for name, s in run.steps.items()}


def measure_training(cfg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"init_s": 0.0}
    if cfg["phase"] == "first":
        t0 = time.perf_counter()
        Client.initialize(Path.cwd())  # zenml init: the repository and the local store
        out["init_s"] = time.perf_counter() - t0
    configured = training
    if cfg["phase"] == "uncached":
        configured = training.with_options(enable_cache=False)
    run, out["run_s"] = _timed(configured, cfg)
    out["warm_run_s"] = None
    if cfg.get("calls", 1) > 1:  # the same call again in this process: the warm figure
        run, out["warm_run_s"] = _timed(configured, {})
    run = Client().get_pipeline_run(run.id)
    model = run.steps["train"].output.load()
    frame = run.steps["transform"].output.load()
    t0 = time.perf_counter()
    bare_model = fit(scale(load_frame()))
    out["bare_s"] = time.perf_counter() - t0
    features = frame.drop(columns="target")
    out.update(
        status=str(run.status.value),
        steps=_statuses(run),
        accuracy=float(model.score(features, frame["target"])),
        bare_accuracy=float(bare_model.score(features, frame["target"])),
    )
    return out


def measure_chain(cfg: dict[str, Any]) -> dict[str, Any]:
    uncached = chain.with_options(enable_cache=False)
    times = []
    run = None
    for i in range(cfg.get("calls", 2)):
        run, elapsed = _timed(uncached, cfg if i == 0 else {})
        times.append(elapsed)
    assert run is not None
    run = Client().get_pipeline_run(run.id)
    bare = 0.0
    x = 0
    for s in CHAIN:
        t0 = time.perf_counter()
        x = s.entrypoint(x)
        bare += time.perf_counter() - t0
    return {
        "run_s": times[0],
        "warm_run_s": times[1] if len(times) > 1 else None,
        "bare_s": bare,
        "status": str(run.status.value),
        "steps": _statuses(run),
        "value": run.steps[f"step_{CHAIN_LENGTH - 1:02d}"].output.load(),
        "bare_value": x,
    }


def main() -> None:
    from importlib.metadata import version

    import sklearn

    cfg = json.loads(sys.argv[1])
    measure = measure_chain if cfg["phase"] in ("chain", "chain_warmup") else measure_training
    out = measure(cfg)
    out.update(
        phase=cfg["phase"],
        libs_s=T_LIBS - T_START,
        import_s=T_TOOL - T_LIBS,
        version=version("zenml"),
        sklearn_version=sklearn.__version__,
        pandas_version=pd.__version__,
    )
    Path(cfg["out"]).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
