"""Benchmark: loopml's drift detection against Evidently's default data drift preset.

    python bench/drift.py                    # full sizes: 100k and 1M rows x 20, 200k mixed
    python bench/drift.py --quick            # small sizes: a smoke run
    python bench/drift.py --skip-evidently   # loopml only; the ratios are null
    python bench/drift.py --sizes 100000,1000000 --mixed-rows 200000

The data are generated once with NumPy (fixed seed) and kept as Parquet files under
``<repo>/.bench/drift-data``; both tools read the same files. Three kinds of reference/current
pairs, each with the same number of rows on both sides:

* ``num_<rows>``: 20 numerical columns (normal, log-normal, uniform, exponential and gamma
  distributions); in the current data, columns f00, f02, ..., f08 are shifted by +0.2 reference
  standard deviations and f01, f03, ..., f09 are scaled by 1.5 around the reference mean;
  f10 to f19 are drawn again from the reference distributions.
* ``mixed_<rows>``: 10 numerical and 5 categorical columns, 5 % of every column missing;
  n0 (shifted), n1 (scaled), n9 (four values, proportions changed), c0 and c1 (category
  proportions changed) drift; c4 (200 categories) gains a few categories unseen in the
  reference, too few to count as drift.

Each tool runs in a fresh subprocess per measurement: loopml in the interpreter that runs this
script, Evidently in a virtualenv of its own (default ``<repo>/.bench/evidently-venv``, made
on first use). The worker (this file run with ``--worker``) imports its library, reads the two
Parquet files with :func:`read_frame` (timed as the load; the same loader for both) and then
times the drift computation on the loaded DataFrames:

* loopml: ``detect_drift(reference, current)``; after the measured part, the worker also times
  ``DriftDetector().fit(reference)`` and ``.score(current)`` apart, for the notes;
* Evidently: ``Dataset.from_pandas`` for both frames (with a ``DataDefinition`` that names the
  numerical and categorical columns) and ``Report([DataDriftPreset()],
  include_tests=True).run(current, reference)``; the tests only turn each column's drift score,
  already computed, into a pass/fail, and give Evidently's own per-column verdicts.

Turning the result into a dict (``report.to_dict()``, ``snapshot.dict()``) is timed apart.
Memory is peak resident set size. Once the frames are loaded, the worker notes its RSS and its
peak so far (the load's), then resets the peak (Linux: ``/proc/self/clear_refs``), so the
peak it reads after the computation (``peak_mb``, the goal's figure) is the computation's with
the interpreter, the libraries and the loaded frames resident. The whole-process peak, load
included (``process_peak_mb``), is the larger of the two. Where the peak cannot be reset, both
are ``ru_maxrss`` from ``os.wait4``. Progress goes to stderr; stdout has a table, a few notes
and, as its last line, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import json
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
    REPO,
    BenchError,
    child_env,
    say,
    venv_python,
    warn,
)

Figures = dict[str, Any]

DEFAULT_EVIDENTLY_VENV = REPO / ".bench" / "evidently-venv"
DEFAULT_DATA_DIR = REPO / ".bench" / "drift-data"
# Evidently 0.7.23 imports a pandas internal that pandas 3 removed, and does not cap pandas.
EVIDENTLY_REQUIREMENTS = ("evidently>=0.7,<0.8", "pandas<3")
SEED = 20251122
DATA_VERSION = 1  # bump when the generators change, so cached Parquet files are not reused
SPEED_GOAL = 50.0
MEMORY_GOAL = 1 / 3
HEADLINE_ROWS = 1_000_000
READ_BUFFER = 1 << 20  # bytes; Parquet is read through this buffer, not pre-buffered whole

N_NUMERICAL = 20
N_SHIFTED = 10
MEAN_SHIFT_SD = 0.2  # f00, f02, ...: + 0.2 reference standard deviations
SCALE = 1.5  # f01, f03, ...: spread 1.5 times wider around the reference mean
MISSING = 0.05  # the mixed set: share of missing values in every column
UNSEEN_SHARE = 0.005  # the mixed set, c4: share of current rows with unseen categories


@dataclasses.dataclass(frozen=True)
class Sizes:
    numerical: tuple[int, ...]
    mixed: int  # 0: no mixed set
    loopml_repeats: int
    evidently_repeats: int


FULL = Sizes((100_000, 1_000_000), 200_000, 3, 1)
QUICK = Sizes((10_000, 50_000), 20_000, 1, 1)


@dataclasses.dataclass(frozen=True)
class DataSet:
    """One reference/current pair: its columns, the columns made to drift, its files."""

    kind: str  # "num" or "mixed"
    rows: int
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    expected: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.kind}_{rows_label(self.rows)}"

    @property
    def columns(self) -> int:
        return len(self.numerical) + len(self.categorical)

    def path(self, data_dir: Path, role: str) -> Path:
        return data_dir / f"{self.name}-seed{SEED}-v{DATA_VERSION}-{role}.parquet"


def rows_label(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}m"
    if rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def numerical_set(rows: int) -> DataSet:
    names = tuple(f"f{i:02d}" for i in range(N_NUMERICAL))
    return DataSet("num", rows, names, (), names[:N_SHIFTED])


def mixed_set(rows: int) -> DataSet:
    numerical = tuple(f"n{i}" for i in range(10))
    categorical = tuple(f"c{i}" for i in range(5))
    return DataSet("mixed", rows, numerical, categorical, ("n0", "n1", "n9", "c0", "c1"))


# -- the data: NumPy with a fixed seed, written once to Parquet --------------------------------
def _draw(rng: Any, dist: int, n: int) -> Any:
    """n values of one of five reference distributions."""
    if dist == 0:
        return rng.normal(10.0, 2.0, n)
    if dist == 1:
        return rng.lognormal(0.0, 0.5, n)
    if dist == 2:
        return rng.uniform(0.0, 10.0, n)
    if dist == 3:
        return rng.exponential(2.0, n)
    return rng.gamma(2.0, 1.5, n)


def _shifted(ref: Any, cur: Any, how: str) -> Any:
    mean, sd = float(ref.mean()), float(ref.std())
    if how == "shift":
        return cur + MEAN_SHIFT_SD * sd
    return mean + SCALE * (cur - mean)


def _categories(rng: Any, labels: Sequence[object], p: Sequence[float], n: int) -> Any:
    import numpy as np

    weights = np.asarray(p, dtype=float)
    return np.asarray(labels, dtype=object)[
        rng.choice(len(labels), size=n, p=weights / weights.sum())
    ]


def make_numerical(ds: DataSet, rng: Any) -> tuple[Any, Any]:
    import pandas as pd

    ref, cur = {}, {}
    for i, name in enumerate(ds.numerical):
        ref[name] = _draw(rng, i % 5, ds.rows)
        cur[name] = _draw(rng, i % 5, ds.rows)
        if name in ds.expected:
            cur[name] = _shifted(ref[name], cur[name], "shift" if i % 2 == 0 else "scale")
    return pd.DataFrame(ref), pd.DataFrame(cur)


def make_mixed(ds: DataSet, rng: Any) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    n = ds.rows
    frames = []
    for role in ("reference", "current"):
        current = role == "current"
        cols: dict[str, Any] = {}
        for i in range(9):
            cols[f"n{i}"] = _draw(rng, i % 5, n)
        cols["n8"] = rng.poisson(20.0, n).astype(float)  # integers, many distinct values
        levels = [0.0, 1.0, 2.0, 3.0]  # a numerical column with four distinct values
        cols["n9"] = _categories(
            rng, levels, [0.2, 0.3, 0.3, 0.2] if current else [0.4, 0.3, 0.2, 0.1], n
        ).astype(float)
        five = ["a", "b", "c", "d", "e"]
        cols["c0"] = _categories(
            rng, five, [0.4, 0.15, 0.15, 0.15, 0.15] if current else [0.2] * 5, n
        )
        cols["c1"] = _categories(rng, ["yes", "no"], [0.7, 0.3] if current else [0.5, 0.5], n)
        cities = [f"city_{k:02d}" for k in range(30)]
        cols["c2"] = _categories(rng, cities, [1 / (k + 1) for k in range(30)], n)
        cols["c3"] = _categories(rng, ["low", "mid", "high"], [0.5, 0.3, 0.2], n)
        skus = [f"sku_{k:03d}" for k in range(200)]
        cols["c4"] = _categories(rng, skus, [1 / (k + 1) ** 0.8 for k in range(200)], n)
        if current:
            unseen = rng.random(n) < UNSEEN_SHARE
            new = [f"sku_new_{k}" for k in range(5)]
            cols["c4"][unseen] = _categories(rng, new, [1.0] * 5, int(unseen.sum()))
        frames.append(cols)
    ref, cur = frames
    for name in ("n0", "n1"):
        cur[name] = _shifted(ref[name], cur[name], "shift" if name == "n0" else "scale")
    out = []
    for cols in (ref, cur):
        frame = pd.DataFrame(cols)
        for name in frame.columns:
            gone = rng.random(n) < MISSING
            frame[name] = frame[name].where(~gone, np.nan if name.startswith("n") else None)
        out.append(frame)
    return out[0], out[1]


def ensure_data(ds: DataSet, data_dir: Path) -> None:
    """Write the set's two Parquet files unless they are there already."""
    import numpy as np

    ref_path, cur_path = ds.path(data_dir, "reference"), ds.path(data_dir, "current")
    if ref_path.exists() and cur_path.exists():
        return
    say(f"generating {ds.name}: 2 x {ds.rows:,} rows x {ds.columns} columns ...")
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([SEED, ds.rows, 0 if ds.kind == "num" else 1])
    make = make_numerical if ds.kind == "num" else make_mixed
    ref, cur = make(ds, rng)
    for frame, path in ((ref, ref_path), (cur, cur_path)):
        partial = path.with_suffix(".partial")
        frame.to_parquet(partial, index=False)
        partial.replace(path)


