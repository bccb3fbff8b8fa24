"""The quickstart from start to end: train, register, promote, serve, shift, detect, retrain,
compare, promote, hot-swap, and measure.

Everything is the real thing on the workspace the client points at: a loopml pipeline trains
the first model, the registry promotes it, ``loopml serve`` answers in another process, the
:class:`~loopml.loop.LoopController` watches the prediction log in a background thread, and
the figures come from the server's own answers and from held-out rows nobody trained on.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.core.entities import now_ms
from loopml.quickstart.driver import Event, LoopThread, Window
from loopml.quickstart.result import QuickstartResult, Served
from loopml.quickstart.scenario import SORT_BY, TARGET, Scenario, bundled_table, load_scenario
from loopml.quickstart.server import ServerProcess, start_server
from loopml.quickstart.story import Story, traffic_bar
from loopml.quickstart.traffic import Schedule, Traffic, TrafficStats
from loopml.quickstart.training import DATASET, MODEL, PIPELINE, training

if TYPE_CHECKING:
    from loopml.loop import LoopPolicy
    from loopml.pipelines.definition import PipelineResult
    from loopml.tracking.client import Client

__all__ = ["ALIAS", "DRIFT_THRESHOLD", "quickstart_policy", "run_flow"]

ALIAS = "champion"
METRIC = "accuracy"
DRIFT_THRESHOLD = 0.3  # share of the columns that drifted
DRIFT_WINDOWS = 3  # ... in that many windows in a row
WINDOW_ROWS = 100
DATA_ROWS = 500
HOLDOUT = 0.3
LIVE_CHECK_ROWS = 150
AFTER_NO_PROMOTION = 100  # requests sent after an iteration that promoted nothing
LIVE_CHECK_WAIT_S = 8.0  # how long to wait, after the traffic, for the loop's live check
_DAY_MS = 86_400_000


def quickstart_policy(client: Client) -> LoopPolicy:
    """The loop policy of the quickstart: retrain on drift, on the newest labelled rows, and
    promote if the challenger does at least as well on the fresh holdout. The limits allow one
    iteration more than this model already had today: one retrain per quickstart."""
    from loopml.loop import DataSpec, Limits, LoopPolicy, RollbackSpec, TriggerRule

    today = client.store.list_loop_iterations(MODEL, since_ms=now_ms() - _DAY_MS)
    return LoopPolicy(
        model=MODEL,
        alias=ALIAS,
        metric=METRIC,
        triggers=(
            TriggerRule(
                kind="drift",
                metric="drift.share",
                op=">=",
                threshold=DRIFT_THRESHOLD,
                windows=DRIFT_WINDOWS,
            ),
        ),
        data=DataSpec(source="feedback", window_rows=DATA_ROWS, holdout=HOLDOUT, target=TARGET),
        limits=Limits(max_per_day=len(today) + 1, cooldown_s=0),
        rollback=RollbackSpec(auto=True, window_rows=LIVE_CHECK_ROWS, margin=0.02),
        monitor_window_rows=WINDOW_ROWS,
    )


def run_flow(
    client: Client,
    story: Story,
    *,
    keep_serving: bool = False,
    port: int = 0,
    schedule: Schedule | None = None,
) -> QuickstartResult:
    """Run the whole quickstart on ``client``'s workspace, telling ``story`` as it goes."""
    settings = client.settings
    schedule = schedule or Schedule()
    story.title("loopml quickstart: a served model meets patients it was not trained on")
    embedded = not settings.store_uri and not settings.artifact_uri
    where = str(settings.workspace.absolute()) if embedded else settings.resolved_store_uri
    story.line("workspace", where, mark="info")

    with story.status("loading scikit-learn's breast-cancer data"):
        from loopml.data.versions import add_dataset

        table = bundled_table()
        dataset = add_dataset(client, table, name=DATASET)
        scenario = load_scenario(table)
    _tell_data(story, scenario, f"{dataset.name}@{dataset.version}")

    with story.status(f"running the pipeline {PIPELINE}"):
        trained = training.run(client=client, executor="sequential")
    trained.raise_for_status()
    static_version = _tell_training(story, trained)

    from loopml.monitoring.monitor import set_reference
    from loopml.registry import ModelRegistry

    before = client.store.get_registered_model(MODEL).aliases.get(ALIAS)
    ModelRegistry(client).promote(
        MODEL,
        static_version,
        to=ALIAS,
        reason="quickstart: the model trained on small tumours starts as the champion",
    )
    set_reference(client, f"models:/{MODEL}/{static_version}", scenario.small)
    was = "" if before is None or int(before) == static_version else f" (was version {before})"
    story.line("promoted", f"version {static_version} -> {ALIAS}{was}")
    story.more(f"monitoring reference: its {len(scenario.small)} training rows")
    if _monitor_from_now(client):
        story.line("monitor", "starts from now: traffic of earlier runs is left out", mark="info")

    log_path = settings.workspace.absolute() / "quickstart" / "server.log"
    with story.status("starting loopml serve"):
        server = start_server(
            f"models:/{MODEL}@{ALIAS}", settings=settings, log_path=log_path, port=port
        )
    keep = False
    restore = _signals_interrupt()
    try:
        story.line("server", f"models:/{MODEL}@{ALIAS} at {server.url} (pid {server.pid})")
        story.more("loopml serve, one worker, swaps models when the alias moves")
        policy = quickstart_policy(client)
        _tell_open_iteration(client, story)
        story.line(
            "loop",
            f"retrain when drift.share >= {DRIFT_THRESHOLD} in {DRIFT_WINDOWS} windows of "
            f"{WINDOW_ROWS} rows in a row,",
        )
        story.more(f"on the newest {DATA_ROWS} labelled rows, {HOLDOUT:.0%} kept as a holdout;")
        story.more("promote if the challenger does at least as well as the champion there")
        followed = _follow(client, story, server, scenario, schedule, policy, static_version)
        keep = keep_serving
    finally:
        restore()
        if not keep:
            server.stop()
    return _result(client, story, scenario, server, followed, static_version, keep, trained)


