"""Hot swap: follow registry aliases and install the version an alias moves to.

A daemon thread polls the store for every served ``models:/name@alias`` every few seconds.
When an alias points somewhere new, the thread downloads and loads that version (warming it
up on its input example) while the old one keeps serving, then asks the event loop to install
it: one assignment, after which new requests go to the new version while those already queued
finish on the old one. No request is dropped or fails because of a swap.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from loopml.errors import LoopmlError, NotFound
from loopml.serving.deployment import ResolvedModel

if TYPE_CHECKING:
    from loopml.serving.deployment import ModelEndpoint, Slot
    from loopml.serving.state import ServerState

__all__ = ["AliasWatcher"]

log = logging.getLogger("loopml.serving")


class AliasWatcher:
    """Polls the aliases of ``state``'s slots and swaps in new versions."""

    def __init__(
        self, state: ServerState, loop: asyncio.AbstractEventLoop, *, interval_s: float
    ) -> None:
        self._state = state
        self._loop = loop
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checks = 0
        self.failures = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="loopml-alias-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.check_once()

    def check_once(self) -> int:
        """Look at every alias once; install what moved. Returns how many slots were swapped."""
        swapped = 0
        self.checks += 1
        for endpoint, slot in self._state.alias_slots():
            if self._stop.is_set():
                break
            try:
                if self._check(endpoint, slot):
                    swapped += 1
            except Exception as exc:  # keep serving the current version; try again later
                self.failures += 1
                log.warning("hot swap of %s (%s) failed: %s", slot.uri, slot.role, exc)
        return swapped

    def _check(self, endpoint: ModelEndpoint, slot: Slot) -> bool:
        client = self._state.client
        assert client is not None and slot.alias is not None
        registered = slot.current.resolved.registered
        assert registered is not None
        try:
            target = client.store.get_model_version_by_alias(registered, slot.alias)
        except NotFound:
            return False  # alias deleted: keep what is serving
        if str(target.version) == slot.current.version:
            return False
        from loopml.models.uri import resolve_model_uri

        exact = f"models:/{target.name}/{target.version}"
        resolved = ResolvedModel(
            uri=slot.uri,
            path=resolve_model_uri(exact, client),
            name=endpoint.name,
            version=str(target.version),
            alias=slot.alias,
            registered=registered,
        )
        new = self._state.load(resolved, slot.role)
        future = asyncio.run_coroutine_threadsafe(self._state.install(slot, new), self._loop)
        try:
            future.result(timeout=60)
        except (LoopmlError, TimeoutError) as exc:
            raise RuntimeError(f"installing version {target.version} failed: {exc}") from exc
        return True