# -- the workers: this file run with --worker, by loopml's or Evidently's interpreter ----------
def _proc_status_mb(field: str) -> float | None:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in MiB; None off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def loopml_drift(reference: Any, current: Any, cfg: Figures) -> Figures:
    """``detect_drift`` (measured); then, for the notes, ``fit`` and ``score`` timed apart."""
    from loopml.monitoring import DriftDetector, detect_drift

    t0 = time.perf_counter()
    report = detect_drift(reference, current)
    t1 = time.perf_counter()
    report.to_dict()
    t2 = time.perf_counter()
    peak = _proc_status_mb("VmHWM")
    detector = DriftDetector().fit(reference)
    t3 = time.perf_counter()
    detector.score(current)
    t4 = time.perf_counter()
    columns = {
        name: {
            "drifted": bool(col.drifted),
            "method": col.method,
            "statistic": col.statistic,
            "message": col.message,
        }
        for name, col in report.columns.items()
    }
    return {
        "compute_s": t1 - t0,
        "extract_s": t2 - t1,
        "compute_hwm_mb": peak,
        "fit_s": t3 - t2,
        "score_s": t4 - t3,
        "columns": columns,
        "dataset_drifted": bool(report.dataset_drifted),
        "share_drifted": report.share_drifted,
        "warnings": list(report.warnings),
    }


