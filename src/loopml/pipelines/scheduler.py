"""The scheduler: claims what its triggers owe and runs each pipeline once.

All state lives in the metadata store. Each due firing is inserted with
:meth:`~loopml.store.MetadataStore.claim_firing`, which only one caller wins, so a restarted
scheduler never fires a slot again and two schedulers never fire the same one twice. While a
firing runs, its scheduler beats a heartbeat into the store every ``lease_s / 3`` seconds; a
firing whose heartbeat is older than the lease belongs to a dead scheduler, and the next one
that ticks takes it over (:meth:`~loopml.store.MetadataStore.take_over_firing`) and runs it.

A pipeline runs at least once per firing and, unless its scheduler dies mid-run (or loses
the store for longer than the lease), exactly once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING

from loopml.core.entities import now_ms as wall_ms
from loopml.core.pipelines import check_pipeline_run_id
from loopml.core.schedules import Firing, FiringStatus, Trigger
from loopml.errors import InvalidArgument, InvalidState, LoopmlError, NotFound
from loopml.pipelines.schedules import due_firings

if TYPE_CHECKING:
    from loopml.tracking.client import Client

__all__ = ["LaunchFailed", "Launcher", "Scheduler", "default_launcher"]

log = logging.getLogger(__name__)

Launcher = Callable[[Trigger, Firing], str]
"""Starts the pipeline of a firing and returns its pipeline run id; raising marks the firing
FAILED (raise :class:`LaunchFailed` to keep the id of a pipeline run that failed)."""

_ACTIVE = (FiringStatus.CLAIMED, FiringStatus.RUNNING)
_MAX_ERROR = 4000  # characters of a launcher's error kept on the firing
_STALE_LOOKUP = 10_000  # active firings examined per tick for take-over


class LaunchFailed(Exception):
    """A launcher's pipeline ran and failed; the firing keeps ``pipeline_run_id``."""

    def __init__(self, message: str, *, pipeline_run_id: str = "") -> None:
        super().__init__(message)
        self.pipeline_run_id = pipeline_run_id


def default_launcher(client: Client) -> Launcher:
    """Runs ``trigger.pipeline`` with ``trigger.params`` in this process (the local
    executor), its pipeline run marked ``schedule:<trigger name>``."""

    def launch(trigger: Trigger, firing: Firing) -> str:
        from loopml.core.pipelines import PipelineStatus
        from loopml.pipelines import run_pipeline_ref

        result = run_pipeline_ref(
            client, trigger.pipeline, trigger.params, trigger=f"schedule:{trigger.name}"
        )
        run = result.run
        if run.status is not PipelineStatus.COMPLETED:
            raise LaunchFailed(
                f"pipeline run {run.run_id} ended {run.status.value}"
                + (f": {run.error}" if run.error else ""),
                pipeline_run_id=run.run_id,
            )
        return run.run_id

    return launch