def _signals_interrupt() -> Callable[[], None]:
    """While the server runs, SIGTERM and SIGHUP stop the quickstart like Ctrl-C, so the
    server (in a session of its own, which the terminal's signals do not reach) is stopped
    too. Returns what puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


# -- the steps before the traffic ----------------------------------------------------------------
def _tell_data(story: Story, scenario: Scenario, dataset: str) -> None:
    small, stream, held = scenario.small, scenario.stream, scenario.held_out
    story.line("dataset", f"{dataset}: scikit-learn's breast-cancer table, sorted by {SORT_BY}")
    story.line(
        "scenario",
        f"first the {len(small)} smallest tumours ({small[TARGET].mean():.0%} benign), "
        f"then the {len(stream) + len(held)} largest ({stream[TARGET].mean():.0%} benign):",
    )
    story.more(
        f"{len(stream)} of those are sent to the server, {len(held)} are held out for the end"
    )


def _tell_training(story: Story, trained: PipelineResult) -> int:
    uri = str(trained.output("train"))
    version = int(uri.rsplit("/", 1)[1])
    steps = ", ".join(
        f"{name} {record.status.value}"
        for name, record in trained.steps.items()
        if not name.startswith("dataset.")  # the node that resolved the dataset version
    )
    story.line("pipeline", f"{PIPELINE} run {trained.run.run_id[:12]}: {steps}")
    cached = trained.steps["train"].status.value == "CACHED"
    story.line(
        "reused" if cached else "registered",
        f"version {version} of {MODEL}: scaler + logistic regression, with its signature",
    )
    if cached:
        story.more("(same code, same data: the pipeline cache gave back the same version)")
    return version


def _tell_open_iteration(client: Client, story: Story) -> None:
    """Warn when an earlier, interrupted run left a loop iteration open: this run's controller
    takes it over only once its owner has been silent for the lease."""
    from loopml.core.loop import IterationStatus

    found = client.store.list_loop_iterations(
        MODEL, statuses=[IterationStatus.RUNNING, IterationStatus.WAITING], limit=1
    )
    if found:
        it = found[0]
        story.line(
            "loop",
            f"iteration {it.number} of {it.owner} is still open (an interrupted run?): this "
            "loop takes it over once that owner has been silent for 60 s",
            mark="warn",
        )


def _monitor_from_now(client: Client) -> bool:
    """Move the monitor of ``MODEL`` past everything logged so far, so rows left by an earlier
    run are not mixed into the first window of this one. True when there was a monitor."""
    from loopml.monitoring.monitor import EXPERIMENT, LAST_END_TAG

    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return False
    found = client.search_runs(
        [experiment.experiment_id], filter=f"attributes.run_name = 'monitor/{MODEL}'", max_results=1
    ).items
    if not found:
        return False
    client.set_tags(found[0].run_id, {LAST_END_TAG: str(now_ms())})
    return True


# -- the traffic and the loop -------------------------------------------------------------------
@dataclass
class _Followed:
    """What happened while the traffic flowed."""

    stats: TrafficStats
    answers: list[Any]
    windows: list[Window] = field(default_factory=list)
    iteration_id: str = ""
    detected_ms: int | None = None  # when the loop's trigger fired (epoch ms)
    promoted_ms: int | None = None  # when it moved the alias
    ended: bool = False  # the iteration ended (promoted, rejected or failed)
    alerts: int = 0  # alerts fired
    started_ms: int = 0  # epoch ms at time.monotonic() == started_s
    started_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    def monotonic(self, epoch_ms: int) -> float:
        return self.started_s + (epoch_ms - self.started_ms) / 1000

    def epoch_ms(self, monotonic_s: float) -> int:
        return self.started_ms + round((monotonic_s - self.started_s) * 1000)


def _follow(
    client: Client,
    story: Story,
    server: ServerProcess,
    scenario: Scenario,
    schedule: Schedule,
    policy: LoopPolicy,
    static_version: int,
) -> _Followed:
    loop = LoopThread(client, policy)
    traffic = Traffic(
        server.url,
        scenario,
        first_version=str(static_version),
        request_prefix=f"qs-{uuid.uuid4().hex[:8]}",
        schedule=schedule,
    )
    followed = _Followed(traffic.stats(), [], started_ms=now_ms(), started_s=time.monotonic())
    told_shift = told_swap = told_end = False
    try:
        loop.start()
        traffic.start()
        with traffic_bar(story.console) as bar:
            while True:
                _drain(loop, story, followed)
                stats = traffic.stats()
                if stats.first_shift_index is not None and not told_shift:
                    told_shift = True
                    story.line(
                        "shift",
                        f"request {stats.first_shift_index + 1}: larger tumours start arriving",
                        mark="warn",
                    )
                    story.more(f"(all the rows are large ones {schedule.ramp} requests later)")
                if stats.swap is not None and not told_swap:
                    told_swap = True
                    _tell_swap(story, stats)
                if followed.ended and followed.promoted_ms is None and not told_end:
                    told_end = True  # no new model: a little more traffic, then the tables
                    traffic.finish(after=AFTER_NO_PROMOTION)
                last = followed.windows[-1].drift_share if followed.windows else None
                bar.update(stats, drift_share=last)
                if traffic.done:
                    break
                time.sleep(0.2)
        followed.stats = traffic.stats()
        story.line(
            "traffic",
            f"{followed.stats.answered} requests answered, {followed.stats.failed} failed; "
            f"{followed.stats.answered - followed.stats.failed_feedback} labels sent to /feedback",
            mark="ok" if followed.stats.failed == 0 else "bad",
        )
        _wait_live_check(client, loop, story, followed)
    finally:
        traffic.stop()
        traffic.join(30)
        loop.stop()
    _drain(loop, story, followed)
    followed.answers = traffic.answers
    followed.stats = traffic.stats()
    return followed


def _drain(loop: LoopThread, story: Story, followed: _Followed) -> None:
    while not loop.events.empty():
        event: Event = loop.events.get_nowait()
        if event.kind == "window" and event.window is not None:
            _tell_window(story, followed, event.window)
        elif event.kind == "error":
            followed.errors.append(event.detail)
            story.line("loop", f"a tick failed: {event.detail}", mark="warn")
        elif event.kind == "alert":
            followed.alerts += 1
            if followed.alerts == 1:  # it fires again for each window while the drift lasts
                story.alert(event.alert, event.detail)
        elif event.kind == "warning":
            followed.errors.append(event.detail)
            story.line("warning", event.detail, mark="warn")
        elif event.iteration is not None:
            it = event.iteration
            followed.iteration_id = it.iteration_id
            if event.kind == "triggered":
                followed.detected_ms = int(it.trigger.get("at_ms") or it.created_ms)
            if it.stage.value == "promoted" and followed.promoted_ms is None:
                followed.promoted_ms = int(it.record.get("promoted_ms") or it.updated_ms)
            followed.ended = not it.status.open
            story.loop_event(event.kind, it, metric=METRIC)


def _tell_window(story: Story, followed: _Followed, window: Window) -> None:
    """Print the first window, windows over the threshold until the loop triggers, and the
    first window scored against a new reference."""
    windows = followed.windows
    windows.append(window)
    over = window.drift_share >= DRIFT_THRESHOLD
    if len(windows) == 1:
        story.window(window, note="(the first one)")
    elif followed.detected_ms is None and over:
        story.window(window, note=f">= {DRIFT_THRESHOLD}")
    elif (
        followed.promoted_ms is not None
        and window.end_ms > followed.promoted_ms
        and not any(w.end_ms > followed.promoted_ms for w in windows[:-1])
    ):
        story.window(window, note="(against the new reference)")


def _tell_swap(story: Story, stats: TrafficStats) -> None:
    swap = stats.swap
    assert swap is not None
    since = (
        ""
        if stats.first_shift_s is None
        else (f", {swap.answered_s - stats.first_shift_s:.1f} s after the shift")
    )
    story.line(
        "hot swap", f"version {swap.version} answers from request {swap.index + 1} on{since}"
    )
    story.more(f"{stats.failed} failed requests so far")


def _wait_live_check(client: Client, loop: LoopThread, story: Story, followed: _Followed) -> None:
    """Give the loop a few seconds to compare the new champion's live accuracy with the old
    one's (its rollback check), and tell the result."""
    if not followed.iteration_id:
        return
    deadline = time.monotonic() + LIVE_CHECK_WAIT_S
    while time.monotonic() < deadline:
        _drain(loop, story, followed)
        it = client.store.get_loop_iteration(followed.iteration_id)
        if it.outcome.value != "promoted" and it.status.value != "RUNNING":
            return  # nothing to check: rejected, failed, or rolled back (told already)
        live = it.record.get("live")
        if it.record.get("rollback_checked") and isinstance(live, dict):
            old = live.get("old")
            versus = "nothing to compare" if old is None else f"the old one: {old:.4f} on its last"
            story.line(
                "live check",
                f"live {METRIC} of the new champion: {live.get('new', float('nan')):.4f} on "
                f"its first {LIVE_CHECK_ROWS} labelled rows",
            )
            story.more(f"{versus}: no rollback")
            return
        time.sleep(0.3)