def evidently_drift(reference: Any, current: Any, cfg: Figures) -> Figures:
    evidently = importlib.import_module("evidently")
    presets = importlib.import_module("evidently.presets")
    definition = evidently.DataDefinition(
        numerical_columns=cfg["numerical"], categorical_columns=cfg["categorical"]
    )
    t0 = time.perf_counter()
    cur = evidently.Dataset.from_pandas(current, data_definition=definition)
    ref = evidently.Dataset.from_pandas(reference, data_definition=definition)
    report = evidently.Report([presets.DataDriftPreset()], include_tests=True)
    snapshot = report.run(cur, ref)
    t1 = time.perf_counter()
    result = snapshot.dict()
    t2 = time.perf_counter()
    peak = _proc_status_mb("VmHWM")
    columns: dict[str, Figures] = {}
    share = None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = {"method": config["method"], "statistic": metric["value"]}
        elif config["type"].endswith(":DriftedColumnsCount"):
            share = metric["value"]["share"]
    dataset_drifted = None
    for test in result["tests"]:
        params = test["metric_config"]["params"]
        failed = test["status"] == "FAIL"
        if params["type"].endswith(":ValueDrift"):
            columns[params["column"]]["drifted"] = failed
        elif params["type"].endswith(":DriftedColumnsCount"):
            dataset_drifted = failed
    return {
        "compute_s": t1 - t0,
        "extract_s": t2 - t1,
        "compute_hwm_mb": peak,
        "columns": columns,
        "dataset_drifted": dataset_drifted,
        "share_drifted": share,
    }


