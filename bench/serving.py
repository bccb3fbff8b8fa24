"""Benchmark: the model server, loopml against ``mlflow models serve`` and BentoML.

    python bench/serving.py                  # full: about 5 minutes on 2 cores
    python bench/serving.py --quick          # short points: a smoke run
    python bench/serving.py --skip-mlflow --skip-bentoml   # loopml only; the ratios are null

Two scikit-learn models on 20 features (``make_classification``, fixed seeds) are fitted once
in this interpreter: a logistic regression and a 100-tree random forest. Each server gets the
same fitted estimator: loopml a model folder from ``loopml.models.save_model(...,
input_example=...)`` (so it carries its ONNX twin), MLflow a folder written by
``mlflow.sklearn.save_model`` in its virtualenv from the joblib pickle, BentoML a
``@bentoml.service`` class that loads that pickle, with adaptive batching on.

Every server runs with the same worker count (``--workers``, default 2) and one thread for
OpenMP and the BLAS libraries. A load generator in a separate process (this file run with
``--loadgen``: asyncio over raw streams, uvloop when installed, HTTP/1.1 keep-alive) sends
single-row requests over N connections back to back, at N = 1, 16 and 64: after a warm-up,
every response that completes inside the measured window counts; any status but 200 is an
error. For each (server, model, concurrency): req/s (200 responses per second), p50, p99 and
errors. loopml is also measured with its prediction log off (``--no-log-predictions``, when
the CLI has it) at concurrency 64 for both models, giving ``logging_overhead``. The load
generator's own ceiling is measured once, against loopml's ``GET /ping``.

MLflow and BentoML run in virtualenvs of their own (``<repo>/.bench/mlflow-venv`` and
``<repo>/.bench/bentoml-venv``, made on first use), each given our scikit-learn version and
uvicorn's uvloop and httptools, which loopml's server runs on too (without uvloop, uvicorn's
``--workers N`` leaves Nagle's algorithm on and MLflow pays about 40 ms per keep-alive
request). Progress goes to stderr; stdout has a table and, as its last line, one JSON object
with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import http.client
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:  # when imported rather than run as a script
    sys.path.insert(0, str(BENCH_DIR))

from tracking import (  # noqa: E402  (the bench folder must be on sys.path first)
    DEFAULT_MLFLOW_VENV,
    REPO,
    BenchError,
    child_env,
    ensure_mlflow_venv,
    mlflow_version,
    say,
    venv_python,
    warn,
)

Figures = dict[str, Any]

DEFAULT_BENTOML_VENV = REPO / ".bench" / "bentoml-venv"
MODELS = ("lr", "rf")
MODEL_LABELS = {"lr": "logistic regression", "rf": "random forest, 100 trees"}
CONCURRENCY = (1, 16, 64)
CEILING_CONCURRENCY = (1, 64)
SEED = 0
N_FEATURES = 20
N_TRAIN = 5_000
N_REQUEST_ROWS = 64  # distinct rows, cycled through by the load generator
N_CHECKED_ROWS = 8  # rows whose predictions are checked against ours once per server
BENTOML_MAX_BATCH_SIZE = 64
BENTOML_MAX_LATENCY_MS = 1_000  # a cap, not a target: lower values make BentoML shed with 503
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0
HANG_TIMEOUT_S = 30.0  # a request still unanswered this long after the window counts as an error
GOALS = {
    "rf_c64_vs_mlflow": 20.0,
    "rf_c64_vs_bentoml": 2.0,
    "lr_c64_vs_mlflow": 3.0,
}
RF_P99_GOAL_MS = 50.0
LOGGING_GOAL = 0.10
# The same for every server: one thread for OpenMP and the BLAS libraries.
THREAD_VARS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}


@dataclasses.dataclass(frozen=True)
class Timing:
    warmup_s: float
    duration_s: float


FULL = Timing(2.0, 8.0)
LOGGING_ROUNDS = 3  # alternating on/off rounds for logging_overhead
QUICK = Timing(0.5, 2.0)


# -- the models ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Models:
    """Where each server finds the two fitted models, and the rows the requests carry."""

    root: Path
    columns: list[str]
    rows: list[list[float]]
    expected: dict[str, list[int]]  # our predictions for the first N_CHECKED_ROWS rows

    def pickle(self, model: str) -> Path:
        return self.root / f"{model}.joblib"

    def loopml_folder(self, model: str) -> Path:
        return self.root / f"loopml-{model}"

    def mlflow_folder(self, model: str) -> Path:
        return self.root / f"mlflow-{model}"


def fit_models(root: Path) -> Models:
    """Fit both models on the same data, once; write the pickle and loopml's model folder."""
    import joblib
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from loopml.models import save_model

    X, y = make_classification(
        n_samples=N_TRAIN + N_REQUEST_ROWS,
        n_features=N_FEATURES,
        n_informative=10,
        random_state=SEED,
    )
    columns = [f"f{i}" for i in range(N_FEATURES)]
    frame = pd.DataFrame(X, columns=columns)
    train, held_out = frame.iloc[:N_TRAIN], frame.iloc[N_TRAIN:]
    estimators: dict[str, Any] = {
        "lr": LogisticRegression(max_iter=1_000),
        "rf": RandomForestClassifier(n_estimators=100, random_state=SEED),
    }
    models = Models(root, columns, held_out.to_numpy().tolist(), {})
    for name, estimator in estimators.items():
        estimator.fit(train, y[:N_TRAIN])
        joblib.dump(estimator, models.pickle(name))
        # the same five rows as MLflow's input example (see MLFLOW_SAVE)
        save_model(estimator, models.loopml_folder(name), input_example=held_out.iloc[:5])
        checked = held_out.iloc[:N_CHECKED_ROWS]
        models.expected[name] = [int(v) for v in estimator.predict(checked)]
    return models