def _default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    """Fires the store's triggers: ``tick()`` once, or ``run()`` until stopped.

    ``owner`` names this scheduler in the store (default ``host:pid:random``); ``poll_s`` is
    the pause between ticks of :meth:`run`; ``lease_s`` how long a firing survives without a
    heartbeat before another scheduler takes it over; ``launcher`` runs a firing's pipeline
    (default :func:`default_launcher`); ``max_concurrent`` how many firings run at once.
    """

    def __init__(
        self,
        client: Client,
        *,
        owner: str | None = None,
        poll_s: float = 5.0,
        lease_s: float = 60.0,
        launcher: Launcher | None = None,
        max_concurrent: int = 1,
    ) -> None:
        for what, value in (("poll_s", poll_s), ("lease_s", lease_s)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidArgument(f"invalid {what} {value!r}: must be a positive number")
        if (
            isinstance(max_concurrent, bool)
            or not isinstance(max_concurrent, int)
            or max_concurrent < 1
        ):
            raise InvalidArgument(
                f"invalid max_concurrent {max_concurrent!r}: must be an integer of at least 1"
            )
        if owner is not None and (not isinstance(owner, str) or not owner.strip()):
            raise InvalidArgument(f"invalid owner {owner!r}: must be a non-empty string")
        self.client = client
        self.owner = owner or _default_owner()
        self.poll_s = float(poll_s)
        self.lease_s = float(lease_s)
        self.launcher = launcher or default_launcher(client)
        self.max_concurrent = max_concurrent
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._held: set[tuple[str, str]] = set()

    # -- one round ---------------------------------------------------------------------------
    def tick(self, now_ms: int | None = None) -> list[Firing]:
        """Take over stale firings, claim every due one, run them, and return them in the
        order claimed: DONE or FAILED as they ended, or still CLAIMED/RUNNING (with the error)
        when the store failed around them, in which case the lease runs out and another
        scheduler takes them over.

        ``now_ms`` (default: the clock) decides what is due and what is stale. The tick waits
        for the pipelines it starts. After :meth:`stop` it claims nothing more.
        """
        now = wall_ms() if now_ms is None else now_ms
        started = time.monotonic()
        slots = threading.BoundedSemaphore(self.max_concurrent)
        results: dict[int, Firing] = {}
        workers: list[threading.Thread] = []
        beating = threading.Event()
        heart = threading.Thread(
            target=self._beat, args=(beating,), name="loopml-scheduler-heartbeat", daemon=True
        )
        heart.start()
        try:
            for trigger, firing, stale in self._candidates(now):
                if self._stopping.is_set():
                    break
                slots.acquire()
                # stamped when claimed, not when the tick began: a claim made after a long
                # firing must not look stale to the other schedulers at once
                at = now + int((time.monotonic() - started) * 1000)
                firing = dataclasses.replace(firing, claimed_ms=at, heartbeat_ms=at)
                if self._stopping.is_set() or not self._claim(firing, stale=stale, now=at):
                    slots.release()
                    continue
                claimed = self._own(firing, at)
                worker = threading.Thread(
                    target=self._work,
                    args=(trigger, claimed, len(workers), results, slots),
                    name=f"loopml-firing-{trigger.name}",
                    daemon=True,
                )
                with self._lock:
                    self._held.add((claimed.trigger, claimed.key))
                workers.append(worker)
                worker.start()
            for worker in workers:
                worker.join()
        except KeyboardInterrupt:  # a second Ctrl-C: let another scheduler finish our work
            self._release()
            raise
        except BaseException:  # e.g. the store failed mid-tick: what started still finishes
            for worker in workers:
                worker.join()
            raise
        finally:
            beating.set()
            heart.join()
        return [results[i] for i in sorted(results)]

    def stop(self) -> None:
        """Claim nothing more; the firings already running finish (thread-safe)."""
        self._stopping.set()

    # -- the loop ----------------------------------------------------------------------------
    def run(self, stop_event: threading.Event | None = None) -> None:
        """Tick every ``poll_s`` seconds until ``stop_event`` is set, SIGTERM or Ctrl-C.

        In the main thread, the first SIGTERM or Ctrl-C stops claiming and lets the running
        pipelines finish; a second one releases them (other schedulers take them over at
        once) and returns.
        """
        stop = stop_event or threading.Event()
        restore = self._on_signals(stop)
        try:
            while not stop.is_set() and not self._stopping.is_set():
                try:
                    self.tick()
                except Exception as exc:  # e.g. the store is briefly unavailable
                    log.error("scheduler %s: tick failed: %s", self.owner, exc)
                stop.wait(self.poll_s)
        except KeyboardInterrupt:
            log.info("scheduler %s: interrupted; released the firings it held", self.owner)
        finally:
            restore()

    def _on_signals(self, stop: threading.Event) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():

            def relay() -> None:
                stop.wait()
                self.stop()

            watcher = threading.Thread(target=relay, daemon=True, name="loopml-stop")
            watcher.start()
            return lambda: None

        def handle(signum: int, frame: FrameType | None) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            log.info("scheduler %s: stopping after the running firings", self.owner)
            stop.set()
            self.stop()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    # -- claiming ----------------------------------------------------------------------------
    def _candidates(self, now: int) -> Iterator[tuple[Trigger, Firing, bool]]:
        """Stale firings of dead schedulers first, then each trigger's due firings."""
        store = self.client.store
        stale_before = now - int(self.lease_s * 1000)
        triggers = {t.name: t for t in store.list_triggers()}
        active = store.list_firings(statuses=list(_ACTIVE), limit=_STALE_LOOKUP)
        with self._lock:
            held = set(self._held)
        for firing in sorted(active, key=lambda f: f.due_ms):
            trigger = triggers.get(firing.trigger)
            if (
                trigger is not None
                and firing.heartbeat_ms < stale_before
                and (firing.trigger, firing.key) not in held
            ):
                yield trigger, firing, True
        for trigger in triggers.values():
            for firing in due_firings(trigger, store, now, self.owner):
                yield trigger, firing, False

    def _claim(self, firing: Firing, *, stale: bool, now: int) -> bool:
        store = self.client.store
        if not stale:
            try:
                return store.claim_firing(firing)
            except NotFound:  # the trigger was removed since this tick listed it
                return False
        took = store.take_over_firing(
            firing.trigger,
            firing.key,
            owner=self.owner,
            stale_before_ms=now - int(self.lease_s * 1000),
            now_ms=now,
        )
        if took:
            log.warning(
                "scheduler %s: took over firing %s/%s of %s (no heartbeat since %d)",
                self.owner,
                firing.trigger,
                firing.key,
                firing.owner,
                firing.heartbeat_ms,
            )
        return took

    def _own(self, firing: Firing, now: int) -> Firing:
        return dataclasses.replace(
            firing,
            owner=self.owner,
            status=FiringStatus.CLAIMED,
            claimed_ms=now,
            heartbeat_ms=now,
            error="",
        )

    # -- running -----------------------------------------------------------------------------
    def _work(
        self,
        trigger: Trigger,
        firing: Firing,
        index: int,
        results: dict[int, Firing],
        slots: threading.BoundedSemaphore,
    ) -> None:
        try:
            results[index] = self._execute(trigger, firing)
        except Exception as exc:  # the store failed: the lease runs out, another takes over
            log.error("scheduler %s: firing %s/%s: %s", self.owner, firing.trigger, firing.key, exc)
            results[index] = dataclasses.replace(firing, error=str(exc))
        finally:
            with self._lock:
                self._held.discard((firing.trigger, firing.key))
            slots.release()

    def _execute(self, trigger: Trigger, firing: Firing) -> Firing:
        store = self.client.store
        try:
            running = store.update_firing(
                firing.trigger, firing.key, owner=self.owner, status=FiringStatus.RUNNING
            )
        except (InvalidState, NotFound) as exc:
            log.warning("scheduler %s: lost firing %s/%s: %s", self.owner, *_ids(firing), exc)
            return firing
        log.info(
            "scheduler %s: firing %s/%s starts %s", self.owner, *_ids(firing), trigger.pipeline
        )
        run_id, error = "", ""
        try:
            run_id = self.launcher(trigger, running)
        except LaunchFailed as exc:
            run_id, error = exc.pipeline_run_id, str(exc) or type(exc).__name__
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        if run_id != "" and not _is_run_id(run_id):
            error = error or (
                f"the launcher returned {run_id!r}, not a pipeline run id (32 lowercase hex "
                "characters, or '' for none)"
            )
            run_id = ""
        status = FiringStatus.FAILED if error else FiringStatus.DONE
        try:
            return store.update_firing(
                firing.trigger,
                firing.key,
                owner=self.owner,
                status=status,
                heartbeat_ms=wall_ms(),
                pipeline_run_id=run_id,
                error=error[:_MAX_ERROR],
            )
        except (InvalidState, NotFound) as exc:
            log.warning(
                "scheduler %s: firing %s/%s ended %s but was taken from it: %s",
                self.owner,
                *_ids(firing),
                status.value,
                exc,
            )
            return dataclasses.replace(running, status=status, pipeline_run_id=run_id, error=error)

    # -- heartbeats --------------------------------------------------------------------------
    def _beat(self, done: threading.Event) -> None:
        while not done.wait(self.lease_s / 3):
            with self._lock:
                held = sorted(self._held)
            for trigger, key in held:
                try:
                    self.client.store.update_firing(
                        trigger, key, owner=self.owner, heartbeat_ms=wall_ms()
                    )
                except (InvalidState, NotFound) as exc:
                    log.warning(
                        "scheduler %s: lost firing %s/%s: %s", self.owner, trigger, key, exc
                    )
                    with self._lock:
                        self._held.discard((trigger, key))
                except Exception as exc:  # the store hiccuped: beat again next time
                    log.error("scheduler %s: heartbeat failed: %s", self.owner, exc)

    def _release(self) -> None:
        """Mark every firing still held as stale, so the next scheduler takes it over now."""
        with self._lock:
            held = sorted(self._held)
            self._held.clear()
        for trigger, key in held:
            try:
                self.client.store.update_firing(trigger, key, owner=self.owner, heartbeat_ms=0)
            except LoopmlError as exc:
                log.warning(
                    "scheduler %s: could not release %s/%s: %s", self.owner, trigger, key, exc
                )


def _is_run_id(value: object) -> bool:
    try:
        check_pipeline_run_id(value)
    except InvalidArgument:
        return False
    return True


def _ids(firing: Firing) -> tuple[str, str]:
    return firing.trigger, firing.key