TOOLS: dict[str, tuple[str, Callable[[Any, Any, Figures], Figures]]] = {
    "loopml": ("loopml.monitoring", loopml_drift),
    "evidently": ("evidently", evidently_drift),
}


def read_frame(path: str) -> Any:
    """``pandas.read_parquet`` reading through a small buffer, then Arrow's freed memory handed
    back to the OS: the same loader for both tools, which keeps the load's own transient memory
    from setting the peak of a process."""
    import pandas as pd
    import pyarrow

    frame = pd.read_parquet(path, pre_buffer=False, buffer_size=READ_BUFFER)
    pyarrow.default_memory_pool().release_unused()
    return frame


def _reset_peak() -> bool:
    """Reset the process's peak RSS (Linux: ``5`` to /proc/self/clear_refs), so that the peak
    read at the end is the computation's, with the loaded frames resident; False if it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_worker(cfg_json: str) -> None:
    """Import the tool, load both files, compute the drift; print the figures as JSON."""
    from importlib.metadata import version

    cfg = json.loads(cfg_json)
    module, compute = TOOLS[cfg["tool"]]
    t0 = time.perf_counter()
    import pandas as pd

    importlib.import_module(module)
    t1 = time.perf_counter()
    reference = read_frame(cfg["reference"])
    current = read_frame(cfg["current"])
    t2 = time.perf_counter()
    after_load = {
        "rss_after_load_mb": _proc_status_mb("VmRSS"),
        "hwm_after_load_mb": _proc_status_mb("VmHWM"),
    }
    reset = _reset_peak()
    out = compute(reference, current, cfg)  # reads the peak (VmHWM) right after the measured part
    if not reset:
        out["compute_hwm_mb"] = None
    out.update(
        import_s=t1 - t0,
        load_s=t2 - t1,
        version=version(cfg["tool"]),
        pandas_version=pd.__version__,
        **after_load,
    )
    print(json.dumps(out))


# -- running the workers -----------------------------------------------------------------------
def run_measured(python: Path | str, cfg: Figures, scratch: Path) -> Figures:
    """One worker in a fresh process; its figures plus its peak RSS from ``os.wait4``."""
    out_path = scratch / "worker-out.json"
    cmd = [str(python), str(Path(__file__).resolve()), "--worker", json.dumps(cfg)]
    with out_path.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, env=child_env(), cwd=scratch)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in out_path.read_text().splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(lines[-5:])
        raise BenchError(f"{cfg['tool']} worker exited {proc.returncode}:\n{tail}")
    figures: Figures = json.loads(lines[-1])
    # ru_maxrss (KiB on Linux) counts from the worker's reset of its peak, when it could reset
    # it, and up to its exit (loopml's worker times fit and score apart after the measured part)
    figures["exit_peak_mb"] = usage.ru_maxrss / 1024
    if figures["compute_hwm_mb"] is None:
        figures["peak_mb"] = figures["process_peak_mb"] = figures["exit_peak_mb"]
    else:
        figures["peak_mb"] = figures["compute_hwm_mb"]
        figures["process_peak_mb"] = max(figures["peak_mb"], figures["hwm_after_load_mb"])
    return figures


def measure_tool(
    python: Path | str, tool: str, ds: DataSet, data_dir: Path, repeats: int, scratch: Path
) -> Figures:
    """The median time and the largest peak memory over ``repeats`` fresh workers."""
    cfg = {
        "tool": tool,
        "reference": str(ds.path(data_dir, "reference")),
        "current": str(ds.path(data_dir, "current")),
        "numerical": list(ds.numerical),
        "categorical": list(ds.categorical),
    }
    runs = []
    for i in range(repeats):
        say(f"{ds.name}: {tool}, run {i + 1} of {repeats} ...")
        runs.append(run_measured(python, cfg, scratch))
        r = runs[-1]
        say(
            f"  {tool}: {r['compute_s']:.3f} s, peak {r['peak_mb']:,.0f} MiB, "
            f"drifted {sorted(drifted_columns(r))}"
        )
    first = runs[0]
    if any(drifted_columns(r) != drifted_columns(first) for r in runs[1:]):
        warn(f"{ds.name}: {tool} flagged different columns in different runs")

    def median(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    out: Figures = {
        "compute_s": median("compute_s"),
        "compute_times_s": [r["compute_s"] for r in runs],
        "load_s": median("load_s"),
        "import_s": median("import_s"),
        "extract_s": median("extract_s"),
        "peak_mb": max(r["peak_mb"] for r in runs),
        "process_peak_mb": max(r["process_peak_mb"] for r in runs),
        # the peak above the loaded frames: what the drift computation itself added
        "above_load_mb": max(r["peak_mb"] - (r["rss_after_load_mb"] or 0.0) for r in runs),
        "rss_after_load_mb": max(r["rss_after_load_mb"] or 0.0 for r in runs),
        "hwm_after_load_mb": max(r["hwm_after_load_mb"] or 0.0 for r in runs),
        "drifted": sorted(drifted_columns(first)),
        "dataset_drifted": first["dataset_drifted"],
        "share_drifted": first["share_drifted"],
        "columns": first["columns"],
        "version": first["version"],
        "pandas_version": first["pandas_version"],
    }
    if tool == "loopml":
        out.update(fit_s=median("fit_s"), score_s=median("score_s"), warnings=first["warnings"])
    return out


def drifted_columns(figures: Figures) -> set[str]:
    return {name for name, col in figures["columns"].items() if col.get("drifted")}


def compare(ds: DataSet, lo: Figures, ev: Figures | None) -> Figures:
    """The figures of one set: both sides, the ratios and whether the verdicts agree."""
    expected = sorted(ds.expected)
    out: Figures = {
        "rows": ds.rows,
        "numerical": len(ds.numerical),
        "categorical": len(ds.categorical),
        "expected": expected,
        "loopml": lo,
        "evidently": ev,
        "loopml_matches_expected": lo["drifted"] == expected,
        "speedup": None,
        "memory_fraction": None,
        "memory_fraction_process": None,
        "same_columns": None,
        "same_dataset_drift": None,
        "max_statistic_diff": None,
        "max_statistic_diff_column": None,
    }
    if ev is None:
        return out
    diffs = {
        name: abs(lo["columns"][name]["statistic"] - col["statistic"])
        for name, col in ev["columns"].items()
        if name in lo["columns"] and lo["columns"][name]["statistic"] is not None
    }
    widest = max(diffs, key=lambda name: diffs[name]) if diffs else None
    out.update(
        speedup=ev["compute_s"] / lo["compute_s"],
        memory_fraction=lo["peak_mb"] / ev["peak_mb"],
        memory_fraction_process=lo["process_peak_mb"] / ev["process_peak_mb"],
        same_columns=lo["drifted"] == ev["drifted"],
        same_dataset_drift=lo["dataset_drifted"] == ev["dataset_drifted"],
        max_statistic_diff=diffs[widest] if widest else None,
        max_statistic_diff_column=widest,
        evidently_matches_expected=ev["drifted"] == expected,
    )
    if not out["same_columns"]:
        warn(f"{ds.name}: loopml flagged {lo['drifted']}, Evidently {ev['drifted']}")
    return out


# -- evidently's virtualenv --------------------------------------------------------------------
def _probe_version(python: Path, package: str) -> str | None:
    if not python.exists():
        return None
    code = f"import {package}; from importlib.metadata import version; print(version({package!r}))"
    probe = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=child_env()
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_evidently_venv(venv: Path) -> Path:
    """The Evidently virtualenv's interpreter; the venv is made and filled first if needed."""
    venv = venv.absolute()
    python = venv_python(venv)
    if _probe_version(python, "evidently"):
        return python
    if not python.exists():
        say(f"creating a virtualenv for Evidently in {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    say(f"installing {', '.join(EVIDENTLY_REQUIREMENTS)} and pyarrow into it (a few minutes) ...")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, stdout=sys.stderr)
    subprocess.run([*pip, *EVIDENTLY_REQUIREMENTS, "pyarrow"], check=True, stdout=sys.stderr)
    if not _probe_version(python, "evidently"):
        raise BenchError(f"{python} still cannot import evidently")
    return python


# -- report ------------------------------------------------------------------------------------
def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}"