# -- the figures ---------------------------------------------------------------------------------
def _result(
    client: Client,
    story: Story,
    scenario: Scenario,
    server: ServerProcess,
    followed: _Followed,
    static_version: int,
    kept: bool,
    trained: PipelineResult,
) -> QuickstartResult:
    iteration = (
        client.store.get_loop_iteration(followed.iteration_id) if followed.iteration_id else None
    )
    champion = client.store.get_registered_model(MODEL).aliases.get(ALIAS)
    champion_version = None if champion is None else int(champion)
    loop_version = None
    if iteration is not None and iteration.outcome.value == "promoted":
        loop_version = int(iteration.record["challenger"]["version"])
    with story.status("scoring both models on the held-out large tumours"):
        static_accuracy = _accuracy(client, static_version, scenario)
        loop_accuracy = (
            static_accuracy
            if champion_version in (None, static_version)
            else _accuracy(client, int(champion_version or static_version), scenario)
        )
    stats = followed.stats
    swap = stats.swap
    served_before = _served(followed.answers, str(static_version))
    served_after = None if swap is None else _served(followed.answers, swap.version)
    onset = stats.first_shift_s
    return QuickstartResult(
        model=MODEL,
        alias=ALIAS,
        static_version=static_version,
        loop_version=loop_version,
        champion_version=champion_version,
        static_accuracy=static_accuracy,
        loop_accuracy=loop_accuracy,
        held_out_rows=len(scenario.held_out),
        served_before=served_before,
        served_after=served_after,
        onset_to_detection_s=None
        if onset is None or followed.detected_ms is None
        else followed.monotonic(followed.detected_ms) - onset,
        drift_to_promotion_s=None if onset is None or swap is None else swap.answered_s - onset,
        wall_s=story.elapsed(),
        requests=stats.answered,
        failed_requests=stats.failed,
        failed_feedback=stats.failed_feedback,
        versions_served=stats.versions,
        drift_threshold=DRIFT_THRESHOLD,
        shift_ms=None if onset is None else followed.epoch_ms(onset),
        windows=tuple(followed.windows),
        iteration=iteration,
        workspace=str(client.settings.workspace.absolute()),
        store_uri=client.settings.resolved_store_uri,
        server_url=server.url,
        server_pid=server.pid if kept else None,
        server_log=str(server.log_path),
        pipeline_run_id=trained.run.run_id,
        notes=tuple(followed.errors),
    )


def _accuracy(client: Client, version: int, scenario: Scenario) -> float:
    from loopml.models import load_model

    model = load_model(f"models:/{MODEL}/{version}", client=client)
    held = scenario.held_out
    predicted = model.predict(held[scenario.features])
    return float((predicted == held[TARGET].to_numpy()).mean())


def _served(answers: list[Any], version: str) -> Served | None:
    mine = [a for a in answers if a.ok and a.version == version and a.shifted]
    if not mine:
        return None
    return Served(version, sum(a.shifted for a in mine), sum(a.shifted_correct for a in mine))