# The MLflow side: run by the MLflow virtualenv's interpreter, from the same pickle.
MLFLOW_SAVE = r"""
import inspect, json, sys
import joblib, numpy as np, pandas as pd
import mlflow.sklearn

cfg = json.loads(sys.argv[1])
kwargs = {}
if "skops_trusted_types" in inspect.signature(mlflow.sklearn.save_model).parameters:
    # MLflow 3 saves with skops and refuses tree models unless their node type is trusted
    kwargs["skops_trusted_types"] = ["sklearn.tree._tree.Tree"]
for name, (pickle, folder) in cfg["models"].items():
    example = pd.DataFrame(np.asarray(cfg["rows"][:5], dtype=float), columns=cfg["columns"])
    mlflow.sklearn.save_model(joblib.load(pickle), folder, input_example=example, **kwargs)
print(json.dumps({"saved": sorted(cfg["models"])}))
"""

BENTOML_SERVICE = """\
import bentoml
import joblib
import numpy as np


@bentoml.service(workers={workers}, logging={{"access": {{"enabled": False}}}})
class Classifier:
    def __init__(self) -> None:
        self.model = joblib.load({pickle!r})

    @bentoml.api(batchable=True, max_batch_size={max_batch_size}, max_latency_ms={max_latency_ms})
    def predict(self, input: np.ndarray) -> np.ndarray:
        return self.model.predict(input)
"""


# -- request bodies -----------------------------------------------------------------------------
def invocation_body(columns: list[str], row: list[float]) -> bytes:
    """One row in MLflow's ``dataframe_split`` format (loopml speaks the same)."""
    return json.dumps({"dataframe_split": {"columns": columns, "data": [row]}}).encode()


def bentoml_body(columns: list[str], row: list[float]) -> bytes:
    """One row as the ``predict(input: np.ndarray)`` API of the BentoML service expects."""
    return json.dumps({"input": [row]}).encode()


def post_request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get_request(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


# -- the load generator: this file run with --loadgen in a separate process ---------------------
@dataclasses.dataclass
class _Tally:
    window: tuple[float, float]
    latencies: list[float] = dataclasses.field(default_factory=list)
    statuses: dict[int, int] = dataclasses.field(default_factory=dict)
    connection_errors: int = 0
    error_sample: str = ""
    stop: bool = False

    def in_window(self, t: float) -> bool:
        return self.window[0] <= t <= self.window[1]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; its status and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 17)
        await reader.readexactly(int(lower[at + 17 : end]))
    elif b"\r\ntransfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif status not in (204, 304):
        await reader.read()  # no length given: the body runs until the server closes
        return status, False
    return status, b"\r\nconnection: close" not in lower