def table(f: Figures) -> str:
    rows = [
        (
            "set",
            "rows x cols",
            "loopml s",
            "Evidently s",
            "speedup",
            "loopml MiB",
            "Evidently MiB",
            "mem fraction",
            "drifted (loopml/Evidently/expected)",
            "same",
        )
    ]
    for name, s in f["sets"].items():
        lo, ev = s["loopml"], s["evidently"]
        same = "-" if s["same_columns"] is None else ("yes" if s["same_columns"] else "NO")
        rows.append(
            (
                name,
                f"{s['rows']:,} x {s['numerical'] + s['categorical']}",
                _num(lo["compute_s"]),
                _num(ev["compute_s"] if ev else None),
                _num(s["speedup"], "x"),
                _num(lo["peak_mb"]),
                _num(ev["peak_mb"] if ev else None),
                _num(s["memory_fraction"]),
                f"{len(lo['drifted'])}/{len(ev['drifted']) if ev else '-'}/{len(s['expected'])}",
                same,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def notes(f: Figures) -> list[str]:
    goals = f["goals_met"]

    def verdict(key: str) -> str:
        met = goals[key]
        return "-" if met is None else ("met" if met else "NOT met")

    out = [
        f"at 1,000,000 rows: speedup {_num(f['speedup_1m'], 'x')} (goal >= {SPEED_GOAL:.0f}x: "
        f"{verdict('speed')}), memory fraction {_num(f['memory_fraction_1m'])} (goal <= 1/3: "
        f"{verdict('memory')}); same drifted columns in every set: {verdict('same_columns')}",
        "time: the drift computation on the loaded frames (loopml: detect_drift; Evidently: "
        "Dataset.from_pandas + Report.run); MiB: peak RSS from the end of the load to the end "
        "of the computation, the loaded frames included",
    ]
    for name, s in f["sets"].items():
        lo, ev = s["loopml"], s["evidently"]

        def both(key: str, unit: str, lo: Figures = lo, ev: Figures | None = ev) -> str:
            return f"{_num(lo[key])}{unit}" + (f" (Evidently {_num(ev[key])}{unit})" if ev else "")

        line = (
            f"{name}: loopml apart: fit {_num(lo['fit_s'])} s, score {_num(lo['score_s'])} s; "
            f"load {both('load_s', ' s')}; RSS after load {both('rss_after_load_mb', ' MiB')}; "
            f"peak above it {both('above_load_mb', ' MiB')}; whole-process peak, load included "
            f"{both('process_peak_mb', ' MiB')}"
        )
        if s["memory_fraction_process"] is not None:
            line += f", fraction {_num(s['memory_fraction_process'])}"
        if s["max_statistic_diff"] is not None:
            line += (
                f"; largest |statistic difference| {s['max_statistic_diff']:.2g} "
                f"({s['max_statistic_diff_column']})"
            )
        out.append(line)
    if f["quick"]:
        out.append("--quick: small sizes for a smoke run; the goals are set for 1,000,000 rows")
    return out


# -- entry point -------------------------------------------------------------------------------
def _rows_list(text: str) -> tuple[int, ...]:
    try:
        rows = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes takes row counts like 100000,1000000, not {text!r}"
        ) from None
    if not rows or any(r < 2 for r in rows):
        raise argparse.ArgumentTypeError(f"--sizes needs row counts of at least 2, not {text!r}")
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark loopml's drift detection against Evidently.")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--skip-evidently", action="store_true", help="measure loopml only")
    p.add_argument(
        "--sizes",
        type=_rows_list,
        metavar="ROWS,ROWS",
        help="rows of the numerical sets (default: 100000,1000000; --quick: 10000,50000)",
    )
    p.add_argument(
        "--mixed-rows",
        type=int,
        metavar="ROWS",
        help="rows of the mixed set, 0 for none (default: 200000; --quick: 20000)",
    )
    p.add_argument("--repeats", type=int, metavar="N", help="loopml runs per set (default: 3)")
    p.add_argument(
        "--evidently-repeats", type=int, metavar="N", help="Evidently runs per set (default: 1)"
    )
    p.add_argument(
        "--evidently-venv",
        type=Path,
        default=DEFAULT_EVIDENTLY_VENV,
        help="virtualenv for Evidently, made on first use (default: .bench/evidently-venv)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where the generated Parquet files are kept (default: .bench/drift-data)",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def sizes_of(args: argparse.Namespace) -> Sizes:
    base = QUICK if args.quick else FULL
    return Sizes(
        args.sizes or base.numerical,
        base.mixed if args.mixed_rows is None else args.mixed_rows,
        args.repeats or base.loopml_repeats,
        args.evidently_repeats or base.evidently_repeats,
    )


def run(args: argparse.Namespace) -> Figures:
    import numpy as np
    import pandas as pd
    import pyarrow

    import loopml

    sizes = sizes_of(args)
    evidently_python = None if args.skip_evidently else ensure_evidently_venv(args.evidently_venv)
    sets = [numerical_set(rows) for rows in sizes.numerical]
    if sizes.mixed:
        sets.append(mixed_set(sizes.mixed))
    data_dir = args.data_dir.absolute()
    for ds in sets:
        ensure_data(ds, data_dir)
    results: dict[str, Figures] = {}
    scratch = Path(tempfile.mkdtemp(prefix="loopml-bench-drift-"))
    try:
        for ds in sets:
            lo = measure_tool(sys.executable, "loopml", ds, data_dir, sizes.loopml_repeats, scratch)
            ev = None
            if evidently_python is not None:
                ev = measure_tool(
                    evidently_python, "evidently", ds, data_dir, sizes.evidently_repeats, scratch
                )
            results[ds.name] = compare(ds, lo, ev)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    headline = results.get(numerical_set(HEADLINE_ROWS).name)
    compared = [s["same_columns"] for s in results.values() if s["same_columns"] is not None]
    figures: Figures = {
        "speedup_1m": headline["speedup"] if headline else None,
        "memory_fraction_1m": headline["memory_fraction"] if headline else None,
        "memory_fraction_process_1m": headline["memory_fraction_process"] if headline else None,
        "same_columns": all(compared) if compared else None,
        "same_dataset_drift": (
            all(s["same_dataset_drift"] for s in results.values()) if compared else None
        ),
        "loopml_matches_expected": all(s["loopml_matches_expected"] for s in results.values()),
    }
    for name, s in results.items():
        figures[f"speedup_{name}"] = s["speedup"]
        figures[f"memory_fraction_{name}"] = s["memory_fraction"]
        figures[f"memory_fraction_process_{name}"] = s["memory_fraction_process"]
        figures[f"loopml_s_{name}"] = s["loopml"]["compute_s"]
        figures[f"loopml_peak_mb_{name}"] = s["loopml"]["peak_mb"]
        figures[f"evidently_s_{name}"] = s["evidently"]["compute_s"] if s["evidently"] else None
        figures[f"evidently_peak_mb_{name}"] = s["evidently"]["peak_mb"] if s["evidently"] else None
    first_ev = next((s["evidently"] for s in results.values() if s["evidently"]), None)
    figures.update(
        sets=results,
        loopml_version=loopml.__version__,
        evidently_version=first_ev["version"] if first_ev else None,
        pandas_version=pd.__version__,
        evidently_pandas_version=first_ev["pandas_version"] if first_ev else None,
        numpy_version=np.__version__,
        pyarrow_version=pyarrow.__version__,
        python_version=platform.python_version(),
        cpus=os.cpu_count(),
        date=dt.date.today().isoformat(),
        quick=args.quick,
        sizes=dataclasses.asdict(sizes),
        seed=SEED,
    )
    figures["goals_met"] = {
        "speed": None if figures["speedup_1m"] is None else figures["speedup_1m"] >= SPEED_GOAL,
        "memory": (
            None
            if figures["memory_fraction_1m"] is None
            else figures["memory_fraction_1m"] <= MEMORY_GOAL
        ),
        "same_columns": figures["same_columns"],
    }
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_worker(args.worker)
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
    for line in notes(figures):
        print(f"  {line}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
