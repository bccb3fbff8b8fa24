"""The scheduler fires each due trigger once: across restarts, dead schedulers and races."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import loopml
from loopml.core.alerts import Alert
from loopml.core.datasets import DatasetVersion
from loopml.core.entities import now_ms
from loopml.core.pipelines import PipelineStatus
from loopml.core.schedules import Firing, FiringStatus, Trigger, TriggerKind
from loopml.errors import InvalidArgument
from loopml.pipelines.scheduler import LaunchFailed, Scheduler
from loopml.pipelines.schedules import add_trigger, due_firings
from loopml.store.base import MetadataStore

MINUTE = 60_000
T = 1_700_000_040_000  # 2023-11-14T22:14:00Z, on a minute boundary
NEW_YEAR = 1_704_067_200_000  # 2024-01-01T00:00:00Z
RUN_ID = "0123456789abcdef0123456789abcdef"  # what the test launchers say they started
WAIT_S = 60.0  # the longest a test waits for another process to reach a point


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> Iterator[loopml.Client]:
    c = loopml.Client(store_uri, artifact_uri=str(tmp_path / "artifacts"))
    yield c
    c.close()


class Recorder:
    """A launcher that records each firing it is given (thread-safe)."""

    def __init__(self, run_id: str = RUN_ID) -> None:
        self.run_id = run_id
        self.launched: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, trigger: Trigger, firing: Firing) -> str:
        with self._lock:
            self.launched.append((trigger.name, firing.key))
        return self.run_id

    @property
    def keys(self) -> list[str]:
        return [key for _, key in self.launched]


def _cron(client: loopml.Client, spec: str, created_ms: int, name: str = "every") -> Trigger:
    return client.store.put_trigger(
        Trigger(name, "flows:nightly", TriggerKind.CRON, spec, created_ms=created_ms)
    )


def _version(store: MetadataStore, name: str, content: str) -> DatasetVersion:
    return store.add_dataset_version(
        DatasetVersion(
            name=name,
            digest=hashlib.sha256(content.encode()).hexdigest(),
            source=f"{content}.csv",
            format="csv",
            size_bytes=1,
        )
    )


def _alert(store: MetadataStore, model: str, rule: str) -> Alert:
    alert = Alert(
        alert_id=uuid.uuid4().hex,
        model_name=model,
        rule=rule,
        metric="drift.share",
        value=0.9,
        threshold=0.5,
        op=">",
        severity="warning",
        fired_ms=now_ms(),
        window_end_ms=now_ms(),
        message="drifted",
    )
    store.add_alert(alert)
    return alert


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


# -- restarts --------------------------------------------------------------------------------
def test_cron_slots_fire_once_each_across_ticks_and_restarts(client: loopml.Client) -> None:
    _cron(client, "*/1 * * * *", T)
    recorder = Recorder()
    first = Scheduler(client, launcher=recorder)
    fired = first.tick(now_ms=T + 3 * MINUTE + 30_000)
    keys = ["2023-11-14T22:15:00Z", "2023-11-14T22:16:00Z", "2023-11-14T22:17:00Z"]
    assert [f.key for f in fired] == keys == recorder.keys
    assert {(f.status, f.pipeline_run_id, f.owner) for f in fired} == {
        (FiringStatus.DONE, RUN_ID, first.owner)
    }
    assert first.tick(now_ms=T + 3 * MINUTE + 30_000) == []
    restarted = Scheduler(client, launcher=recorder)
    assert restarted.tick(now_ms=T + 3 * MINUTE + 30_000) == []
    assert recorder.keys == keys
    fourth = restarted.tick(now_ms=T + 4 * MINUTE + 30_000)
    assert [f.key for f in fourth] == ["2023-11-14T22:18:00Z"]
    assert recorder.keys == [*keys, "2023-11-14T22:18:00Z"]
    stored = client.store.list_firings("every")
    assert [f.status for f in stored] == [FiringStatus.DONE] * 4


def test_firing_of_a_dead_scheduler_is_taken_over_after_its_lease(client: loopml.Client) -> None:
    store = client.store
    trigger = _cron(client, "0 0 1 1 *", NEW_YEAR - MINUTE, name="yearly")
    claimed_at = NEW_YEAR + 30_000
    # scheduler A claims the slot and marks it RUNNING, then dies without another heartbeat
    (due,) = due_firings(trigger, store, claimed_at, "scheduler-a")
    assert store.claim_firing(due)
    store.update_firing("yearly", due.key, owner="scheduler-a", status=FiringStatus.RUNNING)
    recorder = Recorder()
    b = Scheduler(client, launcher=recorder, lease_s=60)
    assert b.tick(now_ms=claimed_at + MINUTE) == []  # the lease has not run out yet
    assert recorder.launched == []
    (taken,) = b.tick(now_ms=claimed_at + MINUTE + 1)
    assert (taken.key, taken.owner, taken.status) == (due.key, b.owner, FiringStatus.DONE)
    assert recorder.keys == ["2024-01-01T00:00:00Z"]
    assert b.tick(now_ms=claimed_at + 10 * MINUTE) == []
    assert Scheduler(client, launcher=recorder).tick(now_ms=claimed_at + 10 * MINUTE) == []
    assert recorder.keys == ["2024-01-01T00:00:00Z"]


def test_running_firing_is_heartbeaten_so_it_is_not_stale(client: loopml.Client) -> None:
    _cron(client, "*/1 * * * *", T)
    seen: list[int] = []

    def wait_for_a_heartbeat(trigger: Trigger, firing: Firing) -> str:
        def beaten() -> bool:
            (stored,) = client.store.list_firings(trigger.name)
            seen.append(stored.heartbeat_ms)
            return stored.heartbeat_ms > firing.heartbeat_ms

        _wait_for(beaten, "a heartbeat")
        return RUN_ID

    scheduler = Scheduler(client, launcher=wait_for_a_heartbeat, lease_s=0.3)
    (fired,) = scheduler.tick(now_ms=T + MINUTE)
    assert fired.status is FiringStatus.DONE, fired.error
    assert seen[-1] > T + MINUTE


# -- outcomes --------------------------------------------------------------------------------
def test_launcher_errors_mark_the_firing_failed_and_it_is_not_retried(
    client: loopml.Client,
) -> None:
    _cron(client, "*/1 * * * *", T)
    calls: list[str] = []

    def launch(trigger: Trigger, firing: Firing) -> str:
        calls.append(firing.key)
        if len(calls) == 1:
            raise RuntimeError("no such table")
        raise LaunchFailed(f"pipeline run {RUN_ID} ended FAILED", pipeline_run_id=RUN_ID)

    scheduler = Scheduler(client, launcher=launch)
    first, second = scheduler.tick(now_ms=T + 2 * MINUTE)
    assert (first.status, first.error, first.pipeline_run_id) == (
        FiringStatus.FAILED,
        "RuntimeError: no such table",
        "",
    )
    assert (second.status, second.error, second.pipeline_run_id) == (
        FiringStatus.FAILED,
        f"pipeline run {RUN_ID} ended FAILED",
        RUN_ID,
    )
    assert scheduler.tick(now_ms=T + 2 * MINUTE) == []
    assert len(calls) == 2


def test_launcher_returning_something_other_than_a_run_id_fails_the_firing(
    client: loopml.Client,
) -> None:
    _cron(client, "*/1 * * * *", T)
    (fired,) = Scheduler(client, launcher=lambda t, f: "run-7").tick(now_ms=T + MINUTE)
    assert (fired.status, fired.pipeline_run_id) == (FiringStatus.FAILED, "")
    assert "returned 'run-7', not a pipeline run id" in fired.error


def test_slow_scheduler_does_not_overwrite_a_firing_taken_from_it(client: loopml.Client) -> None:
    store = client.store
    _cron(client, "*/1 * * * *", T)
    later = T + 10 * MINUTE

    def taken_meanwhile(trigger: Trigger, firing: Firing) -> str:
        # another scheduler decides this one is dead and takes the firing while it runs
        assert store.take_over_firing(
            trigger.name, firing.key, owner="scheduler-b", stale_before_ms=later, now_ms=later
        )
        return RUN_ID

    (ended,) = Scheduler(client, launcher=taken_meanwhile).tick(now_ms=T + MINUTE)
    assert ended.status is FiringStatus.DONE  # what this scheduler saw
    (stored,) = store.list_firings("every")
    assert (stored.owner, stored.status, stored.pipeline_run_id) == (
        "scheduler-b",
        FiringStatus.CLAIMED,
        "",
    )


def test_firings_run_concurrently_up_to_max_concurrent(client: loopml.Client) -> None:
    _cron(client, "*/1 * * * *", T)
    both_running = threading.Barrier(2, timeout=WAIT_S)

    def launch(trigger: Trigger, firing: Firing) -> str:
        both_running.wait()  # breaks (and fails the firing) unless two run at once
        return RUN_ID

    fired = Scheduler(client, launcher=launch, max_concurrent=2).tick(now_ms=T + 2 * MINUTE)
    assert [f.status for f in fired] == [FiringStatus.DONE, FiringStatus.DONE]


def test_dataset_and_alert_triggers_fire_once_per_new_event(client: loopml.Client) -> None:
    store = client.store
    _version(store, "churn", "before")
    _alert(store, "churn", "drift")
    add_trigger(client, "on-data", "flows:nightly", on_dataset="churn")
    add_trigger(client, "on-drift", "flows:nightly", on_alert="churn:drift")
    recorder = Recorder()
    scheduler = Scheduler(client, launcher=recorder)
    assert scheduler.tick() == []
    _version(store, "churn", "after-1")
    _version(store, "churn", "after-2")
    drift = _alert(store, "churn", "drift")
    _alert(store, "churn", "accuracy")
    _alert(store, "fraud", "drift")
    assert sorted((f.trigger, f.key) for f in scheduler.tick()) == [
        ("on-data", "churn@2"),
        ("on-data", "churn@3"),
        ("on-drift", drift.alert_id),
    ]
    assert scheduler.tick() == [] and Scheduler(client, launcher=recorder).tick() == []
    assert len(recorder.launched) == 3


def test_dataset_trigger_fires_past_a_version_another_scheduler_claimed(
    client: loopml.Client,
) -> None:
    store = client.store
    add_trigger(client, "on-data", "flows:nightly", on_dataset="churn")
    for content in ("v1", "v2", "v3"):
        _version(store, "churn", content)
    launched: list[str] = []

    def launch(trigger: Trigger, firing: Firing) -> str:
        launched.append(firing.key)
        if firing.key == "churn@1":  # meanwhile another scheduler claims the next version
            other = Firing("on-data", "churn@2", due_ms=firing.due_ms, owner="scheduler-b")
            assert store.claim_firing(other)
        if firing.key == "churn@3":
            raise LaunchFailed(f"pipeline run {RUN_ID} ended FAILED", pipeline_run_id=RUN_ID)
        return RUN_ID

    fired = Scheduler(client, launcher=launch).tick()
    assert [(f.key, f.status) for f in fired] == [
        ("churn@1", FiringStatus.DONE),
        ("churn@3", FiringStatus.FAILED),
    ]
    owners = {f.key: f.owner for f in store.list_firings("on-data")}
    assert owners["churn@2"] == "scheduler-b"
    # nothing runs twice, and a failed run is not a reason to fire its version again
    assert Scheduler(client, launcher=launch).tick() == []
    assert launched == ["churn@1", "churn@3"]


def test_a_claim_that_raises_ends_the_tick_and_skips_no_version(
    client: loopml.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = client.store
    add_trigger(client, "on-data", "flows:nightly", on_dataset="churn")
    for content in ("v1", "v2", "v3"):
        _version(store, "churn", content)
    claim = store.claim_firing

    def unreachable_for_churn_2(firing: Firing) -> bool:
        # a store outage cannot be caused on demand here: this claim fails as one would
        if firing.key == "churn@2":
            raise ConnectionError("the store is unreachable")
        return claim(firing)

    monkeypatch.setattr(store, "claim_firing", unreachable_for_churn_2)
    recorder = Recorder()
    scheduler = Scheduler(client, launcher=recorder)
    with pytest.raises(ConnectionError, match="unreachable"):
        scheduler.tick()
    assert recorder.keys == ["churn@1"]  # churn@3 was not claimed past churn@2
    assert [f.key for f in store.list_firings("on-data")] == ["churn@1"]
    monkeypatch.undo()
    assert [f.key for f in scheduler.tick()] == ["churn@2", "churn@3"]
    assert recorder.keys == ["churn@1", "churn@2", "churn@3"]


def test_stop_claims_nothing_more(client: loopml.Client) -> None:
    _cron(client, "*/1 * * * *", T)
    recorder = Recorder()
    scheduler = Scheduler(client, launcher=recorder)
    scheduler.stop()
    assert scheduler.tick(now_ms=T + 3 * MINUTE) == []
    assert recorder.launched == [] and client.store.list_firings() == []


def test_run_loops_until_its_stop_event_is_set(client: loopml.Client) -> None:
    store = client.store
    add_trigger(client, "on-data", "flows:nightly", on_dataset="churn")
    stop = threading.Event()
    keys: list[str] = []

    def launch(trigger: Trigger, firing: Firing) -> str:
        keys.append(firing.key)
        if len(keys) == 2:
            stop.set()
        return RUN_ID

    scheduler = Scheduler(client, launcher=launch, poll_s=0.01)
    runner = threading.Thread(target=scheduler.run, args=(stop,))
    runner.start()
    _version(store, "churn", "one")
    _wait_for(lambda: len(keys) == 1, "the first firing")
    _version(store, "churn", "two")
    runner.join(WAIT_S)
    assert not runner.is_alive()
    assert keys == ["churn@1", "churn@2"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"poll_s": 0}, "invalid poll_s 0"),
        ({"lease_s": -1}, "invalid lease_s -1"),
        ({"max_concurrent": 0}, "invalid max_concurrent 0"),
        ({"owner": " "}, "invalid owner ' '"),
    ],
)
def test_bad_scheduler_options_are_refused(
    client: loopml.Client, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Scheduler(client, **options)  # type: ignore[arg-type]


# -- races -----------------------------------------------------------------------------------
def test_four_racing_schedulers_fire_each_slot_once(store_uri: str, tmp_path: Path) -> None:
    setup = loopml.Client(store_uri, artifact_uri=str(tmp_path / "artifacts"))
    _cron(setup, "*/1 * * * *", T)
    _cron(setup, "*/2 * * * *", T, name="every-other")
    recorder = Recorder()
    start = threading.Barrier(4, timeout=WAIT_S)
    fired: list[Firing] = []

    def race() -> None:
        client = loopml.Client(store_uri, artifact_uri=str(tmp_path / "artifacts"))
        try:
            scheduler = Scheduler(client, launcher=recorder)
            start.wait()
            fired.extend(scheduler.tick(now_ms=T + 6 * MINUTE))
        finally:
            client.close()

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = [("every", f"2023-11-14T22:{m}:00Z") for m in range(15, 21)] + [
        ("every-other", f"2023-11-14T22:{m}:00Z") for m in (16, 18, 20)
    ]
    assert sorted(recorder.launched) == expected
    assert sorted((f.trigger, f.key) for f in fired) == expected
    assert all(f.status is FiringStatus.DONE for f in setup.store.list_firings())
    setup.close()


_SCRIPT = textwrap.dedent(
    """
    import logging, os, sys, time
    import loopml
    from loopml.pipelines.scheduler import Scheduler

    store_uri, artifacts, out, ready, go, now, lease, mode = sys.argv[1:9]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    def launch(trigger, firing):
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{firing.trigger} {firing.key}\\n".encode())
        os.close(fd)
        if mode != "tick":  # hold the firing until the test says so (or kills us)
            while not os.path.exists(go + ".release"):
                time.sleep(0.01)
        return f"{os.getpid():032x}"

    client = loopml.Client(store_uri, artifact_uri=artifacts)
    scheduler = Scheduler(client, launcher=launch, lease_s=float(lease), poll_s=0.05)
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)
    if mode == "run":
        scheduler.run()
    else:
        scheduler.tick(None if now == "wall" else int(now))
    client.close()
    """
)


class Schedulers:
    """Scheduler processes sharing one store, started together by a ``go`` file."""

    def __init__(self, store_uri: str, tmp_path: Path) -> None:
        self.store_uri = store_uri
        self.tmp_path = tmp_path
        self.script = tmp_path / "scheduler_script.py"
        self.script.write_text(_SCRIPT, encoding="utf-8")
        self.out = tmp_path / "launched.txt"
        self.go = tmp_path / "go"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *, now: str = "wall", lease_s: float = 60, mode: str = "tick") -> None:
        index = len(self.processes)
        ready = self.tmp_path / f"ready-{index}"
        args = [self.store_uri, str(self.tmp_path / "artifacts"), str(self.out), str(ready)]
        args += [str(self.go), now, str(lease_s), mode]
        with (self.tmp_path / f"stderr-{index}.txt").open("w") as stderr:
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, str(self.script), *args],
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            )
        _wait_for(ready.exists, "a scheduler process to start")

    def stderr(self, index: int = 0) -> str:
        return (self.tmp_path / f"stderr-{index}.txt").read_text()

    def wait(self, index: int = 0) -> int:
        return self.processes[index].wait(timeout=WAIT_S)

    def launched(self) -> list[str]:
        return self.out.read_text().splitlines() if self.out.exists() else []

    def release(self) -> None:
        Path(f"{self.go}.release").touch()

    def close(self) -> None:
        self.release()
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=WAIT_S)


@pytest.fixture
def schedulers(store_uri: str, tmp_path: Path) -> Iterator[Schedulers]:
    group = Schedulers(store_uri, tmp_path)
    yield group
    group.close()


def test_racing_scheduler_processes_launch_each_slot_once(
    client: loopml.Client, schedulers: Schedulers
) -> None:
    _cron(client, "*/1 * * * *", T)
    for _ in range(3):
        schedulers.start(now=str(T + 8 * MINUTE + 1))
    schedulers.go.touch()
    for index in range(3):
        assert schedulers.wait(index) == 0, schedulers.stderr(index)
    expected = [f"every 2023-11-14T22:{m}:00Z" for m in range(15, 23)]
    assert sorted(schedulers.launched()) == expected
    stored = client.store.list_firings("every")
    assert sorted(f.key for f in stored) == [line.split()[1] for line in expected]
    assert all(f.status is FiringStatus.DONE for f in stored)


def test_killed_scheduler_process_is_taken_over_after_its_lease(
    client: loopml.Client, schedulers: Schedulers
) -> None:
    store = client.store
    add_trigger(client, "on-data", "flows:nightly", on_dataset="churn")
    _version(store, "churn", "new")
    schedulers.go.touch()
    schedulers.start(lease_s=0.3, mode="hang")  # heartbeats every 0.1 s until killed
    _wait_for(lambda: schedulers.launched() == ["on-data churn@1"], "the firing to start")
    schedulers.processes[0].kill()
    schedulers.wait()
    (dead,) = store.list_firings("on-data")
    assert dead.status is FiringStatus.RUNNING
    recorder = Recorder()
    b = Scheduler(client, launcher=recorder, lease_s=60)
    assert b.tick(now_ms=dead.heartbeat_ms + MINUTE) == [] and recorder.launched == []
    (taken,) = b.tick(now_ms=dead.heartbeat_ms + MINUTE + 1)
    assert (taken.key, taken.owner, taken.status) == ("churn@1", b.owner, FiringStatus.DONE)
    assert b.tick(now_ms=dead.heartbeat_ms + 2 * MINUTE) == []
    assert recorder.keys == ["churn@1"]


def test_sigterm_lets_the_running_firing_finish_then_exits(
    client: loopml.Client, schedulers: Schedulers
) -> None:
    add_trigger(client, "on-data", "flows:nightly", on_dataset="churn")
    _version(client.store, "churn", "new")
    schedulers.go.touch()
    schedulers.start(mode="run")
    _wait_for(lambda: schedulers.launched() == ["on-data churn@1"], "the firing to start")
    (process,) = schedulers.processes
    process.send_signal(signal.SIGTERM)
    _wait_for(lambda: "stopping" in schedulers.stderr(), "the scheduler to acknowledge SIGTERM")
    assert process.poll() is None  # still finishing the pipeline
    schedulers.release()
    assert schedulers.wait() == 0, schedulers.stderr()
    (done,) = client.store.list_firings("on-data")
    assert (done.status, done.pipeline_run_id) == (FiringStatus.DONE, f"{process.pid:032x}")


def test_second_ctrl_c_releases_the_firing_to_the_next_scheduler(
    client: loopml.Client, schedulers: Schedulers
) -> None:
    add_trigger(client, "on-data", "flows:nightly", on_dataset="churn")
    _version(client.store, "churn", "new")
    schedulers.go.touch()
    schedulers.start(mode="run")
    _wait_for(lambda: schedulers.launched() == ["on-data churn@1"], "the firing to start")
    (process,) = schedulers.processes
    process.send_signal(signal.SIGINT)
    _wait_for(lambda: "stopping" in schedulers.stderr(), "the scheduler to acknowledge Ctrl-C")
    process.send_signal(signal.SIGINT)
    assert schedulers.wait() == 0, schedulers.stderr()
    (released,) = client.store.list_firings("on-data")
    assert (released.status, released.heartbeat_ms) == (FiringStatus.RUNNING, 0)
    recorder = Recorder()
    (taken,) = Scheduler(client, launcher=recorder).tick()
    assert (taken.status, recorder.keys) == (FiringStatus.DONE, ["churn@1"])


# -- the default launcher --------------------------------------------------------------------
_PIPELINE_MODULE = textwrap.dedent(
    """
    from loopml.pipelines import pipeline, step

    @step
    def double(n: int) -> int:
        return n * 2

    @step
    def explode(n: int) -> int:
        raise ValueError(f"cannot handle {n}")

    @pipeline
    def nightly(n: int = 1) -> None:
        double(n)

    @pipeline
    def broken(n: int = 1) -> None:
        explode(n)
    """
)


def test_default_launcher_runs_the_pipeline_once_per_firing(
    client: loopml.Client, tmp_path: Path
) -> None:
    module = tmp_path / "pipe_mod.py"
    module.write_text(_PIPELINE_MODULE, encoding="utf-8")
    add_trigger(client, "nightly", f"{module}:nightly", on_dataset="churn", params={"n": 3})
    add_trigger(client, "broken", f"{module}:broken", on_dataset="churn")
    _version(client.store, "churn", "new")
    scheduler = Scheduler(client)
    fired = {f.trigger: f for f in scheduler.tick()}
    assert scheduler.tick() == []
    ok, failed = fired["nightly"], fired["broken"]
    assert ok.status is FiringStatus.DONE, ok.error
    run = client.store.get_pipeline_run(ok.pipeline_run_id)
    assert (run.status, run.trigger, run.params) == (
        PipelineStatus.COMPLETED,
        "schedule:nightly",
        {"n": 3},
    )
    assert failed.status is FiringStatus.FAILED and failed.pipeline_run_id
    assert "FAILED" in failed.error
    broken_run = client.store.get_pipeline_run(failed.pipeline_run_id)
    assert (broken_run.status, broken_run.trigger) == (PipelineStatus.FAILED, "schedule:broken")
    assert len(client.store.list_pipeline_runs()) == 2