async def _connection(host: str, port: int, requests: list[bytes], first: int, t: _Tally) -> None:
    clock = time.perf_counter
    n = len(requests)
    i = first
    writer: asyncio.StreamWriter | None = None
    while not t.stop:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            start = clock()
            writer.write(requests[i % n])
            status, keep_open = await _read_response(reader)
            end = clock()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            if t.in_window(clock()):
                t.connection_errors += 1
                t.error_sample = t.error_sample or f"{type(e).__name__}: {e}"
            if writer is not None:
                writer.close()
                writer = None
            await asyncio.sleep(0.01)
            continue
        i += 1
        if t.in_window(end):
            t.latencies.append(end - start)
            t.statuses[status] = t.statuses.get(status, 0) + 1
        if not keep_open:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _load(cfg: Figures) -> Figures:
    requests = [bytes.fromhex(r) for r in cfg["requests"]]
    start = time.perf_counter() + cfg["warmup_s"]
    tally = _Tally(window=(start, start + cfg["duration_s"]))
    n = cfg["concurrency"]
    tasks = [
        asyncio.create_task(_connection(cfg["host"], cfg["port"], requests, k, tally))
        for k in range(n)
    ]
    await asyncio.sleep(tally.window[1] - time.perf_counter())
    tally.stop = True
    _, hung = await asyncio.wait(tasks, timeout=HANG_TIMEOUT_S)
    for task in hung:
        task.cancel()
    return _summary(tally, cfg["duration_s"], hung=len(hung))


def _summary(t: _Tally, duration_s: float, *, hung: int) -> Figures:
    lat = sorted(t.latencies)
    ok = t.statuses.get(200, 0)
    errors = len(lat) - ok + t.connection_errors + hung
    return {
        "requests": len(lat),
        "ok": ok,
        "errors": errors,
        "connection_errors": t.connection_errors,
        "hung": hung,
        "statuses": {str(k): v for k, v in sorted(t.statuses.items())},
        "error_sample": t.error_sample or None,
        "rps": ok / duration_s,
        "p50_ms": _quantile(lat, 0.50) * 1000 if lat else None,
        "p90_ms": _quantile(lat, 0.90) * 1000 if lat else None,
        "p99_ms": _quantile(lat, 0.99) * 1000 if lat else None,
        "max_ms": lat[-1] * 1000 if lat else None,
        "mean_ms": sum(lat) / len(lat) * 1000 if lat else None,
    }


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an ordered, non-empty sequence."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def run_loadgen(cfg_path: str) -> None:
    cfg = json.loads(Path(cfg_path).read_text())
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(_load(cfg))
        result["event_loop"] = "asyncio"
    else:
        result = uvloop.run(_load(cfg))
        result["event_loop"] = "uvloop"
    print(json.dumps(result))


def load(
    scratch: Path,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    timing: Timing,
) -> Figures:
    """Run the load generator in a fresh process against 127.0.0.1:``port``."""
    cfg = {
        "host": "127.0.0.1",
        "port": port,
        "requests": [r.hex() for r in requests],
        "concurrency": concurrency,
        "warmup_s": timing.warmup_s,
        "duration_s": timing.duration_s,
    }
    path = scratch / "loadgen.json"
    path.write_text(json.dumps(cfg))
    limit = timing.warmup_s + timing.duration_s + HANG_TIMEOUT_S + 60
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--loadgen", str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
        timeout=limit,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise BenchError(f"the load generator exited {proc.returncode}: {lines[-3:]}")
    figures: Figures = json.loads(lines[-1])
    return figures


# -- servers ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Wire:
    """What a server's HTTP API looks like to the benchmark."""

    ready_path: str
    predict_path: str
    body: Callable[[list[str], list[float]], bytes]  # one row -> request body
    predictions: Callable[[Any], list[int]]  # response JSON -> predicted classes


INVOCATIONS = Wire(
    "/ping", "/invocations", invocation_body, lambda r: [int(v) for v in r["predictions"]]
)
BENTOML_WIRE = Wire("/readyz", "/predict", bentoml_body, lambda r: [int(v) for v in r])


@dataclasses.dataclass(frozen=True)
class Server:
    """How to start one server and talk to it."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    wire: Wire


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _http(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _process_tree(root: int) -> list[tuple[int, str]]:
    """(pid, start time) of every descendant of ``root`` (Linux; empty elsewhere). BentoML
    starts its workers in sessions of their own, out of reach of the group's signal."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def _alive(pid: int, started: str) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == started and fields[0] != "Z"


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def running(server: Server, log_path: Path) -> Iterator[None]:
    """Start ``server``, wait until it is ready, and stop it (and every process it started)
    on the way out, whatever happens in between."""
    say(f"starting {server.name} on port {server.port} ...")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            server.cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server.env,
            cwd=server.cwd,
            start_new_session=True,
        )
        try:
            _wait_ready(server, proc, log_path)
            yield
        finally:
            _stop(server, proc)


