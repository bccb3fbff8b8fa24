"""The loop controller of the quickstart, ticking in a background thread.

What the controller does is reported as :class:`Event` values on a queue (the main thread
prints them): each monitor window it scores, with its drift share, and each stage of the loop
iteration (``triggered``, ``data``, ``trained``, ``registered``, ``evaluated``, ``gated``,
``promoted``, ``rejected``, ``failed``, ...). The thread stops when told to.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.core.alerts import Alert

if TYPE_CHECKING:
    from loopml.core.loop import LoopIteration
    from loopml.loop import LoopPolicy
    from loopml.tracking.client import Client

__all__ = ["Event", "LoopThread", "Window"]

log = logging.getLogger("loopml.quickstart")


@dataclass(frozen=True, slots=True)
class Window:
    """One monitor window the controller scored."""

    index: int
    end_ms: int
    rows: int
    drift_share: float
    alerts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Event:
    """``kind`` is ``window`` (``window`` is set), ``error`` (a tick raised), ``alert`` or
    ``warning`` (logged; ``detail`` says what), or a loop event (``iteration`` is set)."""

    kind: str
    window: Window | None = None
    iteration: LoopIteration | None = None
    detail: str = ""
    alert: Alert | None = None


@dataclass
class _Seen:
    windows: set[int] = field(default_factory=set)
    iteration: LoopIteration | None = None


class _Relay(logging.Handler):
    """Turns loopml's warnings (alerts fired, ticks that failed) into events for the story,
    instead of letting them reach the terminal in the middle of it."""

    def __init__(self, events: queue.Queue[Event]) -> None:
        super().__init__(logging.WARNING)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        alert = getattr(record, "alert", None)
        if isinstance(alert, Alert):
            self.events.put(Event("alert", detail=record.getMessage(), alert=alert))
        else:
            self.events.put(Event("warning", detail=record.getMessage()))


class LoopThread:
    """Runs ``LoopController(client, policy)`` every ``interval_s`` seconds in a thread.

    While it runs, warnings logged under ``loopml`` become events too (``alert``, ``warning``).
    """

    def __init__(self, client: Client, policy: LoopPolicy, *, interval_s: float = 1.0) -> None:
        from loopml.loop import LoopController

        self.events: queue.Queue[Event] = queue.Queue()
        self.interval_s = interval_s
        self.controller = LoopController(client, policy, listener=self._on_loop_event)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seen = _Seen()
        self._thread = threading.Thread(target=self._run, name="quickstart-loop", daemon=True)
        self._relay = _Relay(self.events)

    @property
    def iteration(self) -> LoopIteration | None:
        """The newest iteration this controller reported on."""
        with self._lock:
            return self._seen.iteration

    def start(self) -> None:
        logging.getLogger("loopml").addHandler(self._relay)
        self._thread.start()

    def stop(self, *, timeout_s: float = 60.0) -> None:
        """Stop ticking; waits for the tick under way (a retrain finishes its stage)."""
        self._stop.set()
        self._thread.join(timeout_s)
        logging.getLogger("loopml").removeHandler(self._relay)

    def tick_now(self) -> None:
        """Tick once in the calling thread (only when the background thread is stopped)."""
        self._tick()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._tick()
            self._stop.wait(self.interval_s)

    def _tick(self) -> None:
        try:
            self.controller.tick()
        except Exception as exc:  # the story tells, and the next tick tries again
            log.debug("loop tick failed", exc_info=True)
            self.events.put(Event("error", detail=f"{type(exc).__name__}: {exc}"))
        for result in self.controller.last_windows:
            with self._lock:
                if result.index in self._seen.windows:
                    continue
                self._seen.windows.add(result.index)
            window = Window(
                index=result.index,
                end_ms=result.end_ms,
                rows=result.rows,
                drift_share=float(result.values.get("drift.share", float("nan"))),
                alerts=tuple(_alert_rule(a) for a in result.alerts),
            )
            self.events.put(Event("window", window=window))

    def _on_loop_event(self, event: str, iteration: LoopIteration) -> None:
        with self._lock:
            self._seen.iteration = iteration
        self.events.put(Event(event, iteration=iteration))


def _alert_rule(alert: Any) -> str:
    return str(getattr(alert, "rule", alert))
