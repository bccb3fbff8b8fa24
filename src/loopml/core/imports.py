"""Loading a large library lazily without paying for garbage collections on the way.

Importing SQLAlchemy (and the store built on it) allocates some 100,000 objects that live as
long as the process: classes, functions, module dicts. With pandas, NumPy and scikit-learn
already in memory, the cyclic garbage collector pays for them twice:

- during the import, each allocation burst triggers a collection, and the periodic full ones
  walk the whole heap (measured on a 2-core machine: 60 to 100 ms of a 250 ms import);
- after it, the new objects sit in the young generations, where every young collection walks
  them again until they age, and their number soon triggers another full collection (about
  20 ms more in a short process).

None of it finds garbage. :func:`first_import` (for a module that may already be loaded) and
:func:`collector_paused` hold the collector off for the length of
such an import, then moves what exists into the oldest generation (``gc.freeze()`` and
``gc.unfreeze()``, which the ``gc`` documentation defines as putting the frozen objects "back
into the oldest generation") and turns the collector back on as it was. The caller's own young
objects move too: a reference cycle among them is collected by the next full collection rather
than a young one. When something in the process has frozen objects on purpose (a server before
it forks its workers), they are left frozen and nothing is moved.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # nested or concurrent pauses: the collector restarts when the last one ends
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the body with the cyclic garbage collector off; on exit, everything is in the
    oldest generation and the collector is on again if it was on before the first of any
    nested or concurrent pauses. Use it around imports only: a body that makes reference
    cycles keeps them until the next full collection."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                if gc.get_freeze_count() == 0:  # never thaw what someone else froze
                    gc.freeze()
                    gc.unfreeze()
                if _was_enabled:
                    gc.enable()


@contextmanager
def first_import(module: str) -> Iterator[None]:
    """:func:`collector_paused` if ``module`` is not loaded yet, else nothing: wrap the lazy
    import of ``module`` (or of something that loads it) in code called again and again, so
    that only the first call pauses the collector and moves objects to the oldest generation."""
    if module in sys.modules:
        yield
        return
    with collector_paused():
        yield
