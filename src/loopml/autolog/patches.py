"""Replacing attributes of classes and modules with wrappers, and putting the originals back.

Each patched attribute remembers its original, so patching twice is a no-op and
:func:`restore_all` undoes everything exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["is_patched", "patch", "patched_targets", "restore_all"]

_MARK = "__loopml_autolog_original__"
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class _Patch:
    owner: Any  # a class or a module
    name: str
    original: Any
    wrapper: Any


_patches: list[_Patch] = []


def _own_value(owner: Any, name: str) -> Any:
    """The attribute as stored on ``owner`` itself (not inherited), or None."""
    return vars(owner).get(name)


def is_patched(value: Any) -> bool:
    return hasattr(value, _MARK)


def patch(owner: Any, name: str, make_wrapper: Callable[[Any], Any]) -> bool:
    """Replace ``owner.name`` with ``make_wrapper(original)``; False if it is already ours or
    ``owner`` does not define ``name`` itself."""
    with _lock:
        original = _own_value(owner, name)
        if original is None or is_patched(original):
            return False
        wrapper = make_wrapper(original)
        setattr(wrapper, _MARK, original)
        setattr(owner, name, wrapper)
        _patches.append(_Patch(owner, name, original, wrapper))
        return True


def restore_all() -> int:
    """Put every original back (unless someone else replaced our wrapper since); returns the
    number of attributes restored."""
    with _lock:
        restored = 0
        for p in reversed(_patches):
            if _own_value(p.owner, p.name) is p.wrapper:
                setattr(p.owner, p.name, p.original)
                restored += 1
        _patches.clear()
        return restored


def patched_targets() -> list[str]:
    """``module.Class.fit``-style names of what is patched now (for messages and tests)."""
    with _lock:
        return [f"{getattr(p.owner, '__name__', p.owner)}.{p.name}" for p in _patches]