def _wait_ready(server: Server, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < READY_TIMEOUT_S:
        if proc.poll() is not None:
            raise BenchError(
                f"{server.name} exited {proc.returncode} before it was ready:\n{_tail(log_path)}"
            )
        with contextlib.suppress(OSError, http.client.HTTPException):
            if _http(server.port, "GET", server.wire.ready_path)[0] == 200:
                say(f"{server.name} ready after {time.perf_counter() - t0:.1f} s")
                return
        time.sleep(0.2)
    raise BenchError(
        f"{server.name} was not ready after {READY_TIMEOUT_S:.0f} s:\n{_tail(log_path)}"
    )


def _stop(server: Server, proc: subprocess.Popen[bytes]) -> None:
    tree = _process_tree(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        warn(f"{server.name} did not stop within {STOP_TIMEOUT_S:.0f} s; killing it")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while any(_alive(*p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, started in tree:
        if _alive(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    deadline = time.monotonic() + 10
    while _listening(server.port) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _listening(server.port):
        warn(f"port {server.port} still accepts connections after stopping {server.name}")


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def server_env(**extra: str) -> dict[str, str]:
    """tracking.py's child environment, one OpenMP/BLAS thread, no telemetry."""
    return child_env(**THREAD_VARS, BENTOML_DO_NOT_TRACK="true", **extra)


def loopml_server(
    model: str, models: Models, scratch: Path, workers: int, logging_flag: str | None
) -> Server:
    port = free_port()
    cmd = [str(loopml_cli()), "serve", str(models.loopml_folder(model))]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if logging_flag:
        cmd.append(logging_flag)
    env = server_env(LOOPML_WORKSPACE=str(scratch / "ws"))
    name = "loopml" + (f" ({logging_flag})" if logging_flag else "")
    return Server(name, cmd, env, scratch, port, INVOCATIONS)


def mlflow_server(model: str, models: Models, scratch: Path, workers: int, python: Path) -> Server:
    port = free_port()
    mlflow_cli = python.parent / "mlflow"
    cmd = [str(mlflow_cli), "models", "serve", "-m", str(models.mlflow_folder(model))]
    cmd += ["--env-manager", "local", "--workers", str(workers)]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    # MLflow execs `uvicorn` found on PATH: its own virtualenv's
    path = os.pathsep.join([str(python.parent), os.environ.get("PATH", "")])
    env = server_env(PATH=path)
    return Server("mlflow", cmd, env, scratch, port, INVOCATIONS)


def bentoml_server(model: str, models: Models, scratch: Path, workers: int, python: Path) -> Server:
    port = free_port()
    (scratch / "bench_service.py").write_text(
        BENTOML_SERVICE.format(
            workers=workers,
            pickle=str(models.pickle(model)),
            max_batch_size=BENTOML_MAX_BATCH_SIZE,
            max_latency_ms=BENTOML_MAX_LATENCY_MS,
        )
    )
    cmd = [str(python.parent / "bentoml"), "serve", "bench_service:Classifier"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    env = server_env(BENTOML_HOME=str(scratch / "bentoml-home"))
    return Server("bentoml", cmd, env, scratch, port, BENTOML_WIRE)


def loopml_cli() -> Path:
    """The ``loopml`` command of the interpreter running this script (the project's venv)."""
    beside = Path(sys.executable).parent / "loopml"
    return beside if beside.exists() else REPO / ".venv" / "bin" / "loopml"


def logging_flags() -> tuple[str, str] | None:
    """(on, off) flags of ``loopml serve`` for the prediction log, or None if it has none."""
    proc = subprocess.run(
        [str(loopml_cli()), "serve", "--help"],
        capture_output=True,
        text=True,
        env=child_env(COLUMNS="200", TERM="dumb", NO_COLOR="1"),
    )
    if "--no-log-predictions" in proc.stdout:
        return "--log-predictions", "--no-log-predictions"
    return None


def check_predictions(server: Server, models: Models, model: str) -> bool:
    """Send the first rows one at a time; warn unless the server predicts what we predict."""
    got = []
    for row in models.rows[:N_CHECKED_ROWS]:
        status, body = _http(
            server.port, "POST", server.wire.predict_path, server.wire.body(models.columns, row)
        )
        if status != 200:
            raise BenchError(f"{server.name} answered {status} to a valid row: {body[:300]!r}")
        got += server.wire.predictions(json.loads(body))
    if got != models.expected[model]:
        warn(f"{server.name} predicted {got} for {model}; scikit-learn {models.expected[model]}")
        return False
    return True


# -- the measurements ---------------------------------------------------------------------------
@dataclasses.dataclass
class Bench:
    root: Path
    models: Models
    timing: Timing
    workers: int
    mlflow_python: Path | None
    bentoml_python: Path | None
    logging: tuple[str, str] | None
    points: list[Figures] = dataclasses.field(default_factory=list)
    logging_points: list[Figures] = dataclasses.field(default_factory=list)
    ceiling: list[Figures] = dataclasses.field(default_factory=list)
    predictions_match: dict[str, bool] = dataclasses.field(default_factory=dict)

    def scratch(self, label: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.root))

    def server(self, kind: str, model: str, *, logging: str | None = None) -> Server:
        scratch = self.scratch(f"{kind}-{model}")
        if kind == "loopml":
            return loopml_server(model, self.models, scratch, self.workers, logging)
        if kind == "mlflow":
            assert self.mlflow_python is not None
            return mlflow_server(model, self.models, scratch, self.workers, self.mlflow_python)
        assert self.bentoml_python is not None
        return bentoml_server(model, self.models, scratch, self.workers, self.bentoml_python)

    def measure(
        self,
        kind: str,
        model: str,
        concurrencies: Sequence[int],
        *,
        logging: str | None = None,
        with_ceiling: bool = False,
    ) -> None:
        server = self.server(kind, model, logging=logging)
        with running(server, server.cwd / "server.log"):
            key = f"{server.name} {model}"
            self.predictions_match[key] = check_predictions(server, self.models, model)
            if with_ceiling:
                self._ceiling(server)
            requests = [
                post_request(
                    server.port, server.wire.predict_path, server.wire.body(self.models.columns, r)
                )
                for r in self.models.rows
            ]
            for c in concurrencies:
                say(f"{server.name}, {MODEL_LABELS[model]}, concurrency {c} ...")
                got = load(server.cwd, server.port, requests, concurrency=c, timing=self.timing)
                point = {
                    "server": kind,
                    "model": model,
                    "concurrency": c,
                    "logging": _logging_state(kind, logging, self.logging),
                    **got,
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                }
                self.points.append(point)
                say(f"  {_point_text(point)}")

    def measure_logging(self, model: str) -> None:
        """Prediction logging on against off at concurrency 64: both servers up at once (the
        idle one costs nothing), loaded in turn for LOGGING_ROUNDS rounds in alternating
        order, so drifting machine load hits both alike; the medians give the overhead."""
        assert self.logging is not None
        on = self.server("loopml", model, logging=self.logging[0])
        off = self.server("loopml", model, logging=self.logging[1])
        with running(on, on.cwd / "server.log"), running(off, off.cwd / "server.log"):
            requests = {
                server.name: [
                    post_request(
                        server.port,
                        server.wire.predict_path,
                        server.wire.body(self.models.columns, r),
                    )
                    for r in self.models.rows
                ]
                for server in (on, off)
            }
            for round_ in range(LOGGING_ROUNDS):
                pair = ((on, "on"), (off, "off"))
                for server, state in pair if round_ % 2 == 0 else pair[::-1]:
                    say(f"{MODEL_LABELS[model]}, log {state}, round {round_ + 1}, c64 ...")
                    got = load(
                        server.cwd,
                        server.port,
                        requests[server.name],
                        concurrency=64,
                        timing=self.timing,
                    )
                    point = {
                        "server": "loopml",
                        "model": model,
                        "concurrency": 64,
                        "logging": f"{state} (round {round_ + 1})",
                        "state": state,
                        **got,
                        "load_avg_1m": round(os.getloadavg()[0], 2),
                    }
                    self.logging_points.append(point)
                    say(f"  {_point_text(point)}")

    def _ceiling(self, server: Server) -> None:
        request = [get_request(server.port, "/ping")]
        for c in CEILING_CONCURRENCY:
            say(f"load generator ceiling: GET /ping on {server.name}, concurrency {c} ...")
            got = load(server.cwd, server.port, request, concurrency=c, timing=self.timing)
            load1 = round(os.getloadavg()[0], 2)
            self.ceiling.append({"path": "/ping", "concurrency": c, **got, "load_avg_1m": load1})
            say(f"  {_point_text(got)}")


def _logging_state(kind: str, flag: str | None, flags: tuple[str, str] | None) -> str | None:
    """'on'/'off' for loopml when its CLI has the flag; None when there is no such setting."""
    if kind != "loopml" or flags is None:
        return None
    return "off" if flag == flags[1] else "on"


def _point_text(p: Figures) -> str:
    return (
        f"{p['rps']:,.0f} req/s, p50 {_ms(p['p50_ms'])}, p99 {_ms(p['p99_ms'])}, "
        f"{p['errors']} errors" + (f" ({p['error_sample']})" if p.get("error_sample") else "")
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g} ms"


def run_points(bench: Bench) -> None:
    peers = [
        p
        for p, python in (("mlflow", bench.mlflow_python), ("bentoml", bench.bentoml_python))
        if python
    ]
    for model in MODELS:
        bench.measure("loopml", model, CONCURRENCY, with_ceiling=not bench.ceiling)
        if bench.logging is not None:
            bench.measure_logging(model)
        for peer in peers:
            bench.measure(peer, model, CONCURRENCY)


# -- report -------------------------------------------------------------------------------------
def point(
    points: Sequence[Figures], server: str, model: str, c: int, logging: str | None
) -> Figures | None:
    for p in points:
        if (p["server"], p["model"], p["concurrency"]) == (server, model, c) and (
            server != "loopml" or p["logging"] == logging
        ):
            return p
    return None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def headline(
    points: Sequence[Figures],
    logging: tuple[str, str] | None,
    logging_points: Sequence[Figures] = (),
) -> Figures:
    """The ratios at concurrency 64 and the cost of the prediction log."""
    default = "on" if logging else None

    def rps(server: str, model: str, state: str | None = default) -> float | None:
        p = point(points, server, model, 64, state)
        return None if p is None else float(p["rps"])

    rf = point(points, "loopml", "rf", 64, default)
    out: Figures = {
        "rf_c64_vs_mlflow": _ratio(rps("loopml", "rf"), rps("mlflow", "rf")),
        "rf_c64_vs_bentoml": _ratio(rps("loopml", "rf"), rps("bentoml", "rf")),
        "rf_c64_p99_ms": None if rf is None else rf["p99_ms"],
        "lr_c64_vs_mlflow": _ratio(rps("loopml", "lr"), rps("mlflow", "lr")),
        "lr_c64_vs_bentoml": _ratio(rps("loopml", "lr"), rps("bentoml", "lr")),
        "logging_overhead": None,
    }
    if logging is not None:
        for model in MODELS:
            on_off = _ratio(
                _median_rps(logging_points, model, "on"), _median_rps(logging_points, model, "off")
            )
            out[f"logging_overhead_{model}"] = None if on_off is None else 1 - on_off
        both = [out[f"logging_overhead_{m}"] for m in MODELS]
        out["logging_overhead"] = None if None in both else max(both)  # the worse of the two
    return out


def _median_rps(points: Sequence[Figures], model: str, state: str) -> float | None:
    values = [float(p["rps"]) for p in points if (p["model"], p["state"]) == (model, state)]
    return statistics.median(values) if values else None


def goals_met(f: Figures) -> dict[str, bool | None]:
    met: dict[str, bool | None] = {
        key: None if f[key] is None else bool(f[key] >= goal) for key, goal in GOALS.items()
    }
    p99 = f["rf_c64_p99_ms"]
    met["rf_c64_p99_ms"] = None if p99 is None else bool(p99 < RF_P99_GOAL_MS)
    overhead = f["logging_overhead"]
    met["logging_overhead"] = None if overhead is None else bool(overhead < LOGGING_GOAL)
    return met


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


def table(f: Figures) -> str:
    head = ("model", "server", "conc.", "req/s", "p50 ms", "p99 ms", "errors", "load", "ours/this")
    rows: list[tuple[str, ...]] = [head]
    default = "on" if f["logging_supported"] else None
    for p in [*f["points"], *f.get("logging_points", []), *f["loadgen_ceiling"]]:
        if "model" in p:
            model, server = (
                p["model"],
                p["server"] + (f", log {p['logging']}" if p["logging"] else ""),
            )
            ours = point(f["points"], "loopml", model, p["concurrency"], default)
            ratio = ""
            if p["server"] != "loopml" and ours is not None:
                ratio = _num(_ratio(ours["rps"], p["rps"]), "x")
        else:  # the load generator's ceiling
            model, server, ratio = "-", "loopml GET /ping", ""
        figures = (_num(p[k]) for k in ("rps", "p50_ms", "p99_ms"))
        load1 = _num(p.get("load_avg_1m"))
        rows.append(
            (model, server, str(p["concurrency"]), *figures, str(p["errors"]), load1, ratio)
        )
    return _grid(rows)


def notes(f: Figures) -> list[str]:
    met = f["goals_met"]

    def verdict(key: str) -> str:
        return "-" if met[key] is None else ("yes" if met[key] else "NO")

    out = [
        f"rf c64: loopml / MLflow {_num(f['rf_c64_vs_mlflow'], 'x')} (goal >= 20x: "
        f"{verdict('rf_c64_vs_mlflow')}), loopml / BentoML {_num(f['rf_c64_vs_bentoml'], 'x')} "
        f"(goal >= 2x: {verdict('rf_c64_vs_bentoml')}), p99 {_ms(f['rf_c64_p99_ms'])} "
        f"(goal < 50 ms: {verdict('rf_c64_p99_ms')})",
        f"lr c64: loopml / MLflow {_num(f['lr_c64_vs_mlflow'], 'x')} (goal >= 3x: "
        f"{verdict('lr_c64_vs_mlflow')})",
        f"{f['cpus']} cores; worker processes per server: {f['workers']}; "
        f"{f['timing']['warmup_s']:g} s warm-up + {f['timing']['duration_s']:g} s measured a point",
    ]
    if f["logging_supported"]:
        out.append(
            f"prediction log: throughput lost with it on, c64: rf "
            f"{_num(f['logging_overhead_rf'])}, lr {_num(f['logging_overhead_lr'])} "
            f"(goal < 0.10: {verdict('logging_overhead')})"
        )
    else:
        out.append("loopml serve has no --no-log-predictions flag: logging_overhead is null")
    bad = [k for k, ok in f["predictions_match"].items() if not ok]
    if bad:
        out.append(f"WARNING: predictions differ from scikit-learn's on: {', '.join(bad)}")
    if f["quick"]:
        out.append("--quick: short points for a smoke run; the goals are set for the full run")
    return out


# -- virtualenvs --------------------------------------------------------------------------------
def ensure_bentoml_venv(venv: Path) -> Path:
    """The BentoML virtualenv's interpreter; the venv is made and given bentoml if needed."""
    venv = venv.absolute()
    python = venv_python(venv)
    if _probe_version(python, "bentoml"):
        return python
    if not python.exists():
        say(f"creating a virtualenv for BentoML in {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    say("installing bentoml into it (a few minutes) ...")
    subprocess.run([*_pip(python), "--upgrade", "pip"], check=True, stdout=sys.stderr)
    subprocess.run([*_pip(python), "bentoml"], check=True, stdout=sys.stderr)
    if not _probe_version(python, "bentoml"):
        raise BenchError(f"{python} still cannot import bentoml")
    return python


def ensure_packages(python: Path, side: str, wanted: dict[str, str | None]) -> None:
    """Install into a peer's virtualenv what ``wanted`` (package: exact version or None for
    any) says it lacks."""
    missing = []
    for package, version in wanted.items():
        have = _probe_version(python, package)
        if have is None or (version is not None and have != version):
            missing.append(package if version is None else f"{package}=={version}")
    if missing:
        say(f"installing {', '.join(missing)} into the {side} virtualenv ...")
        subprocess.run([*_pip(python), *missing], check=True, stdout=sys.stderr)


def peer_packages(sklearn_version: str) -> dict[str, str | None]:
    """What each peer's virtualenv needs besides the peer: our scikit-learn (the pickle loads
    as it is) and uvicorn's uvloop and httptools, which loopml's server runs on too."""
    return {"scikit-learn": sklearn_version, "joblib": None, "uvloop": None, "httptools": None}


def _pip(python: Path) -> list[str]:
    return [str(python), "-m", "pip", "install", "--disable-pip-version-check"]


def _probe_version(python: Path, package: str) -> str | None:
    if not python.exists():
        return None
    code = f"from importlib.metadata import version; print(version({package!r}))"
    probe = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return probe.stdout.strip() if probe.returncode == 0 else None


def save_mlflow_models(python: Path, models: Models) -> None:
    script = models.root / "mlflow_save.py"
    script.write_text(MLFLOW_SAVE)
    cfg = {
        "models": {m: [str(models.pickle(m)), str(models.mlflow_folder(m))] for m in MODELS},
        "columns": models.columns,
        "rows": models.rows,
    }
    proc = subprocess.run(
        [str(python), str(script), json.dumps(cfg)],
        capture_output=True,
        text=True,
        env=server_env(),
        cwd=models.root,
    )
    if proc.returncode != 0:
        raise BenchError(f"mlflow.sklearn.save_model failed:\n{proc.stderr[-2000:]}")


# -- entry point --------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark the model server: loopml against mlflow models serve and BentoML."
    )
    p.add_argument("--quick", action="store_true", help="short points, for a smoke run")
    p.add_argument("--skip-mlflow", action="store_true", help="do not measure MLflow")
    p.add_argument("--skip-bentoml", action="store_true", help="do not measure BentoML")
    p.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help=f"seconds measured per point (default {FULL.duration_s:g}, {QUICK.duration_s:g} "
        "with --quick), after a warm-up of a quarter of that",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="worker processes of every server (default 2)"
    )
    p.add_argument(
        "--mlflow-venv",
        type=Path,
        default=DEFAULT_MLFLOW_VENV,
        help="virtualenv for MLflow, made on first use (default: .bench/mlflow-venv)",
    )
    p.add_argument(
        "--bentoml-venv",
        type=Path,
        default=DEFAULT_BENTOML_VENV,
        help="virtualenv for BentoML, made on first use (default: .bench/bentoml-venv)",
    )
    p.add_argument("--loadgen", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error(f"--workers must be at least 1, got {args.workers}")
    if args.duration is not None and args.duration <= 0:
        p.error(f"--duration must be a positive number of seconds, got {args.duration}")
    return args


def timing_of(args: argparse.Namespace) -> Timing:
    base = QUICK if args.quick else FULL
    if args.duration is None:
        return base
    return Timing(warmup_s=min(base.warmup_s, args.duration / 4), duration_s=args.duration)


def run(args: argparse.Namespace) -> Figures:
    from importlib.metadata import version

    import loopml

    sklearn_version = version("scikit-learn")
    mlflow_python = None
    if not args.skip_mlflow:
        mlflow_python = ensure_mlflow_venv(args.mlflow_venv)
        ensure_packages(mlflow_python, "MLflow", peer_packages(sklearn_version))
    bentoml_python = None
    if not args.skip_bentoml:
        bentoml_python = ensure_bentoml_venv(args.bentoml_venv)
        ensure_packages(bentoml_python, "BentoML", peer_packages(sklearn_version))
    flags = logging_flags()
    root = Path(tempfile.mkdtemp(prefix="loopml-bench-serving-"))
    try:
        say("fitting the models and saving them for loopml ...")
        models = fit_models(root)
        if mlflow_python is not None:
            say("saving the same estimators with mlflow.sklearn.save_model ...")
            save_mlflow_models(mlflow_python, models)
        bench = Bench(
            root, models, timing_of(args), args.workers, mlflow_python, bentoml_python, flags
        )
        run_points(bench)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures: Figures = headline(bench.points, flags, bench.logging_points)
    figures.update(
        points=bench.points,
        logging_points=bench.logging_points,
        loadgen_ceiling=bench.ceiling,
        predictions_match=bench.predictions_match,
        logging_supported=flags is not None,
        loopml_version=loopml.__version__,
        mlflow_version=mlflow_version(mlflow_python) if mlflow_python else None,
        bentoml_version=_probe_version(bentoml_python, "bentoml") if bentoml_python else None,
        sklearn_version=sklearn_version,
        python_version=platform.python_version(),
        cpus=os.cpu_count(),
        workers=args.workers,
        date=dt.date.today().isoformat(),
        quick=args.quick,
        timing=dataclasses.asdict(bench.timing),
        concurrency=list(CONCURRENCY),
        data={"n_train": N_TRAIN, "n_features": N_FEATURES, "request_rows": N_REQUEST_ROWS},
        bentoml_batching={
            "max_batch_size": BENTOML_MAX_BATCH_SIZE,
            "max_latency_ms": BENTOML_MAX_LATENCY_MS,
        },
        threads=THREAD_VARS,
    )
    figures["goals_met"] = goals_met(figures)
    return figures


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the `finally` that stops the servers


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.perf_counter()
    try:
        if args.loadgen:
            run_loadgen(args.loadgen)
            return 0
        figures = run(args)
    except (BenchError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"[bench] failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the servers are stopped by then
        print("[bench] interrupted", file=sys.stderr)
        return 130
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
